/*
 * Server connections.  libpq pipeline mode is used for one thing: a session
 * passed to another function sends its reset (DISCARD ALL), the function's
 * statement_timeout and the query in one round trip, with one Sync at the
 * end, so a failed reset aborts the query unrun (it never runs on a session
 * that still holds the other function's settings).  Otherwise, with the
 * statement cache, a query is one round trip on a warm connection either
 * way, and pipelining several instances' queries on one connection would
 * let one slow query hold up the others behind it.  When the database cannot be
 * reached the failure is recorded for dispatch, which fails the queue fast
 * with the reason rather than making everyone wait for db_wait_timeout.
 *
 * A result is read in single-row mode, so max_result holds while reading,
 * unless its statement's results have always been small: libpq's
 * single-row mode makes a PGresult per row (with a copy of the column
 * descriptions), which costs more than half again the CPU of a whole read
 * for a list of a few hundred rows.  A whole read is guarded by the bytes
 * counted off the socket (rxcount.c): past the guard the session is closed,
 * the query answered FG002 and the statement read row by row from then on,
 * so a statement that is small a hundred times and then returns 100 MB costs
 * the pool at most the guard's worth of PGresult, never the 100 MB.
 */
#include "config.h"

#include "server.h"

#include "client.h"
#include "dispatch.h"
#include "log.h"
#include "rxcount.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_CONNECT_TIMEOUT_MS 5000
#define POOL_BACKOFF_MAX_MS 1000
/* The pool's statement_timeout fires this much after the server's own
 * should have, so that normally the server's (which keeps the session) wins;
 * if the server has not answered the cancel this much later still, the
 * connection goes. */
#define POOL_TIMEOUT_GRACE_MS 50
#define POOL_CANCEL_WAIT_MS 1000

/* What a session passed from one function to another runs first.  It is
 * complete where it matters (RESET ALL covers every GUC however it was set,
 * DO blocks and set_config included; temporary objects, advisory locks,
 * LISTENs, cursors, SET ROLE / SESSION AUTHORIZATION, and our prepared
 * statements, whose text is the previous function's SQL) and costs one
 * round trip; the statements are prepared again lazily. */
#define POOL_RESET_SQL "DISCARD ALL"

/* The most wire bytes a result read whole may take (a quarter of max_result
 * if that is less): its PGresult holds at most about four times that
 * (16 bytes per value against 4 on the wire, for the narrowest columns), so
 * pool_size whole reads stay within a few MB.  A statement is read whole
 * only while its results have all stayed under a quarter of the guard: a
 * cut-off needs it to grow fourfold at once. */
#define POOL_WHOLE_GUARD_MAX ((size_t)256 << 10)

static size_t server_whole_guard(const struct pool *p)
{
    size_t g = (size_t)p->set.max_result / 4;

    return g < POOL_WHOLE_GUARD_MAX ? g : POOL_WHOLE_GUARD_MAX;
}

/* What a row may take off the socket past the end of the rows before it,
 * beyond max_result: single-row mode cannot help with one huge row, which
 * libpq buffers whole (and copies into a PGresult); a row this large would
 * render past max_result anyway, so the session is closed before libpq
 * takes in more of it. */
#define POOL_ROW_SLACK ((size_t)64 << 10)

static size_t server_row_ceiling(const struct pool *p)
{
    return (size_t)p->set.max_result + POOL_ROW_SLACK;
}

static void server_send_next(struct server *pc);
static void server_fail_msg(struct server *pc, const char *prefix);
static void server_rx_start(struct server *pc, struct stmt *st);

static void server_connect_cb(evutil_socket_t fd, short what, void *arg);
static void server_ident_free(struct server *pc);
static void server_read_cb(evutil_socket_t fd, short what, void *arg);

static void server_events_free(struct server *pc)
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
/* The connection no longer counts against its function's share. */
static void server_unshare(struct server *pc)
{
    if (pc->fq)
        pc->fq->busy--;
    pc->fq = NULL;
}

