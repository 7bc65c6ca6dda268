/*
 * fngate_test.h: unit-test a handler in-process, no FastCGI, no gateway.
 *
 *     #include <fngate_test.h>
 *     #include "handler.c"          // FN_MAIN expands to nothing here
 *
 *     int main(void)
 *     {
 *         fn_test_res *r = fn_test(hello, "GET", "/fn/hello?name=ada", NULL, NULL, 0);
 *         assert(fn_test_status(r) == 200);
 *         assert(strcmp(fn_test_body(r, NULL), "{\"hello\":\"ada\"}") == 0);
 *         fn_test_free(r);
 *     }
 *
 * fn_test runs HANDLER on one request built in memory and returns what it
 * answered.  URI is "/fn/<name>[/path][?query]" or just "[/path][?query]"
 * (then the name is $FNGATE_FUNCTION, else "test"); the handler sees the
 * same method, path, name, arguments (URL and form body), headers and body
 * as behind nginx, and a request id "test-<n>".  HEADERS is NULL or
 * "Name: value" lines separated by '\n'.  A handler that does not respond
 * gets the SDK's 500, a body over $FNGATE_MAX_BODY (default 1 MiB) the 413.
 *
 * The database: with DATABASE_URL set, the first fn_test starts a real
 * fngate-pool ($FNGATE_POOL, else the one make install put next to fngate,
 * else the first on $PATH) and
 * hands it the connection string, so fn_query in the handler runs against
 * that database exactly as under the gateway (through the pool, as bind
 * parameters, JSON rendered by the pool).  The pool stops when the test
 * program exits.  Without DATABASE_URL, fn_query fails with FG004.
 *
 * Ownership: the fn_test_res and every string it returns belong to the
 * caller until fn_test_free (fn_test_free(NULL) is a no-op).  fn_test
 * returns NULL only when out of memory.
 */
#ifndef FNGATE_TEST_H
#define FNGATE_TEST_H

#include <fngate.h>

/* The test program has its own main(): a handler's FN_MAIN is empty. */
#undef FN_MAIN
#define FN_MAIN(handler)

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fn_test_res fn_test_res;

fn_test_res *fn_test(fn_handler handler, const char *method, const char *uri, const char *headers,
                     const void *body, size_t len);
/* The status the handler answered (200, 404, ...). */
int fn_test_status(const fn_test_res *r);
/* The body, NUL-terminated (LEN may be NULL); never NULL. */
const char *fn_test_body(const fn_test_res *r, size_t *len);
/* Response header NAME, any case ("content-type" included), or NULL. */
const char *fn_test_header(const fn_test_res *r, const char *name);
void fn_test_free(fn_test_res *r);

#ifdef __cplusplus
}
#endif

#endif
