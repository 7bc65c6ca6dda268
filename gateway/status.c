/*
 * Status over FastCGI.  Every connection gets a bufferevent with a timeout,
 * a deadline for the whole exchange and a byte budget; records are parsed
 * as they arrive, FCGI_PARAMS are decoded only for the path and method, and
 * the answer goes out when the empty FCGI_STDIN record ends the request (as
 * in refuse.c, nothing is left unread so nginx never sees a reset).
 * Rendering happens here, on the supervisor's loop: a scrape costs a walk
 * over the slots, bounded by the number of instances, and there are at most
 * STATUS_CONNS connections at once, so a flood of status requests cannot
 * starve the loop.
 */
#include "config.h"

#include "status.h"

#include "fcgirec.h"
#include "log.h"
#include "metrics.h"
#include "sock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define STATUS_TIMEOUT_S 10
#define STATUS_CONNS 64
#define STATUS_IN_MAX 65536

struct status {
    struct event_base *base;
    struct metrics *metrics;
    char *path; /* owned */
    int fd;
    struct event *ev; /* owned */
    struct status_conn *conns;
    int n_conns;
};

/* One connection; frees itself when answered or failed. */
struct status_conn {
    struct status_conn *next, *prev;
    struct status *st;
    struct bufferevent *bev;
    struct event *deadline; /* owned: the whole exchange, however slow */
    size_t in_bytes;
    bool answered;
    char uri[256];
    char method[16];
};

static void status_conn_free(struct status_conn *c)
{
    if (!c)
        return;
    if (c->deadline)
        event_free(c->deadline);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->st->n_conns--;
    free(c);
}

/* FastCGI name-value pair lengths: 1 byte, or 4 with the top bit set. */
static bool status_nv_len(const unsigned char **p, const unsigned char *end, size_t *len)
{
    if (*p >= end)
        return false;
    if (!(**p & 0x80)) {
        *len = *(*p)++;
        return true;
    }
    if (end - *p < 4)
        return false;
    *len = ((size_t)((*p)[0] & 0x7f) << 24) | ((size_t)(*p)[1] << 16) | ((size_t)(*p)[2] << 8) |
           (*p)[3];
    *p += 4;
    return true;
}

static void status_param(struct status_conn *c, const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;

    while (p < end) {
        size_t nl, vl;
        if (!status_nv_len(&p, end, &nl) || !status_nv_len(&p, end, &vl) ||
            (size_t)(end - p) < nl || (size_t)(end - p) - nl < vl)
            return;
        if (nl == 18 && memcmp(p, "FNGATE_STATUS_PATH", 18) == 0 && vl < sizeof(c->uri)) {
            memcpy(c->uri, p + nl, vl);
            c->uri[vl] = '\0';
        } else if (nl == 11 && memcmp(p, "REQUEST_URI", 11) == 0 && !c->uri[0] &&
                   vl < sizeof(c->uri)) {
            memcpy(c->uri, p + nl, vl);
            c->uri[vl] = '\0';
            c->uri[strcspn(c->uri, "?")] = '\0';
        } else if (nl == 14 && memcmp(p, "REQUEST_METHOD", 14) == 0 && vl < sizeof(c->method)) {
            memcpy(c->method, p + nl, vl);
            c->method[vl] = '\0';
        }
        p += nl + vl;
    }
}

static void status_answer(struct status_conn *c, unsigned reqid)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer *body = evbuffer_new();
    const char *ctype = "application/json", *status = "200 OK";
    char head[256];
    int n;

    if (!body)
        return;
    if (c->method[0] && strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0) {
        status = "405 Method Not Allowed";
        evbuffer_add_printf(body, "{\"error\":\"method not allowed: use GET\"}\n");
    } else if (strcmp(c->uri, "/_fngate/status") == 0) {
        metrics_render_json(c->st->metrics, body);
    } else if (strcmp(c->uri, "/_fngate/status.txt") == 0) {
        ctype = "text/plain; charset=utf-8";
        metrics_render_table(c->st->metrics, body);
    } else if (strcmp(c->uri, "/_fngate/metrics") == 0) {
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        metrics_render_prom(c->st->metrics, body);
    } else if (strcmp(c->uri, "/_fngate/") == 0 || strcmp(c->uri, "/_fngate/index.html") == 0) {
        ctype = "text/html; charset=utf-8";
        evbuffer_add(body, status_dashboard_html, strlen(status_dashboard_html));
    } else {
        status = "404 Not Found";
        evbuffer_add_printf(body, "{\"error\":\"not found\"}\n");
    }
    n = snprintf(head, sizeof(head),
                 "Status: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n",
                 status, ctype, evbuffer_get_length(body));
    fcgirec_stdout(out, reqid, head, (size_t)n);
    if (strcmp(c->method, "HEAD") != 0) {
        size_t len = evbuffer_get_length(body);
        fcgirec_stdout(out, reqid, evbuffer_pullup(body, -1), len);
    }
    fcgirec_end(out, reqid);
    evbuffer_free(body);
    c->answered = true;
}

