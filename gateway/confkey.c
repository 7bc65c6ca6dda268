/*
 * Every key fngate.conf and function.conf know, one row each with its type,
 * its range and the field it lands in, so that a key is added in one place
 * and checked the same way in every section that takes it; and the check of
 * one numeric value against its row, whose messages ("key: 'value' is out of
 * range (1..4096)") every section shares.
 */
#include "config.h"

#include "conf_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* Postgres keeps statement_timeout in an int of milliseconds. */
#define CONF_STATEMENT_TIMEOUT_MAX ((int64_t)596 * 3600 * 1000)
#define CONF_ENV_RESERVED "FNGATE_"

#define FN_OFF(f) offsetof(struct fn_settings, f)
#define GW_OFF(f) offsetof(struct gw_settings, f)

const struct conf_key confkey_fn[] = {
    {"max_instances", CONF_V_INT, 1, 4096, 0, "1..4096", FN_OFF(max_instances)},
    {"min_instances", CONF_V_INT, 0, 4096, 0, "0..4096", FN_OFF(min_instances)},
    {"idle_timeout", CONF_V_DURATION, 0, -1, 0, NULL, FN_OFF(idle_timeout_ms)},
    {"request_timeout", CONF_V_DURATION, 0, -1, 0, NULL, FN_OFF(request_timeout_ms)},
    {"queue_timeout", CONF_V_DURATION, 0, -1, 0, NULL, FN_OFF(queue_timeout_ms)},
    {"statement_timeout", CONF_V_DURATION, 0, CONF_STATEMENT_TIMEOUT_MAX, 0, "at most 596h",
     FN_OFF(statement_timeout_ms)},
    {"max_requests", CONF_V_LONG, 0, -1, 0, "at least 0", FN_OFF(max_requests)},
    {"memory_limit", CONF_V_SIZE, 0, -1, 1024 * 1024, "0 for unlimited, or at least 1M",
     FN_OFF(memory_limit)},
    {"open_files", CONF_V_LONG, 16, 1048576, 0, "16..1048576", FN_OFF(open_files)},
    {"max_body", CONF_V_SIZE, 0, (int64_t)1 << 30, 0, "at most 1G", FN_OFF(max_body)},
    {"queue_size", CONF_V_INT, 1, 65535, 0, "1..65535", FN_OFF(queue_size)},
    {"user", CONF_V_OPTSTR, 0, 0, 0, NULL, FN_OFF(user)},
    {"group", CONF_V_OPTSTR, 0, 0, 0, NULL, FN_OFF(group)},
    {"sandbox", CONF_V_BOOL, 0, 0, 0, NULL, FN_OFF(sandbox)},
    {"sandbox_read", CONF_V_PATHS, 0, 0, 0, NULL, FN_OFF(sandbox_read)},
    {"sandbox_write", CONF_V_PATHS, 0, 0, 0, NULL, FN_OFF(sandbox_write)},
    {"max_db_connections", CONF_V_INT, 1, 1000, 0, "1..1000", FN_OFF(max_db_connections)},
    {"database_url", CONF_V_OPTSTR, 0, 0, 0, NULL, FN_OFF(database_url)},
};

const struct conf_key confkey_gw[] = {
    {"functions_dir", CONF_V_PATH, 0, 0, 0, NULL, GW_OFF(functions_dir)},
    {"socket_dir", CONF_V_PATH, 0, 0, 0, NULL, GW_OFF(socket_dir)},
    {"socket_mode", CONF_V_MODE, 0, 0777, 0, "at most 0777", GW_OFF(socket_mode)},
    {"socket_group", CONF_V_OPTSTR, 0, 0, 0, NULL, GW_OFF(socket_group)},
    {"database_url", CONF_V_OPTSTR, 0, 0, 0, NULL, GW_OFF(database_url)},
    {"pool_size", CONF_V_INT, 1, 1000, 0, "1..1000", GW_OFF(pool_size)},
    {"min_pool", CONF_V_INT, 0, 1000, 0, "0..1000", GW_OFF(min_pool)},
    {"db_wait_timeout", CONF_V_DURATION, 0, -1, 0, NULL, GW_OFF(db_wait_timeout_ms)},
    {"max_result", CONF_V_SIZE, 1024, -1, 0, "at least 1K", GW_OFF(max_result)},
    {"max_query", CONF_V_SIZE, 1024, (int64_t)64 << 20, 0, "1K..64M", GW_OFF(max_query)},
    {"user", CONF_V_STR, 0, 0, 0, NULL, GW_OFF(user)},
    {"group", CONF_V_STR, 0, 0, 0, NULL, GW_OFF(group)},
    {"dynamic_uid_min", CONF_V_INT, 1, 2147483646, 0, "1..2147483646", GW_OFF(dynamic_uid_min)},
    {"dynamic_uid_max", CONF_V_INT, 1, 2147483646, 0, "1..2147483646", GW_OFF(dynamic_uid_max)},
    {"log_level", CONF_V_LOGLEVEL, 0, 0, 0, NULL, GW_OFF(log_level)},
    {"stop_timeout", CONF_V_DURATION, 0, -1, 0, NULL, GW_OFF(stop_timeout_ms)},
    {"prepared_statements", CONF_V_BOOL, 0, 0, 0, NULL, GW_OFF(prepared_statements)},
    {"watch", CONF_V_BOOL, 0, 0, 0, NULL, GW_OFF(watch)},
    {"request_log", CONF_V_LOGPATH, 0, 0, 0, NULL, GW_OFF(request_log)},
    {"request_log_rate", CONF_V_LONG, 1, 10000000, 0, "1..10000000", GW_OFF(request_log_rate)},
    {"request_log_burst", CONF_V_LONG, 1, 100000000, 0, "1..100000000", GW_OFF(request_log_burst)},
    {"slow_query", CONF_V_DURATION, 0, -1, 0, NULL, GW_OFF(slow_query_ms)},
    {"spare_processes", CONF_V_INT, 0, 64, 0, "0..64", GW_OFF(spare_processes)},
};

