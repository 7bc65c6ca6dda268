/*
 * The queue police: the supervisor's watch over a function's accept queue.
 * It answers 503 (with Retry-After, the function not run) to the requests at
 * the head of the queue that have waited queue_timeout, at the deadline and
 * whether or not an instance frees up, and to those beyond queue_size, so
 * that overload is a counted 503 from the gateway and not a connect error
 * from the kernel (nginx's 502).
 */
#ifndef FNGATE_BACKLOG_H
#define FNGATE_BACKLOG_H

#include <stdint.h>

#include <event2/event.h>

struct metrics_fn;

enum backlog_reason { BACKLOG_QUEUE_TIMEOUT, BACKLOG_OVERLOAD, BACKLOG_N_REASONS };

/* What the police knows of one function's queue.  Owned by the function. */
struct backlog;

struct backlog *backlog_new(const char *fn_name);
void backlog_free(struct backlog *b);

/* The backlog to listen() with: with sock_diag, a large one whatever
 * QUEUE_SIZE is (the police, not the kernel, enforces queue_size, and needs
 * room for what arrives between two of its looks; the kernel caps it at
 * net.core.somaxconn); without, QUEUE_SIZE itself, so the kernel still
 * bounds the queue (nginx/fngate.inc answers its refusals 503). */
int backlog_listen_size(int queue_size);

/* Takes one look at LISTEN_FD's queue at NOW_NS (CLOCK_MONOTONIC): answers,
 * on BASE's loop and counted in FM (borrowed; NULL: not counted), 503 to the connections at the
 * head that have waited at least QUEUE_TIMEOUT_MS (0: no limit) and then to as many from the head
 * as the queue holds beyond QUEUE_SIZE (0: no limit).  A connection's wait is counted from the
 * first look that saw it, so call it often (every tick) while the queue is not empty.  Bounded work
 * per call.  Returns the queue length it leaves, -1 when the kernel cannot say (no sock_diag:
 * nothing is policed). */
int backlog_police(struct backlog *b, struct metrics_fn *fm, struct event_base *base, int listen_fd,
                   int queue_size, int64_t queue_timeout_ms, int64_t now_ns);

/* Requests answered 503 for REASON since backlog_new (exact, never goes
 * back): fngate_rejected_total{reason="queue_timeout"|"overload"}. */
uint64_t backlog_rejected(const struct backlog *b, enum backlog_reason reason);

/* For unit tests: records a look that saw the N connections INOS (head
 * first) at NOW_NS, and returns how many at the head have waited at least
 * TIMEOUT_MS. */
int backlog_track(struct backlog *b, const uint32_t *inos, int n, int64_t now_ns,
                  int64_t timeout_ms);

#endif
