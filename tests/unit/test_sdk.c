/*
 * Unit tests for the SDK's request and response layer (functions/sdk/
 * fnsdk_req.c, fnsdk_res.c, fn_json.c) through its internal interface (fnsdk_loop.h).  Each test
 * plays nginx over a socketpair: it writes a FastCGI request, built by gateway/fcgireq.c as nginx
 * would send it, into one end, hands the other end to libfcgi the way fnsdk_loop.c's fnsdk_serve
 * does (ipcFd set, keepConnection, FCGX_Accept_r), runs fnsdk_req_begin and the accessors a handler
 * calls, and reads the FastCGI records fnsdk_res_write produced back off the socket, so assertions
 * are on the bytes nginx would receive.
 */
#include "config.h"

#include "fcgireq.h"
#include "fnsdk_frame.h"
#include "fnsdk_loop.h"
#include "fngate.h"
#include "testutil.h"

#include <check.h>

#include "check_main.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* FastCGI record types and constants (FastCGI 1.0 specification). */
enum {
    FCGI_END_REQUEST = 3,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_MAX_CONTENT = 65535,
};

/* ---- building a request ----------------------------------------------------- */

/* BEGIN_REQUEST (keeping the connection), PARAMS from "NAME=VALUE" strings
 * (NULL-terminated), STDIN with BODY: the records nginx would send. */
static struct fcgireq *request_new(int id, const char *const *params, const char *body,
                                   size_t body_len)
{
    struct fcgireq *r = fcgireq_new((unsigned)id, true);

    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; params && params[i]; i++) {
        const char *eq = strchr(params[i], '=');
        ck_assert_ptr_nonnull(eq);
        ck_assert_int_eq(
            fcgireq_param_n(r, params[i], (size_t)(eq - params[i]), eq + 1, strlen(eq + 1)), 0);
    }
    ck_assert_int_eq(fcgireq_finish(r, body, body_len), 0);
    return r;
}

/* ---- the fixture: one connection, as fnsdk_serve sets it up ---------------------- */

static int sv[2] = {-1, -1}; /* [0] the instance's connection, [1] nginx's */
static FCGX_Request rq;
static fn_req *req;
static fn_res *res;
static struct fnsdk_limits lim;

static void setup(void)
{
    int sz = 1 << 20;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* Room for a whole request, and a whole response, before anybody
     * reads (the kernel caps it; the tests stay well below the default). */
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    ck_assert_int_eq(FCGX_Init(), 0);
    ck_assert_int_eq(FCGX_InitRequest(&rq, -1, 0), 0);
    rq.ipcFd = sv[0];
    rq.keepConnection = 1;
    req = fnsdk_req_new();
    res = fnsdk_res_new();
    ck_assert_ptr_nonnull(req);
    ck_assert_ptr_nonnull(res);
    lim.max_body = 1 << 20;
    lim.queue_timeout_ms = 0;
    lim.max_requests = 0;
    unsetenv("FNGATE_FUNCTION");
}

static void teardown(void)
{
    fnsdk_req_free(req);
    fnsdk_res_free(res);
    req = NULL;
    res = NULL;
    /* nginx's end first: libfcgi's close waits for the peer's EOF. */
    close(sv[1]);
    FCGX_Free(&rq, 1); /* closes sv[0] */
}

/* Sends one request (id 1) with PARAMS and BODY, accepts it and runs
 * fnsdk_req_begin; returns what fnsdk_req_begin returned. */
static int begin_id(int id, const char *const *params, const char *body, size_t body_len)
{
    struct fcgireq *r = request_new(id, params, body, body_len);
    size_t off = 0;

    while (off < r->n) {
        ssize_t w = write(sv[1], r->p + off, r->n - off);
        ck_assert_msg(w > 0, "write: %s", strerror(errno));
        off += (size_t)w;
    }
    fcgireq_free(r);
    ck_assert_int_eq(FCGX_Accept_r(&rq), 0);
    ck_assert_int_eq(rq.requestId, id);
    return fnsdk_req_begin(req, res, &rq, &lim);
}

static int begin(const char *const *params, const char *body)
{
    return begin_id(1, params, body, body ? strlen(body) : 0);
}

/* A POST of BODY with its exact CONTENT_LENGTH; returns fnsdk_req_begin's
 * result. */
static int begin_post(const char *body)
{
    char cl[40];
    const char *params[] = {"REQUEST_METHOD=POST", cl, NULL};

    snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%zu", strlen(body));
    return begin(params, body);
}

/* Fails unless fnsdk_req_begin accepted the request. */
static void begin_ok(const char *const *params, const char *body)
{
    int rc = begin(params, body);

    ck_assert_msg(rc == 0, "fnsdk_req_begin returned %d", rc);
    ck_assert(!fn_responded(res));
}

/* What reached nginx for request ID: the STDOUT stream, and the END_REQUEST
 * record checked for a complete request with status 0. */
static char out[1 << 17];
static size_t out_len;

static void read_response(int id)
{
    unsigned char h[8], buf[FCGI_MAX_CONTENT + 255];
    bool ended = false;

    out_len = 0;
    while (!ended) {
        struct pollfd p = {.fd = sv[1], .events = POLLIN};
        size_t clen, plen, got = 0;

        ck_assert_msg(poll(&p, 1, 2000) == 1, "no END_REQUEST from the instance");
        ck_assert_int_eq(recv(sv[1], h, 8, MSG_WAITALL), 8);
        ck_assert_int_eq(h[0], 1);
        ck_assert_int_eq((h[2] << 8) | h[3], id);
        clen = (size_t)((h[4] << 8) | h[5]);
        plen = h[6];
        if (clen + plen)
            got = (size_t)recv(sv[1], buf, clen + plen, MSG_WAITALL);
        ck_assert_uint_eq(got, clen + plen);
        switch (h[1]) {
        case FCGI_STDOUT:
            ck_assert_uint_lt(out_len + clen, sizeof(out));
            memcpy(out + out_len, buf, clen);
            out_len += clen;
            break;
        case FCGI_STDERR:
            break;
        case FCGI_END_REQUEST:
            ck_assert_uint_eq(clen, 8);
            ck_assert_int_eq(buf[0] | buf[1] | buf[2] | buf[3], 0); /* appStatus */
            ck_assert_int_eq(buf[4], 0);                            /* REQUEST_COMPLETE */
            ended = true;
            break;
        default:
            ck_abort_msg("unexpected record type %d", h[1]);
        }
    }
    out[out_len] = '\0';
}

/* Every response carries the request's id as X-Request-Id, right after
 * Content-Length (unless the handler set one): checks it is there and holds
 * RID, then takes the line out, so that the tests compare the rest. */
static void take_request_id_line(const char *rid)
{
    char want[300];
    char *cl = strstr(out, "Content-Length: "), *eol = cl ? strstr(cl, "\r\n") : NULL;
    size_t n;

    snprintf(want, sizeof(want), "X-Request-Id: %s\r\n", rid);
    n = strlen(want);
    ck_assert_msg(eol && strncmp(eol + 2, want, n) == 0, "no %s in %s", want, out);
    memmove(eol + 2, eol + 2 + n, out_len - (size_t)(eol + 2 + n - out) + 1);
    out_len -= n;
}

