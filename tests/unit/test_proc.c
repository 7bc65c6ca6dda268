/*
 * Unit tests for gateway/proc.c.  Each test spawns tests/unit/proc_child (a
 * check program built next to this one) through proc_spawn with a real
 * listening socket, a socketpair end as the database channel and a
 * scoreboard memfd, reaps it, and compares the report it wrote to its
 * stdout, which is the log pipe proc_spawn returns, with what an instance
 * must find: fds 0..4 and nothing else, exactly the environment given, the
 * limits, its own session, no blocked or ignored signal, and, when the test
 * runs as root, nobody's uid and gid.
 */
#include "config.h"

#include "proc.h"

#include "childsetup.h"
#include "scoreboard.h"

#include <check.h>

#include "check_main.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NOBODY 65534
/* Bits of signals 32 and 33 in a /proc/<pid>/status mask. */
#define GLIBC_INTERNAL_SIGNALS ((1ULL << 31) | (1ULL << 32))

/* One folder per tcase, made and removed by the runner process itself, so a
 * failed test (which skips its checked teardown) leaves nothing behind. */
static char realdir[PATH_MAX];
static char child_path[PATH_MAX];

/* What every test hands the instance. */
static int listen_fd = -1;
static int db_pair[2] = {-1, -1}; /* [0] goes to the instance as fd 3 */
static struct scoreboard *sb;

