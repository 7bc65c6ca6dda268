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
 *
 * Names: the public API is what this header and fngate_test.h declare, all
 * fn_ (and FN_MAIN).  The SDK's internals start with fnsdk_ (FNSDK_ for
 * macros), a prefix reserved to it: a function must not define or use names
 * starting with fnsdk_ or FNSDK_.  Any other name (but the C library's,
 * jansson's json_ and libfcgi's FCGX_) is the function's own, exec'd or
 * loaded by a spare process alike: the SDK exports only the public names.
 * A later SDK may declare more fn_ names; a prefix of your own is safest.
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
/* FN_MAIN also defines fn_spare_entry(), which returns the handler: what
 * fngate's spare process looks up in a function built as a shared object
 * too (handler.so next to handler, compiled with -fPIC), after it has taken
 * on the function's identity and sandbox. */
#define FN_MAIN(handler)                                                                           \
    fn_handler fn_spare_entry(void);                                                               \
    fn_handler fn_spare_entry(void)                                                                \
    {                                                                                              \
        return handler;                                                                            \
    }                                                                                              \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return fn_main(argc, argv, handler);                                                       \
    }

/* --- the request --------------------------------------------------------- */

/* "GET", "POST", ... */
const char *fn_method(const fn_req *req);
/* The path after /fn/<name>: "" or "/..." (decoded).  From fngate's
 * FNGATE_PATH parameter, else PATH_INFO, else REQUEST_URI minus SCRIPT_NAME,
 * so a function works behind any FastCGI front end. */
const char *fn_path(const fn_req *req);
/* This function's name. */
const char *fn_name(const fn_req *req);
/* The request's id: the front end's FNGATE_REQUEST_ID when it sends one
 * (fngate invoke does; nginx's $request_id through fngate.inc when the
 * server block sets $fngate_request_id), else 32 hex digits the SDK made,
 * unique to the request. */
const char *fn_request_id(const fn_req *req);
/* The trace id of the W3C traceparent header (32 lowercase hex digits), or
 * NULL when the request has none or it is malformed.  fngate logs it with
 * the request and with the pool's slow and failed queries. */
const char *fn_trace_id(const fn_req *req);
/* The raw query string, or "". */
const char *fn_query_string(const fn_req *req);
/* Arguments are the URL's, then those of an
 * application/x-www-form-urlencoded body, decoded.
 * The value of argument NAME (first occurrence), or NULL. */
const char *fn_arg(const fn_req *req, const char *name);
/* Every value of a repeated argument (?tag=a&tag=b): fills VALUES with up to
 * MAX of them in order and returns how many there are (which may be more
 * than MAX; VALUES may be NULL to count). */
size_t fn_arg_all(const fn_req *req, const char *name, const char **values, size_t max);
/* Arguments in order: fn_arg_count, then fn_arg_at(i) fills name/value. */
size_t fn_arg_count(const fn_req *req);
int fn_arg_at(const fn_req *req, size_t i, const char **name, const char **value);
/* Request header NAME, case-insensitive ("Content-Type"), or NULL. */
const char *fn_header(const fn_req *req, const char *name);
/* Request headers in order, names in canonical form ("Content-Type"). */
size_t fn_header_count(const fn_req *req);
int fn_header_at(const fn_req *req, size_t i, const char **name, const char **value);
/* A raw FastCGI parameter ("REMOTE_ADDR"), or NULL. */
const char *fn_param(const fn_req *req, const char *name);
/* Milliseconds left before this function's request_timeout ends the
 * request (0 once it has passed), or -1 when it has none. */
long long fn_deadline_ms(const fn_req *req);
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
int fn_error(fn_res *res, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* True once a response has been set. */
int fn_responded(const fn_res *res);

/* --- the database ------------------------------------------------------- */

/* Rows from fn_query: the JSON text the gateway's pool rendered (an array of
 * row objects), the command tag ("SELECT 3", "INSERT 0 1") and the row count.
 * Owned by the request and freed when it ends (fn_rows_free frees early). */
typedef struct fn_rows fn_rows;

/* Why the last fn_query of this request failed.  SQLSTATE is Postgres'
 * (23505 unique violation, 42P01 undefined table, ...) or one of fngate's:
 * FG001 pool timeout, FG002 result over max_result, FG003 bad request,
 * FG004 no database configured, FG005 the gateway's pool process is not
 * running, 08001 database unreachable, 08006 connection lost.  Strings are "" when absent; POSITION
 * is 0 when absent. */
typedef struct fn_db_err {
    const char *sqlstate;
    const char *message;
    const char *detail;
    const char *hint;
    int position;
} fn_db_err;

/* Runs SQL with bind parameters $1, $2, ... packed by jansson's json_pack
 * from FMT, which must give an array ("[sib]" for a string, an integer and a
 * bool; NULL or "" for none).  Each element's JSON type picks the parameter
 * type: string, integer, real, true/false, null, or an object or array sent
 * as JSON text.  Values never become part of the SQL text.  Returns the rows,
 * or NULL with the reason in fn_db_error(req). */
fn_rows *fn_query(fn_req *req, const char *sql, const char *fmt, ...);
/* The same with PARAMS, a JSON array (borrowed) or NULL. */
fn_rows *fn_query_json(fn_req *req, const char *sql, const json_t *params);
/* The last database error of this request (never NULL). */
const fn_db_err *fn_db_error(const fn_req *req);

/* A transaction: between fn_begin and fn_commit (or fn_rollback) the
 * request's queries run on one server connection held for this request.
 * 0 on success, -1 with fn_db_error set: FG003 for a nested fn_begin or a
 * commit/rollback without one, 25P02 when fn_commit finds the transaction
 * failed (a statement in it had an error: nothing was committed).  A
 * request that returns, crashes, times out or is killed without fn_commit
 * is rolled back, with a line in the gateway log. */
int fn_begin(fn_req *req);
int fn_commit(fn_req *req);
int fn_rollback(fn_req *req);

/* Rows returned (SELECT, RETURNING) or affected (INSERT/UPDATE/DELETE). */
long long fn_rows_count(const fn_rows *rows);
const char *fn_rows_tag(const fn_rows *rows);
/* The JSON text, "[...]"; LEN may be NULL. */
const char *fn_rows_text(const fn_rows *rows, size_t *len);
/* The rows parsed into a JSON array, on demand; owned by ROWS. */
json_t *fn_rows_json(fn_rows *rows);
void fn_rows_free(fn_rows *rows);

/* Sends the rows' JSON text as the response body without parsing it again;
 * the text moves to the response (fn_rows_text gives "" afterwards). */
int fn_send_rows(fn_res *res, int status, fn_rows *rows);
/* Sends the first row as a JSON object, or 404 {"error":"not found"}. */
int fn_send_row(fn_res *res, int status, fn_rows *rows);
/* {"error": message, "sqlstate": ..., "detail": ..., "hint": ...} for an
 * error of the function's own SQL (23505, 42P01, ...).  For a connection
 * (08...) or fngate (FG...) error the body is {"error": a generic message,
 * "sqlstate"}: libpq's text would tell the HTTP client where the database
 * is, so it goes to the gateway log (fn_log) instead. */
int fn_send_db_error(fn_res *res, int status, const fn_req *req);

/* Writes a line to the gateway's log, tagged with this function and pid;
 * called inside a request, the line starts "[req <request id>] ". */
void fn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif

#endif
