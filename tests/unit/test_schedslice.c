/*
 * Unit tests for gateway/schedslice.c: the supervisor's short scheduling
 * slice, inherited by its children, and the default again for an instance.
 * Each case runs in a forked child so the test runner keeps its own slice.
 * On a kernel without custom slices (before Linux 6.12) or without
 * /proc/PID/sched (CONFIG_SCHED_DEBUG) the slice cannot be seen: the cases
 * say so in one line and check only that the policy and nice value hold.
 */
#include "config.h"

#include "schedslice.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The calling process's se.slice in ns, or -1 when it cannot be read. */
static long long slice_now(void)
{
    char line[256];
    long long v = -1;
    FILE *f = fopen("/proc/self/sched", "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "se.slice", 8) == 0) {
            char *colon = strchr(line, ':');
            if (colon)
                v = atoll(colon + 1);
        }
    }
    fclose(f);
    return v;
}

/* Whether this kernel shows a custom slice: one child asks for it. */
static bool slices_seen(void)
{
    static int seen = -1;
    int status;
    pid_t pid;

    if (seen >= 0)
        return seen;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(schedslice_shorten() == 0 && slice_now() == (long long)SCHEDSLICE_SHORT_NS ? 0 : 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    seen = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!seen)
        printf("test_schedslice: this kernel shows no custom slice in /proc/self/sched "
               "(Linux 6.12 or later with CONFIG_SCHED_DEBUG): slices not checked\n");
    return seen;
}

static int run_child(int (*body)(void))
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(body());
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static bool check_slices;

static int short_then_default_body(void)
{
    long long base = slice_now();
    int status;
    pid_t pid;

    if (setpriority(PRIO_PROCESS, 0, 3) < 0)
        return 90;
    if (schedslice_shorten() < 0)
        return 91;
    if (check_slices && slice_now() != (long long)SCHEDSLICE_SHORT_NS)
        return 92;
    /* The operator's nice value survives: sched_setattr sets it too. */
    errno = 0;
    if (getpriority(PRIO_PROCESS, 0) != 3 || errno)
        return 93;
    /* A child (the warden, a spare) inherits the short slice. */
    pid = fork();
    if (pid < 0)
        return 94;
    if (pid == 0)
        _exit(!check_slices || slice_now() == (long long)SCHEDSLICE_SHORT_NS ? 0 : 1);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 95;
    /* An instance goes back to the default, nice value kept. */
    if (schedslice_reset() < 0)
        return 96;
    if (check_slices && slice_now() != base)
        return 97;
    if (getpriority(PRIO_PROCESS, 0) != 3)
        return 98;
    return 0;
}

START_TEST(the_short_slice_is_inherited_and_an_instance_drops_it)
{
    check_slices = slices_seen();
    ck_assert_int_eq(run_child(short_then_default_body), 0);
}
END_TEST

static int batch_body(void)
{
    struct sched_param p = {0};

    if (sched_setscheduler(0, SCHED_BATCH, &p) < 0)
        return 90;
    if (schedslice_shorten() < 0)
        return 91;
    if (sched_getscheduler(0) != SCHED_BATCH)
        return 92;
    if (check_slices && slice_now() != (long long)SCHEDSLICE_SHORT_NS)
        return 93;
    return 0;
}

static int idle_body(void)
{
    struct sched_param p = {0};
    long long before;

    if (sched_setscheduler(0, SCHED_IDLE, &p) < 0)
        return 90;
    before = slice_now();
    /* Another class than the operator's normal or batch: left as it is. */
    if (schedslice_shorten() != -1)
        return 91;
    if (sched_getscheduler(0) != SCHED_IDLE)
        return 92;
    if (check_slices && slice_now() != before)
        return 93;
    return 0;
}

START_TEST(an_operators_class_is_kept)
{
    check_slices = slices_seen();
    ck_assert_int_eq(run_child(batch_body), 0);
    ck_assert_int_eq(run_child(idle_body), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("schedslice");
    TCase *tc = tcase_create("schedslice");

    tcase_add_test(tc, the_short_slice_is_inherited_and_an_instance_drops_it);
    tcase_add_test(tc, an_operators_class_is_kept);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
