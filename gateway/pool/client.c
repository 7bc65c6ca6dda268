/*
 * Client channels.  A channel is a non-blocking socket with a frame reader
 * and an output buffer; the query in flight is copied out of the frame into
 * the NUL-terminated form libpq takes, and the answer frame is built in the
 * output buffer (results straight from the PGresult by pgjson).
 */
#include "config.h"

#include "client.h"

#include "dispatch.h"
#include "log.h"
#include "pgjson.h"
#include "server.h"
#include "sqlword.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Keeps the pool's count of answer bytes written but not yet taken by
 * their instances. */
static void client_count_unsent(struct client *c)
{
    size_t now = c->out.len - c->out_off;

    c->pool->unsent -= c->unsent;
    c->unsent = now;
    c->pool->unsent += now;
}

/* Answers no instance reads would otherwise pile up in the pool: past the
 * cap, the channel with the most unread output goes (its instance is not
 * reading the answer it asked for, or cannot keep up). */
void client_enforce_unsent(struct pool *p)
{
    size_t cap = (size_t)p->set.pool_size * (size_t)p->set.max_result;

    if (cap < ((size_t)4 << 20))
        cap = (size_t)4 << 20;
    while (p->unsent > cap) {
        struct client *worst = NULL;
        char why[160];
        for (struct client *k = p->clients; k; k = k->next) {
            if (!k->dead && (!worst || k->unsent > worst->unsent))
                worst = k;
        }
        if (!worst || worst->unsent == 0)
            return;
        snprintf(why, sizeof(why),
                 "its answers went unread (%zu bytes waiting; all channels' unread output over "
                 "%zu bytes)",
                 worst->unsent, cap);
        client_close(worst, why);
    }
}

static void client_flush(struct client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            client_count_unsent(c);
            return;
        }
        client_close(c, "write failed");
        return;
    }
    /* A large answer's buffer goes back, not kept for the next one. */
    if (c->out.cap > ((size_t)64 << 10)) {
        fnsdk_buf_free(&c->out);
        fnsdk_buf_init(&c->out, 0);
    } else {
        fnsdk_buf_reset(&c->out);
    }
    c->out_off = 0;
    client_count_unsent(c);
}

static void client_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_flush(arg);
}

/* At most this many failed-query lines a second: a function that fails
 * every query must not flood the gateway's log. */
#define CLIENT_ERRLOG_PER_S 20

/* Copies SQL for a log line: one line, control characters blanked. */
static void client_sql_excerpt(const char *sql, char *out, size_t len)
{
    size_t i = 0;

    for (; sql && sql[i] && i + 4 < len; i++)
        out[i] = (unsigned char)sql[i] < 0x20 || sql[i] == 0x7f ? ' ' : sql[i];
    if (sql && sql[i])
        memcpy(out + i++, "...", 3), i += 2;
    out[i] = '\0';
}

/* Statistics and the slow- and failed-query log lines, with the trace id
 * of the request that asked. */
static void client_account(struct client *c, const char *sqlstate, const char *msg)
{
    static int64_t window_ns;
    static int in_window, suppressed;
    struct poolstat_shm *st = c->pool->stats;
    int64_t now = pool_now_ns();
    int64_t ns = c->started_ns ? now - c->started_ns : -1;
    int64_t slow = FNSDK_SCOREBOARD_LOAD(st->slow_query_ms);
    char sql[200];
    const char *trace = c->trace[0] ? c->trace : "-";

    poolstat_query(st, c->stat_idx, ns, sqlstate);
    if (!sqlstate && !(slow > 0 && ns / 1000000 >= slow))
        return;
    if (now - window_ns > 1000000000) {
        if (suppressed)
            log_warnx("%d more slow or failed query lines suppressed", suppressed);
        window_ns = now;
        in_window = suppressed = 0;
    }
    if (++in_window > CLIENT_ERRLOG_PER_S) {
        suppressed++;
        return;
    }
    client_sql_excerpt(c->sql, sql, sizeof(sql));
    if (sqlstate) {
        log_warnx("[fn %s pid %d] query failed after %.1f ms: %s %s; trace_id %s; sql: %s",
                  c->hello.fn, c->hello.pid, ns >= 0 ? (double)ns / 1e6 : 0.0, sqlstate,
                  msg ? msg : "", trace, sql);
    } else {
        FNSDK_SCOREBOARD_STORE(st->slow_queries, FNSDK_SCOREBOARD_LOAD(st->slow_queries) + 1);
        log_warnx("[fn %s pid %d] slow query: %.1f ms (slow_query %lld ms); trace_id %s; sql: %s",
                  c->hello.fn, c->hello.pid, (double)ns / 1e6, (long long)slow, trace, sql);
    }
}

