/*
 * The supervisor's handle on the pool process: starts it (a fork of the
 * gateway with its own event loop), restarts it with backoff when it dies,
 * and hands each new instance's channel to it over the control socket;
 * answers the queries on the channels it holds while there is no pool.
 */
#ifndef FNGATE_POOLCTL_H
#define FNGATE_POOLCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "conf.h"
#include "fnconf.h"

struct poolctl;

/* NULL when C configures no database (nothing to do). Starts the process.
 * STATS_FD (-1: none) is the statistics memfd every pool process gets as
 * fd 4 (gateway/pool/poolstat.h); borrowed. */
struct poolctl *poolctl_new(struct event_base *base, const struct conf *c, int stats_fd);
/* Stops the process (SIGTERM) and frees. NULL is a no-op. */
void poolctl_free(struct poolctl *pc);
/* True when the pool settings in C differ from the running ones. */
bool poolctl_differs(const struct poolctl *pc, const struct conf *c);

/* A new channel: *INSTANCE_FD goes to the instance as fd 3, *POOL_FD to
 * poolctl_handoff once the instance's pid is known.  0 or -1. */
int poolctl_channel(struct poolctl *pc, int *instance_fd, int *pool_fd);
/* Passes POOL_FD (always consumed) to the pool for instance PID of FN,
 * with the settings of FN the pool applies (SET: statement_timeout,
 * request_timeout, max_db_connections). */
void poolctl_handoff(struct poolctl *pc, int pool_fd, const char *fn, pid_t pid,
                     const struct fn_settings *set);

/* Called for every reaped child.  If PID was the pool process it is
 * restarted after a backoff, and the result is true if it had taken
 * channels (it had said ready): then the caller must retire every instance,
 * whose channels died with it.  Until a new pool is ready, the queries on
 * queued channels are answered FG005 by the supervisor.  For any other
 * child the pool is told to close the channel of that pid, so no copy of an
 * fd 3 outlives its instance. */
bool poolctl_reaped(struct poolctl *pc, pid_t pid, int status);
/* True when PID is the running pool process. */
bool poolctl_is(const struct poolctl *pc, pid_t pid);
/* Whether the running pool process is gone though not reaped yet: it is
 * exiting, or its control socket reads end-of-file (its descriptors close
 * before its exit is reported, so instances whose channels closed with it
 * may be reaped first).  A peek and a read of /proc/PID/stat. */
bool poolctl_lost(const struct poolctl *pc);

#endif