/* Writes the response the way fnsdk_serve does and returns what nginx got. */
static const char *respond_id(int id)
{
    char rid[256];
    bool own = false;

    /* fnsdk_serve never writes without a response (it makes a 500 first). */
    ck_assert(fn_responded(res));
    snprintf(rid, sizeof(rid), "%s", fn_request_id(req));
    for (size_t i = 0; i < fnsdk_res_header_count(res); i++) {
        const char *n, *v;
        if (fnsdk_res_header_at(res, i, &n, &v) == 0 && strcasecmp(n, "X-Request-Id") == 0)
            own = true;
    }
    ck_assert_int_eq(fnsdk_res_write(res, &rq), 0);
    fnsdk_res_reset(res);
    fnsdk_req_end(req);
    FCGX_Finish_r(&rq);
    read_response(id);
    if (!own)
        take_request_id_line(rid);
    return out;
}

static const char *respond(void)
{
    return respond_id(1);
}

/* The exact bytes of a response with STATUS LINE, content type and BODY,
 * then EXTRA header lines (each ending in \r\n) before the blank line. */
static const char *http(const char *status, const char *ctype, const char *extra, const char *body)
{
    static char buf[1 << 16];

    snprintf(buf, sizeof(buf), "Status: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
             status, ctype, strlen(body), extra, body);
    return buf;
}

/* A typical request as nginx's fastcgi_params would send it. */
static const char *const std_params[] = {
    "QUERY_STRING=a=1&b=x%20y&c=%zz&d=+plus+&e",
    "REQUEST_METHOD=POST",
    "CONTENT_TYPE=application/json",
    "CONTENT_LENGTH=11",
    "REMOTE_ADDR=127.0.0.1",
    "HTTP_X_FORWARDED_FOR=203.0.113.7",
    "HTTP_HOST=api.example.com",
    "HTTP_ACCEPT_ENCODING=gzip",
    "FNGATE_FUNCTION=hello",
    "FNGATE_PATH=/items/7",
    "FNGATE_REQUEST_ID=0123abcd",
    NULL,
};

/* ---- URL arguments ------------------------------------------------------------ */

START_TEST(args_decoded)
{
    static const char *const names[] = {"a", "b", "c", "d", "e"};
    static const char *const values[] = {"1", "x y", "%zz", " plus ", ""};
    const char *n, *v;

    begin_ok(std_params, "hello world");
    ck_assert_str_eq(fn_query_string(req), "a=1&b=x%20y&c=%zz&d=+plus+&e");
    ck_assert_str_eq(fn_arg(req, "a"), "1");
    ck_assert_str_eq(fn_arg(req, "b"), "x y");
    ck_assert_str_eq(fn_arg(req, "c"), "%zz");
    ck_assert_str_eq(fn_arg(req, "d"), " plus ");
    ck_assert_str_eq(fn_arg(req, "e"), "");
    ck_assert_ptr_null(fn_arg(req, "f"));
    ck_assert_ptr_null(fn_arg(req, "A"));
    ck_assert_uint_eq(fn_arg_count(req), N(names));
    for (size_t i = 0; i < N(names); i++) {
        ck_assert_int_eq(fn_arg_at(req, i, &n, &v), 0);
        ck_assert_str_eq(n, names[i]);
        ck_assert_str_eq(v, values[i]);
    }
    ck_assert_int_eq(fn_arg_at(req, N(names), &n, &v), -1);
}
END_TEST

START_TEST(args_edge_cases)
{
    static const char *const params[] = {
        "QUERY_STRING=&&k%3Dv=%41%6a&dup=1&dup=2&pct=%&short=%4&end=%2B&=anon&sp=a+b%2bc&tail=%41&",
        "REQUEST_METHOD=GET",
        NULL,
    };
    static const struct {
        const char *name, *value;
    } want[] = {
        {"k=v", "Aj"}, {"dup", "1"}, {"dup", "2"},    {"pct", "%"},  {"short", "%4"},
        {"end", "+"},  {"", "anon"}, {"sp", "a b+c"}, {"tail", "A"},
    };
    const char *n, *v;

    begin_ok(params, NULL);
    ck_assert_uint_eq(fn_arg_count(req), N(want));
    for (size_t i = 0; i < N(want); i++) {
        ck_assert_int_eq(fn_arg_at(req, i, &n, &v), 0);
        ck_assert_str_eq(n, want[i].name);
        ck_assert_str_eq(v, want[i].value);
    }
    ck_assert_str_eq(fn_arg(req, "dup"), "1"); /* the first */
    ck_assert_str_eq(fn_arg(req, "k=v"), "Aj");
}
END_TEST

START_TEST(args_none)
{
    static const char *const params[] = {"REQUEST_METHOD=GET", NULL};
    const char *n, *v;

    begin_ok(params, NULL);
    ck_assert_str_eq(fn_query_string(req), "");
    ck_assert_uint_eq(fn_arg_count(req), 0);
    ck_assert_int_eq(fn_arg_at(req, 0, &n, &v), -1);
    ck_assert_ptr_null(fn_arg(req, "a"));
}
END_TEST

/* ---- headers and params ------------------------------------------------------- */

START_TEST(headers_canonical)
{
    static const char *const names[] = {"Content-Type", "Content-Length", "X-Forwarded-For", "Host",
                                        "Accept-Encoding"};
    static const char *const values[] = {"application/json", "11", "203.0.113.7", "api.example.com",
                                         "gzip"};
    const char *n, *v;

    begin_ok(std_params, "hello world");
    ck_assert_str_eq(fn_header(req, "x-forwarded-for"), "203.0.113.7");
    ck_assert_str_eq(fn_header(req, "X-FORWARDED-FOR"), "203.0.113.7");
    ck_assert_str_eq(fn_header(req, "X-Forwarded-For"), "203.0.113.7");
    ck_assert_str_eq(fn_header(req, "content-type"), "application/json");
    ck_assert_ptr_null(fn_header(req, "x_forwarded_for"));
    ck_assert_ptr_null(fn_header(req, "Remote-Addr")); /* a param, not a header */
    ck_assert_ptr_null(fn_header(req, "Fngate-Path"));
    ck_assert_uint_eq(fn_header_count(req), N(names));
    for (size_t i = 0; i < N(names); i++) {
        ck_assert_int_eq(fn_header_at(req, i, &n, &v), 0);
        ck_assert_str_eq(n, names[i]);
        ck_assert_str_eq(v, values[i]);
    }
    ck_assert_int_eq(fn_header_at(req, N(names), &n, &v), -1);
    ck_assert_str_eq(fn_param(req, "REMOTE_ADDR"), "127.0.0.1");
    ck_assert_str_eq(fn_param(req, "HTTP_X_FORWARDED_FOR"), "203.0.113.7");
    ck_assert_ptr_null(fn_param(req, "NOPE"));
}
END_TEST

START_TEST(headers_empty_content_type_skipped)
{
    /* nginx sends CONTENT_TYPE and CONTENT_LENGTH empty on a GET. */
    static const char *const params[] = {
        "REQUEST_METHOD=GET", "CONTENT_TYPE=", "CONTENT_LENGTH=", "HTTP_X_EMPTY=", NULL,
    };
    const char *n, *v;

    begin_ok(params, NULL);
    ck_assert_uint_eq(fn_header_count(req), 1);
    ck_assert_int_eq(fn_header_at(req, 0, &n, &v), 0);
    ck_assert_str_eq(n, "X-Empty");
    ck_assert_str_eq(v, "");
    ck_assert_ptr_null(fn_header(req, "content-type"));
    ck_assert_ptr_null(fn_header(req, "content-length"));
}
END_TEST

