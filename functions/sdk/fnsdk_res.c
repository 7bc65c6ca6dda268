/*
 * The response side of libfngate: the response is built in memory and
 * written in one go when the handler returns, which is what lets the accept
 * loop answer 500 for a handler that forgot to respond and 504 for one that
 * ran too long.  The JSON bodies are made in fn_json.c.
 */
#include "config.h"

#include "fnsdk_res.h"
#include "fnsdk_loop.h"
#include "fnsdk_pairs.h"
#include "fnsdk_req.h"
#include "fngate.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fn_res {
    int status;         /* 0: no response yet */
    char *content_type; /* ct_buf, or owned when it does not fit; NULL: none */
    char ct_buf[64];    /* the usual content types: no allocation per response */
    struct fnsdk_pairs headers;
    char *body_base; /* owned allocation; the body starts body_off into it */
    size_t body_off;
    size_t body_len;
};

static const char *fnsdk_empty = "";

fn_res *fnsdk_res_new(void)
{
    return calloc(1, sizeof(fn_res));
}

static void fnsdk_res_ct_free(fn_res *res)
{
    if (res->content_type != res->ct_buf)
        free(res->content_type);
    res->content_type = NULL;
}

void fnsdk_res_reset(fn_res *res)
{
    res->status = 0;
    fnsdk_res_ct_free(res);
    fnsdk_pairs_clear(&res->headers);
    free(res->body_base);
    res->body_base = NULL;
    res->body_off = 0;
    res->body_len = 0;
}

void fnsdk_res_free(fn_res *res)
{
    if (!res)
        return;
    fnsdk_res_reset(res);
    fnsdk_pairs_free(&res->headers);
    free(res);
}

static bool fnsdk_header_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

/* RFC 9110 token: 1*tchar. */
static bool fnsdk_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return true;
}

/* A field value: visible characters, spaces and tabs (no CR, LF or other
 * control character). */
