/*
 * The statement cache: a hash of SQL text to statement name, chained, with
 * an intrusive LRU list.  One per server connection, because prepared
 * statements live in a server session.
 */
#include "config.h"

#include "stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t stmt_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void stmt_init(struct stmt_cache *sc, int max)
{
    memset(sc, 0, sizeof(*sc));
    sc->max = max > 0 ? max : 1;
}

static void stmt_lru_unlink(struct stmt_cache *sc, struct stmt *st)
{
    if (st->lru_prev)
        st->lru_prev->lru_next = st->lru_next;
    else
        sc->lru_head = st->lru_next;
    if (st->lru_next)
        st->lru_next->lru_prev = st->lru_prev;
    else
        sc->lru_tail = st->lru_prev;
    st->lru_prev = st->lru_next = NULL;
}

static void stmt_lru_push(struct stmt_cache *sc, struct stmt *st)
{
    st->lru_prev = NULL;
    st->lru_next = sc->lru_head;
    if (sc->lru_head)
        sc->lru_head->lru_prev = st;
    sc->lru_head = st;
    if (!sc->lru_tail)
        sc->lru_tail = st;
}

struct stmt *stmt_find(const struct stmt_cache *sc, const char *sql)
{
    uint64_t h;

    if (!sc->buckets)
        return NULL;
    h = stmt_hash(sql);
    for (struct stmt *st = sc->buckets[h % sc->nbuckets]; st; st = st->hnext) {
        if (st->hash == h && strcmp(st->sql, sql) == 0)
            return st;
    }
    return NULL;
}

void stmt_touch(struct stmt_cache *sc, struct stmt *st)
{
    stmt_lru_unlink(sc, st);
    stmt_lru_push(sc, st);
}

struct stmt *stmt_oldest(const struct stmt_cache *sc)
{
    return sc->lru_tail;
}

int stmt_full(const struct stmt_cache *sc)
{
    return sc->n >= sc->max;
}

void stmt_remove(struct stmt_cache *sc, struct stmt *st)
{
    for (struct stmt **pp = &sc->buckets[st->hash % sc->nbuckets]; *pp; pp = &(*pp)->hnext) {
        if (*pp == st) {
            *pp = st->hnext;
            break;
        }
    }
    stmt_lru_unlink(sc, st);
    sc->n--;
    free(st->sql);
    free(st);
}

void stmt_clear(struct stmt_cache *sc)
{
    while (sc->lru_head)
        stmt_remove(sc, sc->lru_head);
    free(sc->buckets);
    sc->buckets = NULL;
    sc->nbuckets = 0;
}

struct stmt *stmt_add(struct stmt_cache *sc, const char *sql)
{
    struct stmt *st;
    uint64_t h = stmt_hash(sql);

    if (!sc->buckets) {
        sc->nbuckets = (size_t)sc->max * 2 + 1;
        sc->buckets = calloc(sc->nbuckets, sizeof(*sc->buckets));
        if (!sc->buckets)
            return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (!st || !(st->sql = strdup(sql))) {
        free(st);
        return NULL;
    }
    st->hash = h;
    snprintf(st->name, sizeof(st->name), "fngate_%lu", ++sc->seq);
    st->hnext = sc->buckets[h % sc->nbuckets];
    sc->buckets[h % sc->nbuckets] = st;
    stmt_lru_push(sc, st);
    sc->n++;
    return st;
}

void stmt_note(struct stmt *st, size_t bytes)
{
    if (bytes == 0)
        return;
    if (st->runs < UINT32_MAX)
        st->runs++;
    if (bytes > st->rx_max)
        st->rx_max = bytes;
}

bool stmt_whole_ok(const struct stmt *st, size_t small)
{
    return !st->big && st->runs >= STMT_WHOLE_RUNS && st->rx_max <= small;
}

void stmt_bigset_add(struct stmt_bigset *bs, const struct stmt *st)
{
    if (stmt_bigset_has(bs, st))
        return;
    bs->hash[bs->n % STMT_BIG_KEEP] = st->hash;
    if (bs->n < UINT32_MAX)
        bs->n++;
}

bool stmt_bigset_has(const struct stmt_bigset *bs, const struct stmt *st)
{
    unsigned n = bs->n < STMT_BIG_KEEP ? bs->n : STMT_BIG_KEEP;

    for (unsigned i = 0; i < n; i++) {
        if (bs->hash[i] == st->hash)
            return true;
    }
    return false;
}
