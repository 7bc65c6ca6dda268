/*
 * Function discovery: which folders under functions_dir are functions, and
 * what settings each one runs with.  A function is <functions_dir>/<name>/
 * handler, executable, with a valid name; anything else is skipped with a log
 * line saying why.  Pure with respect to the running gateway, so `fngate
 * check` and a reload run exactly the same code.
 */
#ifndef FNGATE_DISCOVER_H
#define FNGATE_DISCOVER_H

#include <stdbool.h>
#include <sys/stat.h>

#include "conf.h"
#include "fnconf.h"

/* One discovered function.  Strings and settings owned by the array. */
struct discover_fn {
    char *name;
    char *dir;
    char *handler;
    /* handler.so next to it, when there is one at least as new as the
     * handler: spare processes dlopen() it instead of exec'ing the handler
     * (NULL: every instance is an exec). */
    char *handler_so;
    struct fn_settings set;
    /* NULL, or why the function cannot run ("file:line: reason", "path:
     * reason"): it keeps its socket and every request is answered 503 with
     * this reason until a reload finds it fixed.  Its settings are then
     * those of fngate.conf alone, with min_instances 0. */
    char *disabled;
    /* Identity of the handler file: a change means a new binary was
     * deployed (an atomic rename changes the inode, an in-place copy the
     * size or mtime). */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    ino_t so_ino; /* the same for handler.so; 0 without one */
    struct timespec so_mtime;
};

struct discover_list {
    struct discover_fn *fns;
    size_t n;
};

/* Scans c->gw.functions_dir.  Returns NULL with ERR set only when the folder
 * cannot be read ("fngate.conf:LINE: functions_dir DIR: reason").  A
 * function whose function.conf is invalid, or whose handler cannot be
 * examined, is listed with DISABLED set (not logged: the caller reports
 * it).  Sections of fngate.conf naming no discovered function are reported
 * with log_warnx. */
struct discover_list *discover_functions(const struct conf *c, char *err, size_t errlen);
void discover_list_free(struct discover_list *l);
/* Frees what D owns and zeroes it; D itself is not freed. */
void discover_fn_clear(struct discover_fn *d);
/* Sets D->disabled to a copy of REASON (kept when one is already set) and
 * min_instances to 0.  Returns -1 only when out of memory. */
int discover_fn_disable(struct discover_fn *d, const char *reason);
const struct discover_fn *discover_list_find(const struct discover_list *l, const char *name);
/* True when A and B are the same handler file (same identity). */
bool discover_fn_same_binary(const struct discover_fn *a, const struct discover_fn *b);

#endif
