/*
 * The in-process test harness behind fngate_test.h.  A request is built the
 * way fngate's nginx include would send it (as FastCGI parameters in an
 * envp) and goes through the same request and response code as under the
 * gateway, minus the socket, so what a test sees is what a client would.
 * For fn_query, the harness plays the supervisor's part once: it starts a
 * real fngate-pool, sends it DATABASE_URL on the control socket and hands
 * it the pool end of a database channel, whose other end becomes this
 * process's FNGATE_DB_FD.
 */
#include "config.h"

#include "fngate_test.h"

#include "fnsdk_loop.h"
#include "pool/pool.h"
#include "pool/poolwire.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FNSDK_POOL_PATH
#define FNSDK_POOL_PATH "fngate-pool"
#endif
#define FN_TEST_MAX_PARAMS 128

struct fn_test_res {
    int status;
    char *body; /* owned, NUL-terminated */
    size_t body_len;
    size_t n_headers;
    char **names, **values; /* owned; Content-Type and Content-Length first */
};

static unsigned long fn_test_seq;
static pid_t fn_test_pool_pid = -1;
static bool fn_test_db_tried;

/* ------------------------------------------------------------------------
 * The database: a real fngate-pool, started once
 */

static void fn_test_pool_stop(void)
{
    if (fn_test_pool_pid > 0) {
        kill(fn_test_pool_pid, SIGTERM);
        waitpid(fn_test_pool_pid, NULL, 0);
        fn_test_pool_pid = -1;
    }
}

static int fn_test_send_settings(int fd, const char *url)
{
    struct pool_settings set;

    memset(&set, 0, sizeof(set));
    set.conninfo = url;
    set.pool_size = 2;
    set.min_pool = 0;
    set.stmt_cache = 64;
    set.db_wait_timeout_ms = 5000;
    set.max_result = 64 << 20;
    set.prepared = true;
    if (poolwire_send_settings(fd, &set) < 0) {
        if (errno == ENAMETOOLONG)
            fn_log("fngate_test: DATABASE_URL is longer than %d bytes", POOL_CONNINFO_MAX);
        return -1;
    }
    return 0;
}

static int fn_test_send_channel(int ctl, int chan, const char *name)
{
    struct pool_hello hello;

    memset(&hello, 0, sizeof(hello));
    hello.version = POOL_HELLO_VERSION;
    hello.pid = (int32_t)getpid();
    snprintf(hello.fn, sizeof(hello.fn), "%s", name);
    return poolwire_send_hello(ctl, &hello, NULL, chan, 0);
}

/* fngate-pool where make install put it, else the first on $PATH (an
 * install staged with DESTDIR, or moved), else the installed path for the
 * error message. */
static const char *fn_test_pool_path(char *buf, size_t len)
{
    const char *path = getenv("PATH");

    if (access(FNSDK_POOL_PATH, X_OK) == 0 || !path)
        return FNSDK_POOL_PATH;
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && (size_t)snprintf(buf, len, "%.*s/fngate-pool", (int)n, path) < len &&
            access(buf, X_OK) == 0)
            return buf;
        path += n;
        if (*path == ':')
            path++;
    }
    return FNSDK_POOL_PATH;
}

/* Starts the pool for DATABASE_URL, once; on failure fn_query answers
 * FG004 and the reason is logged. */
