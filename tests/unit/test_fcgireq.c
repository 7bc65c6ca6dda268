/*
 * Unit tests for gateway/fcgireq.c, byte for byte: what a responder (the
 * SDK under libfcgi, the status server) must accept is what nginx sends, so
 * the framing, padding, long name-value lengths and stream splitting are
 * asserted against the FastCGI 1.0 layout rather than against another copy
 * of the writer.
 */
#include "config.h"

#include "fcgireq.h"

#include <check.h>

#include "check_main.h"

#include <stdlib.h>
#include <string.h>

START_TEST(small_request_bytes)
{
    static const unsigned char want[] = {
        /* BEGIN_REQUEST, id 0x0102, 8 bytes: role responder, KEEP_CONN */
        1, 1, 1, 2, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,
        /* PARAMS: A=bc (1+1+1+2 = 5 bytes, 3 of padding), then the end */
        1, 4, 1, 2, 0, 5, 3, 0, 1, 2, 'A', 'b', 'c', 0, 0, 0, 1, 4, 1, 2, 0, 0, 0, 0,
        /* STDIN: "xy" (6 of padding), then the end */
        1, 5, 1, 2, 0, 2, 6, 0, 'x', 'y', 0, 0, 0, 0, 0, 0, 1, 5, 1, 2, 0, 0, 0, 0};
    struct fcgireq *r = fcgireq_new(0x0102, true);

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fcgireq_param(r, "A", "bc"), 0);
    ck_assert_int_eq(fcgireq_finish(r, "xy", 2), 0);
    ck_assert_uint_eq(r->n, sizeof(want));
    ck_assert_mem_eq(r->p, want, sizeof(want));
    fcgireq_free(r);
}
END_TEST

START_TEST(no_keep_conn_no_params_no_body)
{
    static const unsigned char want[] = {1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                         1, 4, 0, 1, 0, 0, 0, 0, 1, 5, 0, 1, 0, 0, 0, 0};
    struct fcgireq *r = fcgireq_new(1, false);

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fcgireq_finish(r, NULL, 0), 0);
    ck_assert_uint_eq(r->n, sizeof(want));
    ck_assert_mem_eq(r->p, want, sizeof(want));
    fcgireq_free(r);
    fcgireq_free(NULL);
}
END_TEST

/* A value of 128 bytes or more takes a 4-byte length with the top bit set;
 * a name given with its length may hold any byte. */
START_TEST(long_value_length)
{
    char value[200];
    struct fcgireq *r = fcgireq_new(1, false);
    const unsigned char *c;

    memset(value, 'v', sizeof(value));
    ck_assert_int_eq(fcgireq_param_n(r, "N=", 1, value, sizeof(value)), 0);
    ck_assert_int_eq(fcgireq_finish(r, NULL, 0), 0);
    c = r->p + 16; /* the PARAMS record */
    ck_assert_int_eq(c[1], 4);
    ck_assert_uint_eq(((size_t)c[4] << 8) | c[5], 1 + 4 + 1 + 200);
    ck_assert_int_eq(c[6], (8 - (1 + 4 + 1 + 200) % 8) % 8);
    ck_assert_int_eq(c[8], 1);
    ck_assert_int_eq(c[9], 0x80);
    ck_assert_int_eq(c[10], 0);
    ck_assert_int_eq(c[11], 0);
    ck_assert_int_eq(c[12], 200);
    ck_assert_int_eq(c[13], 'N');
    ck_assert_int_eq(c[14], 'v');
    fcgireq_free(r);
}
END_TEST

/* A body over 64K-1 bytes is split into full records, the rest, and the
 * empty record that ends the stream. */
START_TEST(large_body_is_split)
{
    size_t len = 70000, off = 16 + 8; /* BEGIN_REQUEST, the empty PARAMS */
    char *body = malloc(len);
    struct fcgireq *r = fcgireq_new(7, false);
    size_t want[] = {65535, 70000 - 65535, 0}, got = 0;

    ck_assert_ptr_nonnull(body);
    memset(body, 'b', len);
    ck_assert_int_eq(fcgireq_finish(r, body, len), 0);
    for (size_t i = 0; i < 3; i++) {
        const unsigned char *h = r->p + off;
        size_t clen = ((size_t)h[4] << 8) | h[5];
        ck_assert_int_eq(h[1], 5);
        ck_assert_int_eq(h[3], 7);
        ck_assert_uint_eq(clen, want[i]);
        ck_assert_uint_eq((8 + clen + h[6]) % 8, 0);
        got += clen;
        off += 8 + clen + h[6];
    }
    ck_assert_uint_eq(got, len);
    ck_assert_uint_eq(off, r->n);
    fcgireq_free(r);
    free(body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fcgireq");
    TCase *tc = tcase_create("fcgireq");

    tcase_add_test(tc, small_request_bytes);
    tcase_add_test(tc, no_keep_conn_no_params_no_body);
    tcase_add_test(tc, long_value_length);
    tcase_add_test(tc, large_body_is_split);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
