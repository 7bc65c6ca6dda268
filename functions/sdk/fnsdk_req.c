/*
 * The request side of libfngate: a request's FastCGI params are scanned once
 * for the few the SDK reads, its body is read into a buffer reused from one
 * request to the next, and its arguments and headers are parsed into arrays
 * owned by the fn_req on first use.  Also the request ids the SDK makes and
 * the run of a handler on a request.
 */
#include "config.h"

#include "fnsdk_req.h"
#include "fnsdk_loop.h"
#include "fnsdk_pairs.h"
#include "fnsdk_uri.h"
#include "fngate.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The parameters the SDK itself reads, picked out of the request's params in
 * one pass (fnsdk_req_scan): a FCGX_GetParam per name would walk the whole list
 * each time.  NULL when the request has no such parameter; the first of two
 * with one name wins, as with FCGX_GetParam. */
struct fnsdk_known {
    const char *method, *query, *content_type, *content_length, *request_id;
    const char *fn_path, *path_info, *request_uri, *script_name, *function;
    const char *arrival, *traceparent;
};

struct fn_req {
    char **envp; /* the FastCGI params, borrowed for the request; NULL between */
    const char *method, *path, *name, *request_id, *query;
    struct fnsdk_known known;   /* borrowed from envp, like it */
    int64_t arrival_ms;         /* FNGATE_ARRIVAL in ms, or -1 */
    char *path_buf;             /* owned: the path when worked out from REQUEST_URI */
    int64_t start_ms;           /* CLOCK_MONOTONIC when the request began */
    struct fnsdk_pairs args;    /* decoded URL arguments, owned; parsed on first use */
    struct fnsdk_pairs headers; /* canonical names, owned; parsed on first use */
    bool args_parsed, headers_parsed;
    char *body; /* owned, NUL-terminated */
    size_t body_len, body_cap;
    json_t *json;           /* owned; parsed on demand */
    struct fnsdk_dbreq *db; /* owned: rows and the last error (fn_db.c) */
    char trace_id[33];      /* from traceparent; parsed on first use */
    char id_buf[33];        /* the request id the SDK made, when the front end sent none */
    bool id_made;           /* request_id is id_buf */
    bool trace_parsed;
};

static const char *fnsdk_empty = "";
static int64_t fnsdk_request_timeout_ms;
/* $FNGATE_FUNCTION as fn_main found it (fnsdk_req_set_function); until then
 * it is read each time (the in-memory test harness changes it). */
static const char *fnsdk_env_function;
static bool fnsdk_env_function_set;
/* The request in progress, for fn_log's request id (one at a time). */
static const fn_req *fnsdk_current;

static int64_t fnsdk_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fnsdk_req_set_timeout(int64_t ms)
{
    fnsdk_request_timeout_ms = ms > 0 ? ms : 0;
}

void fnsdk_req_set_function(const char *name)
{
    fnsdk_env_function = name;
    fnsdk_env_function_set = true;
}

/* The function's name from the environment, or NULL. */
static const char *fnsdk_req_env_function(void)
{
    return fnsdk_env_function_set ? fnsdk_env_function : getenv("FNGATE_FUNCTION");
}

const char *fnsdk_req_current_id(void)
{
    return fnsdk_current ? fnsdk_current->request_id : NULL;
}

bool fnsdk_req_current_id_made(void)
{
    return fnsdk_current && fnsdk_current->id_made;
}

fn_req *fnsdk_req_new(void)
{
    return calloc(1, sizeof(fn_req));
}

void fnsdk_req_free(fn_req *req)
{
    if (!req)
        return;
    fnsdk_req_end(req);
    fnsdk_pairs_free(&req->args);
    fnsdk_pairs_free(&req->headers);
    free(req->body);
    free(req);
}

