/*
 * Unit tests for gateway/ceiling.c: which keys can be limited and what
 * "more than the limit" means for numbers, "none" values, protections and
 * path lists.
 */
#include "config.h"

#include "ceiling.h"

#include <check.h>

#include "check_main.h"

#include <stdlib.h>
#include <string.h>

START_TEST(kinds)
{
    ck_assert_int_eq(ceiling_kind("max_instances"), CEILING_MAX);
    ck_assert_int_eq(ceiling_kind("memory_limit"), CEILING_MAX0);
    ck_assert_int_eq(ceiling_kind("request_timeout"), CEILING_MAX0);
    ck_assert_int_eq(ceiling_kind("open_files"), CEILING_MAX);
    ck_assert_int_eq(ceiling_kind("sandbox"), CEILING_ON);
    ck_assert_int_eq(ceiling_kind("sandbox_read"), CEILING_PATHS);
    ck_assert_int_eq(ceiling_kind("sandbox_write"), CEILING_PATHS);
    ck_assert_int_eq(ceiling_kind("user"), CEILING_NONE);
    ck_assert_int_eq(ceiling_kind("env.X"), CEILING_NONE);
    ck_assert_int_eq(ceiling_kind(NULL), CEILING_NONE);
    ck_assert_ptr_nonnull(strstr(ceiling_keys(), "max_instances, "));
    ck_assert_ptr_eq(ceiling_keys(), ceiling_keys());
}
END_TEST

START_TEST(numbers)
{
    ck_assert(!ceiling_num_exceeds(CEILING_MAX, 16, 16));
    ck_assert(ceiling_num_exceeds(CEILING_MAX, 17, 16));
    ck_assert(!ceiling_num_exceeds(CEILING_MAX, 0, 16));
    /* 0 is "none": the most there is, unless the limit is none too. */
    ck_assert(ceiling_num_exceeds(CEILING_MAX0, 0, 1000));
    ck_assert(!ceiling_num_exceeds(CEILING_MAX0, 1000, 1000));
    ck_assert(ceiling_num_exceeds(CEILING_MAX0, 1001, 1000));
    ck_assert(!ceiling_num_exceeds(CEILING_MAX0, 0, 0));
    ck_assert(!ceiling_num_exceeds(CEILING_MAX0, INT64_MAX, 0));
}
END_TEST

START_TEST(protections)
{
    ck_assert(ceiling_bool_exceeds(false, true));
    ck_assert(!ceiling_bool_exceeds(true, true));
    ck_assert(!ceiling_bool_exceeds(false, false));
}
END_TEST

START_TEST(paths)
{
    const char *bad = NULL;
    size_t n = 0;

    ck_assert(!ceiling_paths_exceed("/srv/a /srv/a/b /opt", "/srv/a /opt", &bad, &n));
    ck_assert(!ceiling_paths_exceed("/srv/a", "/srv/a/", &bad, &n));
    ck_assert(!ceiling_paths_exceed("/anything", "/", &bad, &n));
    ck_assert(!ceiling_paths_exceed("", "", &bad, &n));
    ck_assert(!ceiling_paths_exceed(NULL, NULL, &bad, &n));
    ck_assert(ceiling_paths_exceed("/srv/a /srv/ab", "/srv/a", &bad, &n));
    ck_assert_int_eq((int)n, 7);
    ck_assert_int_eq(strncmp(bad, "/srv/ab", n), 0);
    ck_assert(ceiling_paths_exceed("/sr", "/srv", &bad, &n));
    ck_assert(ceiling_paths_exceed("/x", "", &bad, &n));
    ck_assert(ceiling_paths_exceed("  /x", NULL, &bad, &n));
    ck_assert_int_eq(strncmp(bad, "/x", n), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ceiling");
    TCase *tc = tcase_create("ceiling");

    tcase_add_test(tc, kinds);
    tcase_add_test(tc, numbers);
    tcase_add_test(tc, protections);
    tcase_add_test(tc, paths);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
