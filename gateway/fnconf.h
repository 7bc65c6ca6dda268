/*
 * One function's effective settings, layered when the function is loaded:
 * built-in defaults < [defaults] < <fn>/function.conf < [<fn>] in
 * fngate.conf (the operator's file has the last word over what a function
 * ships), with fngate.conf's [limits] capping what the function.conf and the
 * defaults may give.
 */
#ifndef FNGATE_FNCONF_H
#define FNGATE_FNCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;

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

/* Effective settings for function NAME: built-in defaults, then [defaults],
 * then FN_CONF_PATH if that file exists (NULL to skip), then [NAME].  Checks
 * cross-key rules (min_instances <= max_instances).  OUT must be released
 * with fnconf_clear.  Returns 0, or -1 with "file:line: reason" in ERR. */
int fnconf_load(const struct conf *c, const char *name, const char *fn_conf_path,
                struct fn_settings *out, char *err, size_t errlen);
void fnconf_clear(struct fn_settings *s);
/* True when A and B would run instances the same way (any difference means
 * a reload retires the old instances). */
bool fnconf_equal(const struct fn_settings *a, const struct fn_settings *b);
#endif
