/*
 * JSON response bodies: fn_send_json, fn_send_jsonf and the {"error":...}
 * body of fn_error.  The common cases are written straight into the
 * response buffer: a json_pack format of objects, arrays, strings, integers,
 * booleans and nulls, and a tree of the same, come out byte for byte as
 * jansson's compact dump would write them, without building a tree for the
 * format or paying jansson's dump (a hashtable entry per object for its
 * loop check).  Anything else (reals, json_t arguments, modifiers, a
 * duplicate key, invalid UTF-8, a malformed format) goes through jansson as
 * before, so its results and its error messages are jansson's own.
 */
#include "config.h"

#include "fnsdk_res.h"
#include "fngate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than this, a tree (maybe a cycle) or a format goes to jansson. */
#define FN_JSON_DEPTH 64
/* Keys of one object a format may have before the duplicate check gives up
 * (and jansson takes the format). */
#define FN_JSON_KEYS 32

/* The body being written.  OK turns false when an allocation fails. */
struct fn_jbuf {
    char *p;
    size_t len, cap;
    bool ok;
};

static bool fn_jbuf_room(struct fn_jbuf *b, size_t n)
{
    size_t ncap;
    char *np;

    if (!b->ok)
        return false;
    if (b->len + n <= b->cap)
        return true;
    ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + n)
        ncap *= 2;
    np = realloc(b->p, ncap);
    if (!np) {
        b->ok = false;
        return false;
    }
    b->p = np;
    b->cap = ncap;
    return true;
}

static void fn_jbuf_put(struct fn_jbuf *b, const char *s, size_t n)
{
    if (fn_jbuf_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void fn_jbuf_ch(struct fn_jbuf *b, char c)
{
    if (fn_jbuf_room(b, 1))
        b->p[b->len++] = c;
}

/* Ends the body with a NUL (not counted) for callers that read it as a
 * string; false when an allocation failed (the buffer is then freed). */
static bool fn_jbuf_finish(struct fn_jbuf *b)
{
    fn_jbuf_ch(b, '\0');
    if (!b->ok) {
        free(b->p);
        b->p = NULL;
        return false;
    }
    b->len--;
    return true;
}

/* The UTF-8 jansson accepts (its utf8_check_string): no overlong forms, no
 * surrogates, nothing past U+10FFFF.  NUL bytes count as characters. */
static bool fn_json_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t v;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            v = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            v = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            v = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            v = (v << 6) | (s[i + k] & 0x3f);
        }
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (len == 3 && v < 0x800) ||
            (len == 4 && v < 0x10000))
            return false;
        i += len;
    }
    return true;
}

/* Appends the N bytes at S (valid UTF-8) as a JSON string, escaped as
 * jansson's dump escapes with no flags: quote, backslash and the control
 * characters; everything else, non-ASCII included, as it is. */
static void fn_json_put_string(struct fn_jbuf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t run = 0;

    fn_jbuf_ch(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        fn_jbuf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            elen = 6;
        }
        fn_jbuf_put(b, esc, elen);
    }
    fn_jbuf_put(b, s + run, n - run);
    fn_jbuf_ch(b, '"');
}

static void fn_json_put_int(struct fn_jbuf *b, long long v)
{
    char digits[24], *p = digits + sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    fn_jbuf_put(b, p, (size_t)(digits + sizeof(digits) - p));
}

/* --- json_pack formats ---------------------------------------------------- */

struct fn_jpack {
    const char *f; /* the format, at the next token */
    va_list ap;
    struct fn_jbuf out;
};

/* jansson's token separators. */
static void fn_jpack_skip(struct fn_jpack *p)
{
    while (*p->f == ' ' || *p->f == '\t' || *p->f == '\n' || *p->f == ',' || *p->f == ':')
        p->f++;
}

/* After a value's letter: a modifier (s#, s?, o*...) is jansson's to read. */
static bool fn_jpack_plain(struct fn_jpack *p)
{
    fn_jpack_skip(p);
    return !strchr("#%+?*", *p->f) || *p->f == '\0';
}

