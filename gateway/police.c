/*
 * Policing instances from the supervisor's side (see police.h for the
 * model).  The connection scan is one NETLINK_SOCK_DIAG dump of the unix
 * sockets in the listening and established states with their names and
 * peers: an accepted socket shares its listener's path, and a connection
 * still in a listener's queue is told apart by its peer appearing in that
 * listener's UNIX_DIAG_ICONS.  Connections are keyed by inode and timed from
 * the first dump that showed them in service; the slot is read only for its
 * state and request counter, both of which an honest SDK keeps and a
 * dishonest one can only use against itself.
 */
#include "config.h"

#include "police.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#define POLICE_SCAN_MS 100
/* An overdue connection nobody could be found holding is looked for again
 * this often, not at every tick. */
#define POLICE_RECHECK_MS 1000
#define POLICE_CONNS_MAX 4096
#define POLICE_ICONS_MAX 4096
#define MS ((int64_t)1000000)

#ifndef TCP_ESTABLISHED
#define TCP_ESTABLISHED 1
#endif
#ifndef TCP_LISTEN
#define TCP_LISTEN 10
#endif

/* How much of an instance's epoll state the supervisor reads per look: the
 * SDK has one epoll set watching the listening socket and at most
 * FNSDK_KEPT_MAX (32) kept connections, and a hostile instance must not make
 * the supervisor's tick read thousands of sets of thousands of lines. */
#define POLICE_EPOLL_SETS 4
#define POLICE_EPOLL_LINES 256

/* What one look at a holder's fd table found. */
struct police_fds {
    int fd;                    /* its descriptor for the connection */
    int ep[POLICE_EPOLL_SETS]; /* its first epoll sets */
    int n_ep;
};

struct police_conn {
    uint32_t ino;
    int64_t first_ns;        /* first scan that saw it in service */
    unsigned seen;           /* scan generation that last saw it */
    pid_t holder;            /* the instance seen holding it when asked (0: not seen) */
    struct police_fds held;  /* what the question's look found in the holder */
    bool waiting;            /* seen waiting for a next request since the question */
    int64_t waiting_look_ns; /* the grace's last look at the holder's epoll sets */
    int64_t check_ns;        /* SIGUSR2 sent (0: not) */
    int64_t next_look_ns;
};

struct police_fn {
    struct police_fn *next, *prev; /* the registry */
    char *path;
    struct police_conn *conns;
    size_t n, cap;
    /* Filled during a scan. */
    uint32_t *icons;
    size_t n_icons;
    uint32_t *est, *est_peer; /* established: inode and peer */
    size_t n_est, cap_est;
};

static struct police_fn *police_fns;
static int police_nl = -1;
static bool police_nl_broken;
static int64_t police_last_scan;
static unsigned police_gen;

int64_t police_ns_between(int64_t a, int64_t b)
{
    if (a > b)
        return 0;
    /* b - a may still overflow for a very negative A. */
    if (a < 0 && b > INT64_MAX + a)
        return INT64_MAX;
    return b - a;
}

const char *police_verdict_text(enum police_verdict v)
{
    switch (v) {
    case POLICE_TIMEOUT:
        return "busy in one request longer than request_timeout: answering 504, replacing it";
    case POLICE_CHECK_HOLDER:
        return "holding a connection longer than request_timeout: asked to answer 504 (SIGUSR2)";
    case POLICE_CHECK:
        return "maybe holding a connection older than request_timeout (its fd table cannot be "
               "read): asked to time out its own request (SIGUSR2)";
    default:
        return "";
    }
}

struct police_fn *police_fn_new(const char *sock_path)
{
    struct police_fn *pf = calloc(1, sizeof(*pf));

    if (!pf || !(pf->path = strdup(sock_path))) {
        free(pf);
        log_warn("%s: cannot watch its connections", sock_path);
        return NULL;
    }
    pf->next = police_fns;
    if (police_fns)
        police_fns->prev = pf;
    police_fns = pf;
    return pf;
}