void server_drop(struct server *pc, const char *why)
{
    struct client *c = pc->client;
    struct client *tx = pc->pinned;

    server_unshare(pc);
    if (pc->state == PC_BUSY || pc->state == PC_IDLE || pc->state == PC_PINNED)
        log_info("server connection %d closed: %s", pc->idx, why);
    if (tx) {
        /* Closing the session rolls its transaction back. */
        log_warnx("[fn %s pid %d] transaction rolled back: %s", tx->hello.fn, tx->hello.pid, why);
        tx->pinned = NULL;
        pc->pinned = NULL;
    }
    if (pc->pin_ev)
        event_free(pc->pin_ev);
    pc->pin_ev = NULL;
    server_events_free(pc);
    if (pc->pg && pc->rx_armed)
        rxcount_disarm(PQsocket(pc->pg));
    pc->rx_armed = false;
    pc->whole = false;
    pc->sized = NULL;
    if (pc->pg)
        PQfinish(pc->pg);
    pc->pg = NULL;
    PQclear(pc->result);
    PQclear(pc->error);
    pc->result = pc->error = NULL;
    pgjson_rows_free(pc->rows);
    pc->rows = NULL;
    fnsdk_buf_free(&pc->json);
    pc->too_large = false;
    stmt_clear(&pc->stmts);
    server_ident_free(pc);
    pc->state = PC_FREE;
    pc->client = NULL;
    pc->op = OP_NONE;
    pc->cancelled = false;
    pc->need_reset = false;
    pc->piped = false;
    pc->owner[0] = '\0';
    pc->timed_out = 0;
    if (pc->tev)
        event_free(pc->tev);
    pc->tev = NULL;
    pc->dealloc[0] = '\0';
    if (c) {
        c->conn = NULL;
        if (c->dead)
            client_close(c, NULL);
        else
            client_error(c, POOL_ERR_LOST, why, NULL, NULL, NULL);
    }
    /* The instance believes it is inside a transaction: its next query
     * must not run outside it, so its channel goes too (it gets 08006 and
     * is replaced). */
    for (struct client *k = pc->pool->clients; tx && k; k = k->next) {
        if (k == tx && !tx->dead) { /* still there after its answer */
            client_close(tx, "the connection holding its transaction was lost");
            break;
        }
    }
}

/* libpq keeps the errors of the last query in PQerrorMessage and appends
 * to them: only what came after ERRMARK is about this failure (else a lost
 * connection would be logged as "connection lost: ERROR: duplicate key
 * ..." from a query long answered). */
static void server_mark(struct server *pc)
{
    pc->errmark = pc->pg ? strlen(PQerrorMessage(pc->pg)) : 0;
}

static void server_fail_msg(struct server *pc, const char *prefix)
{
    const char *all = pc->pg ? PQerrorMessage(pc->pg) : "";
    size_t len = strlen(all);
    const char *now = len >= pc->errmark ? all + pc->errmark : all;
    char msg[512];

    snprintf(msg, sizeof(msg), "%s: %s", prefix, *now ? now : "no reason given by libpq");
    for (char *q = msg; *q; q++) {
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    }
    pool_chomp(msg);
    server_drop(pc, msg);
}

static void server_flush(struct server *pc)
{
    int r = PQflush(pc->pg);
    if (r < 0)
        server_fail_msg(pc, "connection lost");
    else if (r > 0)
        event_add(pc->wev, NULL);
}

static void server_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_flush(arg);
}
/* The EXEC was just sent: the buffers its rows are rendered into. */
static int server_exec_prepare(struct server *pc)
{
    if (!pc->rows && !(pc->rows = pgjson_rows_new())) {
        server_drop(pc, "out of memory");
        return -1;
    }
    pgjson_rows_reset(pc->rows);
    fnsdk_buf_reset(&pc->json);
    pc->json.max = (size_t)pc->pool->set.max_result;
    pc->nrows = 0;
    pc->too_large = false;
    return 0;
}

/* The EXEC is the query whose results come next: its rows come one PGresult
 * each (libpq would otherwise buffer the whole result before max_result
 * could be checked).  Fails only if its results have started to come, which
 * cannot be yet: the result is then read whole, and rendered the same way. */
static void server_exec_rows(struct server *pc)
{
    if (!pc->whole)
        PQsetSingleRowMode(pc->pg);
}

static int server_exec_begin(struct server *pc)
{
    if (server_exec_prepare(pc) < 0)
        return -1;
    server_exec_rows(pc);
    return 0;
}

/* The query in hand is another function's than the session's last: its
 * reset, its statement_timeout (a reset session has the server's) and the
 * query itself go in one pipeline, one round trip instead of two or three.
 * What the reset leaves (no statements, the server's statement_timeout) is
 * taken as done now; if it fails the session is closed, and the rest of the
 * pipeline, aborted by the server before the Sync, never ran.  False if
 * the connection cannot enter pipeline mode (the caller resets the slow
 * way). */
