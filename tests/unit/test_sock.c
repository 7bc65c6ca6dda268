/*
 * Unit tests for gateway/sock.c: the socket_dir lock that keeps two gateways
 * apart, the listening sockets nginx connects to (mode, stale and live files,
 * paths that cannot work) and the accept-queue length the supervisor scales
 * on.  Every test runs in a fresh mkdtemp directory; errors are compared
 * exactly, as the operator reads them.
 */
#include "config.h"

#include "sock.h"

#include <check.h>

#include "check_main.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One folder per tcase, made and removed by the runner process itself, so a
 * failed test (which skips its checked teardown) leaves nothing behind. */
static char errbuf[512];

static void setup(void)
{

    testutil_dir_make();
    errbuf[0] = '\0';
}

static void root_setup(void)
{
    testutil_root_make("test_sock");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

static void teardown(void)
{
    sock_diag_close();
    testutil_dir_remove();
}

/* <testutil_dir>/REL in a static buffer (one of a few, so two can be live). */
static const char *tpath(const char *rel)
{
    static char bufs[4][PATH_MAX + 256];
    static unsigned next;
    char *b = bufs[next++ % N(bufs)];

    snprintf(b, sizeof(bufs[0]), "%s/%s", testutil_dir, rel);
    return b;
}

static struct sockaddr_un addr_of(const char *path)
{
    struct sockaddr_un sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    return sa;
}

/* A socket bound to PATH, listening when LISTEN is true. */
static int bound_socket(const char *path, bool listening, int backlog)
{
    struct sockaddr_un sa = addr_of(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path,
                  strerror(errno));
    if (listening)
        ck_assert_int_eq(listen(fd, backlog), 0);
    return fd;
}

/* A client connected (or queued) to PATH; -1 with errno on failure. */
static int client(const char *path, bool nonblock)
{
    return sock_connect(path, nonblock ? SOCK_NONBLOCK : 0);
}

static ino_t inode_of(const char *path)
{
    struct stat st;

    ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return st.st_ino;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static int listen_ok(const char *path, int backlog, mode_t mode)
{
    int fd = sock_listen(path, backlog, mode, (gid_t)-1, errbuf, sizeof(errbuf));

    ck_assert_msg(fd >= 0, "sock_listen(%s) failed: %s", path, errbuf);
    return fd;
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    ck_assert_int_ge(fputs(content, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- the socket_dir lock ------------------------------------------------- */

START_TEST(lock_creates_dirs)
{
    const char *dir = tpath("run");
    struct stat st;
    int fd;

    ck_assert(!exists(dir));
    fd = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_msg(fd >= 0, "sock_dir_lock: %s", errbuf);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(stat(tpath("run/fn"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(stat(tpath("run/fngate.lock"), &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    /* Instances must not inherit the lock. */
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    close(fd);
}
END_TEST

START_TEST(lock_existing_dirs)
{
    const char *dir = tpath("run");
    int fd;

    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(mkdir(tpath("run/fn"), 0700), 0);
    fd = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_msg(fd >= 0, "sock_dir_lock: %s", errbuf);
    close(fd);
}
END_TEST

START_TEST(lock_second_refused)
{
    const char *dir = tpath("run");
    char want[PATH_MAX + 64];
    int fd, fd2;

    fd = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_msg(fd >= 0, "sock_dir_lock: %s", errbuf);
    fd2 = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_int_eq(fd2, -1);
    snprintf(want, sizeof(want), "%s: another fngate is running with this socket_dir", dir);
    ck_assert_str_eq(errbuf, want);

    /* Released with the first holder: the next gateway gets it. */
    close(fd);
    fd2 = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_msg(fd2 >= 0, "sock_dir_lock after release: %s", errbuf);
    close(fd2);
}
END_TEST

START_TEST(lock_held_by_other_process)
{
    const char *dir = tpath("run");
    int fd, p[2], hold[2], status;
    pid_t pid;
    char c;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(pipe(hold), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Holds the lock until the test lets go of HOLD (or dies). */
        int lfd = sock_dir_lock(dir, errbuf, sizeof(errbuf));
        close(hold[1]);
        (void)!write(p[1], lfd >= 0 ? "y" : "n", 1);
        (void)!read(hold[0], &c, 1);
        _exit(0);
    }
    close(p[1]);
    close(hold[0]);
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    fd = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_int_eq(fd, -1);
    ck_assert_ptr_nonnull(strstr(errbuf, "another fngate"));
    close(hold[1]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(p[0]);
    /* Its exit releases the lock. */
    fd = sock_dir_lock(dir, errbuf, sizeof(errbuf));
    ck_assert_msg(fd >= 0, "sock_dir_lock after the holder died: %s", errbuf);
    close(fd);
}
END_TEST

START_TEST(lock_unusable_dir)
{
    char want[PATH_MAX + 64];
    const char *dir = tpath("file/run");

    write_file(tpath("file"), "not a folder\n");
    ck_assert_int_eq(sock_dir_lock(dir, errbuf, sizeof(errbuf)), -1);
    snprintf(want, sizeof(want), "%s: cannot create: %s", dir, strerror(ENOTDIR));
    ck_assert_str_eq(errbuf, want);
}
END_TEST

/* ---- sock_listen ----------------------------------------------------------- */

START_TEST(listen_mode_and_flags)
{
    static const mode_t modes[] = {0600, 0660, 0666, 0700};
    mode_t old = umask(027);

    for (size_t i = 0; i < N(modes); i++) {
        const char *path = tpath("fn.sock");
        struct stat st;
        int fd = listen_ok(path, 16, modes[i]), on = 0;
        socklen_t len = sizeof(on);

        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        /* chmod after bind: the umask does not narrow it.  The owner-execute
         * bit is fngate.inc's mark of a live socket (its `-x` test). */
        ck_assert_msg((st.st_mode & 07777) == (modes[i] | S_IXUSR), "mode %o, want %o",
                      (unsigned)(st.st_mode & 07777), (unsigned)(modes[i] | S_IXUSR));
        ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
        ck_assert_int_eq(on, 1);
        /* CLOEXEC, and blocking: instances inherit it as fd 0 explicitly. */
        ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        close(fd);
        ck_assert_int_eq(unlink(path), 0);
    }
    umask(old);
}
END_TEST

START_TEST(listen_group)
{
    const char *path = tpath("fn.sock");
    gid_t gid = getegid();
    struct stat st;
    int fd = sock_listen(path, 16, 0660, gid, errbuf, sizeof(errbuf));

    ck_assert_msg(fd >= 0, "sock_listen: %s", errbuf);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_uint_eq(st.st_gid, gid);
    close(fd);
}
END_TEST

START_TEST(listen_accepts_clients)
{
    const char *path = tpath("fn.sock");
    int fd = listen_ok(path, 16, 0600);
    int c = client(path, false), a;

    ck_assert_int_ge(c, 0);
    a = accept(fd, NULL, NULL);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(write(c, "x", 1), 1);
    {
        char b = 0;
        ck_assert_int_eq(read(a, &b, 1), 1);
        ck_assert_int_eq(b, 'x');
    }
    close(a);
    close(c);
    close(fd);
}
END_TEST

START_TEST(listen_replaces_stale_bound)
{
    const char *path = tpath("fn.sock");
    int old = bound_socket(path, false, 0), fd, c;

    close(old); /* the file stays, nobody behind it */
    ck_assert(exists(path));
    c = client(path, false);
    ck_assert_int_eq(c, -1);
    ck_assert_int_eq(errno, ECONNREFUSED);
    fd = listen_ok(path, 16, 0600);
    /* The path now leads to the new socket. */
    c = client(path, false);
    ck_assert_msg(c >= 0, "connect: %s", strerror(errno));
    ck_assert_int_eq(sock_queue_len(fd), 1);
    close(c);
    close(fd);
}
END_TEST

START_TEST(listen_replaces_stale_listener)
{
    /* A gateway that was SIGKILLed: it listened, its socket file remains. */
    const char *path = tpath("fn.sock");
    int old = bound_socket(path, true, 16), fd, c;

    close(old);
    fd = listen_ok(path, 16, 0600);
    c = client(path, false);
    ck_assert_int_ge(c, 0);
    close(c);
    close(fd);
}
END_TEST

START_TEST(listen_refuses_live)
{
    const char *path = tpath("fn.sock");
    int live = bound_socket(path, true, 16), c, a;
    ino_t ino = inode_of(path);
    char want[PATH_MAX + 64];

    ck_assert_int_eq(sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)), -1);
    snprintf(want, sizeof(want), "%s: another process is listening on it", path);
    ck_assert_str_eq(errbuf, want);
    /* Left untouched: same file, and its owner still gets new clients. */
    ck_assert(inode_of(path) == ino);
    c = client(path, true);
    ck_assert_int_ge(c, 0);
    /* Its queue: the probe's connection (closed by now) and the new client. */
    ck_assert_int_eq(sock_queue_len(live), 2);
    for (int i = 0; i < 2; i++) {
        a = accept4(live, NULL, NULL, SOCK_NONBLOCK);
        ck_assert_msg(a >= 0, "accept: %s", strerror(errno));
        close(a);
    }
    close(c);
    close(live);
}
END_TEST

/* Runs sock_listen(PATH) in a child and waits up to MS for its answer.
 * Returns false if it was still blocked (the child is killed); otherwise
 * stores its result and copies its error into errbuf. */
static bool listen_within(const char *path, int ms, int *result)
{
    int p[2], status;
    struct pollfd pfd;
    pid_t pid;
    bool done;

    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int r;
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        r = sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf));
        (void)!write(p[1], &r, sizeof(r));
        (void)!write(p[1], errbuf, strlen(errbuf) + 1);
        _exit(0);
    }
    close(p[1]);
    pfd.fd = p[0];
    pfd.events = POLLIN;
    done = poll(&pfd, 1, ms) == 1;
    if (done) {
        ssize_t n = read(p[0], result, sizeof(*result));
        ck_assert_int_eq(n, (ssize_t)sizeof(*result));
        n = read(p[0], errbuf, sizeof(errbuf) - 1);
        ck_assert_int_ge(n, 1);
        errbuf[n] = '\0';
    } else {
        kill(pid, SIGKILL);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(p[0]);
    return done;
}

/* A live socket whose accept queue is full (every instance busy, nginx still
 * connecting) is still live: sock_listen must refuse it promptly rather than
 * block in its probing connect() until somebody accepts. */
START_TEST(listen_refuses_live_full_queue)
{
    const char *path = tpath("fn.sock");
    int live = bound_socket(path, true, 1), clients[64], n = 0, r = 0;
    ino_t ino = inode_of(path);
    char want[PATH_MAX + 64];

    for (; n < (int)N(clients); n++) {
        clients[n] = client(path, true);
        if (clients[n] < 0) {
            ck_assert_int_eq(errno, EAGAIN);
            break;
        }
    }
    ck_assert_int_lt(n, (int)N(clients));
    ck_assert_msg(listen_within(path, 2000, &r),
                  "sock_listen still blocked after 2 s on a live socket with a full queue");
    ck_assert_int_eq(r, -1);
    snprintf(want, sizeof(want), "%s: another process is listening on it", path);
    ck_assert_str_eq(errbuf, want);
    ck_assert(inode_of(path) == ino);
    for (int i = 0; i < n; i++)
        close(clients[i]);
    close(live);
}
END_TEST

START_TEST(listen_refuses_regular_file)
{
    const char *path = tpath("fn.sock");
    char want[PATH_MAX + 64];
    char buf[64] = "";
    FILE *f;

    write_file(path, "keep me\n");
    ck_assert_int_eq(sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)), -1);
    snprintf(want, sizeof(want), "%s: exists and is not a socket", path);
    ck_assert_str_eq(errbuf, want);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "keep me\n");

    /* Nor a folder, nor a symlink to a socket. */
    ck_assert_int_eq(mkdir(tpath("dir.sock"), 0700), 0);
    ck_assert_int_eq(sock_listen(tpath("dir.sock"), 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_ptr_nonnull(strstr(errbuf, ": exists and is not a socket"));
    ck_assert_int_eq(symlink(path, tpath("link.sock")), 0);
    ck_assert_int_eq(sock_listen(tpath("link.sock"), 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_ptr_nonnull(strstr(errbuf, ": exists and is not a socket"));
}
END_TEST

/* Builds <testutil_dir>/<padding> of exactly LEN characters into BUF. */
static void path_of_len(char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, PATH_MAX, "%s/", testutil_dir);

    ck_assert_uint_lt(n, len);
    memset(buf + n, 's', len - n);
    buf[len] = '\0';
}

START_TEST(listen_path_length)
{
    struct sockaddr_un sa;
    size_t max = sizeof(sa.sun_path) - 1; /* 107 on Linux */
    char path[PATH_MAX], want[PATH_MAX + 64];
    int fd;

    path_of_len(path, max + 1);
    ck_assert_int_eq(sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)), -1);
    snprintf(want, sizeof(want), "%s: socket path longer than %zu bytes", path, max);
    ck_assert_str_eq(errbuf, want);
    ck_assert(!exists(path));

    path_of_len(path, max + 40);
    ck_assert_int_eq(sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)), -1);
    ck_assert(!exists(path));

    /* The longest path that fits works. */
    path_of_len(path, max);
    fd = sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf));
    ck_assert_msg(fd >= 0, "sock_listen(%zu chars): %s", strlen(path), errbuf);
    ck_assert(exists(path));
    close(fd);
}
END_TEST

START_TEST(listen_missing_folder)
{
    const char *path = tpath("nowhere/fn.sock");
    char want[PATH_MAX + 64];

    ck_assert_int_eq(sock_listen(path, 16, 0600, (gid_t)-1, errbuf, sizeof(errbuf)), -1);
    snprintf(want, sizeof(want), "%s: bind: %s", path, strerror(ENOENT));
    ck_assert_str_eq(errbuf, want);
}
END_TEST

/* ---- sock_connect ----------------------------------------------------------- */

/* What `fngate invoke` and `fngate status` tell apart: no socket, nobody
 * listening, a path that cannot be a socket's, and a live listener. */
START_TEST(connect_errors_and_success)
{
    struct sockaddr_un sa;
    char path[PATH_MAX];
    const char *p = tpath("c.sock");
    int lfd, fd;

    errno = 0;
    ck_assert_int_eq(sock_connect(tpath("missing.sock"), 0), -1);
    ck_assert_int_eq(errno, ENOENT);

    lfd = bound_socket(p, false, 0);
    errno = 0;
    ck_assert_int_eq(sock_connect(p, 0), -1);
    ck_assert_int_eq(errno, ECONNREFUSED);
    close(lfd);
    unlink(p);

    path_of_len(path, sizeof(sa.sun_path));
    errno = 0;
    ck_assert_int_eq(sock_connect(path, 0), -1);
    ck_assert_int_eq(errno, ENAMETOOLONG);

    lfd = bound_socket(p, true, 4);
    fd = sock_connect(p, SOCK_NONBLOCK);
    ck_assert_int_ge(fd, 0);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
    close(lfd);
}
END_TEST

/* ---- sock_queue_len -------------------------------------------------------- */

START_TEST(queue_empty)
{
    int fd = listen_ok(tpath("fn.sock"), 16, 0600);

    ck_assert_int_eq(sock_queue_len(fd), 0);
    ck_assert_int_eq(sock_queue_len(fd), 0);
    close(fd);
}
END_TEST

START_TEST(queue_counts_exactly)
{
    const char *path = tpath("fn.sock");
    int fd = listen_ok(path, 64, 0600), c[10];

    for (int i = 0; i < (int)N(c); i++) {
        c[i] = client(path, false);
        ck_assert_int_ge(c[i], 0);
        ck_assert_int_eq(sock_queue_len(fd), i + 1);
    }
    for (int i = (int)N(c) - 1; i >= 0; i--) {
        int a = accept(fd, NULL, NULL);
        ck_assert_int_ge(a, 0);
        ck_assert_int_eq(sock_queue_len(fd), i);
        close(a);
    }
    for (size_t i = 0; i < N(c); i++)
        close(c[i]);
    ck_assert_int_eq(sock_queue_len(fd), 0);
    close(fd);
}
END_TEST

START_TEST(queue_closed_client_still_counts)
{
    /* A client that gave up still sits in the queue until accepted: the
     * kernel's count, which the supervisor sees, includes it. */
    const char *path = tpath("fn.sock");
    int fd = listen_ok(path, 16, 0600), c1, c2, a;

    c1 = client(path, false);
    c2 = client(path, false);
    ck_assert_int_ge(c1, 0);
    ck_assert_int_ge(c2, 0);
    close(c1);
    ck_assert_int_eq(sock_queue_len(fd), 2);
    a = accept(fd, NULL, NULL);
    ck_assert_int_ge(a, 0);
    close(a);
    ck_assert_int_eq(sock_queue_len(fd), 1);
    close(c2);
    close(fd);
}
END_TEST

START_TEST(queue_several_sockets)
{
    enum { NS = 4 };
    int fds[NS], c[NS][NS + 1];
    char name[32];

    for (int s = 0; s < NS; s++) {
        snprintf(name, sizeof(name), "fn%d.sock", s);
        fds[s] = listen_ok(tpath(name), 16, 0600);
        for (int i = 0; i < s * 2 % (NS + 1); i++) {
            c[s][i] = client(tpath(name), false);
            ck_assert_int_ge(c[s][i], 0);
        }
    }
    /* Interleaved queries over the one netlink socket, twice over. */
    for (int round = 0; round < 2; round++) {
        for (int s = NS - 1; s >= 0; s--)
            ck_assert_int_eq(sock_queue_len(fds[s]), s * 2 % (NS + 1));
    }
    /* Closing the netlink socket: the next query opens a new one. */
    sock_diag_close();
    for (int s = 0; s < NS; s++)
        ck_assert_int_eq(sock_queue_len(fds[s]), s * 2 % (NS + 1));
    for (int s = 0; s < NS; s++) {
        for (int i = 0; i < s * 2 % (NS + 1); i++)
            close(c[s][i]);
        close(fds[s]);
    }
}
END_TEST

START_TEST(queue_backlog_full)
{
    /* Up to what the kernel queues: the count matches the clients that got
     * in, however many the backlog allowed. */
    const char *path = tpath("fn.sock");
    int fd = listen_ok(path, 3, 0600), c[32], n = 0;

    for (; n < (int)N(c); n++) {
        c[n] = client(path, true);
        if (c[n] < 0)
            break;
    }
    ck_assert_int_lt(n, (int)N(c));
    ck_assert_int_ge(n, 3);
    ck_assert_int_eq(sock_queue_len(fd), n);
    for (int i = 0; i < n; i++)
        close(c[i]);
    close(fd);
}
END_TEST

START_TEST(queue_fallback_poll)
{
    /* When sock_diag has no answer for the descriptor, readiness decides:
     * 0 when nothing waits, 1 when something does. */
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(sock_queue_len(p[0]), 0);
    ck_assert_int_eq(write(p[1], "ab", 2), 2);
    ck_assert_int_eq(sock_queue_len(p[0]), 1);
    close(p[0]);
    close(p[1]);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

static Suite *sock_suite(void)
{
    Suite *s = suite_create("sock");
    TCase *tc;

    tc = tcase("lock");
    tcase_add_test(tc, lock_creates_dirs);
    tcase_add_test(tc, lock_existing_dirs);
    tcase_add_test(tc, lock_second_refused);
    tcase_add_test(tc, lock_held_by_other_process);
    tcase_add_test(tc, lock_unusable_dir);
    suite_add_tcase(s, tc);

    tc = tcase("listen");
    tcase_add_test(tc, listen_mode_and_flags);
    tcase_add_test(tc, listen_group);
    tcase_add_test(tc, listen_accepts_clients);
    tcase_add_test(tc, listen_replaces_stale_bound);
    tcase_add_test(tc, listen_replaces_stale_listener);
    tcase_add_test(tc, listen_refuses_live);
    tcase_add_test(tc, listen_refuses_live_full_queue);
    tcase_add_test(tc, listen_refuses_regular_file);
    tcase_add_test(tc, listen_path_length);
    tcase_add_test(tc, listen_missing_folder);
    tcase_add_test(tc, connect_errors_and_success);
    suite_add_tcase(s, tc);

    tc = tcase("queue");
    tcase_add_test(tc, queue_empty);
    tcase_add_test(tc, queue_counts_exactly);
    tcase_add_test(tc, queue_closed_client_still_counts);
    tcase_add_test(tc, queue_several_sockets);
    tcase_add_test(tc, queue_backlog_full);
    tcase_add_test(tc, queue_fallback_poll);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(sock_suite)
