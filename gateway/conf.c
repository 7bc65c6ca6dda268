/*
 * fngate.conf as a whole: the [gateway] settings and their defaults, the raw
 * [defaults], [limits] and [<name>] entries kept for fnconf.c to layer, the
 * cross-key rules that need the whole file (min_pool <= pool_size,
 * min_instances <= max_instances), and the three ways the file is loaded:
 * stopping at the first error (start, reload), reporting every error
 * (`fngate check`), and keeping what could be read (`fngate stop` must work
 * with a broken file).
 */
#include "config.h"

#include "conf.h"

#include "conf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int conf_gateway_key(struct conf_parser *p, const char *key, const char *value)
{
    const struct conf_key *k = confkey_find(confkey_gw, confkey_n_gw, key);
    char why[CONF_ERR_MAX];
    char *str = NULL;
    char **slot;
    int64_t v;

    if (k == NULL) {
        confread_unknown_key(p, key);
        return -1;
    }
    if ((size_t)(k - confkey_gw) < CONF_GW_LINES_MAX)
        p->c->gw_lines[k - confkey_gw] = p->lineno;
    switch (k->type) {
    case CONF_V_PATH:
    case CONF_V_STR:
        if (*value == '\0') {
            confread_perr(p, "%s: must not be empty", key);
            return -1;
        }
        if (k->type == CONF_V_PATH) {
            str = confread_path(p, key, value);
            if (str == NULL)
                return -1;
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
        str = confread_path(p, key, value);
        if (str == NULL)
            return -1;
        break;
    case CONF_V_LOGLEVEL:
        if (log_level_parse(value, &p->c->gw.log_level) < 0) {
            confread_perr(p, "%s: '%s' is not a log level (debug, info, warn, error)", key, value);
            return -1;
        }
        return 0;
    case CONF_V_BOOL:
        if (confval_bool(value, (bool *)((char *)&p->c->gw + k->off)) == 0)
            return 0;
        confread_perr(p, "%s: '%s' is not a boolean (on or off)", key, value);
        return -1;
    default:
        if (confkey_number(k, value, &v, why, sizeof(why)) < 0) {
            confread_perr(p, "%s", why);
            return -1;
        }
        confkey_store(k, &p->c->gw, v);
        if (strcmp(key, "pool_size") == 0)
            p->pool_size_line = p->lineno;
        else if (strcmp(key, "min_pool") == 0)
            p->min_pool_line = p->lineno;
        return 0;
    }
    if (*value != '\0' && str == NULL) {
        confread_perr(p, "out of memory");
        return -1;
    }
    slot = (char **)(void *)((char *)&p->c->gw + k->off);
    free(*slot);
    *slot = str;
    return 0;
}

int conf_kv_append(struct conf_kv **kv, size_t *n, const char *key, const char *value, int line)
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

/* Scans raw KV for the last min_instances and max_instances, updating
 * MIN/MAX and LINE (line of the last one seen).  Values were validated. */
static void conf_scan_minmax(const struct conf_kv *kv, size_t n, int *min, int *max, int *line)
{
    int64_t v;

    for (size_t i = 0; i < n; i++) {
        bool is_min = strcmp(kv[i].key, "min_instances") == 0;
        if (!is_min && strcmp(kv[i].key, "max_instances") != 0)
            continue;
        if (confval_integer(kv[i].value, &v) < 0)
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

    fnconf_defaults(&def);
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
    confread_err(p->err, p->errlen, p->path, best, "%s", msg);
    return -1;
}

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
        confread_err(err, errlen, path, 0, "out of memory");
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
    c->gw.spare_processes = 1;
    c->gw.request_log_rate = 50000; /* reqlog.h's REQLOG_LINES_PER_S */
    c->gw.request_log_burst = 100000;
    if (c->path == NULL || c->gw.functions_dir == NULL || c->gw.socket_dir == NULL) {
        confread_err(err, errlen, path, 0, "out of memory");
        goto fail;
    }

    if (confread_file(&p, false) != 0 && !(lenient && p.n_reported > 0))
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
            confread_err(err, errlen, path, 0, "out of memory");
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
    const struct conf_key *k = confkey_find(confkey_gw, confkey_n_gw, key);

    if (c == NULL || k == NULL || (size_t)(k - confkey_gw) >= CONF_GW_LINES_MAX)
        return 0;
    return c->gw_lines[k - confkey_gw];
}

void conf_gw_err(const struct conf *c, const char *key, char *err, size_t errlen, const char *fmt,
                 ...)
{
    va_list ap;

    va_start(ap, fmt);
    confread_verr(err, errlen, c->path, conf_gw_line(c, key), fmt, ap);
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