/* proc_child next to this executable, unless FNGATE_PROC_CHILD says where. */
static void find_child(void)
{
    const char *env = getenv("FNGATE_PROC_CHILD");
    char self[PATH_MAX], *dir;
    size_t len;
    ssize_t n;

    if (env && *env) {
        snprintf(child_path, sizeof(child_path), "%s", env);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    dir = dirname(self);
    /* Behind a libtool wrapper the real binary sits in .libs/. */
    len = strlen(dir);
    if (len >= 6 && strcmp(dir + len - 6, "/.libs") == 0)
        dir[len - 6] = '\0';
    snprintf(child_path, sizeof(child_path), "%s/proc_child", dir);
}

/* As root the privilege tests run proc_child as nobody, who may not be able
 * to reach the build tree (CI clones anywhere, /root included): run a copy
 * from this test's folder, made traversable. */
static void stage_child_for_nobody(void)
{
    char buf[65536];
    ssize_t n;
    int in, out, len;

    in = open(child_path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(in, 0);
    len = snprintf(child_path, sizeof(child_path), "%s/proc_child", testutil_dir);
    ck_assert(len > 0 && (size_t)len < sizeof(child_path));
    out = open(child_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    ck_assert_int_ge(out, 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    ck_assert_int_eq(n, 0);
    close(in);
    ck_assert_int_eq(close(out), 0);
    ck_assert_int_eq(chmod(testutil_root, 0755), 0);
    ck_assert_int_eq(chmod(testutil_dir, 0755), 0);
}

static void setup(void)
{
    struct sockaddr_un sa;

    find_child();
    ck_assert_msg(access(child_path, X_OK) == 0, "%s: %s (build it: make check)", child_path,
                  strerror(errno));
    testutil_dir_make();
    ck_assert_ptr_nonnull(realpath(testutil_dir, realdir));
    if (geteuid() == 0)
        stage_child_for_nobody();

    /* The gateway opens everything CLOEXEC; so must this process, whatever
     * its launcher left open, or those descriptors would show up in every
     * child below (see fds_inherited_without_cloexec). */
    for (int fd = 3; fd < 1024; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0)
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    {
        char path[PATH_MAX + 16];
        int n = snprintf(path, sizeof(path), "%s/fn.sock", testutil_dir);
        ck_assert_int_lt(n, (int)sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, (size_t)n + 1);
    }
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(listen_fd, 0);
    ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(listen_fd, 16), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, db_pair), 0);
    sb = scoreboard_new("test");
    ck_assert_ptr_nonnull(sb);
}

static void root_setup(void)
{
    testutil_root_make("test_proc");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

static void teardown(void)
{
    scoreboard_free(sb);
    sb = NULL;
    close(db_pair[0]);
    close(db_pair[1]);
    close(listen_fd);
    testutil_dir_remove();
}

static char *const child_env[] = {
    "FNGATE_FUNCTION=hello", "PATH=/usr/bin:/bin", "EMPTY=", "WITH_EQ=a=b", NULL,
};

/* The spec the tests start from: proc_child with everything given. */
static struct childsetup base_spec(void)
{
    static char *argv[3];
    struct childsetup s;

    argv[0] = child_path;
    argv[1] = "report";
    argv[2] = NULL;
    childsetup_init(&s);
    s.path = child_path;
    s.cwd = testutil_dir;
    s.argv = argv;
    s.envp = child_env;
    s.listen_fd = listen_fd;
    s.db_fd = db_pair[0];
    s.scoreboard_fd = sb->fd;
    s.memory_limit = 0;
    s.open_files = 0;
    return s;
}

/* One run: the exit status and everything written to the log pipe. */
struct run {
    pid_t pid;
    int status;
    char log_pipe[128]; /* identity of the pipe, as proc_child prints it */
    char out[16384];
};

static const char *ident(int fd, const char *type);

static void run_child(const struct childsetup *spec, struct run *r)
{
    int log_fd = -1, fl;
    size_t n = 0;
    ssize_t got;

    memset(r, 0, sizeof(*r));
    r->pid = proc_spawn(spec, &log_fd);
    ck_assert_int_gt(r->pid, 0);
    ck_assert_int_ge(log_fd, 0);
    /* The supervisor reads it from its event loop, and no other instance
     * may inherit it. */
    fl = fcntl(log_fd, F_GETFL);
    ck_assert_int_eq(fl & O_NONBLOCK, O_NONBLOCK);
    ck_assert_int_eq(fcntl(log_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    snprintf(r->log_pipe, sizeof(r->log_pipe), "%s", ident(log_fd, "fifo"));
    ck_assert_int_eq(waitpid(r->pid, &r->status, 0), r->pid);
    /* The child is gone and the parent kept no write end: read to EOF. */
    while ((got = read(log_fd, r->out + n, sizeof(r->out) - 1 - n)) > 0)
        n += (size_t)got;
    ck_assert_msg(got == 0, "log pipe not at EOF after the child exited: %s",
                  got < 0 ? strerror(errno) : "buffer full");
    r->out[n] = '\0';
    close(log_fd);
}

/* run_child, and the child must have exited 0 with a complete report. */
static void run_ok(const struct childsetup *spec, struct run *r)
{
    run_child(spec, r);
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                  "child status 0x%x, output:\n%s", r->status, r->out);
    ck_assert_msg(strstr(r->out, "\nend=1\n") != NULL, "incomplete report:\n%s", r->out);
}

/* The value of the first "KEY=" line of the report (static buffer). */
static const char *get(const struct run *r, const char *key)
{
    static char val[1024];
    char pat[64];
    const char *p, *e;

    snprintf(pat, sizeof(pat), "%s=", key);
    for (p = r->out; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, pat, strlen(pat)) == 0) {
            p += strlen(pat);
            e = strchr(p, '\n');
            ck_assert_ptr_nonnull(e);
            snprintf(val, sizeof(val), "%.*s", (int)(e - p), p);
            return val;
        }
    }
    ck_abort_msg("no '%s' in the report:\n%s", key, r->out);
    return NULL;
}

/* "type:dev:ino:rdev" for FD in this process, as proc_child prints it. */
static const char *ident(int fd, const char *type)
{
    static char buf[128];
    struct stat st;

    ck_assert_int_eq(fstat(fd, &st), 0);
    snprintf(buf, sizeof(buf), "%s:%llu:%llu:%llu", type, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (unsigned long long)st.st_rdev);
    return buf;
}

static int count_fds(void)
{
    struct stat st;
    int n = 0;

    for (int fd = 0; fd < 1024; fd++)
        n += fstat(fd, &st) == 0;
    return n;
}

/* ---- descriptors ----------------------------------------------------------- */

START_TEST(fds_arranged)
{
    struct childsetup spec = base_spec();
    struct run r;

    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "fd0"), ident(listen_fd, "sock"));
    ck_assert_str_eq(get(&r, "fd0_acceptconn"), "1");
    ck_assert_str_eq(get(&r, "fd3"), ident(db_pair[0], "sock"));
    ck_assert_str_eq(get(&r, "fd4"), ident(sb->fd, "reg"));
    /* 1 and 2 are both the pipe whose read end proc_spawn returned: what
     * the instance prints on either comes out of *log_fd. */
    ck_assert_str_eq(get(&r, "fd1"), r.log_pipe);
    ck_assert_str_eq(get(&r, "fd2"), r.log_pipe);
    ck_assert_ptr_nonnull(strstr(r.out, "\nproc_child: to stderr\n"));
    /* Nothing else: the supervisor's other descriptors stay with it. */
    ck_assert_str_eq(get(&r, "fds"), "0,1,2,3,4");
}
END_TEST

