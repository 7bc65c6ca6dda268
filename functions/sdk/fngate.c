/*
 * The request and response side of libfngate.  A request's params, arguments
 * and headers are parsed once into arrays owned by the fn_req and reused from
 * one request to the next; the response is built in memory and written in one
 * go when the handler returns, which is what lets the accept loop answer 500
 * for a handler that forgot to respond and 504 for one that ran too long.
 */
#include "config.h"

#include "fngate.h"
#include "fn_loop.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct fn_pair {
    char *name;
    char *value;
};

struct fn_pairs {
    struct fn_pair *v;
    size_t n, cap;
};

struct fn_req {
    FCGX_Request *r; /* borrowed for the request */
    const char *method, *path, *name, *request_id, *query;
    struct fn_pairs args;    /* decoded URL arguments, owned; parsed on first use */
    struct fn_pairs headers; /* canonical names, owned; parsed on first use */
    bool args_parsed, headers_parsed;
    char *body; /* owned, NUL-terminated */
    size_t body_len, body_cap;
    json_t *json;        /* owned; parsed on demand */
    struct fn_dbreq *db; /* owned: rows and the last error (fn_db.c) */
};

struct fn_res {
    int status; /* 0: no response yet */
    char *content_type;
    struct fn_pairs headers;
    char *body_base; /* owned allocation; the body starts body_off into it */
    size_t body_off;
    size_t body_len;
};

static const char *fn_empty = "";

/* ------------------------------------------------------------------------ */

static int fn_pairs_add(struct fn_pairs *p, char *name, char *value)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct fn_pair *nv = realloc(p->v, ncap * sizeof(*nv));
        if (!nv)
            return -1;
        p->v = nv;
        p->cap = ncap;
    }
    p->v[p->n].name = name;
    p->v[p->n].value = value;
    p->n++;
    return 0;
}

static void fn_pairs_clear(struct fn_pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].value);
    }
    p->n = 0;
}

static void fn_pairs_free(struct fn_pairs *p)
{
    fn_pairs_clear(p);
    free(p->v);
    p->v = NULL;
    p->cap = 0;
}

/* ------------------------------------------------------------------------
 * Request
 */

fn_req *fn_req_new(void)
{
    return calloc(1, sizeof(fn_req));
}

void fn_req_free(fn_req *req)
{
    if (!req)
        return;
    fn_req_end(req);
    fn_pairs_free(&req->args);
    fn_pairs_free(&req->headers);
    free(req->body);
    free(req);
}

