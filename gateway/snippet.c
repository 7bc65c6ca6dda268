/*
 * `fngate nginx`: nginx/fngate.inc rewritten for one gateway.  The include
 * reads the socket folder from $fngate_socket_dir, one variable per server
 * block, and serves /fn/; two users' gateways in one server block need two
 * socket folders, two prefixes and distinct named locations.  So the text
 * the build embedded is rewritten line by line: $fngate_socket_dir becomes
 * the gateway's socket_dir, /fn/ in location paths and SCRIPT_NAME becomes
 * the prefix, every @fngate_ name gets a tag made from the prefix, and the
 * /_fngate/ status locations (one per server block, loopback only) are left
 * out: `fngate status -c FILE` reads the same status socket.  Rewriting the
 * real include keeps the snippet what the include is, edit for edit.
 *
 * The same rewriting makes the fast path, `fngate nginx --locations`: one
 * `location = /fn/<name>` per discovered function whose body is the
 * include's name-regex location's, line for line, with the name, an empty
 * FNGATE_PATH and a constant socket written in for what the regex captured
 * (a variable fastcgi_pass costs nginx a URL parse and a peer set on every
 * request).  A prefix snippet carries the same locations inline.
 */
#include "config.h"

#include "snippet.h"

#include "conf.h"
#include "discover.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNIPPET_TAG_MAX 128

/* A prefix is a URI path: "/", then segments of [A-Za-z0-9._~-], no
 * trailing slash, no empty, "." or ".." segment. */
