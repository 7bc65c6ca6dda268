/*
 * Failing fast for a function that cannot start.  When every spawn of a
 * function crashes before serving anything, nobody would ever accept its
 * queued connections: nginx would hold each request until its own read
 * timeout (minutes) and a drain on SIGTERM could never finish.  Instead the
 * supervisor accepts them itself and answers each a complete FastCGI 503
 * with a JSON body, without blocking its event loop: a bufferevent per
 * connection reads the request's records up to the end of FCGI_STDIN (so
 * nothing is left unread, which would reset the connection and turn the 503
 * into nginx's 502), writes the answer, and closes.  The queue police
 * (backlog.c) answers single connections the same way, with Retry-After.
 *
 * Each refused connection holds a supervisor descriptor until answered or
 * its deadline, and a hostile client can open them faster than deadlines
 * pass.  So they are counted, per function and in all, and past a cap the
 * oldest is closed unanswered: a slow client is the one that has waited
 * longest, while a real front end's request is read and answered within a
 * loop iteration.  A function holds at most half the gateway's cap (a
 * quarter of RLIMIT_NOFILE, leaving the rest for instances, sockets and the
 * pool), and past its own cap a function loses its own oldest: one
 * function's flood never closes another's answers.  At the gateway's cap
 * the function holding the most gives up its oldest.  The supervisor closes
 * the descriptor itself, at once, so the count is what it holds.
 */
#include "config.h"

#include "refuse.h"

#include "fcgirec.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define REFUSE_TIMEOUT_S 5
/* The cap's floor, for a tiny RLIMIT_NOFILE, and its ceiling. */
#define REFUSE_CAP_MIN 8
#define REFUSE_CAP_MAX 65536
#define REFUSE_LOG_EVERY_S 1

struct refuse_fn;

/* One refused connection; frees itself once answered or failed. */
struct refuse_conn {
    struct refuse_conn *prev, *next; /* its function's, oldest first */
    struct refuse_fn *fn;            /* the function it came for */
    int fd;                          /* owned: closed by refuse_conn_free */
    struct bufferevent *bev;
    struct event *hold;     /* owned; pending while the answer must wait */
    struct event *deadline; /* owned: the whole exchange, however slow */
    char *message;          /* owned: the JSON error text */
    int retry_after;        /* seconds; 0: no Retry-After header */
    int answered;
    int have_request; /* its FCGI_STDIN has ended: the answer may go */
    unsigned reqid;
};

/* The refused connections held for one function; exists while it holds
 * any (freed with its last). */
struct refuse_fn {
    struct refuse_fn *next; /* refuse_fns */
    struct refuse_conn *head, *tail;
    int n;
    uint64_t shed, shed_logged;
    time_t logged;
    char name[]; /* the function's */
};

/* Every function holding refused connections, and how many they hold in
 * all (the supervisor is one thread). */
static struct refuse_fn *refuse_fns;
static int refuse_total;
static struct {
    uint64_t shed, shed_logged;
    time_t logged;
} refuse_all;