static int fn_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes %XX and '+' of the N bytes at S into a new string. */
static char *fn_url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n && (hi = fn_hex((unsigned char)s[i + 1])) >= 0 &&
                   (lo = fn_hex((unsigned char)s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int fn_parse_query(fn_req *req, const char *q)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq ? (size_t)(eq - q) : len;
        if (len > 0) {
            char *name = fn_url_decode(q, nlen);
            char *value = eq ? fn_url_decode(eq + 1, len - nlen - 1) : strdup("");
            if (!name || !value || fn_pairs_add(&req->args, name, value) < 0) {
                free(name);
                free(value);
                return -1;
            }
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* "HTTP_X_FORWARDED_FOR" -> "X-Forwarded-For" */
static char *fn_header_name(const char *param, size_t len)
{
    char *out = malloc(len + 1);
    bool up = true;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = param[i];
        if (c == '_') {
            out[i] = '-';
            up = true;
        } else {
            out[i] = up ? (char)toupper((unsigned char)c) : (char)tolower((unsigned char)c);
            up = false;
        }
    }
    out[len] = '\0';
    return out;
}

static int fn_parse_headers(fn_req *req, char **envp)
{
    for (char **e = envp; e && *e; e++) {
        const char *p = *e, *eq = strchr(p, '=');
        const char *name;
        size_t nlen;
        char *hn, *hv;

        if (!eq)
            continue;
        if (strncmp(p, "HTTP_", 5) == 0) {
            name = p + 5;
            nlen = (size_t)(eq - name);
        } else if (strncmp(p, "CONTENT_TYPE=", 13) == 0 || strncmp(p, "CONTENT_LENGTH=", 15) == 0) {
            if (eq[1] == '\0')
                continue;
            name = p;
            nlen = (size_t)(eq - p);
        } else {
            continue;
        }
        hn = fn_header_name(name, nlen);
        hv = strdup(eq + 1);
        if (!hn || !hv || fn_pairs_add(&req->headers, hn, hv) < 0) {
            free(hn);
            free(hv);
            return -1;
        }
    }
    return 0;
}

static const char *fn_getparam(FCGX_Request *r, const char *name)
{
    const char *v = FCGX_GetParam(name, r->envp);
    return v ? v : fn_empty;
}

int fn_req_begin(fn_req *req, fn_res *res, FCGX_Request *r, const struct fn_limits *lim)
{
    const char *cl;
    long long want = 0;

    req->r = r;
    req->method = fn_getparam(r, "REQUEST_METHOD");
    req->path = fn_getparam(r, "FNGATE_PATH");
    req->name = FCGX_GetParam("FNGATE_FUNCTION", r->envp);
    if (!req->name)
        req->name = getenv("FNGATE_FUNCTION");
    if (!req->name)
        req->name = fn_empty;
    req->request_id = fn_getparam(r, "FNGATE_REQUEST_ID");
    req->query = fn_getparam(r, "QUERY_STRING");
    cl = FCGX_GetParam("CONTENT_LENGTH", r->envp);
    if (cl && *cl) {
        char *end;
        want = strtoll(cl, &end, 10);
        if (*end || want < 0) {
            fn_error(res, 400, "invalid Content-Length");
            return 400;
        }
    }
    if (lim->max_body > 0 && want > lim->max_body) {
        char scratch[16384];
        long long left = want;
        /* Read it all anyway: closing a unix socket with unread data resets
         * it, and nginx would then report a 502 instead of our 413. */
        while (left > 0) {
            int n = FCGX_GetStr(
                scratch, left < (long long)sizeof(scratch) ? (int)left : (int)sizeof(scratch),
                r->in);
            if (n <= 0)
                break;
            left -= n;
        }
        fn_error(res, 413, "request body of %lld bytes exceeds max_body (%lld bytes)", want,
                 (long long)lim->max_body);
        return 413;
    }
    if ((size_t)want + 1 > req->body_cap) {
        char *nb = realloc(req->body, (size_t)want + 1);
        if (!nb) {
            fn_error(res, 500, "out of memory");
            return 500;
        }
        req->body = nb;
        req->body_cap = (size_t)want + 1;
    }
    req->body_len = 0;
    while ((long long)req->body_len < want) {
        int n =
            FCGX_GetStr(req->body + req->body_len, (int)(want - (long long)req->body_len), r->in);
        if (n <= 0)
            break;
        req->body_len += (size_t)n;
    }
    req->body[req->body_len] = '\0';
    if ((long long)req->body_len < want) {
        fn_error(res, 400, "request body ended after %zu of %lld bytes", req->body_len, want);
        return 400;
    }
    return 0;
}

struct fn_dbreq **fn_req_db(fn_req *req)
{
    return &req->db;
}

void fn_req_end(fn_req *req)
{
    fn_db_request_end(req->db);
    req->db = NULL;
    fn_pairs_clear(&req->args);
    fn_pairs_clear(&req->headers);
    req->args_parsed = req->headers_parsed = false;
    if (req->json) {
        json_decref(req->json);
        req->json = NULL;
    }
    req->body_len = 0;
    req->r = NULL;
    /* A large body's buffer is not kept across requests. */
    if (req->body_cap > 65536) {
        free(req->body);
        req->body = NULL;
        req->body_cap = 0;
    }
}

int64_t fn_req_arrival_ms(const fn_req *req)
{
    const char *a = req->r ? FCGX_GetParam("FNGATE_ARRIVAL", req->r->envp) : NULL;
    char *end;
    double v;

    if (!a || !*a)
        return -1;
    v = strtod(a, &end);
    if (*end || v <= 0)
        return -1;
    return (int64_t)(v * 1000.0 + 0.5);
}

const char *fn_method(const fn_req *req)
{
    return req->method;
}

const char *fn_path(const fn_req *req)
{
    return req->path;
}

const char *fn_name(const fn_req *req)
{
    return req->name;
}

const char *fn_request_id(const fn_req *req)
{
    return req->request_id;
}

const char *fn_query_string(const fn_req *req)
{
    return req->query;
}

/* Arguments and headers are parsed on first use: most handlers read one or
 * two of them, and every request would otherwise pay an allocation per
 * header.  The request is logically const; the parse is a cache. */
static const struct fn_pairs *fn_req_args(const fn_req *creq)
{
    fn_req *req = (fn_req *)creq;
    if (!req->args_parsed && req->r) {
        req->args_parsed = true;
        if (fn_parse_query(req, req->query) < 0)
            fn_log("out of memory parsing the query string: some arguments are missing");
    }
    return &req->args;
}

static const struct fn_pairs *fn_req_headers(const fn_req *creq)
{
    fn_req *req = (fn_req *)creq;
    if (!req->headers_parsed && req->r) {
        req->headers_parsed = true;
        if (fn_parse_headers(req, req->r->envp) < 0)
            fn_log("out of memory parsing the headers: some headers are missing");
    }
    return &req->headers;
}

const char *fn_arg(const fn_req *req, const char *name)
{
    const struct fn_pairs *a = fn_req_args(req);
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].name, name) == 0)
            return a->v[i].value;
    }
    return NULL;
}

size_t fn_arg_count(const fn_req *req)
{
    return fn_req_args(req)->n;
}

int fn_arg_at(const fn_req *req, size_t i, const char **name, const char **value)
{
    const struct fn_pairs *a = fn_req_args(req);
    if (i >= a->n)
        return -1;
    *name = a->v[i].name;
    *value = a->v[i].value;
    return 0;
}

const char *fn_header(const fn_req *req, const char *name)
{
    const struct fn_pairs *h = fn_req_headers(req);
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    }
    return NULL;
}

size_t fn_header_count(const fn_req *req)
{
    return fn_req_headers(req)->n;
}

