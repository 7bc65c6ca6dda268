/*
 * Unit tests for fn_json.c: every body fn_send_jsonf, fn_send_json and
 * fn_error write without jansson must be the bytes jansson's compact dump
 * writes for the same format, tree or message (the status and error text
 * too, where jansson refuses).  Each case runs both and compares; the
 * formats are the ones fngate.h documents (json_pack's), with escapes,
 * UTF-8 of every length, invalid UTF-8, modifiers, duplicate keys and
 * malformed formats, the last few of which fn_json.c hands to jansson.
 */
#include "config.h"

#include "fnsdk_res.h"
#include "fngate.h"

#include <check.h>

#include "check_main.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What jansson gives for J (NULL: json_pack failed with E): the status and
 * body fn_send_jsonf sent before fn_json.c wrote bodies itself. */
static void expect(const fn_res *res, int rc, json_t *j, const json_error_t *e, const char *what,
                   int line)
{
    char *want;
    const char *body;
    size_t len;

    if (j) {
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        ck_assert_msg(s != NULL, "line %d: jansson cannot dump %s", line, what);
        want = s;
        json_decref(j);
        ck_assert_msg(rc == 0, "line %d: %s: rc %d", line, what, rc);
        ck_assert_int_eq(fnsdk_res_status(res), 200);
    } else {
        char msg[256];
        json_t *err;
        snprintf(msg, sizeof(msg), "json_pack: %s", e->text);
        err = json_pack("{s:s}", "error", msg);
        want = json_dumps(err, JSON_COMPACT);
        json_decref(err);
        ck_assert_msg(fnsdk_res_status(res) == 500, "line %d: %s: status %d, want 500", line, what,
                      fnsdk_res_status(res));
    }
    body = fnsdk_res_body(res, &len);
    ck_assert_msg(len == strlen(want) && memcmp(body, want, len) == 0,
                  "line %d: %.40s: body %.*s, jansson %.300s", line, what,
                  (int)(len < 300 ? len : 300), body, want);
    ck_assert_msg(body[len] == '\0', "line %d: the body is not NUL-terminated", line);
    ck_assert_str_eq(fnsdk_res_content_type(res), "application/json");
    free(want);
}

/* SAME(FMT, ARGS...): fn_send_jsonf against json_pack_ex + json_dumps. */
#define SAME(fmt, ...)                                                                             \
    do {                                                                                           \
        json_error_t e_;                                                                           \
        json_t *j_ = json_pack_ex(&e_, 0, fmt, __VA_ARGS__);                                       \
        fn_res *r_ = fnsdk_res_new();                                                              \
        int rc_ = fn_send_jsonf(r_, 200, fmt, __VA_ARGS__);                                        \
        expect(r_, rc_, j_, &e_, fmt, __LINE__);                                                   \
        fnsdk_res_free(r_);                                                                        \
    } while (0)
#define SAME0(fmt)                                                                                 \
    do {                                                                                           \
        json_error_t e_;                                                                           \
        json_t *j_ = json_pack_ex(&e_, 0, fmt);                                                    \
        fn_res *r_ = fnsdk_res_new();                                                              \
        int rc_ = fn_send_jsonf(r_, 200, fmt);                                                     \
        expect(r_, rc_, j_, &e_, fmt, __LINE__);                                                   \
        fnsdk_res_free(r_);                                                                        \
    } while (0)

/* Strings that stress the escaping: every control character, quote,
 * backslash, slash, DEL, and UTF-8 of 2, 3 and 4 bytes (U+10FFFF too). */
static const char *const good[] = {
    "",
    "world",
    "quote\" back\\slash /slash",
    "\b\f\n\r\t",
    "\x01\x02\x03\x04\x05\x06\x07\x0b\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b"
    "\x1c\x1d\x1e\x1f",
    "del \x7f end",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf \xe2\x80\xa8",
    "<script>alert(1)</script>&amp;'",
};
/* Invalid UTF-8 as jansson sees it: a stray continuation byte, 0xff, an
 * overlong NUL and slash, a surrogate, past U+10FFFF, cut short. */
