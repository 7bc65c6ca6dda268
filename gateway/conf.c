/*
 * Reading fngate.conf and function.conf.  inih does the key = value
 * splitting and comment handling, but lines reach it through our own reader
 * so that we count lines, see every section header in full (inih truncates
 * section names to 49 characters, shorter than a function name may be),
 * refuse over-long lines instead of letting inih split them silently, and
 * strip indentation so inih never takes an indented line for a multi-line
 * continuation.  Every value is validated as it is read so an error names
 * the line it is on; function sections are kept as raw key/value lists and
 * only layered into a struct fn_settings by conf_function, because
 * function.conf sits between [defaults] and [<name>] and is only known then.
 */
#include "config.h"

#include "conf.h"

#include "ceiling.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_MS_PER_S 1000
/* Postgres keeps statement_timeout in an int of milliseconds. */
#define CONF_STATEMENT_TIMEOUT_MAX ((int64_t)596 * 3600 * 1000)
#define CONF_ENV_PREFIX "env."
#define CONF_ENV_RESERVED "FNGATE_"

enum conf_vtype {
    CONF_V_INT,      /* int field */
    CONF_V_LONG,     /* long field */
    CONF_V_DURATION, /* int64_t milliseconds */
    CONF_V_SIZE,     /* int64_t bytes */
    CONF_V_PATH,     /* char *, non-empty, made absolute */
    CONF_V_STR,      /* char *, non-empty */
    CONF_V_OPTSTR,   /* char *, empty means NULL */
    CONF_V_LOGPATH,  /* char *: "stderr", a path made absolute, or off/empty (NULL) */
    CONF_V_MODE,     /* mode_t, octal */
    CONF_V_LOGLEVEL, /* enum log_level */
    CONF_V_BOOL,     /* bool: on/off, yes/no, true/false, 1/0 */
    CONF_V_PATHS,    /* char *, space-separated absolute paths, empty means NULL */
};

struct conf_key {
    const char *name;
    enum conf_vtype type;
    int64_t min;
    int64_t max;         /* -1: no upper bound beyond the type's */
    int64_t nonzero_min; /* when > 0: 0 is allowed, otherwise at least this */
    const char *range;   /* shown when the value is out of range */
    size_t off;
};

#define FN_OFF(f) offsetof(struct fn_settings, f)
#define GW_OFF(f) offsetof(struct gw_settings, f)