START_TEST(headers_long_value)
{
    /* A value of 128 bytes or more travels with a 4-byte length. */
    static char cookie[300 + sizeof("HTTP_COOKIE=")];
    static char longname[200 + sizeof("HTTP_=v")];
    const char *params[] = {"REQUEST_METHOD=GET", cookie, longname, NULL};
    char want_name[256];

    snprintf(cookie, sizeof(cookie), "HTTP_COOKIE=");
    memset(cookie + strlen(cookie), 'c', 300);
    snprintf(longname, sizeof(longname), "HTTP_");
    memset(longname + 5, 'X', 200);
    memcpy(longname + 205, "=v", 3);
    begin_ok(params, NULL);
    ck_assert_uint_eq(strlen(fn_header(req, "cookie")), 300);
    ck_assert_uint_eq(strspn(fn_header(req, "Cookie"), "c"), 300);
    want_name[0] = 'X';
    memset(want_name + 1, 'x', 199);
    want_name[200] = '\0';
    ck_assert_str_eq(fn_header(req, want_name), "v");
}
END_TEST

START_TEST(request_line)
{
    static const char *const bare[] = {"REQUEST_METHOD=DELETE", NULL};

    begin_ok(std_params, "hello world");
    ck_assert_str_eq(fn_method(req), "POST");
    ck_assert_str_eq(fn_path(req), "/items/7");
    ck_assert_str_eq(fn_name(req), "hello");
    ck_assert_str_eq(fn_request_id(req), "0123abcd");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();

    /* Absent params read as "", the name falls back to the environment. */
    setenv("FNGATE_FUNCTION", "fromenv", 1);
    begin_ok(bare, NULL);
    ck_assert_str_eq(fn_method(req), "DELETE");
    ck_assert_str_eq(fn_path(req), "");
    ck_assert_str_eq(fn_name(req), "fromenv");
    /* No id from the front end: the SDK makes one. */
    ck_assert_int_eq(strlen(fn_request_id(req)), 32);
}
END_TEST

/* A request the front end sent no id for (fngate.inc sends none unless the
 * server block asks for nginx's $request_id) gets 32 lowercase hex digits
 * of its own, never those of an earlier request; a sent id is kept. */
START_TEST(request_id_made_when_absent)
{
    static const char *const none[] = {"REQUEST_METHOD=GET", NULL};
    static const char *const empty[] = {"FNGATE_REQUEST_ID=", NULL};
    static const char *const sent[] = {"FNGATE_REQUEST_ID=from-nginx", NULL};
    char seen[50][33];

    for (int i = 0; i < 50; i++) {
        const char *id;
        begin_ok(i % 2 ? none : empty, NULL);
        id = fn_request_id(req);
        ck_assert_int_eq(strlen(id), 32);
        ck_assert_int_eq(strspn(id, "0123456789abcdef"), 32);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(seen[j], id);
        memcpy(seen[i], id, 33);
        ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
        respond();
    }
    begin_ok(sent, NULL);
    ck_assert_str_eq(fn_request_id(req), "from-nginx");
}
END_TEST

START_TEST(arrival_time)
{
    static const char *const with[] = {"FNGATE_ARRIVAL=1700000000.123", NULL};
    static const char *const bad[] = {"FNGATE_ARRIVAL=soon", NULL};

    begin_ok(with, NULL);
    ck_assert_int_eq(fnsdk_req_arrival_ms(req), INT64_C(1700000000123));
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    begin_ok(bad, NULL);
    ck_assert_int_eq(fnsdk_req_arrival_ms(req), -1);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fnsdk_req_arrival_ms(req), -1);
}
END_TEST

/* nginx's $msec is read without strtod; every other form still is, and
 * what strtod refused is still refused. */
START_TEST(arrival_forms)
{
    static const struct {
        const char *param;
        int64_t ms;
    } cases[] = {
        {"FNGATE_ARRIVAL=1700000000.123", INT64_C(1700000000123)},
        {"FNGATE_ARRIVAL=1700000000.5", INT64_C(1700000000500)},
        {"FNGATE_ARRIVAL=1700000000", INT64_C(1700000000000)},
        {"FNGATE_ARRIVAL=1.7e9", INT64_C(1700000000000)},
        {"FNGATE_ARRIVAL=0.001", 1},
        {"FNGATE_ARRIVAL=0.000", -1},
        {"FNGATE_ARRIVAL=-5.000", -1},
        {"FNGATE_ARRIVAL=1700000000.123x", -1},
        {"FNGATE_ARRIVAL=1700000000.1234", INT64_C(1700000000123)},
        {"FNGATE_ARRIVAL=", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].param, NULL};
        begin_ok(env, NULL);
        ck_assert_msg(fnsdk_req_arrival_ms(req) == cases[i].ms, "%s: %lld", cases[i].param,
                      (long long)fnsdk_req_arrival_ms(req));
        ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
        respond();
    }
}
END_TEST

/* The params the SDK reads are picked out in one pass; as with
 * FCGX_GetParam the first of two with one name wins, and a name that only
 * starts like one of them is another param. */
