/*
 * Name/value pairs the SDK keeps for a request's arguments and headers and a
 * response's headers: one growing array per list, reused from one request to
 * the next (cleared, not freed), so a warm instance allocates only the
 * strings.  Internal to libfngate.
 */
#ifndef FNSDK_PAIRS_H
#define FNSDK_PAIRS_H

#include <stddef.h>

struct fnsdk_pair {
    char *name;
    char *value;
};

struct fnsdk_pairs {
    struct fnsdk_pair *v;
    size_t n, cap;
};

/* Appends NAME and VALUE (malloc'ed; the list takes both, also on error).
 * Returns 0, or -1 when out of memory (the caller still frees them). */
int fnsdk_pairs_add(struct fnsdk_pairs *p, char *name, char *value);
/* Frees the strings and keeps the array for the next request. */
void fnsdk_pairs_clear(struct fnsdk_pairs *p);
/* Frees the strings and the array. */
void fnsdk_pairs_free(struct fnsdk_pairs *p);

#endif
