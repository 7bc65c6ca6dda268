/*
 * Pool process control.  The pool is its own program (fngate-pool), so the
 * supervisor never maps libpq; the database URL goes to it as the first
 * message on the control socket, never in an argv or environment, and it
 * inherits no descriptor but that socket, so it holds no function's
 * listening socket.  Channels go to a pool process only once it has said it
 * is ready (one byte on the control socket), so a pool that cannot be
 * exec'd or dies at start takes no channel with it and no instance has to
 * be replaced.  Until then they wait in a queue, and while there is no pool
 * (it died, cannot start, or has not said ready within a second) the
 * supervisor stands in for it on each queued channel: it reads each query
 * frame and answers FG005 at once, so a query fails promptly instead of
 * waiting for request_timeout, and the instance keeps its channel for the
 * pool that comes back.
 */
#include "config.h"

#include "poolctl.h"

#include "ident.h"
#include "log.h"
#include "pool/pool.h"
#include "pool/poolwire.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POOLCTL_BACKOFF_MAX_MS 5000
/* How long a starting pool may take to say it is ready before queries are
 * answered FG005 (a start takes a few milliseconds). */
#define POOLCTL_READY_GRACE_MS 1000
/* What the stand-in answers, and the most it reads per channel and turn. */
#define POOLCTL_DOWN_STATE "FG005"
#define POOLCTL_DOWN_MSG "the database pool is not running"
#define POOLCTL_DOWN_READ 16384

struct poolctl;

struct poolctl_pending {
    struct poolctl_pending *next;
    struct poolctl *pc;
    int fd;
    struct pool_hello hello;
    char *conninfo; /* owned: hello.conninfo_len bytes, or NULL */
    /* The stand-in's reading of the channel (poolctl_down_cb): the frame in
     * progress, which must be read to its end before the channel can go to
     * a pool (the pool would take its tail for a new frame). */
    struct event *ev; /* armed while the stand-in reads this channel */
    uint8_t hdr[4];
    int hdr_got;        /* header bytes of the current frame read so far */
    uint64_t body_left; /* body bytes of the current frame still to skip */
};

struct poolctl {
    struct event_base *base;
    struct pool_settings set;
    char *conninfo; /* owned; set.conninfo points here */
    pid_t pid;
    int ctl_fd;
    int stats_fd; /* borrowed: the statistics memfd, fd 4 in the pool */
    int64_t started_ns;
    int failures;
    bool ready;             /* the running pool said it is ready: channels go to it */
    bool down;              /* no pool to hand channels to: the stand-in answers */
    struct event *ctl_ev;   /* the control socket's ready byte (and EOF) */
    struct event *grace_ev; /* a starting pool's time to say ready */
    struct ident id;        /* who the pool runs as: never root */
    struct event *restart_ev;
    struct event *write_ev; /* armed while hand-overs wait for socket space */
    struct poolctl_pending *pending, *pending_tail;
};

static int64_t poolctl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void poolctl_settings(struct pool_settings *s, const struct conf *c)
{
    memset(s, 0, sizeof(*s));
    s->conninfo = c->gw.database_url;
    s->pool_size = c->gw.pool_size;
    s->min_pool = c->gw.min_pool;
    s->db_wait_timeout_ms = c->gw.db_wait_timeout_ms;
    s->max_result = c->gw.max_result;
    s->max_query = c->gw.max_query;
    s->prepared = c->gw.prepared_statements;
    s->stmt_cache = 256;
}

bool poolctl_differs(const struct poolctl *pc, const struct conf *c)
{
    struct pool_settings s;

    if (!pc)
        return c->gw.database_url != NULL;
    if (!c->gw.database_url)
        return true;
    poolctl_settings(&s, c);
    return strcmp(s.conninfo, pc->set.conninfo) != 0 || s.pool_size != pc->set.pool_size ||
           s.min_pool != pc->set.min_pool || s.db_wait_timeout_ms != pc->set.db_wait_timeout_ms ||
           s.max_result != pc->set.max_result || s.max_query != pc->set.max_query ||
           s.prepared != pc->set.prepared;
}

