/*
 * The database channel's wire format, in one place for both ends: the SDK in
 * every function instance (client) and the pool in the gateway (server).  The
 * pool must treat each instance as untrusted, so the parser validates every
 * length against the bytes actually present and rejects anything malformed
 * instead of trusting the peer; the stream reader checks a frame's declared
 * size before buffering its body so a bogus length cannot make the gateway
 * allocate gigabytes.
 *
 * Wire format: a frame is a 4-byte big-endian payload length N, then N payload
 * bytes.  Payload: one type byte, then fields until the payload ends, each a
 * 4-byte big-endian length L and L bytes.
 *   'Q' query:  sql, then one field per parameter: a tag byte ('s' string,
 *               'i' integer as decimal text, 'r' real as text, 'b' bool "t"/"f",
 *               'n' null with no value bytes, 'j' JSON text), then the value.
 *   'R' result: command tag, rows affected (decimal text, may be empty),
 *               JSON body.
 *   'E' error:  sqlstate, message, detail, hint, position (empty if absent).
 */
#ifndef FNSDK_FRAME_H
#define FNSDK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "fnsdk_buf.h"

#define FNSDK_FRAME_QUERY 'Q'
#define FNSDK_FRAME_RESULT 'R'
#define FNSDK_FRAME_ERROR 'E'

/* Parameter tags, the first byte of each 'Q' parameter field. */
#define FNSDK_FRAME_P_STRING 's'
#define FNSDK_FRAME_P_INT 'i'
#define FNSDK_FRAME_P_REAL 'r'
#define FNSDK_FRAME_P_BOOL 'b'
#define FNSDK_FRAME_P_NULL 'n'
#define FNSDK_FRAME_P_JSON 'j'
/* Not a parameter: the request's W3C trace id (32 lowercase hex digits),
 * allowed once, as the last field of a 'Q', for the pool's log lines. */
#define FNSDK_FRAME_P_TRACE 't'

#define FNSDK_FRAME_MAX_PARAMS 1024
#define FNSDK_FRAME_MAX_FIELDS (1 + FNSDK_FRAME_MAX_PARAMS)
#define FNSDK_FRAME_HDR 4
/* The largest payload the format can carry; readers take a smaller limit. */
#define FNSDK_FRAME_MAX_PAYLOAD ((size_t)0xfffffffeu)

/* --- building frames ----------------------------------------------------
 * A frame is built in place at the end of OUT, which may already hold other
 * complete frames (but nothing else: fnsdk_frame_end finds the open frame by
 * walking the frames from offset 0; use fnsdk_frame_end_at otherwise).  Errors
 * are sticky in OUT (out->failed), so a writer can add every field and check
 * only fnsdk_frame_end's result. */

/* Starts a frame of TYPE. */
int fnsdk_frame_begin(struct fnsdk_buf *out, char type);
/* Adds one field of N bytes from P. */
int fnsdk_frame_add(struct fnsdk_buf *out, const void *p, size_t n);
/* Adds one field made of the byte TAG followed by N bytes from P: a 'Q'
 * parameter. */
int fnsdk_frame_add_tagged(struct fnsdk_buf *out, char tag, const void *p, size_t n);
/* Opens a field whose bytes the caller then appends directly to OUT (for
 * example pgjson_render's output), saving a copy.  Returns the mark to give
 * fnsdk_frame_field_end. */
size_t fnsdk_frame_field_begin(struct fnsdk_buf *out);
/* Closes the field opened at MARK, patching its length. */
int fnsdk_frame_field_end(struct fnsdk_buf *out, size_t mark);
/* Closes the open frame, patching its length.  -1 if OUT failed at any point
 * since the frame began, if no frame is open, or if the payload is too large
 * for the format. */
int fnsdk_frame_end(struct fnsdk_buf *out);
/* Like fnsdk_frame_end for a frame that fnsdk_frame_begin started at offset START
 * (out->len just before the call), whatever precedes it. */
int fnsdk_frame_end_at(struct fnsdk_buf *out, size_t start);

/* --- parsing a payload --------------------------------------------------- */

struct fnsdk_frame_field {
    const char *p; /* points into the payload; not NUL-terminated */
    size_t len;
};

/* About 16 KB: keep one per connection or on a thread's stack, not in
 * small per-object structures. */
struct fnsdk_frame_view {
    char type;
    size_t n_fields;
    struct fnsdk_frame_field field[FNSDK_FRAME_MAX_FIELDS];
};