START_TEST(params_first_wins)
{
    static const char *const env[] = {"REQUEST_METHODX=PUT",
                                      "REQUEST_METHOD=POST",
                                      "REQUEST_METHOD=GET",
                                      "FNGATE_REQUEST_ID=first",
                                      "FNGATE_REQUEST_ID=second",
                                      "QUERY_STRING=a=1",
                                      "FNGATE_PATH=/p",
                                      "FNGATE_PATH=/q",
                                      "HTTP_TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                      "00f067aa0ba902b7-01",
                                      NULL};

    begin_ok(env, NULL);
    ck_assert_str_eq(fn_method(req), "POST");
    ck_assert_str_eq(fn_request_id(req), "first");
    ck_assert_str_eq(fn_query_string(req), "a=1");
    ck_assert_str_eq(fn_arg(req, "a"), "1");
    ck_assert_str_eq(fn_path(req), "/p");
    ck_assert_str_eq(fn_trace_id(req), "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(fn_param(req, "REQUEST_METHOD"), "POST");
}
END_TEST

/* ---- the body -------------------------------------------------------------------- */

START_TEST(body_read)
{
    size_t len = 0;

    begin_ok(std_params, "hello world");
    ck_assert_str_eq(fn_body(req, &len), "hello world");
    ck_assert_uint_eq(len, 11);
    ck_assert_str_eq(fn_body(req, NULL), "hello world");
}
END_TEST

START_TEST(body_binary_and_large)
{
    /* Over one STDIN record, NUL bytes included, and exactly max_body. */
    enum { LEN = 70000 };
    static char body[LEN];
    char cl[32];
    const char *params[] = {"REQUEST_METHOD=PUT", cl, NULL};
    const char *got;
    size_t len = 0;

    for (size_t i = 0; i < LEN; i++)
        body[i] = (char)(i * 7);
    snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%d", LEN);
    lim.max_body = LEN;
    ck_assert_int_eq(begin_id(1, params, body, LEN), 0);
    got = fn_body(req, &len);
    ck_assert_uint_eq(len, LEN);
    ck_assert_int_eq(memcmp(got, body, LEN), 0);
    ck_assert_int_eq(got[LEN], '\0');
}
END_TEST

START_TEST(body_none)
{
    static const char *const params[] = {"REQUEST_METHOD=GET", NULL};
    size_t len = 99;

    begin_ok(params, NULL);
    ck_assert_str_eq(fn_body(req, &len), "");
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(body_over_max)
{
    static const char *const params[] = {"REQUEST_METHOD=POST", "CONTENT_LENGTH=100", NULL};
    char body[100], b;

    memset(body, 'z', sizeof(body));
    lim.max_body = 10;
    ck_assert_int_eq(begin_id(1, params, body, sizeof(body)), 413);
    ck_assert(fn_responded(res));
    /* The body was read to its end all the same (no reset for nginx). */
    ck_assert_int_eq(FCGX_GetStr(&b, 1, rq.in), 0);
    ck_assert_str_eq(respond(),
                     http("413 Payload Too Large", "application/json", "",
                          "{\"error\":\"request body of 100 bytes exceeds max_body (10 bytes)\"}"));
}
END_TEST

START_TEST(body_at_max)
{
    static const char *const params[] = {"REQUEST_METHOD=POST", "CONTENT_LENGTH=10", NULL};

    lim.max_body = 10;
    begin_ok(params, "0123456789");
    ck_assert_str_eq(fn_body(req, NULL), "0123456789");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();

    /* max_body 0: no limit. */
    lim.max_body = 0;
    begin_ok(params, "0123456789");
    ck_assert_str_eq(fn_body(req, NULL), "0123456789");
}
END_TEST

START_TEST(body_bad_length)
{
    static const char *const lengths[] = {"CONTENT_LENGTH=abc", "CONTENT_LENGTH=-5",
                                          "CONTENT_LENGTH=12x", "CONTENT_LENGTH=1.5"};

    for (size_t i = 0; i < N(lengths); i++) {
        const char *params[] = {"REQUEST_METHOD=POST", lengths[i], NULL};
        ck_assert_msg(begin(params, "x") == 400, "%s accepted", lengths[i]);
        ck_assert_str_eq(respond(), http("400 Bad Request", "application/json", "",
                                         "{\"error\":\"invalid Content-Length\"}"));
    }
}
END_TEST

START_TEST(body_short)
{
    static const char *const params[] = {"REQUEST_METHOD=POST", "CONTENT_LENGTH=20", NULL};

    ck_assert_int_eq(begin(params, "12345"), 400);
    ck_assert_str_eq(respond(), http("400 Bad Request", "application/json", "",
                                     "{\"error\":\"request body ended after 5 of 20 bytes\"}"));
}
END_TEST

START_TEST(body_length_over_2gib)
{
    static const char *const params[] = {"REQUEST_METHOD=POST", "CONTENT_LENGTH=3000000000", NULL};
    char b;

    /* Refused by max_body with the length in full, the body read to its end. */
    ck_assert_int_eq(begin(params, "12345"), 413);
    ck_assert_int_eq(FCGX_GetStr(&b, 1, rq.in), 0);
    ck_assert_str_eq(
        respond(),
        http("413 Payload Too Large", "application/json", "",
             "{\"error\":\"request body of 3000000000 bytes exceeds max_body (1048576 bytes)\"}"));

    /* No max_body: nothing allocated for the claim, the short body told. */
    lim.max_body = 0;
    ck_assert_int_eq(begin(params, "12345"), 400);
    ck_assert_str_eq(respond(),
                     http("400 Bad Request", "application/json", "",
                          "{\"error\":\"request body ended after 5 of 3000000000 bytes\"}"));
}
END_TEST

START_TEST(body_length_out_of_range)
{
    static const char *const lengths[] = {"CONTENT_LENGTH=99999999999999999999",
                                          "CONTENT_LENGTH=+5", "CONTENT_LENGTH= 5"};

    for (size_t i = 0; i < N(lengths); i++) {
        const char *params[] = {"REQUEST_METHOD=POST", lengths[i], NULL};
        ck_assert_msg(begin(params, "12345") == 400, "%s accepted", lengths[i]);
        ck_assert_str_eq(respond(), http("400 Bad Request", "application/json", "",
                                         "{\"error\":\"invalid Content-Length\"}"));
    }
}
END_TEST

START_TEST(args_nul_refused)
{
    static const char *const queries[] = {"QUERY_STRING=a=x%00y", "QUERY_STRING=%00=1",
                                          "QUERY_STRING=ok=1&b=%00", "QUERY_STRING=a%00b"};

    for (size_t i = 0; i < N(queries); i++) {
        const char *params[] = {"REQUEST_METHOD=GET", queries[i], NULL};
        ck_assert_msg(begin(params, NULL) == 400, "%s accepted", queries[i]);
        ck_assert_str_eq(respond(),
                         http("400 Bad Request", "application/json", "",
                              "{\"error\":\"the query string has an argument with a NUL byte "
                              "(%00), which the function cannot read\"}"));
    }
    /* An escaped percent sign followed by 00 is no NUL. */
    {
        const char *params[] = {"REQUEST_METHOD=GET", "QUERY_STRING=a=%2500", NULL};
        begin_ok(params, NULL);
        ck_assert_str_eq(fn_arg(req, "a"), "%00");
    }
}
END_TEST

START_TEST(form_body_nul_refused)
{
    static const char *const params[] = {"REQUEST_METHOD=POST",
                                         "CONTENT_TYPE=application/x-www-form-urlencoded",
                                         "CONTENT_LENGTH=7", NULL};
    static const char *const other[] = {"REQUEST_METHOD=POST", "CONTENT_TYPE=text/plain",
                                        "CONTENT_LENGTH=7", NULL};
    static const char raw[] = "a=b\0c=d";

    ck_assert_int_eq(begin(params, "a=%00xy"), 400);
    ck_assert_str_eq(respond(), http("400 Bad Request", "application/json", "",
                                     "{\"error\":\"the form body has an argument with a NUL byte "
                                     "(%00), which the function cannot read\"}"));
    ck_assert_int_eq(begin_id(1, params, raw, 7), 400);
    respond();
    /* Any other body is the handler's to read, NUL bytes and all. */
    ck_assert_int_eq(begin_id(1, other, raw, 7), 0);
    ck_assert_int_eq(memcmp(fn_body(req, NULL), raw, 7), 0);
}
END_TEST

START_TEST(headers_names_are_tokens)
{
    static const char *const bad[] = {
        "X A",    "X(A)",           "X\"A",           "X/A", "\xc3\x84", "X\tA", "Status",
        "status", "Content-Length", "CONTENT-LENGTH", "X=A", "{}",       "X@A"};

    begin_ok(std_params, "hello world");
    for (size_t i = 0; i < N(bad); i++) {
        errno = 0;
        ck_assert_msg(fn_set_header(res, bad[i], "1") == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(errno, EINVAL);
    }
    ck_assert_int_eq(fn_set_header(res, "X-A", "1\x01"), -1);
    ck_assert_int_eq(fn_set_header(res, "X-A", "1\x7f"), -1);
    ck_assert_int_eq(fn_set_header(res, "X-Ok_1!#$%&'*+.^`|~", "a\tb c"), 0);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    ck_assert_str_eq(respond(), http("200 OK", "text/plain; charset=utf-8",
                                     "X-Ok_1!#$%&'*+.^`|~: a\tb c\r\n", "ok"));
}
END_TEST

START_TEST(body_json_valid)
{
    json_t *j, *again;

    ck_assert_int_eq(begin_post("{\"a\": [1, 2, 3]}\n"), 0);
    j = fn_body_json(req, res);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_object(j));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "a")), 3);
    again = fn_body_json(req, res); /* parsed once, owned by the request */
    ck_assert_ptr_eq(again, j);
    ck_assert(!fn_responded(res));
}
END_TEST

/* The JSON error message fn_body_json put in the response, checked for a
 * 400 and the "invalid JSON: " prefix. */
