/*
 * One function's effective settings.  fngate.conf keeps its function
 * sections as raw key/value lists, and they are layered into a struct
 * fn_settings only here, when the function is loaded, because the function's
 * own function.conf sits between [defaults] and [<name>] and is only known
 * then.  A function.conf is untrusted like the function that ships it, so
 * the keys that would choose its uid, loosen its sandbox or touch the
 * database are refused in it whatever they say.
 */
#include "config.h"

#include "fnconf.h"

#include "conf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sets env KEY (without the "env." prefix) in S, replacing an earlier value
 * so later layers win. */
static int fnconf_env_set(struct fn_settings *s, const char *key, const char *value)
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

/* The non-numeric function keys: a bool, a name, or a list of absolute
 * paths (separated by spaces, no '..' component, so what the sandbox opens
 * is what the operator read). */
static enum conf_apply fnconf_apply_text(struct fn_settings *s, const struct conf_key *k,
                                         const char *value, char *why, size_t whylen)
{
    char *p = (char *)s + k->off;
    char *copy;
    bool b;

    if (k->type == CONF_V_BOOL) {
        if (confval_bool(value, &b) < 0) {
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
enum conf_apply fnconf_apply(struct fn_settings *s, const char *key, const char *value,
                             bool *is_minmax, char *why, size_t whylen)
{
    const struct conf_key *k;
    int64_t v;

    if (is_minmax != NULL)
        *is_minmax = false;
    if (confkey_is_env(key)) {
        if (confkey_env_check(key, why, whylen) < 0)
            return CONF_A_BAD;
        if (s != NULL && fnconf_env_set(s, key + strlen(CONF_ENV_PREFIX), value) < 0)
            return CONF_A_NOMEM;
        return CONF_A_OK;
    }
    k = confkey_find(confkey_fn, confkey_n_fn, key);
    if (k == NULL)
        return CONF_A_UNKNOWN;
    if (k->type == CONF_V_BOOL || k->type == CONF_V_OPTSTR || k->type == CONF_V_PATHS)
        return fnconf_apply_text(s, k, value, why, whylen);
    if (confkey_number(k, value, &v, why, whylen) < 0)
        return CONF_A_BAD;
    if (s != NULL)
        confkey_store(k, s, v);
    if (is_minmax != NULL)
        *is_minmax = strcmp(key, "min_instances") == 0 || strcmp(key, "max_instances") == 0;
    return CONF_A_OK;
}

void fnconf_defaults(struct fn_settings *s)
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

/* A function key in fngate.conf ([defaults] or [<name>]) or function.conf. */
int fnconf_key(struct conf_parser *p, const char *key, const char *value)
{
    char why[CONF_ERR_MAX];
    bool minmax;
    struct conf_section *sec;
    int r = -1;

    if (p->fnfile && (strcmp(key, "user") == 0 || strcmp(key, "group") == 0)) {
        /* A function must not choose whose rights it gets. */
        confread_perr(p, "%s: only the operator's fngate.conf may set who a function runs as", key);
        return -1;
    }
    if (p->fnfile && !conflimit_find(p->ceilings, key) &&
        (strcmp(key, "sandbox_read") == 0 || strcmp(key, "sandbox_write") == 0 ||
         (strcmp(key, "sandbox") == 0 && confval_bool(value, &minmax) == 0 && !minmax))) {
        /* Nor loosen its own sandbox: that is the operator's call, made
         * with a [limits] entry for the key (checked below). */
        confread_perr(
            p,
            "%s: only the operator's fngate.conf may relax a function's sandbox (or allow "
            "it in [limits])",
            key);
        return -1;
    }
    if (p->fnfile && strcmp(key, "database_url") == 0) {
        /* A function's database role is the operator's, and so is its password. */
        confread_perr(p, "%s: only the operator's fngate.conf may set a function's database role",
                      key);
        return -1;
    }
    if (p->fnfile && strcmp(key, "max_db_connections") == 0) {
        /* Nor its share of the database connections. */
        confread_perr(
            p, "%s: only the operator's fngate.conf may set a function's share of the pool", key);
        return -1;
    }
    switch (fnconf_apply(p->fn, key, value, &minmax, why, sizeof(why))) {
    case CONF_A_OK:
        break;
    case CONF_A_UNKNOWN:
        confread_unknown_key(p, key);
        return -1;
    case CONF_A_BAD:
        confread_perr(p, "%s", why);
        return -1;
    case CONF_A_NOMEM:
        confread_perr(p, "out of memory");
        return -1;
    }
    if (p->fnfile) {
        if (conflimit_exceeded(p->ceilings, key, value, why, sizeof(why))) {
            confread_perr(p, "%s", why);
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
        confread_perr(p, "out of memory");
    return r;
}

/* Applies already-validated raw KVs from PATH; only allocation can fail. */
static int fnconf_apply_kvs(struct fn_settings *s, const struct conf_kv *kv, size_t n,
                            const char *path, struct conf_where *minmax, char *err, size_t errlen)
{
    char why[CONF_ERR_MAX];
    bool is_minmax;

    for (size_t i = 0; i < n; i++) {
        switch (fnconf_apply(s, kv[i].key, kv[i].value, &is_minmax, why, sizeof(why))) {
        case CONF_A_OK:
            break;
        case CONF_A_UNKNOWN:
            confread_err(err, errlen, path, kv[i].line, "unknown key '%s'", kv[i].key);
            return -1;
        case CONF_A_BAD:
            confread_err(err, errlen, path, kv[i].line, "%s", why);
            return -1;
        case CONF_A_NOMEM:
            confread_err(err, errlen, path, kv[i].line, "out of memory");
            return -1;
        }
        if (is_minmax) {
            minmax->path = path;
            minmax->line = kv[i].line;
        }
    }
    return 0;
}

int fnconf_load(const struct conf *c, const char *name, const char *fn_conf_path,
                struct fn_settings *out, char *err, size_t errlen)
{
    struct fn_settings s;
    struct conf_where minmax = {NULL, 0};
    const struct conf_section *sec;
    const char *cpath = c != NULL ? c->path : "fngate.conf";
    struct conf_parser p;
    int r = -1;

    fnconf_defaults(&s);
    memset(&p, 0, sizeof(p));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (!confval_name_valid(name)) {
        confread_err(err, errlen, cpath, 0,
                     "'%s' is not a valid function name ([a-z0-9][a-z0-9_-]{0,63}, not gateway, "
                     "defaults or limits)",
                     name != NULL ? name : "(null)");
        goto out;
    }
    if (c != NULL &&
        fnconf_apply_kvs(&s, c->defaults, c->n_defaults, c->path, &minmax, err, errlen) < 0)
        goto out;
    if (fn_conf_path != NULL) {
        p.path = fn_conf_path;
        p.fnfile = true;
        p.ceilings = c;
        p.fn = &s;
        p.minmax = &minmax;
        p.err = err;
        p.errlen = errlen;
        if (confread_file(&p, true) < 0)
            goto out;
    }
    sec = conf_section_find(c, name);
    if (sec != NULL && fnconf_apply_kvs(&s, sec->kv, sec->n_kv, c->path, &minmax, err, errlen) < 0)
        goto out;
    conflimit_clamp(c, sec, &s);
    if (s.min_instances > s.max_instances) {
        confread_err(err, errlen, minmax.path != NULL ? minmax.path : cpath, minmax.line,
                     "min_instances (%d) is greater than max_instances (%d) for function '%s'",
                     s.min_instances, s.max_instances, name);
        goto out;
    }
    r = 0;
out:
    free(p.buf);
    if (r < 0) {
        fnconf_clear(&s);
        memset(out, 0, sizeof(*out));
    } else {
        *out = s;
    }
    return r;
}

void fnconf_clear(struct fn_settings *s)
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

static const char *fnconf_env_get(const struct fn_settings *s, const char *key)
{
    for (size_t i = 0; i < s->n_env; i++)
        if (strcmp(s->env[i].key, key) == 0)
            return s->env[i].value;
    return NULL;
}

static bool fnconf_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool fnconf_equal(const struct fn_settings *a, const struct fn_settings *b)
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
        !fnconf_str_eq(a->database_url, b->database_url) || !fnconf_str_eq(a->user, b->user) ||
        !fnconf_str_eq(a->group, b->group) || !fnconf_str_eq(a->sandbox_read, b->sandbox_read) ||
        !fnconf_str_eq(a->sandbox_write, b->sandbox_write))
        return false;
    /* Keys are unique within one settings (later entries replace earlier
     * ones), so equal counts plus every key of A found equal in B is
     * enough. */
    for (size_t i = 0; i < a->n_env; i++) {
        const char *v = fnconf_env_get(b, a->env[i].key);
        if (v == NULL || strcmp(v, a->env[i].value) != 0)
            return false;
    }
    return true;
}
