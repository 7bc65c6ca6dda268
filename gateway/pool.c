/*
 * The pool process.  Instances come and go; these connections stay.  Each
 * instance has one channel and at most one query in flight (its SDK blocks on
 * the answer), so a query is a small state machine: read from the channel,
 * wait in a FIFO for a free server connection, run there (SET of the
 * function's statement_timeout if it differs, PREPARE on first use, then the
 * prepared EXECUTE), render, answer.  Connections are opened on demand up to
 * pool_size, reconnect with backoff, and are dropped whenever they end a
 * query in anything but an idle transaction state.  When the database cannot
 * be reached the queue fails fast with the connection error rather than
 * making everyone wait for db_wait_timeout.
 *
 * libpq pipeline mode is not used: with the statement cache, a query is one
 * round trip on a warm connection either way, and pipelining several
 * instances' queries on one connection would let one slow query hold up the
 * others behind it.
 */
#include "config.h"

#include "pool.h"

#include "fn_frame.h"
#include "log.h"
#include "pgjson.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#define POOL_TICK_MS 50
#define POOL_MAX_REQUEST (64u << 20)
#define POOL_CONNECT_TIMEOUT_MS 5000
#define POOL_BACKOFF_MAX_MS 1000

struct pool;
struct pconn;

/* A cached prepared statement of one server connection. */
struct stmt {
    struct stmt *hnext; /* hash chain */
    struct stmt *lru_prev, *lru_next;
    uint64_t hash;
    char *sql; /* owned */
    char name[24];
};

/* One instance's channel. */
struct pclient {
    struct pclient *next;  /* all clients */
    struct pclient *wnext; /* the wait queue */
    struct pool *pool;
    int fd;
    struct event *rev, *wev;
    struct pool_hello hello;
    struct fn_frame_reader rd;
    struct fn_buf out;
    size_t out_off;
    /* The query in flight: payload copy and libpq-ready parameters. */
    bool has_query;
    bool waiting;
    char *qbuf; /* owned: NUL-terminated sql and values */
    const char *sql;
    int nparams;
    const char **values; /* owned array; entries point into qbuf or NULL */
    int64_t queued_ns;
    struct pconn *conn;
    bool dead; /* channel closed while its query runs */
};

enum pconn_state { PC_FREE, PC_CONNECTING, PC_IDLE, PC_BUSY };
enum pconn_op { OP_NONE, OP_SET, OP_DEALLOC, OP_PREPARE, OP_EXEC, OP_RESET };

/* What a statement may leave behind in its server session. */
enum pool_touch {
    TOUCH_NONE,  /* nothing: the connection goes straight back */
    TOUCH_RESET, /* settings, temp objects, locks, listens: reset after it */
    TOUCH_DROP,  /* its own prepared statements or cursors: close the connection */
};

struct pconn {
    struct pool *pool;
    int idx;
    enum pconn_state state;
    PGconn *pg;
    struct event *rev, *wev, *cev;
    int64_t timeout_cur; /* statement_timeout in force, 0: the server's */
    struct pclient *client;
    enum pconn_op op;
    struct stmt *cur_stmt;
    bool retried;
    enum pool_touch touch; /* of the query in hand */
    bool cancelled;        /* a cancel was sent: never reuse this session */
    char dealloc[24];      /* a statement to DEALLOCATE before the next PREPARE */
    PGresult *result;      /* the EXEC's result, owned */
    PGresult *error;       /* the first error of this query, owned */
    /* The statement cache. */
    struct stmt **buckets;
    size_t nbuckets;
    struct stmt *lru_head, *lru_tail; /* head: most recent */
    int nstmts;
    unsigned long stmt_seq;
};

struct pool {
    struct pool_settings set;
    struct event_base *base;
    int ctl_fd;
    struct event *ctl_ev, *tick_ev, *sig_ev[2];
    struct pclient *clients;
    struct pclient *whead, *wtail;
    int nwait;
    struct pconn *conns;
    int connect_failures;
    int64_t connect_after_ns;
    char conn_err[256];
};

static int64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * Answers to clients
 */

static void pclient_close(struct pclient *c, const char *why);
static void pool_dispatch(struct pool *p);

static void pclient_flush(struct pclient *c)
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
            return;
        }
        pclient_close(c, "write failed");
        return;
    }
    fn_buf_reset(&c->out);
    c->out_off = 0;
}

static void pclient_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pclient_flush(arg);
}

/* Ends the query in flight: the caller has put the answer into c->out. */
static void pclient_done(struct pclient *c)
{
    free(c->qbuf);
    free(c->values);
    c->qbuf = NULL;
    c->values = NULL;
    c->has_query = false;
    c->conn = NULL;
    pclient_flush(c);
}

