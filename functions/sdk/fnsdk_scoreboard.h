/*
 * The scoreboard slot: a few words of shared memory (a memfd the gateway
 * creates per instance and hands over as fd FNSDK_SCOREBOARD_FD) that the SDK updates
 * around each request and the supervisor only reads (but for stop_req, its
 * request to leave, which the SDK checks between requests without a syscall
 * while SIGTERM stays blocked outside the idle wait).  Plain stores of
 * aligned 64-bit words with relaxed atomics: no syscall and no lock on the
 * request path.  Times are CLOCK_MONOTONIC nanoseconds, which the gateway and
 * its instances share.  Internal to fngate; not installed.
 */
#ifndef FNSDK_SCOREBOARD_H
#define FNSDK_SCOREBOARD_H

#include <stdint.h>

#define FNSDK_SCOREBOARD_MAGIC 0x66676174u /* "fgat" */
#define FNSDK_SCOREBOARD_VERSION 2u

/* Fixed descriptor numbers in every instance: 0 is the listening socket
 * (FCGI_LISTENSOCK_FILENO), 3 the database channel, 4 the scoreboard. */
#define FNSDK_DB_FD 3
#define FNSDK_SCOREBOARD_FD 4

/* Histogram bounds shared by the SDK and the gateway (request duration
 * and queue wait), in nanoseconds: requests take from tens of
 * microseconds; queue waits are known to nginx's millisecond. */
#define FNSDK_SCOREBOARD_HIST 20
static const int64_t fnsdk_scoreboard_hist_le_ns[FNSDK_SCOREBOARD_HIST - 1] = {
    25000,      50000,      100000,     250000,      500000,     1000000,   2500000,
    5000000,    10000000,   25000000,   50000000,    100000000,  250000000, 500000000,
    1000000000, 2500000000, 5000000000, 10000000000, 30000000000};

/* Responses per HTTP status: a small open table (code 0 = free entry). */
#define FNSDK_SCOREBOARD_CODES 16
struct fnsdk_scoreboard_code {
    uint32_t code;
    uint32_t pad_;
    uint64_t n;
};

static inline int fnsdk_scoreboard_hist_bucket(int64_t ns)
{
    int i = 0;
    while (i < FNSDK_SCOREBOARD_HIST - 1 && ns > fnsdk_scoreboard_hist_le_ns[i])
        i++;
    return i;
}

enum fnsdk_scoreboard_state {
    FNSDK_SCOREBOARD_STARTING = 0, /* spawned, not yet in the accept loop (memfd is zeroed) */
    FNSDK_SCOREBOARD_IDLE = 1,     /* waiting for a connection */
    FNSDK_SCOREBOARD_BUSY = 2,     /* handling a request since req_start_ns */
    FNSDK_SCOREBOARD_STOPPING = 3, /* leaving between requests */
};

struct fnsdk_scoreboard_slot {
    uint32_t magic; /* written last by the SDK at start-up */
    uint32_t version;
    uint32_t state;       /* enum fnsdk_scoreboard_state */
    uint32_t stop_req;    /* the one word the gateway writes: leave after this request */
    int64_t ready_ns;     /* first time the instance became idle */
    int64_t req_start_ns; /* start of the current request (BUSY) */
    int64_t idle_since_ns;
    uint64_t requests; /* requests completed */
    uint64_t busy_ns;  /* total time spent in requests */

    /* Version 2: what the gateway's metrics fold in when the instance
     * exits.  Only the instance writes these, each a plain store of a
     * value it alone increments; the gateway reads them as claims (it
     * clamps them and never lets a total go backwards). */
    int64_t first_resp_ns;                    /* end of the first response */
    uint64_t queue_timeouts;                  /* answered 503 for queue_timeout */
    uint64_t dur_sum_ns;                      /* sum of request durations */
    uint64_t queue_sum_ns;                    /* sum of queue waits */
    uint64_t queue_n;                         /* requests with a known queue wait */
    uint64_t dur_hist[FNSDK_SCOREBOARD_HIST]; /* per-bucket counts, not cumulative */
    uint64_t
        queue_hist[FNSDK_SCOREBOARD_HIST]; /* bounds fnsdk_scoreboard_hist_le_ns[]; last: +Inf */
    struct fnsdk_scoreboard_code codes[FNSDK_SCOREBOARD_CODES];

    /* The request-log ring, present when the memfd is longer than the
     * slot (request_log is set): bytes [log_tail, log_head) of the ring
     * that follows this struct hold whole JSON lines.  The instance writes
     * log_head, the gateway log_tail; a full ring drops lines (counted). */
    uint64_t log_head;
    uint64_t log_tail;
    uint64_t log_dropped;
    /* When main() began (CLOCK_MONOTONIC): splits a cold start into the
     * kernel's exec with libc's start and the SDK's for the debug trace.
     * A hint like every other field. */
    int64_t main_ns;
    /* A spare's steps before main (fnsdk_spare.c): its assignment received,
     * its set-up done, the function's shared object loaded; 0 in an
     * exec'd instance.  Hints too. */
    int64_t spare_ns[3];
    /* Idle kept connections the instance holds (fnsdk_loop.c): an idle
     * instance holding any leaves new connections to others, so the
     * supervisor does not count it as free for one.  A hint. */
    uint32_t kept;
    uint32_t kept_pad_;
};

#define FNSDK_SCOREBOARD_LOAD(field) __atomic_load_n(&(field), __ATOMIC_ACQUIRE)
#define FNSDK_SCOREBOARD_STORE(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELEASE)

#endif
