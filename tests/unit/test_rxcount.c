/*
 * Unit tests for the pool's count of bytes received per server socket
 * (gateway/pool/rxcount.c): recv() counts only armed sockets, the ceiling
 * stops reads just past it with EAGAIN, and reset, disarm and sockets out
 * of range behave.  The recv called here is the pool's own, as libpq's is.
 */
#include "config.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool/rxcount.h"

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void put(int fd, size_t n)
{
    char buf[4096];

    memset(buf, 'x', sizeof(buf));
    while (n > 0) {
        size_t k = n < sizeof(buf) ? n : sizeof(buf);
        ck_assert_int_eq(send(fd, buf, k, 0), (ssize_t)k);
        n -= k;
    }
}

START_TEST(test_rxcount_counts_armed_only)
{
    char buf[8192];
    int a[2], b[2];

    pair(a);
    pair(b);
    ck_assert_int_eq(rxcount_arm(a[0]), 0);
    put(a[1], 1000);
    put(b[1], 700);
    ck_assert_int_eq(recv(a[0], buf, 300, 0), 300);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 700);
    ck_assert_int_eq(recv(b[0], buf, sizeof(buf), 0), 700);
    ck_assert_uint_eq(rxcount_get(a[0]), 1000);
    ck_assert_uint_eq(rxcount_get(b[0]), 0); /* never armed */
    /* EAGAIN and peeks count nothing */
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), -1);
    ck_assert_int_eq(errno, EAGAIN);
    put(a[1], 10);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), MSG_PEEK), 10);
    ck_assert_uint_eq(rxcount_get(a[0]), 1000);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 10);
    ck_assert_uint_eq(rxcount_get(a[0]), 1010);
    rxcount_reset(a[0], 0);
    ck_assert_uint_eq(rxcount_get(a[0]), 0);
    rxcount_disarm(a[0]);
    put(a[1], 5);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 5);
    ck_assert_uint_eq(rxcount_get(a[0]), 0);
    ck_assert(!rxcount_over(a[0]));
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}
END_TEST

START_TEST(test_rxcount_ceiling)
{
    char buf[65536];
    size_t got = 0;
    ssize_t n;
    int a[2];

    pair(a);
    ck_assert_int_eq(rxcount_arm(a[0]), 0);
    rxcount_reset(a[0], 10000);
    put(a[1], 50000);
    /* reads stop one byte past the ceiling, whatever the caller asks for */
    while ((n = recv(a[0], buf, sizeof(buf), 0)) > 0)
        got += (size_t)n;
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_uint_eq(got, 10001);
    ck_assert_uint_eq(rxcount_get(a[0]), 10001);
    ck_assert(rxcount_over(a[0]));
    /* a reset lifts it: the rest is there, untouched */
    rxcount_reset(a[0], 0);
    ck_assert(!rxcount_over(a[0]));
    while ((n = recv(a[0], buf, sizeof(buf), 0)) > 0)
        got += (size_t)n;
    ck_assert_uint_eq(got, 50000);
    /* exactly at the ceiling is not over it */
    rxcount_reset(a[0], 100);
    put(a[1], 100);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 100);
    ck_assert(!rxcount_over(a[0]));
    rxcount_disarm(a[0]);
    close(a[0]);
    close(a[1]);
}
END_TEST

START_TEST(test_rxcount_ceil_keeps_the_count)
{
    char buf[4096];
    int a[2];

    pair(a);
    ck_assert_int_eq(rxcount_arm(a[0]), 0);
    rxcount_reset(a[0], 100);
    put(a[1], 300);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 101);
    ck_assert(rxcount_over(a[0]));
    /* a higher ceiling lets the next bytes in, counted on from 101 */
    rxcount_ceil(a[0], 150);
    ck_assert(!rxcount_over(a[0]));
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 50);
    ck_assert_uint_eq(rxcount_get(a[0]), 151);
    ck_assert(rxcount_over(a[0]));
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), -1);
    ck_assert_int_eq(errno, EAGAIN);
    rxcount_ceil(a[0], 0);
    ck_assert_int_eq(recv(a[0], buf, sizeof(buf), 0), 149);
    ck_assert_uint_eq(rxcount_get(a[0]), 300);
    rxcount_disarm(a[0]);
    close(a[0]);
    close(a[1]);
}
END_TEST

START_TEST(test_rxcount_range)
{
    char c;

    ck_assert_int_eq(rxcount_arm(-1), -1);
    ck_assert_int_eq(rxcount_arm(RXCOUNT_MAX_FD), -1);
    ck_assert_uint_eq(rxcount_get(-1), 0);
    ck_assert_uint_eq(rxcount_get(RXCOUNT_MAX_FD + 5), 0);
    ck_assert(!rxcount_over(RXCOUNT_MAX_FD));
    rxcount_disarm(-3);
    rxcount_reset(RXCOUNT_MAX_FD, 5);
    /* errors pass through as the C library's */
    ck_assert_int_eq(recv(-1, &c, 1, 0), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_int_eq(recv(RXCOUNT_MAX_FD + 100, &c, 1, 0), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

static Suite *rxcount_suite(void)
{
    Suite *s = suite_create("pool_rxcount");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_rxcount_counts_armed_only);
    tcase_add_test(tc, test_rxcount_ceiling);
    tcase_add_test(tc, test_rxcount_ceil_keeps_the_count);
    tcase_add_test(tc, test_rxcount_range);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(rxcount_suite)
