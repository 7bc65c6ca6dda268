/*
 * testfn: the integration tests' function.  One binary, behaviours chosen by
 * URL argument (the first one present wins):
 *
 *   ?sleep=MS        sleep MS milliseconds, then {"slept": MS, "pid": PID}
 *   ?abort=1         abort(): the instance dies of SIGABRT mid-request
 *   ?hang=1          never answer (sleeps forever)
 *   ?exit=N          exit(N) without answering
 *   ?noresponse=1    return 0 without responding: the SDK must answer 500
 *   ?log=TEXT        fn_log(TEXT), then {"logged": request id}
 *   ?stderr=TEXT     write TEXT as one line to stderr, then answer {"pid": PID}
 *   ?big=N           answer N bytes of text/plain ('x' repeated)
 *   ?flood=MS        write stderr as fast as it can for MS milliseconds, then
 *                    {"written": BYTES, "pid": PID}
 *   ?header=NAME     fn_set_header(NAME, ?value=) and answer {"rc": RC, "errno":
 *                    ERRNO} with that header if it was accepted
 *   ?forge=MODE      hang while forging its own scoreboard slot every
 *                    millisecond: "fresh" (busy, just started), "flip" (idle
 *                    and busy in turn, the request counter climbing),
 *                    "minstart" (busy since INT64_MIN, counter climbing),
 *                    "garbage" (nonsense state and extreme timestamps),
 *                    "watchflip" ("flip" with its request's connection in an
 *                    epoll set, as the SDK watches an idle kept one) or
 *                    "logflood" (its request-log ring kept full of lines)
 *   ?req=1           what the SDK saw: method, path, name, request id, query,
 *                    args, headers, the FastCGI parameters nginx sends, every
 *                    "tag" argument (fn_arg_all), fn_deadline_ms and the body
 *   (none of these)  {"pid", "uid", "gid", "euid", "egid", "env": {environ}}
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fngate.h>

#include "../../functions/sdk/fnsdk_scoreboard.h"

extern char **environ;

/* The scoreboard slot as the SDK maps it (functions/sdk/fnsdk_scoreboard.h): found
 * through /proc/self/maps, as any function could. */
struct forged_slot {
    uint32_t magic, version, state, stop_req;
    int64_t ready_ns, req_start_ns, idle_since_ns;
    uint64_t requests, busy_ns;
};

static volatile struct forged_slot *find_slot(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long lo = 0;

    while (f && fgets(line, sizeof(line), f)) {
        if (strstr(line, "fngate-scoreboard") && sscanf(line, "%lx-", &lo) == 1)
            break;
        lo = 0;
    }
    if (f)
        fclose(f);
    return (volatile struct forged_slot *)lo;
}

/* ?forge=logflood: keeps its request-log ring full of the smallest lines
 * the gateway keeps ({"a":1}), as fast as the gateway drains them. */
static int logflood(fn_res *res)
{
    struct fnsdk_scoreboard_slot *sl = (struct fnsdk_scoreboard_slot *)find_slot();
    char *ring = (char *)sl + sizeof(*sl);
    uint64_t size = 65536; /* REQLOG_RING_BYTES */
    struct timespec ts = {0, 200000};

    if (!sl)
        return fn_error(res, 500, "no scoreboard slot mapped");
    for (;;) {
        uint64_t head = FNSDK_SCOREBOARD_LOAD(sl->log_head),
                 tail = FNSDK_SCOREBOARD_LOAD(sl->log_tail);
        while (head - tail + 8 <= size) {
            memcpy(ring + head % size, "{\"a\":1}\n", 8);
            head += 8;
        }
        FNSDK_SCOREBOARD_STORE(sl->log_head, head);
        nanosleep(&ts, NULL);
    }
}

