/*
 * JSON response bodies: fn_send_json and fn_send_jsonf, and the {"error":...}
 * body of fn_error.
 */
#include "config.h"

#include "fn_res.h"
#include "fngate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fn_send_json(fn_res *res, int status, const json_t *json)
{
    char small[2048], *s;
    size_t len = json ? json_dumpb(json, small, sizeof(small), JSON_COMPACT | JSON_ENCODE_ANY) : 0;

    /* Most responses fit the stack buffer: one exact allocation instead of
     * json_dumps's growing buffer and its copy. */
    if (len > 0 && len <= sizeof(small)) {
        s = malloc(len);
        if (!s)
            return fn_error(res, 500, "out of memory");
        memcpy(s, small, len);
        return fn_res_take(res, status, "application/json", s, 0, len);
    }
    s = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!s)
        return fn_error(res, 500, "response is not serialisable JSON");
    return fn_res_take(res, status, "application/json", s, 0, strlen(s));
}

int fn_send_json_new(fn_res *res, int status, json_t *json)
{
    int rc = fn_send_json(res, status, json);
    json_decref(json);
    return rc;
}

int fn_send_jsonf(fn_res *res, int status, const char *fmt, ...)
{
    json_error_t e;
    json_t *j;
    va_list ap;

    va_start(ap, fmt);
    j = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    if (!j)
        return fn_error(res, 500, "json_pack: %s", e.text);
    return fn_send_json_new(res, status, j);
}

int fn_error(fn_res *res, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    json_t *j;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    j = json_pack("{s:s}", "error", msg);
    if (!j)
        return -1;
    return fn_send_json_new(res, status, j);
}