static struct refuse_fn *refuse_fn_find(const char *name)
{
    for (struct refuse_fn *f = refuse_fns; f; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* NAME's entry, new if it holds nothing yet; NULL if out of memory. */
static struct refuse_fn *refuse_fn_get(const char *name)
{
    struct refuse_fn *f = refuse_fn_find(name);
    size_t len = strlen(name);

    if (f)
        return f;
    f = calloc(1, sizeof(*f) + len + 1);
    if (!f)
        return NULL;
    memcpy(f->name, name, len + 1);
    f->next = refuse_fns;
    refuse_fns = f;
    return f;
}

static void refuse_fn_free(struct refuse_fn *f)
{
    if (!f)
        return;
    for (struct refuse_fn **pf = &refuse_fns; *pf; pf = &(*pf)->next) {
        if (*pf == f) {
            *pf = f->next;
            break;
        }
    }
    free(f);
}

static void refuse_conn_free(struct refuse_conn *rc)
{
    struct refuse_fn *f;

    if (!rc)
        return;
    if ((f = rc->fn)) {
        *(rc->prev ? &rc->prev->next : &f->head) = rc->next;
        *(rc->next ? &rc->next->prev : &f->tail) = rc->prev;
        f->n--;
        refuse_total--;
        if (f->n == 0)
            refuse_fn_free(f);
    }
    if (rc->hold)
        event_free(rc->hold);
    if (rc->deadline)
        event_free(rc->deadline);
    /* Its events are deleted at once (only the rest of the free waits for
     * the loop), so closing the descriptor here is safe. */
    if (rc->bev)
        bufferevent_free(rc->bev);
    if (rc->fd >= 0)
        close(rc->fd);
    free(rc->message);
    free(rc);
}

int refuse_cap(void)
{
    struct rlimit rl;
    rlim_t cap;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return REFUSE_CAP_MAX;
    cap = rl.rlim_cur / 4;
    return cap < REFUSE_CAP_MIN ? REFUSE_CAP_MIN : cap > REFUSE_CAP_MAX ? REFUSE_CAP_MAX : (int)cap;
}

int refuse_fn_cap(void)
{
    return refuse_cap() / 2;
}

int refuse_budget(void)
{
    return refuse_fn_cap() / 2;
}

/* Makes room for one more connection of function NAME: past its own cap it
 * loses its own oldest; at the gateway's, the function holding the most
 * loses its oldest.  Logged at most once a second per function. */
static void refuse_make_room(const char *name)
{
    struct refuse_fn *f = refuse_fn_find(name);
    int cap = refuse_cap(), fn_cap = refuse_fn_cap();
    time_t now = time(NULL);

    /* A function's cap is at least 4: this never frees F itself. */
    while (f && f->n >= fn_cap) {
        refuse_conn_free(f->head);
        f->shed++;
    }
    if (f && f->shed != f->shed_logged && now - f->logged >= REFUSE_LOG_EVERY_S) {
        log_warnx("[fn %s] refused connections: holding %d, a function's cap (half of the "
                  "gateway's %d): closed %llu of its oldest unanswered",
                  f->name, fn_cap, cap, (unsigned long long)(f->shed - f->shed_logged));
        f->shed_logged = f->shed;
        f->logged = now;
    }
    while (refuse_total >= cap && refuse_fns) {
        struct refuse_fn *most = refuse_fns;
        for (struct refuse_fn *g = refuse_fns->next; g; g = g->next) {
            if (g->n > most->n)
                most = g;
        }
        refuse_conn_free(most->head);
        refuse_all.shed++;
    }
    if (refuse_all.shed != refuse_all.shed_logged &&
        now - refuse_all.logged >= REFUSE_LOG_EVERY_S) {
        log_warnx("refused connections: holding %d, the cap (a quarter of RLIMIT_NOFILE): "
                  "closed %llu of the oldest unanswered of the functions holding the most",
                  cap, (unsigned long long)(refuse_all.shed - refuse_all.shed_logged));
        refuse_all.shed_logged = refuse_all.shed;
        refuse_all.logged = now;
    }
}

static void refuse_answer(struct refuse_conn *rc, unsigned reqid)
{
    struct evbuffer *out = bufferevent_get_output(rc->bev);
    char body[1024], retry[32] = "";
    int n;

    if (rc->retry_after > 0)
        snprintf(retry, sizeof(retry), "Retry-After: %d\r\n", rc->retry_after);
    n = snprintf(body, sizeof(body),
                 "Status: 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                 "%sContent-Length: %zu\r\n\r\n%s",
                 retry, strlen(rc->message), rc->message);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    fcgirec_stdout(out, reqid, body, (size_t)n);
    fcgirec_end(out, reqid);
    rc->answered = 1;
}

/* Consumes complete records; answers at the empty FCGI_STDIN record. */
static void refuse_read_cb(struct bufferevent *bev, void *arg)
{
    struct refuse_conn *rc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct fcgirec r;

    while (!rc->answered && fcgirec_peek(in, &r)) {
        evbuffer_drain(in, r.total);
        if (r.type == FCGIREC_STDIN && r.len == 0 && !rc->have_request) {
            rc->have_request = 1;
            rc->reqid = r.reqid;
            if (!rc->hold || !evtimer_pending(rc->hold, NULL))
                refuse_answer(rc, rc->reqid);
            else
                evbuffer_drain(in, evbuffer_get_length(in));
        }
    }
    if (rc->answered || rc->have_request)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void refuse_hold_cb(evutil_socket_t fd, short what, void *arg)
{
    struct refuse_conn *rc = arg;
    (void)fd;
    (void)what;
    if (rc->have_request && !rc->answered)
        refuse_answer(rc, rc->reqid); /* the write callback frees it once sent */
}

/* The idle timeouts restart with every byte: a client sending one now and
 * then would otherwise keep a supervisor descriptor for ever. */
static void refuse_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    refuse_conn_free(arg);
}

static void refuse_write_cb(struct bufferevent *bev, void *arg)
{
    struct refuse_conn *rc = arg;
    (void)bev;
    if (rc->answered)
        refuse_conn_free(rc);
}

static void refuse_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    refuse_conn_free(arg); /* EOF, error or timeout before an answer */
}

int refuse_conn(struct event_base *base, int fd, const char *name, const char *message,
                int retry_after, int64_t hold_ms)
{
    struct timeval tmo = {REFUSE_TIMEOUT_S, 0};
    struct refuse_conn *rc;
    struct refuse_fn *f;

    refuse_make_room(name);
    rc = calloc(1, sizeof(*rc));
    if (!rc || !(f = refuse_fn_get(name))) {
        free(rc);
        close(fd);
        return -1;
    }
    /* Ours, not the bufferevent's: libevent would close it later, from
     * the loop, after the number may have gone to the next connection. */
    rc->fd = fd;
    rc->fn = f;
    rc->prev = f->tail;
    *(rc->prev ? &rc->prev->next : &f->head) = rc;
    f->tail = rc;
    f->n++;
    refuse_total++;
    if (hold_ms < 0)
        hold_ms = 0;
    /* Nothing more arrives while the answer is held: the idle timeout must
     * outlast the hold. */
    tmo.tv_sec += (time_t)(hold_ms / 1000) + 1;
    if (!(rc->message = strdup(message)))
        goto fail;
    rc->bev = bufferevent_socket_new(base, fd, 0);
    if (!rc->bev)
        goto fail;
    if (hold_ms > 0) {
        struct timeval hold = {(time_t)(hold_ms / 1000), (suseconds_t)(hold_ms % 1000) * 1000};
        rc->hold = evtimer_new(base, refuse_hold_cb, rc);
        if (!rc->hold || evtimer_add(rc->hold, &hold) < 0)
            goto fail;
    }
    rc->deadline = evtimer_new(base, refuse_deadline_cb, rc);
    if (!rc->deadline || evtimer_add(rc->deadline, &tmo) < 0)
        goto fail;
    rc->retry_after = retry_after;
    bufferevent_setcb(rc->bev, refuse_read_cb, refuse_write_cb, refuse_event_cb, rc);
    bufferevent_set_timeouts(rc->bev, &tmo, &tmo);
    if (bufferevent_enable(rc->bev, EV_READ | EV_WRITE) < 0)
        goto fail; /* never read, it would only wait for its deadline */
    return 0;
fail:
    refuse_conn_free(rc);
    return -1;
}

int refuse_queued(struct event_base *base, int listen_fd, const char *name, const char *message)
{
    int flags = fcntl(listen_fd, F_GETFL);
    int n = 0, budget = refuse_budget();

    /* The socket is blocking until an SDK instance has run (the flag is on
     * the file description instances share); never block the event loop.
     * Called only when no instance is live, so nobody else is accepting. */
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return 0;
    /* Bounded: what one call takes must not push out what it just took
     * before the loop has read it; the rest waits in the kernel's queue
     * (which costs no descriptor) for the next call. */
    for (int taken = 0; taken < budget; taken++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* EAGAIN: the queue is empty */
        }
        if (refuse_conn(base, fd, name, message, 0, 0) == 0)
            n++;
    }
    fcntl(listen_fd, F_SETFL, flags);
    return n;
}

int refuse_disabled(struct event_base *base, int listen_fd, const char *name, const char *reason)
{
    /* Leaves room in refuse_answer's buffer for the HTTP headers. */
    char msg[768];
    size_t n = (size_t)snprintf(msg, sizeof(msg), "{\"error\":\"function %s is disabled: ", name);

    for (const unsigned char *p = (const unsigned char *)reason; *p && n + 16 < sizeof(msg); p++) {
        if (*p == '"' || *p == '\\')
            n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\\%c", *p);
        else if (*p < 0x20)
            n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\\u%04x", *p);
        else
            msg[n++] = (char)*p;
    }
    snprintf(msg + n, sizeof(msg) - n, "\"}");
    return refuse_queued(base, listen_fd, name, msg);
}
