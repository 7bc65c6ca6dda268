/*
 * Unit tests for the pool's statement cache (gateway/pool/stmt.c) and its
 * first-keyword reader (gateway/pool/sqlword.c): LRU order and eviction,
 * unique names across clears, COPY found behind comments, and which
 * statements may be read whole.
 */
#include "config.h"

#include <check.h>

#include "check_main.h"
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

START_TEST(test_stmt_whole_policy)
{
    struct stmt_cache sc;
    struct stmt *a, *b;

    stmt_init(&sc, 4);
    a = stmt_add(&sc, "select small");
    /* unknown: never whole before STMT_WHOLE_RUNS measured results */
    ck_assert(!stmt_whole_ok(a, 1000));
    stmt_note(a, 0); /* an uncounted read teaches nothing */
    ck_assert_uint_eq(a->runs, 0);
    for (int i = 0; i < STMT_WHOLE_RUNS; i++) {
        ck_assert(!stmt_whole_ok(a, 1000));
        stmt_note(a, 400 + (size_t)i);
    }
    ck_assert(stmt_whole_ok(a, 1000));
    ck_assert_uint_eq(a->rx_max, 400 + STMT_WHOLE_RUNS - 1);
    ck_assert(!stmt_whole_ok(a, 399)); /* over this caller's notion of small */
    /* one large result is enough to read it row by row again */
    stmt_note(a, 1001);
    ck_assert(!stmt_whole_ok(a, 1000));
    for (int i = 0; i < 50; i++)
        stmt_note(a, 10);
    ck_assert(!stmt_whole_ok(a, 1000));
    /* a cut-off is for good */
    b = stmt_add(&sc, "select other");
    stmt_note(b, 10);
    stmt_note(b, 10);
    ck_assert(stmt_whole_ok(b, 1000));
    b->big = true;
    ck_assert(!stmt_whole_ok(b, 1000));
    stmt_clear(&sc);
}
END_TEST

START_TEST(test_stmt_bigset)
{
    struct stmt_cache sc, other;
    struct stmt_bigset bs;
    struct stmt *st[STMT_BIG_KEEP + 2];
    char sql[32];

    memset(&bs, 0, sizeof(bs));
    stmt_init(&sc, STMT_BIG_KEEP + 2);
    stmt_init(&other, 2);
    for (int i = 0; i < STMT_BIG_KEEP + 2; i++) {
        snprintf(sql, sizeof(sql), "select %d", i);
        st[i] = stmt_add(&sc, sql);
    }
    ck_assert(!stmt_bigset_has(&bs, st[0]));
    stmt_bigset_add(&bs, st[0]);
    stmt_bigset_add(&bs, st[0]); /* once only */
    ck_assert_uint_eq(bs.n, 1);
    ck_assert(stmt_bigset_has(&bs, st[0]));
    ck_assert(!stmt_bigset_has(&bs, st[1]));
    /* the same SQL in another session's cache (a new connection) is found */
    ck_assert(stmt_bigset_has(&bs, stmt_add(&other, "select 0")));
    ck_assert(!stmt_bigset_has(&bs, stmt_add(&other, "select 1")));
    /* past STMT_BIG_KEEP the oldest goes, the newest stay */
    for (int i = 1; i < STMT_BIG_KEEP + 1; i++)
        stmt_bigset_add(&bs, st[i]);
    ck_assert(!stmt_bigset_has(&bs, st[0]));
    for (int i = 1; i < STMT_BIG_KEEP + 1; i++)
        ck_assert(stmt_bigset_has(&bs, st[i]));
    ck_assert(!stmt_bigset_has(&bs, st[STMT_BIG_KEEP + 1]));
    stmt_clear(&sc);
    stmt_clear(&other);
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
    tcase_add_test(tc, test_stmt_whole_policy);
    tcase_add_test(tc, test_stmt_bigset);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(stmt_suite)
