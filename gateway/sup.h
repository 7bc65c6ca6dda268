/*
 * The supervisor: `fngate serve`.  Owns the event loop, the function table
 * and every instance; spawns on demand, reaps, times out, reloads on SIGHUP
 * and drains on SIGTERM.  It is never on the request path: nginx connects
 * straight to a function's socket and an idle instance accepts.  struct sup
 * is shared with supfn.c and inst.c, which keep its functions and instances.
 */
#ifndef FNGATE_SUP_H
#define FNGATE_SUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SUP_TICK_MS 10

enum sup_state { SUP_RUNNING, SUP_STOPPING };

struct conf;
struct event;
struct event_base;
struct metrics;
struct poolctl;
struct poolstat;
struct reqlog;
struct spare_pool;
struct status;
struct sup_fn;
struct watch;

struct sup {
    struct event_base *base;
    struct conf *conf; /* owned */
    const char *conf_path;
    enum sup_state state;
    int64_t stop_ns; /* when SIGTERM/SIGINT arrived */
    int lock_fd;
    struct sup_fn *fns;
    struct poolctl *pool;      /* NULL without a database */
    struct metrics *metrics;   /* owned: the figures */
    struct status *status;     /* owned: /_fngate/ */
    struct reqlog *reqlog;     /* owned: NULL when request_log is off */
    struct watch *watch;       /* owned: NULL when watch = off */
    struct poolstat *poolstat; /* owned: the pool's statistics memfd */
    struct spare_pool *spares; /* owned: spare processes (NULL: none) */
    struct event *ev_tick;
    struct event *ev_sig[4];
    bool drop;
    uid_t uid;
    gid_t gid;
    gid_t sock_gid;
};

/* CLOCK_MONOTONIC in nanoseconds: every timestamp of the supervisor. */
int64_t sup_now_ns(void);
/* Arms the maintenance timer unless it is already pending. */
void sup_tick_ensure(struct sup *s);

/* "TERM" for SIGTERM; "?" when unknown. */
const char *sup_sig_name(int sig);

/* Runs until SIGTERM/SIGINT has drained everything.  Returns the process
 * exit code: 0 after a clean drain, 1 when start-up failed (logged). */
int sup_run(const char *conf_path);

#endif
