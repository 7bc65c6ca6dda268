/*
 * burst.c: N requests sent at the same moment through nginx (issue 11),
 * built and run by bench_core.sh.  It replaces burst.py, whose asyncio loop
 * took 25 us of CPU per write and about as much per answer on the 2-core
 * bench VM: the "slowest request" of a 64-request burst was mostly the
 * client's own time (3 to 4 ms, warm or cold), which hid most of what a
 * back end's cold start costs and added a millisecond of noise per burst.
 *
 *     burst PORT PATH N             -> "ok SLOWEST_MS MEDIAN_MS CODES"
 *     burst --warm K [--settle M] [--gap MS] [--children PID[:EXE[:NAME]]]
 *           [--timeline FILE] PORT PATH N
 *         -> "cold SLOWEST_MS MEDIAN_MS CODES [PROCS]", up to M lines
 *            "settle ...", then K lines "warm ..."
 *
 * Opens N keep-alive connections to 127.0.0.1:PORT first, then writes the N
 * requests back to back (one write each) and times each from its own write
 * to the last byte of its body (Content-Length, or the last chunk: php-fpm's
 * answers are chunked), reading with epoll.  CODES counts the statuses,
 * e.g. 200:64 (-1: no whole answer), sorted by status.  Also used for the
 * overload figure (many callers, few instances).
 *
 * With --warm K the same N connections send the same burst again, GAP ms
 * (default 200) after the previous one was answered: the first burst is the
 * cold one (the caller made sure no process serves PATH), the K last are the
 * warm reference.  With --settle M (needs --children) up to M bursts go
 * before those, until one leaves the back end with as many processes as the
 * burst before it: both back ends start more processes when a burst finds
 * every one busy, and a reference that pays for starts is not warm.
 * --children PID[:EXE[:NAME]] appends to each line how many children PID has
 * once that burst is answered (only those running EXE, if given, and
 * fngate's spare processes serving function NAME: comm is the name).
 * --timeline FILE writes each request of the cold burst as "start_ns end_ns
 * status" (CLOCK_MONOTONIC, the supervisor's trace clock), for burstrace.py.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BURST_BUF 65536

struct conn {
    int fd;
    char *buf;
    size_t len;
    long long t0, t1;
    int status; /* -1 until a whole answer was read */
    int done;
};

static const char *children_spec;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "burst: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Whether BUF[0..LEN) holds one whole answer; sets *STATUS. */
static int answer_complete(const char *buf, size_t len, int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *p, *body;
    long long clen = 0;
    int chunked = 0;

    if (!end)
        return 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    for (p = memchr(buf, '\n', (size_t)(end - buf)); p && p < end;
         p = memchr(p, '\n', (size_t)(end - p))) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0)
            clen = atoll(p + 15);
        else if (strncasecmp(p, "transfer-encoding:", 18) == 0 &&
                 memmem(p, (size_t)(end - p), "chunked", 7))
            chunked = 1;
    }
    body = end + 4;
    if (!chunked)
        return (long long)(buf + len - body) >= clen;
    /* chunks: SIZE[;ext]\r\n DATA \r\n ... 0\r\n\r\n (no trailers here) */
    for (p = body;;) {
        const char *eol = memmem(p, (size_t)(buf + len - p), "\r\n", 2);
        char *q;
        long long size;
        if (!eol)
            return 0;
        size = strtoll(p, &q, 16);
        if (q == p || size < 0)
            return -1;
        if (size == 0)
            return (size_t)(buf + len - (eol + 2)) >= 2;
        if (buf + len - (eol + 2) < size + 2)
            return 0;
        p = eol + 2 + size + 2;
    }
}

/* One burst over the N connections; returns 0, or -1 on a 60 s timeout. */
static int burst_once(struct conn *c, int n, int ep, const char *req, size_t reqlen)
{
    struct epoll_event evs[256];
    int left = n;
    long long deadline;

    for (int i = 0; i < n; i++) {
        c[i].len = 0;
        c[i].status = -1;
        c[i].done = 0;
        c[i].t1 = 0;
    }
    for (int i = 0; i < n; i++) {
        c[i].t0 = now_ns();
        if (write(c[i].fd, req, reqlen) != (ssize_t)reqlen) {
            c[i].t1 = now_ns();
            c[i].done = 1;
            left--;
        }
    }
    deadline = now_ns() + 60000000000LL;
    while (left > 0) {
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        if (now_ns() > deadline)
            return -1;
        for (int e = 0; e < k; e++) {
            struct conn *x = &c[evs[e].data.u32];
            ssize_t r;
            if (x->done)
                continue;
            for (;;) {
                if (x->len == BURST_BUF - 1) {
                    r = 0; /* an answer bigger than a hello's: count it as none */
                    break;
                }
                r = read(x->fd, x->buf + x->len, BURST_BUF - 1 - x->len);
                if (r <= 0)
                    break;
                x->len += (size_t)r;
            }
            x->buf[x->len] = '\0'; /* the header scan's strncasecmp stops there */
            int st = -1, whole = answer_complete(x->buf, x->len, &st);
            if (whole > 0 || whole < 0 || r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                x->t1 = now_ns();
                x->status = whole > 0 ? st : -1;
                x->done = 1;
                left--;
            }
        }
    }
    return 0;
}

