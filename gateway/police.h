/*
 * Request timeouts and stop escalation, decided from the supervisor's own
 * clock and observations.  An instance's scoreboard slot is written by the
 * instance, so nothing read from it may keep an instance alive past
 * request_timeout or get another instance killed: slot timestamps are never
 * used, and the slot's state only ever shortens an instance's life (a claim
 * of "busy" seen continuously for request_timeout times it out) or extends
 * a stop by a bounded amount.  What cannot be forged is the kernel's view:
 * every accepted connection on a function's socket carries the socket's
 * path, so one sock_diag dump shows each function's connections in service,
 * timed here from the first scan that saw them.  A connection older than
 * request_timeout is traced to the instance holding it through
 * /proc/<pid>/fd (as root, or when the instance is dumpable) and that
 * instance alone is asked, with SIGUSR2, to time out its request if that
 * request is so old (the SDK checks its own clock and answers 504): a front
 * end that keeps FastCGI connections (fastcgi_keep_conn, Apache's
 * enablereuse) makes an old connection carry a young request.  If it still
 * holds the connection a second later it is killed, unless it was seen
 * quietly idle meanwhile (two looks idle without progress: a kept connection
 * waiting for its next request), busy in one request since before the
 * question (which the slot-based timeout bounds), or watching the connection
 * in one of its epoll sets, as the SDK watches an idle kept connection and
 * never one it serves a request on (/proc/<pid>/fdinfo: the kernel's word).
 * A connection its holder watches is not even asked about: a front end's
 * pooled connection in steady use keeps its busy instance.  Where the
 * holder cannot be seen (no root and non-dumpable instances), every instance
 * that cannot be cleared is asked the same and killed if the connection is
 * still held a second later.  The cost of a lying instance thus falls on its
 * own function only.
 */
#ifndef FNGATE_POLICE_H
#define FNGATE_POLICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fnsdk_scoreboard.h"

/* One function's connections in service, kept by police_scan. */
struct police_fn;

/* What the supervisor should do with one instance. */
enum police_verdict {
    POLICE_NONE,
    POLICE_TIMEOUT,      /* SIGUSR1: answer 504 and leave (slot busy too long) */
    POLICE_CHECK_HOLDER, /* SIGUSR2: it holds a connection older than request_timeout */
    POLICE_CHECK,        /* SIGUSR2: it may hold one (its fd table cannot be read) */
    POLICE_KILL_TIMEOUT, /* SIGKILL: did not leave after a timeout or a check */
    POLICE_KILL_STUCK,   /* SIGKILL: still running after SIGTERM and the stop grace */
    POLICE_KILL_START,   /* SIGKILL: reports_ready, but not ready start_timeout after its spawn */
};

/* The supervisor's observations of one instance, kept across ticks. */
struct police_inst {
    int64_t busy_since_ns; /* slot seen BUSY without progress since (0: not BUSY) */
    int64_t idle_since_ns; /* slot seen IDLE without progress since (0: not IDLE) */
    uint64_t requests;     /* the slot's counter at the last look */
    int64_t check_ns;      /* SIGUSR2 sent (0: never) */
    bool was_idle;         /* at the last look */
    bool quiet;            /* seen idle twice without progress since the last SIGUSR2 */
};

/* One instance as the supervisor hands it to police_fn_judge. */
struct police_view {
    pid_t pid;
    const struct fnsdk_scoreboard_slot *slot; /* untrusted: read with FNSDK_SCOREBOARD_LOAD only */
    struct police_inst *pi;                   /* owned by the caller, zeroed at spawn */
    int64_t spawned_ns;
    int64_t term_ns;             /* SIGTERM sent (0: not) */
    int64_t timeout_ns;          /* SIGUSR1 sent (0: not) */
    int64_t kill_ns;             /* SIGKILL sent (0: not) */
    bool reports_ready;          /* runs the SDK for sure (a spare's): it marks its slot ready */
    enum police_verdict verdict; /* out */
    int64_t idle_ms;             /* out: how long seen idle, -1 when not idle */
};

struct police_limits {
    int64_t request_timeout_ms; /* 0: none */
    int64_t stop_timeout_ms;    /* SIGTERM -> SIGKILL grace */
    int64_t kill_after_ms;      /* SIGUSR1 or SIGUSR2 -> SIGKILL grace */
    int64_t start_timeout_ms;   /* spawn -> ready in accept() when reports_ready; 0: none */
};

/* Starts watching the connections of the socket at SOCK_PATH (copied).
 * Returns NULL when out of memory (logged): that function then has the
 * slot-based timeout only. */
struct police_fn *police_fn_new(const char *sock_path);
void police_fn_free(struct police_fn *pf);

/* One sock_diag dump for every function, at most every POLICE_SCAN_MS
 * (earlier calls return at once).  Without sock_diag, logs once and keeps
 * the slot-based timeout only. */
void police_scan(int64_t now);
/* Releases the netlink socket. */
void police_close(void);

/* Decides for the N instances in V (every instance of one function). */
void police_fn_judge(struct police_fn *pf, struct police_view **v, size_t n,
                     const struct police_limits *lim, int64_t now);

/* What a timeout verdict means, for the log line. */
const char *police_verdict_text(enum police_verdict v);

/* Nanoseconds from A to B for slot-supplied values: 0 unless A <= B, never
 * an overflow. */
int64_t police_ns_between(int64_t a, int64_t b);

/* The connections of PF in service and older than MS at NOW (tests). */
size_t police_fn_overdue(const struct police_fn *pf, int64_t ms, int64_t now);

#endif
