/*
 * Unit tests for gateway/childsetup.c, the set-up an instance makes on
 * itself (shared by proc.c's vfork child and the spare process): each runs
 * it in a forked child and reports what the child sees.
 */
#include "config.h"

#include "childsetup.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct childsetup base(int devnull)
{
    struct childsetup cs;
    childsetup_init(&cs);
    cs.devnull = devnull;
    cs.parent = getpid();
    return cs;
}

/* Runs BODY(CS) in a child; returns its exit status. */
static int in_child(struct childsetup *cs, int (*body)(struct childsetup *cs))
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(body(cs));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static bool same_file(int a, int b)
{
    struct stat x, y;
    return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

static int fds_body(struct childsetup *cs)
{
    struct stat nul, st;
    const char *what;
    int p[2], stray;

    if (pipe(p) < 0)
        return 90;
    stray = dup(p[0]); /* no CLOEXEC: must still be closed */
    cs->log_fd = p[1];
    cs->scoreboard_fd = p[0];
    if (fstat(cs->devnull, &nul) < 0 || childsetup_apply(cs, &what) != 0)
        return 1;
    if (fstat(0, &st) < 0 || st.st_rdev != nul.st_rdev || !S_ISCHR(st.st_mode))
        return 2;
    if (!same_file(1, 2) || !same_file(1, 4))
        return 3;
    if (write(1, "x", 1) != 1)
        return 4;
    {
        char c;
        if (read(4, &c, 1) != 1 || c != 'x')
            return 5;
    }
    for (int fd = 5; fd < 64; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            return 6;
    }
    (void)stray;
    return 0;
}

START_TEST(fds_land_on_0_to_4_and_nothing_else)
{
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct childsetup cs = base(devnull);
    ck_assert_int_eq(in_child(&cs, fds_body), 0);
    close(devnull);
}
END_TEST

/* Identity of a file: the descriptors are closed by the set-up. */
struct fileid {
    dev_t dev;
    ino_t ino;
};

static struct fileid fileid_of(int fd)
{
    struct stat st;
    struct fileid id = {0, 0};
    if (fstat(fd, &st) == 0) {
        id.dev = st.st_dev;
        id.ino = st.st_ino;
    }
    return id;
}

static bool is_file(int fd, struct fileid id)
{
    struct fileid now = fileid_of(fd);
    return now.ino && now.dev == id.dev && now.ino == id.ino;
}

static int named_body(struct childsetup *cs)
{
    struct fileid listen, db, sb, out;
    const char *what;
    int p[2];

    if (pipe(p) < 0)
        return 90;
    /* Above 10, where the set-up lifts its own copies, and in an order
     * unlike the targets'. */
    cs->scoreboard_fd = fcntl(open("/", O_RDONLY), F_DUPFD, 20);
    cs->db_fd = fcntl(open("/tmp", O_RDONLY), F_DUPFD, 21);
    cs->listen_fd = fcntl(open("/dev/zero", O_RDONLY), F_DUPFD, 22);
    cs->log_fd = p[1];
    listen = fileid_of(cs->listen_fd);
    db = fileid_of(cs->db_fd);
    sb = fileid_of(cs->scoreboard_fd);
    out = fileid_of(p[1]);
    if (childsetup_apply(cs, &what) != 0)
        return 1;
    if (!is_file(0, listen))
        return 2;
    if (!is_file(1, out) || !is_file(2, out))
        return 3;
    if (!is_file(3, db))
        return 4;
    if (!is_file(4, sb))
        return 5;
    if (fcntl(20, F_GETFD) >= 0 || fcntl(21, F_GETFD) >= 0 || fcntl(22, F_GETFD) >= 0)
        return 6;
    return 0;
}

START_TEST(each_named_descriptor_lands_on_its_number)
{
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct childsetup cs = base(devnull);
    ck_assert_int_eq(in_child(&cs, named_body), 0);
    close(devnull);
}
END_TEST

static int init_body(struct childsetup *cs)
{
    struct stat nul, st;
    const char *what;

    if (fstat(cs->devnull, &nul) < 0 || childsetup_apply(cs, &what) != 0)
        return 1;
    for (int fd = 0; fd < 5; fd++) {
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != nul.st_rdev)
            return 2 + fd;
    }
    return 0;
}