static bool server_send_piped(struct server *pc)
{
    struct client *c = pc->client;
    int64_t want = c->hello.statement_timeout_ms;
    struct stmt *st = NULL;
    int ok;

    if (!PQenterPipelineMode(pc->pg))
        return false;
    FNSDK_SCOREBOARD_STORE(pc->pool->stats->resets,
                           FNSDK_SCOREBOARD_LOAD(pc->pool->stats->resets) + 1);
    pc->piped = true;
    pc->op = OP_RESET;
    ok = PQsendQueryParams(pc->pg, POOL_RESET_SQL, 0, NULL, NULL, NULL, NULL, 0);
    stmt_clear(&pc->stmts);
    pc->dealloc[0] = '\0';
    pc->timeout_cur = 0;
    pc->need_reset = false;
    pc->pipe_set = want > 0;
    if (ok && want > 0) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SET statement_timeout = %lld", (long long)want);
        ok = PQsendQueryParams(pc->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    }
    if (ok && pc->pool->set.prepared) {
        FNSDK_SCOREBOARD_STORE(pc->pool->stats->prepared_misses,
                               FNSDK_SCOREBOARD_LOAD(pc->pool->stats->prepared_misses) + 1);
        if (!(st = stmt_add(&pc->stmts, c->sql))) {
            server_drop(pc, "out of memory");
            return true;
        }
    }
    if (ok) {
        /* Unnamed, as any statement's first use in a session. */
        pc->cur_stmt = NULL;
        server_rx_start(pc, st);
        ok = PQsendQueryParams(pc->pg, c->sql, c->nparams, NULL, c->values, NULL, NULL, 0);
    }
    if (ok)
        ok = PQpipelineSync(pc->pg);
    if (!ok) {
        server_fail_msg(pc, "cannot send the query");
        return true;
    }
    if (server_exec_prepare(pc) < 0)
        return true;
    server_flush(pc);
    return true;
}

/* Before the EXEC of ST (NULL: no statement cache) goes out: how it will be
 * read, and the byte count from zero.  Never whole inside a transaction,
 * where closing the session would take the function's transaction with it. */
static void server_rx_start(struct server *pc, struct stmt *st)
{
    size_t guard = server_whole_guard(pc->pool);

    pc->sized = st;
    pc->whole = pc->rx_armed && st && !pc->pinned && stmt_whole_ok(st, guard / 4) &&
                !stmt_bigset_has(&pc->client->fq->big, st) &&
                PQtransactionStatus(pc->pg) == PQTRANS_IDLE;
    if (pc->rx_armed)
        rxcount_reset(PQsocket(pc->pg), pc->whole ? guard : server_row_ceiling(pc->pool));
    if (pc->whole)
        FNSDK_SCOREBOARD_STORE(pc->pool->stats->whole_reads,
                               FNSDK_SCOREBOARD_LOAD(pc->pool->stats->whole_reads) + 1);
}

/* A whole read passed the guard.  libpq would go on buffering the result
 * until its end, and closing the session is the only way to stop it; the
 * statement is read row by row from now on in every session of this
 * function, and the query is answered FG002. */
static void server_trip(struct server *pc)
{
    struct pool *p = pc->pool;
    struct client *c = pc->client;
    size_t guard = server_whole_guard(p);
    char msg[160];

    if (pc->sized)
        stmt_bigset_add(&c->fq->big, pc->sized);
    for (int i = 0; i < p->set.pool_size; i++) {
        struct server *k = &p->conns[i];
        struct stmt *st;
        if (strcmp(k->owner, pc->owner) == 0 && (st = stmt_find(&k->stmts, c->sql)) != NULL)
            st->big = true;
    }
    FNSDK_SCOREBOARD_STORE(p->stats->whole_cutoffs,
                           FNSDK_SCOREBOARD_LOAD(p->stats->whole_cutoffs) + 1);
    log_warnx("[fn %s pid %d] result passed %zu bytes while read whole (its statement's results "
              "had stayed under %zu): connection %d closed; the statement is read row by row "
              "from now on",
              c->hello.fn, c->hello.pid, guard, guard / 4, pc->idx);
    pc->client = NULL;
    c->conn = NULL;
    server_drop(pc, "its result outgrew a whole read");
    if (c->dead) {
        client_close(c, NULL);
    } else {
        snprintf(msg, sizeof(msg), "result larger than the pool reads at once (%zu bytes)", guard);
        client_error(c, POOL_ERR_TOO_LARGE, msg,
                     "the connection was closed mid-result: a statement that changes data may "
                     "or may not have taken effect",
                     "run it again: the pool now reads it row by row, up to max_result", NULL);
    }
    dispatch_run(p);
}

/* A row read row by row passed max_result on the wire, and libpq would
 * buffer it whole: the session is closed and the query answered FG002.
 * Inside a transaction the drop itself answers, and takes the channel. */