#define CONF_NKEYS(t) (sizeof(t) / sizeof((t)[0]))
const size_t confkey_n_fn = CONF_NKEYS(confkey_fn);
const size_t confkey_n_gw = CONF_NKEYS(confkey_gw);
_Static_assert(CONF_NKEYS(confkey_gw) <= CONF_GW_LINES_MAX, "raise CONF_GW_LINES_MAX");

const struct conf_key *confkey_find(const struct conf_key *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

bool confkey_is_env(const char *key)
{
    return strncmp(key, CONF_ENV_PREFIX, strlen(CONF_ENV_PREFIX)) == 0;
}

/* Checks an env.KEY name; writes "KEY: reason" into WHY on error. */
int confkey_env_check(const char *key, char *why, size_t whylen)
{
    const char *name = key + strlen(CONF_ENV_PREFIX);

    if (!confval_env_name_valid(name)) {
        snprintf(why, whylen, "%s: invalid variable name '%s' (use [A-Za-z_][A-Za-z0-9_]*)", key,
                 name);
        return -1;
    }
    if (strncmp(name, CONF_ENV_RESERVED, strlen(CONF_ENV_RESERVED)) == 0) {
        snprintf(why, whylen,
                 "%s: names starting with " CONF_ENV_RESERVED " are reserved for fngate", key);
        return -1;
    }
    return 0;
}

/* Parses a numeric VALUE for K and checks its range; writes "key: 'value'
 * reason" into WHY on error. */
int confkey_number(const struct conf_key *k, const char *value, int64_t *out, char *why,
                   size_t whylen)
{
    int64_t v = 0;
    int r;

    switch (k->type) {
    case CONF_V_INT:
    case CONF_V_LONG:
        r = confval_integer(value, &v);
        if (r == -1) {
            snprintf(why, whylen, "%s: '%s' is not an integer", k->name, value);
            return -1;
        }
        break;
    case CONF_V_DURATION:
        r = confval_duration(value, &v);
        if (r == -1) {
            snprintf(why, whylen, "%s: '%s' is not a duration (use 500ms, 30s, 5m)", k->name,
                     value);
            return -1;
        }
        break;
    case CONF_V_SIZE:
        r = confval_size(value, &v);
        if (r == -1) {
            snprintf(why, whylen, "%s: '%s' is not a size (use 512K, 64M, 1G)", k->name, value);
            return -1;
        }
        break;
    case CONF_V_MODE:
        r = 0;
        if (*value == '\0' || strspn(value, "01234567") != strlen(value)) {
            snprintf(why, whylen, "%s: '%s' is not an octal mode (e.g. 0660)", k->name, value);
            return -1;
        }
        for (const char *s = value; *s != '\0' && r == 0; s++) {
            v = v * 8 + (*s - '0');
            if (v > k->max)
                r = -2;
        }
        break;
    default:
        return -1;
    }
    if (r == -2 || v < k->min || (k->max >= 0 && v > k->max) ||
        (k->type == CONF_V_LONG && v > LONG_MAX) || (k->type == CONF_V_INT && v > INT_MAX) ||
        (k->nonzero_min > 0 && v != 0 && v < k->nonzero_min)) {
        if (k->range != NULL)
            snprintf(why, whylen, "%s: '%s' is out of range (%s)", k->name, value, k->range);
        else
            snprintf(why, whylen, "%s: '%s' is out of range", k->name, value);
        return -1;
    }
    *out = v;
    return 0;
}

void confkey_store(const struct conf_key *k, void *base, int64_t v)
{
    char *p = (char *)base + k->off;

    switch (k->type) {
    case CONF_V_INT:
        *(int *)(void *)p = (int)v;
        break;
    case CONF_V_LONG:
        *(long *)(void *)p = (long)v;
        break;
    case CONF_V_MODE:
        *(mode_t *)(void *)p = (mode_t)v;
        break;
    default:
        *(int64_t *)(void *)p = v;
        break;
    }
}
