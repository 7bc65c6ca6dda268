/*
 * spawn_floor.c: the floors under a cold start (issue 11 point 2), built and
 * run by bench_core.sh.
 *
 *     spawn_floor HANDLER TRIVIAL ROUNDS
 *
 * Medians in microseconds of:
 *   exec-trivial  vfork + execve of TRIVIAL (a static program that exits at
 *                 once) until the child is gone: the kernel's floor
 *   exec-handler  the same with HANDLER (the static hello function; with no
 *                 listening socket on fd 0 it exits at once too): its size
 *   fork-template fork() of an already started small process, until the child
 *                 has written one byte: what a zygote / template process that
 *                 forks instances would pay instead of vfork + exec
 *   queue-query   one sock_diag UNIX_DIAG_RQLEN query on a listening socket
 *                 with 8 connections waiting (the supervisor's queue query)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static double median_us(long long *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return (n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0) / 1000.0;
}

static long long exec_once(const char *path)
{
    char *argv[] = {(char *)path, NULL}, *envp[] = {NULL};
    long long t0 = now_ns();
    pid_t pid = vfork();
    int st;

    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(path, argv, envp);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    return now_ns() - t0;
}

static long long fork_once(void)
{
    int p[2];
    char c;
    long long t0, t;
    pid_t pid;

    if (pipe(p) < 0)
        exit(1);
    t0 = now_ns();
    pid = fork();
    if (pid == 0) {
        (void)!write(p[1], "x", 1);
        _exit(0);
    }
    (void)!read(p[0], &c, 1);
    t = now_ns() - t0;
    waitpid(pid, NULL, 0);
    close(p[0]);
    close(p[1]);
    return t;
}

static int nl = -1;

static long long query_once(unsigned ino)
{
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req;
    char buf[1024];
    long long t0 = now_ns();

    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_ino = ino;
    req.r.udiag_show = UDIAG_SHOW_RQLEN;
    req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0U;
    if (send(nl, &req, sizeof(req), 0) < 0 || recv(nl, buf, sizeof(buf), 0) < 0)
        exit(1);
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    int n = argc > 3 ? atoi(argv[3]) : 200;
    long long *v = calloc((size_t)n, sizeof(*v));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int lfd;

    if (argc < 3 || !v) {
        fprintf(stderr, "usage: spawn_floor HANDLER TRIVIAL [ROUNDS]\n");
        return 2;
    }
    for (int i = 0; i < n; i++)
        v[i] = exec_once(argv[2]);
    printf("exec-trivial  %8.0f\n", median_us(v, n));
    for (int i = 0; i < n; i++)
        v[i] = exec_once(argv[1]);
    printf("exec-handler  %8.0f\n", median_us(v, n));
    for (int i = 0; i < n; i++)
        v[i] = fork_once();
    printf("fork-template %8.0f\n", median_us(v, n));

    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/spawn_floor.%d.sock", (int)getpid());
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0)
        return 1;
    for (int i = 0; i < 8; i++) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            return 1;
    }
    fstat(lfd, &st);
    nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
    for (int i = 0; i < n; i++)
        v[i] = query_once((unsigned)st.st_ino);
    printf("queue-query   %8.1f\n", median_us(v, n));
    unlink(sa.sun_path);
    return 0;
}