static void poolctl_flush(struct poolctl *pc);
static void poolctl_pending_free(struct poolctl_pending *p);

static void poolctl_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poolctl_flush(arg);
}

static bool poolctl_midframe(const struct poolctl_pending *p)
{
    return p->hdr_got > 0 || p->body_left > 0;
}

/* Sends what is queued to a ready pool; stops at the first failure (the
 * pool is gone or its socket is full) and keeps the rest.  A channel the
 * stand-in is in the middle of a frame of waits for that frame's end. */
static void poolctl_flush(struct poolctl *pc)
{
    struct poolctl_pending **pp = &pc->pending, *prev = NULL;

    while (*pp && pc->ready && pc->pid > 0 && pc->ctl_fd >= 0) {
        struct poolctl_pending *p = *pp;
        if (p->fd >= 0 && poolctl_midframe(p)) {
            prev = p;
            pp = &p->next;
            continue;
        }
        if (poolwire_send_hello(pc->ctl_fd, &p->hello, p->conninfo, p->fd, MSG_DONTWAIT) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* The pool is behind: go on when the socket has room. */
                if (pc->write_ev)
                    event_free(pc->write_ev);
                pc->write_ev = event_new(pc->base, pc->ctl_fd, EV_WRITE, poolctl_write_cb, pc);
                if (pc->write_ev)
                    event_add(pc->write_ev, NULL);
            } else {
                log_warn("pool control socket");
            }
            return;
        }
        *pp = p->next;
        if (pc->pending_tail == p)
            pc->pending_tail = prev;
        poolctl_pending_free(p);
    }
}

/* Frees P, closing its channel (if any) on this side. */
static void poolctl_pending_free(struct poolctl_pending *p)
{
    if (!p)
        return;
    if (p->ev)
        event_free(p->ev); /* before its descriptor closes */
    if (p->fd >= 0)
        close(p->fd);
    if (p->conninfo) {
        explicit_bzero(p->conninfo, p->hello.conninfo_len);
        free(p->conninfo);
    }
    free(p);
}

/* Drops queued channel P: its instance sees end-of-file and leaves. */
static void poolctl_drop(struct poolctl *pc, struct poolctl_pending *p, const char *why)
{
    struct poolctl_pending **pp, *prev = NULL;

    for (pp = &pc->pending; *pp && *pp != p; prev = *pp, pp = &(*pp)->next)
        ;
    if (!*pp)
        return;
    *pp = p->next;
    if (pc->pending_tail == p)
        pc->pending_tail = prev;
    log_warnx("[fn %s pid %d] database channel closed while the pool is down: %s", p->hello.fn,
              (int)p->hello.pid, why);
    poolctl_pending_free(p);
}

/* The stand-in's answer to one query frame: an 'E' frame (fnsdk_frame.h) of
 * sqlstate, message and three empty fields, sent whole or not at all (an
 * instance has one query in flight; one that does not read its answers
 * loses its channel). */
