/*
 * Frame codec for the database channel between function instances and the
 * gateway's pool.  It is shared by both ends so the format has exactly one
 * definition, and it is written defensively because the pool reads frames
 * from instances running arbitrary user code: every length is checked against
 * the bytes really present, a declared size is refused before its body is
 * buffered, and malformed input is an error, never a crash or a hang.
 */
#include "config.h"

#include "fnsdk_frame.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The length written by fnsdk_frame_begin until fnsdk_frame_end patches it; larger
 * than FNSDK_FRAME_MAX_PAYLOAD so it can never be mistaken for a real frame. */
#define FNSDK_FRAME_OPEN 0xffffffffu
/* Smallest read fnsdk_frame_reader_read asks the kernel for. */
#define FNSDK_FRAME_READ_CHUNK 16384
/* A reader holding more than this, with nothing buffered, gives memory back. */
#define FNSDK_FRAME_KEEP_CAP 65536

static uint32_t fnsdk_frame_get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

static void fnsdk_frame_put32(char *p, uint32_t v)
{
    unsigned char *u = (unsigned char *)p;

    u[0] = (unsigned char)(v >> 24);
    u[1] = (unsigned char)(v >> 16);
    u[2] = (unsigned char)(v >> 8);
    u[3] = (unsigned char)v;
}

static int fnsdk_frame_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fnsdk_frame_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* --- building ----------------------------------------------------------- */

int fnsdk_frame_begin(struct fnsdk_buf *out, char type)
{
    char hdr[FNSDK_FRAME_HDR + 1];

    fnsdk_frame_put32(hdr, FNSDK_FRAME_OPEN);
    hdr[FNSDK_FRAME_HDR] = type;
    return fnsdk_buf_append(out, hdr, sizeof(hdr));
}

int fnsdk_frame_add(struct fnsdk_buf *out, const void *p, size_t n)
{
    char hdr[FNSDK_FRAME_HDR];

    if (n > FNSDK_FRAME_MAX_PAYLOAD) {
        out->failed = 1;
        return -1;
    }
    fnsdk_frame_put32(hdr, (uint32_t)n);
    if (fnsdk_buf_reserve(out, sizeof(hdr) + n) < 0 || fnsdk_buf_append(out, hdr, sizeof(hdr)) < 0)
        return -1;
    return fnsdk_buf_append(out, p, n);
}

int fnsdk_frame_add_tagged(struct fnsdk_buf *out, char tag, const void *p, size_t n)
{
    char hdr[FNSDK_FRAME_HDR + 1];

    if (n >= FNSDK_FRAME_MAX_PAYLOAD) {
        out->failed = 1;
        return -1;
    }
    fnsdk_frame_put32(hdr, (uint32_t)(n + 1));
    hdr[FNSDK_FRAME_HDR] = tag;
    if (fnsdk_buf_reserve(out, sizeof(hdr) + n) < 0 || fnsdk_buf_append(out, hdr, sizeof(hdr)) < 0)
        return -1;
    return fnsdk_buf_append(out, p, n);
}

size_t fnsdk_frame_field_begin(struct fnsdk_buf *out)
{
    size_t mark = out->len;
    char hdr[FNSDK_FRAME_HDR] = {0};

    fnsdk_buf_append(out, hdr, sizeof(hdr));
    return mark;
}

int fnsdk_frame_field_end(struct fnsdk_buf *out, size_t mark)
{
    size_t n;

    if (out->failed)
        return -1;
    if (mark > out->len || out->len - mark < FNSDK_FRAME_HDR) {
        out->failed = 1;
        return -1;
    }
    n = out->len - mark - FNSDK_FRAME_HDR;
    if (n > FNSDK_FRAME_MAX_PAYLOAD) {
        out->failed = 1;
        return -1;
    }
    fnsdk_frame_put32(out->data + mark, (uint32_t)n);
    return 0;
}

int fnsdk_frame_end_at(struct fnsdk_buf *out, size_t start)
{
    size_t n;

    if (out->failed)
        return -1;
    if (start > out->len || out->len - start < FNSDK_FRAME_HDR + 1 ||
        fnsdk_frame_get32(out->data + start) != FNSDK_FRAME_OPEN) {
        out->failed = 1;
        return -1;
    }
    n = out->len - start - FNSDK_FRAME_HDR;
    if (n > FNSDK_FRAME_MAX_PAYLOAD) {
        out->failed = 1;
        return -1;
    }
    fnsdk_frame_put32(out->data + start, (uint32_t)n);
    return 0;
}

