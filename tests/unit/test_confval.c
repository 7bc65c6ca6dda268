/*
 * Unit tests for gateway/confval.c: what counts as a duration, a size and a
 * function name, including every overflow, since a value that wraps would
 * silently become another limit.
 */
#include "config.h"

#include "confval.h"

#include <check.h>

#include "check_main.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- durations ------------------------------------------------------------ */

START_TEST(duration_valid)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"0", 0},
        {"0ms", 0},
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 300000},
        {"1h", 3600000},
        {"7", 7000},
        {"007s", 7000},
        {"1ms", 1},
        {"9223372036854775807ms", INT64_MAX},
        {"9223372036854775s", INT64_C(9223372036854775000)},
        {"2562047788015h", INT64_C(2562047788015) * 3600000},
    };

    for (size_t i = 0; i < N(ok); i++) {
        int64_t ms = -1;
        ck_assert_msg(confval_parse_duration(ok[i].s, &ms) == 0, "'%s' refused", ok[i].s);
        ck_assert_int_eq(ms, ok[i].ms);
    }
}
END_TEST

START_TEST(duration_invalid)
{
    static const char *const bad[] = {
        "",   "5x",   "-5s",  "-1", "+5",   "5 s",  " 5s", "5s ", "1.5s", "s",    "ms",  "5S",
        "5H", "5sec", "5mss", "5d", "5ms5", "0x10", "5 ",  "５s", "5\ts", "1e3s", "5m0", "h1",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t ms = 42;
        ck_assert_msg(confval_parse_duration(bad[i], &ms) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(ms, 42); /* untouched on failure */
    }
    ck_assert_int_eq(confval_parse_duration(NULL, &(int64_t){0}), -1);
}
END_TEST

START_TEST(duration_overflow)
{
    static const char *const bad[] = {
        "9223372036854775808ms", "9223372036854776s",    "153722867280913m",
        "2562047788016h",        "99999999999999999999", "99999999999999999999999999999999ms",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t ms = 42;
        ck_assert_msg(confval_parse_duration(bad[i], &ms) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(ms, 42);
    }
    /* The largest of each unit still fits. */
    int64_t ms;
    ck_assert_int_eq(confval_parse_duration("153722867280912m", &ms), 0);
    ck_assert_int_eq(ms, INT64_C(153722867280912) * 60000);
}
END_TEST

/* ---- sizes ---------------------------------------------------------------- */

START_TEST(size_valid)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"512K", 512 * 1024},
        {"512k", 512 * 1024},
        {"256M", INT64_C(256) << 20},
        {"256m", INT64_C(256) << 20},
        {"1G", INT64_C(1) << 30},
        {"1g", INT64_C(1) << 30},
        {"0K", 0},
        {"0010", 10},
        {"9223372036854775807", INT64_MAX},
        {"9007199254740991K", INT64_C(9007199254740991) << 10},
        {"8589934591G", INT64_C(8589934591) << 30},
    };

    for (size_t i = 0; i < N(ok); i++) {
        int64_t b = -1;
        ck_assert_msg(confval_parse_size(ok[i].s, &b) == 0, "'%s' refused", ok[i].s);
        ck_assert_int_eq(b, ok[i].bytes);
    }
}
END_TEST

START_TEST(size_invalid)
{
    static const char *const bad[] = {
        "",    "K",   "1KB",  "1kb",  "1MB", "1T",  "1B", "-1",  "+1",  "1 K",
        " 1K", "1K ", "1.5M", "0x10", "1e3", "1KK", "M1", "1Ki", "1Gb", "one",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t b = 42;
        ck_assert_msg(confval_parse_size(bad[i], &b) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(b, 42);
    }
    ck_assert_int_eq(confval_parse_size(NULL, &(int64_t){0}), -1);
}
END_TEST

START_TEST(size_overflow)
{
    static const char *const bad[] = {
        "9223372036854775808", "9007199254740992K",        "8796093022208M",
        "8589934592G",         "99999999999999999999999G",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t b = 42;
        ck_assert_msg(confval_parse_size(bad[i], &b) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(b, 42);
    }
}
END_TEST

/* ---- names ---------------------------------------------------------------- */

START_TEST(name_valid)
{
    static const char *const ok[] = {
        "a",  "0",    "hello",    "hello-world", "a_b",      "9lives", "a-",
        "a_", "a--b", "gateway2", "defaults_",   "function", "x0-_9",
    };
    static const char *const bad[] = {
        "",       "-a",   "_a",   "Hello",       "hEllo", "HELLO", "a.b",     "a/b",
        "../x",   ".",    "..",   "a b",         " a",    "a ",    "gateway", "defaults",
        "limits", "a\tb", "a\nb", "caf\xc3\xa9", "a:b",   "a[b]",  "a;b",     "a=b",
    };

    for (size_t i = 0; i < N(ok); i++)
        ck_assert_msg(confval_name_valid(ok[i]), "'%s' refused", ok[i]);
    for (size_t i = 0; i < N(bad); i++)
        ck_assert_msg(!confval_name_valid(bad[i]), "'%s' accepted", bad[i]);
    ck_assert(!confval_name_valid(NULL));
}
END_TEST

START_TEST(name_length)
{
    char name[80];

    memset(name, 'a', sizeof(name));
    name[63] = '\0';
    ck_assert(confval_name_valid(name));
    name[63] = 'z';
    name[64] = '\0';
    ck_assert_uint_eq(strlen(name), 64);
    ck_assert(confval_name_valid(name));
    name[64] = '9';
    name[65] = '\0';
    ck_assert_uint_eq(strlen(name), 65);
    ck_assert(!confval_name_valid(name));
    name[0] = '-';
    name[64] = '\0';
    ck_assert(!confval_name_valid(name));
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *confval_suite(void)
{
    Suite *s = suite_create("confval");
    TCase *tc;

    tc = tcase_create("duration");
    tcase_add_test(tc, duration_valid);
    tcase_add_test(tc, duration_invalid);
    tcase_add_test(tc, duration_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("size");
    tcase_add_test(tc, size_valid);
    tcase_add_test(tc, size_invalid);
    tcase_add_test(tc, size_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("name");
    tcase_add_test(tc, name_valid);
    tcase_add_test(tc, name_length);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(confval_suite)
