/*
 * Unit tests for gateway/spare.c, the spare pool: it keeps the number of
 * spares it is told to, a taken spare is replaced a little later (not at
 * once), a spare that dies or is let go is recognised when reaped, and a
 * stopped pool spawns nothing more.  The spares are the real fngate-spare.
 */
#include "config.h"

#include "assign.h"
#include "childsetup.h"
#include "log.h"
#include "spare.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char spare_path[PATH_MAX];
static struct event_base *base;

/* gateway/fngate-spare of this build tree: tests/unit/../../gateway. */
static void find_spare(void)
{
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(spare_path, sizeof(spare_path), "%s/../../gateway/fngate-spare", exe);
    ck_assert_msg(access(spare_path, X_OK) == 0, "%s is not built", spare_path);
}

static void setup(void)
{
    find_spare();
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    event_base_free(base);
}

/* Runs the loop for MS milliseconds (the refill timer). */
static void run_for(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits for PID and hands its status to the pool. */
static bool reap(struct spare_pool *sp, pid_t pid, int *status)
{
    ck_assert_int_eq(waitpid(pid, status, 0), pid);
    return spare_pool_reaped(sp, pid, *status, now_ns());
}

START_TEST(keeps_what_it_is_told_and_replaces_later)
{
    struct spare_pool *sp = spare_pool_new(base, NULL, 2, spare_path);
    struct spare *s;
    int status;
    pid_t pid;

    ck_assert_int_eq(spare_pool_ready(sp), 0); /* nothing before fill */
    spare_pool_fill(sp);
    ck_assert_int_eq(spare_pool_ready(sp), 2);
    ck_assert_int_eq(spare_pool_wanted(sp), 2);
    s = spare_pool_take(sp);
    ck_assert_ptr_nonnull(s);
    pid = s->pid;
    ck_assert(kill(pid, 0) == 0);
    ck_assert(!spare_pool_has(sp, pid));       /* taken: the caller's now */
    ck_assert_int_eq(spare_pool_ready(sp), 1); /* not replaced inside the take */
    run_for(60);
    ck_assert_int_eq(spare_pool_ready(sp), 2);

    /* A failed hand-over: killed, and its exit is the pool's to log. */
    spare_free(sp, s, false);
    ck_assert(spare_pool_has(sp, pid));
    ck_assert(reap(sp, pid, &status));
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert(!spare_pool_has(sp, pid));
    spare_pool_free(sp);
    while (waitpid(-1, &status, 0) > 0)
        ;
}
END_TEST

START_TEST(a_spare_killed_while_waiting_is_replaced)
{
    struct spare_pool *sp = spare_pool_new(base, NULL, 1, spare_path);
    struct spare *s;
    int status;
    pid_t pid;

    spare_pool_fill(sp);
    s = spare_pool_take(sp);
    pid = s->pid;
    spare_free(sp, s, false);
    ck_assert(reap(sp, pid, &status));
    run_for(60);
    ck_assert_int_eq(spare_pool_ready(sp), 1);
    s = spare_pool_take(sp);
    ck_assert_ptr_nonnull(s);
    pid = s->pid;
    spare_free(sp, s, false);
    ck_assert(reap(sp, pid, &status));
    run_for(60);
    ck_assert_int_eq(spare_pool_ready(sp), 1);
    spare_pool_stop(sp);
    ck_assert_int_eq(spare_pool_ready(sp), 0);
    ck_assert_int_eq(spare_pool_wanted(sp), 0);
    /* Let go: its socket closed, it exits 0 by itself. */
    pid = waitpid(-1, &status, 0);
    ck_assert_int_gt(pid, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert(spare_pool_reaped(sp, pid, status, now_ns()));
    run_for(60);
    ck_assert_int_eq(spare_pool_ready(sp), 0); /* stopped: no replacement */
    ck_assert_ptr_null(spare_pool_take(sp));
    spare_pool_free(sp);
}
END_TEST

START_TEST(a_spare_that_dies_at_once_backs_off)
{
    /* A program that is not fngate-spare: it exits at once, before any
     * assignment, and the pool does not respawn it in a loop. */
    struct spare_pool *sp = spare_pool_new(base, NULL, 1, "/bin/false");
    int status, reaped = 0;
    pid_t pid;

    spare_pool_fill(sp);
    for (int round = 0; round < 5; round++) {
        run_for(30);
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            ck_assert(spare_pool_reaped(sp, pid, status, now_ns()));
            reaped++;
        }
    }
    /* 10, 20, 40, 80 ms: at most five within 150 ms, not dozens. */
    ck_assert_int_ge(reaped, 1);
    ck_assert_int_le(reaped, 5);
    spare_pool_free(sp);
    while (waitpid(-1, &status, 0) > 0)
        ;
}
END_TEST

START_TEST(set_lets_extra_ones_go)
{
    struct spare_pool *sp = spare_pool_new(base, NULL, 3, spare_path);
    int status, exited = 0;
    pid_t pid;

    spare_pool_fill(sp);
    ck_assert_int_eq(spare_pool_ready(sp), 3);
    spare_pool_set(sp, 1);
    ck_assert_int_eq(spare_pool_ready(sp), 1);
    for (int i = 0; i < 2; i++) {
        pid = waitpid(-1, &status, 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert(spare_pool_reaped(sp, pid, status, now_ns()));
        exited++;
    }
    ck_assert_int_eq(exited, 2);
    spare_pool_set(sp, 0);
    ck_assert_int_eq(spare_pool_ready(sp), 0);
    spare_pool_free(sp);
    spare_pool_free(NULL);
    while (waitpid(-1, &status, 0) > 0)
        ;
}
END_TEST

/* Hands CS to a real spare and returns what it wrote on its log pipe until
 * it exited, and its status. */
static int assign_and_wait(const struct childsetup *cs, char *out, size_t outlen)
{
    struct spare_pool *sp = spare_pool_new(base, NULL, 1, spare_path);
    struct spare *s;
    size_t n = 0;
    ssize_t got;
    int status, fl;
    pid_t pid;

    spare_pool_fill(sp);
    s = spare_pool_take(sp);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(spare_assign(sp, s, cs), 0);
    pid = s->pid;
    fl = fcntl(s->log_fd, F_GETFL);
    fcntl(s->log_fd, F_SETFL, fl & ~O_NONBLOCK);
    while (n + 1 < outlen && (got = read(s->log_fd, out + n, outlen - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(s->log_fd);
    spare_free(sp, s, true);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    spare_pool_free(sp);
    while (waitpid(-1, &fl, 0) > 0)
        ;
    return status;
}

START_TEST(an_assigned_spare_applies_the_set_up_it_was_sent)
{
    /* The spare's set-up is childsetup_apply on what arrived: a folder that
     * does not exist fails it at that step, with the exec path's words. */
    char *env[] = {"FNGATE_FUNCTION=t", NULL};
    char out[1024];
    struct childsetup cs;
    int status;

    childsetup_init(&cs);
    cs.so_path = "/nonexistent/fngate-test/handler.so";
    cs.cwd = "/nonexistent/fngate-test";
    cs.envp = env;
    status = assign_and_wait(&cs, out, sizeof(out));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 126, "status 0x%x: %s", status, out);
    ck_assert_str_eq(out, "fngate: cannot start instance: chdir: No such file or directory\n");

    /* Set up, then its shared object is missing: 127, and why. */
    cs.cwd = "/";
    status = assign_and_wait(&cs, out, sizeof(out));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 127, "status 0x%x: %s", status, out);
    ck_assert_str_eq(out, "fngate: cannot load /nonexistent/fngate-test/handler.so: "
                          "/nonexistent/fngate-test/handler.so: cannot open shared object "
                          "file: No such file or directory\n");
}
END_TEST

static bool held = true;
static bool hold_cb(void *arg)
{
    (void)arg;
    return held;
}

START_TEST(a_replacement_waits_while_held)
{
    struct spare_pool *sp = spare_pool_new(base, NULL, 1, spare_path);
    struct spare *s;
    int status;
    pid_t pid;

    spare_pool_set_hold(sp, hold_cb, NULL);
    spare_pool_fill(sp); /* start-up is not held */
    ck_assert_int_eq(spare_pool_ready(sp), 1);
    s = spare_pool_take(sp);
    pid = s->pid;
    spare_free(sp, s, false);
    ck_assert(reap(sp, pid, &status));
    held = true;
    run_for(60);
    ck_assert_int_eq(spare_pool_ready(sp), 0);
    held = false;
    run_for(30);
    ck_assert_int_eq(spare_pool_ready(sp), 1);
    spare_pool_free(sp);
    while (waitpid(-1, &status, 0) > 0)
        ;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spare");
    TCase *tc = tcase_create("spare");

    log_set_level(LOG_LVL_ERROR);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, keeps_what_it_is_told_and_replaces_later);
    tcase_add_test(tc, a_spare_killed_while_waiting_is_replaced);
    tcase_add_test(tc, a_spare_that_dies_at_once_backs_off);
    tcase_add_test(tc, set_lets_extra_ones_go);
    tcase_add_test(tc, a_replacement_waits_while_held);
    tcase_add_test(tc, an_assigned_spare_applies_the_set_up_it_was_sent);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