static int fnsdk_parse_query(fn_req *req, const char *q)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq ? (size_t)(eq - q) : len;
        if (len > 0) {
            char *name = fnsdk_uri_decode_query(q, nlen);
            char *value = eq ? fnsdk_uri_decode_query(eq + 1, len - nlen - 1) : strdup("");
            if (!name || !value || fnsdk_pairs_add(&req->args, name, value) < 0) {
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
static char *fnsdk_header_name(const char *param, size_t len)
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

static int fnsdk_parse_headers(fn_req *req, char **envp)
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
        hn = fnsdk_header_name(name, nlen);
        hv = strdup(eq + 1);
        if (!hn || !hv || fnsdk_pairs_add(&req->headers, hn, hv) < 0) {
            free(hn);
            free(hv);
            return -1;
        }
    }
    return 0;
}

/* The path after the function's prefix.  fngate's own nginx include passes
 * it as FNGATE_PATH.  Any other front end: PATH_INFO (nginx's stock
 * fastcgi_split_path_info, lighttpd), else REQUEST_URI (raw: decoded here)
 * minus SCRIPT_NAME (the prefix the front end matched).  A front end that
 * leaves no split (Apache's ProxyPass and nginx without split_path_info make
 * SCRIPT_NAME the whole path, as RFC 3875 allows) still gives the path after
 * /fn/<this function's name> when the URI has that form.  Else "". */
static const char *fnsdk_req_find_path(fn_req *req)
{
    const char *v = req->known.fn_path;
    const char *uri, *script, *name;
    size_t ulen, slen = 0;
    char *dec;

    if (v)
        return v;
    v = req->known.path_info;
    if (v && *v)
        return v;
    uri = req->known.request_uri;
    script = req->known.script_name;
    if (!uri)
        return fnsdk_empty;
    ulen = strcspn(uri, "?#");
    dec = fnsdk_uri_decode_path(uri, ulen);
    if (!dec)
        return fnsdk_empty;
    if (script && *script) {
        slen = strlen(script);
        while (slen > 0 && script[slen - 1] == '/')
            slen--; /* a prefix matched as "/fn/users/" */
        if (strncmp(dec, script, slen) != 0 || (dec[slen] != '\0' && dec[slen] != '/'))
            slen = 0;
    }
    name = req->known.function;
    if (!name)
        name = fnsdk_req_env_function();
    if ((slen == 0 || dec[slen] == '\0') && name && *name && strncmp(dec, "/fn/", 4) == 0) {
        size_t nlen = strlen(name);
        if (strncmp(dec + 4, name, nlen) == 0 && (dec[4 + nlen] == '\0' || dec[4 + nlen] == '/'))
            slen = 4 + nlen;
    }
    if (slen == 0) {
        free(dec);
        return fnsdk_empty;
    }
    memmove(dec, dec + slen, strlen(dec + slen) + 1);
    req->path_buf = dec;
    return dec;
}

/* Takes param E for the FIELD of K when it is NAME=... and FIELD is still
 * unset (the first of two params with one name wins, as with
 * FCGX_GetParam).  E's second byte is compared first (its first is NAME's:
 * E is at least that long), which turns away most params for nothing;
 * then a memcmp of a constant length, a few word compares inline (a
 * strncmp call per name cost more), within E's length, measured once. */
#define FNSDK_KNOWN(field, name)                                                                   \
    if (!k->field && e[1] == name[1] && (len ? len : (len = strlen(e))) >= sizeof(name) &&         \
        memcmp(e, name "=", sizeof(name)) == 0) {                                                  \
        k->field = e + sizeof(name);                                                               \
        continue;                                                                                  \
    }

/* Picks the params the SDK reads out of ENVP in one pass.  The first letter
 * leaves at most four names to compare, and a compare of a param that is
 * not one of them mostly stops at its first bytes: most of a request's
 * params (HTTP_*, SERVER_*, REMOTE_*) cost a switch. */