static void status_read_cb(struct bufferevent *bev, void *arg)
{
    struct status_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct fcgirec r;

    while (!c->answered && fcgirec_peek(in, &r)) {
        c->in_bytes += r.total;
        if (c->in_bytes > STATUS_IN_MAX) {
            status_conn_free(c);
            return;
        }
        if (r.type == FCGIREC_PARAMS && r.len > 0) {
            unsigned char *rec = evbuffer_pullup(in, (ssize_t)r.total);
            if (rec)
                status_param(c, rec + FCGIREC_HDR, r.len);
        }
        evbuffer_drain(in, r.total);
        if (r.type == FCGIREC_STDIN && r.len == 0)
            status_answer(c, r.reqid);
    }
    if (c->answered)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void status_write_cb(struct bufferevent *bev, void *arg)
{
    struct status_conn *c = arg;
    (void)bev;
    if (c->answered)
        status_conn_free(c);
}

static void status_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    status_conn_free(arg);
}

/* The idle timeouts restart with every byte: one byte a second would hold
 * a connection for ever, and STATUS_CONNS of them every connection. */
static void status_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    status_conn_free(arg);
}

static void status_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct status *st = arg;
    struct timeval tmo = {STATUS_TIMEOUT_S, 0};
    (void)what;

    /* A few per wake-up: bounded work per event. */
    for (int i = 0; i < 16; i++) {
        struct status_conn *c;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("status: accept");
            return;
        }
        if (st->n_conns >= STATUS_CONNS) {
            close(cfd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(cfd);
            continue;
        }
        c->st = st;
        c->next = st->conns;
        if (st->conns)
            st->conns->prev = c;
        st->conns = c;
        st->n_conns++;
        c->bev = bufferevent_socket_new(st->base, cfd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
            close(cfd);
            status_conn_free(c);
            continue;
        }
        c->deadline = evtimer_new(st->base, status_deadline_cb, c);
        if (!c->deadline || evtimer_add(c->deadline, &tmo) < 0) {
            status_conn_free(c);
            continue;
        }
        bufferevent_setcb(c->bev, status_read_cb, status_write_cb, status_event_cb, c);
        bufferevent_set_timeouts(c->bev, &tmo, &tmo);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    }
}

struct status *status_new(struct event_base *base, const char *socket_dir, mode_t mode, gid_t gid,
                          struct metrics *mx, char *err, size_t errlen)
{
    struct status *st = calloc(1, sizeof(*st));

    if (!st || asprintf(&st->path, "%s/status.sock", socket_dir) < 0) {
        if (st)
            st->path = NULL;
        snprintf(err, errlen, "out of memory");
        free(st);
        return NULL;
    }
    st->base = base;
    st->metrics = mx;
    st->fd = sock_listen(st->path, 64, mode, gid, err, errlen);
    if (st->fd < 0) {
        free(st->path);
        free(st);
        return NULL;
    }
    evutil_make_socket_nonblocking(st->fd);
    st->ev = event_new(base, st->fd, EV_READ | EV_PERSIST, status_accept_cb, st);
    if (!st->ev || event_add(st->ev, NULL) < 0) {
        snprintf(err, errlen, "status: event_new failed");
        status_free(st);
        return NULL;
    }
    return st;
}

void status_set_perms(struct status *st, mode_t mode, gid_t gid)
{
    if (!st)
        return;
    if (chmod(st->path, mode | S_IXUSR) < 0 ||
        (gid != (gid_t)-1 && chown(st->path, (uid_t)-1, gid) < 0))
        log_warn("status: %s", st->path);
}

void status_free(struct status *st)
{
    if (!st)
        return;
    while (st->conns)
        status_conn_free(st->conns);
    if (st->ev)
        event_free(st->ev);
    if (st->fd >= 0) {
        close(st->fd);
        unlink(st->path);
    }
    free(st->path);
    free(st);
}