static const char *const bad[] = {
    "\x80",         "a\xffz",           "\xc0\x80",         "\xc1\xaf",         "\xe0\x80\xaf",
    "\xed\xa0\x80", "\xed\xbf\xbf",     "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82",
    "\xf0\x9f\x98", "\xf0\x8f\xbf\xbf", "\xe0\x9f\xbf",     "ok \xc2",
};

START_TEST(test_pack_strings)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        SAME("{s:s}", "hello", good[i]);
        SAME("{s:s}", good[i], "v");
        SAME("s", good[i]);
        SAME("[s,s]", good[i], good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SAME("{s:s}", "hello", bad[i]);
        SAME("{s:s}", bad[i], "v");
        SAME("[s]", bad[i]);
    }
}
END_TEST

START_TEST(test_pack_long_string)
{
    size_t n = 100000;
    char *s = malloc(n + 1);

    for (size_t i = 0; i < n; i++)
        s[i] = (char)(i % 7 == 0 ? '"' : i % 11 == 0 ? '\n' : 'a' + (char)(i % 26));
    s[n] = '\0';
    SAME("{s:s}", "big", s);
    free(s);
}
END_TEST

START_TEST(test_pack_scalars)
{
    SAME("{s:i, s:i, s:i, s:i}", "zero", 0, "neg", -42, "min", INT_MIN, "max", INT_MAX);
    SAME("{s:I, s:I, s:I}", "min", (json_int_t)LLONG_MIN, "max", (json_int_t)LLONG_MAX, "x",
         (json_int_t)-1);
    SAME("{s:b, s:b, s:b}", "t", 1, "f", 0, "other", 7);
    SAME("{s:n}", "nothing");
    SAME("i", 3);
    SAME("I", (json_int_t)1 << 40);
    SAME("b", 0);
    SAME0("n");
    SAME("{s:s, s:i}", "hello", "world", "n", 3);
}
END_TEST