static const char *json_error_body(void)
{
    const char *o = respond(), *body;
    static const char head[] = "Status: 400 Bad Request\r\nContent-Type: application/json\r\n";

    ck_assert_msg(strncmp(o, head, strlen(head)) == 0, "response: %s", o);
    body = strstr(o, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    body += 4;
    ck_assert_msg(strncmp(body, "{\"error\":\"invalid JSON: ", 24) == 0, "body: %s", body);
    return body;
}

START_TEST(body_json_invalid)
{
    const char *body;

    ck_assert_int_eq(begin_post("{\"a\": tru"), 0);
    ck_assert_ptr_null(fn_body_json(req, res));
    ck_assert(fn_responded(res));
    body = json_error_body();
    ck_assert_msg(strstr(body, " at line 1 column ") != NULL, "body: %s", body);

    /* The line is counted. */
    ck_assert_int_eq(begin_post("{\n\"a\":\n  tru}"), 0);
    ck_assert_ptr_null(fn_body_json(req, res));
    body = json_error_body();
    ck_assert_msg(strstr(body, " at line 3 column ") != NULL, "body: %s", body);
}
END_TEST

START_TEST(body_json_scalar)
{
    /* Any JSON value is a JSON text (RFC 8259), and the SDK itself sends
     * scalars (fn_send_json encodes with JSON_ENCODE_ANY): a body of 42,
     * "text", true or null is valid JSON, not a 400 "invalid JSON". */
    static const char *const bodies[] = {"42", "\"text\"", "true", "null", " 1.5\n"};

    for (size_t i = 0; i < N(bodies); i++) {
        json_t *j;
        ck_assert_int_eq(begin_post(bodies[i]), 0);
        j = fn_body_json(req, res);
        ck_assert_msg(j != NULL && !fn_responded(res), "body '%s' refused as invalid JSON",
                      bodies[i]);
        ck_assert(!json_is_object(j) && !json_is_array(j));
        ck_assert_int_eq(fn_send_json(res, 200, j), 0);
        respond();
    }
}
END_TEST

START_TEST(body_json_empty)
{
    static const char *const params[] = {"REQUEST_METHOD=POST", NULL};
    const char *body;

    begin_ok(params, NULL);
    ck_assert_ptr_null(fn_body_json(req, res));
    body = json_error_body();
    ck_assert_msg(strstr(body, " at line 1 column ") != NULL, "body: %s", body);
}
END_TEST

/* ---- responses ------------------------------------------------------------------ */

START_TEST(write_json)
{
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_jsonf(res, 200, "{s:s, s:i}", "hello", "world", "n", 3), 0);
    ck_assert(fn_responded(res));
    ck_assert_str_eq(respond(), "Status: 200 OK\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 23\r\n"
                                "\r\n"
                                "{\"hello\":\"world\",\"n\":3}");
    ck_assert_uint_eq(out_len, strlen(out));
}
END_TEST

START_TEST(write_large_body)
{
    /* Over one STDOUT record: Content-Length is the exact byte count. */
    enum { LEN = 100000 };
    static char body[LEN];
    char head[128];
    int n;

    memset(body, 'b', sizeof(body));
    body[0] = '\0';
    body[LEN - 1] = '\n';
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send(res, 201, NULL, body, LEN), 0);
    respond();
    n = snprintf(head, sizeof(head),
                 "Status: 201 Created\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %d\r\n\r\n",
                 LEN);
    ck_assert_uint_eq(out_len, (size_t)n + LEN);
    ck_assert_int_eq(memcmp(out, head, (size_t)n), 0);
    ck_assert_int_eq(memcmp(out + n, body, LEN), 0);
}
END_TEST

START_TEST(write_empty_and_text)
{
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send(res, 204, NULL, NULL, 0), 0);
    ck_assert_str_eq(respond(), http("204 No Content", "application/octet-stream", "", ""));

    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_text(res, 404, "no such item\n"), 0);
    ck_assert_str_eq(respond(),
                     http("404 Not Found", "text/plain; charset=utf-8", "", "no such item\n"));
}
END_TEST

START_TEST(write_headers)
{
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_set_header(res, "X-Trace", "abc"), 0);
    ck_assert_int_eq(fn_set_header(res, "Cache-Control", "no-store"), 0);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    ck_assert_str_eq(respond(), http("200 OK", "text/plain; charset=utf-8",
                                     "X-Trace: abc\r\nCache-Control: no-store\r\n", "ok"));
}
END_TEST

START_TEST(headers_reject_crlf)
{
    static const struct {
        const char *name, *value;
    } bad[] = {
        {"X-A\r\nX-Injected", "1"},
        {"X-A", "1\r\nX-Injected: 1"},
        {"X-A", "1\nX-Injected: 1"},
        {"X-A\n", "1"},
        {"X-A", "1\r"},
        {"X-A: 1\r\nX", "1"},
        {"X:A", "1"},
        {"", "1"},
        {NULL, "1"},
        {"X-A", NULL},
    };

    begin_ok(std_params, "hello world");
    for (size_t i = 0; i < N(bad); i++)
        ck_assert_msg(fn_set_header(res, bad[i].name, bad[i].value) == -1, "case %zu accepted", i);
    ck_assert(!fn_responded(res));
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    /* None of them reached the response. */
    ck_assert_str_eq(respond(), http("200 OK", "text/plain; charset=utf-8", "", "ok"));

    /* A content type with CR/LF is refused and sets no response. */
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send(res, 200, "text/plain\r\nX-Injected: 1", "x", 1), -1);
    ck_assert(!fn_responded(res));
}
END_TEST

START_TEST(error_and_jsonf_escape_crlf)
{
    /* CR/LF in a message or a value stays inside the JSON string. */
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_error(res, 422, "bad %s", "x\r\nX-Injected: 1"), 0);
    ck_assert_str_eq(respond(), http("422 Unprocessable Entity", "application/json", "",
                                     "{\"error\":\"bad x\\r\\nX-Injected: 1\"}"));

    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_jsonf(res, 200, "{s:s}", "v", "a\nb\r"), 0);
    ck_assert_str_eq(respond(), http("200 OK", "application/json", "", "{\"v\":\"a\\nb\\r\"}"));
}
END_TEST

START_TEST(jsonf_bad_format)
{
    const char *o;

    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_jsonf(res, 200, "{s:s}", "key", NULL), 0);
    o = respond();
    ck_assert_int_eq(strncmp(o, "Status: 500 Internal Server Error\r\n", 35), 0);
    ck_assert_ptr_nonnull(strstr(o, "\r\n\r\n{\"error\":\"json_pack: "));

    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_json_new(res, 200, NULL), 0);
    ck_assert_str_eq(respond(), http("500 Internal Server Error", "application/json", "",
                                     "{\"error\":\"response is not serialisable JSON\"}"));
}
END_TEST

START_TEST(status_range)
{
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send(res, 99, "text/plain", "x", 1), -1);
    ck_assert_int_eq(fn_send(res, 1000, "text/plain", "x", 1), -1);
    ck_assert(!fn_responded(res));
    ck_assert_int_eq(fn_send(res, 418, "text/plain", "x", 1), 0);
    ck_assert_str_eq(respond(), http("418 ", "text/plain", "", "x"));
}
END_TEST

START_TEST(last_response_wins)
{
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_text(res, 200, "first"), 0);
    ck_assert_int_eq(fn_send_jsonf(res, 201, "{s:b}", "ok", 1), 0);
    ck_assert_str_eq(respond(), http("201 Created", "application/json", "", "{\"ok\":true}"));
}
END_TEST

/* ---- one connection, several requests ------------------------------------------ */

