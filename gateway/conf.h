/*
 * Configuration: fngate.conf, the operator's INI file.  Every value is
 * checked when the file is read, so a bad file is refused with
 * "file:line: reason" before anything runs.  Its function sections are kept
 * raw here and layered with each function's own function.conf by fnconf.h.
 */
#ifndef FNGATE_CONF_H
#define FNGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "confval.h"
#include "log.h"

/* FNGATE_LOCALSTATEDIR comes from configure's --localstatedir (Makefile.am). */
#ifndef FNGATE_LOCALSTATEDIR
#define FNGATE_LOCALSTATEDIR "/var"
#endif
#define CONF_DEFAULT_FUNCTIONS_DIR FNGATE_LOCALSTATEDIR "/lib/fngate/functions"

#define CONF_ERR_MAX 512

/* The [gateway] section. Strings owned by struct conf. */
struct gw_settings {
    char *functions_dir;        /* default <localstatedir>/lib/fngate/functions */
    char *socket_dir;           /* default "/run/fngate" */
    mode_t socket_mode;         /* octal, default 0660 */
    char *socket_group;         /* NULL = leave the group as created */
    char *database_url;         /* NULL = no database; DATABASE_URL overrides */
    int pool_size;              /* 1..1000, default 10 */
    int min_pool;               /* 0..pool_size, default 0 */
    int64_t db_wait_timeout_ms; /* default 5s */
    int64_t max_result;         /* default 16M */
    int64_t max_query;          /* largest query frame from an instance; default 1M */
    char *user;                 /* NULL: each function a dynamic uid (root only) */
    char *group;                /* NULL: the user's primary group */
    int dynamic_uid_min;        /* default 61184 (systemd's DynamicUser range) */
    int dynamic_uid_max;        /* default 65519 */
    enum log_level log_level;   /* default info */
    int64_t stop_timeout_ms;    /* SIGTERM -> SIGKILL grace, default 10s */
    bool prepared_statements;   /* cache named prepared statements; default on
                                   (off behind PgBouncer < 1.21 in transaction mode) */
    bool watch;                 /* inotify on functions_dir; default on */
    char *request_log;          /* NULL = off; a path, or "stderr" */
    int64_t slow_query_ms;      /* the pool logs queries slower than this; 0 = off */
    int spare_processes;        /* generic exec'd instances kept ready; default 1, 0 = off */
    long request_log_rate;      /* a function's request-log lines per second; default 50000 */
    long request_log_burst;     /* and at once; default 100000 */
};

/* One key = value line kept raw (already validated) so sections can be
 * layered in order. */
struct conf_kv {
    char *key;
    char *value;
    int line;
};

struct conf_section {
    char *name; /* function name */
    int line;   /* line of the [name] header */
    struct conf_kv *kv;
    size_t n_kv;
};

#define CONF_GW_LINES_MAX 32

struct conf {
    char *path;
    struct gw_settings gw;
    int gw_lines[CONF_GW_LINES_MAX]; /* line of each [gateway] key set; 0: not in the file */
    struct conf_kv *defaults;        /* raw [defaults] entries */
    size_t n_defaults;
    /* Raw [limits] entries: ceilings on what a function.conf may set
     * (ceiling.h).  They also cap the built-in defaults and [defaults]; only
     * a [<name>] section of fngate.conf can grant one function more. */
    struct conf_kv *limits;
    size_t n_limits;
    struct conf_section *sections;
    size_t n_sections;
};

/* Reads and validates PATH.  On error returns NULL and writes
 * "PATH:LINE: reason" (or "PATH: reason") into ERR. */
struct conf *conf_load(const char *path, char *err, size_t errlen);
void conf_free(struct conf *c);
/* conf_load for `fngate check`: every error in PATH goes to REPORT(ARG,
 * "PATH:LINE: reason"), not only the first; NULL if there was any. */
typedef void conf_report_fn(void *arg, const char *problem);
struct conf *conf_load_report(const char *path, conf_report_fn *report, void *arg);
/* For `fngate stop`, which must work with a broken file: what could be read
 * of PATH (a bad value leaves its default), NULL only when PATH cannot be
 * read; *ERRORS says how many errors there were. */
struct conf *conf_load_lenient(const char *path, int *errors);

/* The line of [gateway] KEY in c->path, 0 when the file does not set it. */
int conf_gw_line(const struct conf *c, const char *key);
/* Writes "PATH:LINE: message" into ERR, LINE being KEY's (just "PATH:
 * message" when the file does not set KEY and its default applies). */
void conf_gw_err(const struct conf *c, const char *key, char *err, size_t errlen, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
/* The section for NAME, or NULL. */
const struct conf_section *conf_section_find(const struct conf *c, const char *name);

#endif
