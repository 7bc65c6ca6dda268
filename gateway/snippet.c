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
 */
#include "config.h"

#include "snippet.h"

#include "conf.h"

#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

/* Writes LINE (LEN bytes) with every FROM replaced by TO. */
static void snippet_replace(FILE *out, const char *line, size_t len, const char *from,
                            const char *to)
{
    size_t fl = strlen(from);
    const char *end = line + len;

    while (line < end) {
        const char *hit = memmem(line, (size_t)(end - line), from, fl);
        if (!hit) {
            fwrite(line, 1, (size_t)(end - line), out);
            return;
        }
        fwrite(line, 1, (size_t)(hit - line), out);
        fputs(to, out);
        line = hit + fl;
    }
}

/* The rewrites of one line, in order, through a memory stream. */
static char *snippet_line(const char *line, size_t len, const char *socket_dir, const char *prefix,
                          const char *tag)
{
    static const char *const subs[][2] = {
        {"$fngate_socket_dir", NULL}, {"@fngate_", NULL}, {"SCRIPT_NAME /fn/", NULL}};
    char named[SNIPPET_TAG_MAX + 16], script[128], loc[128], exact[128], regex[128];
    const char *to[3];
    char *buf = NULL, *next = NULL;
    size_t n = 0;
    const char *p = line;
    bool is_location;

    snprintf(named, sizeof(named), "@fngate%s_", tag);
    snprintf(script, sizeof(script), "SCRIPT_NAME %s/", prefix);
    to[0] = socket_dir;
    to[1] = named;
    to[2] = script;
    buf = strndup(line, len);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < 3; i++) {
        FILE *m = open_memstream(&next, &n);
        if (!m) {
            free(buf);
            return NULL;
        }
        snippet_replace(m, buf, strlen(buf), subs[i][0], to[i]);
        fclose(m);
        free(buf);
        buf = next;
        next = NULL;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    is_location = strncmp(p, "location ", 9) == 0;
    if (is_location) {
        /* "^~ /fn/ {", "= /fn {" and the regex "^/fn/(...)". */
        const char *froms[3] = {" /fn/ ", " /fn {", "\"^/fn/"};
        snprintf(loc, sizeof(loc), " %s/ ", prefix);
        snprintf(exact, sizeof(exact), " %s {", prefix);
        snprintf(regex, sizeof(regex), "\"^%s/", prefix);
        const char *tos[3] = {loc, exact, regex};
        for (size_t i = 0; i < 3; i++) {
            FILE *m = open_memstream(&next, &n);
            if (!m) {
                free(buf);
                return NULL;
            }
            snippet_replace(m, buf, strlen(buf), froms[i], tos[i]);
            fclose(m);
            free(buf);
            buf = next;
            next = NULL;
        }
    }
    return buf;
}

int snippet_write(FILE *out, const char *socket_dir, const char *prefix, const char *conf_path,
                  char *err, size_t errlen)
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
    for (const char *c = prefix; *c && t + 1 < sizeof(tag); c++)
        tag[t++] = isalnum((unsigned char)*c) ? *c : '_';
    tag[t] = '\0';

    fprintf(out,
            "# Made by `fngate nginx` (fngate %s) from fngate.inc for the gateway of\n"
            "#   %s\n"
            "# socket_dir %s, functions at %s/<name>.\n"
            "# Put it inside a server block; several gateways' snippets, each with its\n"
            "# own --prefix, can share one.  Status: fngate status -c FILE.\n",
            PACKAGE_VERSION, conf_path, socket_dir, prefix);
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

static void snippet_usage(FILE *out, const char *default_conf)
{
    fprintf(out,
            "usage: fngate nginx [-c FILE] [--prefix PREFIX]\n"
            "  print the nginx locations serving FILE's gateway at PREFIX/<name>\n"
            "  (default /fn), for its socket_dir; FILE defaults to %s.\n",
            default_conf);
}

int snippet_main(int argc, char **argv, const char *default_conf)
{
    static const struct option opts[] = {{"prefix", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = default_conf, *prefix = "/fn";
    char err[CONF_ERR_MAX + 256];
    struct conf *c;
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:p:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            prefix = optarg;
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
    c = conf_load(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rc = snippet_write(stdout, c->gw.socket_dir, prefix, path, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "fngate nginx: %s\n", err);
    conf_free(c);
    return rc < 0 ? 1 : 0;
}