static void pclient_error(struct pclient *c, const char *sqlstate, const char *msg,
                          const char *detail, const char *hint, const char *position)
{
    size_t start = c->out.len;

    c->out.max = 0;
    fn_frame_begin(&c->out, FN_FRAME_ERROR);
    fn_frame_add(&c->out, sqlstate, strlen(sqlstate));
    fn_frame_add(&c->out, msg, strlen(msg));
    fn_frame_add(&c->out, detail ? detail : "", detail ? strlen(detail) : 0);
    fn_frame_add(&c->out, hint ? hint : "", hint ? strlen(hint) : 0);
    fn_frame_add(&c->out, position ? position : "", position ? strlen(position) : 0);
    if (fn_frame_end_at(&c->out, start) < 0) {
        pclient_close(c, "out of memory");
        return;
    }
    pclient_done(c);
}

/* libpq's messages end with a newline; the function gets them without. */
static void pool_chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static void pclient_error_res(struct pclient *c, const PGresult *r)
{
    char msg[1024];
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

    snprintf(msg, sizeof(msg), "%s",
             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                 ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                 : PQresultErrorMessage(r));
    pool_chomp(msg);
    pclient_error(c, state && strlen(state) == 5 ? state : POOL_ERR_LOST, msg,
                  PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL),
                  PQresultErrorField(r, PG_DIAG_MESSAGE_HINT),
                  PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION));
}

static void pclient_result(struct pclient *c, const PGresult *r)
{
    size_t start = c->out.len, mark;
    const char *tag = PQcmdStatus((PGresult *)r);
    const char *rows = PQcmdTuples((PGresult *)r);

    c->out.max = start + (size_t)c->pool->set.max_result + 1024;
    fn_frame_begin(&c->out, FN_FRAME_RESULT);
    fn_frame_add(&c->out, tag, strlen(tag));
    fn_frame_add(&c->out, rows, strlen(rows));
    mark = fn_frame_field_begin(&c->out);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        pgjson_render(r, &c->out);
    else
        fn_buf_append(&c->out, "[]", 2);
    if (!c->out.failed && c->out.len - mark > (size_t)c->pool->set.max_result)
        c->out.failed = 1;
    fn_frame_field_end(&c->out, mark);
    if (fn_frame_end_at(&c->out, start) < 0) {
        char msg[160];
        c->out.len = start;
        c->out.failed = 0;
        snprintf(msg, sizeof(msg), "result of %d rows exceeds max_result (%lld bytes)",
                 PQntuples(r), (long long)c->pool->set.max_result);
        pclient_error(c, POOL_ERR_TOO_LARGE, msg, NULL,
                      "add a LIMIT, select fewer columns, or raise max_result", NULL);
        return;
    }
    pclient_done(c);
}

/* ------------------------------------------------------------------------
 * Statement cache
 */

static uint64_t pool_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void stmt_lru_unlink(struct pconn *pc, struct stmt *st)
{
    if (st->lru_prev)
        st->lru_prev->lru_next = st->lru_next;
    else
        pc->lru_head = st->lru_next;
    if (st->lru_next)
        st->lru_next->lru_prev = st->lru_prev;
    else
        pc->lru_tail = st->lru_prev;
    st->lru_prev = st->lru_next = NULL;
}

static void stmt_lru_push(struct pconn *pc, struct stmt *st)
{
    st->lru_prev = NULL;
    st->lru_next = pc->lru_head;
    if (pc->lru_head)
        pc->lru_head->lru_prev = st;
    pc->lru_head = st;
    if (!pc->lru_tail)
        pc->lru_tail = st;
}

static struct stmt *stmt_find(struct pconn *pc, const char *sql, uint64_t h)
{
    if (!pc->buckets)
        return NULL;
    for (struct stmt *st = pc->buckets[h % pc->nbuckets]; st; st = st->hnext) {
        if (st->hash == h && strcmp(st->sql, sql) == 0)
            return st;
    }
    return NULL;
}

static void stmt_remove(struct pconn *pc, struct stmt *st)
{
    for (struct stmt **pp = &pc->buckets[st->hash % pc->nbuckets]; *pp; pp = &(*pp)->hnext) {
        if (*pp == st) {
            *pp = st->hnext;
            break;
        }
    }
    stmt_lru_unlink(pc, st);
    pc->nstmts--;
    free(st->sql);
    free(st);
}

