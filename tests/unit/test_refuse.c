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
        rc = refuse_conn(base, sv[0], "a", "{\"error\":\"x\"}", 1, 100);
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

/* The peer's view of one refused connection: 0 still held (nothing to
 * read yet), 1 closed without an answer (EOF), -1 anything else. */
static int peer_state(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return n == 0 ? 1 : -1;
}

/* A client that connects and sends nothing costs the supervisor a
 * descriptor until the deadline: past a function's cap (half the gateway's,
 * a quarter of RLIMIT_NOFILE) its oldest are closed, so the supervisor never
 * holds more. */
START_TEST(refused_connections_are_capped)
{
    struct rlimit rl = {200, 200};
    struct event_base *base;
    int peers[100];

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    for (int i = 0; i < 100; i++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(refuse_conn(base, sv[0], "a", "{\"error\":\"x\"}", 1, 0), 0);
        peers[i] = sv[1];
        loop_once(base);
    }
    /* Cap 50, 25 for a function: the 75 oldest were closed unanswered, the
     * 25 newest wait (this process holds the client ends too). */
    ck_assert_int_eq(refuse_cap(), 50);
    ck_assert_int_eq(refuse_fn_cap(), 25);
    for (int i = 0; i < 100; i++)
        ck_assert_msg(peer_state(peers[i]) == (i < 75 ? 1 : 0), "connection %d: state %d", i,
                      peer_state(peers[i]));
    for (int i = 0; i < 100; i++)
        close(peers[i]);
    loop_once(base);
    event_base_free(base);
}
END_TEST

/* One function's flood closes only its own: B's connections, older than
 * all of A's, still wait for their requests. */
START_TEST(a_flood_closes_only_its_own_function)
{
    struct rlimit rl = {200, 200};
    struct event_base *base;
    int a[100], b[10];

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    for (int i = 0; i < 110; i++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(refuse_conn(base, sv[0], i < 10 ? "b" : "a", "{\"error\":\"x\"}", 1, 0),
                         0);
        *(i < 10 ? &b[i] : &a[i - 10]) = sv[1];
        loop_once(base);
    }
    for (int i = 0; i < 10; i++)
        ck_assert_msg(peer_state(b[i]) == 0, "b's connection %d: state %d", i, peer_state(b[i]));
    for (int i = 0; i < 100; i++)
        ck_assert_msg(peer_state(a[i]) == (i < 75 ? 1 : 0), "a's connection %d: state %d", i,
                      peer_state(a[i]));
    for (int i = 0; i < 100; i++)
        close(a[i]);
    for (int i = 0; i < 10; i++)
        close(b[i]);
    loop_once(base);
    event_base_free(base);
}
END_TEST

/* Many functions under their own caps still meet the gateway's: at it, the
 * function holding the most gives up its oldest, so all keep a share. */
START_TEST(many_functions_share_the_gateways_cap)
{
    struct rlimit rl = {300, 300};
    struct event_base *base;
    int peers[10][12];
    char name[8];
    int held = 0;

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    for (int i = 0; i < 12; i++) {
        for (int f = 0; f < 10; f++) {
            int sv[2];
            snprintf(name, sizeof(name), "f%d", f);
            ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
            ck_assert_int_eq(refuse_conn(base, sv[0], name, "{\"error\":\"x\"}", 1, 0), 0);
            peers[f][i] = sv[1];
        }
        loop_once(base);
    }
    /* Cap 75 for the gateway; each function keeps 7 or 8, its newest. */
    for (int f = 0; f < 10; f++) {
        int kept = 0;
        for (int i = 0; i < 12; i++) {
            int st = peer_state(peers[f][i]);
            ck_assert_int_ne(st, -1);
            kept += st == 0;
        }
        ck_assert_msg(kept >= 7 && kept <= 8, "function f%d kept %d", f, kept);
        for (int i = 0; i < 12 - kept; i++)
            ck_assert_int_eq(peer_state(peers[f][i]), 1);
        held += kept;
    }
    ck_assert_int_eq(held, 75);
    for (int f = 0; f < 10; f++)
        for (int i = 0; i < 12; i++)
            close(peers[f][i]);
    loop_once(base);
    event_base_free(base);
}
END_TEST

/* A connection that is answered (or goes away) gives its room back: a
 * steady stream of well-behaved requests never sheds anything. */
START_TEST(answered_connections_give_their_room_back)
{
    static const unsigned char req[] = {
        1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, /* BEGIN_REQUEST, responder */
        1, 4, 0, 1, 0, 0, 0, 0,                         /* empty PARAMS */
        1, 5, 0, 1, 0, 0, 0, 0,                         /* empty STDIN */
    };
    struct rlimit rl = {64, 64};
    struct event_base *base;

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    base = event_base_new();
    for (int i = 0; i < 100; i++) {
        int sv[2];
        char buf[512];
        ssize_t n;
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        ck_assert_int_eq(write(sv[1], req, sizeof(req)), (ssize_t)sizeof(req));
        ck_assert_int_eq(refuse_conn(base, sv[0], "a", "{\"error\":\"x\"}", 1, 0), 0);
        loop_once(base);
        n = read(sv[1], buf, sizeof(buf) - 1);
        ck_assert_int_gt(n, 8);
        buf[n] = '\0';
        ck_assert_ptr_nonnull(memmem(buf, (size_t)n, "Status: 503", 11));
        loop_once(base);
        ck_assert_int_eq(peer_state(sv[1]), 1); /* answered, then closed */
        close(sv[1]);
    }
    event_base_free(base);
}
END_TEST

static Suite *refuse_suite(void)
{
    Suite *s = suite_create("refuse");
    TCase *tc = tcase_create("memory");

    tcase_add_test(tc, alloc_failure_closes_the_fd_once);
    suite_add_tcase(s, tc);
    tc = tcase_create("cap");
    tcase_add_test(tc, refused_connections_are_capped);
    tcase_add_test(tc, a_flood_closes_only_its_own_function);
    tcase_add_test(tc, many_functions_share_the_gateways_cap);
    tcase_add_test(tc, answered_connections_give_their_room_back);
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
