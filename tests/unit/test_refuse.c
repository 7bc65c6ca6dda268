/*
 * Unit tests for refuse.c, the supervisor's own 503 for connections no
 * instance will take: what happens to the descriptor when libevent runs out
 * of memory half-way through (libevent's allocator replaced by one that
 * fails on demand), and the bound on how many refused connections the
 * supervisor holds at once.
 */
#include "config.h"

#include "refuse.h"

#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

/* libevent's allocations, counted down: the one that finds it at 0 fails. */
static int fail_in = -1;

static void *test_malloc(size_t n)
{
    if (fail_in >= 0 && fail_in-- == 0)
        return NULL;
    return malloc(n);
}

static void *test_realloc(void *p, size_t n)
{
    if (fail_in >= 0 && fail_in-- == 0)
        return NULL;
    return realloc(p, n);
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void loop_once(struct event_base *base)
{
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Whatever allocation fails, FD is closed exactly once: the descriptor that
 * takes its number next (refuse_queued's next connection) survives. */
START_TEST(alloc_failure_closes_the_fd_once)
{
    int succeeded = 0, failed = 0;

    /* Some of libevent's allocations may fail without failing the call:
     * every one of the first few is tried. */
    for (int k = 0; k < 16; k++) {
        struct event_base *base = event_base_new();
        int sv[2], next[2], rc;

        ck_assert_ptr_nonnull(base);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        fail_in = k;
        rc = refuse_conn(base, sv[0], "{\"error\":\"x\"}", 1, 100);
        fail_in = -1;
        if (rc == 0) {
            succeeded++;
            close(sv[1]); /* EOF: the connection frees itself */
            loop_once(base);
            ck_assert_msg(
                !fd_open(sv[0]),
                "allocation %d failed: refuse_conn succeeded but fd %d stayed open after EOF", k,
                sv[0]);
            event_base_free(base);
            continue;
        }
        failed++;
        /* The next descriptor the supervisor opens, as it would at once. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, next), 0);
        loop_once(base);
        ck_assert_msg(fd_open(next[0]),
                      "allocation %d failed: fd %d (the next connection's) was closed too", k,
                      next[0]);
        ck_assert_msg(next[0] == sv[0] || !fd_open(sv[0]),
                      "allocation %d failed: fd %d was left open", k, sv[0]);
        close(next[0]);
        close(next[1]);
        close(sv[1]);
        event_base_free(base);
    }
    ck_assert_msg(succeeded && failed, "refuse_conn failed %d times, succeeded %d", failed,
                  succeeded);
}
END_TEST

static Suite *refuse_suite(void)
{
    Suite *s = suite_create("refuse");
    TCase *tc = tcase_create("memory");

    tcase_add_test(tc, alloc_failure_closes_the_fd_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    /* Before libevent allocates anything. */
    event_set_mem_functions(test_malloc, test_realloc, free);
    sr = srunner_create(refuse_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