static bool snippet_prefix_valid(const char *p)
{
    size_t n = strlen(p);

    if (n < 2 || n > 100 || p[0] != '/' || p[n - 1] == '/')
        return false;
    for (const char *s = p; *s; s++) {
        if (*s == '/') {
            if (s[1] == '/' || (s[1] == '.' && (s[2] == '/' || s[2] == '\0')) ||
                (s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0')))
                return false;
        } else if (!isalnum((unsigned char)*s) && !strchr("._~-", *s)) {
            return false;
        }
    }
    return true;
}

/* socket_dir goes into nginx's configuration unquoted. */
static bool snippet_path_plain(const char *p)
{
    for (; *p; p++) {
        if (isspace((unsigned char)*p) || strchr("\"';{}$#\\", *p) || !isprint((unsigned char)*p))
            return false;
    }
    return true;
}

/* A function's name as discover.c finds them: [a-z0-9][a-z0-9_-]{0,63}.  The
 * generator checks again: a name goes into a location path and a socket
 * path. */
static bool snippet_name_valid(const char *n)
{
    size_t len = strlen(n);

    if (len < 1 || len > 64 || !(islower((unsigned char)n[0]) || isdigit((unsigned char)n[0])))
        return false;
    for (; *n; n++) {
        if (!islower((unsigned char)*n) && !isdigit((unsigned char)*n) && *n != '_' && *n != '-')
            return false;
    }
    return true;
}

/* A constant fastcgi_pass can take any socket_dir nginx can parse: quoted
 * when it has a character that ends or comments a bare word.  `$` would make
 * it a variable (nginx has no escape for it) and control characters break
 * the line: refused. */
static bool snippet_path_quotable(const char *p)
{
    for (; *p; p++) {
        if (*p == '$' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

static bool snippet_path_needs_quotes(const char *p)
{
    for (; *p; p++) {
        if (strchr(" \"';{}#\\", *p) || (unsigned char)*p >= 0x80)
            return true;
    }
    return false;
}

/* Writes LINE (LEN bytes) with every FROM replaced by TO.  A FROM that is a
 * variable ("$name") matches only whole variable names. */
static void snippet_replace(FILE *out, const char *line, size_t len, const char *from,
                            const char *to)
{
    size_t fl = strlen(from);
    const char *end = line + len;
    bool var = from[0] == '$';

    while (line < end) {
        const char *hit = memmem(line, (size_t)(end - line), from, fl);
        if (!hit) {
            fwrite(line, 1, (size_t)(end - line), out);
            return;
        }
        if (var && hit + fl < end && (isalnum((unsigned char)hit[fl]) || hit[fl] == '_')) {
            fwrite(line, 1, (size_t)(hit + fl - line), out);
            line = hit + fl;
            continue;
        }
        fwrite(line, 1, (size_t)(hit - line), out);
        fputs(to, out);
        line = hit + fl;
    }
}

/* *BUF with every FROM replaced by TO; *BUF is replaced (freed) on success. */
static int snippet_sub(char **buf, const char *from, const char *to)
{
    char *next = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&next, &n);

    if (!m)
        return -1;
    snippet_replace(m, *buf, strlen(*buf), from, to);
    if (fclose(m) != 0) {
        free(next);
        return -1;
    }
    free(*buf);
    *buf = next;
    return 0;
}

/* The rewrites of one line, in order.  Returns a new string (caller frees). */
static char *snippet_line(const char *line, size_t len, const char *socket_dir, const char *prefix,
                          const char *tag)
{
    char named[SNIPPET_TAG_MAX + 16], script[128], regex[128], loc[128], exact[128];
    char *buf;
    const char *p = line;

    snprintf(named, sizeof(named), "@fngate%s_", tag);
    snprintf(script, sizeof(script), "SCRIPT_NAME %s/", prefix);
    snprintf(regex, sizeof(regex), "\"^%s/", prefix);
    buf = strndup(line, len);
    if (!buf)
        return NULL;
    if (snippet_sub(&buf, "$fngate_socket_dir", socket_dir) < 0 ||
        snippet_sub(&buf, "@fngate_", named) < 0 ||
        snippet_sub(&buf, "SCRIPT_NAME /fn/", script) < 0 ||
        /* the name regex, in its location and in the error path's `if`s */
        snippet_sub(&buf, "\"^/fn/", regex) < 0)
        goto fail;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "location ", 9) == 0) {
        /* "^~ /fn/ {" and "= /fn {" (the regex's "^/fn/ is above). */
        snprintf(loc, sizeof(loc), " %s/ ", prefix);
        snprintf(exact, sizeof(exact), " %s {", prefix);
        if (snippet_sub(&buf, " /fn/ ", loc) < 0 || snippet_sub(&buf, " /fn {", exact) < 0)
            goto fail;
    }
    return buf;
fail:
    free(buf);
    return NULL;
}

/* The body of the include's name-regex location: the lines between its
 * `location ~ "^/fn/(?<fngate_fn>` line and its closing brace. */
static int snippet_regex_body(const char **start, const char **end)
{
    const char *s = strstr(snippet_fngate_inc, "location ~ \"^/fn/(?<fngate_fn>");
    int depth = 1;

    if (!s || !(s = strchr(s, '\n')))
        return -1;
    *start = ++s;
    for (; *s; s++) {
        if (*s == '#') {
            s = strchr(s, '\n');
            if (!s)
                return -1;
        } else if (*s == '{') {
            depth++;
        } else if (*s == '}' && --depth == 0) {
            while (s > *start && s[-1] != '\n')
                s--;
            *end = s;
            return 0;
        }
    }
    return -1;
}

/* One line of an exact location: the regex location's LINE with the
 * function's constants in place of what the regex captured (name, empty
 * path), then the snippet's own rewrites.  With QUOTE, a directive whose
 * argument names the socket folder gets that argument in double quotes. */
static char *snippet_exact_line(const char *line, size_t len, const char *name,
                                const char *socket_dir, bool quote, const char *prefix,
                                const char *tag)
{
    char *buf = strndup(line, len), *out = NULL, *esc = NULL;
    size_t n = 0;
    FILE *m;

    if (!buf)
        return NULL;
    if (snippet_sub(&buf, "$fngate_fn", name) < 0 || snippet_sub(&buf, "$fngate_path", "\"\"") < 0)
        goto done;
    if (quote && strstr(buf, "$fngate_socket_dir")) {
        /* `    directive ARG;` -> `    directive "ARG";`, ARG escaped */
        char *arg = buf + strspn(buf, " \t");
        char *semi = strrchr(buf, ';');

        arg += strcspn(arg, " \t");
        arg += strspn(arg, " \t");
        if (!semi || semi < arg)
            goto done;
        m = open_memstream(&esc, &n);
        if (!m)
            goto done;
        for (const char *c = socket_dir; *c; c++) {
            if (*c == '"' || *c == '\\')
                fputc('\\', m);
            fputc(*c, m);
        }
        if (fclose(m) != 0)
            goto done;
        m = open_memstream(&out, &n);
        if (!m)
            goto done;
        fprintf(m, "%.*s\"%.*s\";%s", (int)(arg - buf), buf, (int)(semi - arg), arg, semi + 1);
        if (fclose(m) != 0) {
            free(out);
            out = NULL;
            goto done;
        }
        free(buf);
        buf = out;
        out = snippet_line(buf, strlen(buf), esc, prefix, tag);
    } else {
        out = snippet_line(buf, strlen(buf), socket_dir, prefix, tag);
    }
done:
    free(esc);
    free(buf);
    return out;
}

/* The exact locations, one per name, each line indented by INDENT. */
static int snippet_exact(FILE *out, const char *indent, const char *socket_dir, const char *prefix,
                         const char *tag, const char *const *names, size_t n, char *err,
                         size_t errlen)
{
    const char *start, *end;
    bool quote = snippet_path_needs_quotes(socket_dir);

    if (snippet_regex_body(&start, &end) < 0) {
        snprintf(err, errlen, "the built-in fngate.inc has no name-regex location");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%slocation = %s/%s {\n", indent, prefix, names[i]);
        for (const char *s = start; s < end;) {
            const char *eol = memchr(s, '\n', (size_t)(end - s));
            size_t len = eol ? (size_t)(eol - s) : (size_t)(end - s);
            const char *p = s + strspn(s, " \t");
            char *line;

            if (p < s + len && *p != '#') {
                /* the regex location's body is 8 deep in the include, 4 here */
                const char *body = len > 4 && strncmp(s, "    ", 4) == 0 ? s + 4 : s;
                line = snippet_exact_line(body, len - (size_t)(body - s), names[i], socket_dir,
                                          quote, prefix, tag);
                if (!line) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
                fprintf(out, "%s%s\n", indent, line);
                free(line);
            }
            s += len + (eol ? 1 : 0);
        }
        fprintf(out, "%s}\n", indent);
    }
    return 0;
}

static int snippet_names_check(const char *const *names, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!snippet_name_valid(names[i])) {
            snprintf(err, errlen,
                     "function name '%.80s': not a function name ([a-z0-9][a-z0-9_-]{0,63}); "
                     "no location written",
                     names[i]);
            return -1;
        }
    }
    return 0;
}

int snippet_write_locations(FILE *out, const char *socket_dir, const char *const *names, size_t n,
                            const char *conf_path, char *err, size_t errlen)
{
    if (snippet_names_check(names, n, err, errlen) < 0)
        return -1;
    if (!snippet_path_quotable(socket_dir)) {
        snprintf(err, errlen,
                 "%s: socket_dir '%s' has characters nginx's configuration cannot take ($ or a "
                 "control character); the include's regex location still serves every function",
                 conf_path, socket_dir);
        return -1;
    }
    fprintf(out,
            "# Made by `fngate nginx --locations` (fngate %s) for the gateway of\n"
            "#   %s\n"
            "# (socket_dir %s): one exact location per function it has now, with\n"
            "# fngate.inc's own location body and a constant socket.  fngate.inc\n"
            "# includes it (`include fngate-functions*.conf;` inside `location ^~ /fn/`).\n"
            "# A function added later is served by the include's regex location, more\n"
            "# slowly, until this file is made again and nginx reloaded:\n"
            "#   fngate nginx --locations -c %s -o FILE && nginx -s reload\n"
            "# %zu function%s.\n",
            PACKAGE_VERSION, conf_path, socket_dir, conf_path, n, n == 1 ? "" : "s");
    if (snippet_exact(out, "", socket_dir, "/fn", "", names, n, err, errlen) < 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}

int snippet_write(FILE *out, const char *socket_dir, const char *prefix, const char *const *names,
                  size_t n, const char *conf_path, char *err, size_t errlen)
{
    char tag[SNIPPET_TAG_MAX];
    const char *s = snippet_fngate_inc;
    int depth = 0;
    bool skipping = false, blank = true;
    size_t t = 0;

    if (!snippet_prefix_valid(prefix)) {
        snprintf(err, errlen,
                 "--prefix '%s': must be a path like /fn or /alice/fn (letters, digits, "
                 "._~-, no trailing slash)",
                 prefix);
        return -1;
    }
    if (!snippet_path_plain(socket_dir)) {
        snprintf(err, errlen,
                 "%s: socket_dir '%s' has characters nginx's configuration cannot take "
                 "unquoted (space, quote, ;, {, }, $, #, \\)",
                 conf_path, socket_dir);
        return -1;
    }
    if (snippet_names_check(names, n, err, errlen) < 0)
        return -1;
    for (const char *c = prefix; *c && t + 1 < sizeof(tag); c++)
        tag[t++] = isalnum((unsigned char)*c) ? *c : '_';
    tag[t] = '\0';

    fprintf(out,
            "# Made by `fngate nginx` (fngate %s) from fngate.inc for the gateway of\n"
            "#   %s\n"
            "# socket_dir %s, functions at %s/<name>.\n"
            "# Put it inside a server block; several gateways' snippets, each with its\n"
            "# own --prefix, can share one.  Status: fngate status -c FILE.\n"
            "# Its %zu exact location%s: the functions there were when it was made;\n"
            "# one added since is served by the name regex, more slowly, until the\n"
            "# snippet is made again and nginx reloaded.\n",
            PACKAGE_VERSION, conf_path, socket_dir, prefix, n, n == 1 ? "" : "s");
    while (*s) {
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        const char *p = s;
        bool comment, empty;
        char *line;

        while (p < s + len && (*p == ' ' || *p == '\t'))
            p++;
        comment = p < s + len && *p == '#';
        empty = p == s + len;
        /* The status locations: top-level ones naming /_fngate or @fngate_status. */
        if (depth == 0 && !skipping && strncmp(p, "location ", 9) == 0 &&
            (memmem(p, len - (size_t)(p - s), "_fngate", 7) != NULL ||
             memmem(p, len - (size_t)(p - s), "@fngate_status", 14) != NULL))
            skipping = true;
        if (!comment) {
            for (const char *q = p; q < s + len; q++) {
                if (*q == '#')
                    break;
                if (*q == '{')
                    depth++;
                else if (*q == '}')
                    depth--;
            }
        }
        if (skipping) {
            if (depth == 0 && !comment && !empty)
                skipping = false;
        } else if (!comment && strncmp(p, "include fngate-functions", 24) == 0) {
            /* The locations file's place: its locations written in. */
            char indent[64];
            size_t il = (size_t)(p - s) < sizeof(indent) ? (size_t)(p - s) : sizeof(indent) - 1;

            memcpy(indent, s, il);
            indent[il] = '\0';
            if (snippet_exact(out, indent, socket_dir, prefix, tag, names, n, err, errlen) < 0)
                return -1;
            blank = false;
        } else if (!comment && !(empty && blank)) {
            line = snippet_line(s, len, socket_dir, prefix, tag);
            if (!line) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            fprintf(out, "%s\n", line);
            free(line);
            blank = empty;
        }
        s += len + (eol ? 1 : 0);
    }
    return fflush(out) == 0 ? 0 : -1;
}

/* Writes what WRITE makes to PATH through a temporary file in the same
 * folder and a rename: an nginx reload reads the old file or the new one,
 * never half of one.  The temporary name starts with a dot, so that no
 * `include fngate-functions*.conf` glob can pick it up. */
static int snippet_write_file(const char *path, int (*write)(FILE *, void *), void *arg, char *err,
                              size_t errlen)
{
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    int fd = -1;
    FILE *f = NULL;

    if (slash)
        snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
    else
        snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", path);
    if (strlen(tmp) + 1 >= sizeof(tmp)) {
        snprintf(err, errlen, "-o %s: path too long", path);
        return -1;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "-o %s: cannot create a file next to it: %s", path, strerror(errno));
        return -1;
    }
    if (fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
        snprintf(err, errlen, "-o %s: %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (write(f, arg) < 0)
        goto fail;
    if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
        snprintf(err, errlen, "-o %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL;
        snprintf(err, errlen, "-o %s: %s", tmp, strerror(errno));
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "-o %s: %s", path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

static void snippet_usage(FILE *out, const char *default_conf)
{
    fprintf(out,
            "usage: fngate nginx [-c FILE] [--prefix PREFIX] [-o PATH]\n"
            "       fngate nginx --locations [-c FILE] [-o PATH]\n"
            "  print the nginx locations serving FILE's gateway at PREFIX/<name>\n"
            "  (default /fn), for its socket_dir, with an exact location for each\n"
            "  function it has now; FILE defaults to %s.\n"
            "  --locations: only those exact locations, for nginx/fngate.inc's\n"
            "  `include fngate-functions*.conf;` (write them next to the nginx.conf\n"
            "  that includes fngate.inc, e.g. -o /etc/nginx/fngate-functions.conf).\n"
            "  -o PATH: write PATH atomically (a temporary file, then a rename).\n",
            default_conf);
}

/* What one run writes, for snippet_write_file. */
struct snippet_job {
    bool locations;
    const char *socket_dir, *prefix, *conf_path;
    const char *const *names;
    size_t n;
    char *err;
    size_t errlen;
};

static int snippet_job_write(FILE *out, void *arg)
{
    struct snippet_job *j = arg;

    if (j->locations)
        return snippet_write_locations(out, j->socket_dir, j->names, j->n, j->conf_path, j->err,
                                       j->errlen);
    return snippet_write(out, j->socket_dir, j->prefix, j->names, j->n, j->conf_path, j->err,
                         j->errlen);
}

int snippet_main(int argc, char **argv, const char *default_conf)
{
    static const struct option opts[] = {{"prefix", required_argument, NULL, 'p'},
                                         {"locations", no_argument, NULL, 'l'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = default_conf, *prefix = NULL, *output = NULL;
    char err[CONF_ERR_MAX + 256] = "";
    struct conf *c = NULL;
    struct discover_list *l = NULL;
    const char **names = NULL;
    bool locations = false;
    int ch, rc = -1;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:p:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'l':
            locations = true;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            snippet_usage(stdout, default_conf);
            return 0;
        default:
            snippet_usage(stderr, default_conf);
            return 2;
        }
    }
    if (optind != argc) {
        snippet_usage(stderr, default_conf);
        return 2;
    }
    if (locations && prefix) {
        fprintf(stderr, "fngate nginx: --locations is for nginx/fngate.inc at /fn; a --prefix "
                        "snippet has its exact locations written in\n");
        return 2;
    }
    c = conf_load(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    l = discover_functions(c, err, sizeof(err));
    if (!l)
        goto done;
    names = calloc(l->n + 1, sizeof(*names));
    if (!names) {
        snprintf(err, sizeof(err), "out of memory");
        goto done;
    }
    for (size_t i = 0; i < l->n; i++)
        names[i] = l->fns[i].name;
    struct snippet_job job = {
        locations, c->gw.socket_dir, prefix ? prefix : "/fn", path, names, l->n, err, sizeof(err)};
    if (output)
        rc = snippet_write_file(output, snippet_job_write, &job, err, sizeof(err));
    else
        rc = snippet_job_write(stdout, &job);
done:
    if (rc < 0)
        fprintf(stderr, "fngate nginx: %s\n", err[0] ? err : strerror(errno));
    free(names);
    discover_list_free(l);
    conf_free(c);
    return rc < 0 ? 1 : 0;
}
