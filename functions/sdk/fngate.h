/*
 * libfngate: write a serverless function for fngate in C.
 *
 *     #include <fngate.h>
 *
 *     static int hello(fn_req *req, fn_res *res)
 *     {
 *         const char *name = fn_arg(req, "name");
 *         return fn_send_jsonf(res, 200, "{s:s}", "hello", name ? name : "world");
 *     }
 *     FN_MAIN(hello)
 *
 * FN_MAIN provides main(): the FastCGI accept loop over fd 0 (libfcgi), the
 * scoreboard updates the gateway reads, and a stop that happens only between
 * requests.  A handler runs one request at a time; the SDK buffers the whole
 * response and writes it when the handler returns, so a handler that never
 * responds gets a 500, and a request the gateway times out gets a 504.
 *
 * Ownership: strings returned by fn_req accessors and the json_t returned by
 * fn_body_json belong to the request and die with it.  fn_send_json borrows
 * its json_t (the caller still owns its reference); fn_send_json_new steals.
 */
#ifndef FNGATE_H
#define FNGATE_H

#include <stdarg.h>
#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fn_req fn_req;
typedef struct fn_res fn_res;

/* Return 0 when a response was produced; any other value with no response
 * produced gives a 500. */
typedef int (*fn_handler)(fn_req *req, fn_res *res);

int fn_main(int argc, char **argv, fn_handler handler);
#define FN_MAIN(handler)                                                                           \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return fn_main(argc, argv, handler);                                                       \
    }

/* --- the request --------------------------------------------------------- */

/* "GET", "POST", ... */
const char *fn_method(const fn_req *req);
/* The path after /fn/<name>: "" or "/..." (decoded by nginx). */
const char *fn_path(const fn_req *req);
/* This function's name. */
const char *fn_name(const fn_req *req);
/* The request id nginx assigned ($request_id), or "". */
const char *fn_request_id(const fn_req *req);
/* The raw query string, or "". */
const char *fn_query_string(const fn_req *req);
/* The decoded value of URL argument NAME (first occurrence), or NULL. */
const char *fn_arg(const fn_req *req, const char *name);
/* URL arguments in order: fn_arg_count, then fn_arg_at(i) fills name/value. */
size_t fn_arg_count(const fn_req *req);
int fn_arg_at(const fn_req *req, size_t i, const char **name, const char **value);
/* Request header NAME, case-insensitive ("Content-Type"), or NULL. */
const char *fn_header(const fn_req *req, const char *name);
/* Request headers in order, names in canonical form ("Content-Type"). */
size_t fn_header_count(const fn_req *req);
int fn_header_at(const fn_req *req, size_t i, const char **name, const char **value);
/* A raw FastCGI parameter ("REMOTE_ADDR"), or NULL. */
const char *fn_param(const fn_req *req, const char *name);
/* The body (NUL-terminated for convenience; LEN may be NULL). Never NULL. */
const char *fn_body(const fn_req *req, size_t *len);
/* The body parsed as JSON, owned by the request.  On invalid JSON returns
 * NULL after putting a 400 {"error": "invalid JSON: <reason> at line L column
 * C"} into RES, so a handler just returns 0. */
json_t *fn_body_json(fn_req *req, fn_res *res);

/* --- the response -------------------------------------------------------- */

/* Adds a response header. NAME and VALUE must not contain CR or LF. */
int fn_set_header(fn_res *res, const char *name, const char *value);
/* Sends BODY with STATUS and CONTENT_TYPE (NULL: application/octet-stream). */
int fn_send(fn_res *res, int status, const char *content_type, const void *body, size_t len);
int fn_send_text(fn_res *res, int status, const char *text);
/* Borrows JSON: the caller keeps its reference. */
int fn_send_json(fn_res *res, int status, const json_t *json);
/* Steals JSON (like json_object_set_new); NULL JSON gives a 500. */
int fn_send_json_new(fn_res *res, int status, json_t *json);
/* json_pack FMT and send it. */
int fn_send_jsonf(fn_res *res, int status, const char *fmt, ...);
/* {"error": "<formatted message>"} with STATUS. */
int fn_error(fn_res *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* True once a response has been set. */
int fn_responded(const fn_res *res);

/* Writes a line to the gateway's log, tagged with this function and pid. */
void fn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif

#endif
