/*
 * The private interface between the configuration modules (conf.c,
 * confread.c, confkey.c, conflimit.c, fnconf.c).  One reader walks a file
 * while the module owning each section handles its keys, so the reader's
 * state, its "file:line: reason" helpers, the key table and those handlers
 * must see each other; nothing outside those modules includes this header,
 * and it is never installed.
 */
#ifndef FNGATE_CONF_INT_H
#define FNGATE_CONF_INT_H

#include "conf.h"
#include "confval.h"
#include "fnconf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_ENV_PREFIX "env."

enum conf_vtype {
    CONF_V_INT,      /* int field */
    CONF_V_LONG,     /* long field */
    CONF_V_DURATION, /* int64_t milliseconds */
    CONF_V_SIZE,     /* int64_t bytes */
    CONF_V_PATH,     /* char *, non-empty, made absolute */
    CONF_V_STR,      /* char *, non-empty */
    CONF_V_OPTSTR,   /* char *, empty means NULL */
    CONF_V_LOGPATH,  /* char *: "stderr", a path made absolute, or off/empty (NULL) */
    CONF_V_MODE,     /* mode_t, octal */
    CONF_V_LOGLEVEL, /* enum log_level */
    CONF_V_BOOL,     /* bool: on/off, yes/no, true/false, 1/0 */
    CONF_V_PATHS,    /* char *, space-separated absolute paths, empty means NULL */
};

struct conf_key {
    const char *name;
    enum conf_vtype type;
    int64_t min;
    int64_t max;         /* -1: no upper bound beyond the type's */
    int64_t nonzero_min; /* when > 0: 0 is allowed, otherwise at least this */
    const char *range;   /* shown when the value is out of range */
    size_t off;
};

enum conf_sect {
    CONF_S_NONE,     /* before any header */
    CONF_S_GATEWAY,  /* [gateway] */
    CONF_S_DEFAULTS, /* [defaults] */
    CONF_S_LIMITS,   /* [limits] */
    CONF_S_FUNCTION, /* [<name>] in fngate.conf */
    CONF_S_FNFILE,   /* [function] in function.conf */
};

/* Where the last min_instances or max_instances came from, for the error. */
struct conf_where {
    const char *path;
    int line;
};

/* State shared by the line reader and the inih handler of one file. */
struct conf_parser {
    FILE *fp;
    const char *path;
    char *buf; /* getline buffer */
    size_t cap;
    int lineno;
    bool fnfile; /* function.conf rather than fngate.conf */
    enum conf_sect sect;
    char sect_name[CONF_NAME_MAX + 1];
    size_t sect_idx;                              /* index into c->sections for CONF_S_FUNCTION */
    int gateway_line, defaults_line, fnfile_line; /* 0 until seen */
    int limits_line;
    const struct conf *ceilings; /* function.conf: whose [limits] apply */
    int pool_size_line, min_pool_line;
    char *confdir;             /* absolute directory of PATH, resolved on first use */
    struct conf *c;            /* fngate.conf: where values land */
    struct fn_settings *fn;    /* function.conf: the settings being layered */
    struct conf_where *minmax; /* function.conf: last min/max setter */
    /* First error only; once set, everything else is skipped. */
    int err_line; /* 0: none yet; -1: error without a line */
    char *err;
    size_t errlen;
    /* conf_load_report: every error goes to REPORT and parsing goes on
     * (err_line stays 0); the keys of a bad section header are skipped. */
    conf_report_fn *report;
    void *report_arg;
    int n_reported;
    bool skip_keys;
};

enum conf_apply {
    CONF_A_OK,
    CONF_A_UNKNOWN, /* not a function key */
    CONF_A_BAD,     /* WHY says what is wrong */
    CONF_A_NOMEM,
};

/* ---- confkey.c: the known keys --------------------------------------------- */

extern const struct conf_key confkey_fn[]; /* function keys */
extern const size_t confkey_n_fn;
extern const struct conf_key confkey_gw[]; /* [gateway] keys */
extern const size_t confkey_n_gw;
const struct conf_key *confkey_find(const struct conf_key *t, size_t n, const char *name);
bool confkey_is_env(const char *key);
/* Checks an env.KEY name; writes "KEY: reason" into WHY on error. */
int confkey_env_check(const char *key, char *why, size_t whylen);
/* Parses a numeric VALUE for K and checks its range; writes "key: 'value'
 * reason" into WHY on error. */
int confkey_number(const struct conf_key *k, const char *value, int64_t *out, char *why,
                   size_t whylen);
/* Stores V in K's field of BASE (a struct fn_settings or gw_settings). */
void confkey_store(const struct conf_key *k, void *base, int64_t v);

/* ---- confread.c: the reader and its errors --------------------------------- */

/* "PATH:LINE: message" into ERR ("PATH: message" when LINE <= 0). */
void confread_verr(char *err, size_t errlen, const char *path, int line, const char *fmt,
                   va_list ap) __attribute__((format(printf, 5, 0)));
void confread_err(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Records the parser's first error at its current line. */
void confread_perr(struct conf_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Path KEY's VALUE with a leading ~ or $HOME expanded, made absolute
 * against the directory of the file being read; malloc'd, or NULL with the
 * error reported. */
char *confread_path(struct conf_parser *p, const char *key, const char *value);
/* Reports KEY as unknown, pointing at the section where it belongs. */
void confread_unknown_key(struct conf_parser *p, const char *key);
/* Reads P->path.  Returns 0, -1 with the error written, or 1 when the file
 * does not exist and MISSING_OK. */
int confread_file(struct conf_parser *p, bool missing_ok);

/* ---- conf.c: the file's own sections ---------------------------------------- */

int conf_gateway_key(struct conf_parser *p, const char *key, const char *value);
int conf_kv_append(struct conf_kv **kv, size_t *n, const char *key, const char *value, int line);

/* ---- conflimit.c: [limits] -------------------------------------------------- */

int conflimit_key(struct conf_parser *p, const char *key, const char *value);
/* The [limits] entry for KEY in C (the last one), or NULL. */
const struct conf_kv *conflimit_find(const struct conf *c, const char *key);
/* Whether a function.conf's KEY = VALUE (valid) exceeds C's [limits]; if so
 * WHY says by how much and where the limit is. */
bool conflimit_exceeded(const struct conf *c, const char *key, const char *value, char *why,
                        size_t whylen);
/* Brings what exceeds a limit without a [<name>] exception down to it. */
void conflimit_clamp(const struct conf *c, const struct conf_section *sec, struct fn_settings *s);

/* ---- fnconf.c: function keys ------------------------------------------------ */

/* Validates one function key and, when S is non-NULL, applies it.
 * IS_MINMAX tells the caller to remember where min/max were last set. */
enum conf_apply fnconf_apply(struct fn_settings *s, const char *key, const char *value,
                             bool *is_minmax, char *why, size_t whylen);
/* The built-in defaults. */
void fnconf_defaults(struct fn_settings *s);
/* A function key in fngate.conf ([defaults] or [<name>]) or function.conf. */
int fnconf_key(struct conf_parser *p, const char *key, const char *value);

#endif
