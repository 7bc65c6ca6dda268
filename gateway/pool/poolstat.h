/*
 * The pool's statistics: a memfd the supervisor creates once and hands to
 * every fngate-pool it starts (fd 4), so the counters outlive a pool restart
 * and never go backwards.  The pool writes them with plain stores as
 * queries come and go; the supervisor only reads them (and writes the one
 * control word, slow_query_ms) when it renders /_fngate/metrics and
 * /_fngate/status.  No message, no round trip, nothing on the query path
 * but a few stores.
 */
#ifndef FNGATE_POOLSTAT_H
#define FNGATE_POOLSTAT_H

#include <stdint.h>

#include <event2/buffer.h>

#include "fnsdk_scoreboard.h"

#define POOLSTAT_FD 4
#define POOLSTAT_MAGIC 0x66677073u /* "fgps" */
#define POOLSTAT_FNS 128
#define POOLSTAT_CLASSES 8

struct poolstat_err {
    char cls[4]; /* two-character SQLSTATE class, NUL-terminated; "" = free */
    uint32_t pad_;
    uint64_t n;
};

struct poolstat_fn {
    char fn[72]; /* "" = free */
    uint64_t queries;
    uint64_t q_hist[FNSDK_SCOREBOARD_HIST]; /* query duration, bounds fnsdk_scoreboard_hist_le_ns */
    uint64_t q_sum_ns;
    struct poolstat_err err[POOLSTAT_CLASSES];
    uint64_t err_other; /* classes past the table */
};

struct poolstat_shm {
    uint32_t magic;
    uint32_t pool_pid;
    int64_t slow_query_ms; /* written by the supervisor; 0 = off */
    int32_t pool_size;
    uint32_t conns[4]; /* free, connecting, idle, busy */
    uint32_t waiting;
    uint64_t wait_hist[FNSDK_SCOREBOARD_HIST];
    uint64_t wait_sum_ns;
    uint64_t waits;
    uint64_t prepared_hits, prepared_misses;
    uint64_t bytes_rendered;
    uint64_t slow_queries;
    uint64_t fns_full;      /* queries of functions past POOLSTAT_FNS */
    uint64_t whole_reads;   /* results read whole (not in single-row mode) */
    uint64_t whole_cutoffs; /* whole reads cut off at the guard (server.c) */
    uint64_t resets;        /* sessions reset for another function (DISCARD ALL) */
    struct poolstat_fn fns[POOLSTAT_FNS];
};

/* --- the supervisor's side ---------------------------------------------- */

struct poolstat;
/* The memfd and its mapping.  NULL on failure (logged). */
struct poolstat *poolstat_new(void);
void poolstat_free(struct poolstat *ps);
/* The descriptor to hand to fngate-pool (close-on-exec; dup it). */
int poolstat_fd(const struct poolstat *ps);
void poolstat_set_slow(struct poolstat *ps, int64_t ms);
void poolstat_render_prom(const struct poolstat *ps, struct evbuffer *out);
void poolstat_render_json(const struct poolstat *ps, struct evbuffer *out);

/* --- the pool's side ---------------------------------------------------- */

/* Maps FD (POOLSTAT_FD in fngate-pool) if it is the supervisor's memfd, and
 * closes it; else counts into a private copy.  Returns the mapping (never
 * NULL). */
struct poolstat_shm *poolstat_attach(int fd, int pool_size);
/* Index of FN's entry (added if needed), or -1 when the table is full. */
int poolstat_fn_index(struct poolstat_shm *sh, const char *fn);
void poolstat_wait(struct poolstat_shm *sh, int64_t ns);
/* One query answered: its function's entry IDX (-1: none), its duration
 * (-1: it never ran), and the SQLSTATE of its error (NULL: success). */
void poolstat_query(struct poolstat_shm *sh, int idx, int64_t ns, const char *sqlstate);

#endif
