/*
 * Unit tests for backlog.c, the queue police: the stamps it keeps for the
 * connections it sees waiting, and its answers through real unix sockets
 * (503 with Retry-After from the head of the queue, at queue_timeout and
 * beyond queue_size; younger connections left alone).
 */
#include "config.h"

#include "backlog.h"
#include "refuse.h"
#include "sock.h"

#include <check.h>

#include "check_main.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define MS (1000000LL)

static void setup(void)
{
    testutil_dir_make();
}

static void teardown(void)
{
    sock_diag_close();
    testutil_dir_remove();
}

static void root_setup(void)
{
    testutil_root_make("test_backlog");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

/* ---- stamps ---------------------------------------------------------------- */

START_TEST(track_stamps_first_sight)
{
    struct backlog *b = backlog_new("f");
    const uint32_t a[] = {11, 12}, c[] = {11, 12, 13}, d[] = {13, 14};

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(backlog_track(b, a, 2, 1000 * MS, 100), 0);
    /* 11 and 12 keep their stamp, 13 is new. */
    ck_assert_int_eq(backlog_track(b, c, 3, 1099 * MS, 100), 0);
    ck_assert_int_eq(backlog_track(b, c, 3, 1100 * MS, 100), 2);
    /* The head left; 13 was stamped at 1099, 14 is new at 1150. */
    ck_assert_int_eq(backlog_track(b, d, 2, 1150 * MS, 100), 0);
    ck_assert_int_eq(backlog_track(b, d, 2, 1199 * MS, 100), 1);
    ck_assert_int_eq(backlog_track(b, d, 2, 1250 * MS, 100), 2);
    /* No queue_timeout: nothing expires. */
    ck_assert_int_eq(backlog_track(b, d, 2, 9999 * MS, 0), 0);
    backlog_free(b);
    backlog_free(NULL);
}
END_TEST

START_TEST(track_gone_client_inherits)
{
    struct backlog *b = backlog_new("f");
    const uint32_t a[] = {5}, c[] = {5, 0, 7};

    ck_assert_int_eq(backlog_track(b, a, 1, 0, 10), 0);
    /* 0 (a client that went away) takes 5's stamp; 7 is new. */
    ck_assert_int_eq(backlog_track(b, c, 3, 10 * MS, 10), 2);
    backlog_free(b);
}
END_TEST

START_TEST(track_everything_new_after_a_gap)
{
    struct backlog *b = backlog_new("f");
    const uint32_t a[] = {1, 2, 3}, c[] = {8, 9};

    ck_assert_int_eq(backlog_track(b, a, 3, 0, 10), 0);
    /* None seen before (the queue drained in between): all stamped now. */
    ck_assert_int_eq(backlog_track(b, c, 2, 50 * MS, 10), 0);
    ck_assert_int_eq(backlog_track(b, c, 2, 60 * MS, 10), 2);
    backlog_free(b);
}
END_TEST

START_TEST(track_grows)
{
    struct backlog *b = backlog_new("f");
    static uint32_t inos[5000];

    for (int i = 0; i < 5000; i++)
        inos[i] = (uint32_t)(100 + i);
    ck_assert_int_eq(backlog_track(b, inos, 100, 0, 10), 0);
    ck_assert_int_eq(backlog_track(b, inos, 5000, 5 * MS, 10), 0);
    ck_assert_int_eq(backlog_track(b, inos, 5000, 10 * MS, 10), 100);
    ck_assert_int_eq(backlog_track(b, inos, 5000, 15 * MS, 10), 5000);
    backlog_free(b);
}
END_TEST

/* ---- through sockets ------------------------------------------------------- */

static int listen_at(const char *name)
{
    char path[PATH_MAX + 64], err[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", testutil_dir, name);
    fd = sock_listen(path, backlog_listen_size(4), 0600, (gid_t)-1, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    return fd;
}

/* A client that has sent a whole (minimal) FastCGI request: FCGI_STDIN's
 * closing empty record is what the answer waits for. */
static int client(const char *name)
{
    struct sockaddr_un sa;
    static const unsigned char end_stdin[8] = {1, 5, 0, 1, 0, 0, 0, 0};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", testutil_dir, name),
                     (int)sizeof(sa.sun_path));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(write(fd, end_stdin, sizeof(end_stdin)), (ssize_t)sizeof(end_stdin));
    return fd;
}

static uint32_t ino_of(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    return (uint32_t)st.st_ino;
}

/* Runs BASE until FD has an answer (or 2 s); returns it (static buffer). */
static const char *answer(struct event_base *base, int fd)
{
    static char buf[4096];
    size_t len = 0;

    for (int i = 0; i < 200; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (poll(&p, 1, 10) <= 0)
            continue;
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    /* Skip the 8-byte record header; NULs in it would end the string. */
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    return buf;
}

static bool answered(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

START_TEST(peek_lists_clients_head_first)
{
    int lfd = listen_at("p.sock"), c[3], n = 0;
    uint32_t inos[8];

    for (int i = 0; i < 3; i++)
        c[i] = client("p.sock");
    ck_assert_int_eq(sock_queue_peek(lfd, inos, 8, &n), 3);
    ck_assert_int_eq(n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(inos[i], ino_of(c[i]));
    {
        int a = accept(lfd, NULL, NULL);
        ck_assert_uint_eq(sock_peer_ino(a), ino_of(c[0]));
        close(a);
    }
    for (int i = 0; i < 3; i++)
        close(c[i]);
    close(lfd);
}
END_TEST

START_TEST(police_answers_at_queue_timeout)
{
    struct event_base *base = event_base_new();
    struct backlog *b = backlog_new("slow");
    int lfd = listen_at("q.sock"), c1, c2;
    const char *a;

    c1 = client("q.sock");
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 500, 1000 * MS), 1);
    c2 = client("q.sock");
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 500, 1300 * MS), 2);
    /* c1 has waited 500 ms, c2 only 200. */
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 500, 1500 * MS), 1);
    a = answer(base, c1);
    ck_assert_msg(strstr(a, "Status: 503 Service Unavailable\r\n"), "%s", a);
    ck_assert_msg(strstr(a, "Retry-After: 1\r\n"), "%s", a);
    ck_assert_msg(strstr(a, "{\"error\":\"no instance free: waited 500 ms in the queue "
                            "(queue_timeout 500 ms)\"}"),
                  "%s", a);
    ck_assert(!answered(c2));
    ck_assert_uint_eq(backlog_rejected(b, BACKLOG_QUEUE_TIMEOUT), 1);
    ck_assert_uint_eq(backlog_rejected(b, BACKLOG_OVERLOAD), 0);
    /* The one left in the queue is c2. */
    {
        int s = accept(lfd, NULL, NULL);
        ck_assert_uint_eq(sock_peer_ino(s), ino_of(c2));
        close(s);
    }
    close(c1);
    close(c2);
    close(lfd);
    backlog_free(b);
    event_base_free(base);
}
END_TEST