static void stmt_clear(struct pconn *pc)
{
    while (pc->lru_head)
        stmt_remove(pc, pc->lru_head);
    free(pc->buckets);
    pc->buckets = NULL;
    pc->nbuckets = 0;
}

static struct stmt *stmt_add(struct pconn *pc, const char *sql, uint64_t h)
{
    struct stmt *st;

    if (!pc->buckets) {
        pc->nbuckets = (size_t)pc->pool->set.stmt_cache * 2 + 1;
        pc->buckets = calloc(pc->nbuckets, sizeof(*pc->buckets));
        if (!pc->buckets)
            return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (!st || !(st->sql = strdup(sql))) {
        free(st);
        return NULL;
    }
    st->hash = h;
    snprintf(st->name, sizeof(st->name), "fngate_%lu", ++pc->stmt_seq);
    st->hnext = pc->buckets[h % pc->nbuckets];
    pc->buckets[h % pc->nbuckets] = st;
    stmt_lru_push(pc, st);
    pc->nstmts++;
    return st;
}

/* ------------------------------------------------------------------------
 * Server connections
 */

static void pconn_events_free(struct pconn *pc)
{
    if (pc->rev)
        event_free(pc->rev);
    if (pc->wev)
        event_free(pc->wev);
    if (pc->cev)
        event_free(pc->cev);
    pc->rev = pc->wev = pc->cev = NULL;
}

/* Drops the connection; a query it was running is answered with WHY. */
static void pconn_drop(struct pconn *pc, const char *why)
{
    struct pclient *c = pc->client;

    if (pc->state == PC_BUSY || pc->state == PC_IDLE)
        log_info("server connection %d closed: %s", pc->idx, why);
    pconn_events_free(pc);
    if (pc->pg)
        PQfinish(pc->pg);
    pc->pg = NULL;
    PQclear(pc->result);
    PQclear(pc->error);
    pc->result = pc->error = NULL;
    stmt_clear(pc);
    pc->state = PC_FREE;
    pc->client = NULL;
    pc->op = OP_NONE;
    pc->cancelled = false;
    pc->touch = TOUCH_NONE;
    pc->dealloc[0] = '\0';
    if (c) {
        c->conn = NULL;
        if (c->dead)
            pclient_close(c, NULL);
        else
            pclient_error(c, POOL_ERR_LOST, why, NULL, NULL, NULL);
    }
}

static void pconn_fail_msg(struct pconn *pc, const char *prefix)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", prefix, pc->pg ? PQerrorMessage(pc->pg) : "?");
    pool_chomp(msg);
    pconn_drop(pc, msg);
}

static void pconn_flush(struct pconn *pc)
{
    int r = PQflush(pc->pg);
    if (r < 0)
        pconn_fail_msg(pc, "connection lost");
    else if (r > 0)
        event_add(pc->wev, NULL);
}

static void pconn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pconn_flush(arg);
}

/* Case-insensitive: does S contain WORD delimited by non-identifier bytes? */
static bool pool_has_word(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = s; (p = strcasestr(p, word)) != NULL; p++) {
        bool before = p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool after = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (before && after)
            return true;
    }
    return false;
}

/* Classifies SQL by what it can leave in the session for the next function
 * to find: a SET (statement_timeout, search_path, role), a temporary
 * object, an advisory lock, a LISTEN.  The extended protocol runs one
 * statement per query, so its first keyword says what it is; functions like
 * set_config() and temporary tables made by CREATE ... AS or SELECT INTO are
 * caught by name.  A statement inside a server-side function that changes
 * the session is not seen (documented). */
/* The first keyword of SQL, after white space and comments. */
static const char *pool_sql_start(const char *sql, size_t *len)
{
    const char *p = sql;

    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p = strchr(p, '\n');
            if (!p)
                return "";
        } else if (p[0] == '/' && p[1] == '*') {
            p = strstr(p + 2, "*/");
            if (!p)
                return "";
            p += 2;
        } else {
            break;
        }
    }
    for (*len = 0; isalpha((unsigned char)p[*len]); (*len)++)
        ;
    return p;
}