START_TEST(test_pack_structure)
{
    SAME0("{}");
    SAME0("[]");
    SAME0("[[],{},[[]]]");
    SAME("{s:{s:[s,s]},s:[i,{s:n}]}", "a", "b", "c", "d", "e", 1, "f");
    SAME(" \t\n{ s : s , s : [ i , i ] }\n", "k", "v", "l", 1, 2);
    SAME("{s s}", "k", "v");
    SAME("[s i b n]", "x", 1, 0);
    SAME("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "a", "1", "b", "2", "c", "3", "d", "4", "e",
         "5", "f", "6", "g", "7", "h", "8", "i", "9", "j", "10");
    /* deeper than fn_json.c writes itself */
    SAME0("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]"
          "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
}
END_TEST

/* What fn_json.c leaves to jansson must still come out as jansson's. */
START_TEST(test_pack_jansson_cases)
{
    json_int_t big = 5;

    SAME("{s:i,s:i}", "a", 1, "a", 2); /* duplicate key */
    SAME("{s:i,s:i,s:i}", "a", 1, "b", 2, "a", 3);
    SAME("{s:s?}", "k", (const char *)NULL);
    SAME("{s:s*}", "k", (const char *)NULL);
    SAME("{s:s*, s:i}", "k", "v", "n", 1);
    SAME("{s:s#}", "k", "abcdef", 3);
    SAME("{s:s#}", "k", "a\0b", 3);
    SAME("{s:s%}", "k", "abcdef", (size_t)2);
    SAME("{s:s+}", "k", "ab", "cd");
    SAME("{s:o}", "k", json_integer(big));
    SAME("{s:f}", "k", 1.5);
    SAME("{s:f}", "k", 100.0);
    SAME("[f,f]", 0.1, -2e300);
    SAME("{s:s}", "k", (const char *)NULL); /* NULL string: jansson's error */
    SAME("{s:s}", (const char *)NULL, "v");
    SAME0("");
    SAME0("x");
    SAME("{s:s", "k", "v");
    SAME("{s}", "k");
    SAME0("[}");
    SAME0("{]");
    SAME("{s:s}}", "k", "v");
    SAME("{s:s} s", "k", "v", "w");
    SAME("{i:s}", 1, "v");
    SAME("[s][s]", "a", "b");
}
END_TEST

START_TEST(test_pack_many_keys)
{
    /* more keys than fn_json.c checks for duplicates: jansson takes it */
    SAME("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,"
         "s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}",
         "k0", 0, "k1", 1, "k2", 2, "k3", 3, "k4", 4, "k5", 5, "k6", 6, "k7", 7, "k8", 8, "k9", 9,
         "k10", 10, "k11", 11, "k12", 12, "k13", 13, "k14", 14, "k15", 15, "k16", 16, "k17", 17,
         "k18", 18, "k19", 19, "k20", 20, "k21", 21, "k22", 22, "k23", 23, "k24", 24, "k25", 25,
         "k26", 26, "k27", 27, "k28", 28, "k29", 29, "k30", 30, "k31", 31, "k32", 32, "k33", 33);
}
END_TEST

/* fn_send_json of TREE (borrowed) against json_dumps of it. */
static void same_tree(const json_t *tree, int line)
{
    fn_res *res = fnsdk_res_new();
    char *want = json_dumps(tree, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *body;
    size_t len;
    int rc = fn_send_json(res, 200, tree);

    body = fnsdk_res_body(res, &len);
    if (want) {
        ck_assert_msg(rc == 0 && fnsdk_res_status(res) == 200, "line %d: rc %d status %d", line, rc,
                      fnsdk_res_status(res));
        ck_assert_msg(len == strlen(want) && memcmp(body, want, len) == 0,
                      "line %d: body %.*s, jansson %.300s", line, (int)(len < 300 ? len : 300),
                      body, want);
    } else {
        ck_assert_int_eq(fnsdk_res_status(res), 500);
        ck_assert_str_eq(body, "{\"error\":\"response is not serialisable JSON\"}");
    }
    free(want);
    fnsdk_res_free(res);
}

START_TEST(test_tree)
{
    json_t *t, *o;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        t = json_pack("{s:s,s:[s,i,b,n,{}],s:{}}", good[i], good[i], "list", good[i], -7, 1, "o");
        same_tree(t, __LINE__);
        json_decref(t);
    }
    t = json_loads("{\"b\":1,\"a\":[1,2,{\"z\":null,\"y\":true}],\"c\":\"\\u0000x\"}", 0, NULL);
    same_tree(t, __LINE__);
    json_decref(t);
    /* insertion order kept after a key is replaced and another deleted */
    t = json_object();
    json_object_set_new(t, "first", json_integer(1));
    json_object_set_new(t, "second", json_integer(2));
    json_object_set_new(t, "third", json_integer(3));
    json_object_set_new(t, "first", json_string("again"));
    json_object_del(t, "second");
    json_object_setn_new(t, "nul\0key", 7, json_true());
    same_tree(t, __LINE__);
    json_decref(t);
    /* reals, and a tree holding one, go to jansson */
    t = json_pack("[f,{s:f},i]", 1.0, "r", 3.25e-5, 4);
    same_tree(t, __LINE__);
    json_decref(t);
    t = json_pack("{s:I}", "big", (json_int_t)LLONG_MIN);
    same_tree(t, __LINE__);
    json_decref(t);
    t = json_string("top");
    same_tree(t, __LINE__);
    json_decref(t);
    /* invalid UTF-8 let in by the _nocheck calls: jansson refuses to dump it */
    t = json_pack("{s:o}", "k", json_string_nocheck("\xff"));
    same_tree(t, __LINE__);
    json_decref(t);
    t = json_object();
    json_object_set_new_nocheck(t, "\xc0\x80", json_integer(1));
    same_tree(t, __LINE__);
    json_decref(t);
    /* deep, and a cycle (jansson's loop check answers) */
    t = json_array();
    o = t;
    for (int i = 0; i < 100; i++) {
        json_t *n = json_array();
        json_array_append_new(o, n);
        o = n;
    }
    same_tree(t, __LINE__);
    json_decref(t);
    t = json_object();
    json_object_set(t, "self", t);
    same_tree(t, __LINE__);
    json_object_del(t, "self");
    json_decref(t);
}
END_TEST

START_TEST(test_tree_null)
{
    fn_res *res = fnsdk_res_new();
    ck_assert_int_eq(fn_send_json(res, 200, NULL), 0);
    ck_assert_int_eq(fnsdk_res_status(res), 500);
    ck_assert_str_eq(fnsdk_res_body(res, NULL),
                     "{\"error\":\"response is not serialisable JSON\"}");
    fnsdk_res_free(res);
}
END_TEST

START_TEST(test_error)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        fn_res *res = fnsdk_res_new();
        json_t *j = json_pack("{s:s}", "error", good[i]);
        char *want = json_dumps(j, JSON_COMPACT);

        ck_assert_int_eq(fn_error(res, 418, "%s", good[i]), 0);
        ck_assert_int_eq(fnsdk_res_status(res), 418);
        ck_assert_str_eq(fnsdk_res_body(res, NULL), want);
        free(want);
        json_decref(j);
        fnsdk_res_free(res);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* json_pack refused it: no response, so the loop's 500 follows */
        fn_res *res = fnsdk_res_new();
        ck_assert_int_eq(fn_error(res, 400, "bad %s", bad[i]), -1);
        ck_assert_int_eq(fnsdk_res_status(res), 0);
        fnsdk_res_free(res);
    }
}
END_TEST

