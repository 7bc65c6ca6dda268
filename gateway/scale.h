/*
 * The scaling decisions as pure functions of a snapshot, so they can be unit
 * tested without processes: how many instances to spawn now, and which idle
 * instances to stop.  The supervisor gathers the snapshot (scoreboard, queue
 * length, clocks) and carries the decision out.
 */
#ifndef FNGATE_SCALE_H
#define FNGATE_SCALE_H

#include <stdbool.h>
#include <stdint.h>

struct scale_state {
    int live;     /* instances of the current generation not asked to stop */
    int stopping; /* instances asked to stop that still exist (any generation) */
    int starting; /* live ones not yet accepting */
    int idle;     /* live ones waiting for a connection */
    int queued;   /* connections in the accept queue (-1: unknown, at least one) */
    int max_instances;
    int min_instances;
    bool backoff; /* a crash backoff delay is running */
};

/* Instances to spawn now: enough to cover min_instances and every queued
 * connection no idle or starting instance will take, never making the number
 * of existing instances (live plus stopping) exceed max_instances.  A
 * draining function passes min_instances 0: it still serves what is queued. */
int scale_spawn_count(const struct scale_state *s);

/* Delay before the next spawn after CRASHES consecutive crashes: none for
 * the first (one bad request must not hold up the next), then 50 ms doubling
 * up to 10 s. */
int64_t scale_backoff_ms(int crashes);

/* Given the idle ages of the live instances sorted oldest first, how many of
 * them (from the front) to stop: those idle longer than IDLE_TIMEOUT_MS, while
 * at least MIN_INSTANCES of the LIVE instances remain. */
int scale_reap_count(const int64_t *idle_ms_oldest_first, int n_idle, int live, int min_instances,
                     int64_t idle_timeout_ms);

#endif
