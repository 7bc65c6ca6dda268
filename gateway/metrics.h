/*
 * The gateway's figures: per-function counters and histograms folded from
 * the instances' scoreboard slots, the supervisor's own counts (exits,
 * rejections, cold starts), and their renderings as Prometheus text,
 * status JSON and the `fngate status` table.  The supervisor registers
 * functions and instances through the hooks below and is otherwise not
 * involved: the renderings read the slots themselves.
 */
#ifndef FNGATE_METRICS_H
#define FNGATE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/buffer.h>

#include "discover.h"
#include "scoreboard.h"

/* Why an instance left (fngate_instance_exits_total{reason}). */
enum metrics_exit {
    METRICS_EXIT_NONE,
    METRICS_EXIT_IDLE,
    METRICS_EXIT_TIMEOUT,
    METRICS_EXIT_CRASH,
    METRICS_EXIT_RECYCLE,
    METRICS_EXIT_RELOAD,
    METRICS_EXIT_STOP,
    METRICS_EXIT_N
};

/* Why a request was answered without a handler (fngate_rejected_total). */
enum metrics_rej {
    METRICS_REJ_QUEUE_TIMEOUT,
    METRICS_REJ_CANNOT_START,
    METRICS_REJ_OVERLOAD,
    METRICS_REJ_SHUTDOWN,
    METRICS_REJ_N
};

struct metrics;
struct metrics_fn;
struct metrics_inst;
struct reqlog;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *mx);
/* The request log the drain writes to (NULL: off).  Borrowed. */
void metrics_set_reqlog(struct metrics *mx, struct reqlog *rl);
void metrics_reloaded(struct metrics *mx);
/* The spare processes' figures (spare.c calls it on every change). */
void metrics_set_spares(struct metrics *mx, int ready, int wanted, uint64_t assigned,
                        uint64_t failed);
/* Where the pool's statistics are (NULL: no pool).  Borrowed. */
struct poolstat;
void metrics_set_pool(struct metrics *mx, const struct poolstat *ps);

/* A function.  DESC and LISTEN_FD are borrowed from the supervisor's
 * function, which outlives the metrics_fn (metrics_fn_free before it goes). */
struct metrics_fn *metrics_fn_new(struct metrics *mx, const struct discover_fn *desc,
                                  int listen_fd);
void metrics_fn_free(struct metrics_fn *fm);
/* N requests the supervisor answered itself (503s). */
void metrics_fn_rejected(struct metrics_fn *fm, enum metrics_rej why, int n);

/* An instance just spawned.  SB is borrowed until metrics_inst_exited or
 * metrics_inst_free.  NULL on allocation failure (the instance then only goes
 * uncounted). */
struct metrics_inst *metrics_inst_new(struct metrics_fn *fm, pid_t pid, uid_t uid,
                                      struct scoreboard *sb, int64_t spawned_ns);
/* Asked to stop for WHY (the first reason sticks). */
void metrics_inst_stopping(struct metrics_inst *mi, enum metrics_exit why);
/* Folds what the instance counted into its function's totals, drains its
 * request log, counts the exit, and frees MI.  CRASH: it left unasked and
 * abnormally.  HOW: its exit status in words, kept as the last error. */
void metrics_inst_exited(struct metrics_inst *mi, bool crash, const char *how, int64_t now);
/* Frees MI without counting (the gateway is going away). */
void metrics_inst_free(struct metrics_inst *mi);

/* Maintenance, on the supervisor's timer: cold-start observations, the
 * request-log drain, the req/s samples. */
void metrics_tick(struct metrics *mx, int64_t now);

/* Renderings appended to OUT. */
void metrics_render_prom(struct metrics *mx, struct evbuffer *out);
void metrics_render_json(struct metrics *mx, struct evbuffer *out);
void metrics_render_table(struct metrics *mx, struct evbuffer *out);

/* Quantile Q of a histogram with per-bucket counts B[N] and bounds LE[N-1]
 * (seconds), interpolated inside the bucket; -1 when empty. */
double metrics_quantile(const uint64_t *b, const double *le, int n, double q);

#endif