START_TEST(keepalive_state_reset)
{
    static const char *const second[] = {
        "QUERY_STRING=z=9",
        "REQUEST_METHOD=GET",
        "HTTP_X_ONLY_SECOND=yes",
        NULL,
    };
    size_t len = 1;

    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_send_text(res, 200, "one"), 0);
    ck_assert_int_eq(fn_set_header(res, "X-First", "1"), 0);
    ck_assert_str_eq(respond_id(1),
                     http("200 OK", "text/plain; charset=utf-8", "X-First: 1\r\n", "one"));

    ck_assert_int_eq(begin_id(2, second, NULL, 0), 0);
    ck_assert_uint_eq(fn_arg_count(req), 1);
    ck_assert_ptr_null(fn_arg(req, "a"));
    ck_assert_str_eq(fn_arg(req, "z"), "9");
    ck_assert_uint_eq(fn_header_count(req), 1);
    ck_assert_ptr_null(fn_header(req, "x-forwarded-for"));
    ck_assert_str_eq(fn_body(req, &len), "");
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(fn_method(req), "GET");
    ck_assert(!fn_responded(res));
    ck_assert_int_eq(fn_send_text(res, 200, "two"), 0);
    ck_assert_str_eq(respond_id(2), http("200 OK", "text/plain; charset=utf-8", "", "two"));
}
END_TEST

/* ---- behind any front end (issue 9.8) ------------------------------------------- */

static const char *path_of(const char *const *params)
{
    begin_ok(params, NULL);
    return fn_path(req);
}

START_TEST(path_fngate_path_wins)
{
    static const char *const p[] = {"FNGATE_PATH=/a", "PATH_INFO=/b", "REQUEST_URI=/fn/x/c",
                                    "SCRIPT_NAME=/fn/x", NULL};
    ck_assert_str_eq(path_of(p), "/a");
}
END_TEST

START_TEST(path_fngate_path_empty)
{
    static const char *const p[] = {"FNGATE_PATH=", "PATH_INFO=/b", NULL};
    ck_assert_str_eq(path_of(p), "");
}
END_TEST

START_TEST(path_from_path_info)
{
    /* nginx: include fastcgi_params; fastcgi_split_path_info; PATH_INFO. */
    static const char *const p[] = {"SCRIPT_NAME=/fn/users", "PATH_INFO=/2",
                                    "REQUEST_URI=/fn/users/2?x=1", NULL};
    ck_assert_str_eq(path_of(p), "/2");
}
END_TEST

START_TEST(path_from_request_uri)
{
    /* Apache mod_proxy_fcgi: no PATH_INFO; the raw URI is decoded. */
    static const char *const p[] = {"SCRIPT_NAME=/fn/users",
                                    "PATH_INFO=", "REQUEST_URI=/fn/users/2%20b/c?x=/y", NULL};
    ck_assert_str_eq(path_of(p), "/2 b/c");
}
END_TEST

START_TEST(path_request_uri_trailing_slash_prefix)
{
    static const char *const p[] = {"SCRIPT_NAME=/fn/users/", "REQUEST_URI=/fn/users/7", NULL};
    ck_assert_str_eq(path_of(p), "/7");
}
END_TEST

START_TEST(path_request_uri_bare_prefix)
{
    static const char *const p[] = {"SCRIPT_NAME=/fn/users", "REQUEST_URI=/fn/users?q=1", NULL};
    ck_assert_str_eq(path_of(p), "");
}
END_TEST

START_TEST(path_request_uri_other_prefix)
{
    static const char *const p[] = {"SCRIPT_NAME=/fn/users", "REQUEST_URI=/fn/usersx/1", NULL};
    ck_assert_str_eq(path_of(p), "");
}
END_TEST

START_TEST(path_request_uri_nul_kept_encoded)
{
    static const char *const p[] = {"SCRIPT_NAME=/fn/u", "REQUEST_URI=/fn/u/a%00b%2", NULL};
    ck_assert_str_eq(path_of(p), "/a%00b%2");
}
END_TEST

START_TEST(path_whole_script_name_own_prefix)
{
    /* Apache's ProxyPass, nginx without fastcgi_split_path_info. */
    static const char *const p[] = {"SCRIPT_NAME=/fn/users/2/a b", "FNGATE_FUNCTION=users",
                                    "REQUEST_URI=/fn/users/2/a%20b?q=1", NULL};
    static const char *const env[] = {"SCRIPT_NAME=/fn/users/9", "REQUEST_URI=/fn/users/9", NULL};
    static const char *const other[] = {"SCRIPT_NAME=/fn/usersx/9", "REQUEST_URI=/fn/usersx/9",
                                        NULL};
    ck_assert_str_eq(path_of(p), "/2/a b");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    /* The name from the environment, as the gateway sets it. */
    setenv("FNGATE_FUNCTION", "users", 1);
    ck_assert_int_eq(begin_id(1, env, NULL, 0), 0);
    ck_assert_str_eq(fn_path(req), "/9");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    /* Another function's prefix is not ours. */
    ck_assert_int_eq(begin_id(1, other, NULL, 0), 0);
    ck_assert_str_eq(fn_path(req), "");
}
END_TEST

START_TEST(path_nothing_known)
{
    static const char *const p[] = {"REQUEST_URI=/fn/u/a", NULL};
    ck_assert_str_eq(path_of(p), "");
}
END_TEST

/* ---- SDK additions (issue 9.9) --------------------------------------------------- */

START_TEST(arg_all_repeated)
{
    static const char *const p[] = {"QUERY_STRING=tag=a&x=1&tag=b%20c&tag=", NULL};
    const char *v[2] = {NULL, NULL};

    begin_ok(p, NULL);
    ck_assert_uint_eq(fn_arg_all(req, "tag", NULL, 0), 3);
    ck_assert_uint_eq(fn_arg_all(req, "tag", v, 2), 3);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b c");
    ck_assert_uint_eq(fn_arg_all(req, "nope", v, 2), 0);
    ck_assert_str_eq(fn_arg(req, "tag"), "a");
}
END_TEST

static void begin_form(const char *ctype, const char *query, const char *body)
{
    char cl[40], ct[160], qs[160];
    const char *params[] = {"REQUEST_METHOD=POST", cl, ct, qs, NULL};

    snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%zu", strlen(body));
    snprintf(ct, sizeof(ct), "CONTENT_TYPE=%s", ctype);
    snprintf(qs, sizeof(qs), "QUERY_STRING=%s", query);
    begin_ok(params, body);
}

START_TEST(form_body_args)
{
    const char *v[3];

    begin_form("application/x-www-form-urlencoded", "q=0&tag=url",
               "name=Ada+Lovelace&tag=x&tag=y%26z");
    ck_assert_str_eq(fn_arg(req, "q"), "0");
    ck_assert_str_eq(fn_arg(req, "name"), "Ada Lovelace");
    ck_assert_uint_eq(fn_arg_all(req, "tag", v, 3), 3);
    ck_assert_str_eq(v[0], "url"); /* the URL's come first */
    ck_assert_str_eq(v[1], "x");
    ck_assert_str_eq(v[2], "y&z");
    ck_assert_uint_eq(fn_arg_count(req), 5);
    /* The raw body is still there. */
    ck_assert_str_eq(fn_body(req, NULL), "name=Ada+Lovelace&tag=x&tag=y%26z");
}
END_TEST

START_TEST(form_body_content_type_params_and_case)
{
    begin_form("Application/X-WWW-Form-Urlencoded; charset=UTF-8", "", "a=1");
    ck_assert_str_eq(fn_arg(req, "a"), "1");
}
END_TEST

START_TEST(form_body_other_types_not_args)
{
    begin_form("application/json", "", "a=1");
    ck_assert_ptr_null(fn_arg(req, "a"));
    ck_assert_uint_eq(fn_arg_count(req), 0);
}
END_TEST

START_TEST(form_body_prefix_type_not_args)
{
    begin_form("application/x-www-form-urlencodedx", "", "a=1");
    ck_assert_ptr_null(fn_arg(req, "a"));
}
END_TEST

