/*
 * The statement cache of one server connection: which SQL texts are
 * prepared there and under what name, with a least-recently-used order so
 * that a connection never holds more than its limit of prepared statements.
 * It only keeps the books; the caller sends PREPARE and DEALLOCATE.
 */
#ifndef FNGATE_POOL_STMT_H
#define FNGATE_POOL_STMT_H

#include <stddef.h>
#include <stdint.h>

/* A statement prepared on the connection (owned by its cache). */
struct stmt {
    struct stmt *hnext; /* hash chain */
    struct stmt *lru_prev, *lru_next;
    uint64_t hash;
    char *sql; /* owned */
    char name[24];
    int prepared; /* 0: seen once, run unnamed; prepared on its second use */
};

struct stmt_cache {
    struct stmt **buckets; /* allocated on first add */
    size_t nbuckets;
    struct stmt *lru_head, *lru_tail; /* head: most recent */
    int n, max;
    unsigned long seq; /* names stay unique for the connection's life */
};

/* An empty cache of at most MAX statements. */
void stmt_init(struct stmt_cache *sc, int max);
/* The statement for SQL, or NULL. */
struct stmt *stmt_find(const struct stmt_cache *sc, const char *sql);
/* Marks ST most recently used. */
void stmt_touch(struct stmt_cache *sc, struct stmt *st);
/* Records SQL under a fresh name; NULL when out of memory. */
struct stmt *stmt_add(struct stmt_cache *sc, const char *sql);
/* The least recently used statement, or NULL; stmt_full says whether one
 * must go before another is added. */
struct stmt *stmt_oldest(const struct stmt_cache *sc);
int stmt_full(const struct stmt_cache *sc);
/* Forgets ST (freed). */
void stmt_remove(struct stmt_cache *sc, struct stmt *st);
/* Forgets everything (the session lost its statements); keeps MAX and the
 * name counter. */
void stmt_clear(struct stmt_cache *sc);

#endif