/* A C string argument, valid UTF-8, appended; false for NULL or invalid. */
static bool fn_jpack_string(struct fn_jpack *p, const char **sp, size_t *lenp)
{
    const char *s = va_arg(p->ap, const char *);
    size_t len;

    if (!s)
        return false;
    len = strlen(s);
    if (!fn_json_utf8_ok((const unsigned char *)s, len))
        return false;
    fn_json_put_string(&p->out, s, len);
    if (sp) {
        *sp = s;
        *lenp = len;
    }
    return true;
}

static int fn_jpack_value(struct fn_jpack *p, int depth);

static int fn_jpack_object(struct fn_jpack *p, int depth)
{
    const char *keys[FN_JSON_KEYS];
    size_t klen[FN_JSON_KEYS], n = 0;

    fn_jbuf_ch(&p->out, '{');
    for (;;) {
        fn_jpack_skip(p);
        if (*p->f == '}') {
            p->f++;
            break;
        }
        if (*p->f != 's' || n == FN_JSON_KEYS)
            return -1;
        p->f++;
        if (!fn_jpack_plain(p))
            return -1;
        if (n)
            fn_jbuf_ch(&p->out, ',');
        if (!fn_jpack_string(p, &keys[n], &klen[n]))
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (klen[i] == klen[n] && memcmp(keys[i], keys[n], klen[n]) == 0)
                return -1; /* jansson keeps the last value, in the first place */
        }
        n++;
        fn_jbuf_ch(&p->out, ':');
        if (fn_jpack_value(p, depth + 1) < 0)
            return -1;
    }
    fn_jbuf_ch(&p->out, '}');
    return 0;
}

static int fn_jpack_array(struct fn_jpack *p, int depth)
{
    bool first = true;

    fn_jbuf_ch(&p->out, '[');
    for (;;) {
        fn_jpack_skip(p);
        if (*p->f == ']') {
            p->f++;
            break;
        }
        if (!first)
            fn_jbuf_ch(&p->out, ',');
        first = false;
        if (fn_jpack_value(p, depth + 1) < 0)
            return -1;
    }
    fn_jbuf_ch(&p->out, ']');
    return 0;
}

static int fn_jpack_value(struct fn_jpack *p, int depth)
{
    char t;

    if (depth > FN_JSON_DEPTH)
        return -1;
    fn_jpack_skip(p);
    t = *p->f;
    if (t == '\0')
        return -1;
    p->f++;
    switch (t) {
    case '{':
        return fn_jpack_object(p, depth);
    case '[':
        return fn_jpack_array(p, depth);
    case 's':
        if (!fn_jpack_plain(p) || !fn_jpack_string(p, NULL, NULL))
            return -1;
        return 0;
    case 'i':
        if (!fn_jpack_plain(p))
            return -1;
        fn_json_put_int(&p->out, va_arg(p->ap, int));
        return 0;
    case 'I':
        if (!fn_jpack_plain(p))
            return -1;
        fn_json_put_int(&p->out, (long long)va_arg(p->ap, json_int_t));
        return 0;
    case 'b':
        if (!fn_jpack_plain(p))
            return -1;
        if (va_arg(p->ap, int))
            fn_jbuf_put(&p->out, "true", 4);
        else
            fn_jbuf_put(&p->out, "false", 5);
        return 0;
    case 'n':
        if (!fn_jpack_plain(p))
            return -1;
        fn_jbuf_put(&p->out, "null", 4);
        return 0;
    default:
        return -1;
    }
}

/* Writes FMT's JSON (AP: its arguments) into a new buffer: returns it (its
 * length in *LEN), or NULL when jansson must take the format. */