/* Ends the query in flight: the caller has put the answer into c->out. */
static void client_done(struct client *c)
{
    free(c->qbuf);
    free(c->values);
    c->qbuf = NULL;
    c->values = NULL;
    c->has_query = false;
    c->started_ns = 0;
    c->trace[0] = '\0';
    c->sql = NULL;
    c->conn = NULL;
    client_flush(c);
}

void client_error(struct client *c, const char *sqlstate, const char *msg, const char *detail,
                  const char *hint, const char *position)
{
    size_t start = c->out.len;

    client_account(c, sqlstate, msg);
    c->out.max = 0;
    fnsdk_frame_begin(&c->out, FNSDK_FRAME_ERROR);
    fnsdk_frame_add(&c->out, sqlstate, strlen(sqlstate));
    fnsdk_frame_add(&c->out, msg, strlen(msg));
    fnsdk_frame_add(&c->out, detail ? detail : "", detail ? strlen(detail) : 0);
    fnsdk_frame_add(&c->out, hint ? hint : "", hint ? strlen(hint) : 0);
    fnsdk_frame_add(&c->out, position ? position : "", position ? strlen(position) : 0);
    if (fnsdk_frame_end_at(&c->out, start) < 0) {
        client_close(c, "out of memory");
        return;
    }
    client_done(c);
}

void client_error_res(struct client *c, const PGresult *r)
{
    char msg[1024];
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

    snprintf(msg, sizeof(msg), "%s",
             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                 ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                 : PQresultErrorMessage(r));
    pool_chomp(msg);
    client_error(c, state && strlen(state) == 5 ? state : POOL_ERR_LOST, msg,
                 PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL),
                 PQresultErrorField(r, PG_DIAG_MESSAGE_HINT),
                 PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION));
}

void client_result(struct client *c, const PGresult *r, const struct fnsdk_buf *json, long nrows)
{
    size_t start = c->out.len;
    const char *tag = PQcmdStatus((PGresult *)r);
    const char *rows = PQcmdTuples((PGresult *)r);

    if (json) {
        c->out.max = start + (size_t)c->pool->set.max_result + 1024;
        fnsdk_frame_begin(&c->out, FNSDK_FRAME_RESULT);
        fnsdk_frame_add(&c->out, tag, strlen(tag));
        fnsdk_frame_add(&c->out, rows, strlen(rows));
        fnsdk_frame_add(&c->out, json->data ? json->data : "[]", json->data ? json->len : 2);
        FNSDK_SCOREBOARD_STORE(c->pool->stats->bytes_rendered,
                               FNSDK_SCOREBOARD_LOAD(c->pool->stats->bytes_rendered) + json->len);
    }
    if (!json || fnsdk_frame_end_at(&c->out, start) < 0) {
        char msg[160];
        c->out.len = start;
        c->out.failed = 0;
        snprintf(msg, sizeof(msg), "result of %ld rows exceeds max_result (%lld bytes)", nrows,
                 (long long)c->pool->set.max_result);
        client_error(c, POOL_ERR_TOO_LARGE, msg, NULL,
                     "add a LIMIT, select fewer columns, or raise max_result", NULL);
        return;
    }
    client_account(c, NULL, NULL);
    client_done(c);
}
void client_free(struct client *c)
{
    if (!c)
        return;
    c->pool->unsent -= c->unsent;
    dispatch_leave(c->pool, c->fq);
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->fd >= 0)
        close(c->fd);
    fnsdk_frame_reader_free(&c->rd);
    fnsdk_buf_free(&c->out);
    free(c->qbuf);
    free(c->values);
    free(c);
}