START_TEST(fds_usable_by_instance)
{
    /* What the instance writes to fd 3 reaches the pool's end of the pair,
     * and what it stores through fd 4 shows in the supervisor's slot. */
    struct childsetup spec = base_spec();
    struct run r;
    char buf[8] = "";

    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->magic), 0);
    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "db_write"), "3");
    ck_assert_int_eq(read(db_pair[1], buf, sizeof(buf) - 1), 3);
    ck_assert_str_eq(buf, "db\n");
    ck_assert_str_eq(get(&r, "sb"), "mapped");
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->magic), FNSDK_SCOREBOARD_MAGIC);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->state), FNSDK_SCOREBOARD_IDLE);
}
END_TEST

START_TEST(fds_no_db)
{
    struct childsetup spec = base_spec();
    struct run r;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

    spec.db_fd = -1;
    run_ok(&spec, &r);
    ck_assert_int_ge(null, 0);
    ck_assert_str_eq(get(&r, "fd3"), ident(null, "chr"));
    ck_assert_str_eq(get(&r, "fds"), "0,1,2,3,4");
    close(null);
}
END_TEST

START_TEST(fds_sources_in_target_range)
{
    /* Sources that already sit on 0..4, crossed over: the listening socket
     * on fd 4, the database channel on fd 1 and the memfd on fd 0.  Each
     * must still land where it goes, whatever order the dup2s run in. */
    struct childsetup spec = base_spec();
    struct run r;
    char want0[128], want3[128], want4[128];
    int saved[5], l, d, m;

    snprintf(want0, sizeof(want0), "%s", ident(listen_fd, "sock"));
    snprintf(want3, sizeof(want3), "%s", ident(db_pair[0], "sock"));
    snprintf(want4, sizeof(want4), "%s", ident(sb->fd, "reg"));
    /* Out of the way first: the fixture's own fds may be among 0..4. */
    l = fcntl(listen_fd, F_DUPFD_CLOEXEC, 30);
    d = fcntl(db_pair[0], F_DUPFD_CLOEXEC, 30);
    m = fcntl(sb->fd, F_DUPFD_CLOEXEC, 30);
    ck_assert(l >= 30 && d >= 30 && m >= 30);
    for (int fd = 0; fd < 5; fd++)
        saved[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 30);
    ck_assert_int_eq(dup3(l, 4, O_CLOEXEC), 4);
    ck_assert_int_eq(dup3(d, 1, O_CLOEXEC), 1);
    ck_assert_int_eq(dup3(m, 0, O_CLOEXEC), 0);
    spec.listen_fd = 4;
    spec.db_fd = 1;
    spec.scoreboard_fd = 0;
    run_child(&spec, &r);
    for (int fd = 0; fd < 5; fd++) {
        if (saved[fd] >= 0) {
            dup2(saved[fd], fd);
            close(saved[fd]);
        } else {
            close(fd);
        }
    }
    close(l);
    close(d);
    close(m);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "status 0x%x:\n%s", r.status,
                  r.out);
    ck_assert_str_eq(get(&r, "fd0"), want0);
    ck_assert_str_eq(get(&r, "fd0_acceptconn"), "1");
    ck_assert_str_eq(get(&r, "fd3"), want3);
    ck_assert_str_eq(get(&r, "fd4"), want4);
    ck_assert_str_eq(get(&r, "fds"), "0,1,2,3,4");
}
END_TEST