int fn_header_at(const fn_req *req, size_t i, const char **name, const char **value)
{
    const struct fn_pairs *h = fn_req_headers(req);
    if (i >= h->n)
        return -1;
    *name = h->v[i].name;
    *value = h->v[i].value;
    return 0;
}

const char *fn_param(const fn_req *req, const char *name)
{
    return req->r ? FCGX_GetParam(name, req->r->envp) : NULL;
}

const char *fn_body(const fn_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : fn_empty;
}

json_t *fn_body_json(fn_req *req, fn_res *res)
{
    json_error_t e;

    if (req->json)
        return req->json;
    req->json = json_loadb(req->body ? req->body : "", req->body_len, JSON_DECODE_ANY, &e);
    if (!req->json)
        fn_error(res, 400, "invalid JSON: %s at line %d column %d", e.text, e.line, e.column);
    return req->json;
}

/* ------------------------------------------------------------------------
 * Response
 */

fn_res *fn_res_new(void)
{
    return calloc(1, sizeof(fn_res));
}

void fn_res_reset(fn_res *res)
{
    res->status = 0;
    free(res->content_type);
    res->content_type = NULL;
    fn_pairs_clear(&res->headers);
    free(res->body_base);
    res->body_base = NULL;
    res->body_off = 0;
    res->body_len = 0;
}

void fn_res_free(fn_res *res)
{
    if (!res)
        return;
    fn_res_reset(res);
    fn_pairs_free(&res->headers);
    free(res);
}

static bool fn_header_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int fn_set_header(fn_res *res, const char *name, const char *value)
{
    char *n, *v;

    if (!fn_header_ok(name) || !fn_header_ok(value) || !*name || strchr(name, ':'))
        return -1;
    n = strdup(name);
    v = strdup(value);
    if (!n || !v || fn_pairs_add(&res->headers, n, v) < 0) {
        free(n);
        free(v);
        return -1;
    }
    return 0;
}

int fn_res_take(fn_res *res, int status, const char *content_type, char *base, size_t off,
                size_t len)
{
    char *ct = strdup(content_type ? content_type : "application/octet-stream");

    if (!ct || !fn_header_ok(ct) || status < 100 || status > 999) {
        free(ct);
        free(base);
        return -1;
    }
    free(res->content_type);
    free(res->body_base);
    res->content_type = ct;
    res->body_base = base;
    res->body_off = off;
    res->body_len = len;
    res->status = status;
    return 0;
}

/* Takes ownership of BODY (malloc'ed). */
static int fn_send_owned(fn_res *res, int status, const char *content_type, char *body, size_t len)
{
    return fn_res_take(res, status, content_type, body, 0, len);
}

int fn_send(fn_res *res, int status, const char *content_type, const void *body, size_t len)
{
    char *copy = malloc(len ? len : 1);

    if (!copy)
        return -1;
    if (len)
        memcpy(copy, body, len);
    return fn_send_owned(res, status, content_type, copy, len);
}

int fn_send_text(fn_res *res, int status, const char *text)
{
    return fn_send(res, status, "text/plain; charset=utf-8", text, strlen(text));
}

int fn_send_json(fn_res *res, int status, const json_t *json)
{
    char *s = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    if (!s)
        return fn_error(res, 500, "response is not serialisable JSON");
    return fn_send_owned(res, status, "application/json", s, strlen(s));
}

int fn_send_json_new(fn_res *res, int status, json_t *json)
{
    int rc = fn_send_json(res, status, json);
    json_decref(json);
    return rc;
}

int fn_send_jsonf(fn_res *res, int status, const char *fmt, ...)
{
    json_error_t e;
    json_t *j;
    va_list ap;

    va_start(ap, fmt);
    j = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    if (!j)
        return fn_error(res, 500, "json_pack: %s", e.text);
    return fn_send_json_new(res, status, j);
}

int fn_error(fn_res *res, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    json_t *j;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    j = json_pack("{s:s}", "error", msg);
    if (!j)
        return -1;
    return fn_send_json_new(res, status, j);
}

int fn_responded(const fn_res *res)
{
    return res->status != 0;
}

static const char *fn_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

int fn_res_write(fn_res *res, FCGX_Request *r)
{
    char head[1024];
    int n;

    fn_loop_response_started();
    /* One buffer and one FCGX_PutStr: libfcgi's own printf is slow. */
    n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n",
                 res->status, fn_reason(res->status), res->content_type, res->body_len);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    FCGX_PutStr(head, n, r->out);
    for (size_t i = 0; i < res->headers.n; i++) {
        FCGX_PutS(res->headers.v[i].name, r->out);
        FCGX_PutStr(": ", 2, r->out);
        FCGX_PutS(res->headers.v[i].value, r->out);
        FCGX_PutStr("\r\n", 2, r->out);
    }
    FCGX_PutStr("\r\n", 2, r->out);
    if (res->body_len &&
        FCGX_PutStr(res->body_base + res->body_off, (int)res->body_len, r->out) < 0)
        return -1;
    return FCGX_GetError(r->out) ? -1 : 0;
}

void fn_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