static void server_outgrow(struct server *pc)
{
    struct pool *p = pc->pool;
    struct client *c = pc->client;
    char msg[160];

    log_warnx("[fn %s pid %d] a row of its result passed max_result (%lld bytes) on the wire: "
              "connection %d closed",
              c->hello.fn, c->hello.pid, (long long)p->set.max_result, pc->idx);
    if (pc->pinned) {
        server_drop(pc, "a row of its result passed max_result");
        dispatch_run(p);
        return;
    }
    pc->client = NULL;
    c->conn = NULL;
    server_drop(pc, "a row of its result passed max_result");
    if (c->dead) {
        client_close(c, NULL);
    } else {
        snprintf(msg, sizeof(msg), "a row of the result exceeds max_result (%lld bytes)",
                 (long long)p->set.max_result);
        client_error(c, POOL_ERR_TOO_LARGE, msg,
                     "the connection was closed mid-result: a statement that changes data may "
                     "or may not have taken effect",
                     "select fewer or smaller columns, or raise max_result", NULL);
    }
    dispatch_run(p);
}

/* Renders one batch of the EXEC's rows.  Past max_result the rendered
 * rows go at once and later ones are only counted: the rest of the result
 * is read and dropped a row at a time, so memory stays bounded and the
 * session stays usable (a cancel would cost the session: the pool never
 * reuses one a cancel may still reach). */
static void server_rows(struct server *pc, const PGresult *r)
{
    pc->nrows += PQntuples(r);
    if (pc->too_large || pc->error)
        return;
    if (pgjson_rows_add(pc->rows, r, &pc->json) < 0) {
        pc->too_large = true;
        fnsdk_buf_free(&pc->json);
    }
}

/* Sends the next operation of the query in hand. */
static void server_send_next(struct server *pc)
{
    struct client *c = pc->client;
    int64_t want = c->hello.statement_timeout_ms;
    int ok;

    if (pc->op == OP_NONE && pc->need_reset && server_send_piped(pc))
        return;
    if (pc->op == OP_NONE && pc->need_reset) {
        pc->op = OP_RESET;
        FNSDK_SCOREBOARD_STORE(pc->pool->stats->resets,
                               FNSDK_SCOREBOARD_LOAD(pc->pool->stats->resets) + 1);
        ok = PQsendQuery(pc->pg, POOL_RESET_SQL);
    } else if (pc->op < OP_SET && want != pc->timeout_cur) {
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
        server_rx_start(pc, NULL);
        ok = PQsendQueryParams(pc->pg, c->sql, c->nparams, NULL, c->values, NULL, NULL, 0);
    } else if (pc->dealloc[0] ||
               (pc->op < OP_DEALLOC && stmt_full(&pc->stmts) && !stmt_find(&pc->stmts, c->sql))) {
        /* A statement to forget first: a stale one, or the least recently
         * used when the cache is full. */
        char sql[64];
        if (!pc->dealloc[0]) {
            struct stmt *old = stmt_oldest(&pc->stmts);
            if (!old->prepared) {
                /* Only seen, never prepared: nothing to tell the server. */
                stmt_remove(&pc->stmts, old);
                server_send_next(pc);
                return;
            }
            snprintf(pc->dealloc, sizeof(pc->dealloc), "%s", old->name);
            stmt_remove(&pc->stmts, old);
        }
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", pc->dealloc);
        pc->dealloc[0] = '\0';
        pc->op = OP_DEALLOC;
        ok = PQsendQueryParams(pc->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    } else {
        struct stmt *st = stmt_find(&pc->stmts, c->sql);
        if (st && !st->prepared) {
            /* The second use: worth a statement now.  The first ran
             * unnamed (parse, bind and execute in one round trip), so a
             * statement used once, or once per session reset, never pays
             * for a PREPARE. */
            FNSDK_SCOREBOARD_STORE(pc->pool->stats->prepared_hits,
                                   FNSDK_SCOREBOARD_LOAD(pc->pool->stats->prepared_hits) + 1);
            stmt_touch(&pc->stmts, st);
            pc->cur_stmt = st;
            pc->op = OP_PREPARE;
            ok = PQsendPrepare(pc->pg, st->name, c->sql, c->nparams, NULL);
        } else if (st && pc->op != OP_PREPARE) {
            FNSDK_SCOREBOARD_STORE(pc->pool->stats->prepared_hits,
                                   FNSDK_SCOREBOARD_LOAD(pc->pool->stats->prepared_hits) + 1);
            stmt_touch(&pc->stmts, st);
            pc->cur_stmt = st;
            pc->op = OP_EXEC;
            server_rx_start(pc, st);
            ok = PQsendQueryPrepared(pc->pg, st->name, c->nparams, c->values, NULL, NULL, 0);
        } else if (!st) {
            FNSDK_SCOREBOARD_STORE(pc->pool->stats->prepared_misses,
                                   FNSDK_SCOREBOARD_LOAD(pc->pool->stats->prepared_misses) + 1);
            st = stmt_add(&pc->stmts, c->sql);
            if (!st) {
                server_drop(pc, "out of memory");
                return;
            }
            pc->cur_stmt = NULL; /* no statement of ours to retry */
            pc->op = OP_EXEC;
            server_rx_start(pc, st);
            ok = PQsendQueryParams(pc->pg, c->sql, c->nparams, NULL, c->values, NULL, NULL, 0);
        } else {
            pc->op = OP_EXEC;
            server_rx_start(pc, st);
            ok = PQsendQueryPrepared(pc->pg, st->name, c->nparams, c->values, NULL, NULL, 0);
        }
    }
    if (!ok) {
        server_fail_msg(pc, "cannot send the query");
        return;
    }
    if (pc->op == OP_EXEC && server_exec_begin(pc) < 0)
        return;
    server_flush(pc);
}

static void *server_cancel_thread(void *arg)
{
    char err[256];
    PQcancel(arg, err, sizeof(err));
    PQfreeCancel(arg);
    return NULL;
}

/* Asks the server to cancel the query running on PC.  PQcancel blocks (it
 * opens its own connection), so it runs on a short-lived thread and the
 * event loop goes on. */
void server_cancel(struct server *pc)
{
    PGcancel *cn = PQgetCancel(pc->pg);
    pthread_attr_t attr;
    pthread_t t;

    if (!cn)
        return;
    pc->cancelled = true;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, server_cancel_thread, cn) != 0) {
        PQfreeCancel(cn);
        pc->cancelled = false;
    }
    pthread_attr_destroy(&attr);
}

