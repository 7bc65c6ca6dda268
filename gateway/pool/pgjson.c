/*
 * Streaming PGresult-to-JSON writer for the pool.  It exists because the
 * obvious route, a jansson tree dumped with json_dumps, costs three times the
 * query it renders; here each value is copied or escaped straight into the
 * output buffer, chosen by column type once per result, with no tree, no
 * per-value formatting and the whole output reserved up front, so a result
 * renders at close to memcpy speed.  It must also never produce invalid JSON
 * or overrun a limit, since results come from arbitrary user queries.
 */
#include "config.h"

#include "pgjson.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs from the server's pg_type.dat; stable across versions. */
#define PGJSON_BOOLOID 16
#define PGJSON_INT8OID 20
#define PGJSON_INT2OID 21
#define PGJSON_INT4OID 23
#define PGJSON_OIDOID 26
#define PGJSON_JSONOID 114
#define PGJSON_JSONARRAYOID 199
#define PGJSON_FLOAT4OID 700
#define PGJSON_FLOAT8OID 701
#define PGJSON_BOOLARRAYOID 1000
#define PGJSON_NAMEARRAYOID 1003
#define PGJSON_INT2ARRAYOID 1005
#define PGJSON_INT4ARRAYOID 1007
#define PGJSON_TEXTARRAYOID 1009
#define PGJSON_BPCHARARRAYOID 1014
#define PGJSON_VARCHARARRAYOID 1015
#define PGJSON_INT8ARRAYOID 1016
#define PGJSON_FLOAT4ARRAYOID 1021
#define PGJSON_FLOAT8ARRAYOID 1022
#define PGJSON_OIDARRAYOID 1028
#define PGJSON_TIMESTAMPARRAYOID 1115
#define PGJSON_DATEARRAYOID 1182
#define PGJSON_TIMESTAMPTZARRAYOID 1185
#define PGJSON_NUMERICARRAYOID 1231
#define PGJSON_NUMERICOID 1700
#define PGJSON_UUIDARRAYOID 2951
#define PGJSON_JSONBOID 3802
#define PGJSON_JSONBARRAYOID 3807

/* Deeper than Postgres' MAXDIM (6), so any real array fits. */
#define PGJSON_MAX_DEPTH 32
/* Columns whose descriptions fit on the stack; wider results allocate. */
#define PGJSON_STACK_COLS 64
/* Rows whose value lengths pgjson_estimate samples. */
#define PGJSON_SAMPLE_ROWS 16

enum pgjson_kind {
    PGJSON_STR,    /* JSON string of the text form */
    PGJSON_NUM,    /* JSON number if the text is one, else a string */
    PGJSON_BIGNUM, /* int8, numeric: always a string */
    PGJSON_BOOL,   /* t/f as true/false */
    PGJSON_JSON,   /* embedded verbatim */
};

struct pgjson_col {
    size_t koff, klen;  /* the pre-rendered '{"name":' or ',"name":' in keys */
    unsigned char kind; /* scalar kind, or the element kind for an array */
    unsigned char is_array;
};

/* 1 for bytes a JSON string cannot hold as they are ('"', '\\', controls),
 * 2 for bytes that start (or wrongly continue) a multi-byte UTF-8 sequence. */
static const unsigned char pgjson_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static const char pgjson_hex[] = "0123456789abcdef";

#define PGJSON_ONES 0x0101010101010101ull
#define PGJSON_HIGHS 0x8080808080808080ull

/* Nonzero if any byte of the 8 in W is special: below 0x20, '"', '\\' or
 * 0x80 and up.  Each test is exact about "any byte", which is all that is
 * needed to decide whether a word can be copied without a closer look. */
static inline uint64_t pgjson_word_special(uint64_t w)
{
    uint64_t lt = (w - PGJSON_ONES * 0x20) & ~w;
    uint64_t q = w ^ (PGJSON_ONES * 0x22);
    uint64_t b = w ^ (PGJSON_ONES * 0x5c);

    q = (q - PGJSON_ONES) & ~q;
    b = (b - PGJSON_ONES) & ~b;
    return (lt | q | b | w) & PGJSON_HIGHS;
}