void police_fn_free(struct police_fn *pf)
{
    if (!pf)
        return;
    if (pf->prev)
        pf->prev->next = pf->next;
    else
        police_fns = pf->next;
    if (pf->next)
        pf->next->prev = pf->prev;
    free(pf->path);
    free(pf->conns);
    free(pf->icons);
    free(pf->est);
    free(pf->est_peer);
    free(pf);
}

void police_close(void)
{
    if (police_nl >= 0)
        close(police_nl);
    police_nl = -1;
}

static struct police_fn *police_fn_by_name(const char *name, size_t len)
{
    /* Abstract names start with a NUL and never match a path. */
    for (struct police_fn *pf = police_fns; pf; pf = pf->next) {
        if (strlen(pf->path) == len && memcmp(pf->path, name, len) == 0)
            return pf;
    }
    return NULL;
}

static int police_push(uint32_t **a, uint32_t **b, size_t *n, size_t *cap, uint32_t x, uint32_t y)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        uint32_t *na, *nb;
        if (nc > POLICE_CONNS_MAX)
            return -1;
        na = realloc(*a, nc * sizeof(*na));
        if (!na)
            return -1;
        *a = na;
        nb = realloc(*b, nc * sizeof(*nb));
        if (!nb)
            return -1;
        *b = nb;
        *cap = nc;
    }
    (*a)[*n] = x;
    (*b)[*n] = y;
    (*n)++;
    return 0;
}

/* One message of the dump. */
static void police_msg(const struct unix_diag_msg *m, size_t len)
{
    const struct rtattr *rta = (const struct rtattr *)(m + 1);
    size_t rlen = len - NLMSG_ALIGN(sizeof(*m));
    const char *name = NULL;
    size_t name_len = 0;
    uint32_t peer = 0;
    const uint32_t *icons = NULL;
    size_t n_icons = 0;
    struct police_fn *pf;

    if (len < NLMSG_ALIGN(sizeof(*m)))
        return;
    for (; RTA_OK(rta, rlen); rta = RTA_NEXT(rta, rlen)) {
        switch (rta->rta_type) {
        case UNIX_DIAG_NAME:
            name = RTA_DATA(rta);
            name_len = RTA_PAYLOAD(rta);
            break;
        case UNIX_DIAG_PEER:
            if (RTA_PAYLOAD(rta) >= sizeof(uint32_t))
                memcpy(&peer, RTA_DATA(rta), sizeof(peer));
            break;
        case UNIX_DIAG_ICONS:
            icons = RTA_DATA(rta);
            n_icons = RTA_PAYLOAD(rta) / sizeof(uint32_t);
            break;
        }
    }
    if (!name || m->udiag_type != SOCK_STREAM)
        return;
    if (name_len > 0 && name[name_len - 1] == '\0')
        name_len--;
    pf = police_fn_by_name(name, name_len);
    if (!pf)
        return;
    if (m->udiag_state == TCP_LISTEN && icons) {
        uint32_t *ni;
        /* Checked before the realloc: a moved block would be lost. */
        if (pf->n_icons + n_icons > POLICE_ICONS_MAX)
            return;
        ni = realloc(pf->icons, (pf->n_icons + n_icons) * sizeof(*ni) + 1);
        if (!ni)
            return;
        pf->icons = ni;
        memcpy(pf->icons + pf->n_icons, icons, n_icons * sizeof(*ni));
        pf->n_icons += n_icons;
    } else if (m->udiag_state == TCP_ESTABLISHED) {
        police_push(&pf->est, &pf->est_peer, &pf->n_est, &pf->cap_est, m->udiag_ino, peer);
    }
}

static int police_dump(void)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req r;
    } req;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    static char buf[32768] __attribute__((aligned(8)));

    if (police_nl < 0) {
        police_nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (police_nl < 0)
            return -1;
    }
    memset(&req, 0, sizeof(req));
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = ++police_gen;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_LISTEN);
    req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS;
    if (sendto(police_nl, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -1;
    for (;;) {
        ssize_t r = recv(police_nl, buf, sizeof(buf), 0);
        size_t left;
        const struct nlmsghdr *h = (const struct nlmsghdr *)buf;

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        left = (size_t)r;
        for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != police_gen)
                continue;
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -1;
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
                police_msg(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN);
        }
    }
}

