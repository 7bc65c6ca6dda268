/*
 * Name/value pair lists (fnsdk_pairs.h): the arrays behind a request's
 * arguments and headers and a response's headers.
 */
#include "config.h"

#include "fnsdk_pairs.h"

#include <stdlib.h>

int fnsdk_pairs_add(struct fnsdk_pairs *p, char *name, char *value)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct fnsdk_pair *nv = realloc(p->v, ncap * sizeof(*nv));
        if (!nv)
            return -1;
        p->v = nv;
        p->cap = ncap;
    }
    p->v[p->n].name = name;
    p->v[p->n].value = value;
    p->n++;
    return 0;
}

void fnsdk_pairs_clear(struct fnsdk_pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].value);
    }
    p->n = 0;
}

void fnsdk_pairs_free(struct fnsdk_pairs *p)
{
    fnsdk_pairs_clear(p);
    free(p->v);
    p->v = NULL;
    p->cap = 0;
}
