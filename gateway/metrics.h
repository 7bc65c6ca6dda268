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
enum mx_exit {
    MX_EXIT_NONE,
    MX_EXIT_IDLE,
    MX_EXIT_TIMEOUT,
    MX_EXIT_CRASH,
    MX_EXIT_RECYCLE,
    MX_EXIT_RELOAD,
    MX_EXIT_STOP,
    MX_EXIT_N
};

/* Why a request was answered without a handler (fngate_rejected_total). */
enum mx_rej {
    MX_REJ_QUEUE_TIMEOUT,
    MX_REJ_CANNOT_START,
    MX_REJ_OVERLOAD,
    MX_REJ_SHUTDOWN,
    MX_REJ_N
};

struct mx;
struct mx_fn;
struct mx_inst;
struct reqlog;

struct mx *mx_new(void);
void mx_free(struct mx *mx);
/* The request log the drain writes to (NULL: off).  Borrowed. */
void mx_set_reqlog(struct mx *mx, struct reqlog *rl);
void mx_reloaded(struct mx *mx);
/* The spare processes' figures (spare.c calls it on every change). */
void mx_set_spares(struct mx *mx, int ready, int wanted, uint64_t assigned, uint64_t failed);
/* Where the pool's statistics are (NULL: no pool).  Borrowed. */
struct poolstat;
void mx_set_pool(struct mx *mx, const struct poolstat *ps);

/* A function.  DESC and LISTEN_FD are borrowed from the supervisor's
 * function, which outlives the mx_fn (mx_fn_free before it goes). */
struct mx_fn *mx_fn_new(struct mx *mx, const struct discover_fn *desc, int listen_fd);
void mx_fn_free(struct mx_fn *fm);
/* N requests the supervisor answered itself (503s). */
void mx_fn_rejected(struct mx_fn *fm, enum mx_rej why, int n);

/* An instance just spawned.  SB is borrowed until mx_inst_exited or
 * mx_inst_free.  NULL on allocation failure (the instance then only goes
 * uncounted). */
struct mx_inst *mx_inst_new(struct mx_fn *fm, pid_t pid, uid_t uid, struct scoreboard *sb,
                            int64_t spawned_ns);
/* Asked to stop for WHY (the first reason sticks). */
void mx_inst_stopping(struct mx_inst *mi, enum mx_exit why);
/* Folds what the instance counted into its function's totals, drains its
 * request log, counts the exit, and frees MI.  CRASH: it left unasked and
 * abnormally.  HOW: its exit status in words, kept as the last error. */
void mx_inst_exited(struct mx_inst *mi, bool crash, const char *how, int64_t now);
/* Frees MI without counting (the gateway is going away). */
void mx_inst_free(struct mx_inst *mi);

/* Maintenance, on the supervisor's timer: cold-start observations, the
 * request-log drain, the req/s samples. */
void mx_tick(struct mx *mx, int64_t now);

/* Renderings appended to OUT. */
void mx_render_prom(struct mx *mx, struct evbuffer *out);
void mx_render_json(struct mx *mx, struct evbuffer *out);
void mx_render_table(struct mx *mx, struct evbuffer *out);

/* Quantile Q of a histogram with per-bucket counts B[N] and bounds LE[N-1]
 * (seconds), interpolated inside the bucket; -1 when empty. */
double mx_quantile(const uint64_t *b, const double *le, int n, double q);

#endif