static int poolctl_down_answer(int fd)
{
    static const char *const fields[5] = {POOLCTL_DOWN_STATE, POOLCTL_DOWN_MSG, "", "", ""};
    uint8_t buf[128];
    size_t len = 5;
    ssize_t n;

    buf[4] = 'E';
    for (int i = 0; i < 5; i++) {
        uint32_t flen = (uint32_t)strlen(fields[i]);
        buf[len] = (uint8_t)(flen >> 24);
        buf[len + 1] = (uint8_t)(flen >> 16);
        buf[len + 2] = (uint8_t)(flen >> 8);
        buf[len + 3] = (uint8_t)flen;
        memcpy(buf + len + 4, fields[i], flen);
        len += 4 + flen;
    }
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (uint8_t)((len - 4) >> 8);
    buf[3] = (uint8_t)(len - 4);
    do
        n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

static void poolctl_down_arm(struct poolctl *pc, struct poolctl_pending *p);

/* A queued channel is readable while the stand-in watches it: its frames
 * are skipped (at most POOLCTL_DOWN_READ bytes a turn; the event is level
 * triggered) and each complete one is answered FG005. */
static void poolctl_down_cb(evutil_socket_t fd, short what, void *arg)
{
    struct poolctl_pending *p = arg;
    struct poolctl *pc = p->pc;
    static uint8_t buf[POOLCTL_DOWN_READ];
    ssize_t n;
    (void)what;

    do
        n = recv((int)fd, buf, sizeof(buf), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        /* Its instance (and every copy of fd 3) is gone; the reap drops it
         * too, but nothing is left to read here. */
        event_del(p->ev);
        return;
    }
    for (size_t off = 0; off < (size_t)n;) {
        if (p->body_left > 0) {
            size_t take = (size_t)n - off;
            if (take > p->body_left)
                take = (size_t)p->body_left;
            p->body_left -= take;
            off += take;
        } else {
            p->hdr[p->hdr_got++] = buf[off++];
            if (p->hdr_got < 4)
                continue;
            p->hdr_got = 0;
            p->body_left = (uint64_t)p->hdr[0] << 24 | (uint64_t)p->hdr[1] << 16 |
                           (uint64_t)p->hdr[2] << 8 | p->hdr[3];
            if (p->body_left == 0 || p->body_left > (uint64_t)pc->set.max_query) {
                poolctl_drop(pc, p, "a frame of a size no query has");
                return;
            }
        }
        if (p->hdr_got == 0 && p->body_left == 0 && poolctl_down_answer((int)fd) < 0) {
            poolctl_drop(pc, p, "its answers are not read");
            return;
        }
    }
    if (!pc->down && !poolctl_midframe(p)) {
        /* The pool came back while this frame was read: it goes there now. */
        event_del(p->ev);
        poolctl_flush(pc);
    }
}

/* Arms or disarms the stand-in on P as the pool's state asks: it reads
 * while there is no pool to hand P to, and to the end of a frame it began. */
static void poolctl_down_arm(struct poolctl *pc, struct poolctl_pending *p)
{
    if (p->fd < 0)
        return;
    if (!pc->down && !poolctl_midframe(p)) {
        if (p->ev)
            event_del(p->ev);
        return;
    }
    if (!p->ev)
        p->ev = event_new(pc->base, p->fd, EV_READ | EV_PERSIST, poolctl_down_cb, p);
    if (p->ev)
        event_add(p->ev, NULL);
}

/* The pool is gone or not there yet (DOWN), or there to take channels. */
static void poolctl_set_down(struct poolctl *pc, bool down)
{
    if (pc->down == down)
        return;
    pc->down = down;
    if (down)
        log_warnx("pool: not running: queries are answered %s until it is back",
                  POOLCTL_DOWN_STATE);
    for (struct poolctl_pending *p = pc->pending; p; p = p->next)
        poolctl_down_arm(pc, p);
}

static void poolctl_queue(struct poolctl *pc, struct poolctl_pending *p)
{
    p->pc = pc;
    if (pc->pending_tail)
        pc->pending_tail->next = p;
    else
        pc->pending = p;
    pc->pending_tail = p;
    poolctl_flush(pc);
    /* Not sent: it waits, and while there is no pool the stand-in serves it. */
    if (pc->down && p->fd >= 0) {
        for (struct poolctl_pending *q = pc->pending; q; q = q->next) {
            if (q == p) {
                poolctl_down_arm(pc, p);
                break;
            }
        }
    }
}

/* The control socket: the pool's one ready byte, or its end. */
static void poolctl_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
    struct poolctl *pc = arg;
    char c;
    ssize_t n;
    (void)what;

    do
        n = recv((int)fd, &c, 1, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n == 1 && c == POOL_READY && !pc->ready) {
        pc->ready = true;
        evtimer_del(pc->grace_ev);
        poolctl_set_down(pc, false);
        poolctl_flush(pc);
        return;
    }
    /* End of file (its exit is reaped soon) or a byte it never sends. */
    event_del(pc->ctl_ev);
}

/* A starting pool that has not said ready in time: stand in for it. */
static void poolctl_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct poolctl *pc = arg;
    (void)fd;
    (void)what;
    if (!pc->ready) {
        log_warnx("pool process %d has not said it is ready after %d ms", (int)pc->pid,
                  POOLCTL_READY_GRACE_MS);
        poolctl_set_down(pc, true);
    }
}

