/*
 * Unit tests for gateway/ctl.c: the pid file and finding the gateway that
 * owns a socket_dir.  The "gateway" is this test process holding the lock
 * through sock_dir_lock, as fngate serve does; a forked child plays the
 * process that is not the gateway.
 */
#include "config.h"

#include "ctl.h"
#include "sock.h"

#include "testutil.h"

#include <check.h>

#include "check_main.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char err[512];

static void root_setup(void)
{
    testutil_root_make("test_ctl");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

static void setup(void)
{
    testutil_dir_make();
    err[0] = '\0';
}

static void teardown(void)
{
    testutil_dir_remove();
}

static void write_text(const char *rel, const char *text)
{
    char path[PATH_MAX + 64];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", testutil_dir, rel);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
}

START_TEST(pid_file_written_and_removed)
{
    char path[PATH_MAX + 64], buf[64] = "", want[64];
    FILE *fp;

    ck_assert_int_eq(ctl_pid_write(testutil_dir, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/fngate.pid", testutil_dir);
    fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    snprintf(want, sizeof(want), "%d\n", (int)getpid());
    ck_assert_str_eq(buf, want);
    ctl_pid_remove(testutil_dir);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(pid_file_of_another_process_is_left)
{
    char path[PATH_MAX + 64];

    write_text("fngate.pid", "1234567\n");
    ctl_pid_remove(testutil_dir);
    snprintf(path, sizeof(path), "%s/fngate.pid", testutil_dir);
    ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

START_TEST(pid_write_unwritable_dir)
{
    char dir[PATH_MAX + 64];

    snprintf(dir, sizeof(dir), "%s/nope", testutil_dir);
    ck_assert_int_eq(ctl_pid_write(dir, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "nope/.fngate.pid."));
    ck_assert_ptr_nonnull(strstr(err, ": cannot create: No such file or directory"));
}
END_TEST

START_TEST(find_nothing_running)
{
    char want[PATH_MAX + 128];
    pid_t pid = 0;

    snprintf(want, sizeof(want), "no fngate is running with socket_dir %s", testutil_dir);
    /* No lock file at all. */
    ck_assert_int_eq(ctl_find(testutil_dir, &pid, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
    ck_assert(!ctl_running(testutil_dir));
    /* A lock file and a pid file left by a gateway that is gone. */
    write_text("fngate.lock", "");
    write_text("fngate.pid", "1\n");
    err[0] = '\0';
    ck_assert_int_eq(ctl_find(testutil_dir, &pid, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
    ck_assert(!ctl_running(testutil_dir));
}
END_TEST

START_TEST(find_the_lock_holder)
{
    int lock = sock_dir_lock(testutil_dir, err, sizeof(err));
    pid_t pid = 0;

    ck_assert_msg(lock >= 0, "%s", err);
    ck_assert(ctl_running(testutil_dir));
    ck_assert_int_eq(ctl_pid_write(testutil_dir, err, sizeof(err)), 0);
    ck_assert_int_eq(ctl_find(testutil_dir, &pid, err, sizeof(err)), 0);
    ck_assert_int_eq(pid, getpid());
    /* A pid file naming someone else: the kernel's lock record wins. */
    write_text("fngate.pid", "999999\n");
    pid = 0;
    ck_assert_int_eq(ctl_find(testutil_dir, &pid, err, sizeof(err)), 0);
    ck_assert_int_eq(pid, getpid());
    close(lock);
    ck_assert(!ctl_running(testutil_dir));
}
END_TEST

START_TEST(command_stop_waits_for_exit)
{
    char conf[PATH_MAX + 64], text[PATH_MAX * 3];
    int ready[2];
    pid_t child;
    char c;

    snprintf(text, sizeof(text), "[gateway]\nsocket_dir = %s/sock\nfunctions_dir = %s\n",
             testutil_dir, testutil_dir);
    write_text("fngate.conf", text);
    snprintf(conf, sizeof(conf), "%s/fngate.conf", testutil_dir);
    ck_assert_int_eq(pipe(ready), 0);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        /* A "gateway": holds the lock, exits a moment after SIGTERM. */
        char dir[PATH_MAX + 64];
        sigset_t set;
        int sig;
        snprintf(dir, sizeof(dir), "%s/sock", testutil_dir);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        if (sock_dir_lock(dir, err, sizeof(err)) < 0 || ctl_pid_write(dir, err, sizeof(err)) < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        sigwait(&set, &sig);
        usleep(200 * 1000);
        _exit(0);
    }
    close(ready[1]);
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    ck_assert_int_eq(ctl_command(conf, true), 0);
    /* It has already exited: a zombie waiting for us, nothing running. */
    ck_assert_int_eq(waitpid(child, NULL, WNOHANG), child);
    ck_assert_int_eq(ctl_command(conf, true), 1);
}
END_TEST

static Suite *ctl_suite(void)
{
    Suite *s = suite_create("ctl");
    TCase *tc = tcase_create("ctl");

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pid_file_written_and_removed);
    tcase_add_test(tc, pid_file_of_another_process_is_left);
    tcase_add_test(tc, pid_write_unwritable_dir);
    tcase_add_test(tc, find_nothing_running);
    tcase_add_test(tc, find_the_lock_holder);
    tcase_add_test(tc, command_stop_waits_for_exit);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(ctl_suite)