static bool fnsdk_field_value(const char *s)
{
    if (!s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

int fn_set_header(fn_res *res, const char *name, const char *value)
{
    char *n, *v;

    if (!fnsdk_token(name)) {
        /* Not echoed: it may hold the CR or LF that would split the log line. */
        fn_log("fn_set_header: a header name that is not an HTTP token: not set");
        errno = EINVAL;
        return -1;
    }
    /* The SDK writes these from the response itself; a second one would
     * contradict it (or, for Status, be taken for the status line). */
    if (strcasecmp(name, "Status") == 0 || strcasecmp(name, "Content-Length") == 0) {
        fn_log("fn_set_header: %s is set by the SDK from the response: not set", name);
        errno = EINVAL;
        return -1;
    }
    if (!fnsdk_field_value(value)) {
        fn_log("fn_set_header: the value of %s has a control character: not set", name);
        errno = EINVAL;
        return -1;
    }
    n = strdup(name);
    v = strdup(value);
    if (!n || !v || fnsdk_pairs_add(&res->headers, n, v) < 0) {
        free(n);
        free(v);
        return -1;
    }
    return 0;
}

int fnsdk_res_take(fn_res *res, int status, const char *content_type, char *base, size_t off,
                   size_t len)
{
    const char *ct = content_type ? content_type : "application/octet-stream";
    size_t ctlen = strlen(ct);
    char *own = NULL;

    if (!fnsdk_header_ok(ct) || status < 100 || status > 999 ||
        (ctlen >= sizeof(res->ct_buf) && !(own = strdup(ct)))) {
        free(base);
        return -1;
    }
    fnsdk_res_ct_free(res);
    if (own) {
        res->content_type = own;
    } else {
        memcpy(res->ct_buf, ct, ctlen + 1);
        res->content_type = res->ct_buf;
    }
    free(res->body_base);
    res->body_base = base;
    res->body_off = off;
    res->body_len = len;
    res->status = status;
    return 0;
}

/* Takes ownership of BODY (malloc'ed). */
static int fnsdk_send_owned(fn_res *res, int status, const char *content_type, char *body,
                            size_t len)
{
    return fnsdk_res_take(res, status, content_type, body, 0, len);
}

int fn_send(fn_res *res, int status, const char *content_type, const void *body, size_t len)
{
    char *copy = malloc(len ? len : 1);

    if (!copy)
        return -1;
    if (len)
        memcpy(copy, body, len);
    return fnsdk_send_owned(res, status, content_type, copy, len);
}

int fn_send_text(fn_res *res, int status, const char *text)
{
    return fn_send(res, status, "text/plain; charset=utf-8", text, strlen(text));
}

int fn_responded(const fn_res *res)
{
    return res->status != 0;
}

int fnsdk_res_status(const fn_res *res)
{
    return res->status;
}

const char *fnsdk_res_content_type(const fn_res *res)
{
    return res->content_type ? res->content_type : fnsdk_empty;
}

const char *fnsdk_res_body(const fn_res *res, size_t *len)
{
    if (len)
        *len = res->body_len;
    return res->body_base ? res->body_base + res->body_off : fnsdk_empty;
}

size_t fnsdk_res_header_count(const fn_res *res)
{
    return res->headers.n;
}

int fnsdk_res_header_at(const fn_res *res, size_t i, const char **name, const char **value)
{
    if (i >= res->headers.n)
        return -1;
    *name = res->headers.v[i].name;
    *value = res->headers.v[i].value;
    return 0;
}

static const char *fnsdk_reason(int status)
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

/* Appends the decimal digits of V at P; returns the end. */
static char *fnsdk_put_uint(char *p, size_t v)
{
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* The request id every response carries as X-Request-Id (as Lambda sends
 * x-amzn-RequestId), so that a client, and nginx's access log through
 * $upstream_http_x_request_id, can name the request the function logged.
 * NULL when the handler set an X-Request-Id of its own, or the id a front
 * end sent would not make a valid header value (or is too long for one). */
const char *fnsdk_res_id_value(void)
{
    const char *id = fnsdk_req_current_id();

    if (fnsdk_req_current_id_made())
        return id;
    if (!id || !*id || strlen(id) > 128 || !fnsdk_field_value(id))
        return NULL;
    return id;
}

static const char *fnsdk_res_request_id(const fn_res *res)
{
    const char *id = fnsdk_res_id_value();

    if (!id)
        return NULL;
    for (size_t i = 0; i < res->headers.n; i++) {
        if (strcasecmp(res->headers.v[i].name, "X-Request-Id") == 0)
            return NULL;
    }
    return id;
}

int fnsdk_res_write(fn_res *res, FCGX_Request *r)
{
    char head[1024], *p = head;
    const char *reason = fnsdk_reason(res->status), *ct = fnsdk_res_content_type(res);
    const char *id = fnsdk_res_request_id(res);
    size_t rlen = strlen(reason), ctlen = strlen(ct), idlen = id ? strlen(id) : 0;

    fnsdk_loop_response_started();
    /* One buffer and one FCGX_PutStr, built by hand: snprintf (and
     * libfcgi's own printf) cost more than the rest of the write. */
    if (ctlen + rlen + idlen + 112 > sizeof(head))
        return -1;
    memcpy(p, "Status: ", 8);
    p = fnsdk_put_uint(p + 8, (size_t)res->status);
    *p++ = ' ';
    memcpy(p, reason, rlen);
    p += rlen;
    memcpy(p, "\r\nContent-Type: ", 16);
    p += 16;
    memcpy(p, ct, ctlen);
    p += ctlen;
    memcpy(p, "\r\nContent-Length: ", 18);
    p = fnsdk_put_uint(p + 18, res->body_len);
    memcpy(p, "\r\n", 2);
    p += 2;
    if (id) {
        memcpy(p, "X-Request-Id: ", 14);
        memcpy(p + 14, id, idlen);
        memcpy(p + 14 + idlen, "\r\n", 2);
        p += 16 + idlen;
    }
    if (res->headers.n == 0) {
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    FCGX_PutStr(head, (int)(p - head), r->out);
    for (size_t i = 0; i < res->headers.n; i++) {
        FCGX_PutS(res->headers.v[i].name, r->out);
        FCGX_PutStr(": ", 2, r->out);
        FCGX_PutS(res->headers.v[i].value, r->out);
        FCGX_PutStr("\r\n", 2, r->out);
    }
    if (res->headers.n)
        FCGX_PutStr("\r\n", 2, r->out);
    for (size_t done = 0; done < res->body_len;) {
        size_t left = res->body_len - done;
        int chunk = left < FNSDK_IO_CHUNK ? (int)left : FNSDK_IO_CHUNK;
        if (FCGX_PutStr(res->body_base + res->body_off + done, chunk, r->out) < 0)
            return -1;
        done += (size_t)chunk;
    }
    return FCGX_GetError(r->out) ? -1 : 0;
}
