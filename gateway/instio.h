/*
 * An instance's stdout and stderr: the read end of its pipe, cut into lines
 * and logged with the instance's context, under a budget.  The supervisor's
 * event loop must stay on time for every other function however fast one
 * instance writes, so work per event is bounded (one read of at most
 * INSTIO_READ_MAX bytes per wakeup) and a per-instance token bucket decides
 * what reaches the log.  An instance over its budget has its output dropped
 * (counted, and reported in one log line per episode) and its pipe is read
 * only a few times a second: it ends up blocked on its own writes, which
 * costs nobody but itself.
 */
#ifndef FNGATE_INSTIO_H
#define FNGATE_INSTIO_H

#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct instio;

/* Bytes per second and burst of the token bucket. */
struct instio_budget {
    int64_t rate;  /* refill, bytes per second */
    int64_t burst; /* bucket size, bytes */
};

/* The default: 32 KiB/s sustained (some 250 short lines a second), 256 KiB
 * burst, per instance. */
extern const struct instio_budget instio_default_budget;

/* Starts capturing FD (non-blocking; ownership passes to the instio) for
 * instance PID of function FN (copied).  BUDGET NULL: the default.  Returns
 * NULL on failure (logged; FD is closed). */
struct instio *instio_new(struct event_base *base, int fd, const char *fn, pid_t pid,
                          const struct instio_budget *budget);
/* Logs what the pipe still holds (at most one pipe's worth: a descendant that
 * keeps writing cannot hold the caller here), reports what was dropped, and
 * closes the pipe.  instio_free(NULL) is a no-op. */
void instio_free(struct instio *io);
/* Bytes dropped so far (for tests and status). */
uint64_t instio_dropped(const struct instio *io);

#endif