static bool pool_sql_first_word_is(const char *sql, const char *word)
{
    size_t n = 0;
    const char *p = pool_sql_start(sql, &n);
    return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

static enum pool_touch pool_sql_touch(const char *sql)
{
    static const char *const reset_first[] = {"set", "reset", "discard", "listen", "load"};
    static const char *const drop_first[] = {"prepare", "deallocate", "declare", "close"};
    size_t n = 0;
    const char *p = pool_sql_start(sql, &n);

    for (size_t i = 0; i < sizeof(drop_first) / sizeof(drop_first[0]); i++) {
        if (n == strlen(drop_first[i]) && strncasecmp(p, drop_first[i], n) == 0)
            return TOUCH_DROP;
    }
    for (size_t i = 0; i < sizeof(reset_first) / sizeof(reset_first[0]); i++) {
        if (n == strlen(reset_first[i]) && strncasecmp(p, reset_first[i], n) == 0)
            return TOUCH_RESET;
    }
    if (pool_has_word(sql, "temp") || pool_has_word(sql, "temporary") ||
        strcasestr(sql, "set_config") || strcasestr(sql, "advisory"))
        return TOUCH_RESET;
    return TOUCH_NONE;
}

/* Everything DISCARD ALL does but dropping our prepared statements. */
#define POOL_RESET_SQL                                                                             \
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "                        \
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"

/* Sends the next operation of the query in hand. */
static void pconn_send_next(struct pconn *pc)
{
    struct pclient *c = pc->client;
    int64_t want = c->hello.statement_timeout_ms;
    int ok;

    if (pc->op == OP_NONE && want != pc->timeout_cur) {
        char sql[64];
        /* 0 means the server's own setting, which a fresh connection has. */
        if (want > 0)
            snprintf(sql, sizeof(sql), "SET statement_timeout = %lld", (long long)want);
        else
            snprintf(sql, sizeof(sql), "RESET statement_timeout");
        pc->op = OP_SET;
        ok = PQsendQueryParams(pc->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    } else if (!pc->pool->set.prepared) {
        pc->op = OP_EXEC;
        ok = PQsendQueryParams(pc->pg, c->sql, c->nparams, NULL, c->values, NULL, NULL, 0);
    } else if (pc->dealloc[0] || (pc->op < OP_DEALLOC && pc->nstmts >= pc->pool->set.stmt_cache &&
                                  !stmt_find(pc, c->sql, pool_hash(c->sql)))) {
        /* A statement to forget first: a stale one, or the least recently
         * used when the cache is full. */
        char sql[64];
        if (!pc->dealloc[0]) {
            snprintf(pc->dealloc, sizeof(pc->dealloc), "%s", pc->lru_tail->name);
            stmt_remove(pc, pc->lru_tail);
        }
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", pc->dealloc);
        pc->dealloc[0] = '\0';
        pc->op = OP_DEALLOC;
        ok = PQsendQueryParams(pc->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    } else {
        uint64_t h = pool_hash(c->sql);
        struct stmt *st = stmt_find(pc, c->sql, h);
        if (st && pc->op != OP_PREPARE) {
            stmt_lru_unlink(pc, st);
            stmt_lru_push(pc, st);
            pc->cur_stmt = st;
            pc->op = OP_EXEC;
            ok = PQsendQueryPrepared(pc->pg, st->name, c->nparams, c->values, NULL, NULL, 0);
        } else if (!st) {
            st = stmt_add(pc, c->sql, h);
            if (!st) {
                pconn_drop(pc, "out of memory");
                return;
            }
            pc->cur_stmt = st;
            pc->op = OP_PREPARE;
            ok = PQsendPrepare(pc->pg, st->name, c->sql, c->nparams, NULL);
        } else {
            pc->op = OP_EXEC;
            ok = PQsendQueryPrepared(pc->pg, st->name, c->nparams, c->values, NULL, NULL, 0);
        }
    }
    if (!ok) {
        pconn_fail_msg(pc, "cannot send the query");
        return;
    }
    pconn_flush(pc);
}

static void *pconn_cancel_thread(void *arg)
{
    char err[256];
    PQcancel(arg, err, sizeof(err));
    PQfreeCancel(arg);
    return NULL;
}

/* Asks the server to cancel the query running on PC.  PQcancel blocks (it
 * opens its own connection), so it runs on a short-lived thread and the
 * event loop goes on. */
static void pconn_cancel(struct pconn *pc)
{
    PGcancel *cn = PQgetCancel(pc->pg);
    pthread_attr_t attr;
    pthread_t t;

    if (!cn)
        return;
    pc->cancelled = true;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, pconn_cancel_thread, cn) != 0) {
        PQfreeCancel(cn);
        pc->cancelled = false;
    }
    pthread_attr_destroy(&attr);
}

/* The connection is free again, unless the query left it unusable. */
static void pconn_idle(struct pconn *pc)
{
    pc->op = OP_NONE;
    PQclear(pc->error);
    pc->error = NULL;
    if (pc->cancelled) {
        /* The cancel may still be on its way: it must not reach the next
         * function's query. */
        pconn_drop(pc, "its query was cancelled");
        pool_dispatch(pc->pool);
        return;
    }
    /* Never reuse a connection a query left inside a transaction block: it
     * would run the next function's query inside that transaction. */
    if (PQtransactionStatus(pc->pg) != PQTRANS_IDLE) {
        pconn_drop(pc, "a query left the connection inside a transaction");
    } else if (pc->touch == TOUCH_DROP) {
        pconn_drop(pc, "a query made session objects (prepared statements or cursors)");
    } else if (pc->touch == TOUCH_RESET) {
        /* The function has its answer already; the reset costs it nothing. */
        pc->touch = TOUCH_NONE;
        pc->op = OP_RESET;
        if (!PQsendQuery(pc->pg, POOL_RESET_SQL)) {
            pconn_fail_msg(pc, "cannot reset the session");
        } else {
            pconn_flush(pc);
            return;
        }
    } else {
        pc->state = PC_IDLE;
    }
    pool_dispatch(pc->pool);
}

/* The query in hand is over (answered or failed): answer, then free the
 * connection. */
static void pconn_release(struct pconn *pc)
{
    struct pclient *c = pc->client;

    pc->client = NULL;
    c->conn = NULL;
    if (c->dead)
        pclient_close(c, NULL);
    else if (pc->error)
        pclient_error_res(c, pc->error);
    else if (pc->result)
        pclient_result(c, pc->result);
    else
        pclient_error(c, POOL_ERR_REQUEST, "the statement returned no result (is it empty?)", NULL,
                      NULL, NULL);
    PQclear(pc->result);
    pc->result = NULL;
    pc->cur_stmt = NULL;
    pconn_idle(pc);
}

/* One operation's results are complete (PQgetResult gave NULL). */
static void pconn_op_done(struct pconn *pc)
{
    struct pclient *c = pc->client;

    switch (pc->op) {
    case OP_SET:
        if (pc->error) {
            /* The SET failed: report it as the query's error. */
            pconn_release(pc);
            return;
        }
        pc->timeout_cur = c->hello.statement_timeout_ms;
        break;
    case OP_DEALLOC:
        PQclear(pc->error); /* a statement already gone is fine */
        pc->error = NULL;
        break;
    case OP_PREPARE:
        if (pc->error) {
            stmt_remove(pc, pc->cur_stmt);
            pc->cur_stmt = NULL;
            pconn_release(pc);
            return;
        }
        break;
    case OP_EXEC: {
        const char *state = pc->error ? PQresultErrorField(pc->error, PG_DIAG_SQLSTATE) : NULL;
        bool lost = state && strcmp(state, "26000") == 0;
        bool stale = state && strcmp(state, "0A000") == 0 &&
                     strstr(PQresultErrorMessage(pc->error), "cached plan");
        if ((lost || stale) && pc->cur_stmt && !pc->retried) {
            /* 26000: the server lost our statement (a pooler behind us
             * switched connections).  0A000: a migration changed the result
             * type of a cached SELECT *.  Prepare it again, once, after
             * deallocating a stale one. */
            if (stale)
                snprintf(pc->dealloc, sizeof(pc->dealloc), "%s", pc->cur_stmt->name);
            stmt_remove(pc, pc->cur_stmt);
            pc->cur_stmt = NULL;
            PQclear(pc->error);
            pc->error = NULL;
            pc->retried = true;
            pc->op = OP_DEALLOC; /* so the next send prepares */
            break;
        }
        pconn_release(pc);
        return;
    }
    case OP_RESET:
        if (pc->error) {
            pconn_drop(pc, "the session reset failed");
        } else {
            pc->timeout_cur = 0;
            pc->state = PC_IDLE;
            pc->op = OP_NONE;
        }
        pool_dispatch(pc->pool);
        return;
    case OP_NONE:
        return;
    }
    pconn_send_next(pc);
}

static void pconn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pconn *pc = arg;
    (void)fd;
    (void)what;

    if (!PQconsumeInput(pc->pg)) {
        pconn_fail_msg(pc, "connection lost");
        pool_dispatch(pc->pool);
        return;
    }
    if (pc->state != PC_BUSY) {
        /* An idle connection spoke: a notice, or the server going away. */
        PGresult *r;
        while (!PQisBusy(pc->pg) && (r = PQgetResult(pc->pg)) != NULL)
            PQclear(r);
        if (PQstatus(pc->pg) == CONNECTION_BAD)
            pconn_fail_msg(pc, "server closed the connection");
        return;
    }
    while (pc->state == PC_BUSY && !PQisBusy(pc->pg)) {
        PGresult *r = PQgetResult(pc->pg);
        if (!r) {
            pconn_op_done(pc);
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (pc->op == OP_EXEC && !pc->result) {
                pc->result = r;
                continue;
            }
            break;
        case PGRES_FATAL_ERROR:
        case PGRES_NONFATAL_ERROR:
        case PGRES_BAD_RESPONSE:
            if (!pc->error) {
                pc->error = r;
                continue;
            }
            break;
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            /* PQgetResult would hand back the COPY state forever: the
             * connection is unusable for anything else. */
            PQclear(r);
            pconn_drop(pc, "COPY is not supported through fn_query");
            pool_dispatch(pc->pool);
            return;
        default:
            break;
        }
        PQclear(r);
    }
    if (pc->state == PC_BUSY && PQstatus(pc->pg) == CONNECTION_BAD)
        pconn_fail_msg(pc, "connection lost");
}