/* The connection is free again, unless the query left it unusable. */
static void server_idle(struct server *pc)
{
    if (pc->state == PC_FREE) {
        /* Dropped while answering (the client's channel failed). */
        dispatch_run(pc->pool);
        return;
    }
    pc->op = OP_NONE;
    PQclear(pc->error);
    pc->error = NULL;
    if (pc->cancelled) {
        /* The cancel may still be on its way: it must not reach the next
         * function's query. */
        server_drop(pc, "its query was cancelled");
        dispatch_run(pc->pool);
        return;
    }
    if (pc->pinned) {
        /* Inside the client's transaction: nobody else's until it ends. */
        pc->state = PC_PINNED;
    } else if (PQtransactionStatus(pc->pg) != PQTRANS_IDLE) {
        /* Never reuse a session left inside a transaction block. */
        server_drop(pc, "a query left the connection inside a transaction");
    } else {
        pc->state = PC_IDLE;
    }
    dispatch_run(pc->pool);
}

static void server_pin_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *pc = arg;
    struct client *c = pc->pinned;
    (void)fd;
    (void)what;

    if (!c)
        return;
    log_warnx("[fn %s pid %d] transaction open longer than request_timeout (%lld ms): "
              "rolled back",
              c->hello.fn, c->hello.pid, (long long)c->hello.request_timeout_ms);
    client_close(c, "its transaction outlived request_timeout");
}

/* After C's query: keeps the session for C while its transaction is open
 * (the share stays counted), else lets it go.  Decided before answering,
 * which may close C. */
static void server_pin_decide(struct server *pc, struct client *c)
{
    bool in_tx = !c->dead && !pc->cancelled && PQtransactionStatus(pc->pg) != PQTRANS_IDLE &&
                 PQtransactionStatus(pc->pg) != PQTRANS_UNKNOWN;

    if (in_tx && !pc->pinned) {
        int64_t ms = c->hello.request_timeout_ms;
        pc->pinned = c;
        c->pinned = pc;
        if (ms > 0) {
            struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
            if (!pc->pin_ev)
                pc->pin_ev = evtimer_new(pc->pool->base, server_pin_cb, pc);
            if (pc->pin_ev)
                evtimer_add(pc->pin_ev, &tv);
        }
        return;
    }
    if (in_tx)
        return;
    if (pc->pinned) {
        if (c->dead) {
            /* The instance went inside its transaction: drop the session,
             * which rolls it back. */
            log_warnx("[fn %s pid %d] channel closed inside a transaction: rolled back",
                      c->hello.fn, c->hello.pid);
            pc->cancelled = true;
        }
        pc->pinned->pinned = NULL;
        pc->pinned = NULL;
        if (pc->pin_ev)
            event_del(pc->pin_ev);
    }
    server_unshare(pc);
}

