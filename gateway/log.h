/*
 * Logging for the gateway: one line per event on stderr with time, level and
 * a context ("[fn hello pid 123]").  Modelled on OpenBSD httpd: log_warn
 * appends strerror(errno), log_warnx does not; fatal/fatalx exit and are only
 * for start-up or a broken invariant, never for the request path.
 */
#ifndef FNGATE_LOG_H
#define FNGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int log_level_parse(const char *s, enum log_level *out);
/* Every line this process logs starts with this tag, e.g. "pool". */
void log_set_proc(const char *proc);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A line captured from a child's stderr, logged verbatim with its context. */
void log_child(const char *fn, int pid, const char *line, size_t len);

#endif