static void fnsdk_req_scan(struct fnsdk_known *k, char **envp)
{
    memset(k, 0, sizeof(*k));
    for (char **ep = envp; ep && *ep; ep++) {
        const char *e = *ep;
        size_t len = 0; /* strlen(e), once a name needs it */

        switch (e[0]) {
        case 'C':
            FNSDK_KNOWN(content_type, "CONTENT_TYPE");
            FNSDK_KNOWN(content_length, "CONTENT_LENGTH");
            break;
        case 'F':
            FNSDK_KNOWN(fn_path, "FNGATE_PATH");
            FNSDK_KNOWN(arrival, "FNGATE_ARRIVAL");
            FNSDK_KNOWN(request_id, "FNGATE_REQUEST_ID");
            FNSDK_KNOWN(function, "FNGATE_FUNCTION");
            break;
        case 'H':
            FNSDK_KNOWN(traceparent, "HTTP_TRACEPARENT");
            break;
        case 'P':
            FNSDK_KNOWN(path_info, "PATH_INFO");
            break;
        case 'Q':
            FNSDK_KNOWN(query, "QUERY_STRING");
            break;
        case 'R':
            FNSDK_KNOWN(method, "REQUEST_METHOD");
            FNSDK_KNOWN(request_uri, "REQUEST_URI");
            break;
        case 'S':
            FNSDK_KNOWN(script_name, "SCRIPT_NAME");
            break;
        default:
            break;
        }
    }
}
#undef FNSDK_KNOWN

/* $msec is "<seconds>.<milliseconds>": read as integers (strtod, and the
 * double it makes, cost more than the rest of the request's bookkeeping).
 * Any other form a front end sends still goes through strtod. */
static int64_t fnsdk_arrival_parse(const char *a)
{
    int64_t sec = 0, ms = 0;
    const char *p = a;
    char *end;
    double v;
    int nd = 0;

    if (!a || !*a)
        return -1;
    while (*p >= '0' && *p <= '9' && nd < 15) {
        sec = sec * 10 + (*p++ - '0');
        nd++;
    }
    if (nd > 0 && nd < 15 && *p == '.' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
        p[2] <= '9' && p[3] >= '0' && p[3] <= '9' && p[4] == '\0') {
        ms = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
        return sec > 0 || ms > 0 ? sec * 1000 + ms : -1;
    }
    v = strtod(a, &end);
    if (*end || v <= 0)
        return -1;
    return (int64_t)(v * 1000.0 + 0.5);
}

/* Request ids the SDK makes when the front end sends none (fngate.inc does
 * not: nginx's $request_id costs a RAND_bytes per request, about a quarter
 * of what the include costs nginx).  A random 64-bit prefix per instance,
 * then a counter through splitmix64's finaliser: a bijection, so ids never
 * repeat within an instance, and look random across them.  The prefix's 16
 * hex digits are written once, at the seed. */
static uint64_t fnsdk_id_key, fnsdk_id_next;
static char fnsdk_id_prefix_hex[16];
static bool fnsdk_id_seeded;

/* The two hex digits of V at P. */
static void fnsdk_hex_byte(char *p, unsigned v)
{
    static const char hexd[] = "0123456789abcdef";
    p[0] = hexd[v >> 4];
    p[1] = hexd[v & 15];
}

/* V's 16 hex digits at P, most significant first. */
static void fnsdk_hex64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        fnsdk_hex_byte(p + 2 * i, (unsigned)(v & 0xff));
}

void fnsdk_req_seed_ids(const unsigned char seed[16])
{
    uint64_t prefix;

    memcpy(&prefix, seed, 8);
    memcpy(&fnsdk_id_key, seed + 8, 8);
    fnsdk_hex64(fnsdk_id_prefix_hex, prefix);
    fnsdk_id_seeded = true;
}

static uint64_t fnsdk_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Puts a fresh 32-hex-digit id into BUF. */
static void fnsdk_req_new_id(char *buf)
{
    if (!fnsdk_id_seeded) {
        /* Not started by fn_main (the in-memory test harness): seed here. */
        unsigned char seed[16];
        if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            uint64_t pid = (uint64_t)getpid();
            memcpy(seed, &t, 8);
            memcpy(seed + 8, &pid, 8);
        }
        fnsdk_req_seed_ids(seed);
    }
    memcpy(buf, fnsdk_id_prefix_hex, 16);
    fnsdk_hex64(buf + 16, fnsdk_mix64(fnsdk_id_key + fnsdk_id_next++));
    buf[32] = '\0';
}