static bool police_in(const uint32_t *a, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] == x)
            return true;
    }
    return false;
}

/* Merges the scan's established sockets into PF's table. */
static void police_fn_update(struct police_fn *pf, int64_t now)
{
    for (size_t i = 0; i < pf->n_est; i++) {
        struct police_conn *c = NULL;

        if (pf->est_peer[i] && police_in(pf->icons, pf->n_icons, pf->est_peer[i]))
            continue; /* still queued: queue_timeout's business */
        for (size_t j = 0; j < pf->n; j++) {
            if (pf->conns[j].ino == pf->est[i]) {
                c = &pf->conns[j];
                break;
            }
        }
        if (!c) {
            if (pf->n == pf->cap) {
                size_t nc = pf->cap ? pf->cap * 2 : 16;
                struct police_conn *n2;
                if (nc > POLICE_CONNS_MAX)
                    continue;
                n2 = realloc(pf->conns, nc * sizeof(*n2));
                if (!n2)
                    continue;
                pf->conns = n2;
                pf->cap = nc;
            }
            c = &pf->conns[pf->n++];
            memset(c, 0, sizeof(*c));
            c->ino = pf->est[i];
            c->first_ns = now;
        }
        c->seen = police_gen;
    }
    for (size_t j = 0; j < pf->n;) {
        if (pf->conns[j].seen != police_gen)
            pf->conns[j] = pf->conns[--pf->n];
        else
            j++;
    }
    pf->n_est = 0;
    pf->n_icons = 0;
}

void police_scan(int64_t now)
{
    if (!police_fns || police_nl_broken)
        return;
    if (police_last_scan && now - police_last_scan < POLICE_SCAN_MS * MS)
        return;
    police_last_scan = now;
    if (police_dump() < 0) {
        int saved = errno;
        police_nl_broken = true;
        police_close();
        errno = saved;
        log_warn("sock_diag dump of unix sockets failed: request_timeout falls back to the "
                 "scoreboard alone");
        for (struct police_fn *pf = police_fns; pf; pf = pf->next)
            pf->n = pf->n_est = pf->n_icons = 0;
        return;
    }
    for (struct police_fn *pf = police_fns; pf; pf = pf->next)
        police_fn_update(pf, now);
}

size_t police_fn_overdue(const struct police_fn *pf, int64_t ms, int64_t now)
{
    size_t n = 0;

    for (size_t i = 0; pf && i < pf->n; i++) {
        if (police_ns_between(pf->conns[i].first_ns, now) > ms * MS)
            n++;
    }
    return n;
}

/* Whether PID holds socket inode INO: 1 yes (its descriptor and its first
 * epoll sets in *F), 0 no, -1 its fd table cannot be read (not root and the
 * instance is not dumpable).  One pass over the table for both. */
static int police_holds(pid_t pid, uint32_t ino, struct police_fds *f)
{
    char path[64], want[32], got[64];
    DIR *d;
    struct dirent *de;
    int r = 0;

    f->fd = -1;
    f->n_ep = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%u]", ino);
    d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d)) != NULL && !(r == 1 && f->n_ep == POLICE_EPOLL_SETS)) {
        ssize_t n;
        if (de->d_name[0] == '.')
            continue;
        n = readlinkat(dirfd(d), de->d_name, got, sizeof(got) - 1);
        if (n < 0) {
            if (errno == EACCES || errno == EPERM)
                r = -1;
            continue;
        }
        got[n] = '\0';
        if (strcmp(got, want) == 0) {
            f->fd = atoi(de->d_name);
            r = 1;
        } else if (f->n_ep < POLICE_EPOLL_SETS && strcmp(got, "anon_inode:[eventpoll]") == 0) {
            f->ep[f->n_ep++] = atoi(de->d_name);
        }
    }
    closedir(d);
    return f->fd >= 0 ? 1 : r;
}

/* Whether PID's epoll set EP watches descriptor FD, socket inode INO
 * (fs/eventpoll.c's "tfd: ... ino:" lines in /proc/<pid>/fdinfo/<ep>). */
