/*
 * The first keyword of SQL text, for refusing what the channel cannot carry
 * (COPY).  Nothing here is a boundary: SQL can build SQL, so what a
 * statement may leave in its session is never judged from its text (the
 * pool resets a session whenever it passes to another function instead).
 */
#include "config.h"

#include "sqlword.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

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
