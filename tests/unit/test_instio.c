/*
 * Unit tests for gateway/instio.c: an instance's output cut into lines,
 * logged with its context, under a byte budget, with bounded work per event.
 * The instance is simulated by the write end of a pipe; the gateway's log is
 * fd 2, captured.
 */
#include "config.h"

#include "instio.h"
#include "log.h"

#include <check.h>

#include "check_main.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

static struct event_base *base;
static int wfd = -1;

static int pipe_nb(void)
{
    int p[2];

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    wfd = p[1];
    return p[0];
}

static void setup(void)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    log_set_level(LOG_LVL_INFO);
}

static void teardown(void)
{
    if (wfd >= 0)
        close(wfd);
    wfd = -1;
    event_base_free(base);
}

static void put(const char *s)
{
    ck_assert_int_eq(write(wfd, s, strlen(s)), (ssize_t)strlen(s));
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* One pass of the loop: every ready event once, no waiting. */
static void loop_once(void)
{
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

START_TEST(lines_logged_with_context)
{
    struct instio *io;
    const char *out;

    testutil_capture_begin();
    io = instio_new(base, pipe_nb(), "hello", 4242, NULL);
    ck_assert_ptr_nonnull(io);
    put("first line\nsecond ");
    loop_once();
    put("half\nno newline at the end");
    loop_once();
    instio_free(io);
    out = testutil_capture_end();
    ck_assert_ptr_nonnull(strstr(out, "[fn hello pid 4242] first line\n"));
    ck_assert_ptr_nonnull(strstr(out, "[fn hello pid 4242] second half\n"));
    ck_assert_ptr_nonnull(strstr(out, "[fn hello pid 4242] no newline at the end\n"));
    ck_assert_ptr_null(strstr(out, "dropped"));
}
END_TEST

START_TEST(eof_flushes_and_closes)
{
    struct instio *io;
    const char *out;

    testutil_capture_begin();
    io = instio_new(base, pipe_nb(), "hello", 7, NULL);
    put("last words");
    close(wfd);
    wfd = -1;
    loop_once(); /* the data */
    loop_once(); /* the end of file */
    out = testutil_capture_end();
    ck_assert_ptr_nonnull(strstr(out, "[fn hello pid 7] last words\n"));
    /* Nothing registered any more: the loop has no events left. */
    ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
    instio_free(io);
}
END_TEST

START_TEST(over_budget_dropped_and_counted)
{
    /* 1 KiB of burst and almost no refill: 8 lines at 128 bytes apiece. */
    const struct instio_budget b = {1, 1024};
    struct instio *io;
    const char *out;

    testutil_capture_begin();
    io = instio_new(base, pipe_nb(), "noisy", 99, &b);
    for (int i = 0; i < 100; i++)
        put("0123456789\n");
    for (int i = 0; i < 10; i++)
        loop_once();
    ck_assert_uint_eq(instio_dropped(io), 92 * 11);
    instio_free(io);
    out = testutil_capture_end();
    ck_assert_uint_eq(count(out, "[fn noisy pid 99] 0123456789\n"), 8);
    ck_assert_uint_eq(count(out, "dropped"), 1);
    ck_assert_ptr_nonnull(strstr(out, "warn  fngate: [fn noisy pid 99] output over its budget "
                                      "(0 KiB/s, burst 1 KiB): dropped 1012 bytes in 92 lines\n"));
}
END_TEST

START_TEST(dropping_ends_when_the_bucket_refills)
{
    /* 1 KiB burst refilled at 100 KiB/s: half full again after 5 ms. */
    const struct instio_budget b = {100 * 1024, 1024};
    struct timespec ts = {0, 150 * 1000000};
    struct instio *io;
    const char *out;

    testutil_capture_begin();
    io = instio_new(base, pipe_nb(), "noisy", 5, &b);
    for (int i = 0; i < 20; i++)
        put("x\n");
    loop_once();
    nanosleep(&ts, NULL); /* past the 100 ms pause too */
    put("after the pause\n");
    event_base_loop(base, EVLOOP_ONCE);
    loop_once();
    out = testutil_capture_end();
    /* The episode's line comes before the first line logged again. */
    ck_assert_ptr_nonnull(strstr(out, "dropped 24 bytes in 12 lines\n"));
    ck_assert_ptr_nonnull(strstr(out, "[fn noisy pid 5] after the pause\n"));
    ck_assert(strstr(out, "dropped") < strstr(out, "after the pause"));
    instio_free(io);
}
END_TEST

START_TEST(bounded_lines_per_event)
{
    const struct instio_budget b = {1 << 30, 1 << 30};
    struct instio *io;
    const char *out;

    testutil_capture_begin();
    io = instio_new(base, pipe_nb(), "chatty", 3, &b);
    for (int i = 0; i < 200; i++)
        put("y\n");
    loop_once();
    out = testutil_capture_end();
    ck_assert_uint_eq(count(out, "] y\n"), 64);
    testutil_capture_begin();
    for (int i = 0; i < 10; i++)
        loop_once();
    out = testutil_capture_end();
    ck_assert_uint_eq(count(out, "] y\n"), 136);
    instio_free(io);
}
END_TEST

START_TEST(free_does_not_wait_for_a_writer_that_stays)
{
    struct instio *io;
    char chunk[4096];
    size_t in_pipe = 0;
    const char *out;

    /* A descendant keeps the write end open and the pipe full: freeing must
     * return after one pipe's worth at most, never wait for EOF. */
    memset(chunk, 'z', sizeof(chunk));
    testutil_capture_begin();
    io = instio_new(base, pipe_nb(), "child", 11, &(struct instio_budget){1, 128});
    ck_assert_int_eq(fcntl(wfd, F_SETFL, O_NONBLOCK), 0);
    for (;;) {
        ssize_t w = write(wfd, chunk, sizeof(chunk));
        if (w <= 0)
            break;
        in_pipe += (size_t)w;
    }
    ck_assert_uint_gt(in_pipe, 0);
    instio_free(io);
    out = testutil_capture_end();
    ck_assert_ptr_nonnull(strstr(out, "[fn child pid 11] output over its budget"));
}
END_TEST

START_TEST(free_null_is_noop)
{
    instio_free(NULL);
    ck_assert_uint_eq(instio_dropped(NULL), 0);
}
END_TEST

static Suite *instio_suite(void)
{
    Suite *s = suite_create("instio");
    TCase *tc = tcase_create("instio");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lines_logged_with_context);
    tcase_add_test(tc, eof_flushes_and_closes);
    tcase_add_test(tc, over_budget_dropped_and_counted);
    tcase_add_test(tc, dropping_ends_when_the_bucket_refills);
    tcase_add_test(tc, bounded_lines_per_event);
    tcase_add_test(tc, free_does_not_wait_for_a_writer_that_stays);
    tcase_add_test(tc, free_null_is_noop);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(instio_suite)