START_TEST(nothing_given_is_dev_null_on_0_to_4)
{
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct childsetup cs = base(devnull);

    ck_assert_int_eq(cs.listen_fd, -1);
    ck_assert_int_eq(cs.db_fd, -1);
    ck_assert_int_eq(cs.scoreboard_fd, -1);
    ck_assert_int_eq(cs.ruleset_fd, -1);
    ck_assert_int_eq(cs.log_fd, -1);
    ck_assert(!cs.sandbox && !cs.drop_privileges && !cs.bpf && !cs.cwd);
    ck_assert_int_eq(in_child(&cs, init_body), 0);
    close(devnull);
}
END_TEST

static int limits_body(struct childsetup *cs)
{
    struct rlimit rl;
    sigset_t mask;
    struct sigaction sa;
    const char *what;

    signal(SIGUSR1, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    if (childsetup_apply(cs, &what) != 0)
        return 1;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur != 64 || rl.rlim_max != 64)
        return 2;
    if (getrlimit(RLIMIT_AS, &rl) < 0 || rl.rlim_cur != (rlim_t)1 << 32)
        return 3;
    if (sigaction(SIGUSR1, NULL, &sa) < 0 || sa.sa_handler != SIG_DFL)
        return 4;
    if (sigprocmask(SIG_SETMASK, NULL, &mask) < 0 || sigismember(&mask, SIGUSR2))
        return 5;
    if (getsid(0) != getpid())
        return 6;
    return 0;
}

START_TEST(limits_signals_and_session)
{
    static const int sigs[] = {SIGUSR1};
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct childsetup cs = base(devnull);
    cs.sigs = sigs;
    cs.nsigs = 1;
    cs.open_files = 64;
    cs.memory_limit = (int64_t)1 << 32;
    ck_assert_int_eq(in_child(&cs, limits_body), 0);
    close(devnull);
}
END_TEST

static int chdir_body(struct childsetup *cs)
{
    const char *what = NULL;
    if (childsetup_apply(cs, &what) != -1 || errno != ENOENT || !what || strcmp(what, "chdir") != 0)
        return 1;
    return 0;
}

START_TEST(a_failed_step_is_named_with_its_errno)
{
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct childsetup cs = base(devnull);
    cs.cwd = "/nonexistent/fngate-childsetup";
    ck_assert_int_eq(in_child(&cs, chdir_body), 0);
    close(devnull);
}
END_TEST

static int orphan_body(struct childsetup *cs)
{
    const char *what;
    return childsetup_apply(cs, &what) == -2 ? 0 : 1;
}

START_TEST(a_gone_gateway_is_reported)
{
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct childsetup cs = base(devnull);
    cs.parent = 1; /* never our parent here */
    ck_assert_int_eq(in_child(&cs, orphan_body), 0);
    close(devnull);
}
END_TEST

static int root_body(struct childsetup *cs)
{
    const char *what = NULL;
    if (childsetup_apply(cs, &what) != 0)
        return 1;
    if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534)
        return 2;
    if (setuid(0) == 0 || errno != EPERM)
        return 3;
    return 0;
}

START_TEST(root_is_gone_after_the_uid_change)
{
    int devnull;
    struct childsetup cs;
    if (geteuid() != 0) {
        fprintf(stderr, "test_childsetup: not root: the uid change is not tested here\n");
        return;
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    cs = base(devnull);
    cs.drop_privileges = true;
    cs.uid = 65534;
    cs.gid = 65534;
    ck_assert_int_eq(in_child(&cs, root_body), 0);
    close(devnull);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("childsetup");
    TCase *tc = tcase_create("childsetup");

    tcase_add_test(tc, fds_land_on_0_to_4_and_nothing_else);
    tcase_add_test(tc, each_named_descriptor_lands_on_its_number);
    tcase_add_test(tc, nothing_given_is_dev_null_on_0_to_4);
    tcase_add_test(tc, limits_signals_and_session);
    tcase_add_test(tc, a_failed_step_is_named_with_its_errno);
    tcase_add_test(tc, a_gone_gateway_is_reported);
    tcase_add_test(tc, root_is_gone_after_the_uid_change);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