static char *fn_jpack_format(const char *fmt, va_list ap, size_t *len)
{
    struct fn_jpack p = {.f = fmt, .out = {.ok = true}};
    int rc;

    if (!fmt)
        return NULL;
    va_copy(p.ap, ap);
    rc = fn_jpack_value(&p, 0);
    va_end(p.ap);
    if (rc == 0) {
        fn_jpack_skip(&p);
        if (*p.f != '\0')
            rc = -1;
    }
    if (rc < 0) {
        free(p.out.p);
        return NULL;
    }
    if (!fn_jbuf_finish(&p.out))
        return NULL;
    *len = p.out.len;
    return p.out.p;
}

/* --- json_t trees --------------------------------------------------------- */

/* Appends JSON; -1 when jansson must dump it (a real, a deep tree, invalid
 * UTF-8). */
static int fn_json_tree(struct fn_jbuf *b, const json_t *json, int depth)
{
    if (!json || depth > FN_JSON_DEPTH)
        return -1;
    switch (json_typeof(json)) {
    case JSON_OBJECT: {
        bool first = true;
        fn_jbuf_ch(b, '{');
        for (void *it = json_object_iter((json_t *)json); it;
             it = json_object_iter_next((json_t *)json, it)) {
            const char *k = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            if (!fn_json_utf8_ok((const unsigned char *)k, klen))
                return -1;
            if (!first)
                fn_jbuf_ch(b, ',');
            first = false;
            fn_json_put_string(b, k, klen);
            fn_jbuf_ch(b, ':');
            if (fn_json_tree(b, json_object_iter_value(it), depth + 1) < 0)
                return -1;
        }
        fn_jbuf_ch(b, '}');
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(json);
        fn_jbuf_ch(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                fn_jbuf_ch(b, ',');
            if (fn_json_tree(b, json_array_get(json, i), depth + 1) < 0)
                return -1;
        }
        fn_jbuf_ch(b, ']');
        return 0;
    }
    case JSON_STRING: {
        /* json_string_nocheck may have let invalid UTF-8 in: jansson's
         * dump refuses it. */
        const char *v = json_string_value(json);
        size_t n = json_string_length(json);
        if (!fn_json_utf8_ok((const unsigned char *)v, n))
            return -1;
        fn_json_put_string(b, v, n);
        return 0;
    }
    case JSON_INTEGER:
        fn_json_put_int(b, (long long)json_integer_value(json));
        return 0;
    case JSON_TRUE:
        fn_jbuf_put(b, "true", 4);
        return 0;
    case JSON_FALSE:
        fn_jbuf_put(b, "false", 5);
        return 0;
    case JSON_NULL:
        fn_jbuf_put(b, "null", 4);
        return 0;
    default:
        return -1;
    }
}

int fn_send_json(fn_res *res, int status, const json_t *json)
{
    struct fn_jbuf b = {.ok = true};
    char *s;

    if (json && fn_json_tree(&b, json, 0) == 0 && fn_jbuf_finish(&b))
        return fnsdk_res_take(res, status, "application/json", b.p, 0, b.len);
    free(b.p);
    s = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!s)
        return fn_error(res, 500, "response is not serialisable JSON");
    return fnsdk_res_take(res, status, "application/json", s, 0, strlen(s));
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
    size_t len;
    char *s;

    va_start(ap, fmt);
    s = fn_jpack_format(fmt, ap, &len);
    if (s) {
        va_end(ap);
        return fnsdk_res_take(res, status, "application/json", s, 0, len);
    }
    j = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    if (!j)
        return fn_error(res, 500, "json_pack: %s", e.text);
    return fn_send_json_new(res, status, j);
}

int fn_error(fn_res *res, int status, const char *fmt, ...)
{
    struct fn_jbuf b = {.ok = true};
    char msg[1024];
    va_list ap;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    len = strlen(msg);
    /* json_pack("{s:s}") refuses invalid UTF-8 the same way. */
    if (!fn_json_utf8_ok((const unsigned char *)msg, len))
        return -1;
    fn_jbuf_put(&b, "{\"error\":", 9);
    fn_json_put_string(&b, msg, len);
    fn_jbuf_ch(&b, '}');
    if (!fn_jbuf_finish(&b))
        return -1;
    return fnsdk_res_take(res, status, "application/json", b.p, 0, b.len);
}
