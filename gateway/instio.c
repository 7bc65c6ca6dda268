/*
 * Instance output under a budget.  Each wakeup does a bounded amount of work:
 * at most one read of the line buffer's free space and at most
 * INSTIO_LINES_PER_EVENT lines formatted into the log; what is left waits
 * for the next loop iteration (a zero timer, so the other events of the loop
 * go first).  A token bucket pays for the lines that are logged, each line
 * costing at least INSTIO_LINE_COST so that a flood of one-byte lines cannot
 * buy thousands of log writes.  A line the bucket cannot pay for is dropped
 * and counted; while dropping, the pipe is read only every
 * INSTIO_PAUSE_MS, so a flooding instance fills its pipe and blocks in its
 * own write(2) instead of making the supervisor read and throw away
 * gigabytes.  Dropping ends once the bucket is half full again, with one log
 * line saying how much was lost.
 */
#include "config.h"

#include "instio.h"

#include "conf.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define INSTIO_LINE_MAX 4096
#define INSTIO_LINES_PER_EVENT 64
#define INSTIO_LINE_COST 128
#define INSTIO_PAUSE_MS 100
/* While an episode lasts, its running total is logged this often. */
#define INSTIO_REPORT_EVERY_NS ((int64_t)10 * 1000000000)
/* What the final drain reads at most: one default pipe's worth. */
#define INSTIO_FINAL_MAX (64 * 1024)

const struct instio_budget instio_default_budget = {32 * 1024, 256 * 1024};

struct instio {
    struct event_base *base; /* borrowed */
    int fd;
    struct event *ev_read;   /* owned */
    struct event *ev_resume; /* owned: ends a pause */
    bool paused;
    struct instio_budget budget;
    double tokens;
    int64_t refill_ns;
    bool dropping;
    uint64_t dropped_bytes, dropped_lines;   /* total */
    uint64_t reported_bytes, reported_lines; /* already in a log line */
    int64_t episode_ns, report_ns;
    pid_t pid;
    char fn[CONF_NAME_MAX + 1];
    size_t len;
    char buf[INSTIO_LINE_MAX];
};

static int64_t instio_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void instio_refill(struct instio *io, int64_t now)
{
    double dt = (double)(now - io->refill_ns) / 1e9;

    io->refill_ns = now;
    if (dt <= 0)
        return;
    io->tokens += dt * (double)io->budget.rate;
    if (io->tokens > (double)io->budget.burst)
        io->tokens = (double)io->budget.burst;
}

/* One line saying how much was dropped since the last such line. */
static void instio_report(struct instio *io, bool ongoing)
{
    uint64_t b = io->dropped_bytes - io->reported_bytes;
    uint64_t l = io->dropped_lines - io->reported_lines;

    if (b == 0)
        return;
    log_warnx("[fn %s pid %d] output over its budget (%lld KiB/s, burst %lld KiB): dropped %llu "
              "bytes in %llu line%s%s",
              io->fn, (int)io->pid, (long long)(io->budget.rate / 1024),
              (long long)(io->budget.burst / 1024), (unsigned long long)b, (unsigned long long)l,
              l == 1 ? "" : "s", ongoing ? " (still dropping)" : "");
    io->reported_bytes = io->dropped_bytes;
    io->reported_lines = io->dropped_lines;
}

/* Logs or drops one line; returns true when it was logged. */
static bool instio_line(struct instio *io, const char *line, size_t len, int64_t now)
{
    double cost = (double)(len + 1 < INSTIO_LINE_COST ? INSTIO_LINE_COST : len + 1);

    if (io->dropping && io->tokens >= (double)io->budget.burst / 2) {
        io->dropping = false;
        instio_report(io, false);
    }
    if (!io->dropping && io->tokens >= cost) {
        io->tokens -= cost;
        log_child(io->fn, (int)io->pid, line, len);
        return true;
    }
    if (!io->dropping) {
        io->dropping = true;
        io->episode_ns = io->report_ns = now;
    }
    io->dropped_bytes += len + 1;
    io->dropped_lines++;
    if (now - io->report_ns >= INSTIO_REPORT_EVERY_NS) {
        io->report_ns = now;
        instio_report(io, true);
    }
    return false;
}

/* Handles the complete lines in the buffer, at most MAX_LOGGED of them
 * logged (SIZE_MAX: all).  ALL also takes a final unterminated line.
 * Returns true when complete lines are left over. */