/* Splits the payload (without its length prefix) into V's fields, which
 * point into PAYLOAD.  Validates everything and never reads outside
 * [payload, payload + len): the type is known; fields exactly tile the
 * payload; at most FNSDK_FRAME_MAX_FIELDS; 'Q' has the sql field, which is
 * non-empty, and every parameter has a known tag with a value of the right
 * shape ('n' empty, 'b' "t" or "f", 'i' an optionally signed run of digits,
 * 'r' non-empty); the sql and string-like values contain no NUL byte (libpq
 * takes C strings and would silently truncate at one); 'R' has exactly 3
 * fields with digits-only rows; 'E' exactly 5 with an sqlstate of 0 or 5
 * bytes.  Returns 0, or -1 with a reason in ERR (if ERRLEN > 0). */
int fnsdk_frame_parse(const char *payload, size_t len, struct fnsdk_frame_view *v, char *err,
                      size_t errlen);

/* --- reading a non-blocking stream ----------------------------------------- */

struct fnsdk_frame_reader {
    char *buf;
    size_t len; /* bytes held */
    size_t cap;
    size_t pos;         /* start of the first frame not yet popped */
    size_t scan;        /* start of the first frame not yet known complete */
    size_t ready;       /* complete frames between pos and scan */
    size_t max_payload; /* larger declared lengths are rejected */
    int state;          /* 0 ok, 1 clean EOF seen, -1 failed (sticky) */
    char err[128];      /* why state != 0 */
};

/* MAX_PAYLOAD is clamped to FNSDK_FRAME_MAX_PAYLOAD. */
void fnsdk_frame_reader_init(struct fnsdk_frame_reader *r, size_t max_payload);
void fnsdk_frame_reader_free(struct fnsdk_frame_reader *r);
/* Takes N more stream bytes.  Checks each frame's length prefix as soon as
 * its 4 bytes are present, before buffering any of its body.  Returns 1 if
 * at least one complete frame can be popped, 0 if more bytes are needed, -1
 * if the stream is over or bad (oversized frame, out of memory; reason in
 * r->err).  Failure is sticky, but frames completed before it still come
 * out: while any is unpopped the result is 1, so pop with
 * fnsdk_frame_reader_next until it returns 0, then act on a -1.  Invalidates
 * payloads returned earlier by fnsdk_frame_reader_next. */
int fnsdk_frame_reader_feed(struct fnsdk_frame_reader *r, const void *data, size_t n);
/* Reads a non-blocking FD until it is drained (EAGAIN, or a read shorter
 * than asked), or until it holds more than max_payload bytes of complete
 * frames, so a flooding peer cannot grow the buffer; in both cases a
 * level-triggered event fires again for what is left.  Then returns like
 * feed.  EOF is -1 with r->err "channel closed" (or "channel closed
 * mid-frame"); a read error is -1 with the errno text. */
int fnsdk_frame_reader_read(struct fnsdk_frame_reader *r, int fd);
/* Pops the oldest complete frame: 1 with *PAYLOAD / *LEN set (valid until
 * the next feed or read), 0 if none is complete. */
int fnsdk_frame_reader_next(struct fnsdk_frame_reader *r, const char **payload, size_t *len);

/* --- blocking helpers (SDK side) --------------------------------------------- */

/* Writes all LEN bytes, retrying on EINTR and partial writes, waiting in
 * poll() if FD is non-blocking.  Does not raise SIGPIPE on a socket.  0 or -1
 * with errno set. */
int fnsdk_frame_write_all(int fd, const void *buf, size_t len);
/* Blocks until one whole frame is read and puts its payload (without the
 * length prefix) in INTO, replacing its contents (then into->data is never
 * NULL).  Reads exactly the frame's bytes, never beyond, so it can share FD
 * with nothing else buffering.  -1 with a reason in ERR on EOF ("channel
 * closed", or "channel closed mid-frame"), a read error, a declared length
 * over MAX_PAYLOAD (rejected before reading the body) or INTO's own limit.
 * An empty payload is returned as such: fnsdk_frame_parse rejects it. */
int fnsdk_frame_read_one(int fd, struct fnsdk_buf *into, size_t max_payload, char *err,
                         size_t errlen);
/* fnsdk_frame_read_one for a channel on which the peer sends exactly one frame
 * per request (the database channel): the header and, for answers up to
 * 16 KB, the payload come in one read instead of two.  Bytes after the
 * frame are an error ("... one answer expected"): they would belong to an
 * answer nobody asked for.  It waits for the answer in poll(), never
 * blocked in read(), which the peer's read of the question would wake for
 * nothing (fnsdk_frame.c says why). */
int fnsdk_frame_read_reply(int fd, struct fnsdk_buf *into, size_t max_payload, char *err,
                           size_t errlen);

#endif
