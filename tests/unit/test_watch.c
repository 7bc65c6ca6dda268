/*
 * Unit tests for gateway/watch.c: which changes under functions_dir call
 * back, and that a burst calls back once.  Each test runs the event loop
 * until the callback or a deadline.
 */
#include "config.h"

#include "conf.h"
#include "watch.h"

#include "testutil.h"

#include <check.h>

#include "check_main.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];
static int calls;
static struct event_base *base;

static void root_setup(void)
{
    testutil_root_make("test_watch");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

static void setup(void)
{
    testutil_dir_make();
    calls = 0;
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    event_base_free(base);
    testutil_dir_remove();
}

static const char *tpath(const char *rel)
{
    static char bufs[4][PATH_MAX + 128];
    static unsigned next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s/%s", testutil_dir, rel);
    return b;
}

static void cb(void *arg)
{
    (void)arg;
    calls++;
}

/* Runs the loop for MS milliseconds. */
static void run_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static struct conf *load(const char *extra)
{
    char text[PATH_MAX * 2];
    FILE *fp = fopen(tpath("fngate.conf"), "w");
    struct conf *c;

    ck_assert_ptr_nonnull(fp);
    snprintf(text, sizeof(text), "[gateway]\nfunctions_dir = %s\n%s", tpath("fns"), extra);
    fputs(text, fp);
    fclose(fp);
    c = conf_load(tpath("fngate.conf"), err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

static void write_text(const char *rel, const char *text, mode_t mode)
{
    int fd = open(tpath(rel), O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(handler_and_function_conf_call_back_once_per_burst)
{
    struct conf *c;
    struct watch *w;

    ck_assert_int_eq(mkdir(tpath("fns"), 0755), 0);
    ck_assert_int_eq(mkdir(tpath("fns/hello"), 0755), 0);
    c = load("");
    w = watch_new(base, c, cb, NULL);
    ck_assert_ptr_nonnull(w);
    /* A burst: several writes of the handler and function.conf. */
    for (int i = 0; i < 5; i++)
        write_text("fns/hello/handler", "#!/bin/sh\n", 0755);
    write_text("fns/hello/function.conf", "max_instances = 2\n", 0644);
    run_ms(500);
    ck_assert_int_eq(calls, 1);
    /* chmod of the handler (copy, then chmod +x) */
    ck_assert_int_eq(chmod(tpath("fns/hello/handler"), 0700), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 2);
    /* removal */
    ck_assert_int_eq(unlink(tpath("fns/hello/function.conf")), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 3);
    watch_free(w);
    conf_free(c);
}
END_TEST

START_TEST(new_folder_is_watched_too)
{
    struct conf *c;
    struct watch *w;

    ck_assert_int_eq(mkdir(tpath("fns"), 0755), 0);
    c = load("");
    w = watch_new(base, c, cb, NULL);
    ck_assert_int_eq(mkdir(tpath("fns/fresh"), 0755), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 1);
    /* The callback added a watch on the new folder before returning. */
    write_text("fns/fresh/handler", "#!/bin/sh\n", 0755);
    run_ms(400);
    ck_assert_int_eq(calls, 2);
    watch_free(w);
    conf_free(c);
}
END_TEST

START_TEST(scratch_files_are_ignored)
{
    struct conf *c;
    struct watch *w;

    ck_assert_int_eq(mkdir(tpath("fns"), 0755), 0);
    ck_assert_int_eq(mkdir(tpath("fns/hello"), 0755), 0);
    c = load("");
    w = watch_new(base, c, cb, NULL);
    write_text("fns/hello/cache.db", "x", 0644);
    write_text("fns/hello/handler.tmp", "x", 0755);
    ck_assert_int_eq(unlink(tpath("fns/hello/cache.db")), 0);
    write_text("fns/.hidden", "x", 0644);
    run_ms(400);
    ck_assert_int_eq(calls, 0);
    /* Renamed over handler: that counts. */
    ck_assert_int_eq(rename(tpath("fns/hello/handler.tmp"), tpath("fns/hello/handler")), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 1);
    watch_free(w);
    conf_free(c);
}
END_TEST

START_TEST(a_copy_counts_when_closed_a_symlink_when_made)
{
    struct conf *c;
    struct watch *w;
    int fd;

    ck_assert_int_eq(mkdir(tpath("fns"), 0755), 0);
    ck_assert_int_eq(mkdir(tpath("fns/hello"), 0755), 0);
    write_text("fns/real", "#!/bin/sh\n", 0755);
    c = load("");
    w = watch_new(base, c, cb, NULL);
    /* A slow copy: created, half written, quiet for a while. */
    fd = open(tpath("fns/hello/handler"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/", 7), 7);
    run_ms(400);
    ck_assert_int_eq(calls, 0);
    ck_assert_int_eq(write(fd, "sh\n", 3), 3);
    close(fd);
    run_ms(400);
    ck_assert_int_eq(calls, 1);
    /* A handler that is a symlink is there as soon as it is made. */
    ck_assert_int_eq(mkdir(tpath("fns/linked"), 0755), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(symlink(tpath("fns/real"), tpath("fns/linked/handler")), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 3);
    watch_free(w);
    conf_free(c);
}
END_TEST

START_TEST(functions_dir_swapped_by_a_symlink_rename)
{
    struct conf *c;
    struct watch *w;

    ck_assert_int_eq(mkdir(tpath("rel1"), 0755), 0);
    ck_assert_int_eq(mkdir(tpath("rel2"), 0755), 0);
    ck_assert_int_eq(mkdir(tpath("rel2/hello"), 0755), 0);
    ck_assert_int_eq(symlink(tpath("rel1"), tpath("fns")), 0);
    c = load("");
    w = watch_new(base, c, cb, NULL);
    ck_assert_ptr_nonnull(w);
    /* A release-folder deploy: a new symlink renamed over the old one. */
    ck_assert_int_eq(symlink(tpath("rel2"), tpath("fns.new")), 0);
    ck_assert_int_eq(rename(tpath("fns.new"), tpath("fns")), 0);
    run_ms(400);
    ck_assert_int_eq(calls, 1);
    /* From then on the new release is the one watched. */
    write_text("rel2/hello/handler", "#!/bin/sh\n", 0755);
    run_ms(400);
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(mkdir(tpath("rel1/old"), 0755), 0); /* the old release: ignored */
    run_ms(300);
    ck_assert_int_eq(calls, 2);
    watch_free(w);
    conf_free(c);
}
END_TEST

START_TEST(watch_off_and_update)
{
    struct conf *off, *on;
    struct watch *w;

    ck_assert_int_eq(mkdir(tpath("fns"), 0755), 0);
    off = load("watch = off\n");
    ck_assert(!off->gw.watch);
    ck_assert_ptr_null(watch_new(base, off, cb, NULL));
    on = load("");
    ck_assert(on->gw.watch);
    w = watch_update(NULL, base, on, cb, NULL);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_eq(watch_update(w, base, on, cb, NULL), w);
    ck_assert_ptr_null(watch_update(w, base, off, cb, NULL));
    write_text("fns/x", "x", 0644);
    run_ms(300);
    ck_assert_int_eq(calls, 0);
    conf_free(off);
    conf_free(on);
}
END_TEST

static Suite *watch_suite(void)
{
    Suite *s = suite_create("watch");
    TCase *tc = tcase_create("watch");

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, handler_and_function_conf_call_back_once_per_burst);
    tcase_add_test(tc, new_folder_is_watched_too);
    tcase_add_test(tc, scratch_files_are_ignored);
    tcase_add_test(tc, a_copy_counts_when_closed_a_symlink_when_made);
    tcase_add_test(tc, functions_dir_swapped_by_a_symlink_rename);
    tcase_add_test(tc, watch_off_and_update);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(watch_suite)
