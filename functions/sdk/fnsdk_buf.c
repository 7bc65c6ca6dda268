/*
 * Growable buffer shared by the SDK and the gateway.  It exists so that every
 * producer of channel bytes (frames, rendered JSON) gets overflow-checked
 * growth and a size ceiling from one audited place instead of each hand-rolling
 * realloc arithmetic on sizes an untrusted peer or query result controls.
 */
#include "config.h"

#include "fnsdk_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNSDK_BUF_MIN_CAP 64

void fnsdk_buf_init(struct fnsdk_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->failed = 0;
}

void fnsdk_buf_free(struct fnsdk_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    fnsdk_buf_init(b, b->max);
}

void fnsdk_buf_reset(struct fnsdk_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Grows the allocation to at least NEED bytes (NEED counts the NUL), never
 * beyond max + 1.  The caller has checked NEED against max when it matters. */
static int fnsdk_buf_grow(struct fnsdk_buf *b, size_t need)
{
    size_t limit = b->max ? b->max + 1 : SIZE_MAX;
    size_t ncap;
    char *nd;

    if (need > limit)
        need = limit;
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : FNSDK_BUF_MIN_CAP;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > limit)
        ncap = limit;
    nd = realloc(b->data, ncap);
    if (nd == NULL) {
        b->failed = 1;
        return -1;
    }
    if (b->data == NULL)
        nd[0] = '\0';
    b->data = nd;
    b->cap = ncap;
    return 0;
}

/* Checks that N more bytes fit under max and makes room for them and the NUL. */
static int fnsdk_buf_room(struct fnsdk_buf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n >= SIZE_MAX - b->len || (b->max && (b->len > b->max || n > b->max - b->len))) {
        b->failed = 1;
        return -1;
    }
    if (b->len + n < b->cap)
        return 0;
    return fnsdk_buf_grow(b, b->len + n + 1);
}

int fnsdk_buf_reserve(struct fnsdk_buf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n >= SIZE_MAX - b->len)
        n = SIZE_MAX - b->len - 1;
    return fnsdk_buf_grow(b, b->len + n + 1);
}

int fnsdk_buf_append(struct fnsdk_buf *b, const void *p, size_t n)
{
    if (fnsdk_buf_room(b, n) < 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fnsdk_buf_putc(struct fnsdk_buf *b, int c)
{
    if (fnsdk_buf_room(b, 1) < 0)
        return -1;
    b->data[b->len++] = (char)c;
    b->data[b->len] = '\0';
    return 0;
}

int fnsdk_buf_puts(struct fnsdk_buf *b, const char *s)
{
    return fnsdk_buf_append(b, s, strlen(s));
}

int fnsdk_buf_printf(struct fnsdk_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t avail;
    int n;

    if (b->failed)
        return -1;
    avail = b->cap - b->len; /* 0 when nothing is allocated yet */
    va_start(ap, fmt);
    n = vsnprintf(avail ? b->data + b->len : NULL, avail, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        if (avail)
            b->data[b->len] = '\0';
        return -1;
    }
    if ((size_t)n >= avail) {
        /* Did not fit: anything vsnprintf wrote past len is beyond the
         * string, so only the terminator needs restoring on failure. */
        if (fnsdk_buf_room(b, (size_t)n) < 0) {
            if (b->data != NULL)
                b->data[b->len] = '\0';
            return -1;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            b->data[b->len] = '\0';
            return -1;
        }
    } else if (b->max && (b->len > b->max || (size_t)n > b->max - b->len)) {
        /* It fitted in cap but not under max: max was lowered after the
         * buffer grew.  vsnprintf wrote past len, so restore the NUL. */
        b->failed = 1;
        b->data[b->len] = '\0';
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}
