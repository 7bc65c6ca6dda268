/*
 * Unit tests for gateway/sandbox.c: a child that enters the sandbox the way
 * proc.c's does gets EPERM for what the seccomp filter denies and still
 * does what a function needs; with Landlock it reads its own folder, writes
 * only its private temporary folder, and is refused elsewhere (skipped,
 * with a line saying so, on a kernel without Landlock).
 */
#include "config.h"

#include "discover.h"
#include "ident.h"
#include "sandbox.h"
#include "testutil.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs BODY in a sandboxed child (ruleset RS); returns its exit status:
 * 0, or the number of the first check that failed. */
static int in_sandbox(int rs, int (*body)(void))
{
    pid_t pid = fork();
    int status;
    const char *what;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (sandbox_child_enter(rs, &what) < 0 || sandbox_child_seal(&what) < 0) {
            fprintf(stderr, "%s: %s\n", what, strerror(errno));
            _exit(100);
        }
        _exit(body());
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int denied(long rc, int err)
{
    return rc == -1 && errno == err;
}

static int filter_body(void)
{
    if (!denied(socket(AF_UNIX, SOCK_STREAM, 0), EPERM))
        return 1;
    if (!denied(setsid(), EPERM))
        return 2;
    if (!denied(unshare(CLONE_NEWUSER), EPERM))
        return 3;
    if (!denied(syscall(SYS_pidfd_getfd, 0, 0, 0), EPERM))
        return 4;
    if (!denied(syscall(SYS_clone3, NULL, 0), ENOSYS))
        return 5;
#ifndef FNGATE_SANITIZERS
    if (!denied(ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM))
        return 6;
#endif
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return 7;
    /* What a function does need still works. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 8;
    close(fd);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 9;
    pid_t k = fork();
    if (k == 0)
        _exit(0);
    if (k < 0 || waitpid(k, NULL, 0) != k)
        return 10;
    return 0;
}

START_TEST(filter_denies_with_eperm)
{
    ck_assert_int_eq(sandbox_init(), 0);
    ck_assert_int_eq(in_sandbox(-1, filter_body), 0);
}
END_TEST

/* The signal rules (no root, Landlock below ABI 6): kill & co. only at
 * the instance itself, 0 or minus its pid.  Signal 0 asks the kernel's
 * permission and sends nothing. */
static int signals_body(void)
{
    pid_t self = getpid(), parent = getppid();
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    si.si_code = SI_QUEUE;
    if (kill(self, 0) < 0 || kill(0, 0) < 0 || syscall(SYS_tgkill, self, self, 0) < 0)
        return 1;
    if (!denied(kill(parent, 0), EPERM) || !denied(kill(-1, 0), EPERM) ||
        !denied(kill(-parent, 0), EPERM))
        return 2;
    if (!denied(syscall(SYS_tkill, parent, 0), EPERM) ||
        !denied(syscall(SYS_tgkill, parent, parent, 0), EPERM))
        return 3;
    if (!denied(syscall(SYS_rt_sigqueueinfo, parent, 0, &si), EPERM) ||
        !denied(syscall(SYS_rt_tgsigqueueinfo, parent, parent, 0, &si), EPERM))
        return 4;
    if (!denied(syscall(SYS_pidfd_open, parent, 0), EPERM) ||
        !denied(syscall(SYS_pidfd_send_signal, 0, 0, NULL, 0), EPERM))
        return 5;
    /* The kernel's pid_t is the low half of the register: what the rules
     * compare, whatever the upper half holds. */
    if (!denied(syscall(SYS_kill, (long)((1UL << 32) | (unsigned)parent), 0), EPERM) ||
        syscall(SYS_kill, (long)((1UL << 32) | (unsigned)self), 0) < 0)
        return 6;
    /* A child it forks keeps the instance's number: it may signal the
     * instance, not itself by pid (its group, 0, still works). */
    pid_t k = fork();
    if (k == 0)
        _exit(kill(self, 0) == 0 && kill(0, 0) == 0 && denied(kill(getpid(), 0), EPERM) ? 0 : 1);
    int st;
    if (k < 0 || waitpid(k, &st, 0) != k || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 7;
    return 0;
}

START_TEST(signals_only_at_itself_below_landlock_6)
{
    /* What the gateway does without root on a kernel whose Landlock cannot
     * scope signals (the test knob): in a child that is not root. */
    pid_t pid = fork();
    int status;
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
            _exit(101);
        setenv("FNGATE_TEST_LANDLOCK_ABI", "5", 1);
        if (sandbox_init() < 0)
            _exit(102);
        _exit(in_sandbox(-1, signals_body));
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}
END_TEST

static char fn_dir[PATH_MAX + 32], outside[PATH_MAX + 32], tmpfile_path[PATH_MAX + 64];

static int landlock_body(void)
{
    char p[PATH_MAX + 64];
    int fd;

    snprintf(p, sizeof(p), "%s/handler", fn_dir);
    if ((fd = open(p, O_RDONLY)) < 0)
        return 1;
    close(fd);
    if ((fd = open(tmpfile_path, O_WRONLY | O_CREAT, 0600)) < 0)
        return 2;
    close(fd);
    if (!denied(open(outside, O_RDONLY), EACCES))
        return 3;
    if (!denied(open(p, O_WRONLY), EACCES))
        return 4;
    if ((fd = open("/etc/passwd", O_RDONLY)) < 0)
        return 5;
    close(fd);
    if ((fd = open("/dev/null", O_WRONLY)) < 0)
        return 6;
    close(fd);
    return 0;
}

START_TEST(landlock_confines_the_filesystem)
{
    struct discover_fn d;
    struct ident id;
    struct sandbox_fn *box;
    char err[512], base[PATH_MAX + 32];
    int fd;

    ck_assert_int_eq(sandbox_init(), 0);
    testutil_dir_make();
    snprintf(fn_dir, sizeof(fn_dir), "%s/fn", testutil_dir);
    snprintf(outside, sizeof(outside), "%s/secret", testutil_dir);
    snprintf(base, sizeof(base), "%s/tmp", testutil_dir);
    ck_assert_int_eq(mkdir(fn_dir, 0755), 0);
    snprintf(tmpfile_path, sizeof(tmpfile_path), "%s/handler", fn_dir);
    fd = open(tmpfile_path, O_WRONLY | O_CREAT, 0755);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fd = open(outside, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);

    memset(&d, 0, sizeof(d));
    memset(&id, 0, sizeof(id));
    d.name = (char *)"fn";
    d.dir = fn_dir;
    d.set.sandbox = true;
    box = sandbox_fn_new(&d, &id, base, err, sizeof(err));
    ck_assert_msg(box != NULL, "%s", err);
    snprintf(tmpfile_path, sizeof(tmpfile_path), "%s/fn", base);
    ck_assert_str_eq(sandbox_fn_tmpdir(box), tmpfile_path);
    snprintf(tmpfile_path, sizeof(tmpfile_path), "%s/scratch", sandbox_fn_tmpdir(box));
    if (sandbox_fn_ruleset(box) < 0) {
        printf("test_sandbox: the kernel has no Landlock: filesystem confinement not tested\n");
    } else {
        ck_assert_int_eq(in_sandbox(sandbox_fn_ruleset(box), landlock_body), 0);
    }
    sandbox_fn_free(box);
    sandbox_fn_free(NULL);
    testutil_dir_remove();
}
END_TEST

static void root_setup(void)
{
    testutil_root_make("test_sandbox");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

int main(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("sandbox");

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, filter_denies_with_eperm);
    tcase_add_test(tc, landlock_confines_the_filesystem);
    tcase_add_test(tc, signals_only_at_itself_below_landlock_6);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