START_TEST(fds_inherited_without_cloexec)
{
    /* A descriptor the gateway itself inherited without CLOEXEC (from the
     * shell, a CI runner, a service manager) must not reach instances:
     * they get 0..4 and nothing else.  An instance holding a pipe's write
     * end keeps whoever reads that pipe from ever seeing EOF. */
    struct childsetup spec = base_spec();
    struct run r;
    int stray = fcntl(db_pair[1], F_DUPFD, 20); /* no CLOEXEC */

    ck_assert_int_ge(stray, 20);
    run_ok(&spec, &r);
    close(stray);
    ck_assert_str_eq(get(&r, "fds"), "0,1,2,3,4");
}
END_TEST

START_TEST(parent_side_clean)
{
    /* The supervisor keeps only the log pipe's read end, and its signal
     * mask comes back as it was. */
    struct childsetup spec = base_spec();
    sigset_t before, after, mask;
    int n0, log_fd = -1, status;
    pid_t pid;

    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, NULL, &before), 0);
    /* The first spawn opens the /dev/null every later one shares. */
    pid = proc_spawn(&spec, &log_fd);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(log_fd);
    n0 = count_fds();
    pid = proc_spawn(&spec, &log_fd);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(count_fds(), n0 + 1);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, NULL, &after), 0);
    for (int sig = 1; sig < 32; sig++)
        ck_assert_msg(sigismember(&before, sig) == sigismember(&after, sig),
                      "signal %d: blocked %d before, %d after", sig, sigismember(&before, sig),
                      sigismember(&after, sig));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(log_fd);
    ck_assert_int_eq(count_fds(), n0);
}
END_TEST

/* ---- environment and arguments ----------------------------------------------- */

START_TEST(env_exact)
{
    struct childsetup spec = base_spec();
    struct run r;
    char want[PATH_MAX + 64];
    size_t n = 0;
    const char *p;

    setenv("FNGATE_TEST_LEAK", "from the gateway", 1);
    run_ok(&spec, &r);
    for (size_t i = 0; child_env[i]; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "env=%s\n", child_env[i]);
    p = strstr(r.out, "\nenv=");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(strncmp(p + 1, want, n), 0);
    /* ... and nothing more: the next line is no env line. */
    ck_assert_int_ne(strncmp(p + 1 + n, "env=", 4), 0);
    ck_assert_ptr_null(strstr(r.out, "FNGATE_TEST_LEAK"));

    ck_assert_str_eq(get(&r, "argc"), "2");
    snprintf(want, sizeof(want), "argv=%s\nargv=report\n", child_path);
    ck_assert_ptr_nonnull(strstr(r.out, want));
    ck_assert_str_eq(get(&r, "cwd"), realdir);
}
END_TEST

START_TEST(env_empty)
{
    static char *const none[] = {NULL};
    struct childsetup spec = base_spec();
    struct run r;

    spec.envp = none;
    run_ok(&spec, &r);
    ck_assert_ptr_null(strstr(r.out, "env="));
}
END_TEST

/* ---- limits ------------------------------------------------------------------ */

START_TEST(limits_set)
{
    struct childsetup spec = base_spec();
    struct run r;

    spec.memory_limit = (int64_t)512 << 20;
    spec.open_files = 64;
    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "as"), "536870912:536870912");
    ck_assert_str_eq(get(&r, "nofile"), "64:64");
}
END_TEST

static const char *limit_str(int res)
{
    static char buf[64];
    struct rlimit rl;
    char cur[24], max[24];

    ck_assert_int_eq(getrlimit(res, &rl), 0);
    if (rl.rlim_cur == RLIM_INFINITY)
        snprintf(cur, sizeof(cur), "inf");
    else
        snprintf(cur, sizeof(cur), "%llu", (unsigned long long)rl.rlim_cur);
    if (rl.rlim_max == RLIM_INFINITY)
        snprintf(max, sizeof(max), "inf");
    else
        snprintf(max, sizeof(max), "%llu", (unsigned long long)rl.rlim_max);
    snprintf(buf, sizeof(buf), "%s:%s", cur, max);
    return buf;
}