/* The parameters every request reads first. */
static void fnsdk_req_params(fn_req *req, char **envp)
{
    const struct fnsdk_known *k = &req->known;

    req->envp = envp;
    req->start_ms = fnsdk_mono_ms();
    fnsdk_req_scan(&req->known, envp);
    req->method = k->method ? k->method : fnsdk_empty;
    req->path = fnsdk_req_find_path(req);
    req->name = k->function;
    if (!req->name)
        req->name = fnsdk_req_env_function();
    if (!req->name)
        req->name = fnsdk_empty;
    req->id_made = !(k->request_id && *k->request_id);
    if (!req->id_made) {
        req->request_id = k->request_id;
    } else {
        fnsdk_req_new_id(req->id_buf);
        req->request_id = req->id_buf;
    }
    req->query = k->query ? k->query : fnsdk_empty;
    req->arrival_ms = fnsdk_arrival_parse(k->arrival);
    fnsdk_current = req;
}

/* Makes room for a body of WANT bytes and its NUL. */
static int fnsdk_req_body_room(fn_req *req, fn_res *res, size_t want)
{
    if (want + 1 > req->body_cap) {
        char *nb = realloc(req->body, want + 1);
        if (!nb) {
            fn_error(res, 500, "out of memory");
            return 500;
        }
        req->body = nb;
        req->body_cap = want + 1;
    }
    return 0;
}

/* The body buffer starts at most this big and doubles as data arrives. */
#define FNSDK_BODY_FIRST (64 * 1024)

/* True when the N bytes at S hold "%00", which decodes to a NUL byte. */
static bool fnsdk_has_nul_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] == '%' && s[i + 1] == '0' && s[i + 2] == '0')
            return true;
    }
    return false;
}

static bool fnsdk_is_form(const fn_req *req);

/* An argument holding a NUL byte would reach the handler cut short (fn_arg
 * returns C strings), so the request is refused before the handler runs. */
static int fnsdk_req_check_args(fn_req *req, fn_res *res)
{
    const char *where = NULL;

    if (fnsdk_has_nul_escape(req->query, strlen(req->query)))
        where = "the query string";
    else if (req->body_len && fnsdk_is_form(req) &&
             (memchr(req->body, '\0', req->body_len) ||
              fnsdk_has_nul_escape(req->body, req->body_len)))
        where = "the form body";
    if (!where)
        return 0;
    fn_error(res, 400, "%s has an argument with a NUL byte (%%00), which the function cannot read",
             where);
    return 400;
}

/* Reads and drops LEFT bytes of body, so that the front end sees the whole
 * request taken (an unread unix socket closes with a reset, which nginx
 * reports as 502 instead of our answer). */
static void fnsdk_req_drain(FCGX_Request *r, long long left)
{
    char scratch[16384];

    while (left > 0) {
        int n = FCGX_GetStr(
            scratch, left < (long long)sizeof(scratch) ? (int)left : (int)sizeof(scratch), r->in);
        if (n <= 0)
            break;
        left -= n;
    }
}

static int fnsdk_req_too_large(fn_res *res, long long want, const struct fnsdk_limits *lim)
{
    fn_error(res, 413, "request body of %lld bytes exceeds max_body (%lld bytes)", want,
             (long long)lim->max_body);
    return 413;
}

int fnsdk_req_begin_env(fn_req *req, fn_res *res, char **envp, const void *body, size_t len,
                        const struct fnsdk_limits *lim)
{
    int rc;

    fnsdk_req_params(req, envp);
    if (lim->max_body > 0 && (long long)len > lim->max_body)
        return fnsdk_req_too_large(res, (long long)len, lim);
    if ((rc = fnsdk_req_body_room(req, res, len)) != 0)
        return rc;
    if (len)
        memcpy(req->body, body, len);
    req->body_len = len;
    req->body[len] = '\0';
    return fnsdk_req_check_args(req, res);
}

