/*
 * The scoreboard slot: a few words of shared memory (a memfd the gateway
 * creates per instance and hands over as fd FN_SB_FD) that the SDK updates
 * around each request and the supervisor only reads (but for stop_req, its
 * request to leave, which the SDK checks between requests without a syscall
 * while SIGTERM stays blocked outside the idle wait).  Plain stores of
 * aligned 64-bit words with relaxed atomics: no syscall and no lock on the
 * request path.  Times are CLOCK_MONOTONIC nanoseconds, which the gateway and
 * its instances share.  Internal to fngate; not installed.
 */
#ifndef FN_SB_H
#define FN_SB_H

#include <stdint.h>

#define FN_SB_MAGIC 0x66676174u /* "fgat" */
#define FN_SB_VERSION 1u

/* Fixed descriptor numbers in every instance: 0 is the listening socket
 * (FCGI_LISTENSOCK_FILENO), 3 the database channel, 4 the scoreboard. */
#define FN_DB_FD 3
#define FN_SB_FD 4

enum fn_sb_state {
    FN_SB_STARTING = 0, /* spawned, not yet in the accept loop (memfd is zeroed) */
    FN_SB_IDLE = 1,     /* waiting for a connection */
    FN_SB_BUSY = 2,     /* handling a request since req_start_ns */
    FN_SB_STOPPING = 3, /* leaving between requests */
};

struct fn_sb_slot {
    uint32_t magic; /* written last by the SDK at start-up */
    uint32_t version;
    uint32_t state;       /* enum fn_sb_state */
    uint32_t stop_req;    /* the one word the gateway writes: leave after this request */
    int64_t ready_ns;     /* first time the instance became idle */
    int64_t req_start_ns; /* start of the current request (BUSY) */
    int64_t idle_since_ns;
    uint64_t requests; /* requests completed */
    uint64_t busy_ns;  /* total time spent in requests */
};

#define FN_SB_LOAD(field) __atomic_load_n(&(field), __ATOMIC_ACQUIRE)
#define FN_SB_STORE(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELEASE)

#endif