/* The query in hand is over (answered or failed): answer, then free the
 * connection. */
static void server_release(struct server *pc)
{
    struct client *c = pc->client;

    server_pin_decide(pc, c);
    pc->client = NULL;
    c->conn = NULL;
    if (pc->tev)
        event_del(pc->tev);
    if (c->dead)
        client_close(c, NULL);
    else if (pc->timed_out && pc->error)
        client_error(c, "57014", "canceling statement due to statement timeout",
                     "the pool enforced the function's statement_timeout", NULL, NULL);
    else if (pc->error)
        client_error_res(c, pc->error);
    else if (pc->result) {
        if (!pc->too_large && pgjson_rows_end(pc->rows, &pc->json) < 0)
            pc->too_large = true;
        client_result(c, pc->result, pc->too_large ? NULL : &pc->json, pc->nrows);
    } else
        client_error(c, POOL_ERR_REQUEST, "the statement returned no result (is it empty?)", NULL,
                     NULL, NULL);
    PQclear(pc->result);
    pc->result = NULL;
    /* A large answer's buffer goes back (the pool's memory is bounded by
     * what is in flight, not by the largest answer ever sent). */
    if (pc->json.cap > POOL_JSON_KEEP)
        fnsdk_buf_free(&pc->json);
    else
        fnsdk_buf_reset(&pc->json);
    pc->too_large = false;
    pc->cur_stmt = NULL;
    pc->sized = NULL;
    /* The guard is for the EXEC only: left in place, notices or
     * notifications reaching the idle session would pass it, and every
     * later read (its close included) would be refused. */
    if (pc->rx_armed && pc->pg)
        rxcount_reset(PQsocket(pc->pg), 0);
    pc->whole = false;
    server_idle(pc);
}

/* One statement of a pipelined query is complete: the next one's results
 * come without sending anything.  An error after the reset is the query's
 * answer: the server skips the rest up to the Sync. */
static void server_piped_done(struct server *pc)
{
    switch (pc->op) {
    case OP_RESET:
        if (pc->error) {
            server_fail_msg(pc, "the session reset failed");
            dispatch_run(pc->pool);
            return;
        }
        pc->op = pc->pipe_set ? OP_SET : OP_EXEC;
        break;
    case OP_SET:
        if (!pc->error)
            pc->timeout_cur = pc->client->hello.statement_timeout_ms;
        pc->op = OP_EXEC;
        break;
    case OP_EXEC:
        pc->op = OP_SYNC;
        return;
    default:
        return;
    }
    if (pc->op == OP_EXEC && !pc->error)
        server_exec_rows(pc);
}

/* The pipeline's Sync came back: the pipelined query is over. */
static void server_piped_end(struct server *pc)
{
    pc->piped = false;
    if (!PQexitPipelineMode(pc->pg)) {
        server_fail_msg(pc, "cannot leave pipeline mode");
        dispatch_run(pc->pool);
        return;
    }
    if (pc->sized && pc->result && !pc->error)
        stmt_note(pc->sized, rxcount_get(PQsocket(pc->pg)));
    server_release(pc);
}

/* One operation's results are complete (PQgetResult gave NULL). */
static void server_op_done(struct server *pc)
{
    struct client *c = pc->client;

    if (pc->piped) {
        server_piped_done(pc);
        return;
    }
    switch (pc->op) {
    case OP_SET:
        if (pc->error) {
            /* The SET failed: report it as the query's error. */
            server_release(pc);
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
            stmt_remove(&pc->stmts, pc->cur_stmt);
            pc->cur_stmt = NULL;
            server_release(pc);
            return;
        }
        pc->cur_stmt->prepared = 1;
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
            stmt_remove(&pc->stmts, pc->cur_stmt);
            pc->cur_stmt = NULL;
            PQclear(pc->error);
            pc->error = NULL;
            pc->retried = true;
            pc->sized = NULL;
            pc->op = OP_DEALLOC; /* so the next send prepares */
            break;
        }
        if (pc->sized && pc->result && !pc->error)
            stmt_note(pc->sized, rxcount_get(PQsocket(pc->pg)));
        server_release(pc);
        return;
    }
    case OP_RESET:
        if (pc->error) {
            server_fail_msg(pc, "the session reset failed");
            dispatch_run(pc->pool);
            return;
        }
        /* Everything the session had is gone, our statements too. */
        stmt_clear(&pc->stmts);
        pc->dealloc[0] = '\0';
        pc->timeout_cur = 0;
        pc->need_reset = false;
        break;
    case OP_NONE:
    case OP_SYNC:
        return;
    }
    server_send_next(pc);
}

