/*
 * Unit tests for the pool's statement cache (gateway/pool/stmt.c) and its
 * first-keyword reader (gateway/pool/sqlword.c): LRU order and eviction,
 * unique names across clears, and COPY found behind comments.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/sqlword.h"
#include "pool/stmt.h"

START_TEST(test_stmt_add_find)
{
    struct stmt_cache sc;
    struct stmt *a, *b;

    stmt_init(&sc, 4);
    ck_assert_ptr_null(stmt_find(&sc, "select 1"));
    a = stmt_add(&sc, "select 1");
    b = stmt_add(&sc, "select 2");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_ne(a->name, b->name);
    ck_assert_ptr_eq(stmt_find(&sc, "select 1"), a);
    ck_assert_ptr_eq(stmt_find(&sc, "select 2"), b);
    ck_assert_ptr_null(stmt_find(&sc, "select 3"));
    ck_assert_int_eq(sc.n, 2);
    stmt_clear(&sc);
    ck_assert_int_eq(sc.n, 0);
    ck_assert_ptr_null(stmt_find(&sc, "select 1"));
}
END_TEST

START_TEST(test_stmt_lru)
{
    struct stmt_cache sc;
    struct stmt *a, *b, *c;

    stmt_init(&sc, 3);
    a = stmt_add(&sc, "a");
    b = stmt_add(&sc, "b");
    c = stmt_add(&sc, "c");
    ck_assert(stmt_full(&sc));
    ck_assert_ptr_eq(stmt_oldest(&sc), a);
    stmt_touch(&sc, a);
    ck_assert_ptr_eq(stmt_oldest(&sc), b);
    stmt_remove(&sc, b);
    ck_assert(!stmt_full(&sc));
    ck_assert_ptr_eq(stmt_oldest(&sc), c);
    ck_assert_ptr_null(stmt_find(&sc, "b"));
    ck_assert_ptr_eq(stmt_find(&sc, "a"), a);
    stmt_clear(&sc);
    ck_assert_ptr_null(stmt_oldest(&sc));
}
END_TEST

/* Names stay unique for the connection's life: a statement prepared after
 * a clear must not reuse a name the server may still hold. */
START_TEST(test_stmt_names_unique_after_clear)
{
    struct stmt_cache sc;
    char first[24];

    stmt_init(&sc, 2);
    snprintf(first, sizeof(first), "%s", stmt_add(&sc, "x")->name);
    stmt_clear(&sc);
    ck_assert_str_ne(stmt_add(&sc, "x")->name, first);
    stmt_clear(&sc);
}
END_TEST

START_TEST(test_stmt_many_collisions)
{
    struct stmt_cache sc;
    char sql[32];

    stmt_init(&sc, 1); /* 3 buckets: long chains */
    sc.max = 1000;
    for (int i = 0; i < 500; i++) {
        snprintf(sql, sizeof(sql), "select %d", i);
        ck_assert_ptr_nonnull(stmt_add(&sc, sql));
    }
    for (int i = 0; i < 500; i += 7) {
        snprintf(sql, sizeof(sql), "select %d", i);
        ck_assert_ptr_nonnull(stmt_find(&sc, sql));
        stmt_remove(&sc, stmt_find(&sc, sql));
        ck_assert_ptr_null(stmt_find(&sc, sql));
    }
    ck_assert_int_eq(sc.n, 500 - 72);
    stmt_clear(&sc);
}
END_TEST

START_TEST(test_sqlword)
{
    ck_assert(sqlword_first_is(" /* a */ COPY t FROM stdin", "copy"));
    ck_assert(!sqlword_first_is("copyx", "copy"));
    ck_assert(!sqlword_first_is("/* unterminated", "copy"));
    ck_assert(sqlword_first_is("-- x\ncopy t to stdout", "COPY"));
    ck_assert(!sqlword_first_is("select 1", "copy"));
}
END_TEST

static Suite *stmt_suite(void)
{
    Suite *s = suite_create("pool_stmt");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_stmt_add_find);
    tcase_add_test(tc, test_stmt_lru);
    tcase_add_test(tc, test_stmt_names_unique_after_clear);
    tcase_add_test(tc, test_stmt_many_collisions);
    tcase_add_test(tc, test_sqlword);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stmt_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