static bool instio_lines(struct instio *io, size_t max_logged, bool all, int64_t now)
{
    size_t start = 0, logged = 0;
    bool left = false;

    for (size_t i = 0; i < io->len; i++) {
        if (io->buf[i] != '\n')
            continue;
        if (logged >= max_logged) {
            left = true;
            break;
        }
        if (instio_line(io, io->buf + start, i - start, now))
            logged++;
        start = i + 1;
    }
    if (!left && start == 0 && io->len == sizeof(io->buf)) {
        /* A line longer than the buffer: logged in pieces. */
        instio_line(io, io->buf, io->len, now);
        start = io->len;
    }
    if (!left && all && start < io->len) {
        instio_line(io, io->buf + start, io->len - start, now);
        start = io->len;
    }
    memmove(io->buf, io->buf + start, io->len - start);
    io->len -= start;
    return left;
}

static void instio_pause(struct instio *io, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (io->ev_read && !io->paused) {
        event_del(io->ev_read);
        io->paused = true;
    }
    if (io->ev_resume)
        evtimer_add(io->ev_resume, &tv);
}

static void instio_close_fd(struct instio *io)
{
    if (io->ev_read) {
        event_free(io->ev_read);
        io->ev_read = NULL;
    }
    if (io->ev_resume) {
        event_free(io->ev_resume);
        io->ev_resume = NULL;
    }
    if (io->fd >= 0) {
        close(io->fd);
        io->fd = -1;
    }
}

static void instio_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct instio *io = arg;
    int64_t now = instio_now_ns();
    ssize_t r;
    (void)fd;
    (void)what;

    instio_refill(io, now);
    /* What an earlier wakeup left over goes before any new read. */
    if (instio_lines(io, INSTIO_LINES_PER_EVENT, false, now)) {
        instio_pause(io, 0);
        return;
    }
    do
        r = read(io->fd, io->buf + io->len, sizeof(io->buf) - io->len);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        /* Every writer is gone. */
        instio_lines(io, SIZE_MAX, true, now);
        instio_close_fd(io);
        return;
    }
    if (r > 0)
        io->len += (size_t)r;
    if (instio_lines(io, INSTIO_LINES_PER_EVENT, false, now))
        instio_pause(io, 0);
    else if (io->dropping)
        instio_pause(io, INSTIO_PAUSE_MS);
}

static void instio_on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct instio *io = arg;

    if (io->paused && io->ev_read) {
        io->paused = false;
        if (event_add(io->ev_read, NULL) < 0)
            log_warnx("[fn %s pid %d] cannot capture its output any more", io->fn, (int)io->pid);
    }
    instio_on_read(fd, what, arg);
}

struct instio *instio_new(struct event_base *base, int fd, const char *fn, pid_t pid,
                          const struct instio_budget *budget)
{
    struct instio *io = calloc(1, sizeof(*io));

    if (!io) {
        log_warn("[fn %s pid %d] cannot capture its output", fn, (int)pid);
        close(fd);
        return NULL;
    }
    io->base = base;
    io->fd = fd;
    io->pid = pid;
    snprintf(io->fn, sizeof(io->fn), "%s", fn);
    io->budget = budget ? *budget : instio_default_budget;
    if (io->budget.rate < 1)
        io->budget.rate = 1;
    if (io->budget.burst < INSTIO_LINE_COST)
        io->budget.burst = INSTIO_LINE_COST;
    io->tokens = (double)io->budget.burst;
    io->refill_ns = instio_now_ns();
    io->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, instio_on_read, io);
    io->ev_resume = evtimer_new(base, instio_on_resume, io);
    if (!io->ev_read || !io->ev_resume || event_add(io->ev_read, NULL) < 0) {
        log_warnx("[fn %s pid %d] cannot capture its output", fn, (int)pid);
        instio_close_fd(io);
        free(io);
        return NULL;
    }
    return io;
}

void instio_free(struct instio *io)
{
    int64_t now;
    size_t total = 0;

    if (!io)
        return;
    now = instio_now_ns();
    instio_refill(io, now);
    /* The last lines (an abort message, say) belong before the exit line the
     * caller writes next; bounded, since a descendant may still hold the
     * pipe's write end and keep writing. */
    while (io->fd >= 0 && total < INSTIO_FINAL_MAX) {
        ssize_t r = read(io->fd, io->buf + io->len, sizeof(io->buf) - io->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        io->len += (size_t)r;
        total += (size_t)r;
        instio_lines(io, SIZE_MAX, false, now);
    }
    instio_lines(io, SIZE_MAX, true, now);
    instio_report(io, false);
    instio_close_fd(io);
    free(io);
}

uint64_t instio_dropped(const struct instio *io)
{
    return io ? io->dropped_bytes : 0;
}
