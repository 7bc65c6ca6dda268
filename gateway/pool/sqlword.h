/*
 * What a statement's first keyword says about it: whether it may leave
 * something in its server session (a setting, a temporary object, a lock, a
 * LISTEN) that the pool must reset before anyone else uses the connection.
 * This is an optimisation only, never a boundary: SQL can build SQL.
 */
#ifndef FNGATE_POOL_SQLWORD_H
#define FNGATE_POOL_SQLWORD_H

#include <stdbool.h>

/* What a statement may leave behind in its server session. */
enum sqlword_touch {
    TOUCH_NONE,  /* nothing: the connection goes straight back */
    TOUCH_RESET, /* settings, temp objects, locks, listens: reset after it */
    TOUCH_DROP,  /* its own prepared statements or cursors: close the connection */
};

enum sqlword_touch sqlword_touch(const char *sql);
/* Is SQL's first keyword (after white space and comments) WORD? */
bool sqlword_first_is(const char *sql, const char *word);

#endif