static const struct conf_key conf_fn_keys[] = {
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

static const struct conf_key conf_gw_keys[] = {
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
    {"slow_query", CONF_V_DURATION, 0, -1, 0, NULL, GW_OFF(slow_query_ms)},
};

#define CONF_NKEYS(t) (sizeof(t) / sizeof((t)[0]))
_Static_assert(CONF_NKEYS(conf_gw_keys) <= CONF_GW_LINES_MAX, "raise CONF_GW_LINES_MAX");

enum conf_sect {
    CONF_S_NONE,     /* before any header */
    CONF_S_GATEWAY,  /* [gateway] */
    CONF_S_DEFAULTS, /* [defaults] */
    CONF_S_LIMITS,   /* [limits] */
    CONF_S_FUNCTION, /* [<name>] in fngate.conf */
    CONF_S_FNFILE,   /* [function] in function.conf */
};

/* Where the last min_instances or max_instances came from, for the error. */
struct conf_where {
    const char *path;
    int line;
};

/* State shared by the line reader and the inih handler of one file. */
struct conf_parser {
    FILE *fp;
    const char *path;
    char *buf; /* getline buffer */
    size_t cap;
    int lineno;
    bool fnfile; /* function.conf rather than fngate.conf */
    enum conf_sect sect;
    char sect_name[CONF_NAME_MAX + 1];
    size_t sect_idx;                              /* index into c->sections for CONF_S_FUNCTION */
    int gateway_line, defaults_line, fnfile_line; /* 0 until seen */
    int limits_line;
    const struct conf *ceilings; /* function.conf: whose [limits] apply */
    int pool_size_line, min_pool_line;
    char *confdir;             /* absolute directory of PATH, resolved on first use */
    struct conf *c;            /* fngate.conf: where values land */
    struct fn_settings *fn;    /* function.conf: the settings being layered */
    struct conf_where *minmax; /* function.conf: last min/max setter */
    /* First error only; once set, everything else is skipped. */
    int err_line; /* 0: none yet; -1: error without a line */
    char *err;
    size_t errlen;
    /* conf_load_report: every error goes to REPORT and parsing goes on
     * (err_line stays 0); the keys of a bad section header are skipped. */
    conf_report_fn *report;
    void *report_arg;
    int n_reported;
    bool skip_keys;
};

static void conf_verr(char *err, size_t errlen, const char *path, int line, const char *fmt,
                      va_list ap) __attribute__((format(printf, 5, 0)));
static void conf_verr(char *err, size_t errlen, const char *path, int line, const char *fmt,
                      va_list ap)
{
    int n;

    if (err == NULL || errlen == 0)
        return;
    if (line > 0)
        n = snprintf(err, errlen, "%s:%d: ", path, line);
    else
        n = snprintf(err, errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= errlen)
        return;
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

static void conf_err(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void conf_err(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_verr(err, errlen, path, line, fmt, ap);
    va_end(ap);
}

/* Records the parser's first error at its current line. */
static void conf_perr(struct conf_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conf_perr(struct conf_parser *p, const char *fmt, ...)
{
    va_list ap;

    if (p->report) {
        char msg[CONF_ERR_MAX];
        va_start(ap, fmt);
        conf_verr(msg, sizeof(msg), p->path, p->lineno, fmt, ap);
        va_end(ap);
        p->report(p->report_arg, msg);
        p->n_reported++;
        return;
    }
    if (p->err_line != 0)
        return;
    p->err_line = p->lineno > 0 ? p->lineno : -1;
    va_start(ap, fmt);
    conf_verr(p->err, p->errlen, p->path, p->lineno, fmt, ap);
    va_end(ap);
}

/* ---- scalar parsers ------------------------------------------------------ */

/* Digits only, no sign: 0 on success, -1 if not a number, -2 on overflow. */
static int conf_parse_digits(const char **sp, int64_t *out)
{
    const char *s = *sp;
    int64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10) {
            while (isdigit((unsigned char)*s))
                s++;
            *sp = s;
            return -2;
        }
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

/* Like conf_parse_duration but tells "not a duration" (-1) from overflow
 * (-2) so the message can say which. */
static int conf_duration(const char *s, int64_t *ms)
{
    int64_t v, mul;
    int r;

    if (s == NULL)
        return -1;
    r = conf_parse_digits(&s, &v);
    if (r == -1)
        return -1;
    if (strcmp(s, "ms") == 0)
        mul = 1;
    else if (*s == '\0' || strcmp(s, "s") == 0)
        mul = CONF_MS_PER_S;
    else if (strcmp(s, "m") == 0)
        mul = 60 * CONF_MS_PER_S;
    else if (strcmp(s, "h") == 0)
        mul = 3600 * CONF_MS_PER_S;
    else
        return -1;
    if (r == -2 || v > INT64_MAX / mul)
        return -2;
    *ms = v * mul;
    return 0;
}

int conf_parse_duration(const char *s, int64_t *ms)
{
    return conf_duration(s, ms) == 0 ? 0 : -1;
}

static int conf_size(const char *s, int64_t *bytes)
{
    int64_t v, mul;
    int r;

    if (s == NULL)
        return -1;
    r = conf_parse_digits(&s, &v);
    if (r == -1)
        return -1;
    if (*s == '\0')
        mul = 1;
    else if (s[1] != '\0')
        return -1;
    else if (*s == 'K' || *s == 'k')
        mul = (int64_t)1 << 10;
    else if (*s == 'M' || *s == 'm')
        mul = (int64_t)1 << 20;
    else if (*s == 'G' || *s == 'g')
        mul = (int64_t)1 << 30;
    else
        return -1;
    if (r == -2 || v > INT64_MAX / mul)
        return -2;
    *bytes = v * mul;
    return 0;
}

int conf_parse_size(const char *s, int64_t *bytes)
{
    return conf_size(s, bytes) == 0 ? 0 : -1;
}

/* An optional '-' then digits; a sign is accepted only so that "-1" gets an
 * "out of range" message rather than "not an integer". */
static int conf_integer(const char *s, int64_t *out)
{
    bool neg = false;
    int64_t v;
    int r;

    if (*s == '-') {
        neg = true;
        s++;
    }
    r = conf_parse_digits(&s, &v);
    if (r == -1 || *s != '\0')
        return -1;
    if (r == -2)
        return -2;
    *out = neg ? -v : v;
    return 0;
}

/* Explicit ranges rather than islower(): names must not depend on locale. */
static bool conf_lower_or_digit(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool conf_env_char(char ch, bool first)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (!first && ch >= '0' && ch <= '9');
}

bool conf_name_valid(const char *name)
{
    size_t i;

    if (name == NULL || !conf_lower_or_digit(name[0]))
        return false;
    for (i = 1; name[i] != '\0'; i++) {
        if (i >= CONF_NAME_MAX)
            return false;
        if (!conf_lower_or_digit(name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    }
    return strcmp(name, "gateway") != 0 && strcmp(name, "defaults") != 0 &&
           strcmp(name, "limits") != 0;
}

static bool conf_env_name_valid(const char *s)
{
    if (!conf_env_char(*s, true))
        return false;
    for (s++; *s != '\0'; s++)
        if (!conf_env_char(*s, false))
            return false;
    return true;
}

/* ---- keys and values ----------------------------------------------------- */

static const struct conf_key *conf_key_find(const struct conf_key *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

static bool conf_is_env_key(const char *key)
{
    return strncmp(key, CONF_ENV_PREFIX, strlen(CONF_ENV_PREFIX)) == 0;
}

/* Checks an env.KEY name; writes "KEY: reason" into WHY on error. */
static int conf_env_check(const char *key, char *why, size_t whylen)
{
    const char *name = key + strlen(CONF_ENV_PREFIX);

    if (!conf_env_name_valid(name)) {
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
static int conf_value_number(const struct conf_key *k, const char *value, int64_t *out, char *why,
                             size_t whylen)
{
    int64_t v = 0;
    int r;

    switch (k->type) {
    case CONF_V_INT:
    case CONF_V_LONG:
        r = conf_integer(value, &v);
        if (r == -1) {
            snprintf(why, whylen, "%s: '%s' is not an integer", k->name, value);
            return -1;
        }
        break;
    case CONF_V_DURATION:
        r = conf_duration(value, &v);
        if (r == -1) {
            snprintf(why, whylen, "%s: '%s' is not a duration (use 500ms, 30s, 5m)", k->name,
                     value);
            return -1;
        }
        break;
    case CONF_V_SIZE:
        r = conf_size(value, &v);
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

static void conf_store_number(const struct conf_key *k, void *base, int64_t v)
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

/* Sets env KEY (without the "env." prefix) in S, replacing an earlier value
 * so later layers win. */
static int conf_env_set(struct fn_settings *s, const char *key, const char *value)
{
    struct conf_env *env;
    char *k = NULL, *v = NULL;

    v = strdup(value);
    if (v == NULL)
        goto fail;
    for (size_t i = 0; i < s->n_env; i++) {
        if (strcmp(s->env[i].key, key) == 0) {
            free(s->env[i].value);
            s->env[i].value = v;
            return 0;
        }
    }
    k = strdup(key);
    if (k == NULL)
        goto fail;
    env = realloc(s->env, (s->n_env + 1) * sizeof(*env));
    if (env == NULL)
        goto fail;
    s->env = env;
    s->env[s->n_env].key = k;
    s->env[s->n_env].value = v;
    s->n_env++;
    return 0;
fail:
    free(k);
    free(v);
    return -1;
}

enum conf_apply {
    CONF_A_OK,
    CONF_A_UNKNOWN, /* not a function key */
    CONF_A_BAD,     /* WHY says what is wrong */
    CONF_A_NOMEM,
};

/* Parses on/off, yes/no, true/false, 1/0; -1 for anything else. */
static int conf_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
            *out = strcmp(value, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* The non-numeric function keys: a bool, a name, or a list of absolute
 * paths (separated by spaces, no '..' component, so what the sandbox opens
 * is what the operator read). */
static enum conf_apply conf_fn_apply_text(struct fn_settings *s, const struct conf_key *k,
                                          const char *value, char *why, size_t whylen)
{
    char *p = (char *)s + k->off;
    char *copy;
    bool b;

    if (k->type == CONF_V_BOOL) {
        if (conf_bool(value, &b) < 0) {
            snprintf(why, whylen, "%s: '%s' is not a boolean (on or off)", k->name, value);
            return CONF_A_BAD;
        }
        if (s != NULL)
            *(bool *)(void *)p = b;
        return CONF_A_OK;
    }
    if (k->type == CONF_V_PATHS) {
        const char *w = value;
        w += strspn(w, " \t");
        while (*w) {
            size_t n = strcspn(w, " \t");
            bool dotdot = false;
            for (size_t i = 0; i + 2 < n && !dotdot; i++)
                dotdot = w[i] == '/' && w[i + 1] == '.' && w[i + 2] == '.' &&
                         (i + 3 == n || w[i + 3] == '/');
            if (w[0] != '/' || dotdot) {
                snprintf(why, whylen, "%s: '%.*s' is not an absolute path without '..'", k->name,
                         (int)n, w);
                return CONF_A_BAD;
            }
            w += n;
            w += strspn(w, " \t");
        }
    }
    if (s == NULL)
        return CONF_A_OK;
    copy = *value ? strdup(value) : NULL;
    if (*value && copy == NULL)
        return CONF_A_NOMEM;
    free(*(char **)(void *)p);
    *(char **)(void *)p = copy;
    return CONF_A_OK;
}

/* Validates one function key and, when S is non-NULL, applies it.
 * IS_MINMAX tells the caller to remember where min/max were last set. */
static enum conf_apply conf_fn_apply(struct fn_settings *s, const char *key, const char *value,
                                     bool *is_minmax, char *why, size_t whylen)
{
    const struct conf_key *k;
    int64_t v;

    if (is_minmax != NULL)
        *is_minmax = false;
    if (conf_is_env_key(key)) {
        if (conf_env_check(key, why, whylen) < 0)
            return CONF_A_BAD;
        if (s != NULL && conf_env_set(s, key + strlen(CONF_ENV_PREFIX), value) < 0)
            return CONF_A_NOMEM;
        return CONF_A_OK;
    }
    k = conf_key_find(conf_fn_keys, CONF_NKEYS(conf_fn_keys), key);
    if (k == NULL)
        return CONF_A_UNKNOWN;
    if (k->type == CONF_V_BOOL || k->type == CONF_V_OPTSTR || k->type == CONF_V_PATHS)
        return conf_fn_apply_text(s, k, value, why, whylen);
    if (conf_value_number(k, value, &v, why, whylen) < 0)
        return CONF_A_BAD;
    if (s != NULL)
        conf_store_number(k, s, v);
    if (is_minmax != NULL)
        *is_minmax = strcmp(key, "min_instances") == 0 || strcmp(key, "max_instances") == 0;
    return CONF_A_OK;
}

static void conf_fn_defaults(struct fn_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->max_instances = 8;
    s->min_instances = 0;
    s->idle_timeout_ms = 10 * CONF_MS_PER_S;
    s->request_timeout_ms = 30 * CONF_MS_PER_S;
    s->queue_timeout_ms = 10 * CONF_MS_PER_S;
    s->statement_timeout_ms = 0;
    s->max_requests = 0;
    s->memory_limit = 0;
    s->open_files = 1024;
    s->max_body = (int64_t)1 << 20;
    s->queue_size = 511;
    s->sandbox = true;
}

/* ---- the line reader ----------------------------------------------------- */

static void conf_rstrip(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* The home of the user fngate runs as: $HOME, else the password database. */
static const char *conf_home(void)
{
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (home != NULL && home[0] == '/')
        return home;
    pw = getpwuid(geteuid());
    return pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

/* Expands a leading "~", "~/", "$HOME" or "${HOME}" in path KEY's VALUE, so
 * that a shared-hosting configuration can say socket_dir = ~/fngate/sock as
 * a shell would.  Anything else that looks like an expansion (~user, other
 * variables) is refused rather than taken literally: a folder named "~"
 * under the config's directory is never what was meant.  Returns a malloc'd
 * string, or NULL with the error reported. */
static char *conf_expand_home(struct conf_parser *p, const char *key, const char *value)
{
    const char *rest = NULL, *home, *dollar;
    char *out;

    if (value[0] == '~') {
        if (value[1] != '\0' && value[1] != '/') {
            conf_perr(p,
                      "%s: '%s': ~user is not expanded (only ~/ and $HOME are): write the "
                      "path out",
                      key, value);
            return NULL;
        }
        rest = value + 1;
    } else if (strncmp(value, "$HOME", 5) == 0 && (value[5] == '\0' || value[5] == '/')) {
        rest = value + 5;
    } else if (strncmp(value, "${HOME}", 7) == 0 && (value[7] == '\0' || value[7] == '/')) {
        rest = value + 7;
    }
    dollar = strchr(rest != NULL ? rest : value, '$');
    if (dollar != NULL) {
        conf_perr(p, "%s: '%s': only a leading ~ or $HOME is expanded, not '%s'", key, value,
                  dollar);
        return NULL;
    }
    if (rest == NULL)
        return strdup(value);
    home = conf_home();
    if (home == NULL) {
        conf_perr(p,
                  "%s: '%s': cannot expand ~: HOME is not set and uid %d has no home "
                  "directory",
                  key, value, (int)geteuid());
        return NULL;
    }
    if (asprintf(&out, "%s%s", home, rest) < 0)
        return NULL;
    return out;
}

/* Makes VALUE absolute against the config file's directory, dropping "./"
 * prefixes and trailing slashes so paths compare and print cleanly. */
static char *conf_abs_path(struct conf_parser *p, const char *value)
{
    char *out, *dir;
    size_t n;

    if (value[0] == '/') {
        out = strdup(value);
    } else {
        if (p->confdir == NULL) {
            dir = strdup(p->path);
            if (dir == NULL)
                return NULL;
            char *slash = strrchr(dir, '/');
            if (slash == NULL)
                strcpy(dir, ".");
            else if (slash == dir)
                slash[1] = '\0';
            else
                *slash = '\0';
            p->confdir = realpath(dir, NULL);
            free(dir);
            if (p->confdir == NULL)
                return NULL;
        }
        while (value[0] == '.' && value[1] == '/') {
            value += 2;
            while (*value == '/')
                value++;
        }
        if (strcmp(value, ".") == 0 || *value == '\0')
            value = "";
        n = strlen(p->confdir) + 1 + strlen(value) + 1;
        out = malloc(n);
        if (out == NULL)
            return NULL;
        if (*value == '\0')
            snprintf(out, n, "%s", p->confdir);
        else if (strcmp(p->confdir, "/") == 0)
            snprintf(out, n, "/%s", value);
        else
            snprintf(out, n, "%s/%s", p->confdir, value);
    }
    if (out == NULL)
        return NULL;
    n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

/* Handles a "[...]" line before inih sees it; LINE is already stripped. */
static void conf_section_header(struct conf_parser *p, char *line)
{
    char *end = strchr(line, ']');
    const char *rest;
    const char *name;
    struct conf *c = p->c;

    if (end == NULL) {
        conf_perr(p, "missing ']' in section header '%s'", line);
        return;
    }
    rest = end + 1;
    rest += strspn(rest, " \t");
    if (*rest != '\0' && *rest != ';' && *rest != '#') {
        conf_perr(p, "unexpected text after section header '%.*s'", (int)(end - line + 1), line);
        return;
    }
    *end = '\0';
    name = line + 1;

    if (p->fnfile) {
        if (strcmp(name, "function") != 0) {
            conf_perr(p,
                      "unexpected section [%s] (function.conf takes keys at the top or under "
                      "[function])",
                      name);
        } else if (p->fnfile_line != 0) {
            conf_perr(p, "duplicate section [function] (first at line %d)", p->fnfile_line);
        } else {
            p->fnfile_line = p->lineno;
            p->sect = CONF_S_FNFILE;
            snprintf(p->sect_name, sizeof(p->sect_name), "function");
        }
        goto out;
    }

    if (strcmp(name, "gateway") == 0) {
        if (p->gateway_line != 0) {
            conf_perr(p, "duplicate section [gateway] (first at line %d)", p->gateway_line);
            goto out;
        }
        p->gateway_line = p->lineno;
        p->sect = CONF_S_GATEWAY;
    } else if (strcmp(name, "limits") == 0) {
        if (p->limits_line != 0) {
            conf_perr(p, "duplicate section [limits] (first at line %d)", p->limits_line);
            goto out;
        }
        p->limits_line = p->lineno;
        p->sect = CONF_S_LIMITS;
    } else if (strcmp(name, "defaults") == 0) {
        if (p->defaults_line != 0) {
            conf_perr(p, "duplicate section [defaults] (first at line %d)", p->defaults_line);
            goto out;
        }
        p->defaults_line = p->lineno;
        p->sect = CONF_S_DEFAULTS;
    } else if (!conf_name_valid(name)) {
        conf_perr(p, "invalid section name '[%s]' (function names are [a-z0-9][a-z0-9_-]{0,63})",
                  name);
        goto out;
    } else {
        const struct conf_section *dup = conf_section_find(c, name);
        struct conf_section *secs;
        char *copy;

        if (dup != NULL) {
            conf_perr(p, "duplicate section [%s] (first at line %d)", name, dup->line);
            goto out;
        }
        copy = strdup(name);
        if (copy == NULL) {
            conf_perr(p, "out of memory");
            goto out;
        }
        secs = realloc(c->sections, (c->n_sections + 1) * sizeof(*secs));
        if (secs == NULL) {
            free(copy);
            conf_perr(p, "out of memory");
            goto out;
        }
        c->sections = secs;
        memset(&secs[c->n_sections], 0, sizeof(secs[0]));
        secs[c->n_sections].name = copy;
        secs[c->n_sections].line = p->lineno;
        p->sect_idx = c->n_sections++;
        p->sect = CONF_S_FUNCTION;
    }
    snprintf(p->sect_name, sizeof(p->sect_name), "%s", name);
out:
    *end = ']';
}

/* inih's reader callback: one line per call, counted, stripped and checked;
 * NULL ends the parse (at EOF or once an error is recorded). */
/* An empty line for inih, in place of one already reported. */
static char *conf_reader_blank(char *str, int num)
{
    if (num < 2)
        return NULL;
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

static char *conf_reader(char *str, int num, void *stream)
{
    struct conf_parser *p = stream;
    char *line;
    size_t len;
    ssize_t n;

    if (p->err_line != 0)
        return NULL;
    errno = 0;
    n = getline(&p->buf, &p->cap, p->fp);
    if (n < 0) {
        if (ferror(p->fp)) {
            /* Report without a line number: the failure is the file's, not
             * a line's. */
            int saved = errno;
            p->err_line = -1;
            conf_err(p->err, p->errlen, p->path, 0, "cannot read: %s", strerror(saved));
        }
        return NULL;
    }
    p->lineno++;
    line = p->buf;
    if (p->lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    if (strlen(line) != (size_t)(n - (line - p->buf))) {
        conf_perr(p, "line contains a NUL byte");
        return p->report ? conf_reader_blank(str, num) : NULL;
    }
    line += strspn(line, " \t\r\v\f");
    conf_rstrip(line);
    len = strlen(line);
    /* Room for the line, a newline and the terminator: inih built with a
     * growable buffer keeps reading until it sees the newline. */
    if (num < 2 || len > (size_t)num - 2) {
        conf_perr(p, "line too long (at most %d characters)", num - 2);
        return p->report ? conf_reader_blank(str, num) : NULL;
    }
    if (line[0] == '[') {
        int before = p->n_reported;
        conf_section_header(p, line);
        if (p->err_line != 0)
            return NULL;
        /* Collecting: what inih would call the error again is kept from it,
         * and so are the keys of a section we could not take. */
        p->skip_keys = p->n_reported != before;
        if (p->skip_keys)
            return conf_reader_blank(str, num);
    } else if (p->report && len > 0 && line[0] != ';' && line[0] != '#' &&
               strcspn(line, "=:") == len) {
        conf_perr(p, "syntax error (expected 'key = value', '[section]' or a comment)");
        return conf_reader_blank(str, num);
    }
    memcpy(str, line, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* ---- the handlers -------------------------------------------------------- */

/* Explains an unknown key, pointing at the right section when the key
 * exists elsewhere. */
static void conf_unknown_key(struct conf_parser *p, const char *key)
{
    bool gw = conf_key_find(conf_gw_keys, CONF_NKEYS(conf_gw_keys), key) != NULL;
    bool fn =
        conf_key_find(conf_fn_keys, CONF_NKEYS(conf_fn_keys), key) != NULL || conf_is_env_key(key);
    char where[CONF_NAME_MAX + 8] = "";

    if (p->sect != CONF_S_NONE)
        snprintf(where, sizeof(where), " in [%s]", p->sect_name);
    if (gw && p->fnfile)
        conf_perr(p, "unknown key '%s'%s (%s is only valid in [gateway] of fngate.conf)", key,
                  where, key);
    else if (gw)
        conf_perr(p, "unknown key '%s'%s (%s is only valid in [gateway])", key, where, key);
    else if (fn && p->sect == CONF_S_GATEWAY)
        conf_perr(p, "unknown key '%s'%s (function settings go in [defaults] or [<function>])", key,
                  where);
    else
        conf_perr(p, "unknown key '%s'%s", key, where);
}

static int conf_gateway_key(struct conf_parser *p, const char *key, const char *value)
{
    const struct conf_key *k = conf_key_find(conf_gw_keys, CONF_NKEYS(conf_gw_keys), key);
    char why[CONF_ERR_MAX];
    char *str = NULL;
    char **slot;
    int64_t v;

    if (k == NULL) {
        conf_unknown_key(p, key);
        return -1;
    }
    if ((size_t)(k - conf_gw_keys) < CONF_GW_LINES_MAX)
        p->c->gw_lines[k - conf_gw_keys] = p->lineno;
    switch (k->type) {
    case CONF_V_PATH:
    case CONF_V_STR:
        if (*value == '\0') {
            conf_perr(p, "%s: must not be empty", key);
            return -1;
        }
        if (k->type == CONF_V_PATH) {
            char *exp = conf_expand_home(p, key, value);
            if (exp == NULL)
                return -1;
            str = conf_abs_path(p, exp);
            if (str == NULL) {
                conf_perr(p, "%s: cannot resolve '%s': %s", key, exp, strerror(errno));
                free(exp);
                return -1;
            }
            free(exp);
        } else {
            str = strdup(value);
        }
        break;
    case CONF_V_OPTSTR:
        if (*value != '\0')
            str = strdup(value);
        break;
    case CONF_V_LOGPATH:
        if (strcmp(value, "off") == 0)
            value = "";
        if (*value == '\0')
            break;
        if (strcmp(value, "stderr") == 0) {
            str = strdup(value);
            break;
        }
        {
            char *exp = conf_expand_home(p, key, value);
            if (exp == NULL)
                return -1;
            str = conf_abs_path(p, exp);
            if (str == NULL) {
                conf_perr(p, "%s: cannot resolve '%s': %s", key, exp, strerror(errno));
                free(exp);
                return -1;
            }
            free(exp);
        }
        break;
    case CONF_V_LOGLEVEL:
        if (log_level_parse(value, &p->c->gw.log_level) < 0) {
            conf_perr(p, "%s: '%s' is not a log level (debug, info, warn, error)", key, value);
            return -1;
        }
        return 0;
    case CONF_V_BOOL:
        if (conf_bool(value, (bool *)((char *)&p->c->gw + k->off)) == 0)
            return 0;
        conf_perr(p, "%s: '%s' is not a boolean (on or off)", key, value);
        return -1;
    default:
        if (conf_value_number(k, value, &v, why, sizeof(why)) < 0) {
            conf_perr(p, "%s", why);
            return -1;
        }
        conf_store_number(k, &p->c->gw, v);
        if (strcmp(key, "pool_size") == 0)
            p->pool_size_line = p->lineno;
        else if (strcmp(key, "min_pool") == 0)
            p->min_pool_line = p->lineno;
        return 0;
    }
    if (*value != '\0' && str == NULL) {
        conf_perr(p, "out of memory");
        return -1;
    }
    slot = (char **)(void *)((char *)&p->c->gw + k->off);
    free(*slot);
    *slot = str;
    return 0;
}

static int conf_kv_append(struct conf_kv **kv, size_t *n, const char *key, const char *value,
                          int line)
{
    struct conf_kv *arr;
    char *k = strdup(key), *v = strdup(value);

    if (k == NULL || v == NULL)
        goto fail;
    arr = realloc(*kv, (*n + 1) * sizeof(*arr));
    if (arr == NULL)
        goto fail;
    *kv = arr;
    arr[*n].key = k;
    arr[*n].value = v;
    arr[*n].line = line;
    (*n)++;
    return 0;
fail:
    free(k);
    free(v);
    return -1;
}

/* A [limits] entry: a limitable function key with a valid value. */
static int conf_limits_key(struct conf_parser *p, const char *key, const char *value)
{
    char why[CONF_ERR_MAX];

    if (ceiling_kind(key) == CEILING_NONE) {
        conf_perr(p, "%s cannot be limited in [limits] (these can: %s)", key, ceiling_keys());
        return -1;
    }
    switch (conf_fn_apply(NULL, key, value, NULL, why, sizeof(why))) {
    case CONF_A_OK:
        break;
    case CONF_A_NOMEM:
        conf_perr(p, "out of memory");
        return -1;
    default:
        conf_perr(p, "%s", why);
        return -1;
    }
    if (conf_kv_append(&p->c->limits, &p->c->n_limits, key, value, p->lineno) < 0) {
        conf_perr(p, "out of memory");
        return -1;
    }
    return 0;
}

/* The [limits] entry for KEY in C (the last one), or NULL. */
static const struct conf_kv *conf_limit_find(const struct conf *c, const char *key)
{
    for (size_t i = c ? c->n_limits : 0; i > 0; i--) {
        if (strcmp(c->limits[i - 1].key, key) == 0)
            return &c->limits[i - 1];
    }
    return NULL;
}

/* Whether a function.conf's KEY = VALUE (valid) exceeds C's [limits]; if so
 * WHY says by how much and where the limit is. */
static bool conf_limit_exceeded(const struct conf *c, const char *key, const char *value, char *why,
                                size_t whylen)
{
    const struct conf_kv *lim = conf_limit_find(c, key);
    enum ceiling_kind kind = ceiling_kind(key);
    const struct conf_key *k = conf_key_find(conf_fn_keys, CONF_NKEYS(conf_fn_keys), key);
    int64_t v, l;
    bool bv, bl, over = false;
    const char *bad = value;
    size_t badlen = strlen(value);

    if (!lim || !k)
        return false;
    switch (kind) {
    case CEILING_MAX:
    case CEILING_MAX0:
        over = conf_value_number(k, value, &v, why, whylen) == 0 &&
               conf_value_number(k, lim->value, &l, why, whylen) == 0 &&
               ceiling_num_exceeds(kind, v, l);
        break;
    case CEILING_ON:
        over = conf_bool(value, &bv) == 0 && conf_bool(lim->value, &bl) == 0 &&
               ceiling_bool_exceeds(bv, bl);
        break;
    case CEILING_PATHS:
        over = ceiling_paths_exceed(value, lim->value, &bad, &badlen);
        break;
    case CEILING_NONE:
        break;
    }
    if (over)
        snprintf(why, whylen,
                 "%s = %.*s%s is more than the operator allows (%s = %s in [limits], "
                 "%s:%d)",
                 key, (int)badlen, bad,
                 kind == CEILING_MAX0 && strcmp(value, "0") == 0 ? " (none)" : "", key,
                 *lim->value ? lim->value : "\"\"", c->path, lim->line);
    return over;
}

/* After every layer: what exceeds a limit without a function.conf asking
 * (the built-in defaults, [defaults]) is brought down to it; a [<name>]
 * section setting the key is the operator's own exception. */
static void conf_limits_clamp(const struct conf *c, const struct conf_section *sec,
                              struct fn_settings *s)
{
    for (size_t i = 0; c && i < c->n_limits; i++) {
        const struct conf_kv *lim = &c->limits[i];
        const struct conf_key *k = conf_key_find(conf_fn_keys, CONF_NKEYS(conf_fn_keys), lim->key);
        enum ceiling_kind kind = ceiling_kind(lim->key);
        bool exception = false;
        char why[CONF_ERR_MAX];
        int64_t v = 0, l;

        if (!k || conf_limit_find(c, lim->key) != lim)
            continue;
        for (size_t j = 0; sec && j < sec->n_kv && !exception; j++)
            exception = strcmp(sec->kv[j].key, lim->key) == 0;
        if (exception)
            continue;
        if (kind == CEILING_ON) {
            bool on;
            if (conf_bool(lim->value, &on) == 0 && on)
                *(bool *)(void *)((char *)s + k->off) = true;
            continue;
        }
        if ((kind != CEILING_MAX && kind != CEILING_MAX0) ||
            conf_value_number(k, lim->value, &l, why, sizeof(why)) < 0)
            continue;
        switch (k->type) {
        case CONF_V_INT:
            v = *(int *)(void *)((char *)s + k->off);
            break;
        case CONF_V_LONG:
            v = *(long *)(void *)((char *)s + k->off);
            break;
        default:
            v = *(int64_t *)(void *)((char *)s + k->off);
            break;
        }
        if (ceiling_num_exceeds(kind, v, l))
            conf_store_number(k, s, l);
    }
}

/* A function key in fngate.conf ([defaults] or [<name>]) or function.conf. */
static int conf_function_key(struct conf_parser *p, const char *key, const char *value)
{
    char why[CONF_ERR_MAX];
    bool minmax;
    struct conf_section *sec;
    int r = -1;

    if (p->fnfile && (strcmp(key, "user") == 0 || strcmp(key, "group") == 0)) {
        /* A function must not choose whose rights it gets. */
        conf_perr(p, "%s: only the operator's fngate.conf may set who a function runs as", key);
        return -1;
    }
    if (p->fnfile && !conf_limit_find(p->ceilings, key) &&
        (strcmp(key, "sandbox_read") == 0 || strcmp(key, "sandbox_write") == 0 ||
         (strcmp(key, "sandbox") == 0 && conf_bool(value, &minmax) == 0 && !minmax))) {
        /* Nor loosen its own sandbox: that is the operator's call, made
         * with a [limits] entry for the key (checked below). */
        conf_perr(p,
                  "%s: only the operator's fngate.conf may relax a function's sandbox (or allow "
                  "it in [limits])",
                  key);
        return -1;
    }
    if (p->fnfile && strcmp(key, "database_url") == 0) {
        /* A function's database role is the operator's, and so is its password. */
        conf_perr(p, "%s: only the operator's fngate.conf may set a function's database role", key);
        return -1;
    }
    if (p->fnfile && strcmp(key, "max_db_connections") == 0) {
        /* Nor its share of the database connections. */
        conf_perr(p, "%s: only the operator's fngate.conf may set a function's share of the pool",
                  key);
        return -1;
    }
    switch (conf_fn_apply(p->fn, key, value, &minmax, why, sizeof(why))) {
    case CONF_A_OK:
        break;
    case CONF_A_UNKNOWN:
        conf_unknown_key(p, key);
        return -1;
    case CONF_A_BAD:
        conf_perr(p, "%s", why);
        return -1;
    case CONF_A_NOMEM:
        conf_perr(p, "out of memory");
        return -1;
    }
    if (p->fnfile) {
        if (conf_limit_exceeded(p->ceilings, key, value, why, sizeof(why))) {
            conf_perr(p, "%s", why);
            return -1;
        }
        if (minmax) {
            p->minmax->path = p->path;
            p->minmax->line = p->lineno;
        }
        return 0;
    }
    if (p->sect == CONF_S_DEFAULTS) {
        r = conf_kv_append(&p->c->defaults, &p->c->n_defaults, key, value, p->lineno);
    } else {
        sec = &p->c->sections[p->sect_idx];
        r = conf_kv_append(&sec->kv, &sec->n_kv, key, value, p->lineno);
    }
    if (r < 0)
        conf_perr(p, "out of memory");
    return r;
}

/* inih's handler: SECTION is ignored because the reader tracks sections in
 * full; returns 0 (error) only to make inih record this line. */
static int conf_handler_impl(void *user, const char *key, const char *value)
{
    struct conf_parser *p = user;

    if (p->err_line != 0 || p->skip_keys)
        return 1;
    if (key == NULL) /* a new-section callback, if inih was built with them */
        return 1;
    if (value == NULL) {
        conf_perr(p, "key '%s' has no value", key);
        return 0;
    }
    if (*key == '\0') {
        conf_perr(p, "missing key name before '='");
        return 0;
    }
    switch (p->sect) {
    case CONF_S_NONE:
        if (p->fnfile)
            return conf_function_key(p, key, value) == 0;
        conf_perr(p, "key '%s' is outside any section", key);
        return 0;
    case CONF_S_GATEWAY:
        return conf_gateway_key(p, key, value) == 0;
    case CONF_S_LIMITS:
        return conf_limits_key(p, key, value) == 0;
    case CONF_S_DEFAULTS:
    case CONF_S_FUNCTION:
    case CONF_S_FNFILE:
        return conf_function_key(p, key, value) == 0;
    }
    return 0;
}

#if INI_HANDLER_LINENO
static int conf_handler(void *user, const char *section, const char *key, const char *value,
                        int lineno)
{
    (void)section;
    (void)lineno;
    /* Collecting, errors are reported already: inih must not count them. */
    return conf_handler_impl(user, key, value) || ((struct conf_parser *)user)->report;
}
#else
static int conf_handler(void *user, const char *section, const char *key, const char *value)
{
    (void)section;
    /* Collecting, errors are reported already: inih must not count them. */
    return conf_handler_impl(user, key, value) || ((struct conf_parser *)user)->report;
}
#endif

/* Runs inih over P->path.  Returns 0, -1 with the error written, or 1 when
 * the file does not exist and MISSING_OK. */
static int conf_parse_file(struct conf_parser *p, bool missing_ok)
{
    struct stat st;
    int r;

    p->fp = fopen(p->path, "r");
    if (p->fp == NULL) {
        if (missing_ok && errno == ENOENT)
            return 1;
        conf_err(p->err, p->errlen, p->path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    /* fopen happily opens a directory; say so instead of "cannot read". */
    if (fstat(fileno(p->fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        conf_err(p->err, p->errlen, p->path, 0, "cannot open: %s", strerror(EISDIR));
        r = -1;
        goto out;
    }
    r = ini_parse_stream(conf_reader, p, conf_handler, p);
    if (r == -2) {
        conf_err(p->err, p->errlen, p->path, 0, "out of memory");
        r = -1;
    } else if (r > 0 && (p->err_line <= 0 || r < p->err_line)) {
        /* inih found a line that is neither a key, a header nor a comment
         * before any error of ours. */
        conf_err(p->err, p->errlen, p->path, r,
                 "syntax error (expected 'key = value', '[section]' or a comment)");
        if (p->report) {
            p->report(p->report_arg, p->err);
            p->n_reported++;
        }
        r = -1;
    } else if (p->err_line != 0 || p->n_reported) {
        r = -1;
    } else {
        r = 0;
    }
out:
    if (r < 0 && p->report && p->n_reported == 0)
        p->report(p->report_arg, p->err); /* cannot open, out of memory */
    fclose(p->fp);
    p->fp = NULL;
    return r;
}

/* ---- cross-key checks ---------------------------------------------------- */

/* Scans raw KV for the last min_instances and max_instances, updating
 * MIN/MAX and LINE (line of the last one seen).  Values were validated. */
static void conf_scan_minmax(const struct conf_kv *kv, size_t n, int *min, int *max, int *line)
{
    int64_t v;

    for (size_t i = 0; i < n; i++) {
        bool is_min = strcmp(kv[i].key, "min_instances") == 0;
        if (!is_min && strcmp(kv[i].key, "max_instances") != 0)
            continue;
        if (conf_integer(kv[i].value, &v) < 0)
            continue;
        if (is_min)
            *min = (int)v;
        else
            *max = (int)v;
        *line = kv[i].line;
    }
}

/* After the whole file is read: the cross-key rules.  The earliest
 * offending line is reported so "first error" holds across sections. */
static int conf_check_cross(struct conf_parser *p)
{
    struct conf *c = p->c;
    struct fn_settings def;
    char msg[CONF_ERR_MAX] = "";
    int best = 0;
    int dmin, dmax, dline = 0;

    if (c->gw.min_pool > c->gw.pool_size) {
        best = p->min_pool_line > p->pool_size_line ? p->min_pool_line : p->pool_size_line;
        snprintf(msg, sizeof(msg), "min_pool (%d) is greater than pool_size (%d)", c->gw.min_pool,
                 c->gw.pool_size);
    }

    conf_fn_defaults(&def);
    dmin = def.min_instances;
    dmax = def.max_instances;
    conf_scan_minmax(c->defaults, c->n_defaults, &dmin, &dmax, &dline);
    if (dmin > dmax && (best == 0 || dline < best)) {
        best = dline;
        snprintf(msg, sizeof(msg),
                 "min_instances (%d) is greater than max_instances (%d) in [defaults]", dmin, dmax);
    }

    for (size_t i = 0; i < c->n_sections; i++) {
        const struct conf_section *s = &c->sections[i];
        int min = dmin, max = dmax, line = 0;

        conf_scan_minmax(s->kv, s->n_kv, &min, &max, &line);
        /* A section that sets neither inherits [defaults]'s verdict. */
        if (line == 0 || min <= max || (best != 0 && line >= best))
            continue;
        best = line;
        snprintf(msg, sizeof(msg), "min_instances (%d) is greater than max_instances (%d) in [%s]",
                 min, max, s->name);
    }
    if (best == 0)
        return 0;
    conf_err(p->err, p->errlen, p->path, best, "%s", msg);
    return -1;
}

/* ---- public -------------------------------------------------------------- */

static void conf_kv_free(struct conf_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->gw.functions_dir);
    free(c->gw.socket_dir);
    free(c->gw.socket_group);
    free(c->gw.database_url);
    free(c->gw.user);
    free(c->gw.group);
    free(c->gw.request_log);
    conf_kv_free(c->defaults, c->n_defaults);
    conf_kv_free(c->limits, c->n_limits);
    for (size_t i = 0; i < c->n_sections; i++) {
        free(c->sections[i].name);
        conf_kv_free(c->sections[i].kv, c->sections[i].n_kv);
    }
    free(c->sections);
    free(c);
}

/* LENIENT (with REPORT): a file that was read is kept whatever its errors,
 * each bad key left at its default. */
static struct conf *conf_load_impl(const char *path, char *err, size_t errlen,
                                   conf_report_fn *report, void *arg, bool lenient)
{
    struct conf_parser p;
    struct conf *c;
    const char *env;

    memset(&p, 0, sizeof(p));
    p.path = path;
    p.err = err;
    p.errlen = errlen;
    p.report = report;
    p.report_arg = arg;
    if (err != NULL && errlen > 0)
        err[0] = '\0';

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        conf_err(err, errlen, path, 0, "out of memory");
        return NULL;
    }
    p.c = c;
    c->path = strdup(path);
    c->gw.functions_dir = strdup(CONF_DEFAULT_FUNCTIONS_DIR);
    c->gw.socket_dir = strdup("/run/fngate");
    c->gw.dynamic_uid_min = 61184;
    c->gw.dynamic_uid_max = 65519;
    c->gw.socket_mode = 0660;
    c->gw.pool_size = 10;
    c->gw.min_pool = 0;
    c->gw.db_wait_timeout_ms = 5 * CONF_MS_PER_S;
    c->gw.max_result = (int64_t)16 << 20;
    c->gw.max_query = (int64_t)1 << 20;
    c->gw.log_level = LOG_LVL_INFO;
    c->gw.stop_timeout_ms = 10 * CONF_MS_PER_S;
    c->gw.prepared_statements = true;
    c->gw.watch = true;
    if (c->path == NULL || c->gw.functions_dir == NULL || c->gw.socket_dir == NULL) {
        conf_err(err, errlen, path, 0, "out of memory");
        goto fail;
    }

    if (conf_parse_file(&p, false) != 0 && !(lenient && p.n_reported > 0))
        goto fail;
    if (conf_check_cross(&p) < 0 && !lenient) {
        if (report)
            report(arg, err);
        goto fail;
    }

    env = getenv("DATABASE_URL");
    if (env != NULL && *env != '\0') {
        char *url = strdup(env);
        if (url == NULL) {
            conf_err(err, errlen, path, 0, "out of memory");
            goto fail;
        }
        free(c->gw.database_url);
        c->gw.database_url = url;
    }
    free(p.buf);
    free(p.confdir);
    return c;
fail:
    free(p.buf);
    free(p.confdir);
    conf_free(c);
    return NULL;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
    return conf_load_impl(path, err, errlen, NULL, NULL, false);
}

struct conf_report_count {
    conf_report_fn *report;
    void *arg;
    int n;
};

static void conf_report_counted(void *arg, const char *problem)
{
    struct conf_report_count *rc = arg;

    rc->n++;
    rc->report(rc->arg, problem);
}

struct conf *conf_load_report(const char *path, conf_report_fn *report, void *arg)
{
    char err[CONF_ERR_MAX];
    struct conf_report_count rc = {report, arg, 0};
    struct conf *c;

    err[0] = '\0';
    c = conf_load_impl(path, err, sizeof(err), conf_report_counted, &rc, false);
    /* A failure no line reported (the file cannot be opened) is said too:
     * "missing.conf: 0 problems" with exit 1 told the user nothing. */
    if (c == NULL && rc.n == 0)
        report(arg, err[0] ? err : "cannot load the configuration");
    return c;
}

static void conf_count_problem(void *arg, const char *problem)
{
    (void)problem;
    (*(int *)arg)++;
}

struct conf *conf_load_lenient(const char *path, int *errors)
{
    char err[CONF_ERR_MAX];

    *errors = 0;
    return conf_load_impl(path, err, sizeof(err), conf_count_problem, errors, true);
}

int conf_gw_line(const struct conf *c, const char *key)
{
    const struct conf_key *k = conf_key_find(conf_gw_keys, CONF_NKEYS(conf_gw_keys), key);

    if (c == NULL || k == NULL || (size_t)(k - conf_gw_keys) >= CONF_GW_LINES_MAX)
        return 0;
    return c->gw_lines[k - conf_gw_keys];
}

void conf_gw_err(const struct conf *c, const char *key, char *err, size_t errlen, const char *fmt,
                 ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_verr(err, errlen, c->path, conf_gw_line(c, key), fmt, ap);
    va_end(ap);
}

const struct conf_section *conf_section_find(const struct conf *c, const char *name)
{
    if (c == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < c->n_sections; i++)
        if (strcmp(c->sections[i].name, name) == 0)
            return &c->sections[i];
    return NULL;
}

/* Applies already-validated raw KVs from PATH; only allocation can fail. */
static int conf_apply_kvs(struct fn_settings *s, const struct conf_kv *kv, size_t n,
                          const char *path, struct conf_where *minmax, char *err, size_t errlen)
{
    char why[CONF_ERR_MAX];
    bool is_minmax;

    for (size_t i = 0; i < n; i++) {
        switch (conf_fn_apply(s, kv[i].key, kv[i].value, &is_minmax, why, sizeof(why))) {
        case CONF_A_OK:
            break;
        case CONF_A_UNKNOWN:
            conf_err(err, errlen, path, kv[i].line, "unknown key '%s'", kv[i].key);
            return -1;
        case CONF_A_BAD:
            conf_err(err, errlen, path, kv[i].line, "%s", why);
            return -1;
        case CONF_A_NOMEM:
            conf_err(err, errlen, path, kv[i].line, "out of memory");
            return -1;
        }
        if (is_minmax) {
            minmax->path = path;
            minmax->line = kv[i].line;
        }
    }
    return 0;
}

int conf_function(const struct conf *c, const char *name, const char *fn_conf_path,
                  struct fn_settings *out, char *err, size_t errlen)
{
    struct fn_settings s;
    struct conf_where minmax = {NULL, 0};
    const struct conf_section *sec;
    const char *cpath = c != NULL ? c->path : "fngate.conf";
    struct conf_parser p;
    int r = -1;

    conf_fn_defaults(&s);
    memset(&p, 0, sizeof(p));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (!conf_name_valid(name)) {
        conf_err(err, errlen, cpath, 0,
                 "'%s' is not a valid function name ([a-z0-9][a-z0-9_-]{0,63}, not gateway, "
                 "defaults or limits)",
                 name != NULL ? name : "(null)");
        goto out;
    }
    if (c != NULL &&
        conf_apply_kvs(&s, c->defaults, c->n_defaults, c->path, &minmax, err, errlen) < 0)
        goto out;
    if (fn_conf_path != NULL) {
        p.path = fn_conf_path;
        p.fnfile = true;
        p.ceilings = c;
        p.fn = &s;
        p.minmax = &minmax;
        p.err = err;
        p.errlen = errlen;
        if (conf_parse_file(&p, true) < 0)
            goto out;
    }
    sec = conf_section_find(c, name);
    if (sec != NULL && conf_apply_kvs(&s, sec->kv, sec->n_kv, c->path, &minmax, err, errlen) < 0)
        goto out;
    conf_limits_clamp(c, sec, &s);
    if (s.min_instances > s.max_instances) {
        conf_err(err, errlen, minmax.path != NULL ? minmax.path : cpath, minmax.line,
                 "min_instances (%d) is greater than max_instances (%d) for function '%s'",
                 s.min_instances, s.max_instances, name);
        goto out;
    }
    r = 0;
out:
    free(p.buf);
    if (r < 0) {
        fn_settings_clear(&s);
        memset(out, 0, sizeof(*out));
    } else {
        *out = s;
    }
    return r;
}

void fn_settings_clear(struct fn_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_env; i++) {
        free(s->env[i].key);
        free(s->env[i].value);
    }
    free(s->env);
    free(s->user);
    free(s->group);
    if (s->database_url) {
        explicit_bzero(s->database_url, strlen(s->database_url)); /* a password */
        free(s->database_url);
    }
    free(s->sandbox_read);
    free(s->sandbox_write);
    memset(s, 0, sizeof(*s));
}

static const char *conf_env_get(const struct fn_settings *s, const char *key)
{
    for (size_t i = 0; i < s->n_env; i++)
        if (strcmp(s->env[i].key, key) == 0)
            return s->env[i].value;
    return NULL;
}

static bool conf_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool fn_settings_equal(const struct fn_settings *a, const struct fn_settings *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->max_instances != b->max_instances || a->min_instances != b->min_instances ||
        a->idle_timeout_ms != b->idle_timeout_ms ||
        a->request_timeout_ms != b->request_timeout_ms ||
        a->queue_timeout_ms != b->queue_timeout_ms ||
        a->statement_timeout_ms != b->statement_timeout_ms || a->max_requests != b->max_requests ||
        a->memory_limit != b->memory_limit || a->open_files != b->open_files ||
        a->max_body != b->max_body || a->queue_size != b->queue_size || a->n_env != b->n_env ||
        a->sandbox != b->sandbox || a->max_db_connections != b->max_db_connections ||
        !conf_str_eq(a->database_url, b->database_url) || !conf_str_eq(a->user, b->user) ||
        !conf_str_eq(a->group, b->group) || !conf_str_eq(a->sandbox_read, b->sandbox_read) ||
        !conf_str_eq(a->sandbox_write, b->sandbox_write))
        return false;
    /* Keys are unique within one settings (later entries replace earlier
     * ones), so equal counts plus every key of A found equal in B is
     * enough. */
    for (size_t i = 0; i < a->n_env; i++) {
        const char *v = conf_env_get(b, a->env[i].key);
        if (v == NULL || strcmp(v, a->env[i].value) != 0)
            return false;
    }
    return true;
}
