/*
 * Function discovery.  Entries are sorted by name so that logs, start-up
 * order and tests are deterministic whatever order readdir returns.
 */
#include "config.h"

#include "discover.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int discover_fn_cmp(const void *a, const void *b)
{
    return strcmp(((const struct discover_fn *)a)->name, ((const struct discover_fn *)b)->name);
}

void discover_fn_clear(struct discover_fn *d)
{
    free(d->name);
    free(d->dir);
    free(d->handler);
    free(d->handler_so);
    free(d->disabled);
    fnconf_clear(&d->set);
    memset(d, 0, sizeof(*d));
}

int discover_fn_disable(struct discover_fn *d, const char *reason)
{
    d->set.min_instances = 0;
    if (d->disabled)
        return 0;
    d->disabled = strdup(reason);
    return d->disabled ? 0 : -1;
}

void discover_list_free(struct discover_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        discover_fn_clear(&l->fns[i]);
    free(l->fns);
    free(l);
}

const struct discover_fn *discover_list_find(const struct discover_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->fns[i].name, name) == 0)
            return &l->fns[i];
    }
    return NULL;
}

bool discover_fn_same_binary(const struct discover_fn *a, const struct discover_fn *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->so_ino == b->so_ino && a->so_mtime.tv_sec == b->so_mtime.tv_sec &&
           a->so_mtime.tv_nsec == b->so_mtime.tv_nsec;
}

/* handler.so next to the handler (whose stat is HST): used when it is a
 * regular file at least as new as the handler, so that a rebuilt handler
 * with a stale shared object beside it runs as built.  Returns -1 only when
 * out of memory. */
static int discover_fn_so(const struct conf *c, const char *name, const struct stat *hst,
                          struct discover_fn *d)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s/handler.so", c->gw.functions_dir, name);
    if (stat(path, &st) < 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        log_warnx("[fn %s] %s is not a regular file: every instance is an exec of the handler",
                  name, path);
        return 0;
    }
    if (st.st_mtim.tv_sec < hst->st_mtim.tv_sec ||
        (st.st_mtim.tv_sec == hst->st_mtim.tv_sec && st.st_mtim.tv_nsec < hst->st_mtim.tv_nsec)) {
        log_warnx("[fn %s] %s is older than the handler: not used (rebuild it)", name, path);
        return 0;
    }
    d->handler_so = strdup(path);
    if (!d->handler_so)
        return -1;
    d->so_ino = st.st_ino;
    d->so_mtime = st.st_mtim;
    return 0;
}

/* Fills D for NAME; returns 1 if it is a function, 0 if skipped (logged),
 * -1 on a configuration error (ERR set). */
static int discover_fn_load(const struct conf *c, const char *name, struct discover_fn *d,
                            char *err, size_t errlen)
{
    char path[4096], reason[4096 + CONF_ERR_MAX] = "";
    struct stat st;

    memset(d, 0, sizeof(*d));
    if (!confval_name_valid(name)) {
        log_warnx("functions_dir: skipping '%s': not a valid function name "
                  "([a-z0-9][a-z0-9_-]{0,63})",
                  name);
        return 0;
    }
    snprintf(path, sizeof(path), "%s/%s/handler", c->gw.functions_dir, name);
    if (stat(path, &st) < 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            /* There may well be a handler the gateway cannot see: a
             * function that answers why beats one that is not there. */
            snprintf(reason, sizeof(reason), "%s: %s", path, strerror(errno));
            memset(&st, 0, sizeof(st));
            goto found;
        }
        log_warnx("functions_dir: skipping '%s': no %s (%s)", name, path, strerror(errno));
        return 0;
    }
    if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0 || !(st.st_mode & 0111)) {
        log_warnx("functions_dir: skipping '%s': %s is not an executable file", name, path);
        return 0;
    }
found:
    d->name = strdup(name);
    d->handler = strdup(path);
    snprintf(path, sizeof(path), "%s/%s", c->gw.functions_dir, name);
    d->dir = strdup(path);
    if (!d->name || !d->handler || !d->dir) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->size = st.st_size;
    d->mtime = st.st_mtim;
    if (!reason[0] && discover_fn_so(c, name, &st, d) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/%s/function.conf", c->gw.functions_dir, name);
    if (!reason[0] && fnconf_load(c, name, path, &d->set, reason, sizeof(reason)) == 0)
        return 1;
    /* Disabled: fngate.conf's settings alone, already validated with it. */
    if (fnconf_load(c, name, NULL, &d->set, err, errlen) < 0)
        goto fail;
    if (discover_fn_disable(d, reason) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return 1;
fail:
    discover_fn_clear(d);
    return -1;
}

struct discover_list *discover_functions(const struct conf *c, char *err, size_t errlen)
{
    struct discover_list *l = calloc(1, sizeof(*l));
    size_t cap = 0;
    DIR *dir = NULL;
    struct dirent *de;

    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    dir = opendir(c->gw.functions_dir);
    if (!dir) {
        conf_gw_err(c, "functions_dir", err, errlen, "functions_dir %s: %s", c->gw.functions_dir,
                    strerror(errno));
        goto fail;
    }
    while ((de = readdir(dir)) != NULL) {
        struct discover_fn d;
        int r;

        if (de->d_name[0] == '.')
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
            continue;
        r = discover_fn_load(c, de->d_name, &d, err, errlen);
        if (r < 0)
            goto fail;
        if (r == 0)
            continue;
        if (l->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct discover_fn *n = realloc(l->fns, ncap * sizeof(*n));
            if (!n) {
                discover_fn_clear(&d);
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            l->fns = n;
            cap = ncap;
        }
        l->fns[l->n++] = d;
    }
    closedir(dir);
    dir = NULL;
    if (l->n > 1)
        qsort(l->fns, l->n, sizeof(*l->fns), discover_fn_cmp);
    for (size_t i = 0; i < c->n_sections; i++) {
        if (!discover_list_find(l, c->sections[i].name))
            log_warnx("%s:%d: section [%s] names no function in %s", c->path, c->sections[i].line,
                      c->sections[i].name, c->gw.functions_dir);
    }
    return l;
fail:
    if (dir)
        closedir(dir);
    discover_list_free(l);
    return NULL;
}
