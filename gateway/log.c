/*
 * Gateway logging.  Lines go to stderr, unbuffered and written with a single
 * write(2) each, so lines from the supervisor and the pool process interleave
 * whole even though both share the same stderr.
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level = LOG_LVL_INFO;
static const char *log_proc = "fngate";

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    log_level = level;
}

enum log_level log_get_level(void)
{
    return log_level;
}

void log_set_proc(const char *proc)
{
    log_proc = proc;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Formats "2026-11-27T05:07:22.123Z info  fngate: msg[: strerror]\n" into
 * one buffer and writes it at once. */
static void log_emit(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
    char buf[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int r;

    if (lvl < log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(buf + n, sizeof(buf) - n, ".%03ldZ %-5s %s: ", ts.tv_nsec / 1000000,
                 log_names[lvl], log_proc);
    if (r > 0)
        n += (size_t)r;
    if (n < sizeof(buf)) {
        r = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
        if (r > 0)
            n += (size_t)r;
    }
    if (errnum && n < sizeof(buf)) {
        r = snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(errnum));
        if (r > 0)
            n += (size_t)r;
    }
    if (n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)!write(STDERR_FILENO, buf, n);
}

#define LOG_FN(name, lvl, witherr)                                                                 \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        int saved = errno;                                                                         \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(lvl, witherr ? saved : 0, fmt, ap);                                               \
        va_end(ap);                                                                                \
        errno = saved;                                                                             \
    }

LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_error, LOG_LVL_ERROR, 0)

void log_fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERROR, saved, fmt, ap);
    va_end(ap);
    exit(1);
}

void log_fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(1);
}

static void log_child_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_child_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_INFO, 0, fmt, ap);
    va_end(ap);
}

void log_child(const char *fn, int pid, const char *line, size_t len)
{
    if (len > 3500)
        len = 3500;
    log_child_fmt("[fn %s pid %d] %.*s", fn, pid, (int)len, line);
}
