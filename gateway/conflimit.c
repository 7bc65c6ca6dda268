/*
 * fngate.conf's [limits] section: the operator's ceilings on what a
 * function's own function.conf may ask for.  ceiling.c knows what "more"
 * means for each kind of key; this module reads the section's entries, refuses
 * a function.conf value above one with both files and lines named, and brings
 * the built-in defaults and [defaults] down to the ceilings, since only a
 * [<name>] section of fngate.conf may grant one function more.
 */
#include "config.h"

#include "conf_int.h"

#include "ceiling.h"

#include <stdio.h>
#include <string.h>

/* A [limits] entry: a limitable function key with a valid value. */
int conflimit_key(struct conf_parser *p, const char *key, const char *value)
{
    char why[CONF_ERR_MAX];

    if (ceiling_kind(key) == CEILING_NONE) {
        confread_perr(p, "%s cannot be limited in [limits] (these can: %s)", key, ceiling_keys());
        return -1;
    }
    switch (fnconf_apply(NULL, key, value, NULL, why, sizeof(why))) {
    case CONF_A_OK:
        break;
    case CONF_A_NOMEM:
        confread_perr(p, "out of memory");
        return -1;
    default:
        confread_perr(p, "%s", why);
        return -1;
    }
    if (conf_kv_append(&p->c->limits, &p->c->n_limits, key, value, p->lineno) < 0) {
        confread_perr(p, "out of memory");
        return -1;
    }
    return 0;
}

/* The [limits] entry for KEY in C (the last one), or NULL. */
const struct conf_kv *conflimit_find(const struct conf *c, const char *key)
{
    for (size_t i = c ? c->n_limits : 0; i > 0; i--) {
        if (strcmp(c->limits[i - 1].key, key) == 0)
            return &c->limits[i - 1];
    }
    return NULL;
}

/* Whether a function.conf's KEY = VALUE (valid) exceeds C's [limits]; if so
 * WHY says by how much and where the limit is. */
bool conflimit_exceeded(const struct conf *c, const char *key, const char *value, char *why,
                        size_t whylen)
{
    const struct conf_kv *lim = conflimit_find(c, key);
    enum ceiling_kind kind = ceiling_kind(key);
    const struct conf_key *k = confkey_find(confkey_fn, confkey_n_fn, key);
    int64_t v, l;
    bool bv, bl, over = false;
    const char *bad = value;
    size_t badlen = strlen(value);

    if (!lim || !k)
        return false;
    switch (kind) {
    case CEILING_MAX:
    case CEILING_MAX0:
        over = confkey_number(k, value, &v, why, whylen) == 0 &&
               confkey_number(k, lim->value, &l, why, whylen) == 0 &&
               ceiling_num_exceeds(kind, v, l);
        break;
    case CEILING_ON:
        over = confval_bool(value, &bv) == 0 && confval_bool(lim->value, &bl) == 0 &&
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
void conflimit_clamp(const struct conf *c, const struct conf_section *sec, struct fn_settings *s)
{
    for (size_t i = 0; c && i < c->n_limits; i++) {
        const struct conf_kv *lim = &c->limits[i];
        const struct conf_key *k = confkey_find(confkey_fn, confkey_n_fn, lim->key);
        enum ceiling_kind kind = ceiling_kind(lim->key);
        bool exception = false;
        char why[CONF_ERR_MAX];
        int64_t v = 0, l;

        if (!k || conflimit_find(c, lim->key) != lim)
            continue;
        for (size_t j = 0; sec && j < sec->n_kv && !exception; j++)
            exception = strcmp(sec->kv[j].key, lim->key) == 0;
        if (exception)
            continue;
        if (kind == CEILING_ON) {
            bool on;
            if (confval_bool(lim->value, &on) == 0 && on)
                *(bool *)(void *)((char *)s + k->off) = true;
            continue;
        }
        if ((kind != CEILING_MAX && kind != CEILING_MAX0) ||
            confkey_number(k, lim->value, &l, why, sizeof(why)) < 0)
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
            confkey_store(k, s, l);
    }
}