static int forge(fn_res *res, const char *mode)
{
    if (strcmp(mode, "logflood") == 0)
        return logflood(res);
    volatile struct forged_slot *sl = find_slot();
    struct timespec ts = {0, 1000000};
    uint64_t i = 0;

    if (!sl)
        return fn_error(res, 500, "no scoreboard slot mapped");
    if (strcmp(mode, "watchflip") == 0) {
        /* What the police takes for a kept connection waiting for its
         * next request: the request's own connection in an epoll set. */
        int ep = epoll_create1(EPOLL_CLOEXEC), watched = 0;
        for (int fd = 5; ep >= 0 && fd < 64; fd++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
            struct stat st;
            if (fd != ep && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0)
                watched++;
        }
        if (!watched)
            return fn_error(res, 500, "no connection to watch");
        mode = "flip";
    }
    fn_log("forging the scoreboard slot: %s", mode);
    for (;; i++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        if (strcmp(mode, "fresh") == 0) {
            sl->state = 2; /* busy */
            sl->req_start_ns = ns;
        } else if (strcmp(mode, "minstart") == 0) {
            sl->requests++;
            sl->state = 2;
            sl->req_start_ns = INT64_MIN;
        } else if (strcmp(mode, "flip") == 0) {
            sl->requests++;
            sl->state = (i & 1) ? 1 : 2;
            sl->idle_since_ns = sl->req_start_ns = ns;
        } else {
            sl->state = 0xdeadbeefu;
            sl->req_start_ns = (i & 1) ? INT64_MIN : INT64_MAX;
            sl->idle_since_ns = (i & 1) ? INT64_MAX : INT64_MIN;
            sl->ready_ns = INT64_MIN;
            sl->requests = UINT64_MAX - i;
        }
        nanosleep(&ts, NULL);
    }
}

static long arg_long(fn_req *req, const char *name, long dflt)
{
    const char *v = fn_arg(req, name);
    char *end;
    long n;

    if (!v || !*v)
        return dflt;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end)
        return dflt;
    return n;
}

/* Sleeps MS milliseconds in full, resuming after signals (a SIGTERM asking
 * the instance to stop must not cut a request short). */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static json_t *env_object(void)
{
    json_t *env = json_object();

    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char key[256];
        size_t klen;
        json_t *val;

        if (!eq)
            continue;
        klen = (size_t)(eq - *e);
        if (klen >= sizeof(key))
            klen = sizeof(key) - 1;
        memcpy(key, *e, klen);
        key[klen] = '\0';
        val = json_string(eq + 1);
        if (!val) /* not UTF-8 */
            val = json_string("<not utf-8>");
        json_object_set_new(env, key, val);
    }
    return env;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int describe_request(fn_req *req, fn_res *res)
{
    static const char *const params[] = {
        "QUERY_STRING",    "REQUEST_METHOD",  "CONTENT_TYPE",      "CONTENT_LENGTH",
        "SCRIPT_NAME",     "PATH_INFO",       "REQUEST_URI",       "DOCUMENT_URI",
        "SERVER_PROTOCOL", "REQUEST_SCHEME",  "GATEWAY_INTERFACE", "SERVER_SOFTWARE",
        "REMOTE_ADDR",     "REMOTE_PORT",     "SERVER_ADDR",       "SERVER_PORT",
        "SERVER_NAME",     "FNGATE_FUNCTION", "FNGATE_PATH",       "FNGATE_REQUEST_ID",
        "FNGATE_ARRIVAL",  "HTTP_PROXY",
    };
    json_t *out = json_object();
    json_t *args = json_array();
    json_t *headers = json_object();
    json_t *p = json_object();
    size_t i, n;

    n = fn_arg_count(req);
    for (i = 0; i < n; i++) {
        const char *name, *value;

        if (fn_arg_at(req, i, &name, &value) == 0)
            json_array_append_new(args, json_pack("[ss]", name, value ? value : ""));
    }
    n = fn_header_count(req);
    for (i = 0; i < n; i++) {
        const char *name, *value;

        if (fn_header_at(req, i, &name, &value) == 0)
            json_object_set_new(headers, name, json_string(value ? value : ""));
    }
    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        json_object_set_new(p, params[i], str_or_null(fn_param(req, params[i])));

    json_object_set_new(out, "method", json_string(fn_method(req)));
    json_object_set_new(out, "path", json_string(fn_path(req)));
    json_object_set_new(out, "name", json_string(fn_name(req)));
    json_object_set_new(out, "request_id", json_string(fn_request_id(req)));
    json_object_set_new(out, "query", json_string(fn_query_string(req)));
    json_object_set_new(out, "args", args);
    json_object_set_new(out, "headers", headers);
    json_object_set_new(out, "params", p);
    json_object_set_new(out, "pid", json_integer(getpid()));
    {
        const char *tags[8];
        size_t nt = fn_arg_all(req, "tag", tags, 8);
        json_t *t = json_array();
        for (i = 0; i < nt && i < 8; i++)
            json_array_append_new(t, json_string(tags[i]));
        json_object_set_new(out, "tags", t);
    }
    json_object_set_new(out, "deadline_ms", json_integer(fn_deadline_ms(req)));
    json_object_set_new(out, "body", json_stringn(fn_body(req, NULL), strlen(fn_body(req, NULL))));
    return fn_send_json_new(res, 200, out);
}

