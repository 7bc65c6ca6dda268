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
    /* Live ones waiting for a next request on a front end's kept
     * connection: not in IDLE, since they leave new connections to others
     * (functions/sdk/fnsdk_loop.c). */
    int kept;
    int queued; /* connections in the accept queue (-1: unknown, at least one) */
    int max_instances;
    int min_instances;
    bool backoff; /* a crash backoff delay is running */
    /* A cold burst is being served: the function had no instance when the
     * first of the queued connections arrived, and scale_burst_over has not
     * been true since. */
    bool burst;
    int64_t svc_ns;   /* its mean request duration so far (0: unknown) */
    int64_t start_ns; /* how long its instances take to become ready (0: unknown) */
};

/* Instances to spawn now: enough to cover min_instances and every queued
 * connection no idle or starting instance will take, never making the number
 * of existing instances (live plus stopping) exceed max_instances.  A
 * draining function passes min_instances 0: it still serves what is queued.
 * A cold burst (BURST, or no instance ready yet) of a function whose
 * request and start-up times are known, a request much shorter than a start
 * (counted as four times what the slots report: the FastCGI exchange and
 * the close around the handler, and the burst still arriving), gets no more
 * than drain the queue within one start-up: an instance started later
 * would find nothing left to serve, and on a machine with few cores its
 * start only takes CPU from the instance (and the web server) serving the
 * burst.  Otherwise (steady load: the queue emptied once since the cold
 * start, and an instance is ready) the queue alone decides, so throughput
 * never waits for the estimate. */
int scale_spawn_count(const struct scale_state *s);

/* Whether a cold burst has been served: nothing queued and an instance
 * idle (holding kept connections or not).  An empty queue alone is not enough: between two of
 * nginx's connects the queue of a burst still arriving is often empty for a moment while every
 * instance is busy, and ending the burst there handed the rest of it to the queue rule, which
 * started all of max_instances. */
bool scale_burst_over(const struct scale_state *s);

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
