/*
 * Dispatch of waiting queries to server connections.
 */
#include "config.h"

#include "dispatch.h"

#include "client.h"
#include "log.h"
#include "server.h"

#include <stdio.h>
#include <string.h>

void dispatch_add(struct pool *p, struct client *c)
{
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

void dispatch_remove(struct pool *p, struct client *c)
{
    struct client **pp = &p->whead, *prev = NULL;

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

/* An idle connection for C: preferably one whose session last ran C's
 * function (no reset needed), else a fresh one, else any.  NULL if none is
 * idle. */
static struct server *dispatch_pick(struct pool *p, const struct client *c)
{
    struct server *fresh = NULL, *other = NULL;

    for (int i = 0; i < p->set.pool_size; i++) {
        struct server *pc = &p->conns[i];
        if (pc->state != PC_IDLE)
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

void dispatch_run(struct pool *p)
{
    int connecting = 0, usable = 0;
    int64_t now = pool_now_ns();

    while (p->whead) {
        struct client *c = p->whead;
        struct server *pc = dispatch_pick(p, c);
        if (!pc)
            break;
        dispatch_remove(p, c);
        c->started_ns = now;
        poolstat_wait(p->stats, now - c->queued_ns);
        server_begin(pc, c);
    }
    {
        uint32_t n[4] = {0, 0, 0, 0};
        for (int i = 0; i < p->set.pool_size; i++)
            n[p->conns[i].state & 3]++;
        for (int s = 0; s < 4; s++)
            FN_SB_STORE(p->stats->conns[s], n[s]);
        FN_SB_STORE(p->stats->waiting, (uint32_t)p->nwait);
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
                server_start(&p->conns[i]);
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
            struct client *c = p->whead;
            dispatch_remove(p, c);
            client_error(c, POOL_ERR_CONNECT, msg, NULL, NULL, NULL);
        }
    }
}

void dispatch_expire(struct pool *p, int64_t now)
{
    /* In milliseconds: db_wait_timeout may be huge, ns would overflow. */
    while (p->whead && (now - p->whead->queued_ns) / 1000000 > p->set.db_wait_timeout_ms) {
        struct client *c = p->whead;
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