int fnsdk_req_begin(fn_req *req, fn_res *res, FCGX_Request *r, const struct fnsdk_limits *lim)
{
    const char *cl;
    long long want = 0;
    int rc;

    fnsdk_req_params(req, r->envp);
    cl = req->known.content_length;
    if (cl && *cl) {
        char *end;
        errno = 0;
        want = strtoll(cl, &end, 10);
        if (*end || want < 0 || errno == ERANGE || cl[0] < '0' || cl[0] > '9') {
            fn_error(res, 400, "invalid Content-Length");
            return 400;
        }
    }
    if (lim->max_body > 0 && want > lim->max_body) {
        fnsdk_req_drain(r, want);
        return fnsdk_req_too_large(res, want, lim);
    }
    /* The buffer grows with what arrives (a Content-Length is only a claim),
     * and reads go in chunks an int can count: lengths past 2 GiB are
     * neither truncated nor allocated up front. */
    if ((rc = fnsdk_req_body_room(req, res,
                                  want < FNSDK_BODY_FIRST ? (size_t)want : FNSDK_BODY_FIRST)))
        return rc;
    req->body_len = 0;
    while ((long long)req->body_len < want) {
        size_t room = req->body_cap - 1 - req->body_len;
        int n;

        if (room == 0) {
            long long grow = (long long)(req->body_cap - 1) * 2;
            if (fnsdk_req_body_room(req, res, (size_t)(grow < want ? grow : want)) != 0) {
                fnsdk_req_drain(r, want - (long long)req->body_len);
                fnsdk_res_reset(res);
                fn_error(res, 413,
                         "request body of %lld bytes does not fit in this instance's memory", want);
                return 413;
            }
            room = req->body_cap - 1 - req->body_len;
        }
        if ((long long)room > want - (long long)req->body_len)
            room = (size_t)(want - (long long)req->body_len);
        n = FCGX_GetStr(req->body + req->body_len,
                        room < FNSDK_IO_CHUNK ? (int)room : FNSDK_IO_CHUNK, r->in);
        if (n <= 0)
            break;
        req->body_len += (size_t)n;
    }
    req->body[req->body_len] = '\0';
    if ((long long)req->body_len < want) {
        fn_error(res, 400, "request body ended after %zu of %lld bytes", req->body_len, want);
        return 400;
    }
    return fnsdk_req_check_args(req, res);
}

struct fnsdk_dbreq **fnsdk_req_db(fn_req *req)
{
    return &req->db;
}

void fnsdk_req_end(fn_req *req)
{
    fnsdk_db_request_end(req->db);
    req->db = NULL;
    fnsdk_pairs_clear(&req->args);
    fnsdk_pairs_clear(&req->headers);
    req->args_parsed = req->headers_parsed = false;
    if (req->json) {
        json_decref(req->json);
        req->json = NULL;
    }
    req->body_len = 0;
    req->envp = NULL;
    req->trace_parsed = false;
    req->trace_id[0] = '\0';
    free(req->path_buf);
    req->path_buf = NULL;
    if (fnsdk_current == req)
        fnsdk_current = NULL;
    /* A large body's buffer is not kept across requests. */
    if (req->body_cap > 65536) {
        free(req->body);
        req->body = NULL;
        req->body_cap = 0;
    }
}

