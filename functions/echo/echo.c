/*
 * echo: returns what it was sent, for trying out the gateway and for tests.
 * {"method", "path", "args": {...}, "headers": {...}, "body": <JSON body or
 * null>}; a body that is not valid JSON gets a 400 naming the position.
 */
#include <fngate.h>

#include <string.h>

static int echo(fn_req *req, fn_res *res)
{
    json_t *out = json_object(), *args = json_object(), *headers = json_object();
    const char *name, *value;
    size_t len;

    if (!out || !args || !headers) {
        json_decref(out);
        json_decref(args);
        json_decref(headers);
        return fn_error(res, 500, "out of memory");
    }
    /* json_object_set_new steals args and headers: out owns them now. */
    json_object_set_new(out, "method", json_string(fn_method(req)));
    json_object_set_new(out, "path", json_string(fn_path(req)));
    json_object_set_new(out, "args", args);
    json_object_set_new(out, "headers", headers);
    for (size_t i = 0; fn_arg_at(req, i, &name, &value) == 0; i++)
        json_object_set_new(args, name, json_string(value));
    for (size_t i = 0; fn_header_at(req, i, &name, &value) == 0; i++)
        json_object_set_new(headers, name, json_string(value));
    fn_body(req, &len);
    if (len > 0) {
        json_t *body = fn_body_json(req, res); /* owned by req */
        if (!body) {
            json_decref(out);
            return 0; /* the SDK answered 400 */
        }
        json_object_set(out, "body", body); /* not _new: req keeps its reference */
    } else {
        json_object_set_new(out, "body", json_null());
    }
    return fn_send_json_new(res, 200, out);
}

FN_MAIN(echo)
