/*
 * The ceilings' semantics.  Paths compare by whole components ("/srv/a" is
 * inside "/srv" but not inside "/sr"); fnconf.c refuses relative paths and
 * '..' components in path keys, so a textual comparison is the real one.
 */
#include "config.h"

#include "ceiling.h"

#include <string.h>

static const struct {
    const char *key;
    enum ceiling_kind kind;
} ceiling_table[] = {
    // clang-format off
    {"max_instances", CEILING_MAX},
    {"min_instances", CEILING_MAX},
    {"memory_limit", CEILING_MAX0},
    {"open_files", CEILING_MAX},
    {"request_timeout", CEILING_MAX0},
    {"idle_timeout", CEILING_MAX},
    {"queue_timeout", CEILING_MAX0},
    {"statement_timeout", CEILING_MAX0},
    {"max_body", CEILING_MAX0},
    {"queue_size", CEILING_MAX},
    {"max_requests", CEILING_MAX0},
    /* Without a [limits] entry a function.conf may not relax the sandbox
     * at all (fnconf.c); with one, these say how far. */
    {"sandbox", CEILING_ON},
    {"sandbox_read", CEILING_PATHS},
    {"sandbox_write", CEILING_PATHS},
    // clang-format on
};

#define CEILING_N (sizeof(ceiling_table) / sizeof(ceiling_table[0]))

enum ceiling_kind ceiling_kind(const char *key)
{
    for (size_t i = 0; key && i < CEILING_N; i++) {
        if (strcmp(ceiling_table[i].key, key) == 0)
            return ceiling_table[i].kind;
    }
    return CEILING_NONE;
}

const char *ceiling_keys(void)
{
    static char buf[512];

    if (!buf[0]) {
        for (size_t i = 0; i < CEILING_N; i++) {
            if (i)
                strcat(buf, ", ");
            strcat(buf, ceiling_table[i].key);
        }
    }
    return buf;
}

bool ceiling_num_exceeds(enum ceiling_kind kind, int64_t value, int64_t limit)
{
    if (kind == CEILING_MAX0) {
        if (limit == 0)
            return false; /* the limit is "none" */
        return value == 0 || value > limit;
    }
    return value > limit;
}

bool ceiling_bool_exceeds(bool value, bool limit)
{
    return limit && !value;
}

/* Whether the N bytes at P name a path inside the N2 bytes at L. */
static bool ceiling_inside(const char *p, size_t n, const char *l, size_t n2)
{
    while (n2 > 1 && l[n2 - 1] == '/')
        n2--;
    if (n2 == 1 && l[0] == '/')
        return true;
    return n >= n2 && memcmp(p, l, n2) == 0 && (n == n2 || p[n2] == '/');
}

bool ceiling_paths_exceed(const char *value, const char *limit, const char **bad, size_t *badlen)
{
    const char *w = value ? value : "";

    for (w += strspn(w, " \t"); *w;) {
        size_t n = strcspn(w, " \t");
        const char *l = limit ? limit : "";
        bool ok = false;

        for (l += strspn(l, " \t"); *l && !ok;) {
            size_t n2 = strcspn(l, " \t");
            ok = ceiling_inside(w, n, l, n2);
            l += n2;
            l += strspn(l, " \t");
        }
        if (!ok) {
            *bad = w;
            *badlen = n;
            return true;
        }
        w += n;
        w += strspn(w, " \t");
    }
    return false;
}
