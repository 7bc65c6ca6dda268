/*
 * Dispatch of waiting queries to server connections.  Each function has a
 * FIFO of its own; a free connection goes to the next function round-robin
 * that has a query waiting and holds fewer connections than its share
 * (max_db_connections), so a function that floods the pool, or holds its
 * share with slow queries, delays another function's query by at most the
 * one query already running when it arrives.
 */
#include "config.h"

#include "dispatch.h"

#include "client.h"
#include "log.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dispatch_conninfo_free(struct fnq *fq)
{
    if (fq->conninfo) {
        explicit_bzero(fq->conninfo, strlen(fq->conninfo));
        free(fq->conninfo);
    }
    fq->conninfo = NULL;
}

struct fnq *dispatch_join(struct pool *p, const struct pool_hello *hello, const char *conninfo)
{
    struct fnq *fq;
    int share = hello->max_db_connections;

    if (share <= 0 || share > p->set.pool_size)
        share = p->set.pool_size;
    for (fq = p->fnqs; fq; fq = fq->next) {
        if (strcmp(fq->name, hello->fn) == 0)
            break;
    }
    if (!fq) {
        fq = calloc(1, sizeof(*fq));
        if (!fq)
            return NULL;
        snprintf(fq->name, sizeof(fq->name), "%s", hello->fn);
        fq->next = p->fnqs;
        p->fnqs = fq;
    }
    fq->share = share; /* the newest instance has the current settings */
    if (!conninfo || !fq->conninfo || strcmp(conninfo, fq->conninfo) != 0) {
        char *copy = conninfo ? strdup(conninfo) : NULL;
        if (conninfo && !copy) {
            if (!fq->nclients) {
                fq->nclients = 1;
                dispatch_leave(p, fq);
            }
            return NULL;
        }
        dispatch_conninfo_free(fq);
        fq->conninfo = copy;
    }
    fq->nclients++;
    return fq;
}

void dispatch_leave(struct pool *p, struct fnq *fq)
{
    if (!fq || --fq->nclients > 0)
        return;
    for (struct fnq **pp = &p->fnqs; *pp; pp = &(*pp)->next) {
        if (*pp == fq) {
            *pp = fq->next;
            break;
        }
    }
    if (p->rr == fq)
        p->rr = NULL;
    dispatch_conninfo_free(fq);
    free(fq);
}

void dispatch_add(struct pool *p, struct client *c)
{
    struct fnq *fq = c->fq;

    if (c->pinned && c->pinned->state == PC_PINNED) {
        /* Inside its transaction: straight to its own session. */
        c->queued_ns = c->started_ns = pool_now_ns();
        server_begin(c->pinned, c);
        return;
    }
    c->queued_ns = pool_now_ns();
    c->waiting = true;
    c->wnext = NULL;
    if (fq->tail)
        fq->tail->wnext = c;
    else
        fq->head = c;
    fq->tail = c;
    fq->nwait++;
    p->nwait++;
}

void dispatch_remove(struct pool *p, struct client *c)
{
    struct fnq *fq = c->fq;
    struct client **pp = &fq->head, *prev = NULL;

    for (; *pp; prev = *pp, pp = &(*pp)->wnext) {
        if (*pp == c) {
            *pp = c->wnext;
            if (fq->tail == c)
                fq->tail = prev;
            c->wnext = NULL;
            c->waiting = false;
            fq->nwait--;
            p->nwait--;
            return;
        }
    }
}

/* The next function, round-robin after the one served last, with a query
 * waiting and a connection left in its share; NULL if none. */
static struct fnq *dispatch_next_fn(struct pool *p)
{
    struct fnq *start = p->rr && p->rr->next ? p->rr->next : p->fnqs;
    struct fnq *fq = start;

    if (!fq)
        return NULL;
    do {
        if (fq->nwait > 0 && fq->busy < fq->share)
            return fq;
        fq = fq->next ? fq->next : p->fnqs;
    } while (fq != start);
    return NULL;
}

/* The oldest waiting query of any function; NULL if none. */
static struct client *dispatch_oldest(struct pool *p)
{
    struct client *old = NULL;

    for (struct fnq *fq = p->fnqs; fq; fq = fq->next) {
        if (fq->head && (!old || fq->head->queued_ns < old->queued_ns))
            old = fq->head;
    }
    return old;
}

/* An idle connection for C: preferably one whose session last ran C's
 * function (no reset needed), else a fresh one, else any.  NULL if none is
 * idle. */
static struct server *dispatch_pick(struct pool *p, const struct client *c)
{
    struct server *fresh = NULL, *other = NULL;

    for (int i = 0; i < p->set.pool_size; i++) {
        struct server *pc = &p->conns[i];
        if (pc->state != PC_IDLE || !server_is(pc, c->fq->conninfo))
            continue;
        if (strcmp(pc->owner, c->hello.fn) == 0)
            return pc;
        if (!pc->owner[0] && !fresh)
            fresh = pc;
        else if (!other)
            other = pc;
    }
    return fresh ? fresh : other;
}