static void server_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *pc = arg;
    long rows_before = pc->nrows;
    (void)fd;
    (void)what;

    server_mark(pc);
    pc->noticed = false;
    if (!PQconsumeInput(pc->pg)) {
        server_fail_msg(pc, "connection lost");
        dispatch_run(pc->pool);
        return;
    }
    if (pc->state == PC_BUSY && rxcount_over(PQsocket(pc->pg))) {
        if (pc->whole)
            server_trip(pc);
        else
            server_outgrow(pc);
        return;
    }
    /* Nobody reads a session's LISTEN notifications: libpq would keep
     * every one of them until the session ends. */
    for (PGnotify *n; (n = PQnotifies(pc->pg)) != NULL;)
        PQfreemem(n);
    if (pc->state != PC_BUSY) {
        /* An idle connection spoke: a notice, or the server going away. */
        PGresult *r;
        while (!PQisBusy(pc->pg) && (r = PQgetResult(pc->pg)) != NULL)
            PQclear(r);
        if (PQstatus(pc->pg) == CONNECTION_BAD)
            server_fail_msg(pc, "server closed the connection");
        return;
    }
    while (pc->state == PC_BUSY && !PQisBusy(pc->pg)) {
        PGresult *r = PQgetResult(pc->pg);
        if (!r) {
            server_op_done(pc);
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_SINGLE_TUPLE:
            if (pc->op == OP_EXEC && !pc->result)
                server_rows(pc, r);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (pc->op == OP_EXEC && !pc->result) {
                /* No rows after single ones; all of them if single-row
                 * mode could not be set. */
                server_rows(pc, r);
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
        case PGRES_PIPELINE_SYNC:
            if (pc->piped && pc->op == OP_SYNC) {
                PQclear(r);
                server_piped_end(pc);
                continue;
            }
            break;
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            /* PQgetResult would hand back the COPY state forever: the
             * connection is unusable for anything else. */
            PQclear(r);
            server_drop(pc, "COPY is not supported through fn_query");
            dispatch_run(pc->pool);
            return;
        default:
            break;
        }
        PQclear(r);
    }
    if (pc->state == PC_BUSY && PQstatus(pc->pg) == CONNECTION_BAD) {
        server_fail_msg(pc, "connection lost");
        return;
    }
    /* Every whole row is handed over: what libpq holds now is at most the
     * start of the next one, which may take one more ceiling's worth.  Only
     * if a row (or a notice) did end in this read: else the row in progress
     * is the one the ceiling is for, and raising it on every read of a
     * slowly arriving huge row would let libpq buffer all of it. */
    if (pc->state == PC_BUSY && !pc->whole && pc->rx_armed &&
        (pc->nrows > rows_before || pc->noticed))
        rxcount_ceil(PQsocket(pc->pg),
                     rxcount_get(PQsocket(pc->pg)) + server_row_ceiling(pc->pool));
}

static void server_ready(struct server *pc)
{
    struct pool *p = pc->pool;

    if (pc->cev) {
        event_free(pc->cev);
        pc->cev = NULL;
    }
    PQsetnonblocking(pc->pg, 1);
    pc->rev = event_new(p->base, PQsocket(pc->pg), EV_READ | EV_PERSIST, server_read_cb, pc);
    pc->wev = event_new(p->base, PQsocket(pc->pg), EV_WRITE, server_write_cb, pc);
    if (!pc->rev || !pc->wev || event_add(pc->rev, NULL) < 0) {
        server_drop(pc, "event setup failed");
        return;
    }
    pc->state = PC_IDLE;
    pc->timeout_cur = 0;
    pc->rx_armed = rxcount_arm(PQsocket(pc->pg)) == 0;
    if (p->connect_failures)
        log_info("database reachable again (server connection %d)", pc->idx);
    else
        log_debug("server connection %d open", pc->idx);
    p->connect_failures = 0;
    p->connect_after_ns = 0;
    p->conn_err[0] = '\0';
}

static void server_connect_failed(struct server *pc)
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
    server_events_free(pc);
    if (pc->pg)
        PQfinish(pc->pg);
    pc->pg = NULL;
    pc->state = PC_FREE;
}

/* Waits for what PQconnectPoll asked for. */
static void server_connect_wait(struct server *pc, PostgresPollingStatusType st)
{
    struct timeval tv = {POOL_CONNECT_TIMEOUT_MS / 1000, 0};
    short what = st == PGRES_POLLING_WRITING ? EV_WRITE : EV_READ;

    if (pc->cev)
        event_free(pc->cev);
    pc->cev = event_new(pc->pool->base, PQsocket(pc->pg), what, server_connect_cb, pc);
    if (!pc->cev || event_add(pc->cev, &tv) < 0) {
        server_connect_failed(pc);
        dispatch_run(pc->pool);
    }
}