START_TEST(limits_zero_inherits)
{
    struct childsetup spec = base_spec();
    struct run r;
    char as[64];

    snprintf(as, sizeof(as), "%s", limit_str(RLIMIT_AS));
    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "as"), as);
    ck_assert_str_eq(get(&r, "nofile"), limit_str(RLIMIT_NOFILE));
}
END_TEST

START_TEST(limits_above_hard_refused)
{
    /* An ordinary user cannot raise a hard limit: the instance never runs
     * and the reason is on the log pipe. */
    struct childsetup spec = base_spec();
    struct rlimit rl;
    struct run r;
    char want[256];

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_max = 256;
    if (rl.rlim_cur > rl.rlim_max)
        rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    spec.open_files = 512;
    run_child(&spec, &r);
    ck_assert(WIFEXITED(r.status));
    ck_assert_int_eq(WEXITSTATUS(r.status), 126);
    snprintf(want, sizeof(want), "fngate: cannot start instance: open_files: %s\n",
             strerror(EPERM));
    ck_assert_str_eq(r.out, want);
}
END_TEST

/* ---- session and signals --------------------------------------------------------- */

START_TEST(own_session)
{
    struct childsetup spec = base_spec();
    struct run r;
    char pid[32];

    run_ok(&spec, &r);
    snprintf(pid, sizeof(pid), "%d", (int)r.pid);
    ck_assert_str_eq(get(&r, "pid"), pid);
    ck_assert_str_eq(get(&r, "sid"), pid);
    ck_assert_str_eq(get(&r, "pgid"), pid);
    /* Stops when the gateway dies. */
    ck_assert_str_eq(get(&r, "pdeathsig"), "15");
}
END_TEST

START_TEST(signals_reset)
{
    /* Whatever the supervisor blocks or ignores, the instance starts with
     * nothing blocked and nothing ignored. */
    struct childsetup spec = base_spec();
    struct run r;
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "sigblk"), "0000000000000000");
    /* Signals 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID): signal()
     * cannot touch them, and GNU make runs its children, this test too,
     * with them ignored.  Every other signal must be back to default. */
    ck_assert_uint_eq(strtoull(get(&r, "sigign"), NULL, 16) & ~GLIBC_INTERNAL_SIGNALS, 0);
}
END_TEST

/* ---- failures after the fork ------------------------------------------------------- */

START_TEST(exec_missing)
{
    struct childsetup spec = base_spec();
    struct run r;
    char want[256];

    spec.path = "/nonexistent/fngate-test/handler";
    run_child(&spec, &r);
    ck_assert(WIFEXITED(r.status));
    ck_assert_int_eq(WEXITSTATUS(r.status), 127);
    snprintf(want, sizeof(want), "fngate: cannot exec %s: %s\n", spec.path, strerror(ENOENT));
    ck_assert_str_eq(r.out, want);
}
END_TEST

START_TEST(exec_not_executable)
{
    struct childsetup spec = base_spec();
    struct run r;
    char path[PATH_MAX + 16], want[PATH_MAX + 128];
    int fd;

    snprintf(path, sizeof(path), "%s/handler", testutil_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    spec.path = path;
    run_child(&spec, &r);
    ck_assert(WIFEXITED(r.status));
    ck_assert_int_eq(WEXITSTATUS(r.status), 127);
    snprintf(want, sizeof(want), "fngate: cannot exec %s: %s\n", path, strerror(EACCES));
    ck_assert_str_eq(r.out, want);
}
END_TEST

START_TEST(chdir_missing)
{
    struct childsetup spec = base_spec();
    struct run r;
    char want[256];

    spec.cwd = "/nonexistent/fngate-test";
    run_child(&spec, &r);
    ck_assert(WIFEXITED(r.status));
    ck_assert_int_eq(WEXITSTATUS(r.status), 126);
    snprintf(want, sizeof(want), "fngate: cannot start instance: chdir: %s\n", strerror(ENOENT));
    ck_assert_str_eq(r.out, want);
}
END_TEST

/* ---- privileges (root only) ------------------------------------------------------- */

START_TEST(drop_to_nobody)
{
    struct childsetup spec = base_spec();
    struct run r;

    spec.drop_privileges = true;
    spec.uid = NOBODY;
    spec.gid = NOBODY;
    spec.cwd = "/"; /* the mkdtemp folder is 0700 root */
    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "uid"), "65534");
    ck_assert_str_eq(get(&r, "euid"), "65534");
    ck_assert_str_eq(get(&r, "gid"), "65534");
    ck_assert_str_eq(get(&r, "egid"), "65534");
    ck_assert_str_eq(get(&r, "groups"), "65534");
    ck_assert_str_eq(get(&r, "setuid0"), "no");
    /* The credential change clears the parent-death signal; it is set again
     * after it. */
    ck_assert_str_eq(get(&r, "pdeathsig"), "15");
    ck_assert_str_eq(get(&r, "fds"), "0,1,2,3,4");
    ck_assert_str_eq(get(&r, "fd0_acceptconn"), "1");
    ck_assert_str_eq(get(&r, "cwd"), "/");
}
END_TEST