int64_t fnsdk_req_arrival_ms(const fn_req *req)
{
    return req->envp ? req->arrival_ms : -1;
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

/* W3C Trace Context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex
 * flags>", lowercase.  A version other than 00 may carry more fields after
 * the flags; version ff and all-zero ids are invalid. */
static bool fnsdk_traceparent_parse(const char *tp, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    size_t len;

    if (!tp)
        return false;
    len = strlen(tp);
    if (len < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return false;
    for (size_t i = 0; i < 55; i++) {
        if (i == 2 || i == 35 || i == 52)
            continue;
        if (!memchr(hexd, tp[i], 16) || tp[i] == '\0')
            return false;
    }
    if ((tp[0] == 'f' && tp[1] == 'f') || (len > 55 && (tp[0] == '0' && tp[1] == '0')) ||
        (len > 55 && tp[55] != '-'))
        return false;
    if (strspn(tp + 3, "0") >= 32 || strspn(tp + 36, "0") >= 16)
        return false;
    memcpy(out, tp + 3, 32);
    out[32] = '\0';
    return true;
}

const char *fn_trace_id(const fn_req *creq)
{
    fn_req *req = (fn_req *)creq; /* the parse is a cache */

    if (!req->trace_parsed) {
        req->trace_parsed = true;
        if (!req->envp || !fnsdk_traceparent_parse(req->known.traceparent, req->trace_id))
            req->trace_id[0] = '\0';
    }
    return req->trace_id[0] ? req->trace_id : NULL;
}

const char *fn_query_string(const fn_req *req)
{
    return req->query;
}

/* True for an application/x-www-form-urlencoded body (parameters after a
 * ';' allowed, any case). */
static bool fnsdk_is_form(const fn_req *req)
{
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = req->envp ? req->known.content_type : NULL;

    if (!ct || strncasecmp(ct, form, sizeof(form) - 1) != 0)
        return false;
    ct += sizeof(form) - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Arguments and headers are parsed on first use: most handlers read one or
 * two of them, and every request would otherwise pay an allocation per
 * header.  The request is logically const; the parse is a cache. */
static const struct fnsdk_pairs *fnsdk_req_args(const fn_req *creq)
{
    fn_req *req = (fn_req *)creq;
    if (!req->args_parsed && req->envp) {
        req->args_parsed = true;
        if (fnsdk_parse_query(req, req->query) < 0)
            fn_log("out of memory parsing the query string: some arguments are missing");
        /* A form body's fields follow the URL's, through the same accessors
         * (like PHP's $_REQUEST). */
        if (fnsdk_is_form(req) && fnsdk_parse_query(req, req->body ? req->body : "") < 0)
            fn_log("out of memory parsing the form body: some arguments are missing");
    }
    return &req->args;
}

static const struct fnsdk_pairs *fnsdk_req_headers(const fn_req *creq)
{
    fn_req *req = (fn_req *)creq;
    if (!req->headers_parsed && req->envp) {
        req->headers_parsed = true;
        if (fnsdk_parse_headers(req, req->envp) < 0)
            fn_log("out of memory parsing the headers: some headers are missing");
    }
    return &req->headers;
}

const char *fn_arg(const fn_req *req, const char *name)
{
    const struct fnsdk_pairs *a = fnsdk_req_args(req);
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].name, name) == 0)
            return a->v[i].value;
    }
    return NULL;
}

size_t fn_arg_all(const fn_req *req, const char *name, const char **values, size_t max)
{
    const struct fnsdk_pairs *a = fnsdk_req_args(req);
    size_t n = 0;

    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].name, name) != 0)
            continue;
        if (values && n < max)
            values[n] = a->v[i].value;
        n++;
    }
    return n;
}

long long fn_deadline_ms(const fn_req *req)
{
    int64_t left;

    if (fnsdk_request_timeout_ms <= 0 || !req->envp)
        return -1;
    left = req->start_ms + fnsdk_request_timeout_ms - fnsdk_mono_ms();
    return left > 0 ? (long long)left : 0;
}

size_t fn_arg_count(const fn_req *req)
{
    return fnsdk_req_args(req)->n;
}

int fn_arg_at(const fn_req *req, size_t i, const char **name, const char **value)
{
    const struct fnsdk_pairs *a = fnsdk_req_args(req);
    if (i >= a->n)
        return -1;
    *name = a->v[i].name;
    *value = a->v[i].value;
    return 0;
}

const char *fn_header(const fn_req *req, const char *name)
{
    const struct fnsdk_pairs *h = fnsdk_req_headers(req);
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    }
    return NULL;
}

size_t fn_header_count(const fn_req *req)
{
    return fnsdk_req_headers(req)->n;
}

int fn_header_at(const fn_req *req, size_t i, const char **name, const char **value)
{
    const struct fnsdk_pairs *h = fnsdk_req_headers(req);
    if (i >= h->n)
        return -1;
    *name = h->v[i].name;
    *value = h->v[i].value;
    return 0;
}

const char *fn_param(const fn_req *req, const char *name)
{
    return req->envp ? FCGX_GetParam(name, req->envp) : NULL;
}

const char *fn_body(const fn_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : fnsdk_empty;
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

int fnsdk_req_run(fn_req *req, fn_res *res, fn_handler handler)
{
    int rc = handler(req, res);

    if (!fn_responded(res)) {
        fn_log("%s %s: handler returned %d without a response: 500", fn_method(req), fn_path(req),
               rc);
        fn_error(res, 500, "the function returned without a response");
    }
    return rc;
}