START_TEST(test_bad_status)
{
    fn_res *res = fnsdk_res_new();
    ck_assert_int_eq(fn_send_jsonf(res, 99, "{s:s}", "a", "b"), -1);
    ck_assert_int_eq(fnsdk_res_status(res), 0);
    ck_assert_int_eq(fn_send_jsonf(res, 1000, "{s:i,s:i}", "a", 1, "a", 2), -1);
    ck_assert_int_eq(fnsdk_res_status(res), 0);
    fnsdk_res_free(res);
}
END_TEST

/* fn_res keeps short content types inline and longer ones on the heap:
 * either way the last one set is the one sent. */
START_TEST(test_content_type)
{
    char longct[300];
    fn_res *res = fnsdk_res_new();

    memset(longct, 'x', sizeof(longct));
    memcpy(longct, "application/", 12);
    longct[sizeof(longct) - 1] = '\0';
    ck_assert_int_eq(fn_send(res, 200, longct, "a", 1), 0);
    ck_assert_str_eq(fnsdk_res_content_type(res), longct);
    ck_assert_int_eq(fn_send_jsonf(res, 201, "{s:i}", "n", 1), 0);
    ck_assert_str_eq(fnsdk_res_content_type(res), "application/json");
    ck_assert_int_eq(fn_send(res, 202, longct, "b", 1), 0);
    ck_assert_str_eq(fnsdk_res_content_type(res), longct);
    longct[100] = '\n';
    ck_assert_int_eq(fn_send(res, 200, longct, "c", 1), -1);
    ck_assert_int_eq(fn_send(res, 200, "text/plain\r\nX: y", "c", 1), -1);
    ck_assert_int_eq(fnsdk_res_status(res), 202);
    {
        size_t len;
        const char *b = fnsdk_res_body(res, &len);
        ck_assert_uint_eq(len, 1);
        ck_assert_int_eq(b[0], 'b');
    }
    fnsdk_res_reset(res);
    ck_assert_str_eq(fnsdk_res_content_type(res), "");
    ck_assert_int_eq(fn_send(res, 200, NULL, "d", 1), 0);
    ck_assert_str_eq(fnsdk_res_content_type(res), "application/octet-stream");
    fnsdk_res_free(res);
    fnsdk_res_free(NULL);
}
END_TEST

static Suite *fnjson_suite(void)
{
    Suite *s = suite_create("fn_json");
    TCase *tc = tcase_create("pack");

    tcase_add_test(tc, test_pack_strings);
    tcase_add_test(tc, test_pack_long_string);
    tcase_add_test(tc, test_pack_scalars);
    tcase_add_test(tc, test_pack_structure);
    tcase_add_test(tc, test_pack_jansson_cases);
    tcase_add_test(tc, test_pack_many_keys);
    suite_add_tcase(s, tc);
    tc = tcase_create("tree");
    tcase_add_test(tc, test_tree);
    tcase_add_test(tc, test_tree_null);
    suite_add_tcase(s, tc);
    tc = tcase_create("error");
    tcase_add_test(tc, test_error);
    tcase_add_test(tc, test_bad_status);
    tcase_add_test(tc, test_content_type);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(fnjson_suite)
