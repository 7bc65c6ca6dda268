/*
 * A growable byte buffer with a hard ceiling.  Both sides of the database
 * channel build frames and JSON bodies whose size is decided by untrusted
 * input (a query result, a peer's frame), so every writer needs the same two
 * things: appends that never overflow and a limit that turns a runaway result
 * into an error instead of an out-of-memory kill.  The failure is sticky so a
 * writer can append freely and check once at the end.
 */
#ifndef FNSDK_BUF_H
#define FNSDK_BUF_H

#include <stddef.h>

struct fnsdk_buf {
    char *data; /* NUL-terminated after any successful append; NULL until then */
    size_t len; /* bytes written, not counting the NUL */
    size_t cap; /* bytes allocated, always > len once data != NULL */
    size_t max; /* most bytes len may reach; 0 = unlimited; may be changed
                 * between appends (each append checks it) */
    int failed; /* set by an append past max or an allocation failure; sticky */
};

/* An empty buffer that will hold at most MAX bytes (0 = unlimited). */
void fnsdk_buf_init(struct fnsdk_buf *b, size_t max);
/* Frees the data; B stays usable as an empty buffer with the same max.
 * NULL is a no-op. */
void fnsdk_buf_free(struct fnsdk_buf *b);
/* Empties B and clears failed, keeping the allocation for reuse. */
void fnsdk_buf_reset(struct fnsdk_buf *b);
/* Makes room for N more bytes so the next appends do not reallocate.  A
 * capacity hint: it is clamped at max and does not fail for exceeding it
 * (only an append does).  -1 (and failed) on allocation failure or if B
 * has already failed. */
int fnsdk_buf_reserve(struct fnsdk_buf *b, size_t n);
/* Appends N bytes from P.  -1 if B has failed or would pass max; then nothing
 * is written and failed is set. */
int fnsdk_buf_append(struct fnsdk_buf *b, const void *p, size_t n);
int fnsdk_buf_putc(struct fnsdk_buf *b, int c);
int fnsdk_buf_puts(struct fnsdk_buf *b, const char *s);
int fnsdk_buf_printf(struct fnsdk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
