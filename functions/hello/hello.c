/*
 * hello: the smallest useful function.  GET /fn/hello -> {"hello":"world"},
 * GET /fn/hello?name=you -> {"hello":"you"}.
 */
#include <fngate.h>

static int hello(fn_req *req, fn_res *res)
{
    const char *name = fn_arg(req, "name");
    return fn_send_jsonf(res, 200, "{s:s}", "hello", name ? name : "world");
}

FN_MAIN(hello)