static void pconn_ready(struct pconn *pc)
{
    struct pool *p = pc->pool;

    if (pc->cev) {
        event_free(pc->cev);
        pc->cev = NULL;
    }
    PQsetnonblocking(pc->pg, 1);
    pc->rev = event_new(p->base, PQsocket(pc->pg), EV_READ | EV_PERSIST, pconn_read_cb, pc);
    pc->wev = event_new(p->base, PQsocket(pc->pg), EV_WRITE, pconn_write_cb, pc);
    if (!pc->rev || !pc->wev || event_add(pc->rev, NULL) < 0) {
        pconn_drop(pc, "event setup failed");
        return;
    }
    pc->state = PC_IDLE;
    pc->timeout_cur = 0;
    if (p->connect_failures)
        log_info("database reachable again (server connection %d)", pc->idx);
    else
        log_debug("server connection %d open", pc->idx);
    p->connect_failures = 0;
    p->connect_after_ns = 0;
    p->conn_err[0] = '\0';
}

static void pconn_connect_cb(evutil_socket_t fd, short what, void *arg);

static void pconn_connect_failed(struct pconn *pc)
{
    struct pool *p = pc->pool;
    int64_t delay = 50;

    snprintf(p->conn_err, sizeof(p->conn_err), "%s",
             pc->pg ? PQerrorMessage(pc->pg) : "cannot allocate a connection");
    pool_chomp(p->conn_err);
    p->connect_failures++;
    for (int i = 1; i < p->connect_failures && delay < POOL_BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > POOL_BACKOFF_MAX_MS)
        delay = POOL_BACKOFF_MAX_MS;
    p->connect_after_ns = pool_now_ns() + delay * 1000000;
    if (p->connect_failures == 1 || p->connect_failures % 20 == 0)
        log_warnx("cannot connect to the database (attempt %d, next in %lld ms): %s",
                  p->connect_failures, (long long)delay, p->conn_err);
    pconn_events_free(pc);
    if (pc->pg)
        PQfinish(pc->pg);
    pc->pg = NULL;
    pc->state = PC_FREE;
}

