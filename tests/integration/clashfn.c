/*
 * clashfn: a function that names one of its own functions like an SDK
 * internal (fn_uri_decode_path, the SDK's percent-decoder before its
 * internals took a reserved prefix) and answers with what its call
 * returned.  An author may use any name the public headers do not declare,
 * so the answer must be clashfn's own however the instance started:
 * exec'd (the static handler, whose SDK internals are local symbols) or
 * spare-born (handler.so, dlopen()ed by fngate-spare, whose exported names
 * come first in the lookup of every symbol the shared object calls).
 * test_spare_clash.py asserts both answers.  Includes only fngate.h.
 */
#include <stdlib.h>
#include <string.h>

#include <fngate.h>

/* Same signature as the SDK's internal of this name, so that the call is
 * well defined whichever definition it reaches and the answer says which. */
char *fn_uri_decode_path(const char *s, size_t n);
char *fn_uri_decode_path(const char *s, size_t n)
{
    (void)s;
    (void)n;
    return strdup("clashfn's own");
}

static int clash(fn_req *req, fn_res *res)
{
    /* The SDK's decoder would answer "A". */
    char *got = fn_uri_decode_path("%41", 3);
    int rc;

    (void)req;
    rc = fn_send_jsonf(res, 200, "{s:s}", "fn_uri_decode_path", got ? got : "(null)");
    free(got);
    return rc;
}
FN_MAIN(clash)