/* How many queries of functions logging in as IDENT wait within their
 * shares. */
static int dispatch_need(struct pool *p, const char *ident)
{
    int need = 0;

    for (struct fnq *fq = p->fnqs; fq; fq = fq->next) {
        bool same =
            (!fq->conninfo || !ident) ? !fq->conninfo && !ident : strcmp(fq->conninfo, ident) == 0;
        int room = fq->share - fq->busy;
        if (same && room > 0)
            need += fq->nwait < room ? fq->nwait : room;
    }
    return need;
}

/* Opens connections for the waiting queries, per database role, up to
 * pool_size in all: a free slot first, else an idle connection of another
 * role (closed and opened again as this one), as PgBouncer does for its
 * per-user pools under max_db_connections. */
static void dispatch_open(struct pool *p, int64_t now, int *usable)
{
    for (struct fnq *fq = p->fnqs; fq; fq = fq->next) {
        int need, have = 0;
        bool seen = false;
        /* Each role once: the first queue of it speaks for all. */
        for (struct fnq *g = p->fnqs; g != fq; g = g->next) {
            if ((!g->conninfo || !fq->conninfo) ? !g->conninfo && !fq->conninfo
                                                : strcmp(g->conninfo, fq->conninfo) == 0)
                seen = true;
        }
        if (seen || (need = dispatch_need(p, fq->conninfo)) == 0)
            continue;
        for (int i = 0; i < p->set.pool_size; i++) {
            if (p->conns[i].state == PC_CONNECTING && server_is(&p->conns[i], fq->conninfo))
                have++;
        }
        while (have < need && now >= p->connect_after_ns) {
            struct server *slot = NULL;
            for (int i = 0; i < p->set.pool_size && !slot; i++) {
                if (p->conns[i].state == PC_FREE)
                    slot = &p->conns[i];
            }
            for (int i = 0; i < p->set.pool_size && !slot; i++) {
                if (p->conns[i].state == PC_IDLE && !server_is(&p->conns[i], fq->conninfo) &&
                    dispatch_need(p, p->conns[i].ident) == 0)
                    slot = &p->conns[i];
            }
            if (!slot)
                break;
            if (slot->state == PC_IDLE) {
                server_drop(slot, "reopened for another function's database role");
                (*usable)--;
            }
            server_start(slot, fq->conninfo);
            if (slot->state != PC_CONNECTING)
                break;
            have++;
            (*usable)++;
        }
    }
}

void dispatch_run(struct pool *p)
{
    int usable = 0;
    int64_t now = pool_now_ns();

    client_enforce_unsent(p);

    for (;;) {
        struct fnq *fq = dispatch_next_fn(p);
        struct server *pc = fq ? dispatch_pick(p, fq->head) : NULL;
        struct client *c;
        if (!pc)
            break;
        c = fq->head;
        dispatch_remove(p, c);
        p->rr = fq;
        c->started_ns = now;
        poolstat_wait(p->stats, now - c->queued_ns);
        server_begin(pc, c);
    }
    {
        uint32_t n[4] = {0, 0, 0, 0};
        for (int i = 0; i < p->set.pool_size; i++)
            n[p->conns[i].state == PC_PINNED ? PC_BUSY : p->conns[i].state & 3]++;
        for (int s = 0; s < 4; s++)
            FNSDK_SCOREBOARD_STORE(p->stats->conns[s], n[s]);
        FNSDK_SCOREBOARD_STORE(p->stats->waiting, (uint32_t)p->nwait);
    }
    if (!p->nwait)
        return;
    for (int i = 0; i < p->set.pool_size; i++) {
        if (p->conns[i].state != PC_FREE)
            usable++;
    }
    if (now >= p->connect_after_ns)
        dispatch_open(p, now, &usable);
    if (usable == 0 && now < p->connect_after_ns) {
        /* The database is unreachable: fail now with the reason. */
        char msg[400];
        snprintf(msg, sizeof(msg), "database unavailable: %s", p->conn_err);
        struct client *c;
        while ((c = dispatch_oldest(p)) != NULL) {
            dispatch_remove(p, c);
            client_error(c, POOL_ERR_CONNECT, msg, NULL, NULL, NULL);
        }
    }
}

void dispatch_expire(struct pool *p, int64_t now)
{
    /* In milliseconds: db_wait_timeout may be huge, ns would overflow. */
    struct client *c;

    while ((c = dispatch_oldest(p)) != NULL &&
           (now - c->queued_ns) / 1000000 > p->set.db_wait_timeout_ms) {
        char msg[200];
        dispatch_remove(p, c);
        snprintf(msg, sizeof(msg),
                 "pool timeout: no database connection free within db_wait_timeout (%lld ms)",
                 (long long)p->set.db_wait_timeout_ms);
        log_warnx("[fn %s pid %d] %s", c->hello.fn, c->hello.pid, msg);
        client_error(c, POOL_ERR_TIMEOUT, msg, NULL,
                     "raise pool_size or db_wait_timeout, or make queries faster", NULL);
    }
}
