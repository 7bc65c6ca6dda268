/*
 * Configuration: the INI file (fngate.conf, parsed with inih) and the
 * optional function.conf in each function's folder.  Every value is checked
 * when the file is read, so a bad file is refused with "file:line: reason"
 * before anything runs; the merge order for one function is
 * built-in defaults < [defaults] < <fn>/function.conf < [<fn>] in fngate.conf
 * (the operator's file has the last word over what a function ships).
 */
#ifndef FNGATE_CONF_H
#define FNGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"

/* FNGATE_LOCALSTATEDIR comes from configure's --localstatedir (Makefile.am). */
#ifndef FNGATE_LOCALSTATEDIR
#define FNGATE_LOCALSTATEDIR "/var"
#endif
#define CONF_DEFAULT_FUNCTIONS_DIR FNGATE_LOCALSTATEDIR "/lib/fngate/functions"

#define CONF_NAME_MAX 64
#define CONF_ERR_MAX 512

/* One env.KEY = value pair; both strings owned by the array holding it. */
struct conf_env {
    char *key;
    char *value;
};

/* Effective settings of one function.  Durations in milliseconds, sizes in
 * bytes; 0 means "no limit" where the key's documentation says so. */
struct fn_settings {
    int max_instances;            /* 1..4096, default 8 */
    int min_instances;            /* 0..max_instances, default 0 */
    int64_t idle_timeout_ms;      /* default 10s */
    int64_t request_timeout_ms;   /* default 30s; 0 = none */
    int64_t queue_timeout_ms;     /* default 10s; 0 = none */
    int64_t statement_timeout_ms; /* default 0 = Postgres default */
    long max_requests;            /* default 0 = never recycle */
    int64_t memory_limit;         /* RLIMIT_AS; default 0 = unlimited */
    long open_files;              /* RLIMIT_NOFILE; default 1024 */
    int64_t max_body;             /* default 1M */
    int queue_size;               /* listen backlog; default 511 */
    /* Who it runs as (fngate.conf only; NULL: a dynamic uid when root). */
    char *user;
    char *group;
    /* The sandbox (gateway/sandbox.c); relaxations are per function. */
    bool sandbox;           /* default on */
    char *sandbox_read;     /* extra absolute paths it may read, space-separated */
    char *sandbox_write;    /* extra absolute paths it may write, space-separated */
    int max_db_connections; /* its share of pool_size (fngate.conf only); 0 = pool_size */
    char *database_url;     /* its own database role (fngate.conf only); NULL: the gateway's */
    struct conf_env *env;   /* owned; n_env entries */
    size_t n_env;
};

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

/* Effective settings for function NAME: built-in defaults, then [defaults],
 * then FN_CONF_PATH if that file exists (NULL to skip), then [NAME].  Checks
 * cross-key rules (min_instances <= max_instances).  OUT must be released
 * with fn_settings_clear.  Returns 0, or -1 with "file:line: reason" in ERR. */
int conf_function(const struct conf *c, const char *name, const char *fn_conf_path,
                  struct fn_settings *out, char *err, size_t errlen);
void fn_settings_clear(struct fn_settings *s);
/* True when A and B would run instances the same way (any difference means
 * a reload retires the old instances). */
bool fn_settings_equal(const struct fn_settings *a, const struct fn_settings *b);
/* The line of [gateway] KEY in c->path, 0 when the file does not set it. */
int conf_gw_line(const struct conf *c, const char *key);
/* Writes "PATH:LINE: message" into ERR, LINE being KEY's (just "PATH:
 * message" when the file does not set KEY and its default applies). */
void conf_gw_err(const struct conf *c, const char *key, char *err, size_t errlen, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
/* The section for NAME, or NULL. */
const struct conf_section *conf_section_find(const struct conf *c, const char *name);

/* "500ms", "30s", "5m", "1h", or a bare number of seconds. */
int conf_parse_duration(const char *s, int64_t *ms);
/* "512", "512K", "256M", "1G" (powers of 1024). */
int conf_parse_size(const char *s, int64_t *bytes);
/* [a-z0-9][a-z0-9_-]{0,63} and not a reserved section name. */
bool conf_name_valid(const char *name);

#endif