/* fngate-pool lives next to the fngate binary (in the build tree and once
 * installed alike). */
static int poolctl_path(char *out, size_t len)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0)
        return -1;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if ((size_t)snprintf(out, len, "%s/fngate-pool", exe) >= len)
        return -1;
    return 0;
}

/* The settings message, sent first on a new control socket. */
static int poolctl_send_settings(struct poolctl *pc, int fd)
{
    if (poolwire_send_settings(fd, &pc->set) < 0) {
        if (errno == ENAMETOOLONG)
            log_warnx("database_url is longer than %d bytes", POOL_CONNINFO_MAX);
        else
            log_warn("pool: sending its settings");
        return -1;
    }
    return 0;
}

static int poolctl_start(struct poolctl *pc)
{
    char path[4096];
    char *const argv[] = {"fngate-pool", NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    int sv[2];
    pid_t pid, parent;

    if (poolctl_path(path, sizeof(path)) < 0) {
        log_warnx("pool: cannot locate fngate-pool next to fngate");
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        log_warn("pool: socketpair");
        return -1;
    }
    /* Queued before the child runs: the settings are the first message. */
    if (poolctl_send_settings(pc, sv[0]) < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    parent = getpid();
    pid = fork();
    if (pid < 0) {
        log_warn("pool: fork");
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        /* Only the control socket, on fd 3, the statistics memfd, on fd 4,
         * and stdio survive the exec. */
        int sfd = pc->stats_fd == 3 ? dup(3) : pc->stats_fd;
        if (dup2(sv[1], 3) < 0 || (sfd >= 0 && dup2(sfd, 4) < 0))
            _exit(126);
        close_range(pc->stats_fd >= 0 ? 5 : 4, ~0U, 0);
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP)
                signal(sig, SIG_DFL);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* It parses frames from untrusted instances: no root for it. */
        if (pc->id.drop && (setgroups(1, &pc->id.gid) < 0 || setgid(pc->id.gid) < 0 ||
                            setuid(pc->id.uid) < 0 || setuid(0) == 0)) {
            fprintf(stderr, "fngate: pool: cannot drop privileges: %s\n", strerror(errno));
            _exit(126);
        }
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* A gateway that died before the prctl sent no signal: its pool
         * would hold Postgres connections for nobody. */
        if (getppid() != parent)
            _exit(0);
        /* A session of its own: a Ctrl-C at fngate's terminal is the
         * supervisor's to handle (a drain that still needs the pool), not a
         * signal that kills the pool under it. */
        setsid();
        execve(path, argv, envp);
        fprintf(stderr, "fngate: cannot exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    pc->ctl_fd = sv[0];
    pc->pid = pid;
    pc->ready = false;
    pc->started_ns = poolctl_now_ns();
    log_info("pool process %d started (uid %d)", (int)pid, (int)pc->id.uid);
    /* Channels go to it once it says ready; queries sent meanwhile wait in
     * their channels (not read by the stand-in) for up to the grace. */
    if (pc->ctl_ev)
        event_free(pc->ctl_ev);
    pc->ctl_ev = event_new(pc->base, pc->ctl_fd, EV_READ | EV_PERSIST, poolctl_ctl_cb, pc);
    if (pc->ctl_ev)
        event_add(pc->ctl_ev, NULL);
    {
        struct timeval tv = {POOLCTL_READY_GRACE_MS / 1000, (POOLCTL_READY_GRACE_MS % 1000) * 1000};
        evtimer_add(pc->grace_ev, &tv);
    }
    poolctl_set_down(pc, false);
    return 0;
}

static void poolctl_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    struct poolctl *pc = arg;
    (void)fd;
    (void)what;
    if (pc->pid <= 0 && poolctl_start(pc) < 0) {
        struct timeval tv = {1, 0};
        evtimer_add(pc->restart_ev, &tv);
    }
}

struct poolctl *poolctl_new(struct event_base *base, const struct conf *c, int stats_fd)
{
    struct poolctl *pc;

    if (!c->gw.database_url)
        return NULL;
    pc = calloc(1, sizeof(*pc));
    if (!pc)
        return NULL;
    pc->base = base;
    pc->ctl_fd = -1;
    pc->stats_fd = stats_fd;
    poolctl_settings(&pc->set, c);
    pc->conninfo = strdup(c->gw.database_url);
    pc->restart_ev = evtimer_new(base, poolctl_restart_cb, pc);
    pc->grace_ev = evtimer_new(base, poolctl_grace_cb, pc);
    pc->down = true; /* until a pool process runs */
    if (!pc->conninfo || !pc->restart_ev || !pc->grace_ev) {
        poolctl_free(pc);
        return NULL;
    }
    pc->set.conninfo = pc->conninfo;
    {
        char err[CONF_ERR_MAX];
        if (ident_pool(c, &pc->id, err, sizeof(err)) < 0) {
            log_warnx("pool: %s", err);
            poolctl_free(pc);
            return NULL;
        }
    }
    if (poolctl_start(pc) < 0) {
        struct timeval tv = {1, 0};
        evtimer_add(pc->restart_ev, &tv);
    }
    return pc;
}

void poolctl_free(struct poolctl *pc)
{
    if (!pc)
        return;
    if (pc->write_ev)
        event_free(pc->write_ev); /* before its descriptor closes */
    if (pc->ctl_ev)
        event_free(pc->ctl_ev);
    if (pc->pid > 0) {
        /* Closing the control socket is the stop signal; SIGTERM too, in
         * case the pool is busy. Reap it here: the supervisor is exiting
         * or replacing it. */
        int status;
        close(pc->ctl_fd);
        pc->ctl_fd = -1;
        kill(pc->pid, SIGTERM);
        for (int i = 0; i < 200 && waitpid(pc->pid, &status, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(pc->pid, &status, WNOHANG) == 0) {
            kill(pc->pid, SIGKILL);
            waitpid(pc->pid, &status, 0);
        }
        log_info("pool process %d stopped", (int)pc->pid);
    }
    if (pc->ctl_fd >= 0)
        close(pc->ctl_fd);
    while (pc->pending) {
        struct poolctl_pending *p = pc->pending;
        pc->pending = p->next;
        poolctl_pending_free(p);
    }
    if (pc->restart_ev)
        event_free(pc->restart_ev);
    if (pc->grace_ev)
        event_free(pc->grace_ev);
    if (pc->conninfo) {
        /* The password is in there: do not leave it in freed memory. */
        explicit_bzero(pc->conninfo, strlen(pc->conninfo));
        free(pc->conninfo);
    }
    free(pc);
}

int poolctl_channel(struct poolctl *pc, int *instance_fd, int *pool_fd)
{
    int sv[2];
    (void)pc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_warn("database channel: socketpair");
        return -1;
    }
    *instance_fd = sv[0];
    *pool_fd = sv[1];
    return 0;
}

void poolctl_handoff(struct poolctl *pc, int pool_fd, const char *fn, pid_t pid,
                     const struct fn_settings *set)
{
    struct poolctl_pending *p = calloc(1, sizeof(*p));

    if (!p) {
        log_warn("[fn %s pid %d] database channel", fn, (int)pid);
        close(pool_fd);
        return;
    }
    p->fd = pool_fd;
    p->hello.version = POOL_HELLO_VERSION;
    p->hello.kind = POOL_HELLO_CHANNEL;
    p->hello.pid = (int32_t)pid;
    p->hello.statement_timeout_ms = set->statement_timeout_ms;
    p->hello.request_timeout_ms = set->request_timeout_ms;
    p->hello.max_db_connections = set->max_db_connections;
    if (set->database_url) {
        size_t len = strlen(set->database_url);
        p->conninfo = len <= POOL_CONNINFO_MAX ? strdup(set->database_url) : NULL;
        if (!p->conninfo) {
            log_warnx("[fn %s pid %d] database_url too long or out of memory: no database "
                      "channel",
                      fn, (int)pid);
            close(pool_fd);
            free(p);
            return;
        }
        p->hello.conninfo_len = (uint32_t)len;
    }
    snprintf(p->hello.fn, sizeof(p->hello.fn), "%s", fn);
    poolctl_queue(pc, p);
    if (pc->pending)
        log_debug("[fn %s pid %d] database channel queued for the pool", fn, (int)pid);
}

/* PID (an instance, or any other child) was reaped: a hand-over still
 * queued for it is dropped, else the pool is told to close its channel. */
static void poolctl_forget(struct poolctl *pc, pid_t pid)
{
    struct poolctl_pending *p, **pp, *prev = NULL;

    for (pp = &pc->pending; (p = *pp) != NULL; prev = p, pp = &p->next) {
        if (p->fd >= 0 && p->hello.pid == (int32_t)pid) {
            *pp = p->next;
            if (pc->pending_tail == p)
                pc->pending_tail = prev;
            poolctl_pending_free(p);
            return;
        }
    }
    if (pc->pid <= 0)
        return; /* the channels died with the pool */
    p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->fd = -1;
    p->hello.version = POOL_HELLO_VERSION;
    p->hello.kind = POOL_HELLO_REAPED;
    p->hello.pid = (int32_t)pid;
    poolctl_queue(pc, p);
}

bool poolctl_reaped(struct poolctl *pc, pid_t pid, int status)
{
    double up;
    int64_t delay = 0;
    struct timeval tv;

    bool had_channels;

    if (!pc)
        return false;
    if (pid != pc->pid) {
        poolctl_forget(pc, pid);
        return false;
    }
    had_channels = pc->ready;
    up = (double)(poolctl_now_ns() - pc->started_ns) / 1e9;
    if (up > 10)
        pc->failures = 0;
    pc->failures++;
    if (pc->failures > 1) {
        delay = 100;
        for (int i = 2; i < pc->failures && delay < POOLCTL_BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > POOLCTL_BACKOFF_MAX_MS)
            delay = POOLCTL_BACKOFF_MAX_MS;
    }
    if (WIFSIGNALED(status))
        log_warnx("pool process %d killed by signal %d (SIG%s) after %.3fs: restarting in %lld ms",
                  (int)pid, WTERMSIG(status), sigabbrev_np(WTERMSIG(status)), up, (long long)delay);
    else
        log_warnx("pool process %d exited with status %d after %.3fs: restarting in %lld ms",
                  (int)pid, WEXITSTATUS(status), up, (long long)delay);
    pc->pid = 0;
    pc->ready = false;
    evtimer_del(pc->grace_ev);
    if (pc->write_ev) {
        event_free(pc->write_ev);
        pc->write_ev = NULL;
    }
    if (pc->ctl_ev) {
        event_free(pc->ctl_ev);
        pc->ctl_ev = NULL;
    }
    close(pc->ctl_fd);
    pc->ctl_fd = -1;
    poolctl_set_down(pc, true);
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(pc->restart_ev, &tv);
    /* A pool that never said ready took no channel: nothing to replace. */
    return had_channels;
}

/* Whether process PID is exiting: the kernel marks it (PF_EXITING in
 * /proc/PID/stat's flags) before it closes any descriptor. */
static bool poolctl_exiting(pid_t pid)
{
    char path[64], buf[512], *p, state;
    unsigned long flags;
    int fd, n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = (int)read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* After the command name, which may hold anything: state, ppid, pgrp,
     * session, tty, tpgid, flags. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
        return false;
    return state == 'Z' || state == 'X' || (flags & 0x4) != 0;
}

bool poolctl_lost(const struct poolctl *pc)
{
    char c;
    ssize_t n;

    if (!pc || pc->pid <= 0 || pc->ctl_fd < 0 || !pc->ready)
        return false; /* none, its end already handled, or it held no channel */
    n = recv(pc->ctl_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return true;
    /* Its descriptors are released last first: an instance's channel can
     * close before the control socket does. */
    return poolctl_exiting(pc->pid);
}

bool poolctl_is(const struct poolctl *pc, pid_t pid)
{
    return pc && pc->pid > 0 && pc->pid == pid;
}
