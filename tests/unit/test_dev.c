/*
 * Unit tests for the pure parts of `fngate dev` (gateway/dev.c, devlog.c):
 * which file changes rebuild a function, and how a request-log line is
 * printed.  The loop itself (builds, nginx, the gateway, Ctrl-C) is tested
 * end to end in tests/integration/test_ops.py.
 */
#include "config.h"

#include "dev.h"
#include "devlog.h"

#include <check.h>

#include "check_main.h"

#include <stdlib.h>

START_TEST(source_names)
{
    static const char *const yes[] = {"handler.c", "Makefile",  "function.conf",
                                      "lib.h",     "data.json", "x.cc"};
    static const char *const no[] = {"handler",        "handler.o",  "libx.a", "handler.d",
                                     ".handler.c.swp", "handler.c~", "4913",   ".hidden",
                                     "handler.tmp",    "x.swp"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(dev_is_source(yes[i]), "%s should rebuild", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!dev_is_source(no[i]), "%s should not rebuild", no[i]);
}
END_TEST

START_TEST(request_lines)
{
    char out[1024];

    devlog_line("{\"function\":\"hello\",\"pid\":12,\"time\":\"2026-12-01T00:00:00.000Z\","
                "\"method\":\"GET\",\"path\":\"/x y\",\"status\":200,\"duration_ms\":0.812,"
                "\"queue_ms\":0.01,\"cold\":true,\"request_id\":\"ab\",\"trace_id\":null}",
                out, sizeof(out));
    ck_assert_str_eq(out, "GET /fn/hello/x y -> 200 in 0.812 ms (cold start)");
    devlog_line("{\"function\":\"users\",\"method\":\"POST\",\"path\":\"/a\\\"b\","
                "\"status\":503,\"duration_ms\":12,\"cold\":false}",
                out, sizeof(out));
    ck_assert_str_eq(out, "POST /fn/users/a\"b -> 503 in 12 ms");
    devlog_line("not json at all", out, sizeof(out));
    ck_assert_str_eq(out, "not json at all");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dev");
    TCase *tc = tcase_create("dev");

    tcase_add_test(tc, source_names);
    tcase_add_test(tc, request_lines);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
