/*
 * Unit tests for fngate_test.h, the in-process handler harness, used the
 * way an author uses it: handlers written against fngate.h, called with
 * fn_test, asserted on status, headers and body.  The database test starts
 * a throwaway PostgreSQL (tests/unit/pgtmp.c) and sets DATABASE_URL, so the
 * handler's fn_query goes through the real fngate-pool the harness starts
 * ($FNGATE_POOL: the build's gateway/fngate-pool); it is skipped with one
 * line when no PostgreSQL server is installed.
 */
#include "config.h"

#include "fngate_test.h"
#include "pgtmp.h"

#include <check.h>

#include "check_main.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hello(fn_req *req, fn_res *res)
{
    const char *name = fn_arg(req, "name");
    fn_set_header(res, "X-Hello", "1");
    return fn_send_jsonf(res, 200, "{s:s}", "hello", name ? name : "world");
}

static int post_json(fn_req *req, fn_res *res)
{
    json_t *body;

    if (strcmp(fn_method(req), "POST") != 0)
        return fn_error(res, 405, "use POST");
    body = fn_body_json(req, res);
    if (!body)
        return 0; /* the SDK answered 400 */
    return fn_send_json_new(res, 201, json_pack("{s:O}", "got", body));
}

static int describe(fn_req *req, fn_res *res)
{
    const char *tags[4];
    size_t n = fn_arg_all(req, "tag", tags, 4);
    const char *trace = fn_header(req, "X-Trace");
    json_t *t = json_array();

    for (size_t i = 0; i < n && i < 4; i++)
        json_array_append_new(t, json_string(tags[i]));
    return fn_send_json_new(res, 200,
                            json_pack("{s:s,s:s,s:s,s:o,s:s?,s:s}", "method", fn_method(req),
                                      "path", fn_path(req), "name", fn_name(req), "tags", t,
                                      "trace", trace, "id", fn_request_id(req)));
}

static int silent(fn_req *req, fn_res *res)
{
    (void)req;
    (void)res;
    return 0;
}

static int query(fn_req *req, fn_res *res)
{
    fn_rows *rows = fn_query(req, "SELECT $1::int + 1 AS n, $2::text AS s", "[is]", 41, "x");
    if (!rows)
        return fn_send_db_error(res, 503, req);
    return fn_send_rows(res, 200, rows);
}

START_TEST(get_with_query)
{
    fn_test_res *r = fn_test(hello, "GET", "/fn/hello?name=ada", NULL, NULL, 0);
    size_t len;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fn_test_status(r), 200);
    ck_assert_str_eq(fn_test_body(r, &len), "{\"hello\":\"ada\"}");
    ck_assert_uint_eq(len, 15);
    ck_assert_str_eq(fn_test_header(r, "content-type"), "application/json");
    ck_assert_str_eq(fn_test_header(r, "Content-Length"), "15");
    ck_assert_str_eq(fn_test_header(r, "X-Hello"), "1");
    ck_assert_ptr_null(fn_test_header(r, "X-Nope"));
    fn_test_free(r);
    r = fn_test(hello, "GET", "", NULL, NULL, 0);
    ck_assert_str_eq(fn_test_body(r, NULL), "{\"hello\":\"world\"}");
    fn_test_free(r);
    fn_test_free(NULL);
}
END_TEST

START_TEST(post_json_body)
{
    static const char body[] = "{\"a\": [1, 2]}";
    fn_test_res *r = fn_test(post_json, "POST", "/fn/items", "Content-Type: application/json\n",
                             body, strlen(body));

    ck_assert_int_eq(fn_test_status(r), 201);
    ck_assert_str_eq(fn_test_body(r, NULL), "{\"got\":{\"a\":[1,2]}}");
    fn_test_free(r);
}
END_TEST

START_TEST(post_invalid_json)
{
    static const char body[] = "{\"a\": ";
    fn_test_res *r = fn_test(post_json, "POST", "/fn/items", "Content-Type: application/json", body,
                             strlen(body));

    ck_assert_int_eq(fn_test_status(r), 400);
    ck_assert_str_eq(
        fn_test_body(r, NULL),
        "{\"error\":\"invalid JSON: unexpected token near end of file at line 1 column "
        "6\"}");
    fn_test_free(r);
    r = fn_test(post_json, "GET", "/fn/items", NULL, NULL, 0);
    ck_assert_int_eq(fn_test_status(r), 405);
    fn_test_free(r);
}
END_TEST