static void server_connect_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *pc = arg;
    PostgresPollingStatusType st;
    (void)fd;

    if (what & EV_TIMEOUT) {
        server_connect_failed(pc);
        snprintf(pc->pool->conn_err, sizeof(pc->pool->conn_err),
                 "connection attempt timed out after %d ms", POOL_CONNECT_TIMEOUT_MS);
        dispatch_run(pc->pool);
        return;
    }
    st = PQconnectPoll(pc->pg);
    if (st == PGRES_POLLING_OK) {
        server_ready(pc);
        dispatch_run(pc->pool);
    } else if (st == PGRES_POLLING_FAILED) {
        server_connect_failed(pc);
        dispatch_run(pc->pool);
    } else {
        server_connect_wait(pc, st);
    }
}

static void server_ident_free(struct server *pc)
{
    if (pc->ident) {
        explicit_bzero(pc->ident, strlen(pc->ident));
        free(pc->ident);
    }
    pc->ident = NULL;
}

bool server_is(const struct server *pc, const char *ident)
{
    if (!pc->ident || !ident)
        return !pc->ident && !ident;
    return strcmp(pc->ident, ident) == 0;
}

/* NOTICEs and WARNINGs are the function's (RAISE NOTICE in its SQL), and
 * fn_query never hands them over: libpq's default would print each to the
 * pool's stderr, the gateway's log, where a function could write without
 * limit and forge the gateway's own lines. */
static void server_notice(void *arg, const PGresult *r)
{
    struct server *pc = arg;
    (void)r;
    /* A whole message was read: what libpq holds is after it. */
    pc->noticed = true;
}

void server_start(struct server *pc, const char *ident)
{
    server_ident_free(pc);
    if (ident && !(pc->ident = strdup(ident))) {
        snprintf(pc->pool->conn_err, sizeof(pc->pool->conn_err), "out of memory");
        return;
    }
    pc->state = PC_CONNECTING;
    pc->pg = PQconnectStart(pc->ident ? pc->ident : pc->pool->set.conninfo);
    if (!pc->pg || PQstatus(pc->pg) == CONNECTION_BAD) {
        server_connect_failed(pc);
        return;
    }
    PQsetNoticeReceiver(pc->pg, server_notice, pc);
    server_connect_wait(pc, PGRES_POLLING_WRITING);
}

/* The pool's own clock on statement_timeout: SQL from the function can
 * change the server's setting (SET, set_config, a DO block that builds the
 * SET), never this. */
static void server_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *pc = arg;
    struct client *c = pc->client;
    struct timeval tv = {POOL_CANCEL_WAIT_MS / 1000, (POOL_CANCEL_WAIT_MS % 1000) * 1000};
    (void)fd;
    (void)what;

    if (pc->state != PC_BUSY || !c)
        return;
    if (pc->timed_out == 0) {
        log_warnx("[fn %s pid %d] query still running past statement_timeout (%lld ms): "
                  "cancelled by the pool",
                  c->hello.fn, c->hello.pid, (long long)c->hello.statement_timeout_ms);
        pc->timed_out = 1;
        server_cancel(pc);
        event_add(pc->tev, &tv);
        return;
    }
    pc->timed_out = 2;
    server_drop(pc, "statement_timeout: the server did not answer the cancel");
    dispatch_run(pc->pool);
}

void server_begin(struct server *pc, struct client *c)
{
    int64_t ms = c->hello.statement_timeout_ms;

    pc->state = PC_BUSY;
    pc->client = c;
    if (pc->pinned != c) {
        pc->fq = c->fq;
        pc->fq->busy++;
    }
    pc->op = OP_NONE;
    pc->retried = false;
    pc->timed_out = 0;
    pc->need_reset = pc->owner[0] && strcmp(pc->owner, c->hello.fn) != 0;
    snprintf(pc->owner, sizeof(pc->owner), "%s", c->hello.fn);
    c->conn = pc;
    if (ms > 0) {
        struct timeval tv;
        ms += POOL_TIMEOUT_GRACE_MS;
        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
        if (!pc->tev)
            pc->tev = evtimer_new(pc->pool->base, server_timeout_cb, pc);
        if (!pc->tev || evtimer_add(pc->tev, &tv) < 0) {
            server_drop(pc, "out of memory");
            return;
        }
    }
    server_send_next(pc);
}