int fnsdk_frame_end(struct fnsdk_buf *out)
{
    size_t off = 0;
    uint32_t n;

    if (out->failed)
        return -1;
    while (out->len - off >= FNSDK_FRAME_HDR) {
        n = fnsdk_frame_get32(out->data + off);
        if (n == FNSDK_FRAME_OPEN)
            return fnsdk_frame_end_at(out, off);
        if (n > out->len - off - FNSDK_FRAME_HDR)
            break;
        off += FNSDK_FRAME_HDR + n;
    }
    out->failed = 1; /* no open frame, or OUT holds something else */
    return -1;
}

/* --- parsing ------------------------------------------------------------- */

static int fnsdk_frame_is_int(const char *p, size_t n)
{
    size_t i = 0;

    if (n > 0 && (p[0] == '-' || p[0] == '+'))
        i = 1;
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

static int fnsdk_frame_check_param(const struct fnsdk_frame_field *f, size_t idx, char *err,
                                   size_t errlen)
{
    const char *v = f->p + 1;
    size_t n = f->len - 1;

    if (f->len == 0)
        return fnsdk_frame_fail(err, errlen, "parameter $%zu has no type tag", idx);
    switch (f->p[0]) {
    case FNSDK_FRAME_P_NULL:
        if (n != 0)
            return fnsdk_frame_fail(err, errlen, "null parameter $%zu has a value", idx);
        return 0;
    case FNSDK_FRAME_P_BOOL:
        if (n != 1 || (v[0] != 't' && v[0] != 'f'))
            return fnsdk_frame_fail(err, errlen, "bool parameter $%zu is not \"t\" or \"f\"", idx);
        return 0;
    case FNSDK_FRAME_P_INT:
        if (!fnsdk_frame_is_int(v, n))
            return fnsdk_frame_fail(err, errlen, "integer parameter $%zu is not decimal", idx);
        return 0;
    case FNSDK_FRAME_P_REAL:
        if (n == 0)
            return fnsdk_frame_fail(err, errlen, "real parameter $%zu is empty", idx);
        break;
    case FNSDK_FRAME_P_STRING:
    case FNSDK_FRAME_P_JSON:
        break;
    case FNSDK_FRAME_P_TRACE:
        if (n != 32)
            return fnsdk_frame_fail(err, errlen, "trace id is not 32 lowercase hex digits");
        /* Not strspn: the field is not NUL-terminated and may end the frame. */
        for (size_t k = 0; k < n; k++) {
            if (!((v[k] >= '0' && v[k] <= '9') || (v[k] >= 'a' && v[k] <= 'f')))
                return fnsdk_frame_fail(err, errlen, "trace id is not 32 lowercase hex digits");
        }
        return 0;
    default:
        return fnsdk_frame_fail(err, errlen, "parameter $%zu has unknown type tag 0x%02x", idx,
                                (unsigned char)f->p[0]);
    }
    if (memchr(v, '\0', n) != NULL)
        return fnsdk_frame_fail(err, errlen, "parameter $%zu contains a NUL byte", idx);
    return 0;
}

int fnsdk_frame_parse(const char *payload, size_t len, struct fnsdk_frame_view *v, char *err,
                      size_t errlen)
{
    size_t off = 1, i;
    uint32_t n;

    v->type = 0;
    v->n_fields = 0;
    if (len == 0)
        return fnsdk_frame_fail(err, errlen, "empty frame");
    v->type = payload[0];
    if (v->type != FNSDK_FRAME_QUERY && v->type != FNSDK_FRAME_RESULT &&
        v->type != FNSDK_FRAME_ERROR)
        return fnsdk_frame_fail(err, errlen, "unknown frame type 0x%02x", (unsigned char)v->type);
    while (off < len) {
        if (v->n_fields == FNSDK_FRAME_MAX_FIELDS)
            return fnsdk_frame_fail(err, errlen, "too many fields (more than %d)",
                                    FNSDK_FRAME_MAX_FIELDS);
        if (len - off < FNSDK_FRAME_HDR)
            return fnsdk_frame_fail(err, errlen, "truncated field length at byte %zu", off);
        n = fnsdk_frame_get32(payload + off);
        off += FNSDK_FRAME_HDR;
        if (n > len - off)
            return fnsdk_frame_fail(err, errlen, "field %zu overruns the frame (%lu > %zu bytes)",
                                    v->n_fields, (unsigned long)n, len - off);
        v->field[v->n_fields].p = payload + off;
        v->field[v->n_fields].len = n;
        v->n_fields++;
        off += n;
    }
    switch (v->type) {
    case FNSDK_FRAME_QUERY:
        if (v->n_fields == 0 || v->field[0].len == 0)
            return fnsdk_frame_fail(err, errlen, "query frame without sql");
        if (memchr(v->field[0].p, '\0', v->field[0].len) != NULL)
            return fnsdk_frame_fail(err, errlen, "sql contains a NUL byte");
        for (i = 1; i < v->n_fields; i++) {
            if (fnsdk_frame_check_param(&v->field[i], i, err, errlen) < 0)
                return -1;
            if (v->field[i].p[0] == FNSDK_FRAME_P_TRACE && i != v->n_fields - 1)
                return fnsdk_frame_fail(err, errlen, "trace id before parameter $%zu", i + 1);
        }
        return 0;
    case FNSDK_FRAME_RESULT:
        if (v->n_fields != 3)
            return fnsdk_frame_fail(err, errlen, "result frame has %zu fields, not 3", v->n_fields);
        if (v->field[1].len > 0 && !fnsdk_frame_is_int(v->field[1].p, v->field[1].len))
            return fnsdk_frame_fail(err, errlen, "result row count is not decimal");
        return 0;
    default:
        if (v->n_fields != 5)
            return fnsdk_frame_fail(err, errlen, "error frame has %zu fields, not 5", v->n_fields);
        if (v->field[0].len != 0 && v->field[0].len != 5)
            return fnsdk_frame_fail(err, errlen, "error frame sqlstate is not 5 bytes");
        return 0;
    }
}

/* --- the stream reader ------------------------------------------------------ */

void fnsdk_frame_reader_init(struct fnsdk_frame_reader *r, size_t max_payload)
{
    memset(r, 0, sizeof(*r));
    r->max_payload = max_payload > FNSDK_FRAME_MAX_PAYLOAD ? FNSDK_FRAME_MAX_PAYLOAD : max_payload;
}

void fnsdk_frame_reader_free(struct fnsdk_frame_reader *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = r->pos = r->scan = r->ready = 0;
}

static int fnsdk_frame_reader_fail(struct fnsdk_frame_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fnsdk_frame_reader_fail(struct fnsdk_frame_reader *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->state = -1;
    return -1;
}

/* What feed and read return once the stream is over or broken: frames that
 * were complete still come out first. */
static int fnsdk_frame_reader_done(const struct fnsdk_frame_reader *r)
{
    return r->ready > 0 ? 1 : -1;
}

/* Drops popped frames from the front of the buffer; earlier payload pointers
 * die here, which is why they are valid only until the next feed. */
static void fnsdk_frame_reader_compact(struct fnsdk_frame_reader *r)
{
    if (r->pos == 0)
        return;
    if (r->pos < r->len)
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->scan -= r->pos;
    r->pos = 0;
    if (r->len == 0 && r->cap > FNSDK_FRAME_KEEP_CAP) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
}

static int fnsdk_frame_reader_room(struct fnsdk_frame_reader *r, size_t n)
{
    size_t ncap;
    char *nb;

    if (r->cap - r->len >= n)
        return 0;
    ncap = r->cap ? r->cap : 256;
    while (ncap - r->len < n)
        ncap *= 2; /* bounded: n and len never exceed about twice max_payload */
    nb = realloc(r->buf, ncap);
    if (nb == NULL)
        return fnsdk_frame_reader_fail(r, "out of memory buffering a %zu-byte frame", n);
    r->buf = nb;
    r->cap = ncap;
    return 0;
}

/* Moves scan past every frame now complete; checks each length prefix as
 * soon as its 4 bytes are present. */
static int fnsdk_frame_reader_advance(struct fnsdk_frame_reader *r)
{
    uint32_t n;

    while (r->len - r->scan >= FNSDK_FRAME_HDR) {
        n = fnsdk_frame_get32(r->buf + r->scan);
        if (n > r->max_payload)
            return fnsdk_frame_reader_fail(r, "frame of %lu bytes exceeds the %zu-byte limit",
                                           (unsigned long)n, r->max_payload);
        if (r->len - r->scan - FNSDK_FRAME_HDR < n)
            break;
        r->scan += FNSDK_FRAME_HDR + n;
        r->ready++;
    }
    return 0;
}

/* Bytes still missing from the frame at scan, counting only its header until
 * the header is complete. */
static size_t fnsdk_frame_reader_missing(const struct fnsdk_frame_reader *r)
{
    size_t have = r->len - r->scan;

    if (have < FNSDK_FRAME_HDR)
        return FNSDK_FRAME_HDR - have;
    return FNSDK_FRAME_HDR + fnsdk_frame_get32(r->buf + r->scan) - have;
}

int fnsdk_frame_reader_feed(struct fnsdk_frame_reader *r, const void *data, size_t n)
{
    const char *p = data;
    size_t take;

    if (r->state != 0)
        return fnsdk_frame_reader_done(r);
    fnsdk_frame_reader_compact(r);
    while (n > 0) {
        /* Never past the current frame's header, then never past its end,
         * so an oversized length is refused before any of its body. */
        take = fnsdk_frame_reader_missing(r);
        if (take > n)
            take = n;
        if (fnsdk_frame_reader_room(r, take) < 0)
            return fnsdk_frame_reader_done(r);
        memcpy(r->buf + r->len, p, take);
        r->len += take;
        p += take;
        n -= take;
        if (fnsdk_frame_reader_advance(r) < 0)
            return fnsdk_frame_reader_done(r);
    }
    return r->ready > 0 ? 1 : 0;
}

int fnsdk_frame_reader_read(struct fnsdk_frame_reader *r, int fd)
{
    size_t want;
    ssize_t k;

    if (r->state != 0)
        return fnsdk_frame_reader_done(r);
    fnsdk_frame_reader_compact(r);
    for (;;) {
        if (r->ready > 0 && r->len - r->pos > r->max_payload)
            break; /* enough for now; the fd stays readable */
        want = fnsdk_frame_reader_missing(r);
        if (want < FNSDK_FRAME_READ_CHUNK)
            want = FNSDK_FRAME_READ_CHUNK;
        if (fnsdk_frame_reader_room(r, want) < 0)
            return fnsdk_frame_reader_done(r);
        want = r->cap - r->len;
        k = read(fd, r->buf + r->len, want);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            fnsdk_frame_reader_fail(r, "channel read: %s", strerror(errno));
            return fnsdk_frame_reader_done(r);
        }
        if (k == 0) {
            if (r->len > r->scan)
                fnsdk_frame_reader_fail(r, "channel closed mid-frame");
            else
                snprintf(r->err, sizeof(r->err), "channel closed");
            if (r->state == 0)
                r->state = 1;
            return fnsdk_frame_reader_done(r);
        }
        r->len += (size_t)k;
        if (fnsdk_frame_reader_advance(r) < 0)
            return fnsdk_frame_reader_done(r);
        /* A short read emptied the socket: asking again would only cost an
         * EAGAIN (a syscall per query on the pool's channels).  Whatever
         * arrives later fires the level-triggered event again. */
        if ((size_t)k < want)
            break;
    }
    return r->ready > 0 ? 1 : 0;
}

int fnsdk_frame_reader_next(struct fnsdk_frame_reader *r, const char **payload, size_t *len)
{
    uint32_t n;

    if (r->ready == 0)
        return 0;
    n = fnsdk_frame_get32(r->buf + r->pos);
    *payload = r->buf + r->pos + FNSDK_FRAME_HDR;
    *len = n;
    r->pos += FNSDK_FRAME_HDR + n;
    r->ready--;
    return 1;
}

/* --- blocking helpers ----------------------------------------------------------- */

static int fnsdk_frame_wait(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int rc;

    do
        rc = poll(&pfd, 1, -1);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : 0;
}

int fnsdk_frame_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    int sock = 1;
    ssize_t k;

    while (len > 0) {
        if (sock) {
            k = send(fd, p, len, MSG_NOSIGNAL);
            if (k < 0 && errno == ENOTSOCK) {
                sock = 0;
                continue;
            }
        } else {
            k = write(fd, p, len);
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && fnsdk_frame_wait(fd, POLLOUT) == 0)
                continue;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Reads at least MIN and at most N bytes; how many arrived before EOF, or -1. */
static ssize_t fnsdk_frame_read_some(int fd, char *p, size_t min, size_t n)
{
    size_t got = 0;
    ssize_t k;

    while (got < min) {
        k = read(fd, p + got, n - got);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && fnsdk_frame_wait(fd, POLLIN) == 0)
                continue;
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* Reads exactly N bytes; returns how many arrived before EOF, or -1. */
static ssize_t fnsdk_frame_read_exact(int fd, char *p, size_t n)
{
    return fnsdk_frame_read_some(fd, p, n, n);
}

int fnsdk_frame_read_one(int fd, struct fnsdk_buf *into, size_t max_payload, char *err,
                         size_t errlen)
{
    char hdr[FNSDK_FRAME_HDR];
    uint32_t n;
    ssize_t k;

    fnsdk_buf_reset(into);
    k = fnsdk_frame_read_exact(fd, hdr, sizeof(hdr));
    if (k < 0)
        return fnsdk_frame_fail(err, errlen, "channel read: %s", strerror(errno));
    if (k == 0)
        return fnsdk_frame_fail(err, errlen, "channel closed");
    if ((size_t)k < sizeof(hdr))
        return fnsdk_frame_fail(err, errlen, "channel closed mid-frame");
    n = fnsdk_frame_get32(hdr);
    if (n > max_payload || n > FNSDK_FRAME_MAX_PAYLOAD)
        return fnsdk_frame_fail(err, errlen, "frame of %lu bytes exceeds the %zu-byte limit",
                                (unsigned long)n, max_payload);
    /* Read the body straight into INTO's storage. */
    if (fnsdk_buf_reserve(into, n) < 0 || (into->max && n > into->max)) {
        into->failed = 1;
        return fnsdk_frame_fail(err, errlen, "no room for a %lu-byte frame", (unsigned long)n);
    }
    k = fnsdk_frame_read_exact(fd, into->data, n);
    if (k < 0)
        return fnsdk_frame_fail(err, errlen, "channel read: %s", strerror(errno));
    if ((size_t)k < n)
        return fnsdk_frame_fail(err, errlen, "channel closed mid-frame");
    into->len = n;
    into->data[n] = '\0';
    return 0;
}

int fnsdk_frame_read_reply(int fd, struct fnsdk_buf *into, size_t max_payload, char *err,
                           size_t errlen)
{
    size_t room, got;
    uint32_t n;
    ssize_t k;

    fnsdk_buf_reset(into);
    if (fnsdk_buf_reserve(into, FNSDK_FRAME_READ_CHUNK) < 0 || into->cap - 1 < FNSDK_FRAME_HDR)
        return fnsdk_frame_read_one(fd, into, max_payload, err, errlen);
    /* Waiting in poll, not in read: a reader blocked in read() on a unix
     * stream socket is woken by every write-space wake-up of that socket,
     * and the pool's read of the query just sent makes one, so the
     * instance would wake for nothing and sleep again on most queries (a
     * context switch here and an extra wake-up charged to the pool).  A
     * poll waiter is woken only for the events it asked for. */
    if (fd < 0) {
        errno = EBADF; /* poll would skip it and wait for ever */
        return fnsdk_frame_fail(err, errlen, "channel read: %s", strerror(errno));
    }
    if (fnsdk_frame_wait(fd, POLLIN) < 0)
        return fnsdk_frame_fail(err, errlen, "channel read: %s", strerror(errno));
    /* The header and, for most answers, the whole payload in one read. */
    room = into->cap - 1;
    k = fnsdk_frame_read_some(fd, into->data, FNSDK_FRAME_HDR, room);
    if (k < 0)
        return fnsdk_frame_fail(err, errlen, "channel read: %s", strerror(errno));
    if (k == 0)
        return fnsdk_frame_fail(err, errlen, "channel closed");
    if ((size_t)k < FNSDK_FRAME_HDR)
        return fnsdk_frame_fail(err, errlen, "channel closed mid-frame");
    n = fnsdk_frame_get32(into->data);
    if (n > max_payload || n > FNSDK_FRAME_MAX_PAYLOAD)
        return fnsdk_frame_fail(err, errlen, "frame of %lu bytes exceeds the %zu-byte limit",
                                (unsigned long)n, max_payload);
    got = (size_t)k - FNSDK_FRAME_HDR;
    if (got > n)
        return fnsdk_frame_fail(err, errlen,
                                "%zu bytes after a %lu-byte frame: one answer expected", got - n,
                                (unsigned long)n);
    if (into->max && n > into->max) {
        into->failed = 1;
        return fnsdk_frame_fail(err, errlen, "no room for a %lu-byte frame", (unsigned long)n);
    }
    /* At most one chunk moves; the rest of a large payload is read in place. */
    memmove(into->data, into->data + FNSDK_FRAME_HDR, got);
    if (fnsdk_buf_reserve(into, n) < 0) {
        into->failed = 1;
        return fnsdk_frame_fail(err, errlen, "no room for a %lu-byte frame", (unsigned long)n);
    }
    if (got < n) {
        k = fnsdk_frame_read_exact(fd, into->data + got, n - got);
        if (k < 0)
            return fnsdk_frame_fail(err, errlen, "channel read: %s", strerror(errno));
        if ((size_t)k < n - got)
            return fnsdk_frame_fail(err, errlen, "channel closed mid-frame");
    }
    into->len = n;
    into->data[n] = '\0';
    return 0;
}