START_TEST(path_args_headers_form)
{
    static const char form[] = "tag=b+c&tag=d";
    fn_test_res *r = fn_test(describe, "POST", "/fn/users/2/a%20b?tag=a",
                             "X-Trace: t1\r\nContent-Type: application/x-www-form-urlencoded\n",
                             form, strlen(form));
    json_t *j;

    ck_assert_int_eq(fn_test_status(r), 200);
    j = json_loads(fn_test_body(r, NULL), 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/2/a b");
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "users");
    ck_assert_str_eq(json_string_value(json_object_get(j, "trace")), "t1");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "tags")), 3);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "tags"), 1)), "b c");
    ck_assert(strncmp(json_string_value(json_object_get(j, "id")), "test-", 5) == 0);
    json_decref(j);
    fn_test_free(r);
}
END_TEST

START_TEST(name_without_prefix)
{
    fn_test_res *r;
    json_t *j;

    setenv("FNGATE_FUNCTION", "mine", 1);
    r = fn_test(describe, "GET", "/x?tag=1", NULL, NULL, 0);
    j = json_loads(fn_test_body(r, NULL), 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "mine");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/x");
    json_decref(j);
    fn_test_free(r);
    unsetenv("FNGATE_FUNCTION");
}
END_TEST

START_TEST(no_response_is_500)
{
    fn_test_res *r = fn_test(silent, "GET", "/fn/s", NULL, NULL, 0);

    ck_assert_int_eq(fn_test_status(r), 500);
    ck_assert_str_eq(fn_test_body(r, NULL),
                     "{\"error\":\"the function returned without a response\"}");
    fn_test_free(r);
}
END_TEST

START_TEST(body_over_max_is_413)
{
    fn_test_res *r;

    setenv("FNGATE_MAX_BODY", "4", 1);
    r = fn_test(post_json, "POST", "/fn/items", NULL, "12345", 5);
    ck_assert_int_eq(fn_test_status(r), 413);
    ck_assert_str_eq(fn_test_body(r, NULL),
                     "{\"error\":\"request body of 5 bytes exceeds max_body (4 bytes)\"}");
    fn_test_free(r);
    unsetenv("FNGATE_MAX_BODY");
}
END_TEST

START_TEST(bad_headers_give_null)
{
    ck_assert_ptr_null(fn_test(hello, "GET", "/fn/h", "no colon here", NULL, 0));
}
END_TEST

START_TEST(query_without_database)
{
    fn_test_res *r;

    unsetenv("DATABASE_URL");
    r = fn_test(query, "GET", "/fn/q", NULL, NULL, 0);
    ck_assert_int_eq(fn_test_status(r), 503);
    /* fn_send_db_error gives HTTP clients a generic text for FG and 08
     * errors (issue 7); the full one goes to the log. */
    ck_assert_str_eq(fn_test_body(r, NULL),
                     "{\"error\":\"no database is configured\",\"sqlstate\":\"FG004\"}");
    fn_test_free(r);
}
END_TEST

static struct pgtmp pg;

START_TEST(query_through_a_real_pool)
{
    fn_test_res *r;

    if (pgtmp_start(&pg) < 0) {
        if (pg.unavailable) {
            printf("SKIP query_through_a_real_pool: no PostgreSQL server binaries\n");
            return;
        }
        ck_abort_msg("pgtmp_start: %s", pg.err);
    }
    setenv("DATABASE_URL", pgtmp_conninfo(&pg), 1);
    r = fn_test(query, "GET", "/fn/q", NULL, NULL, 0);
    ck_assert_msg(fn_test_status(r) == 200, "status %d: %s", fn_test_status(r),
                  fn_test_body(r, NULL));
    ck_assert_str_eq(fn_test_body(r, NULL), "[{\"n\":42,\"s\":\"x\"}]");
    fn_test_free(r);
    /* The same pool and channel serve the next request. */
    r = fn_test(query, "GET", "/fn/q", NULL, NULL, 0);
    ck_assert_int_eq(fn_test_status(r), 200);
    fn_test_free(r);
    pgtmp_stop(&pg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("harness");
    TCase *db = tcase_create("database");
    char pool[PATH_MAX];

    /* The build's pool unless the caller chose one. */
    if (!getenv("FNGATE_POOL") && realpath("gateway/fngate-pool", pool))
        setenv("FNGATE_POOL", pool, 1);
    tcase_add_test(tc, get_with_query);
    tcase_add_test(tc, post_json_body);
    tcase_add_test(tc, post_invalid_json);
    tcase_add_test(tc, path_args_headers_form);
    tcase_add_test(tc, name_without_prefix);
    tcase_add_test(tc, no_response_is_500);
    tcase_add_test(tc, body_over_max_is_413);
    tcase_add_test(tc, bad_headers_give_null);
    tcase_add_test(tc, query_without_database);
    suite_add_tcase(s, tc);
    tcase_set_timeout(db, 60);
    tcase_add_test(db, query_through_a_real_pool);
    suite_add_tcase(s, db);
    return check_main_run(s);
}