static bool police_epoll_watches(pid_t pid, int ep, int fd, uint32_t ino)
{
    char path[64], line[256];
    FILE *fp;
    bool r = false;
    int lines = 0;

    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, ep);
    if (!(fp = fopen(path, "re")))
        return false;
    while (!r && lines++ < POLICE_EPOLL_LINES && fgets(line, sizeof(line), fp)) {
        int tfd;
        unsigned long tino;
        if (sscanf(line, "tfd: %d events: %*x data: %*x pos: %*d ino: %lx", &tfd, &tino) == 2)
            r = tfd == fd && tino == ino;
    }
    fclose(fp);
    return r;
}

/* Whether the holder F describes waits for a next request on the
 * connection, socket inode INO: one of its epoll sets watches it.  The SDK
 * watches an idle kept connection there and takes it out while it serves a
 * request on it, so an overdue request is never so watched.  The kernel's
 * word about the present, not the slot's: an instance that fakes it spares
 * only itself. */
static bool police_waiting(pid_t pid, const struct police_fds *f, uint32_t ino)
{
    for (int i = 0; i < f->n_ep; i++) {
        if (police_epoll_watches(pid, f->ep[i], f->fd, ino))
            return true;
    }
    return false;
}

/* What the slot alone says, on the supervisor's clock. */
static void police_observe(struct police_view *v, int64_t now)
{
    struct police_inst *pi = v->pi;
    uint32_t state = FNSDK_SCOREBOARD_LOAD(v->slot->state);
    uint64_t req = FNSDK_SCOREBOARD_LOAD(v->slot->requests);
    bool progressed = req != pi->requests;

    pi->requests = req;
    if (state == FNSDK_SCOREBOARD_IDLE && pi->was_idle && !progressed)
        pi->quiet = true;
    pi->was_idle = state == FNSDK_SCOREBOARD_IDLE;
    if (state == FNSDK_SCOREBOARD_BUSY) {
        if (!pi->busy_since_ns || progressed)
            pi->busy_since_ns = now;
    } else {
        pi->busy_since_ns = 0;
    }
    if (state == FNSDK_SCOREBOARD_IDLE) {
        if (!pi->idle_since_ns || progressed)
            pi->idle_since_ns = now;
    } else {
        pi->idle_since_ns = 0;
    }
    v->idle_ms = pi->idle_since_ns ? (now - pi->idle_since_ns) / MS : -1;
}

/* The per-instance rules: timeouts and stop escalation. */
static void police_inst_judge(struct police_view *v, const struct police_limits *lim, int64_t now)
{
    int64_t rt = lim->request_timeout_ms;

    v->verdict = POLICE_NONE;
    if (v->kill_ns)
        return;
    if (v->timeout_ns) {
        if (now - v->timeout_ns > lim->kill_after_ms * MS)
            v->verdict = POLICE_KILL_TIMEOUT;
        return;
    }
    if (rt > 0 && v->pi->busy_since_ns && (now - v->pi->busy_since_ns) / MS > rt) {
        v->verdict = POLICE_TIMEOUT;
        return;
    }
    /* A spare-born start that never gets to accept() (a spare stopped by a
     * process of the same uid before its assignment, a handler.so whose
     * constructor hangs) would otherwise hold the function's cold start
     * forever.  Only for instances sure to mark their slot: a handler
     * that does not use libfngate never does. */
    if (v->reports_ready && lim->start_timeout_ms > 0 && !v->term_ns &&
        !FNSDK_SCOREBOARD_LOAD(v->slot->ready_ns) &&
        (now - v->spawned_ns) / MS > lim->start_timeout_ms) {
        v->verdict = POLICE_KILL_START;
        return;
    }
    if (v->term_ns) {
        /* A request in hand may finish; a claim of one buys at most a
         * request_timeout (30 s when there is none). */
        int64_t grace = lim->stop_timeout_ms;
        if (!v->pi->idle_since_ns)
            grace += rt > 0 ? rt : 30000;
        if ((now - v->term_ns) / MS > grace)
            v->verdict = POLICE_KILL_STUCK;
    }
}