START_TEST(drop_with_limits)
{
    /* Limits are set while still root, before the uid change. */
    struct childsetup spec = base_spec();
    struct run r;

    spec.drop_privileges = true;
    spec.uid = NOBODY;
    spec.gid = NOBODY;
    spec.cwd = "/";
    spec.memory_limit = (int64_t)256 << 20;
    spec.open_files = 100;
    run_ok(&spec, &r);
    ck_assert_str_eq(get(&r, "uid"), "65534");
    ck_assert_str_eq(get(&r, "as"), "268435456:268435456");
    ck_assert_str_eq(get(&r, "nofile"), "100:100");
}
END_TEST

/* ---- descendants ---------------------------------------------------------- */

static bool known_none(pid_t pid, void *arg)
{
    (void)pid;
    (void)arg;
    return false;
}

static bool known_pid(pid_t pid, void *arg)
{
    return pid == *(pid_t *)arg;
}

/* A child that waits forever; as root it runs as nobody, like an instance
 * (the gateway never kills a root orphan). */
static pid_t sleeper(bool own_group)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (own_group)
            setpgid(0, 0);
        if (geteuid() == 0 && setuid(65534) < 0)
            _exit(1);
        if (own_group && fork() == 0)
            pause(); /* a grandchild in the same group */
        pause();
        _exit(0);
    }
    if (own_group)
        setpgid(pid, pid); /* either side may run first */
    return pid;
}

START_TEST(orphans_killed_unless_known)
{
    pid_t inherited = sleeper(false), keep, gone;
    int status;

    /* A child from before the gateway started anything is left alone. */
    usleep(20000);
    proc_reaper_init();
    keep = sleeper(false);
    gone = sleeper(false);
    usleep(20000);

    ck_assert_int_eq(proc_orphans_kill(known_pid, &keep), 1);
    ck_assert_int_eq(waitpid(gone, &status, 0), gone);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_int_eq(waitpid(keep, &status, WNOHANG), 0);
    ck_assert_int_eq(proc_orphans_kill(known_none, NULL), 1);
    ck_assert_int_eq(waitpid(keep, &status, 0), keep);
    ck_assert_int_eq(waitpid(inherited, &status, WNOHANG), 0);
    kill(inherited, SIGKILL);
    waitpid(inherited, &status, 0);
}
END_TEST

/* PID's parent, from /proc/PID/stat (comm may hold anything: the fields
 * follow the last ')'), or -1. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *rp;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "re");
    if (!fp)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rp = strrchr(buf, ')');
    return rp ? (pid_t)strtol(rp + 4, NULL, 10) : -1;
}

/* A live instance's orphan (a double fork inside its group, all the
 * sandbox allows) is its instance's until that instance is reaped and its
 * group killed: sweeping it when some other instance exits would kill a
 * helper its function still uses, at a moment nobody chose. */
