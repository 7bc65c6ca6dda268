/*
 * The statement cache of one server connection: which SQL texts are
 * prepared there and under what name, with a least-recently-used order so
 * that a connection never holds more than its limit of prepared statements.
 * It only keeps the books; the caller sends PREPARE and DEALLOCATE.  It
 * also remembers how large each statement's results have been on the wire,
 * which decides how the pool reads the next one (stmt_whole_ok).
 */
#ifndef FNGATE_POOL_STMT_H
#define FNGATE_POOL_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results a statement must have had, all small, before one is read whole. */
#define STMT_WHOLE_RUNS 2

/* A statement prepared on the connection (owned by its cache). */
struct stmt {
    struct stmt *hnext; /* hash chain */
    struct stmt *lru_prev, *lru_next;
    uint64_t hash;
    char *sql; /* owned */
    char name[24];
    int prepared;  /* 0: seen once, run unnamed; prepared on its second use */
    unsigned runs; /* results measured (saturating) */
    size_t rx_max; /* the most wire bytes one of them took */
    bool big;      /* a whole read of it was cut off: row by row for good */
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
/* The statements of one function whose whole reads were cut off, by hash
 * of their SQL, so that they stay row by row in every session of that
 * function, new ones included.  The oldest of more than STMT_BIG_KEEP is
 * forgotten (and may be cut off once more). */
#define STMT_BIG_KEEP 16
struct stmt_bigset {
    uint64_t hash[STMT_BIG_KEEP];
    unsigned n; /* added so far; the newest is at (n - 1) % STMT_BIG_KEEP */
};
void stmt_bigset_add(struct stmt_bigset *bs, const struct stmt *st);
bool stmt_bigset_has(const struct stmt_bigset *bs, const struct stmt *st);

/* Records that a result of ST took BYTES on the wire (0, an uncounted read,
 * teaches nothing). */
void stmt_note(struct stmt *st, size_t bytes);
/* Whether ST's next result may be read whole: it has had at least
 * STMT_WHOLE_RUNS results, none over SMALL bytes, and no whole read of it
 * was ever cut off. */
bool stmt_whole_ok(const struct stmt *st, size_t small);

#endif
