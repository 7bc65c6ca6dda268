/*
 * The request side of FastCGI, as nginx speaks it: records padded to a
 * multiple of eight, name-value lengths in one byte below 128 and four
 * above, streams ended by an empty record.  The gateway's own clients and
 * the SDK's tests depend on it being exactly what nginx sends, so it lives
 * once, here, with no libevent so that the SDK's tests can link it alone.
 */
#include "config.h"

#include "fcgireq.h"

#include <stdlib.h>
#include <string.h>

enum {
    FCGIREQ_BEGIN_REQUEST = 1,
    FCGIREQ_PARAMS = 4,
    FCGIREQ_STDIN = 5,
    FCGIREQ_RESPONDER = 1,
    FCGIREQ_KEEP_CONN = 1,
};

static int fcgireq_put(unsigned char **p, size_t *n, size_t *cap, const void *d, size_t len)
{
    if (*n + len > *cap) {
        size_t c = *cap ? *cap : 4096;
        unsigned char *np;
        while (c < *n + len)
            c *= 2;
        np = realloc(*p, c);
        if (np == NULL)
            return -1;
        *p = np;
        *cap = c;
    }
    if (len)
        memcpy(*p + *n, d, len);
    *n += len;
    return 0;
}

/* One record: the 8-byte header, LEN (at most 64K-1) bytes, the padding. */
static int fcgireq_record(struct fcgireq *r, int type, const void *content, size_t len)
{
    static const unsigned char zero[8];
    size_t pad = (8 - len % 8) % 8;
    unsigned char h[8] = {1,
                          (unsigned char)type,
                          (unsigned char)(r->id >> 8),
                          (unsigned char)r->id,
                          (unsigned char)(len >> 8),
                          (unsigned char)len,
                          (unsigned char)pad,
                          0};

    if (fcgireq_put(&r->p, &r->n, &r->cap, h, sizeof(h)) < 0 ||
        fcgireq_put(&r->p, &r->n, &r->cap, content, len) < 0 ||
        fcgireq_put(&r->p, &r->n, &r->cap, zero, pad) < 0)
        return -1;
    return 0;
}

static int fcgireq_stream(struct fcgireq *r, int type, const unsigned char *d, size_t len)
{
    for (size_t off = 0; off < len; off += FCGIREQ_MAX_CONTENT) {
        size_t n = len - off < FCGIREQ_MAX_CONTENT ? len - off : FCGIREQ_MAX_CONTENT;
        if (fcgireq_record(r, type, d + off, n) < 0)
            return -1;
    }
    return fcgireq_record(r, type, NULL, 0);
}

struct fcgireq *fcgireq_new(unsigned id, bool keep_conn)
{
    unsigned char begin[8] = {0, FCGIREQ_RESPONDER, keep_conn ? FCGIREQ_KEEP_CONN : 0, 0, 0, 0, 0,
                              0};
    struct fcgireq *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->id = id;
    if (fcgireq_record(r, FCGIREQ_BEGIN_REQUEST, begin, sizeof(begin)) < 0) {
        fcgireq_free(r);
        return NULL;
    }
    return r;
}

void fcgireq_free(struct fcgireq *r)
{
    if (r == NULL)
        return;
    free(r->p);
    free(r->params);
    free(r);
}

/* A name-value pair length: 1 byte below 128, else 4 with the top bit set. */
static int fcgireq_nvlen(struct fcgireq *r, size_t len)
{
    unsigned char c[4] = {(unsigned char)((len >> 24) | 0x80), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 8), (unsigned char)len};

    if (len < 128)
        return fcgireq_put(&r->params, &r->params_n, &r->params_cap, &c[3], 1);
    return fcgireq_put(&r->params, &r->params_n, &r->params_cap, c, 4);
}

int fcgireq_param_n(struct fcgireq *r, const char *name, size_t nlen, const char *value,
                    size_t vlen)
{
    if (fcgireq_nvlen(r, nlen) < 0 || fcgireq_nvlen(r, vlen) < 0 ||
        fcgireq_put(&r->params, &r->params_n, &r->params_cap, name, nlen) < 0 ||
        fcgireq_put(&r->params, &r->params_n, &r->params_cap, value, vlen) < 0)
        return -1;
    return 0;
}

int fcgireq_param(struct fcgireq *r, const char *name, const char *value)
{
    return fcgireq_param_n(r, name, strlen(name), value, strlen(value));
}

int fcgireq_finish(struct fcgireq *r, const void *body, size_t len)
{
    if (fcgireq_stream(r, FCGIREQ_PARAMS, r->params, r->params_n) < 0 ||
        fcgireq_stream(r, FCGIREQ_STDIN, body, len) < 0)
        return -1;
    return 0;
}
