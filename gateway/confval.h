/*
 * The scalar values of fngate.conf and function.conf: durations, sizes,
 * integers, booleans, and the names functions and environment variables may
 * have.  Kept apart from the reader so that other modules (the function
 * registry, `fngate dev`) check a name exactly as the configuration does.
 */
#ifndef FNGATE_CONFVAL_H
#define FNGATE_CONFVAL_H

#include <stdbool.h>
#include <stdint.h>

#define CONF_NAME_MAX 64
#define CONF_MS_PER_S 1000

/* "500ms", "30s", "5m", "1h", or a bare number of seconds: 0 or -1. */
int confval_parse_duration(const char *s, int64_t *ms);
/* The same, telling "not a duration" (-1) from overflow (-2). */
int confval_duration(const char *s, int64_t *ms);
/* "512", "512K", "256M", "1G" (powers of 1024): 0 or -1. */
int confval_parse_size(const char *s, int64_t *bytes);
/* The same, telling "not a size" (-1) from overflow (-2). */
int confval_size(const char *s, int64_t *bytes);
/* An optional '-' then digits: 0, -1 (not an integer) or -2 (overflow). */
int confval_integer(const char *s, int64_t *out);
/* on/off, yes/no, true/false, 1/0: 0, or -1 for anything else. */
int confval_bool(const char *value, bool *out);
/* [a-z0-9][a-z0-9_-]{0,63} and not a reserved section name. */
bool confval_name_valid(const char *name);
/* [A-Za-z_][A-Za-z0-9_]*: what an env.KEY may name. */
bool confval_env_name_valid(const char *s);

#endif
