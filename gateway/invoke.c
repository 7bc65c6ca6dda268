/*
 * `fngate invoke`: call one function over its own socket as FastCGI, the way
 * nginx would, with no web server in between (like `sam local invoke` or
 * `curl` against a deployed URL).  The request goes to the socket the
 * running gateway made for the function, so the gateway starts an instance
 * on demand exactly as for any request, and the function sees the same
 * parameters fngate's nginx include sends.  Exit status: 0 for a 2xx
 * answer, 1 for any other status, 2 when the function could not be called
 * at all (unknown function, no gateway, a broken answer).
 */
#include "config.h"

#include "invoke.h"

#include "conf.h"
#include "fcgireq.h"
#include "discover.h"
#include "fnsdk_uri.h"
#include "sock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INVOKE_EXIT_STATUS 1
#define INVOKE_EXIT_CANNOT 2
#define INVOKE_MAX_HEADERS 64
#define INVOKE_MAX_BODY ((size_t)1 << 30)
/* Without a request_timeout, how long to wait for an answer at most (the
 * same backstop as the nginx include's fastcgi_read_timeout). */
#define INVOKE_WAIT_MS 300000

enum {
    FCGI_END_REQUEST = 3,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_MAX_CONTENT = 65535,
};

struct invoke_buf {
    char *p;
    size_t n, cap;
};

struct invoke_opts {
    const char *conf;
    const char *method;
    const char *target; /* NAME[/PATH][?QUERY] */
    const char *headers[INVOKE_MAX_HEADERS];
    size_t n_headers;
    const char *data; /* -d argument */
    bool include;     /* -i */
};

static void invoke_usage(FILE *out, const char *default_conf)
{
    fprintf(out,
            "usage: fngate invoke [-c FILE] [-X METHOD] [-H 'Name: value']... "
            "[-d BODY | -d @FILE] [-i] NAME[/PATH][?QUERY]\n"
            "  calls function NAME over its socket (FastCGI, no web server) and prints\n"
            "  the body; -i prints the status line and headers first.  -d @- reads\n"
            "  the body from standard input; -d makes the default method POST.\n"
            "  Exit status: 0 for a 2xx answer, 1 for another status, 2 when the\n"
            "  function cannot be called.  FILE defaults to %s.\n",
            default_conf);
}

static int invoke_put(struct invoke_buf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *np;
        while (cap < b->n + n + 1)
            cap *= 2;
        np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int invoke_read_file(const char *path, struct invoke_buf *into)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char chunk[65536];
    size_t n;
    int rc = 0;

    if (!f) {
        fprintf(stderr, "fngate invoke: -d @%s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (into->n + n > INVOKE_MAX_BODY || invoke_put(into, chunk, n) < 0) {
            fprintf(stderr, "fngate invoke: -d @%s: larger than %zu bytes\n", path,
                    INVOKE_MAX_BODY);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "fngate invoke: -d @%s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

/* "Name: value" -> HTTP_NAME (or CONTENT_TYPE), the way nginx names
 * headers.  -1 for a malformed header. */
static int invoke_header_param(struct fcgireq *r, const char *h, const char **ctype)
{
    const char *colon = strchr(h, ':');
    char name[256];
    const char *v;
    size_t nl;

    if (!colon || colon == h || (size_t)(colon - h) > sizeof(name) - 6)
        return -1;
    nl = (size_t)(colon - h);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '_')
            return -1;
    }
    v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strpbrk(v, "\r\n"))
        return -1;
    if (nl == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
        *ctype = v;
        return 0;
    }
    if (nl == 14 && strncasecmp(h, "Content-Length", 14) == 0)
        return 0; /* the body's own length is sent */
    memcpy(name, "HTTP_", 5);
    for (size_t i = 0; i < nl; i++)
        name[5 + i] = h[i] == '-' ? '_' : (char)toupper((unsigned char)h[i]);
    name[5 + nl] = '\0';
    if (strcmp(name, "HTTP_PROXY") == 0)
        return 0; /* httpoxy: never passed, as in the include */
    return fcgireq_param(r, name, v);
}