START_TEST(deadline)
{
    long long left;

    fnsdk_req_set_timeout(0);
    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_deadline_ms(req), -1);
    fnsdk_req_set_timeout(5000);
    left = fn_deadline_ms(req);
    ck_assert_msg(left > 4000 && left <= 5000, "fn_deadline_ms %lld", left);
    usleep(120 * 1000);
    ck_assert_int_lt(fn_deadline_ms(req), left - 100);
    fnsdk_req_set_timeout(1);
    usleep(5 * 1000);
    ck_assert_int_eq(fn_deadline_ms(req), 0);
    fnsdk_req_set_timeout(0);
}
END_TEST

START_TEST(log_carries_request_id)
{
    const char *got;

    begin_ok(std_params, "hello world");
    testutil_capture_begin();
    fn_log("looked up %d rows", 3);
    got = testutil_capture_end();
    ck_assert_str_eq(got, "[req 0123abcd] looked up 3 rows\n");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    testutil_capture_begin();
    fn_log("between requests");
    got = testutil_capture_end();
    ck_assert_str_eq(got, "between requests\n");
}
END_TEST

/* A request the front end sent no id for still has its lines tagged: with
 * the id the SDK made for it. */
START_TEST(log_without_request_id)
{
    static const char *const p[] = {"REQUEST_METHOD=GET", NULL};
    char want[64];
    const char *got;

    begin_ok(p, NULL);
    snprintf(want, sizeof(want), "[req %s] plain\n", fn_request_id(req));
    testutil_capture_begin();
    fn_log("plain");
    got = testutil_capture_end();
    ck_assert_str_eq(got, want);
}
END_TEST

/* A handler's own X-Request-Id replaces the SDK's: one header, its value. */
START_TEST(request_id_header_set_by_handler)
{
    const char *o;

    begin_ok(std_params, "hello world");
    ck_assert_int_eq(fn_set_header(res, "x-request-id", "mine"), 0);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    o = respond();
    ck_assert_ptr_null(strstr(o, "X-Request-Id"));
    ck_assert_ptr_nonnull(strstr(o, "\r\nx-request-id: mine\r\n"));
}
END_TEST

/* Writes the response and returns what nginx got, X-Request-Id included. */
static const char *respond_whole(void)
{
    ck_assert_int_eq(fnsdk_res_write(res, &rq), 0);
    fnsdk_res_reset(res);
    fnsdk_req_end(req);
    FCGX_Finish_r(&rq);
    read_response(1);
    return out;
}

/* An id the front end sent becomes X-Request-Id only as a valid header
 * value of at most 128 bytes (a tab is one; a control character or a longer
 * id is left out, never written); an id the SDK made always does. */
START_TEST(request_id_header_only_when_valid)
{
    static const char *const ctl[] = {"FNGATE_REQUEST_ID=bad\001id", NULL};
    static const char *const tab[] = {"FNGATE_REQUEST_ID=a\tb", NULL};
    static const char *const none[] = {"REQUEST_METHOD=GET", NULL};
    char at_max[20 + 128 + 1], too_long[20 + 129 + 1], want[160];
    const char *const max_env[] = {at_max, NULL}, *const long_env[] = {too_long, NULL};
    const char *o;

    snprintf(at_max, sizeof(at_max), "FNGATE_REQUEST_ID=%0128d", 7);
    snprintf(too_long, sizeof(too_long), "FNGATE_REQUEST_ID=%0129d", 7);
    begin_ok(ctl, NULL);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    ck_assert_ptr_null(strstr(respond_whole(), "X-Request-Id"));
    begin_ok(long_env, NULL);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    ck_assert_ptr_null(strstr(respond_whole(), "X-Request-Id"));
    begin_ok(max_env, NULL);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    snprintf(want, sizeof(want), "\r\nX-Request-Id: %s\r\n", at_max + 18);
    ck_assert_ptr_nonnull(strstr(respond_whole(), want));
    begin_ok(tab, NULL);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    ck_assert_ptr_nonnull(strstr(respond_whole(), "\r\nX-Request-Id: a\tb\r\n"));
    begin_ok(none, NULL);
    snprintf(want, sizeof(want), "\r\nX-Request-Id: %s\r\n", fn_request_id(req));
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    o = respond_whole();
    ck_assert_ptr_nonnull(strstr(o, want));
}
END_TEST

/* The ids one instance makes share their first 16 hex digits (its random
 * prefix) and differ in the last 16 (its counter, mixed). */
START_TEST(request_ids_share_the_instance_prefix)
{
    static const char *const none[] = {"REQUEST_METHOD=GET", NULL};
    char first[33];

    begin_ok(none, NULL);
    memcpy(first, fn_request_id(req), 33);
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    for (int i = 0; i < 20; i++) {
        const char *id;
        begin_ok(none, NULL);
        id = fn_request_id(req);
        ck_assert_int_eq(strncmp(id, first, 16), 0);
        ck_assert_int_ne(strncmp(id + 16, first + 16, 16), 0);
        ck_assert_int_eq(strspn(id, "0123456789abcdef"), 32);
        ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
        respond();
    }
}
END_TEST

/* A param shorter than a name it starts like, or one letter long, is
 * another param, and is never read past its end (ASan would say). */
START_TEST(params_short_names)
{
    static const char *const env[] = {"R=x",
                                      "RE=x",
                                      "REQUEST_METHO=PUT",
                                      "C=",
                                      "CONTENT_TYP=a",
                                      "F=",
                                      "FNGATE_PATH_=/no",
                                      "H=",
                                      "HTTP_TRACEPARENT_=x",
                                      "Q=",
                                      "S=",
                                      "P=",
                                      "REQUEST_METHOD=GET",
                                      NULL};

    begin_ok(env, NULL);
    ck_assert_str_eq(fn_method(req), "GET");
    ck_assert_str_eq(fn_query_string(req), "");
    ck_assert_str_eq(fn_path(req), "");
    ck_assert_ptr_null(fn_trace_id(req));
    ck_assert_int_eq(strlen(fn_request_id(req)), 32);
}
END_TEST

/* fn_main reads $FNGATE_FUNCTION once: a later change of the environment
 * does not rename the function; a front end's FNGATE_FUNCTION still wins. */
