/*
 * [limits]: the operator's ceilings on what a function's own function.conf
 * may ask for.  A function is untrusted, and so is the file it ships: the
 * operator names in fngate.conf's [limits] section the most any function.conf
 * may set (max_instances, memory_limit, request_timeout, the sandbox's
 * relaxations, ...), and a function.conf asking more is refused for that
 * function, with its file and line.  This module knows which keys can be
 * limited and what "more" means for each kind of key; conflimit.c parses the
 * values and applies the verdicts.  A key plugs in with one row in
 * ceiling.c's table.
 */
#ifndef FNGATE_CEILING_H
#define FNGATE_CEILING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ceiling_kind {
    CEILING_NONE,  /* not limitable */
    CEILING_MAX,   /* a number: more is larger */
    CEILING_MAX0,  /* a number where 0 means none (unlimited): 0 is the most */
    CEILING_ON,    /* a boolean protection: limit "on" means it cannot be turned off */
    CEILING_PATHS, /* extra paths: each must lie inside one of the limit's paths */
};

/* The kind of KEY. */
enum ceiling_kind ceiling_kind(const char *key);
/* The limitable keys, comma-separated, for an error message. */
const char *ceiling_keys(void);

/* Whether VALUE exceeds LIMIT for a number key of KIND. */
bool ceiling_num_exceeds(enum ceiling_kind kind, int64_t value, int64_t limit);
/* Whether a boolean protection set to VALUE exceeds LIMIT. */
bool ceiling_bool_exceeds(bool value, bool limit);
/* Whether some path of the space-separated VALUE lies outside every path of
 * LIMIT (NULL or empty: no path allowed); *BAD and *BADLEN then point at
 * the first such path. */
bool ceiling_paths_exceed(const char *value, const char *limit, const char **bad, size_t *badlen);

#endif
