/*
 * Unit tests for gateway/warden.c.  Each test forks a stand-in supervisor
 * that starts a warden and a victim group; the test process is a child
 * subreaper, so the victims come back to it and their exit status says who
 * killed them.
 */
#include "config.h"

#include "warden.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A group of two (a leader and its child), as an instance and what it
 * forked; returns the leader once the group exists (proc_spawn's vfork
 * child has called setsid by the time warden_add runs, too). */
static pid_t victim_group(void)
{
    int p[2];
    char c = 0;
    pid_t pid;

    if (pipe(p) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() == 0) {
            close_range(0, ~0U, 0);
            signal(SIGTERM, SIG_IGN);
            for (;;)
                pause();
        }
        (void)!write(p[1], &c, 1);
        close_range(0, ~0U, 0);
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    }
    close(p[1]);
    if (pid < 0 || read(p[0], &c, 1) != 1)
        pid = -1;
    close(p[0]);
    return pid;
}

enum { KILL_WARDEN = 1, STOP = 2 };

/* The stand-in supervisor: a warden, a victim group it keeps and one it
 * forgets, and a child that keeps the pipe; writes their pids to FD, then
 * waits to be killed (or, with STOP, stops the warden and exits). */
static void supervisor(int fd, int how) __attribute__((noreturn));
static void supervisor(int fd, int how)
{
    pid_t v[3] = {0, 0, 0};
    if (warden_start() < 0)
        _exit(2);
    if (how & KILL_WARDEN) {
        /* The warden is the only child so far. */
        int status;
        pid_t w = -1;
        FILE *f = fopen("/proc/thread-self/children", "r");
        if (!f || fscanf(f, "%d", &w) != 1 || !warden_is(w))
            _exit(3);
        fclose(f);
        kill(w, SIGKILL);
        if (waitpid(w, &status, 0) != w || !warden_reaped(w, status) || warden_is(w))
            _exit(4);
    }
    v[0] = victim_group();
    v[1] = victim_group();
    warden_add(v[0]);
    warden_add(v[1]);
    warden_forget(v[1]);
    /* A child that forked without exec'ing keeps the warden's pipe open:
     * the warden must see the death all the same. */
    if (!(how & STOP) && (v[2] = fork()) == 0) {
        for (;;)
            pause();
    }
    if (write(fd, v, sizeof(v)) != sizeof(v))
        _exit(5);
    if (how & STOP) {
        warden_stop();
        _exit(0);
    }
    for (;;)
        pause();
}

/* Waits (at most 5 s) for PID, one of ours; its wait status, or -1. */
static int reap(pid_t pid)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    int status;
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Runs the stand-in supervisor; fills V with its two victim leaders and
 * the child that keeps the pipe (0: none), and returns its pid. */
static pid_t start(int how, pid_t v[3])
{
    int p[2];
    pid_t sup;
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    ck_assert_int_eq(pipe(p), 0);
    sup = fork();
    if (sup == 0) {
        close(p[0]);
        supervisor(p[1], how);
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], v, 3 * sizeof(pid_t)), 3 * sizeof(pid_t));
    close(p[0]);
    return sup;
}

static void check_killed(pid_t v)
{
    int st = reap(v);
    ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "the kept group's leader %d: status %d, want killed by SIGKILL", (int)v, st);
    /* Its child too: nothing of the group is left (zombies that came back
     * to us are reaped on the way: a signal to a zombie succeeds). */
    for (int i = 0; i < 500 && kill(-v, 0) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(kill(-v, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
}

static void check_alive_then_end(pid_t v)
{
    ck_assert_msg(kill(-v, 0) == 0, "the group %d was killed", (int)v);
    kill(-v, SIGKILL);
    reap(v);
}

START_TEST(test_a_killed_supervisor_takes_its_groups_along)
{
    pid_t v[3], sup = start(0, v);
    kill(sup, SIGKILL);
    ck_assert_int_eq(WTERMSIG(reap(sup)), SIGKILL);
    check_killed(v[0]);
    check_alive_then_end(v[1]); /* forgotten: reaped, its pid no longer ours */
    kill(v[2], SIGKILL);
}
END_TEST

START_TEST(test_a_stop_kills_nothing)
{
    pid_t v[3], sup = start(STOP, v);
    struct timespec ts = {0, 200 * 1000 * 1000};
    int st = reap(sup);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "supervisor status %d", st);
    nanosleep(&ts, NULL);
    check_alive_then_end(v[0]);
    check_alive_then_end(v[1]);
}
END_TEST

START_TEST(test_a_killed_warden_is_replaced)
{
    pid_t v[3], sup = start(KILL_WARDEN, v);
    kill(sup, SIGKILL);
    ck_assert_int_eq(WTERMSIG(reap(sup)), SIGKILL);
    check_killed(v[0]);
    check_alive_then_end(v[1]);
    kill(v[2], SIGKILL);
}
END_TEST

START_TEST(test_without_a_warden_nothing_is_shared)
{
    /* No warden started: nothing is shared, every call is a no-op. */
    warden_add(1234);
    warden_forget(1234);
    ck_assert(!warden_is(0));
    ck_assert(!warden_is(getpid()));
}
END_TEST

static Suite *warden_suite(void)
{
    Suite *s = suite_create("warden");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_killed_supervisor_takes_its_groups_along);
    tcase_add_test(tc, test_a_stop_kills_nothing);
    tcase_add_test(tc, test_a_killed_warden_is_replaced);
    tcase_add_test(tc, test_without_a_warden_nothing_is_shared);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(warden_suite)
