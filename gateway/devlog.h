/*
 * The request log as `fngate dev` prints it: new complete lines of the
 * gateway's JSON request log, one short line per request.
 */
#ifndef FNGATE_DEVLOG_H
#define FNGATE_DEVLOG_H

#include <stddef.h>
#include <sys/types.h>

/* How far the log has been read, and a line not yet complete. */
struct devlog {
    off_t off;
    char buf[16384];
    size_t len;
};

/* Prints the lines appended to the log at PATH since the last call. */
void devlog_tail(struct devlog *l, const char *path);
/* One request-log line (JSON) as printed: "GET /fn/hello/x -> 200 in 0.8 ms
 * (cold start)"; a line without those fields is copied as it is. */
void devlog_line(const char *json, char *out, size_t outlen);

#endif