/* memcpy for the short pieces that dominate a result (keys, numbers, short
 * strings) without a libc call: two overlapping loads and stores cover any
 * length from 4 to 16, and nothing outside [s, s + n) is read. */
static inline void pgjson_copy(char *d, const char *s, size_t n)
{
    uint64_t a, b;
    uint32_t x, y;

    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else {
        while (n-- > 0)
            *d++ = *s++;
    }
}

/* Whether N more bytes (and the NUL after them) fit in OUT's allocation and
 * under its max, so they can be stored without fnsdk_buf_append.  max is checked
 * here, not trusted to bound cap: a caller may lower it on a buffer that has
 * already grown (the pool sets a per-result limit on a reused buffer). */
static inline int pgjson_fits(const struct fnsdk_buf *out, size_t n)
{
    return n < out->cap - out->len && !out->failed && (out->max == 0 || out->len + n <= out->max);
}

/* The fast path of fnsdk_buf_append.  The NUL is written once at the end of a
 * render, not after every piece. */
static inline int pgjson_put(struct fnsdk_buf *out, const void *p, size_t n)
{
    if (pgjson_fits(out, n)) {
        pgjson_copy(out->data + out->len, p, n);
        out->len += n;
        return 0;
    }
    return fnsdk_buf_append(out, p, n);
}

static inline int pgjson_putc(struct fnsdk_buf *out, char c)
{
    if (pgjson_fits(out, 1)) {
        out->data[out->len++] = c;
        return 0;
    }
    return fnsdk_buf_append(out, &c, 1);
}

/* Length of the valid UTF-8 sequence at U (N bytes available), or 0. */
static size_t pgjson_utf8_len(const unsigned char *u, size_t n)
{
    unsigned char c = u[0], lo = 0x80, hi = 0xbf;
    size_t need, i;

    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef)
        need = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 4;
    else
        return 0;
    if (n < need)
        return 0;
    /* Overlong forms, surrogates and code points past U+10FFFF are ruled out
     * by narrowing the range of the second byte. */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (u[1] < lo || u[1] > hi)
        return 0;
    for (i = 2; i < need; i++)
        if (u[i] < 0x80 || u[i] > 0xbf)
            return 0;
    return need;
}

static int pgjson_escape(struct fnsdk_buf *out, unsigned char c)
{
    char e[6] = {'\\', 'u', '0', '0', pgjson_hex[c >> 4], pgjson_hex[c & 15]};

    switch (c) {
    case '"':
        return pgjson_put(out, "\\\"", 2);
    case '\\':
        return pgjson_put(out, "\\\\", 2);
    case '\b':
        return pgjson_put(out, "\\b", 2);
    case '\f':
        return pgjson_put(out, "\\f", 2);
    case '\n':
        return pgjson_put(out, "\\n", 2);
    case '\r':
        return pgjson_put(out, "\\r", 2);
    case '\t':
        return pgjson_put(out, "\\t", 2);
    default:
        if (c >= 0x80) /* a byte of invalid UTF-8 */
            return pgjson_put(out, "\\ufffd", 6);
        return pgjson_put(out, e, sizeof(e));
    }
}

/* Index of the first byte at or after I in U that needs a closer look. */
static inline size_t pgjson_scan(const unsigned char *u, size_t i, size_t len)
{
    uint64_t w;

    while (len - i >= 8) {
        memcpy(&w, u + i, 8);
        if (pgjson_word_special(w))
            break;
        i += 8;
    }
    while (i < len && !pgjson_special[u[i]])
        i++;
    return i;
}

/* pgjson_string without the cleanup on failure, for use inside a render
 * that cleans up as a whole. */