static void fn_test_db_start(const char *name)
{
    const char *url = getenv("DATABASE_URL"), *pool = getenv("FNGATE_POOL");
    int ctl[2] = {-1, -1}, chan[2] = {-1, -1};
    char fdnum[16], found[4096];
    pid_t pid;

    if (fn_test_db_tried)
        return;
    fn_test_db_tried = true;
    if (!url || !*url || getenv("FNGATE_DB_FD"))
        return;
    if (!pool || !*pool)
        pool = fn_test_pool_path(found, sizeof(found));
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0) {
        fn_log("fngate_test: socketpair: %s", strerror(errno));
        goto fail;
    }
    if (fn_test_send_settings(ctl[0], url) < 0) {
        fn_log("fngate_test: cannot send the pool its settings");
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        fn_log("fngate_test: fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        char *const argv[] = {"fngate-pool", NULL};
        char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
        if (dup2(ctl[1], 3) < 0)
            _exit(126);
        close_range(4, ~0U, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execve(pool, argv, envp);
        fprintf(stderr, "fngate_test: cannot run %s: %s (set FNGATE_POOL)\n", pool,
                strerror(errno));
        _exit(127);
    }
    fn_test_pool_pid = pid;
    atexit(fn_test_pool_stop);
    close(ctl[1]);
    ctl[1] = -1;
    if (fn_test_send_channel(ctl[0], chan[1], name) < 0) {
        fn_log("fngate_test: cannot hand the pool its channel: %s", strerror(errno));
        goto fail;
    }
    close(chan[1]);
    /* The control socket stays open: the pool runs until it closes. */
    snprintf(fdnum, sizeof(fdnum), "%d", chan[0]);
    setenv("FNGATE_DB_FD", fdnum, 1);
    return;
fail:
    for (int i = 0; i < 2; i++) {
        if (ctl[i] >= 0)
            close(ctl[i]);
        if (chan[i] >= 0)
            close(chan[i]);
    }
    fn_test_pool_stop();
}

/* ------------------------------------------------------------------------
 * Requests
 */

struct fn_test_env {
    char *v[FN_TEST_MAX_PARAMS + 1];
    size_t n;
};

static int fn_test_env_add(struct fn_test_env *e, const char *name, const char *value, size_t vlen)
{
    if (e->n == FN_TEST_MAX_PARAMS || asprintf(&e->v[e->n], "%s=%.*s", name, (int)vlen, value) < 0)
        return -1;
    e->n++;
    return 0;
}

static void fn_test_env_free(struct fn_test_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
}

/* "X-Trace-Id: v\n..." -> HTTP_X_TRACE_ID=v (Content-Type and
 * Content-Length: CONTENT_TYPE, and the body's own length). */
static int fn_test_headers(struct fn_test_env *e, const char *h)
{
    while (h && *h) {
        size_t len = strcspn(h, "\n"), nl;
        const char *colon = memchr(h, ':', len), *v;
        char name[256];
        size_t vlen;

        if (len && colon) {
            nl = (size_t)(colon - h);
            if (nl == 0 || nl > sizeof(name) - 6)
                return -1;
            v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            vlen = (size_t)(h + len - v);
            if (vlen && v[vlen - 1] == '\r')
                vlen--;
            if (nl == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
                if (fn_test_env_add(e, "CONTENT_TYPE", v, vlen) < 0)
                    return -1;
            } else if (!(nl == 14 && strncasecmp(h, "Content-Length", 14) == 0)) {
                memcpy(name, "HTTP_", 5);
                for (size_t i = 0; i < nl; i++)
                    name[5 + i] = h[i] == '-' ? '_' : (char)toupper((unsigned char)h[i]);
                name[5 + nl] = '\0';
                if (fn_test_env_add(e, name, v, vlen) < 0)
                    return -1;
            }
        } else if (len) {
            return -1; /* a line that is no header */
        }
        h += len;
        if (*h == '\n')
            h++;
    }
    return 0;
}

/* The request's parameters, as the nginx include would send them.  The
 * path is left to the SDK to find (REQUEST_URI minus SCRIPT_NAME), so it is
 * decoded the same way as behind any front end. */
static int fn_test_build(struct fn_test_env *e, const char *method, const char *uri,
                         const char *headers, size_t len, char *name, size_t namelen)
{
    const char *rest = uri ? uri : "", *q, *fname = getenv("FNGATE_FUNCTION");
    char buf[64];
    struct timespec ts;
    size_t plen;

    if (strncmp(rest, "/fn/", 4) == 0) {
        size_t n = strcspn(rest + 4, "/?");
        snprintf(name, namelen, "%.*s", (int)n, rest + 4);
        rest += 4 + n;
    } else {
        snprintf(name, namelen, "%s", fname && *fname ? fname : "test");
    }
    q = strchr(rest, '?');
    plen = q ? (size_t)(q - rest) : strlen(rest);
    if (fn_test_env_add(e, "REQUEST_METHOD", method ? method : "GET",
                        strlen(method ? method : "GET")) < 0 ||
        fn_test_env_add(e, "QUERY_STRING", q ? q + 1 : "", q ? strlen(q + 1) : 0) < 0 ||
        fn_test_env_add(e, "FNGATE_FUNCTION", name, strlen(name)) < 0)
        return -1;
    snprintf(buf, sizeof(buf), "/fn/%s", name);
    if (fn_test_env_add(e, "SCRIPT_NAME", buf, strlen(buf)) < 0)
        return -1;
    {
        char *u = NULL;
        int rc;
        if (asprintf(&u, "/fn/%s%.*s%s%s", name, (int)plen, rest, q ? "?" : "", q ? q + 1 : "") < 0)
            return -1;
        rc = fn_test_env_add(e, "REQUEST_URI", u, strlen(u));
        free(u);
        if (rc < 0)
            return -1;
    }
    snprintf(buf, sizeof(buf), "test-%lu", ++fn_test_seq);
    if (fn_test_env_add(e, "FNGATE_REQUEST_ID", buf, strlen(buf)) < 0)
        return -1;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, sizeof(buf), "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    if (fn_test_env_add(e, "FNGATE_ARRIVAL", buf, strlen(buf)) < 0 ||
        fn_test_env_add(e, "REMOTE_ADDR", "127.0.0.1", 9) < 0 ||
        fn_test_env_add(e, "SERVER_PROTOCOL", "HTTP/1.1", 8) < 0)
        return -1;
    if (len) {
        snprintf(buf, sizeof(buf), "%zu", len);
        if (fn_test_env_add(e, "CONTENT_LENGTH", buf, strlen(buf)) < 0)
            return -1;
    }
    if (fn_test_headers(e, headers) < 0)
        return -1;
    e->v[e->n] = NULL;
    return 0;
}

