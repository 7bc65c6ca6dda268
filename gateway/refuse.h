/*
 * The supervisor's own answer for a function that cannot start: it accepts
 * the queued connections and answers each a FastCGI 503 with a JSON body.
 */
#ifndef FNGATE_REFUSE_H
#define FNGATE_REFUSE_H

#include <stdint.h>

#include <event2/event.h>

/* Answers accepted connection FD (owned from now on: closed on any error),
 * a connection to function NAME, 503 with MESSAGE (a JSON document) once
 * its request is read, on BASE's loop; with a Retry-After header when
 * RETRY_AFTER > 0 (seconds), and not before HOLD_MS milliseconds from now.
 * Returns 0, or -1 if out of memory. */
int refuse_conn(struct event_base *base, int fd, const char *name, const char *message,
                int retry_after, int64_t hold_ms);

/* The most refused connections held at once: a quarter of RLIMIT_NOFILE
 * (between 8 and 65536).  Past it refuse_conn closes the oldest unanswered
 * of the function holding the most (logged, at most once a second). */
int refuse_cap(void);
/* The most one function holds: half refuse_cap().  Past it refuse_conn
 * closes that function's oldest unanswered. */
int refuse_fn_cap(void);
/* How many connections one caller should accept in one go (half a
 * function's cap), so that it does not push out the ones it just took. */
int refuse_budget(void);

/* Accepts every connection queued on LISTEN_FD, function NAME's socket,
 * and answers each 503 with MESSAGE (a JSON document) once its request is
 * read, on BASE's loop.  Call only when no instance of the function is
 * live.  Takes at most refuse_budget() per call (the rest stay queued for
 * the next).  Returns how many connections it took. */
int refuse_queued(struct event_base *base, int listen_fd, const char *name, const char *message);

/* refuse_queued for a disabled function: the body is
 * {"error":"function NAME is disabled: REASON"} (REASON JSON-escaped, cut
 * to fit one FastCGI record). */
int refuse_disabled(struct event_base *base, int listen_fd, const char *name, const char *reason);

#endif