START_TEST(orphans_in_a_known_group_are_spared)
{
    int fds[2], status;
    pid_t leader, orphan = 0, pid;

    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    proc_reaper_init();
    ck_assert_int_eq(pipe(fds), 0);
    leader = fork();
    ck_assert_int_ge(leader, 0);
    if (leader == 0) {
        setpgid(0, 0);
        if (geteuid() == 0 && setuid(65534) < 0)
            _exit(1);
        pid = fork();
        if (pid == 0) {
            pid_t g = fork();
            if (g == 0) {
                pause();
                _exit(0);
            }
            if (write(fds[1], &g, sizeof(g)) != sizeof(g))
                _exit(1);
            _exit(0); /* G is orphaned: it comes back to the test */
        }
        waitpid(pid, NULL, 0);
        pause();
        _exit(0);
    }
    setpgid(leader, leader);
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &orphan, sizeof(orphan)), (ssize_t)sizeof(orphan));
    close(fds[0]);
    /* Its parent's exit hands it to the test (the subreaper). */
    for (int i = 0; i < 1000 && parent_of(orphan) != getpid(); i++)
        usleep(5000);
    ck_assert_int_eq(parent_of(orphan), getpid());
    ck_assert_int_eq(getpgid(orphan), leader);

    ck_assert_int_eq(proc_orphans_kill(known_pid, &leader), 0);
    ck_assert_int_eq(kill(orphan, 0), 0);
    ck_assert_int_eq(waitpid(orphan, &status, WNOHANG), 0);
    /* Once its group is nobody's, it goes, and its leader with it. */
    ck_assert_int_eq(proc_orphans_kill(known_none, NULL), 2);
    ck_assert_int_eq(waitpid(orphan, &status, 0), orphan);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_int_eq(waitpid(leader, &status, 0), leader);
}
END_TEST

START_TEST(group_kill_reaches_grandchildren)
{
    pid_t leader, pid;
    int status, killed = 0;

    /* As the gateway is: the orphaned grandchild comes back to us. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    leader = sleeper(true);
    usleep(50000); /* the grandchild forks */
    proc_group_kill(leader);
    while ((pid = waitpid(-1, &status, 0)) > 0)
        killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    ck_assert_int_eq(killed, 2);
    proc_group_kill(leader); /* ESRCH is not an error */
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *tc;

    tc = tcase("fds");
    tcase_add_test(tc, fds_arranged);
    tcase_add_test(tc, fds_usable_by_instance);
    tcase_add_test(tc, fds_no_db);
    tcase_add_test(tc, fds_sources_in_target_range);
    tcase_add_test(tc, fds_inherited_without_cloexec);
    tcase_add_test(tc, parent_side_clean);
    suite_add_tcase(s, tc);

    tc = tcase("env");
    tcase_add_test(tc, env_exact);
    tcase_add_test(tc, env_empty);
    suite_add_tcase(s, tc);

    tc = tcase("limits");
    tcase_add_test(tc, limits_set);
    tcase_add_test(tc, limits_zero_inherits);
    /* Root may raise a hard limit, so there is no refusal to see. */
    if (geteuid() != 0)
        tcase_add_test(tc, limits_above_hard_refused);
    suite_add_tcase(s, tc);

    tc = tcase("session");
    tcase_add_test(tc, own_session);
    tcase_add_test(tc, signals_reset);
    suite_add_tcase(s, tc);

    tc = tcase("descendants");
    tcase_add_test(tc, orphans_killed_unless_known);
    tcase_add_test(tc, orphans_in_a_known_group_are_spared);
    tcase_add_test(tc, group_kill_reaches_grandchildren);
    suite_add_tcase(s, tc);

    tc = tcase("failure");
    tcase_add_test(tc, exec_missing);
    tcase_add_test(tc, exec_not_executable);
    tcase_add_test(tc, chdir_missing);
    suite_add_tcase(s, tc);

    /* Only root can change its uid: as an ordinary user this tcase is not
     * added at all. */
    if (geteuid() == 0) {
        tc = tcase("privileges");
        tcase_add_test(tc, drop_to_nobody);
        tcase_add_test(tc, drop_with_limits);
        suite_add_tcase(s, tc);
    }

    return s;
}

CHECK_MAIN(proc_suite)