/* Waits for what PQconnectPoll asked for. */
static void pconn_connect_wait(struct pconn *pc, PostgresPollingStatusType st)
{
    struct timeval tv = {POOL_CONNECT_TIMEOUT_MS / 1000, 0};
    short what = st == PGRES_POLLING_WRITING ? EV_WRITE : EV_READ;

    if (pc->cev)
        event_free(pc->cev);
    pc->cev = event_new(pc->pool->base, PQsocket(pc->pg), what, pconn_connect_cb, pc);
    if (!pc->cev || event_add(pc->cev, &tv) < 0) {
        pconn_connect_failed(pc);
        pool_dispatch(pc->pool);
    }
}

static void pconn_connect_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pconn *pc = arg;
    PostgresPollingStatusType st;
    (void)fd;

    if (what & EV_TIMEOUT) {
        pconn_connect_failed(pc);
        snprintf(pc->pool->conn_err, sizeof(pc->pool->conn_err),
                 "connection attempt timed out after %d ms", POOL_CONNECT_TIMEOUT_MS);
        pool_dispatch(pc->pool);
        return;
    }
    st = PQconnectPoll(pc->pg);
    if (st == PGRES_POLLING_OK) {
        pconn_ready(pc);
        pool_dispatch(pc->pool);
    } else if (st == PGRES_POLLING_FAILED) {
        pconn_connect_failed(pc);
        pool_dispatch(pc->pool);
    } else {
        pconn_connect_wait(pc, st);
    }
}