static int fn_test_res_header(fn_test_res *t, const char *name, const char *value)
{
    char **nn = realloc(t->names, (t->n_headers + 1) * sizeof(*nn)), **nv;

    if (!nn)
        return -1;
    t->names = nn;
    nv = realloc(t->values, (t->n_headers + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    t->values = nv;
    t->names[t->n_headers] = strdup(name);
    t->values[t->n_headers] = strdup(value);
    if (!t->names[t->n_headers] || !t->values[t->n_headers]) {
        free(t->names[t->n_headers]);
        free(t->values[t->n_headers]);
        return -1;
    }
    t->n_headers++;
    return 0;
}

/* Copies what RES holds into T. */
static int fn_test_capture(fn_test_res *t, const fn_res *res)
{
    const char *body = fnsdk_res_body(res, &t->body_len), *n, *v;
    char clen[32];

    t->status = fnsdk_res_status(res);
    t->body = malloc(t->body_len + 1);
    if (!t->body)
        return -1;
    memcpy(t->body, body, t->body_len);
    t->body[t->body_len] = '\0';
    snprintf(clen, sizeof(clen), "%zu", t->body_len);
    if (fn_test_res_header(t, "Content-Type", fnsdk_res_content_type(res)) < 0 ||
        fn_test_res_header(t, "Content-Length", clen) < 0)
        return -1;
    for (size_t i = 0; fnsdk_res_header_at(res, i, &n, &v) == 0; i++) {
        if (fn_test_res_header(t, n, v) < 0)
            return -1;
    }
    return 0;
}

fn_test_res *fn_test(fn_handler handler, const char *method, const char *uri, const char *headers,
                     const void *body, size_t len)
{
    struct fn_test_env env = {0};
    struct fnsdk_limits lim = {0};
    char name[128];
    fn_test_res *t = calloc(1, sizeof(*t));
    fn_req *req = fnsdk_req_new();
    fn_res *res = fnsdk_res_new();
    const char *mb = getenv("FNGATE_MAX_BODY");
    int rc;

    if (!t || !req || !res)
        goto fail;
    lim.max_body = mb && *mb ? strtoll(mb, NULL, 10) : 1 << 20;
    if (fn_test_build(&env, method, uri, headers, len, name, sizeof(name)) < 0) {
        fn_log("fngate_test: fn_test: bad headers (want \"Name: value\" lines) or out of memory");
        goto fail;
    }
    fn_test_db_start(name);
    rc = fnsdk_req_begin_env(req, res, env.v, body, len, &lim);
    if (rc == 0)
        fnsdk_req_run(req, res, handler);
    if (fn_test_capture(t, res) < 0)
        goto fail;
    fnsdk_res_free(res);
    fnsdk_req_free(req);
    fn_test_env_free(&env);
    return t;
fail:
    fnsdk_res_free(res);
    fnsdk_req_free(req);
    fn_test_env_free(&env);
    fn_test_free(t);
    return NULL;
}

int fn_test_status(const fn_test_res *r)
{
    return r ? r->status : 0;
}

const char *fn_test_body(const fn_test_res *r, size_t *len)
{
    if (len)
        *len = r && r->body ? r->body_len : 0;
    return r && r->body ? r->body : "";
}

const char *fn_test_header(const fn_test_res *r, const char *name)
{
    for (size_t i = 0; r && i < r->n_headers; i++) {
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    }
    return NULL;
}

void fn_test_free(fn_test_res *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    free(r->body);
    free(r);
}
