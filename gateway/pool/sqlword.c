/*
 * A keyword classifier for SQL text, good enough to skip a session reset
 * after the statements that plainly change nothing.
 */
#include "config.h"

#include "sqlword.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Case-insensitive: does S contain WORD delimited by non-identifier bytes? */
static bool sqlword_has(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = s; (p = strcasestr(p, word)) != NULL; p++) {
        bool before = p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool after = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (before && after)
            return true;
    }
    return false;
}

/* Classifies SQL by what it can leave in the session for the next function
 * to find: a SET (statement_timeout, search_path, role), a temporary
 * object, an advisory lock, a LISTEN.  The extended protocol runs one
 * statement per query, so its first keyword says what it is; functions like
 * set_config() and temporary tables made by CREATE ... AS or SELECT INTO are
 * caught by name.  A statement inside a server-side function that changes
 * the session is not seen (documented). */
/* The first keyword of SQL, after white space and comments. */
static const char *sqlword_start(const char *sql, size_t *len)
{
    const char *p = sql;

    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p = strchr(p, '\n');
            if (!p)
                return "";
        } else if (p[0] == '/' && p[1] == '*') {
            p = strstr(p + 2, "*/");
            if (!p)
                return "";
            p += 2;
        } else {
            break;
        }
    }
    for (*len = 0; isalpha((unsigned char)p[*len]); (*len)++)
        ;
    return p;
}

bool sqlword_first_is(const char *sql, const char *word)
{
    size_t n = 0;
    const char *p = sqlword_start(sql, &n);
    return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

enum sqlword_touch sqlword_touch(const char *sql)
{
    static const char *const reset_first[] = {"set", "reset", "discard", "listen", "load"};
    static const char *const drop_first[] = {"prepare", "deallocate", "declare", "close"};
    size_t n = 0;
    const char *p = sqlword_start(sql, &n);

    for (size_t i = 0; i < sizeof(drop_first) / sizeof(drop_first[0]); i++) {
        if (n == strlen(drop_first[i]) && strncasecmp(p, drop_first[i], n) == 0)
            return TOUCH_DROP;
    }
    for (size_t i = 0; i < sizeof(reset_first) / sizeof(reset_first[0]); i++) {
        if (n == strlen(reset_first[i]) && strncasecmp(p, reset_first[i], n) == 0)
            return TOUCH_RESET;
    }
    if (sqlword_has(sql, "temp") || sqlword_has(sql, "temporary") ||
        strcasestr(sql, "set_config") || strcasestr(sql, "advisory"))
        return TOUCH_RESET;
    return TOUCH_NONE;
}
