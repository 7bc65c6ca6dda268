/*
 * Reading one INI file (fngate.conf or function.conf) line by line.  inih
 * does the key = value splitting and comment handling, but lines reach it
 * through our own reader so that we count lines, see every section header in
 * full (inih truncates section names to 49 characters, shorter than a
 * function name may be), refuse over-long lines instead of letting inih split
 * them silently, and strip indentation so inih never takes an indented line
 * for a multi-line continuation.  Each key goes to the handler of the module
 * that owns its section, and every error is written "file:line: reason" here,
 * so an operator is always pointed at the line to fix.
 */
#include "config.h"

#include "conf_int.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void confread_verr(char *err, size_t errlen, const char *path, int line, const char *fmt,
                   va_list ap)
{
    int n;

    if (err == NULL || errlen == 0)
        return;
    if (line > 0)
        n = snprintf(err, errlen, "%s:%d: ", path, line);
    else
        n = snprintf(err, errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= errlen)
        return;
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

void confread_err(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    confread_verr(err, errlen, path, line, fmt, ap);
    va_end(ap);
}

/* Records the parser's first error at its current line. */
void confread_perr(struct conf_parser *p, const char *fmt, ...)
{
    va_list ap;

    if (p->report) {
        char msg[CONF_ERR_MAX];
        va_start(ap, fmt);
        confread_verr(msg, sizeof(msg), p->path, p->lineno, fmt, ap);
        va_end(ap);
        p->report(p->report_arg, msg);
        p->n_reported++;
        return;
    }
    if (p->err_line != 0)
        return;
    p->err_line = p->lineno > 0 ? p->lineno : -1;
    va_start(ap, fmt);
    confread_verr(p->err, p->errlen, p->path, p->lineno, fmt, ap);
    va_end(ap);
}

static void confread_rstrip(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* The home of the user fngate runs as: $HOME, else the password database. */
static const char *confread_home(void)
{
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (home != NULL && home[0] == '/')
        return home;
    pw = getpwuid(geteuid());
    return pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

/* Expands a leading "~", "~/", "$HOME" or "${HOME}" in path KEY's VALUE, so
 * that a shared-hosting configuration can say socket_dir = ~/fngate/sock as
 * a shell would.  Anything else that looks like an expansion (~user, other
 * variables) is refused rather than taken literally: a folder named "~"
 * under the config's directory is never what was meant.  Returns a malloc'd
 * string, or NULL with the error reported. */
static char *confread_expand_home(struct conf_parser *p, const char *key, const char *value)
{
    const char *rest = NULL, *home, *dollar;
    char *out;

    if (value[0] == '~') {
        if (value[1] != '\0' && value[1] != '/') {
            confread_perr(p,
                          "%s: '%s': ~user is not expanded (only ~/ and $HOME are): write the "
                          "path out",
                          key, value);
            return NULL;
        }
        rest = value + 1;
    } else if (strncmp(value, "$HOME", 5) == 0 && (value[5] == '\0' || value[5] == '/')) {
        rest = value + 5;
    } else if (strncmp(value, "${HOME}", 7) == 0 && (value[7] == '\0' || value[7] == '/')) {
        rest = value + 7;
    }
    dollar = strchr(rest != NULL ? rest : value, '$');
    if (dollar != NULL) {
        confread_perr(p, "%s: '%s': only a leading ~ or $HOME is expanded, not '%s'", key, value,
                      dollar);
        return NULL;
    }
    if (rest == NULL)
        return strdup(value);
    home = confread_home();
    if (home == NULL) {
        confread_perr(p,
                      "%s: '%s': cannot expand ~: HOME is not set and uid %d has no home "
                      "directory",
                      key, value, (int)geteuid());
        return NULL;
    }
    if (asprintf(&out, "%s%s", home, rest) < 0)
        return NULL;
    return out;
}

/* Makes VALUE absolute against the config file's directory, dropping "./"
 * prefixes and trailing slashes so paths compare and print cleanly. */
static char *confread_abs_path(struct conf_parser *p, const char *value)
{
    char *out, *dir;
    size_t n;

    if (value[0] == '/') {
        out = strdup(value);
    } else {
        if (p->confdir == NULL) {
            dir = strdup(p->path);
            if (dir == NULL)
                return NULL;
            char *slash = strrchr(dir, '/');
            if (slash == NULL)
                strcpy(dir, ".");
            else if (slash == dir)
                slash[1] = '\0';
            else
                *slash = '\0';
            p->confdir = realpath(dir, NULL);
            free(dir);
            if (p->confdir == NULL)
                return NULL;
        }
        while (value[0] == '.' && value[1] == '/') {
            value += 2;
            while (*value == '/')
                value++;
        }
        if (strcmp(value, ".") == 0 || *value == '\0')
            value = "";
        n = strlen(p->confdir) + 1 + strlen(value) + 1;
        out = malloc(n);
        if (out == NULL)
            return NULL;
        if (*value == '\0')
            snprintf(out, n, "%s", p->confdir);
        else if (strcmp(p->confdir, "/") == 0)
            snprintf(out, n, "/%s", value);
        else
            snprintf(out, n, "%s/%s", p->confdir, value);
    }
    if (out == NULL)
        return NULL;
    n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

char *confread_path(struct conf_parser *p, const char *key, const char *value)
{
    char *exp = confread_expand_home(p, key, value);
    char *out;

    if (exp == NULL)
        return NULL;
    out = confread_abs_path(p, exp);
    if (out == NULL)
        confread_perr(p, "%s: cannot resolve '%s': %s", key, exp, strerror(errno));
    free(exp);
    return out;
}

/* Handles a "[...]" line before inih sees it; LINE is already stripped. */
static void confread_section_header(struct conf_parser *p, char *line)
{
    /* fngate.conf's own sections, each allowed once. */
    const struct {
        const char *name;
        enum conf_sect sect;
        int *line;
    } sections[] = {
        {"gateway", CONF_S_GATEWAY, &p->gateway_line},
        {"limits", CONF_S_LIMITS, &p->limits_line},
        {"defaults", CONF_S_DEFAULTS, &p->defaults_line},
    };
    size_t fixed;
    char *end = strchr(line, ']');
    const char *rest;
    const char *name;
    struct conf *c = p->c;

    if (end == NULL) {
        confread_perr(p, "missing ']' in section header '%s'", line);
        return;
    }
    rest = end + 1;
    rest += strspn(rest, " \t");
    if (*rest != '\0' && *rest != ';' && *rest != '#') {
        confread_perr(p, "unexpected text after section header '%.*s'", (int)(end - line + 1),
                      line);
        return;
    }
    *end = '\0';
    name = line + 1;

    if (p->fnfile) {
        if (strcmp(name, "function") != 0) {
            confread_perr(p,
                          "unexpected section [%s] (function.conf takes keys at the top or under "
                          "[function])",
                          name);
        } else if (p->fnfile_line != 0) {
            confread_perr(p, "duplicate section [function] (first at line %d)", p->fnfile_line);
        } else {
            p->fnfile_line = p->lineno;
            p->sect = CONF_S_FNFILE;
            snprintf(p->sect_name, sizeof(p->sect_name), "function");
        }
        goto out;
    }

    for (fixed = 0; fixed < sizeof(sections) / sizeof(sections[0]); fixed++)
        if (strcmp(name, sections[fixed].name) == 0)
            break;
    if (fixed < sizeof(sections) / sizeof(sections[0])) {
        if (*sections[fixed].line != 0) {
            confread_perr(p, "duplicate section [%s] (first at line %d)", name,
                          *sections[fixed].line);
            goto out;
        }
        *sections[fixed].line = p->lineno;
        p->sect = sections[fixed].sect;
    } else if (!confval_name_valid(name)) {
        confread_perr(
            p, "invalid section name '[%s]' (function names are [a-z0-9][a-z0-9_-]{0,63})", name);
        goto out;
    } else {
        const struct conf_section *dup = conf_section_find(c, name);
        struct conf_section *secs;
        char *copy;

        if (dup != NULL) {
            confread_perr(p, "duplicate section [%s] (first at line %d)", name, dup->line);
            goto out;
        }
        copy = strdup(name);
        if (copy == NULL) {
            confread_perr(p, "out of memory");
            goto out;
        }
        secs = realloc(c->sections, (c->n_sections + 1) * sizeof(*secs));
        if (secs == NULL) {
            free(copy);
            confread_perr(p, "out of memory");
            goto out;
        }
        c->sections = secs;
        memset(&secs[c->n_sections], 0, sizeof(secs[0]));
        secs[c->n_sections].name = copy;
        secs[c->n_sections].line = p->lineno;
        p->sect_idx = c->n_sections++;
        p->sect = CONF_S_FUNCTION;
    }
    snprintf(p->sect_name, sizeof(p->sect_name), "%s", name);
out:
    *end = ']';
}

/* inih's reader callback: one line per call, counted, stripped and checked;
 * NULL ends the parse (at EOF or once an error is recorded). */
/* An empty line for inih, in place of one already reported. */
static char *confread_blank(char *str, int num)
{
    if (num < 2)
        return NULL;
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

static char *confread_line(char *str, int num, void *stream)
{
    struct conf_parser *p = stream;
    char *line;
    size_t len;
    ssize_t n;

    if (p->err_line != 0)
        return NULL;
    errno = 0;
    n = getline(&p->buf, &p->cap, p->fp);
    if (n < 0) {
        if (ferror(p->fp)) {
            /* Report without a line number: the failure is the file's, not
             * a line's. */
            int saved = errno;
            p->err_line = -1;
            confread_err(p->err, p->errlen, p->path, 0, "cannot read: %s", strerror(saved));
        }
        return NULL;
    }
    p->lineno++;
    line = p->buf;
    if (p->lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    if (strlen(line) != (size_t)(n - (line - p->buf))) {
        confread_perr(p, "line contains a NUL byte");
        return p->report ? confread_blank(str, num) : NULL;
    }
    line += strspn(line, " \t\r\v\f");
    confread_rstrip(line);
    len = strlen(line);
    /* Room for the line, a newline and the terminator: inih built with a
     * growable buffer keeps reading until it sees the newline. */
    if (num < 2 || len > (size_t)num - 2) {
        confread_perr(p, "line too long (at most %d characters)", num - 2);
        return p->report ? confread_blank(str, num) : NULL;
    }
    if (line[0] == '[') {
        int before = p->n_reported;
        confread_section_header(p, line);
        if (p->err_line != 0)
            return NULL;
        /* Collecting: what inih would call the error again is kept from it,
         * and so are the keys of a section we could not take. */
        p->skip_keys = p->n_reported != before;
        if (p->skip_keys)
            return confread_blank(str, num);
    } else if (p->report && len > 0 && line[0] != ';' && line[0] != '#' &&
               strcspn(line, "=:") == len) {
        confread_perr(p, "syntax error (expected 'key = value', '[section]' or a comment)");
        return confread_blank(str, num);
    }
    memcpy(str, line, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* Explains an unknown key, pointing at the right section when the key
 * exists elsewhere. */
void confread_unknown_key(struct conf_parser *p, const char *key)
{
    bool gw = confkey_find(confkey_gw, confkey_n_gw, key) != NULL;
    bool fn = confkey_find(confkey_fn, confkey_n_fn, key) != NULL || confkey_is_env(key);
    char where[CONF_NAME_MAX + 8] = "";

    if (p->sect != CONF_S_NONE)
        snprintf(where, sizeof(where), " in [%s]", p->sect_name);
    if (gw && p->fnfile)
        confread_perr(p, "unknown key '%s'%s (%s is only valid in [gateway] of fngate.conf)", key,
                      where, key);
    else if (gw)
        confread_perr(p, "unknown key '%s'%s (%s is only valid in [gateway])", key, where, key);
    else if (fn && p->sect == CONF_S_GATEWAY)
        confread_perr(p, "unknown key '%s'%s (function settings go in [defaults] or [<function>])",
                      key, where);
    else
        confread_perr(p, "unknown key '%s'%s", key, where);
}

/* inih's handler: SECTION is ignored because the reader tracks sections in
 * full; returns 0 (error) only to make inih record this line. */
static int confread_handler_impl(void *user, const char *key, const char *value)
{
    struct conf_parser *p = user;

    if (p->err_line != 0 || p->skip_keys)
        return 1;
    if (key == NULL) /* a new-section callback, if inih was built with them */
        return 1;
    if (value == NULL) {
        confread_perr(p, "key '%s' has no value", key);
        return 0;
    }
    if (*key == '\0') {
        confread_perr(p, "missing key name before '='");
        return 0;
    }
    switch (p->sect) {
    case CONF_S_NONE:
        if (p->fnfile)
            return fnconf_key(p, key, value) == 0;
        confread_perr(p, "key '%s' is outside any section", key);
        return 0;
    case CONF_S_GATEWAY:
        return conf_gateway_key(p, key, value) == 0;
    case CONF_S_LIMITS:
        return conflimit_key(p, key, value) == 0;
    case CONF_S_DEFAULTS:
    case CONF_S_FUNCTION:
    case CONF_S_FNFILE:
        return fnconf_key(p, key, value) == 0;
    }
    return 0;
}

#if INI_HANDLER_LINENO
static int confread_handler(void *user, const char *section, const char *key, const char *value,
                            int lineno)
{
    (void)section;
    (void)lineno;
    /* Collecting, errors are reported already: inih must not count them. */
    return confread_handler_impl(user, key, value) || ((struct conf_parser *)user)->report;
}
#else
static int confread_handler(void *user, const char *section, const char *key, const char *value)
{
    (void)section;
    /* Collecting, errors are reported already: inih must not count them. */
    return confread_handler_impl(user, key, value) || ((struct conf_parser *)user)->report;
}
#endif

/* A function.conf is its author's file, read by the supervisor at start and
 * on every reload: a FIFO would block the open (and the whole supervisor)
 * until someone writes, /dev/zero is one endless line, and a sparse or
 * growing file is as long as its author likes.  So it is opened without
 * blocking, must be a regular file, and is read whole, at most
 * CONFREAD_FNFILE_MAX bytes, into *DATA (the caller frees it after the
 * stream).  NULL with errno set, and *WHY when strerror would not say it. */
#define CONFREAD_FNFILE_MAX 65536
static FILE *confread_open_fnfile(const char *path, char **data, const char **why)
{
    struct stat st;
    size_t n = 0;
    ssize_t got;
    FILE *f;
    char self[64];
    /* O_PATH first: opening a device can act (a watchdog's open arms it),
     * so nothing is opened for reading before it is known to be a file. */
    int pfd = open(path, O_PATH | O_CLOEXEC), fd = -1, e;

    *data = NULL;
    *why = NULL;
    if (pfd < 0)
        return NULL;
    if (fstat(pfd, &st) < 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        *why = "not a regular file";
        goto fail;
    }
    if (st.st_size > CONFREAD_FNFILE_MAX) {
        errno = EFBIG;
        *why = "larger than 65536 bytes";
        goto fail;
    }
    /* The very file looked at, not what PATH names by now. */
    snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
    fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        goto fail;
    *data = malloc(CONFREAD_FNFILE_MAX + 1);
    if (!*data)
        goto fail;
    while (n <= CONFREAD_FNFILE_MAX &&
           (got = read(fd, *data + n, CONFREAD_FNFILE_MAX + 1 - n)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto fail;
        n += (size_t)got;
    }
    if (n > CONFREAD_FNFILE_MAX) {
        errno = EFBIG;
        *why = "larger than 65536 bytes";
        goto fail;
    }
    close(fd);
    close(pfd);
    /* An empty file: fmemopen refuses a zero size. */
    f = fmemopen(n ? *data : (char *)"", n ? n : 1, "r");
    if (f && n == 0)
        fgetc(f); /* the one byte of "" read: at EOF */
    if (!f) {
        free(*data);
        *data = NULL;
    }
    return f;
fail:
    e = errno;
    if (fd >= 0)
        close(fd);
    close(pfd);
    free(*data);
    *data = NULL;
    errno = e;
    return NULL;
}

/* Runs inih over P->path.  Returns 0, -1 with the error written, or 1 when
 * the file does not exist and MISSING_OK. */
int confread_file(struct conf_parser *p, bool missing_ok)
{
    struct stat st;
    char *data = NULL;
    const char *why = NULL;
    int r;

    if (p->fnfile)
        p->fp = confread_open_fnfile(p->path, &data, &why);
    else
        p->fp = fopen(p->path, "r");
    if (p->fp == NULL) {
        if (missing_ok && errno == ENOENT)
            return 1;
        confread_err(p->err, p->errlen, p->path, 0, "cannot open: %s", why ? why : strerror(errno));
        return -1;
    }
    /* fopen happily opens a directory; say so instead of "cannot read". */
    if (fstat(fileno(p->fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        confread_err(p->err, p->errlen, p->path, 0, "cannot open: %s", strerror(EISDIR));
        r = -1;
        goto out;
    }
    r = ini_parse_stream(confread_line, p, confread_handler, p);
    if (r == -2) {
        confread_err(p->err, p->errlen, p->path, 0, "out of memory");
        r = -1;
    } else if (r > 0 && (p->err_line <= 0 || r < p->err_line)) {
        /* inih found a line that is neither a key, a header nor a comment
         * before any error of ours. */
        confread_err(p->err, p->errlen, p->path, r,
                     "syntax error (expected 'key = value', '[section]' or a comment)");
        if (p->report) {
            p->report(p->report_arg, p->err);
            p->n_reported++;
        }
        r = -1;
    } else if (p->err_line != 0 || p->n_reported) {
        r = -1;
    } else {
        r = 0;
    }
out:
    if (r < 0 && p->report && p->n_reported == 0)
        p->report(p->report_arg, p->err); /* cannot open, out of memory */
    fclose(p->fp);
    p->fp = NULL;
    free(data);
    return r;
}