START_TEST(function_name_read_once)
{
    static const char *const none[] = {"REQUEST_METHOD=GET", NULL};
    static const char *const sent[] = {"FNGATE_FUNCTION=fromparam", NULL};

    setenv("FNGATE_FUNCTION", "atstart", 1);
    fnsdk_req_set_function(getenv("FNGATE_FUNCTION"));
    setenv("FNGATE_FUNCTION", "later", 1);
    begin_ok(none, NULL);
    ck_assert_str_eq(fn_name(req), "atstart");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    begin_ok(sent, NULL);
    ck_assert_str_eq(fn_name(req), "fromparam");
    ck_assert_int_eq(fn_send_text(res, 200, "ok"), 0);
    respond();
    fnsdk_req_set_function(NULL);
    begin_ok(none, NULL);
    ck_assert_str_eq(fn_name(req), "");
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

/* The check fnsdk_loop.c makes before taking a request: a live channel passes
 * (and stays usable), one the pool closed or wrote to unasked does not. */
static int channel_pair(int pair[2])
{
    char num[16];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    snprintf(num, sizeof(num), "%d", pair[0]);
    setenv("FNGATE_DB_FD", num, 1);
    return pair[0];
}

START_TEST(channel_live_passes)
{
    int pair[2], fd = channel_pair(pair);

    ck_assert_int_eq(fnsdk_db_watch_fd(), fd);
    ck_assert(fnsdk_db_channel_ok());
    ck_assert(fnsdk_db_channel_ok());
    ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
    close(pair[1]);
    ck_assert(!fnsdk_db_channel_ok());
    /* Broken for good: closed, and no longer offered for watching. */
    ck_assert_int_eq(fnsdk_db_watch_fd(), -1);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert(!fnsdk_db_channel_ok());
}
END_TEST

START_TEST(channel_unasked_bytes_fail)
{
    int pair[2];

    channel_pair(pair);
    ck_assert(fnsdk_db_channel_ok());
    ck_assert_int_eq(write(pair[1], "R", 1), 1);
    ck_assert(!fnsdk_db_channel_ok());
    close(pair[1]);
}
END_TEST

START_TEST(channel_none_passes)
{
    unsetenv("FNGATE_DB_FD");
    ck_assert_int_eq(fnsdk_db_watch_fd(), -1);
    ck_assert(fnsdk_db_channel_ok());
}
END_TEST

/* What the pool receives for integer parameters (decimal, exact at both
 * ends of int64) and what the function reads back as the command tag (a C
 * string, cut at 63 bytes or at a NUL), with the answer queued ahead. */
static void queue_answer(int fd, const char *tag, size_t taglen)
{
    struct fnsdk_buf b;

    fnsdk_buf_init(&b, 0);
    fnsdk_frame_begin(&b, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&b, tag, taglen);
    fnsdk_frame_add(&b, "1", 1);
    fnsdk_frame_add(&b, "[{}]", 4);
    ck_assert_int_eq(fnsdk_frame_end(&b), 0);
    ck_assert_int_eq(write(fd, b.data, b.len), (ssize_t)b.len);
    fnsdk_buf_free(&b);
}

START_TEST(query_int_params_and_tag)
{
    static const char *const params[] = {"REQUEST_METHOD=GET", NULL};
    static const char *const want[] = {"0", "7", "-1", "9223372036854775807",
                                       "-9223372036854775808"};
    static struct fnsdk_frame_view v;
    char tag[80], got[256], err[128];
    int pair[2];
    ssize_t n;
    fn_rows *rows;

    channel_pair(pair);
    begin_ok(params, NULL);
    memset(tag, 'T', sizeof(tag));
    queue_answer(pair[1], tag, 70);
    rows = fn_query(req, "SELECT $1, $2, $3, $4, $5", "[IIIII]", (json_int_t)0, (json_int_t)7,
                    (json_int_t)-1, (json_int_t)INT64_MAX, (json_int_t)INT64_MIN);
    ck_assert_ptr_nonnull(rows);
    ck_assert_uint_eq(strlen(fn_rows_tag(rows)), 63);
    n = read(pair[1], got, sizeof(got));
    ck_assert_int_gt(n, 4);
    ck_assert_int_eq(fnsdk_frame_parse(got + 4, (size_t)n - 4, &v, err, sizeof(err)), 0);
    ck_assert_uint_ge(v.n_fields, 6);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(v.field[i + 1].p[0], FNSDK_FRAME_P_INT);
        ck_assert_uint_eq(v.field[i + 1].len - 1, strlen(want[i]));
        ck_assert_int_eq(memcmp(v.field[i + 1].p + 1, want[i], strlen(want[i])), 0);
    }
    queue_answer(pair[1], "INSERT 0 1\0junk", 15);
    rows = fn_query(req, "INSERT INTO t VALUES (1)", NULL);
    ck_assert_ptr_nonnull(rows);
    ck_assert_str_eq(fn_rows_tag(rows), "INSERT 0 1");
    ck_assert_int_eq(fn_rows_count(rows), 1);
    close(pair[1]);
}
END_TEST

static Suite *sdk_suite(void)
{
    Suite *s = suite_create("sdk");
    TCase *tc;

    tc = tcase("args");
    tcase_add_test(tc, args_decoded);
    tcase_add_test(tc, args_edge_cases);
    tcase_add_test(tc, args_none);
    suite_add_tcase(s, tc);

    tc = tcase("headers");
    tcase_add_test(tc, headers_canonical);
    tcase_add_test(tc, headers_empty_content_type_skipped);
    tcase_add_test(tc, headers_long_value);
    tcase_add_test(tc, request_line);
    tcase_add_test(tc, arrival_time);
    tcase_add_test(tc, arrival_forms);
    tcase_add_test(tc, params_first_wins);
    tcase_add_test(tc, request_id_made_when_absent);
    tcase_add_test(tc, request_id_header_set_by_handler);
    tcase_add_test(tc, request_id_header_only_when_valid);
    tcase_add_test(tc, request_ids_share_the_instance_prefix);
    tcase_add_test(tc, params_short_names);
    tcase_add_test(tc, function_name_read_once);
    suite_add_tcase(s, tc);

    tc = tcase("body");
    tcase_add_test(tc, body_read);
    tcase_add_test(tc, body_binary_and_large);
    tcase_add_test(tc, body_none);
    tcase_add_test(tc, body_over_max);
    tcase_add_test(tc, body_at_max);
    tcase_add_test(tc, body_bad_length);
    tcase_add_test(tc, body_short);
    tcase_add_test(tc, body_length_over_2gib);
    tcase_add_test(tc, body_length_out_of_range);
    tcase_add_test(tc, args_nul_refused);
    tcase_add_test(tc, form_body_nul_refused);
    tcase_add_test(tc, headers_names_are_tokens);
    tcase_add_test(tc, body_json_valid);
    tcase_add_test(tc, body_json_invalid);
    tcase_add_test(tc, body_json_scalar);
    tcase_add_test(tc, body_json_empty);
    suite_add_tcase(s, tc);

    tc = tcase("response");
    tcase_add_test(tc, write_json);
    tcase_add_test(tc, write_large_body);
    tcase_add_test(tc, write_empty_and_text);
    tcase_add_test(tc, write_headers);
    tcase_add_test(tc, headers_reject_crlf);
    tcase_add_test(tc, error_and_jsonf_escape_crlf);
    tcase_add_test(tc, jsonf_bad_format);
    tcase_add_test(tc, status_range);
    tcase_add_test(tc, last_response_wins);
    suite_add_tcase(s, tc);

    tc = tcase("connection");
    tcase_add_test(tc, keepalive_state_reset);
    suite_add_tcase(s, tc);

    tc = tcase("portability");
    tcase_add_test(tc, path_fngate_path_empty);
    tcase_add_test(tc, path_fngate_path_wins);
    tcase_add_test(tc, path_from_path_info);
    tcase_add_test(tc, path_from_request_uri);
    tcase_add_test(tc, path_request_uri_trailing_slash_prefix);
    tcase_add_test(tc, path_request_uri_bare_prefix);
    tcase_add_test(tc, path_request_uri_other_prefix);
    tcase_add_test(tc, path_request_uri_nul_kept_encoded);
    tcase_add_test(tc, path_whole_script_name_own_prefix);
    tcase_add_test(tc, path_nothing_known);
    suite_add_tcase(s, tc);

    tc = tcase("additions");
    tcase_add_test(tc, arg_all_repeated);
    tcase_add_test(tc, form_body_args);
    tcase_add_test(tc, form_body_content_type_params_and_case);
    tcase_add_test(tc, form_body_other_types_not_args);
    tcase_add_test(tc, form_body_prefix_type_not_args);
    tcase_add_test(tc, deadline);
    tcase_add_test(tc, log_carries_request_id);
    tcase_add_test(tc, log_without_request_id);
    suite_add_tcase(s, tc);

    tc = tcase("db channel");
    tcase_add_test(tc, channel_live_passes);
    tcase_add_test(tc, channel_unasked_bytes_fail);
    tcase_add_test(tc, channel_none_passes);
    tcase_add_test(tc, query_int_params_and_tag);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(sdk_suite)
