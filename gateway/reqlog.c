/*
 * Draining the instances' request-log rings.  A ring lives in memory the
 * instance can write at any moment, so every byte is copied out before it is
 * looked at, and a line is kept only if it is one short, valid JSON object
 * ("{" to "}", checked by jansson, with no control byte inside since the SDK
 * escapes every one) that names none of the gateway's fields: JSON readers
 * keep the last of two equal keys, so a repeated "function" would pass for
 * another function's.
 * The gateway's fields go first; the instance's follow.  One write per
 * drain: with O_APPEND lines from this single writer never interleave, and
 * the file can be rotated by renaming it and sending SIGHUP.
 */
#include "config.h"

#include "reqlog.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQLOG_LINE_MAX 4096

struct reqlog {
    char *path;
    int fd;
    bool own_fd;
    char *out; /* one drain's output, REQLOG_RING_BYTES * 2 */
    size_t out_cap;
    long rate, burst; /* each function's budget: lines per second, at once */
};

struct reqlog *reqlog_open(const char *path, char *err, size_t errlen)
{
    struct reqlog *rl = calloc(1, sizeof(*rl));

    if (!rl || !(rl->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rl->fd = -1;
    rl->rate = REQLOG_LINES_PER_S;
    rl->burst = REQLOG_LINES_BURST;
    if (strcmp(path, "stderr") == 0) {
        rl->fd = STDERR_FILENO;
    } else {
        rl->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (rl->fd < 0) {
            snprintf(err, errlen, "request_log %s: %s", path, strerror(errno));
            goto fail;
        }
        rl->own_fd = true;
    }
    rl->out_cap = REQLOG_RING_BYTES * 2;
    rl->out = malloc(rl->out_cap);
    if (!rl->out) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return rl;
fail:
    reqlog_free(rl);
    return NULL;
}

void reqlog_free(struct reqlog *rl)
{
    if (!rl)
        return;
    if (rl->own_fd && rl->fd >= 0)
        close(rl->fd);
    free(rl->out);
    free(rl->path);
    free(rl);
}

int reqlog_apply(struct reqlog **rl, const char *path)
{
    char err[512];
    struct reqlog *n;

    if (!path) {
        if (*rl)
            log_info("request_log off");
        reqlog_free(*rl);
        *rl = NULL;
        return 0;
    }
    n = reqlog_open(path, err, sizeof(err));
    if (!n) {
        log_error("%s", err);
        return -1;
    }
    if (!*rl || strcmp((*rl)->path, path) != 0)
        log_info("request_log: %s", path);
    if (*rl) {
        n->rate = (*rl)->rate;
        n->burst = (*rl)->burst;
    }
    reqlog_free(*rl);
    *rl = n;
    return 0;
}

const char *reqlog_path(const struct reqlog *rl)
{
    return rl ? rl->path : NULL;
}

void reqlog_set_budget(struct reqlog *rl, long rate, long burst)
{
    if (!rl)
        return;
    rl->rate = rate > 0 ? rate : REQLOG_LINES_PER_S;
    rl->burst = burst > 0 ? burst : REQLOG_LINES_BURST;
}

/* Whether LINE (LEN bytes, '{' to '}') may follow the gateway's fields: no
 * byte below 0x20 or DEL anywhere (the SDK escapes them; a raw one could
 * still move a terminal's cursor between tokens), and one JSON object with
 * at least one member, no key twice and no top-level key that decodes to
 * one of the gateway's.  jansson decides what is JSON, strictly (UTF-8,
 * escapes, surrogates, numbers, no NUL): a hand-made scanner had let
 * through lines no JSON reader takes. */
static bool reqlog_line_ok(const char *line, size_t len)
{
    json_error_t e;
    json_t *j;
    bool ok;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
    ok = json_is_object(j) && json_object_size(j) > 0 && !json_object_get(j, "function") &&
         !json_object_get(j, "pid");
    json_decref(j);
    return ok;
}

static void reqlog_write(struct reqlog *rl, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = write(rl->fd, rl->out + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_warn("request_log %s: write", rl->path);
            return;
        }
        off += (size_t)w;
    }
}

static int64_t reqlog_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void reqlog_refill(const struct reqlog *rl, struct reqlog_budget *b, int64_t now)
{
    if (b->refilled_ns == 0 || now < b->refilled_ns) {
        b->tokens = (double)rl->burst;
    } else {
        b->tokens += (double)(now - b->refilled_ns) / 1e9 * (double)rl->rate;
        if (b->tokens > (double)rl->burst)
            b->tokens = (double)rl->burst;
    }
    b->refilled_ns = now;
}

static void reqlog_report(const struct reqlog *rl, struct reqlog_budget *b, const char *fn,
                          int64_t now)
{
    if (!b->unreported || (b->warned_ns && now - b->warned_ns < 1000000000))
        return;
    log_warnx("[fn %s] request log over its budget (request_log_rate %ld lines/s, "
              "request_log_burst %ld): dropped %llu lines (%llu since the start)",
              fn, rl->rate, rl->burst, (unsigned long long)b->unreported,
              (unsigned long long)b->dropped);
    b->unreported = 0;
    b->warned_ns = now;
}

void reqlog_drain(struct reqlog *rl, struct reqlog_budget *budget, const char *fn, pid_t pid,
                  struct fnsdk_scoreboard_slot *slot, const char *ring, size_t size, uint64_t *tail)
{
    uint64_t head = FNSDK_SCOREBOARD_LOAD(slot->log_head);
    char prefix[128], *chunk;
    size_t n, plen, out = 0, start = 0;
    int64_t now;

    if (!rl || !budget || !ring || size == 0 || head == *tail)
        return;
    now = reqlog_now_ns();
    reqlog_refill(rl, budget, now);
    if (head < *tail || head - *tail > size) {
        /* Not what the SDK writes: believe nothing of it. */
        *tail = head;
        FNSDK_SCOREBOARD_STORE(slot->log_tail, head);
        return;
    }
    n = (size_t)(head - *tail);
    chunk = rl->out + rl->out_cap / 2; /* the upper half holds the copy */
    {
        size_t off = (size_t)(*tail % size), first = size - off < n ? size - off : n;
        memcpy(chunk, ring + off, first);
        memcpy(chunk + first, ring, n - first);
    }
    plen =
        (size_t)snprintf(prefix, sizeof(prefix), "{\"function\":\"%s\",\"pid\":%d,", fn, (int)pid);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (chunk[i] != '\n')
            continue;
        len = i - start; /* without the newline */
        if (budget->tokens < 1) {
            budget->dropped++;
            budget->unreported++;
            start = i + 1;
            continue;
        }
        budget->tokens -= 1;
        if (len >= 3 && len <= REQLOG_LINE_MAX && chunk[start] == '{' && chunk[start + 1] == '"' &&
            chunk[start + len - 1] == '}' && reqlog_line_ok(chunk + start, len)) {
            if (out + plen + len > rl->out_cap / 2) {
                reqlog_write(rl, out);
                out = 0;
            }
            memcpy(rl->out + out, prefix, plen);
            memcpy(rl->out + out + plen, chunk + start + 1, len - 1);
            out += plen + len - 1;
            rl->out[out++] = '\n';
        }
        start = i + 1;
    }
    /* A partial line at the end is not the SDK's doing: dropped with the
     * rest, the next drain starts clean. */
    if (out)
        reqlog_write(rl, out);
    reqlog_report(rl, budget, fn, now);
    *tail = head;
    FNSDK_SCOREBOARD_STORE(slot->log_tail, head);
}