static void pconn_start(struct pconn *pc)
{
    pc->state = PC_CONNECTING;
    pc->pg = PQconnectStart(pc->pool->set.conninfo);
    if (!pc->pg || PQstatus(pc->pg) == CONNECTION_BAD) {
        pconn_connect_failed(pc);
        return;
    }
    pconn_connect_wait(pc, PGRES_POLLING_WRITING);
}

/* ------------------------------------------------------------------------
 * The wait queue and dispatch
 */

static void pool_wait_remove(struct pool *p, struct pclient *c)
{
    struct pclient **pp = &p->whead, *prev = NULL;

    for (; *pp; prev = *pp, pp = &(*pp)->wnext) {
        if (*pp == c) {
            *pp = c->wnext;
            if (p->wtail == c)
                p->wtail = prev;
            c->wnext = NULL;
            c->waiting = false;
            p->nwait--;
            return;
        }
    }
}

static void pool_dispatch(struct pool *p)
{
    int connecting = 0, usable = 0;
    int64_t now = pool_now_ns();

    for (int i = 0; i < p->set.pool_size && p->whead; i++) {
        struct pconn *pc = &p->conns[i];
        if (pc->state != PC_IDLE)
            continue;
        struct pclient *c = p->whead;
        pool_wait_remove(p, c);
        pc->state = PC_BUSY;
        pc->client = c;
        pc->op = OP_NONE;
        pc->retried = false;
        pc->touch = pool_sql_touch(c->sql);
        c->conn = pc;
        pconn_send_next(pc);
    }
    if (!p->whead)
        return;
    for (int i = 0; i < p->set.pool_size; i++) {
        if (p->conns[i].state == PC_CONNECTING)
            connecting++;
        if (p->conns[i].state != PC_FREE)
            usable++;
    }
    if (now >= p->connect_after_ns) {
        /* Open as many connections as the queue needs, up to pool_size. */
        for (int i = 0; i < p->set.pool_size && connecting < p->nwait; i++) {
            if (p->conns[i].state == PC_FREE) {
                pconn_start(&p->conns[i]);
                if (p->conns[i].state == PC_CONNECTING) {
                    connecting++;
                    usable++;
                }
                if (now < p->connect_after_ns)
                    break;
            }
        }
    }
    if (usable == 0 && now < p->connect_after_ns) {
        /* The database is unreachable: fail now with the reason. */
        char msg[400];
        snprintf(msg, sizeof(msg), "database unavailable: %s", p->conn_err);
        while (p->whead) {
            struct pclient *c = p->whead;
            pool_wait_remove(p, c);
            pclient_error(c, POOL_ERR_CONNECT, msg, NULL, NULL, NULL);
        }
    }
}

/* ------------------------------------------------------------------------
 * Channels
 */

static void pclient_free(struct pclient *c)
{
    if (!c)
        return;
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->fd >= 0)
        close(c->fd);
    fn_frame_reader_free(&c->rd);
    fn_buf_free(&c->out);
    free(c->qbuf);
    free(c->values);
    free(c);
}