/* A connection older than request_timeout: ask who holds it, then kill it
 * if it neither answered nor proved to be waiting on a kept connection.
 * One its holder is watching for a next request carries none in service:
 * it is not asked, and an asked holder seen watching it before the grace
 * is over is spared (a front end's pooled connection in steady use, its
 * holder never quietly idle nor in one request). */
static void police_conn_judge(struct police_conn *c, struct police_view **v, size_t n,
                              const struct police_limits *lim, int64_t now)
{
    struct police_view *cand[64];
    size_t n_cand = 0;
    bool spared = false;

    /* Looked for during the grace, every POLICE_SCAN_MS until seen: only
     * the epoll sets the question's look found, not the whole fd table. */
    if (c->check_ns && c->holder && !c->waiting &&
        now - c->waiting_look_ns >= (int64_t)POLICE_SCAN_MS * MS) {
        c->waiting_look_ns = now;
        c->waiting = police_waiting(c->holder, &c->held, c->ino);
    }
    if (now < c->next_look_ns)
        return;
    if (c->check_ns) {
        if (now - c->check_ns <= lim->kill_after_ms * MS)
            return;
        for (size_t i = 0; i < n; i++) {
            if (v[i]->pi->check_ns != c->check_ns || v[i]->kill_ns || v[i]->verdict != POLICE_NONE)
                continue;
            /* A kept connection: seen waiting for its next request, or in
             * one request since before the question (the slot-based
             * timeout bounds that claim to request_timeout). */
            if (c->holder && (c->waiting || v[i]->pi->quiet ||
                              (v[i]->pi->busy_since_ns && v[i]->pi->busy_since_ns <= c->check_ns)))
                spared = true;
            else if (!c->holder || c->holder == v[i]->pid)
                v[i]->verdict = POLICE_KILL_TIMEOUT;
        }
        c->check_ns = 0;
        c->holder = 0;
        c->waiting = false;
        /* A kept connection is asked again only once its request could be
         * overdue once more. */
        c->next_look_ns = now + (spared ? lim->request_timeout_ms : POLICE_RECHECK_MS) * MS;
        return;
    }
    c->next_look_ns = now + POLICE_RECHECK_MS * MS;
    for (size_t i = 0; i < n; i++) {
        struct police_fds held;
        int h;
        /* Only an instance that existed when the connection appeared can
         * have accepted it. */
        if (v[i]->kill_ns || v[i]->timeout_ns || v[i]->verdict != POLICE_NONE ||
            v[i]->spawned_ns > c->first_ns)
            continue;
        h = police_holds(v[i]->pid, c->ino, &held);
        if (h > 0 && police_waiting(v[i]->pid, &held, c->ino)) {
            /* Waiting for its next request: nothing to ask until one
             * could be overdue. */
            c->next_look_ns = now + lim->request_timeout_ms * MS;
            return;
        }
        if (h > 0) {
            c->holder = v[i]->pid;
            c->held = held;
            c->waiting_look_ns = now;
            cand[0] = v[i];
            n_cand = 1;
            break;
        }
        if (h < 0 && n_cand < sizeof(cand) / sizeof(cand[0]))
            cand[n_cand++] = v[i];
    }
    if (n_cand == 0)
        return; /* held by no instance (a descendant): nothing to time out here */
    c->check_ns = now;
    for (size_t i = 0; i < n_cand; i++) {
        cand[i]->pi->check_ns = now;
        cand[i]->pi->quiet = false;
        cand[i]->verdict = c->holder ? POLICE_CHECK_HOLDER : POLICE_CHECK;
    }
}

void police_fn_judge(struct police_fn *pf, struct police_view **v, size_t n,
                     const struct police_limits *lim, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        police_observe(v[i], now);
        police_inst_judge(v[i], lim, now);
    }
    if (!pf || lim->request_timeout_ms <= 0)
        return;
    for (size_t j = 0; j < pf->n; j++) {
        struct police_conn *c = &pf->conns[j];
        if (police_ns_between(c->first_ns, now) > lim->request_timeout_ms * MS)
            police_conn_judge(c, v, n, lim, now);
    }
}