/* How many children the process of the --children spec has (see the top). */
static int children(const char *spec)
{
    char pid[32] = "", exe[4096] = "", name[64] = "";
    const char *a = strchr(spec, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(pid, sizeof(pid), "%.*s", (int)(a ? a - spec : (long)strlen(spec)), spec);
    if (a)
        snprintf(exe, sizeof(exe), "%.*s", (int)(b ? b - a - 1 : (long)strlen(a + 1)), a + 1);
    if (b)
        snprintf(name, sizeof(name), "%.15s", b + 1);
    if (!(d = opendir("/proc")))
        die("/proc");
    while ((de = readdir(d))) {
        char path[300], stat[1024], link[4096], comm[64];
        char *p;
        FILE *f;
        ssize_t l;
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        p = fgets(stat, sizeof(stat), f);
        fclose(f);
        if (!p || !(p = strrchr(stat, ')')))
            continue;
        /* ") STATE PPID ..." */
        char st, ppid[32];
        if (sscanf(p + 1, " %c %31s", &st, ppid) != 2 || strcmp(ppid, pid) != 0)
            continue;
        if (exe[0]) {
            snprintf(path, sizeof(path), "/proc/%s/exe", de->d_name);
            if ((l = readlink(path, link, sizeof(link) - 1)) < 0)
                continue;
            link[l] = '\0';
            if (strcmp(link, exe) != 0) {
                const char *base = strrchr(link, '/');
                base = base ? base + 1 : link;
                snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
                if (!(f = fopen(path, "r")))
                    continue;
                p = fgets(comm, sizeof(comm), f);
                fclose(f);
                if (!p)
                    continue;
                comm[strcspn(comm, "\n")] = '\0';
                if (!name[0] || strcmp(base, "fngate-spare") != 0 || strcmp(comm, name) != 0)
                    continue;
            }
        }
        n++;
    }
    closedir(d);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

static void line(const char *tag, const struct conn *c, int n)
{
    double *ms = calloc((size_t)n, sizeof(*ms));
    int *st = calloc((size_t)n, sizeof(*st));
    double med;

    if (!ms || !st)
        die("calloc");
    for (int i = 0; i < n; i++) {
        ms[i] = (double)(c[i].t1 - c[i].t0) / 1e6;
        st[i] = c[i].status;
    }
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    qsort(st, (size_t)n, sizeof(*st), cmp_int);
    med = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    printf("%s %.2f %.2f ", tag, ms[n - 1], med);
    for (int i = 0, first = 1; i < n;) {
        int j = i;
        while (j < n && st[j] == st[i])
            j++;
        printf("%s%d:%d", first ? "" : ",", st[i], j - i);
        first = 0;
        i = j;
    }
    if (children_spec)
        printf(" %d", children(children_spec));
    printf("\n");
    fflush(stdout);
    free(ms);
    free(st);
}

static int cmp_t0(const void *a, const void *b)
{
    const struct conn *x = a, *y = b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: burst [--warm K] [--settle M] [--gap MS] [--children SPEC] [--timeline FILE] "
            "PORT PATH N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int warm = 0, settle = 0, port, n, ep, i;
    double gap = 200.0;
    const char *timeline = NULL, *path;
    char req[1024];
    size_t reqlen;
    struct conn *c;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timespec gap_ts;

    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--warm"))
            warm = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--settle"))
            settle = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--gap"))
            gap = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--children"))
            children_spec = argv[i + 1];
        else if (!strcmp(argv[i], "--timeline"))
            timeline = argv[i + 1];
        else
            usage();
    }
    if (argc - i != 3)
        usage();
    port = atoi(argv[i]);
    path = argv[i + 1];
    n = atoi(argv[i + 2]);
    if (port <= 0 || port > 65535 || n <= 0 || n > 100000)
        usage();
    reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    if (reqlen >= sizeof(req))
        usage();
    gap_ts.tv_sec = (time_t)(gap / 1000);
    gap_ts.tv_nsec = (long)((gap - (double)gap_ts.tv_sec * 1000) * 1e6);

    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!(c = calloc((size_t)n, sizeof(*c))) || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("set-up");
    for (i = 0; i < n; i++) {
        int one = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (!(c[i].buf = malloc(BURST_BUF)))
            die("malloc");
        if ((c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            die("socket");
        if (connect(c[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            die("connect");
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (fcntl(c[i].fd, F_SETFL, O_NONBLOCK) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev) < 0)
            die("epoll_ctl");
    }
    nanosleep(&(struct timespec){0, 50000000}, NULL);
    if (burst_once(c, n, ep, req, reqlen) < 0)
        fprintf(stderr, "burst: no whole answer within 60 s\n");
    if (warm == 0) {
        line("ok", c, n);
        return 0;
    }
    line("cold", c, n);
    if (timeline) {
        FILE *f = fopen(timeline, "w");
        struct conn *s = malloc((size_t)n * sizeof(*s));
        if (!f || !s)
            die(timeline);
        memcpy(s, c, (size_t)n * sizeof(*s));
        qsort(s, (size_t)n, sizeof(*s), cmp_t0);
        for (i = 0; i < n; i++)
            fprintf(f, "%lld %lld %d\n", s[i].t0, s[i].t1, s[i].status);
        fclose(f);
        free(s);
    }
    /* Settle: a back end may start more processes on the first warm bursts
     * (both do, when every process is busy); the reference is the burst
     * once their number holds, not one that pays for starts. */
    int procs = children_spec ? children(children_spec) : -1;
    for (i = 0; i < settle; i++) {
        int now;
        nanosleep(&gap_ts, NULL);
        burst_once(c, n, ep, req, reqlen);
        now = children_spec ? children(children_spec) : -1;
        line("settle", c, n);
        if (now == procs)
            break;
        procs = now;
    }
    for (i = 0; i < warm; i++) {
        nanosleep(&gap_ts, NULL);
        burst_once(c, n, ep, req, reqlen);
        line("warm", c, n);
    }
    for (i = 0; i < n; i++) {
        close(c[i].fd);
        free(c[i].buf);
    }
    free(c);
    close(ep);
    return 0;
}