START_TEST(police_takes_the_excess_from_the_head)
{
    struct event_base *base = event_base_new();
    struct backlog *b = backlog_new("busy");
    int lfd = listen_at("o.sock"), c[5];

    for (int i = 0; i < 5; i++)
        c[i] = client("o.sock");
    /* queue_size 2: three too many, answered oldest first. */
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 2, 0, 1000 * MS), 2);
    for (int i = 0; i < 3; i++) {
        const char *a = answer(base, c[i]);
        ck_assert_msg(strstr(a, "Status: 503 Service Unavailable\r\n"), "%d: %s", i, a);
        ck_assert_msg(strstr(a, "Retry-After: 1\r\n"), "%s", a);
        ck_assert_msg(strstr(a, "{\"error\":\"function busy is overloaded: its queue is full "
                                "(queue_size 2)\"}"),
                      "%s", a);
    }
    ck_assert(!answered(c[3]) && !answered(c[4]));
    ck_assert_uint_eq(backlog_rejected(b, BACKLOG_OVERLOAD), 3);
    /* Within queue_size: nothing more. */
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 2, 0, 1001 * MS), 2);
    ck_assert_uint_eq(backlog_rejected(b, BACKLOG_OVERLOAD), 3);
    for (int i = 0; i < 5; i++)
        close(c[i]);
    close(lfd);
    backlog_free(b);
    event_base_free(base);
}
END_TEST

START_TEST(police_counts_from_first_sight_after_a_take)
{
    struct event_base *base = event_base_new();
    struct backlog *b = backlog_new("race");
    int lfd = listen_at("r.sock"), c1, c2, s;
    const char *a;

    c1 = client("r.sock");
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 300, 0), 1);
    c2 = client("r.sock");
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 300, 100 * MS), 2);
    /* An instance takes c1. */
    s = accept(lfd, NULL, NULL);
    ck_assert_int_ge(s, 0);
    /* c2 (seen at 100 ms) is the head now, not yet 300 ms old. */
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 300, 350 * MS), 1);
    ck_assert(!answered(c2));
    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 0, 300, 400 * MS), 0);
    a = answer(base, c2);
    ck_assert_msg(strstr(a, "Status: 503") && strstr(a, "waited 300 ms"), "%s", a);
    close(s);
    close(c1);
    close(c2);
    close(lfd);
    backlog_free(b);
    event_base_free(base);
}
END_TEST

