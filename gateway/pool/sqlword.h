/*
 * The first keyword of a statement, after white space and comments.
 */
#ifndef FNGATE_POOL_SQLWORD_H
#define FNGATE_POOL_SQLWORD_H

#include <stdbool.h>

/* Is SQL's first keyword (after white space and comments) WORD? */
bool sqlword_first_is(const char *sql, const char *word);

#endif