static int testfn(fn_req *req, fn_res *res)
{
    long n;

    if ((n = arg_long(req, "sleep", -1)) >= 0) {
        sleep_ms(n);
        return fn_send_jsonf(res, 200, "{s:I,s:I}", "slept", (json_int_t)n, "pid",
                             (json_int_t)getpid());
    }
    if (fn_arg(req, "log")) {
        fn_log("%s", fn_arg(req, "log"));
        return fn_send_jsonf(res, 200, "{s:s}", "logged", fn_request_id(req));
    }
    if (arg_long(req, "abort", 0)) {
        fn_log("abort requested");
        abort();
    }
    if (arg_long(req, "hang", 0)) {
        for (;;)
            sleep(1);
    }
    if (fn_arg(req, "exit"))
        exit((int)arg_long(req, "exit", 1));
    if (arg_long(req, "noresponse", 0))
        return 0;
    if (fn_arg(req, "stderr")) {
        fprintf(stderr, "%s\n", fn_arg(req, "stderr"));
        fflush(stderr);
        return fn_send_jsonf(res, 200, "{s:I}", "pid", (json_int_t)getpid());
    }
    if (fn_arg(req, "header")) {
        int rc;
        errno = 0;
        rc = fn_set_header(res, fn_arg(req, "header"),
                           fn_arg(req, "value") ? fn_arg(req, "value") : "");
        return fn_send_jsonf(res, 200, "{s:i,s:i}", "rc", rc, "errno", rc ? errno : 0);
    }
    if (fn_arg(req, "forge"))
        return forge(res, fn_arg(req, "forge"));
    if ((n = arg_long(req, "flood", -1)) >= 0) {
        static const char line[] = "flood: this function writes its stderr as fast as it can, "
                                   "and the gateway must stay on time for everyone else\n";
        struct timespec t0, t;
        long long written = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            ssize_t w = write(2, line, sizeof(line) - 1);
            if (w > 0)
                written += w;
            clock_gettime(CLOCK_MONOTONIC, &t);
        } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < n);
        return fn_send_jsonf(res, 200, "{s:I,s:I}", "written", (json_int_t)written, "pid",
                             (json_int_t)getpid());
    }
    if ((n = arg_long(req, "big", -1)) >= 0) {
        /* Kept until the next request whether or not fn_send copies it. */
        static char *body;
        static size_t cap;

        if ((size_t)n + 1 > cap) {
            char *nb = realloc(body, (size_t)n + 1);

            if (!nb)
                return fn_error(res, 500, "out of memory");
            body = nb;
            cap = (size_t)n + 1;
        }
        memset(body, 'x', (size_t)n);
        return fn_send(res, 200, "text/plain", body, (size_t)n);
    }
    if (arg_long(req, "req", 0))
        return describe_request(req, res);

    return fn_send_json_new(res, 200,
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:o}", "pid", (json_int_t)getpid(),
                                      "uid", (json_int_t)getuid(), "gid", (json_int_t)getgid(),
                                      "euid", (json_int_t)geteuid(), "egid", (json_int_t)getegid(),
                                      "env", env_object()));
}

FN_MAIN(testfn)