/* Builds the whole request: BEGIN_REQUEST, PARAMS, STDIN. */
static int invoke_build(struct fcgireq **out, const struct invoke_opts *o, const char *name,
                        const char *path_raw, size_t path_len, const char *query,
                        const struct invoke_buf *body)
{
    struct fcgireq *r = fcgireq_new(1, false);
    char *path = fnsdk_uri_decode_path(path_raw, path_len);
    char *uri = NULL, *script = NULL, clen[32], arrival[32], reqid[33];
    const char *ctype = NULL;
    unsigned char rnd[16];
    struct timespec ts;
    int rc = -1;

    if (!path || !r)
        goto out;
    if (asprintf(&script, "/fn/%s", name) < 0) {
        script = NULL;
        goto out;
    }
    if (asprintf(&uri, "/fn/%s%.*s%s%s", name, (int)path_len, path_raw, *query ? "?" : "", query) <
        0) {
        uri = NULL;
        goto out;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(reqid + 2 * i, 3, "%02x", rnd[i]);
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(arrival, sizeof(arrival), "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    snprintf(clen, sizeof(clen), "%zu", body->n);

    for (size_t i = 0; i < o->n_headers; i++) {
        if (invoke_header_param(r, o->headers[i], &ctype) < 0) {
            fprintf(stderr, "fngate invoke: bad header '%s': want 'Name: value'\n", o->headers[i]);
            rc = -2;
            goto out;
        }
    }
    if (!ctype && body->n)
        ctype = "application/x-www-form-urlencoded"; /* what curl -d sends */
    if (fcgireq_param(r, "QUERY_STRING", query) < 0 ||
        fcgireq_param(r, "REQUEST_METHOD", o->method) < 0 ||
        fcgireq_param(r, "CONTENT_TYPE", ctype ? ctype : "") < 0 ||
        fcgireq_param(r, "CONTENT_LENGTH", body->n ? clen : "") < 0 ||
        fcgireq_param(r, "SCRIPT_NAME", script) < 0 || fcgireq_param(r, "REQUEST_URI", uri) < 0 ||
        fcgireq_param(r, "SERVER_PROTOCOL", "HTTP/1.1") < 0 ||
        fcgireq_param(r, "REQUEST_SCHEME", "http") < 0 ||
        fcgireq_param(r, "REMOTE_ADDR", "127.0.0.1") < 0 ||
        fcgireq_param(r, "SERVER_NAME", "fngate-invoke") < 0 ||
        fcgireq_param(r, "FNGATE_PATH", path) < 0 ||
        fcgireq_param(r, "FNGATE_REQUEST_ID", reqid) < 0 ||
        fcgireq_param(r, "FNGATE_ARRIVAL", arrival) < 0)
        goto out;
    if (fcgireq_finish(r, body->p, body->n) < 0)
        goto out;
    *out = r;
    r = NULL;
    rc = 0;
out:
    if (rc == -1)
        fprintf(stderr, "fngate invoke: out of memory\n");
    fcgireq_free(r);
    free(path);
    free(uri);
    free(script);
    return rc;
}

/* Reads exactly N bytes within the deadline: 0, or -1 (errno ETIMEDOUT or
 * EPIPE at an early EOF). */
static int invoke_read_n(int fd, void *p, size_t n, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        struct timespec ts;
        int64_t now, wait;
        ssize_t r;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        wait = deadline_ms - now;
        if (wait <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&pf, 1, wait > INT32_MAX ? INT32_MAX : (int)wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        r = read(fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EPIPE;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int invoke_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Prints the answer in STDOUT (CGI headers, blank line, body) and returns
 * the exit status. */
static int invoke_print(const char *name, const struct invoke_buf *out, bool include)
{
    const char *p = out->p ? out->p : "", *end = p + out->n, *body = NULL, *line;
    int status = 200;
    char reason[128] = "OK";

    /* The header block ends at the first empty line (CRLF or LF). */
    for (const char *q = p; q < end; q++) {
        if (*q == '\n' && (q + 1 < end && q[1] == '\n')) {
            body = q + 2;
            break;
        }
        if (*q == '\n' && q + 2 < end && q[1] == '\r' && q[2] == '\n') {
            body = q + 3;
            break;
        }
    }
    if (!body) {
        fprintf(stderr, "fngate invoke: function '%s' answered without a header block\n", name);
        return INVOKE_EXIT_CANNOT;
    }
    for (line = p; line < body;) {
        const char *nl = memchr(line, '\n', (size_t)(body - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(body - line);
        if (len && line[len - 1] == '\r')
            len--;
        if (len > 7 && strncasecmp(line, "Status:", 7) == 0) {
            const char *v = line + 7;
            char *e;
            long st;
            while (*v == ' ')
                v++;
            st = strtol(v, &e, 10);
            if (st >= 100 && st <= 999) {
                size_t rl;
                status = (int)st;
                while (*e == ' ')
                    e++;
                rl = len - (size_t)(e - line);
                if (rl >= sizeof(reason))
                    rl = sizeof(reason) - 1;
                memcpy(reason, e, rl);
                reason[rl] = '\0';
            }
        }
        line = nl ? nl + 1 : body;
    }
    if (include) {
        printf("HTTP/1.1 %d%s%s\n", status, *reason ? " " : "", reason);
        for (line = p; line < body;) {
            const char *nl = memchr(line, '\n', (size_t)(body - line));
            size_t len = nl ? (size_t)(nl - line) : (size_t)(body - line);
            if (len && line[len - 1] == '\r')
                len--;
            if (len && !(len > 7 && strncasecmp(line, "Status:", 7) == 0))
                printf("%.*s\n", (int)len, line);
            line = nl ? nl + 1 : body;
        }
        printf("\n");
    }
    fwrite(body, 1, (size_t)(end - body), stdout);
    fflush(stdout);
    return status >= 200 && status <= 299 ? 0 : INVOKE_EXIT_STATUS;
}

/* Sends REQ on FD and collects the STDOUT stream (STDERR goes to our
 * stderr) until END_REQUEST.  0 or -1 (reason printed). */
static int invoke_exchange(int fd, const char *name, const struct fcgireq *req,
                           struct invoke_buf *out, int64_t wait_ms)
{
    struct timespec ts;
    int64_t deadline;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + wait_ms;
    /* A function may answer (413) before reading all of a large body; its
     * answer is still what to print, so a failed write goes on reading. */
    (void)invoke_write_all(fd, (const char *)req->p, req->n);
    for (;;) {
        unsigned char h[8], content[FCGI_MAX_CONTENT + 255];
        size_t clen, plen;

        if (invoke_read_n(fd, h, 8, deadline) < 0)
            goto fail;
        clen = (size_t)((h[4] << 8) | h[5]);
        plen = h[6];
        if (h[0] != 1) {
            fprintf(stderr, "fngate invoke: function '%s' sent a record of version %d\n", name,
                    h[0]);
            return -1;
        }
        if (clen + plen && invoke_read_n(fd, content, clen + plen, deadline) < 0)
            goto fail;
        switch (h[1]) {
        case FCGI_STDOUT:
            if (out->n + clen > INVOKE_MAX_BODY || invoke_put(out, content, clen) < 0) {
                fprintf(stderr, "fngate invoke: answer larger than %zu bytes\n", INVOKE_MAX_BODY);
                return -1;
            }
            break;
        case FCGI_STDERR:
            fwrite(content, 1, clen, stderr);
            break;
        case FCGI_END_REQUEST:
            return 0;
        default:
            break; /* unknown records are ignored, as the spec says */
        }
    }
fail:
    if (errno == ETIMEDOUT)
        fprintf(stderr, "fngate invoke: function '%s' did not answer within %lld ms\n", name,
                (long long)wait_ms);
    else if (errno == EPIPE)
        fprintf(stderr,
                "fngate invoke: function '%s' closed the connection without a complete "
                "answer (see the gateway's log)\n",
                name);
    else
        fprintf(stderr, "fngate invoke: reading the answer of '%s': %s\n", name, strerror(errno));
    return -1;
}

/* Splits TARGET into a name, a raw path ("" or "/...") and a query. */
static int invoke_split(const char *target, char *name, size_t namelen, const char **path,
                        size_t *path_len, const char **query)
{
    size_t n = strcspn(target, "/?");
    const char *rest = target + n;

    if (n == 0 || n >= namelen) {
        fprintf(stderr, "fngate invoke: '%s' does not start with a function name\n", target);
        return -1;
    }
    memcpy(name, target, n);
    name[n] = '\0';
    *path = rest;
    *path_len = strcspn(rest, "?");
    *query = rest[*path_len] == '?' ? rest + *path_len + 1 : "";
    return 0;
}

static int invoke_parse(int argc, char **argv, struct invoke_opts *o, const char *default_conf)
{
    int ch;

    memset(o, 0, sizeof(*o));
    o->conf = default_conf;
    optind = 1;
    while ((ch = getopt(argc, argv, "+c:X:H:d:ih")) != -1) {
        switch (ch) {
        case 'c':
            o->conf = optarg;
            break;
        case 'X':
            o->method = optarg;
            break;
        case 'H':
            if (o->n_headers == INVOKE_MAX_HEADERS) {
                fprintf(stderr, "fngate invoke: at most %d -H\n", INVOKE_MAX_HEADERS);
                return -1;
            }
            o->headers[o->n_headers++] = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case 'i':
            o->include = true;
            break;
        case 'h':
            invoke_usage(stdout, default_conf);
            exit(0);
        default:
            invoke_usage(stderr, default_conf);
            return -1;
        }
    }
    if (optind != argc - 1) {
        invoke_usage(stderr, default_conf);
        return -1;
    }
    o->target = argv[optind];
    if (!o->method)
        o->method = o->data ? "POST" : "GET";
    for (const char *m = o->method; *m; m++) {
        if (!isupper((unsigned char)*m)) {
            fprintf(stderr, "fngate invoke: bad method '%s'\n", o->method);
            return -1;
        }
    }
    return 0;
}

int invoke_main(int argc, char **argv, const char *default_conf)
{
    struct invoke_opts o;
    struct invoke_buf body = {0}, out = {0};
    struct fcgireq *req = NULL;
    char err[CONF_ERR_MAX], name[128], *sock = NULL;
    struct conf *c = NULL;
    struct discover_list *l = NULL;
    const struct discover_fn *fn;
    const char *path, *query;
    size_t path_len;
    int64_t wait_ms = INVOKE_WAIT_MS;
    int fd = -1, rc = INVOKE_EXIT_CANNOT;

    if (invoke_parse(argc, argv, &o, default_conf) < 0)
        return INVOKE_EXIT_CANNOT;
    if (invoke_split(o.target, name, sizeof(name), &path, &path_len, &query) < 0)
        return INVOKE_EXIT_CANNOT;
    if (o.data) {
        if (o.data[0] == '@') {
            if (invoke_read_file(o.data + 1, &body) < 0)
                goto out;
        } else if (invoke_put(&body, o.data, strlen(o.data)) < 0) {
            goto out;
        }
    }
    c = conf_load(o.conf, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    l = discover_functions(c, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    fn = discover_list_find(l, name);
    if (!fn) {
        fprintf(stderr, "fngate invoke: no function '%s' in %s (%zu function%s:", name,
                c->gw.functions_dir, l->n, l->n == 1 ? "" : "s");
        for (size_t i = 0; i < l->n; i++)
            fprintf(stderr, " %s", l->fns[i].name);
        fprintf(stderr, "%s)\n", l->n ? "" : " none");
        goto out;
    }
    if (fn->set.request_timeout_ms > 0)
        wait_ms = fn->set.request_timeout_ms + 5000;
    if (asprintf(&sock, "%s/fn/%s.sock", c->gw.socket_dir, name) < 0) {
        sock = NULL;
        goto out;
    }
    fd = sock_connect(sock, 0);
    if (fd < 0) {
        fprintf(stderr,
                "fngate invoke: cannot reach function '%s' at %s: %s (is `fngate serve -c %s` "
                "running?)\n",
                name, sock, strerror(errno), o.conf);
        goto out;
    }
    if (invoke_build(&req, &o, name, path, path_len, query, &body) < 0)
        goto out;
    if (invoke_exchange(fd, name, req, &out, wait_ms) < 0)
        goto out;
    rc = invoke_print(name, &out, o.include);
out:
    if (fd >= 0)
        close(fd);
    free(sock);
    free(body.p);
    fcgireq_free(req);
    free(out.p);
    discover_list_free(l);
    conf_free(c);
    return rc;
}