/* A connection the police took before its time (an instance took the head
 * it meant) is answered only when its own queue_timeout is up. */
START_TEST(refuse_holds_the_answer)
{
    struct event_base *base = event_base_new();
    int lfd = listen_at("h.sock"), c = client("h.sock"), s;
    struct timespec t0, t1;
    const char *a;
    long ms;

    s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ck_assert_int_ge(s, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(refuse_conn(base, s, "t", "{\"error\":\"x\"}", 7, 200), 0);
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert(!answered(c));
    a = answer(base, c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ck_assert_msg(ms >= 190, "answered after %ld ms", ms);
    ck_assert_msg(strstr(a, "Retry-After: 7\r\n") && strstr(a, "{\"error\":\"x\"}"), "%s", a);
    close(c);
    close(lfd);
    event_base_free(base);
}
END_TEST

/* A client that sends a byte now and then but never ends its request
 * restarts the idle timeout each time; it must still be let go (its
 * descriptor is the supervisor's) once the timeout is up from the accept. */
START_TEST(refuse_lets_a_slow_client_go)
{
    struct event_base *base = event_base_new();
    int lfd = listen_at("s.sock"), c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), s;
    struct sockaddr_un sa;
    struct timespec t0, t1;
    long ms = 0;
    bool closed = false;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s.sock", testutil_dir),
                     (int)sizeof(sa.sun_path));
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ck_assert_int_ge(s, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(refuse_conn(base, s, "t", "{\"error\":\"x\"}", 0, 0), 0);
    /* Zero bytes: a record header that never completes, a byte at a time
     * every half second. */
    while (!closed && ms < 10000) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        char buf[256];
        (void)!send(c, "\0", 1, MSG_NOSIGNAL);
        for (int i = 0; i < 50 && !closed; i++) {
            event_base_loop(base, EVLOOP_NONBLOCK);
            if (poll(&p, 1, 10) > 0)
                closed = read(c, buf, sizeof(buf)) <= 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    }
    ck_assert_msg(closed, "still open after %ld ms", ms);
    ck_assert_msg(ms >= 5000, "closed after %ld ms", ms);
    close(c);
    close(lfd);
    event_base_free(base);
}
END_TEST

/* This kernel has sock_diag: the police enforces queue_size, so the socket
 * listens with room beyond it. */
START_TEST(listen_size_with_sock_diag)
{
    ck_assert(sock_diag_available());
    ck_assert_int_eq(backlog_listen_size(4), 65535);
}
END_TEST

START_TEST(police_empty_queue)
{
    struct event_base *base = event_base_new();
    struct backlog *b = backlog_new("idle");
    int lfd = listen_at("e.sock");

    ck_assert_int_eq(backlog_police(b, NULL, base, lfd, 1, 1, 0), 0);
    ck_assert_int_eq(backlog_police(NULL, NULL, base, lfd, 1, 1, 0), -1);
    ck_assert_int_eq(backlog_police(b, NULL, base, -1, 1, 1, 0), -1);
    close(lfd);
    backlog_free(b);
    event_base_free(base);
}
END_TEST

static Suite *backlog_suite(void)
{
    Suite *s = suite_create("backlog");
    TCase *tc = tcase_create("track");

    tcase_add_test(tc, track_stamps_first_sight);
    tcase_add_test(tc, track_gone_client_inherits);
    tcase_add_test(tc, track_everything_new_after_a_gap);
    tcase_add_test(tc, track_grows);
    suite_add_tcase(s, tc);

    tc = tcase_create("police");
    tcase_set_timeout(tc, 30); /* refuse_lets_a_slow_client_go waits out 6 s */
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, peek_lists_clients_head_first);
    tcase_add_test(tc, police_answers_at_queue_timeout);
    tcase_add_test(tc, police_takes_the_excess_from_the_head);
    tcase_add_test(tc, police_counts_from_first_sight_after_a_take);
    tcase_add_test(tc, refuse_holds_the_answer);
    tcase_add_test(tc, refuse_lets_a_slow_client_go);
    tcase_add_test(tc, police_empty_queue);
    tcase_add_test(tc, listen_size_with_sock_diag);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(backlog_suite)
