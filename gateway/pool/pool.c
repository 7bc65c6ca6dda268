/*
 * The pool process.  Instances come and go; server connections stay.  This
 * file holds the process: its event loop, the control socket from the
 * supervisor (channel hand-overs), the one maintenance timer and signals.
 * The work is in client.c (channels), dispatch.c (who runs next),
 * server.c (connections) and stmt.c (the statement cache).
 */
#include "config.h"

#include "pool.h"

#include "client.h"
#include "dispatch.h"
#include "log.h"
#include "server.h"
#include "types.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define POOL_TICK_MS 50

int64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* libpq's messages end with a newline; the function gets them without. */
void pool_chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* The supervisor reaped instance PID: its channel goes, whoever still holds
 * the other end (a descendant that kept fd 3 gets EOF on its next read). */
static void pool_reaped(struct pool *p, int32_t pid)
{
    struct client *c = p->clients, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->hello.pid == pid && !c->dead) {
            log_debug("[fn %s pid %d] instance reaped: channel closed", c->hello.fn, (int)pid);
            client_close(c, NULL);
        }
    }
    dispatch_run(p);
}

static void pool_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    static char conninfo[POOL_CONNINFO_MAX + 1];
    struct pool_hello hello;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov[2] = {{&hello, sizeof(hello)}, {conninfo, POOL_CONNINFO_MAX}};
    struct msghdr msg;
    struct cmsghdr *cm;
    ssize_t n;
    int cfd = -1;
    (void)what;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    n = recvmsg((int)fd, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        log_info("the supervisor closed the control socket: exiting");
        event_base_loopexit(p->base, NULL);
        return;
    }
    if (n < 0)
        return;
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(&cfd, CMSG_DATA(cm), sizeof(int));
    }
    if (n == (ssize_t)sizeof(hello) && hello.version == POOL_HELLO_VERSION &&
        hello.kind == POOL_HELLO_REAPED && cfd < 0) {
        pool_reaped(p, hello.pid);
        return;
    }
    if (cfd < 0 || n < (ssize_t)sizeof(hello) || hello.version != POOL_HELLO_VERSION ||
        hello.kind != POOL_HELLO_CHANNEL || hello.conninfo_len > POOL_CONNINFO_MAX ||
        (size_t)n != sizeof(hello) + hello.conninfo_len) {
        log_warnx("control socket: malformed hand-over");
        if (cfd >= 0)
            close(cfd);
        return;
    }
    hello.fn[sizeof(hello.fn) - 1] = '\0';
    conninfo[hello.conninfo_len] = '\0';
    client_new(p, cfd, &hello, hello.conninfo_len ? conninfo : NULL);
    explicit_bzero(conninfo, hello.conninfo_len);
}

static void pool_tick(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    int64_t now = pool_now_ns();
    int open = 0;
    (void)fd;
    (void)what;

    dispatch_expire(p, now);
    for (int i = 0; i < p->set.pool_size; i++) {
        if (p->conns[i].state != PC_FREE)
            open++;
    }
    for (int i = 0; i < p->set.pool_size && open < p->set.min_pool && now >= p->connect_after_ns;
         i++) {
        if (p->conns[i].state == PC_FREE) {
            server_start(&p->conns[i], NULL);
            open++;
        }
    }
    dispatch_run(p);
}

static void pool_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct pool *p = arg;
    (void)what;
    log_info("SIG%s: exiting", sigabbrev_np((int)sig));
    event_base_loopexit(p->base, NULL);
}

int pool_main(const struct pool_settings *set, int ctl_fd)
{
    struct pool p;
    struct timeval tick = {0, POOL_TICK_MS * 1000};
    int rc = 1;

    memset(&p, 0, sizeof(p));
    p.set = *set;
    if (p.set.stmt_cache <= 0)
        p.set.stmt_cache = 256;
    if (p.set.max_query < 1024)
        p.set.max_query = (int64_t)1 << 20;
    p.ctl_fd = ctl_fd;
    log_set_proc("fngate pool");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    p.base = event_base_new();
    p.conns = calloc((size_t)p.set.pool_size, sizeof(*p.conns));
    if (!p.base || !p.conns)
        goto out;
    for (int i = 0; i < p.set.pool_size; i++) {
        p.conns[i].pool = &p;
        p.conns[i].idx = i;
        stmt_init(&p.conns[i].stmts, p.set.stmt_cache);
    }
    p.ctl_ev = event_new(p.base, ctl_fd, EV_READ | EV_PERSIST, pool_ctl_cb, &p);
    p.stats = poolstat_attach(POOLSTAT_FD, set->pool_size);
    p.tick_ev = event_new(p.base, -1, EV_PERSIST, pool_tick, &p);
    p.sig_ev[0] = evsignal_new(p.base, SIGTERM, pool_signal_cb, &p);
    p.sig_ev[1] = evsignal_new(p.base, SIGINT, pool_signal_cb, &p);
    if (!p.ctl_ev || !p.tick_ev || event_add(p.ctl_ev, NULL) < 0 ||
        event_add(p.tick_ev, &tick) < 0 || !p.sig_ev[0] || !p.sig_ev[1] ||
        evsignal_add(p.sig_ev[0], NULL) < 0 || evsignal_add(p.sig_ev[1], NULL) < 0)
        goto out;
    log_info("started: pool_size %d, min_pool %d, db_wait_timeout %lld ms", p.set.pool_size,
             p.set.min_pool, (long long)p.set.db_wait_timeout_ms);
    pool_tick(-1, 0, &p);
    {
        char ready = POOL_READY;
        if (send(ctl_fd, &ready, 1, MSG_NOSIGNAL) != 1) {
            log_warn("control socket: saying ready");
            goto out;
        }
    }
    rc = event_base_dispatch(p.base) < 0 ? 1 : 0;
out:
    while (p.clients) {
        struct client *c = p.clients;
        p.clients = c->next;
        client_free(c);
    }
    for (int i = 0; p.conns && i < p.set.pool_size; i++) {
        p.conns[i].client = NULL;
        p.conns[i].fq = NULL; /* freed with the clients */
        p.conns[i].pinned = NULL;
        server_drop(&p.conns[i], "pool exiting");
    }
    free(p.conns);
    for (int i = 0; i < 2; i++) {
        if (p.sig_ev[i])
            event_free(p.sig_ev[i]);
    }
    if (p.ctl_ev)
        event_free(p.ctl_ev);
    if (p.tick_ev)
        event_free(p.tick_ev);
    if (p.base)
        event_base_free(p.base);
    close(ctl_fd);
    return rc;
}