static int pgjson_string_raw(struct fnsdk_buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i, run = 0, k;
    char *d;

    i = pgjson_scan(u, 0, len);
    if (i == len && pgjson_fits(out, len + 2)) {
        /* The common case: nothing to escape, room to spare. */
        d = out->data + out->len;
        d[0] = '"';
        pgjson_copy(d + 1, s, len);
        d[len + 1] = '"';
        out->len += len + 2;
        return 0;
    }
    if (out->cap - out->len <= len + 2 && fnsdk_buf_reserve(out, len + 2) < 0)
        return -1;
    pgjson_putc(out, '"');
    while (i < len) {
        if (pgjson_special[u[i]] == 2 && (k = pgjson_utf8_len(u + i, len - i)) > 0) {
            i = pgjson_scan(u, i + k, len); /* valid UTF-8 stays in the run */
            continue;
        }
        pgjson_put(out, s + run, i - run);
        pgjson_escape(out, u[i]);
        run = ++i;
        i = pgjson_scan(u, i, len);
    }
    pgjson_put(out, s + run, i - run);
    return pgjson_putc(out, '"');
}

int pgjson_string(struct fnsdk_buf *out, const char *s, size_t len)
{
    size_t start = out->len;

    if (pgjson_string_raw(out, s, len) < 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Whether the N bytes at P are exactly a JSON number.  Postgres' integer and
 * float output always is, except NaN and the infinities; checking costs a
 * few nanoseconds and guarantees the output parses whatever the server says. */
static int pgjson_is_number(const char *p, size_t n)
{
    size_t i = 0;

    if (i < n && p[i] == '-')
        i++;
    if (i == n)
        return 0;
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        if (++i == n || p[i] < '0' || p[i] > '9')
            return 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        if (++i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i == n || p[i] < '0' || p[i] > '9')
            return 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    return i == n;
}

static int pgjson_scalar(struct fnsdk_buf *out, int kind, const char *p, size_t n)
{
    switch (kind) {
    case PGJSON_NUM:
        if (pgjson_is_number(p, n))
            return pgjson_put(out, p, n);
        break;
    case PGJSON_BOOL:
        if (n == 1 && p[0] == 't')
            return pgjson_put(out, "true", 4);
        if (n == 1 && p[0] == 'f')
            return pgjson_put(out, "false", 5);
        break;
    case PGJSON_JSON:
        /* The server validated it on input; only an impossible empty value
         * would break the output. */
        if (n > 0)
            return pgjson_put(out, p, n);
        return pgjson_put(out, "null", 4);
    default:
        break;
    }
    return pgjson_string_raw(out, p, n);
}

static int pgjson_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Copies the N bytes at P into SCRATCH, dropping the backslash of each
 * backslash escape. */
static int pgjson_unescape(struct fnsdk_buf *scratch, const char *p, size_t n)
{
    size_t i, j;

    fnsdk_buf_reset(scratch);
    if (fnsdk_buf_reserve(scratch, n) < 0)
        return -1;
    for (i = j = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n)
            i++;
        scratch->data[j++] = p[i];
    }
    scratch->len = j;
    return 0;
}

/* Renders a Postgres text array literal, {a,b,NULL}, {{1,2},{3,4}},
 * {"a b","c\"d"} or [0:1]={1,2}, as a JSON array with elements of KIND.
 * A literal that does not parse falls back to its text as a JSON string. */
static int pgjson_array(struct fnsdk_buf *out, int kind, const char *val, size_t n,
                        struct fnsdk_buf *scratch)
{
    const char *p = val, *end = val + n, *q, *e;
    size_t start = out->len, elen;
    int depth = 0, want = 1, opened = 0, esc;

    if (p < end && *p == '[') { /* dimension decoration: bounds, then '=' */
        q = memchr(p, '=', n);
        if (q == NULL)
            goto bad;
        p = q + 1;
    }
    while (p < end && pgjson_is_space(*p))
        p++;
    if (p == end || *p != '{')
        goto bad;
    while (p < end) {
        char c = *p;

        if (pgjson_is_space(c)) {
            p++;
            continue;
        }
        if (!want) {
            if (c == ',') {
                pgjson_putc(out, ',');
                want = 1;
            } else if (c == '}') {
                pgjson_putc(out, ']');
                depth--;
            } else {
                goto bad;
            }
            p++;
            if (depth == 0)
                break;
            continue;
        }
        if (c == '{') {
            if (++depth > PGJSON_MAX_DEPTH)
                goto bad;
            pgjson_putc(out, '[');
            opened = 1;
            p++;
            continue;
        }
        if (c == '}') {
            if (!opened) /* "{1,}" */
                goto bad;
            pgjson_putc(out, ']');
            opened = want = 0;
            p++;
            if (--depth == 0)
                break;
            continue;
        }
        if (c == ',')
            goto bad;
        esc = 0;
        if (c == '"') {
            for (q = p + 1; q < end && *q != '"'; q++) {
                if (*q == '\\') {
                    esc = 1;
                    if (++q == end)
                        goto bad;
                }
            }
            if (q == end)
                goto bad;
            e = p + 1;
            elen = (size_t)(q - e);
            p = q + 1;
        } else {
            for (q = p; q < end && *q != ',' && *q != '}'; q++) {
                if (*q == '"' || *q == '{')
                    goto bad;
                if (*q == '\\') {
                    esc = 1;
                    if (++q == end)
                        goto bad;
                }
            }
            e = p;
            elen = (size_t)(q - e);
            p = q;
            while (elen > 0 && pgjson_is_space(e[elen - 1]) && !esc)
                elen--;
            if (!esc && elen == 4 && (e[0] | 0x20) == 'n' && (e[1] | 0x20) == 'u' &&
                (e[2] | 0x20) == 'l' && (e[3] | 0x20) == 'l') {
                pgjson_put(out, "null", 4);
                opened = want = 0;
                continue;
            }
        }
        if (esc) {
            if (pgjson_unescape(scratch, e, elen) < 0) {
                out->failed = 1;
                return -1;
            }
            e = scratch->data;
            elen = scratch->len;
        }
        pgjson_scalar(out, kind, e, elen);
        opened = want = 0;
    }
    if (out->failed)
        return -1;
    while (p < end && pgjson_is_space(*p))
        p++;
    if (depth == 0 && p == end)
        return 0;
bad:
    if (out->failed)
        return -1;
    out->len = start;
    return pgjson_string_raw(out, val, n);
}

/* Element kind of an array type, or -1 if OID is not a mapped array. */
static int pgjson_array_kind(Oid oid)
{
    switch (oid) {
    case PGJSON_INT2ARRAYOID:
    case PGJSON_INT4ARRAYOID:
    case PGJSON_OIDARRAYOID:
    case PGJSON_FLOAT4ARRAYOID:
    case PGJSON_FLOAT8ARRAYOID:
        return PGJSON_NUM;
    case PGJSON_INT8ARRAYOID:
    case PGJSON_NUMERICARRAYOID:
        return PGJSON_BIGNUM;
    case PGJSON_BOOLARRAYOID:
        return PGJSON_BOOL;
    case PGJSON_JSONARRAYOID:
    case PGJSON_JSONBARRAYOID:
        return PGJSON_JSON;
    case PGJSON_TEXTARRAYOID:
    case PGJSON_VARCHARARRAYOID:
    case PGJSON_BPCHARARRAYOID:
    case PGJSON_UUIDARRAYOID:
    case PGJSON_DATEARRAYOID:
    case PGJSON_TIMESTAMPARRAYOID:
    case PGJSON_TIMESTAMPTZARRAYOID:
    case PGJSON_NAMEARRAYOID:
        return PGJSON_STR;
    default:
        return -1;
    }
}

static int pgjson_scalar_kind(Oid oid)
{
    switch (oid) {
    case PGJSON_INT2OID:
    case PGJSON_INT4OID:
    case PGJSON_OIDOID:
    case PGJSON_FLOAT4OID:
    case PGJSON_FLOAT8OID:
        return PGJSON_NUM;
    case PGJSON_INT8OID:
    case PGJSON_NUMERICOID:
        return PGJSON_BIGNUM;
    case PGJSON_BOOLOID:
        return PGJSON_BOOL;
    case PGJSON_JSONOID:
    case PGJSON_JSONBOID:
        return PGJSON_JSON;
    default:
        return PGJSON_STR;
    }
}

/* Describes each column and pre-renders its key into KEYS. */
static int pgjson_columns(const PGresult *res, int ncols, struct pgjson_col *cols,
                          struct fnsdk_buf *keys)
{
    const char *name;
    int c, ak;

    for (c = 0; c < ncols; c++) {
        if (PQfformat(res, c) != 0)
            return -1;
        ak = pgjson_array_kind(PQftype(res, c));
        cols[c].is_array = ak >= 0;
        cols[c].kind = (unsigned char)(ak >= 0 ? ak : pgjson_scalar_kind(PQftype(res, c)));
        cols[c].koff = keys->len;
        name = PQfname(res, c);
        fnsdk_buf_putc(keys, c == 0 ? '{' : ',');
        pgjson_string_raw(keys, name, strlen(name));
        fnsdk_buf_putc(keys, ':');
        if (keys->failed)
            return -1;
        cols[c].klen = keys->len - cols[c].koff;
    }
    return 0;
}

/* Bytes the output will likely take: keys and punctuation exactly, values
 * by the average text length of the first rows (escapes and bool spelling
 * aside), plus an eighth.  Summing every cell's length costs a libpq call per
 * cell, a tenth of the render; a sample is nearly as good, and a short guess
 * costs one regrowth. */
static size_t pgjson_estimate(const PGresult *res, int nrows, int ncols, size_t keys_len)
{
    size_t total = 2 + (size_t)nrows * (keys_len + 2 + 2 * (size_t)ncols), sample = 0;
    int r, c, n = nrows < PGJSON_SAMPLE_ROWS ? nrows : PGJSON_SAMPLE_ROWS;

    for (r = 0; r < n; r++)
        for (c = 0; c < ncols; c++)
            sample += (size_t)PQgetlength(res, r, c);
    if (n > 0)
        total += sample / (size_t)n * (size_t)nrows * 9 / 8;
    return total;
}

/* Appends rows FROM..TO-1 of RES, each preceded by a comma unless it is
 * the first row of the array (*NROWS counts the rows written whole). */
static void pgjson_put_rows(const PGresult *res, int from, int to, int ncols,
                            const struct pgjson_col *cols, const struct fnsdk_buf *keys,
                            struct fnsdk_buf *scratch, struct fnsdk_buf *out, long *nrows)
{
    const char *v;
    size_t vlen;
    int r, c;

    for (r = from; r < to; r++) {
        pgjson_putc(out, *nrows > 0 ? ',' : '[');
        if (ncols == 0)
            pgjson_putc(out, '{');
        for (c = 0; c < ncols; c++) {
            const struct pgjson_col *col = &cols[c];

            pgjson_put(out, keys->data + col->koff, col->klen);
            /* Only an empty value can be NULL: saves a libpq call per cell. */
            vlen = (size_t)PQgetlength(res, r, c);
            if (vlen == 0 && PQgetisnull(res, r, c)) {
                pgjson_put(out, "null", 4);
                continue;
            }
            v = PQgetvalue(res, r, c);
            if (col->kind == PGJSON_STR && !col->is_array)
                pgjson_string_raw(out, v, vlen);
            else if (col->is_array)
                pgjson_array(out, col->kind, v, vlen, scratch);
            else
                pgjson_scalar(out, col->kind, v, vlen);
        }
        pgjson_putc(out, '}');
        if (out->failed)
            return;
        (*nrows)++;
    }
}

int pgjson_render(const PGresult *res, struct fnsdk_buf *out)
{
    struct pgjson_col stack_cols[PGJSON_STACK_COLS], *cols = stack_cols;
    struct fnsdk_buf keys, scratch;
    size_t start = out->len;
    int nrows, ncols, rc = -1;
    long written = 0;

    if (out->failed)
        return -1;
    if (res == NULL) {
        out->failed = 1;
        return -1;
    }
    nrows = PQntuples(res);
    ncols = PQnfields(res);
    fnsdk_buf_init(&keys, 0);
    fnsdk_buf_init(&scratch, 0);
    if (ncols > PGJSON_STACK_COLS) {
        cols = malloc((size_t)ncols * sizeof(*cols));
        if (cols == NULL)
            goto done;
    }
    if (pgjson_columns(res, ncols, cols, &keys) < 0)
        goto done;
    fnsdk_buf_reserve(out, pgjson_estimate(res, nrows, ncols, keys.len));

    pgjson_put_rows(res, 0, nrows, ncols, cols, &keys, &scratch, out, &written);
    if (written == 0)
        pgjson_putc(out, '[');
    pgjson_putc(out, ']');
    if (!out->failed)
        rc = 0;
done:
    if (rc < 0) {
        out->failed = 1;
        out->len = start;
    }
    if (out->data != NULL)
        out->data[out->len] = '\0';
    if (cols != stack_cols)
        free(cols);
    fnsdk_buf_free(&keys);
    fnsdk_buf_free(&scratch);
    return rc;
}

/* One result being rendered a row at a time.  The column descriptions and
 * keys come from the first PGresult with rows and hold for the rest: in
 * single-row mode every PGRES_SINGLE_TUPLE carries the same description. */
struct pgjson_rows {
    struct pgjson_col *cols; /* owned, ncols entries (ncap allocated) */
    int ncols, ncap;
    bool described;
    long nrows;
    struct fnsdk_buf keys, scratch;
};

struct pgjson_rows *pgjson_rows_new(void)
{
    struct pgjson_rows *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    fnsdk_buf_init(&st->keys, 0);
    fnsdk_buf_init(&st->scratch, 0);
    return st;
}

void pgjson_rows_free(struct pgjson_rows *st)
{
    if (st == NULL)
        return;
    free(st->cols);
    fnsdk_buf_free(&st->keys);
    fnsdk_buf_free(&st->scratch);
    free(st);
}

void pgjson_rows_reset(struct pgjson_rows *st)
{
    st->described = false;
    st->ncols = 0;
    st->nrows = 0;
    fnsdk_buf_reset(&st->keys);
    fnsdk_buf_reset(&st->scratch);
}

long pgjson_rows_count(const struct pgjson_rows *st)
{
    return st->nrows;
}

int pgjson_rows_add(struct pgjson_rows *st, const PGresult *res, struct fnsdk_buf *out)
{
    int nrows;

    if (out->failed)
        return -1;
    if (res == NULL) {
        out->failed = 1;
        return -1;
    }
    nrows = PQntuples(res);
    if (nrows == 0)
        return 0;
    if (!st->described) {
        int ncols = PQnfields(res);
        if (ncols > st->ncap) {
            struct pgjson_col *n = realloc(st->cols, (size_t)ncols * sizeof(*n));
            if (n == NULL) {
                out->failed = 1;
                return -1;
            }
            st->cols = n;
            st->ncap = ncols;
        }
        st->ncols = ncols;
        if (pgjson_columns(res, ncols, st->cols, &st->keys) < 0) {
            out->failed = 1;
            return -1;
        }
        st->described = true;
        if (nrows > 1)
            fnsdk_buf_reserve(out, pgjson_estimate(res, nrows, ncols, st->keys.len));
    }
    pgjson_put_rows(res, 0, nrows, st->ncols, st->cols, &st->keys, &st->scratch, out, &st->nrows);
    if (out->data != NULL)
        out->data[out->len] = '\0';
    return out->failed ? -1 : 0;
}

int pgjson_rows_end(struct pgjson_rows *st, struct fnsdk_buf *out)
{
    if (st->nrows == 0)
        pgjson_putc(out, '[');
    pgjson_putc(out, ']');
    if (out->data != NULL)
        out->data[out->len] = '\0';
    return out->failed ? -1 : 0;
}