static void pclient_close(struct pclient *c, const char *why)
{
    struct pool *p = c->pool;

    if (why)
        log_warnx("[fn %s pid %d] database channel closed: %s", c->hello.fn, c->hello.pid, why);
    if (c->waiting)
        pool_wait_remove(p, c);
    if (c->conn && c->conn->client == c) {
        /* The server is still working on its query, for nobody now (the
         * instance died, timed out or was killed): cancel it, and free the
         * channel when the connection comes back. */
        c->dead = true;
        pconn_cancel(c->conn);
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
    for (struct pclient **pp = &p->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pclient_free(c);
}

/* Copies the parsed query into C in the form libpq takes. */
static int pclient_take_query(struct pclient *c, const struct fn_frame_view *v)
{
    size_t total = 0;
    char *w;

    c->nparams = (int)v->n_fields - 1;
    for (size_t i = 0; i < v->n_fields; i++)
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
        const struct fn_frame_field *f = &v->field[i + 1];
        char tag = f->p[0];
        if (tag == FN_FRAME_P_NULL) {
            c->values[i] = NULL;
            continue;
        }
        memcpy(w, f->p + 1, f->len - 1);
        w[f->len - 1] = '\0';
        if (tag == FN_FRAME_P_BOOL)
            c->values[i] = w[0] == 't' ? "true" : "false";
        else
            c->values[i] = w;
        w += f->len;
    }
    return 0;
}

static void pclient_read_cb(evutil_socket_t fd, short what, void *arg)
{
    static struct fn_frame_view view; /* 16 KB: one, not per client */
    struct pclient *c = arg;
    struct pool *p = c->pool;
    const char *payload;
    size_t len;
    char err[160];
    int r;
    (void)what;

    r = fn_frame_reader_read(&c->rd, (int)fd);
    while (fn_frame_reader_next(&c->rd, &payload, &len) == 1) {
        if (c->has_query) {
            pclient_close(c, "a second query before the answer to the first");
            return;
        }
        if (fn_frame_parse(payload, len, &view, err, sizeof(err)) < 0) {
            pclient_close(c, err);
            return;
        }
        if (view.type != FN_FRAME_QUERY) {
            pclient_close(c, "not a query frame");
            return;
        }
        c->has_query = true;
        if (pclient_take_query(c, &view) < 0) {
            pclient_error(c, POOL_ERR_REQUEST, "out of memory", NULL, NULL, NULL);
            continue;
        }
        if (pool_sql_first_word_is(c->sql, "copy")) {
            pclient_error(c, POOL_ERR_REQUEST, "COPY is not supported through fn_query", NULL,
                          "use INSERT ... SELECT, or json_populate_recordset for bulk rows", NULL);
            continue;
        }
        c->queued_ns = pool_now_ns();
        c->waiting = true;
        c->wnext = NULL;
        if (p->wtail)
            p->wtail->wnext = c;
        else
            p->whead = c;
        p->wtail = c;
        p->nwait++;
    }
    if (r < 0) {
        /* A clean close when the instance exits is the normal end. */
        pclient_close(c, strcmp(c->rd.err, "channel closed") == 0 ? NULL : c->rd.err);
        pool_dispatch(p);
        return;
    }
    pool_dispatch(p);
}

static void pool_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    struct pool_hello hello;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&hello, sizeof(hello)};
    struct msghdr msg;
    struct cmsghdr *cm;
    struct pclient *c;
    ssize_t n;
    int cfd = -1;
    (void)what;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
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
    if (cfd < 0 || n != (ssize_t)sizeof(hello) || hello.version != POOL_HELLO_VERSION) {
        log_warnx("control socket: malformed hand-over");
        if (cfd >= 0)
            close(cfd);
        return;
    }
    hello.fn[sizeof(hello.fn) - 1] = '\0';
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(cfd);
        return;
    }
    c->pool = p;
    c->fd = cfd;
    c->hello = hello;
    evutil_make_socket_nonblocking(cfd);
    fn_frame_reader_init(&c->rd, POOL_MAX_REQUEST);
    fn_buf_init(&c->out, 0);
    c->rev = event_new(p->base, cfd, EV_READ | EV_PERSIST, pclient_read_cb, c);
    c->wev = event_new(p->base, cfd, EV_WRITE, pclient_write_cb, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) < 0) {
        pclient_free(c);
        return;
    }
    c->next = p->clients;
    p->clients = c;
}

/* ------------------------------------------------------------------------
 * Maintenance
 */

static void pool_tick(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    int64_t now = pool_now_ns();
    int open = 0;
    (void)fd;
    (void)what;

    /* In milliseconds: db_wait_timeout may be huge, ns would overflow. */
    while (p->whead && (now - p->whead->queued_ns) / 1000000 > p->set.db_wait_timeout_ms) {
        struct pclient *c = p->whead;
        char msg[200];
        pool_wait_remove(p, c);
        snprintf(msg, sizeof(msg),
                 "pool timeout: no database connection free within db_wait_timeout (%lld ms)",
                 (long long)p->set.db_wait_timeout_ms);
        log_warnx("[fn %s pid %d] %s", c->hello.fn, c->hello.pid, msg);
        pclient_error(c, POOL_ERR_TIMEOUT, msg, NULL,
                      "raise pool_size or db_wait_timeout, or make queries faster", NULL);
    }
    for (int i = 0; i < p->set.pool_size; i++) {
        if (p->conns[i].state != PC_FREE)
            open++;
    }
    for (int i = 0; i < p->set.pool_size && open < p->set.min_pool && now >= p->connect_after_ns;
         i++) {
        if (p->conns[i].state == PC_FREE) {
            pconn_start(&p->conns[i]);
            open++;
        }
    }
    pool_dispatch(p);
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
    }
    p.ctl_ev = event_new(p.base, ctl_fd, EV_READ | EV_PERSIST, pool_ctl_cb, &p);
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
    rc = event_base_dispatch(p.base) < 0 ? 1 : 0;
out:
    while (p.clients) {
        struct pclient *c = p.clients;
        p.clients = c->next;
        pclient_free(c);
    }
    for (int i = 0; p.conns && i < p.set.pool_size; i++) {
        p.conns[i].client = NULL;
        pconn_drop(&p.conns[i], "pool exiting");
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