void client_close(struct client *c, const char *why)
{
    struct pool *p = c->pool;

    if (why)
        log_warnx("[fn %s pid %d] database channel closed: %s", c->hello.fn, c->hello.pid, why);
    if (c->waiting)
        dispatch_remove(p, c);
    if (c->pinned && c->pinned->state == PC_PINNED) {
        /* Gone between the queries of its transaction: closing the
         * session rolls it back. */
        struct server *pc = c->pinned;
        log_warnx("[fn %s pid %d] channel closed inside a transaction: rolled back", c->hello.fn,
                  c->hello.pid);
        c->pinned = NULL;
        pc->pinned = NULL;
        server_drop(pc, "its client's transaction was abandoned");
    }
    if (c->conn && c->conn->client == c) {
        /* The server is still working on its query, for nobody now (the
         * instance died, timed out or was killed): cancel it, and free the
         * channel when the connection comes back. */
        c->dead = true;
        server_cancel(c->conn);
        if (c->rev) {
            event_free(c->rev);
            c->rev = NULL;
        }
        if (c->wev) {
            event_free(c->wev);
            c->wev = NULL;
        }
        return;
    }
    for (struct client **pp = &p->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    client_free(c);
}

/* Copies the parsed query into C in the form libpq takes. */
static int client_take_query(struct client *c, const struct fnsdk_frame_view *v)
{
    size_t total = 0;
    char *w;

    c->nparams = (int)v->n_fields - 1;
    c->trace[0] = '\0';
    if (c->nparams > 0 && v->field[v->n_fields - 1].p[0] == FNSDK_FRAME_P_TRACE) {
        /* Not a parameter: the request's trace id, for the log. */
        const struct fnsdk_frame_field *t = &v->field[v->n_fields - 1];
        memcpy(c->trace, t->p + 1, t->len - 1); /* 32 bytes, checked by the parser */
        c->trace[t->len - 1] = '\0';
        c->nparams--;
    }
    for (size_t i = 0; i < (size_t)c->nparams + 1; i++)
        total += v->field[i].len + 1;
    c->qbuf = malloc(total);
    c->values = calloc((size_t)(c->nparams > 0 ? c->nparams : 1), sizeof(*c->values));
    if (!c->qbuf || !c->values)
        return -1;
    w = c->qbuf;
    memcpy(w, v->field[0].p, v->field[0].len);
    w[v->field[0].len] = '\0';
    c->sql = w;
    w += v->field[0].len + 1;
    for (int i = 0; i < c->nparams; i++) {
        const struct fnsdk_frame_field *f = &v->field[i + 1];
        char tag = f->p[0];
        if (tag == FNSDK_FRAME_P_NULL) {
            c->values[i] = NULL;
            continue;
        }
        memcpy(w, f->p + 1, f->len - 1);
        w[f->len - 1] = '\0';
        if (tag == FNSDK_FRAME_P_BOOL)
            c->values[i] = w[0] == 't' ? "true" : "false";
        else
            c->values[i] = w;
        w += f->len;
    }
    return 0;
}

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    static struct fnsdk_frame_view view; /* 16 KB: one, not per client */
    struct client *c = arg;
    struct pool *p = c->pool;
    const char *payload;
    size_t len;
    char err[160];
    int r;
    (void)what;

    r = fnsdk_frame_reader_read(&c->rd, (int)fd);
    while (fnsdk_frame_reader_next(&c->rd, &payload, &len) == 1) {
        if (c->has_query || c->unsent > 0) {
            client_close(c, "a second query before the answer to the first was read");
            return;
        }
        if (fnsdk_frame_parse(payload, len, &view, err, sizeof(err)) < 0) {
            client_close(c, err);
            return;
        }
        if (view.type != FNSDK_FRAME_QUERY) {
            client_close(c, "not a query frame");
            return;
        }
        c->has_query = true;
        if (client_take_query(c, &view) < 0) {
            client_error(c, POOL_ERR_REQUEST, "out of memory", NULL, NULL, NULL);
            continue;
        }
        if (sqlword_first_is(c->sql, "copy")) {
            client_error(c, POOL_ERR_REQUEST, "COPY is not supported through fn_query", NULL,
                         "use INSERT ... SELECT, or json_populate_recordset for bulk rows", NULL);
            continue;
        }
        dispatch_add(p, c);
    }
    if (r < 0) {
        /* A clean close when the instance exits is the normal end. */
        client_close(c, strcmp(c->rd.err, "channel closed") == 0 ? NULL : c->rd.err);
        dispatch_run(p);
        return;
    }
    dispatch_run(p);
}
struct client *client_new(struct pool *p, int fd, const struct pool_hello *hello,
                          const char *conninfo)
{
    struct client *c = calloc(1, sizeof(*c));

    if (!c) {
        close(fd);
        return NULL;
    }
    c->pool = p;
    c->fd = fd;
    c->hello = *hello;
    c->hello.fn[sizeof(c->hello.fn) - 1] = '\0';
    c->stat_idx = poolstat_fn_index(p->stats, c->hello.fn);
    c->fq = dispatch_join(p, hello, conninfo);
    if (!c->fq) {
        close(fd);
        free(c);
        return NULL;
    }
    evutil_make_socket_nonblocking(fd);
    fnsdk_frame_reader_init(&c->rd, (size_t)p->set.max_query);
    fnsdk_buf_init(&c->out, 0);
    c->rev = event_new(p->base, fd, EV_READ | EV_PERSIST, client_read_cb, c);
    c->wev = event_new(p->base, fd, EV_WRITE, client_write_cb, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) < 0) {
        client_free(c);
        return NULL;
    }
    c->next = p->clients;
    p->clients = c;
    return c;
}
