/*
 * Name/value pairs the SDK keeps for a request's arguments and headers and a
 * response's headers: one growing array per list, reused from one request to
 * the next (cleared, not freed), so a warm instance allocates only the
 * strings.  Internal to libfngate.
 */
#ifndef FN_PAIRS_H
#define FN_PAIRS_H

#include <stddef.h>

struct fn_pair {
    char *name;
    char *value;
};

struct fn_pairs {
    struct fn_pair *v;
    size_t n, cap;
};

/* Appends NAME and VALUE (malloc'ed; the list takes both, also on error).
 * Returns 0, or -1 when out of memory (the caller still frees them). */
int fn_pairs_add(struct fn_pairs *p, char *name, char *value);
/* Frees the strings and keeps the array for the next request. */
void fn_pairs_clear(struct fn_pairs *p);
/* Frees the strings and the array. */
void fn_pairs_free(struct fn_pairs *p);

#endif
