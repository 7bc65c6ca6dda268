/*
 * The request log (request_log = PATH or stderr in [gateway]): one JSON
 * object per request.  Instances put their lines into a ring in their
 * scoreboard memfd (no syscall on the request path); the supervisor drains
 * the rings on its timer and writes them here, adding the function's name
 * and the pid itself so no instance can write a line for another.
 */
#ifndef FNGATE_REQLOG_H
#define FNGATE_REQLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fnsdk_scoreboard.h"

/* Bytes of ring per instance when the log is on. */
#define REQLOG_RING_BYTES 65536

struct reqlog;

/* Opens PATH for appending ("stderr": the gateway's stderr).  NULL with ERR
 * set when it cannot be opened. */
struct reqlog *reqlog_open(const char *path, char *err, size_t errlen);
void reqlog_free(struct reqlog *rl);
/* Makes *RL follow PATH (NULL: off): opens it, reopens it (a rotated file
 * is let go), or closes it.  Returns 0, or -1 (logged) leaving *RL as it
 * was. */
int reqlog_apply(struct reqlog **rl, const char *path);
const char *reqlog_path(const struct reqlog *rl);
/* Sets the lines per second (RATE) and at once (BURST) each function's
 * budget allows from now on; RL NULL: nothing. */
void reqlog_set_budget(struct reqlog *rl, long rate, long burst);

/* Lines a function may have written per second, and at once, unless
 * request_log_rate and request_log_burst say otherwise.  The SDK writes one
 * line per request, so this is far above what the gateway serves on the
 * machines it runs on; a function that writes lines no request made (its
 * ring is its own memory) is held to it, so it can fill neither the disk
 * nor the supervisor's time at the rate of its instances. */
#define REQLOG_LINES_PER_S 50000
#define REQLOG_LINES_BURST 100000

/* One function's budget of lines (zeroed: full at the first drain).  Owned
 * by the caller, one per function, shared by its instances. */
struct reqlog_budget {
    double tokens;
    int64_t refilled_ns; /* 0: never */
    uint64_t dropped;    /* lines over the budget since the start */
    uint64_t unreported; /* of those, not yet in a warning */
    int64_t warned_ns;
};

/* Writes the whole lines in RING (SIZE bytes, after SLOT) from *TAIL to the
 * slot's log_head, each prefixed with FN and PID, and advances *TAIL (the
 * gateway's own copy; the slot's log_tail is only told).  Malformed lines
 * are skipped; a head that makes no sense drops what it claims.  Each line
 * costs BUDGET one token before it is looked at; one it cannot pay for is
 * dropped and counted, with at most one warning a second per function. */
void reqlog_drain(struct reqlog *rl, struct reqlog_budget *budget, const char *fn, pid_t pid,
                  struct fnsdk_scoreboard_slot *slot, const char *ring, size_t size,
                  uint64_t *tail);

#endif
