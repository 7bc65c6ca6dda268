/*
 * A growable byte buffer with a hard ceiling.  Both sides of the database
 * channel build frames and JSON bodies whose size is decided by untrusted
 * input (a query result, a peer's frame), so every writer needs the same two
 * things: appends that never overflow and a limit that turns a runaway result
 * into an error instead of an out-of-memory kill.  The failure is sticky so a
 * writer can append freely and check once at the end.
 */
#ifndef FN_BUF_H
#define FN_BUF_H

#include <stddef.h>

struct fn_buf {
    char *data; /* NUL-terminated after any successful append; NULL until then */
    size_t len; /* bytes written, not counting the NUL */
    size_t cap; /* bytes allocated, always > len once data != NULL */
    size_t max; /* most bytes len may reach; 0 = unlimited; may be changed
                 * between appends (each append checks it) */
    int failed; /* set by an append past max or an allocation failure; sticky */
};

/* An empty buffer that will hold at most MAX bytes (0 = unlimited). */
void fn_buf_init(struct fn_buf *b, size_t max);
/* Frees the data; B stays usable as an empty buffer with the same max.
 * NULL is a no-op. */
void fn_buf_free(struct fn_buf *b);
/* Empties B and clears failed, keeping the allocation for reuse. */
void fn_buf_reset(struct fn_buf *b);
/* Makes room for N more bytes so the next appends do not reallocate.  A
 * capacity hint: it is clamped at max and does not fail for exceeding it
 * (only an append does).  -1 (and failed) on allocation failure or if B
 * has already failed. */
int fn_buf_reserve(struct fn_buf *b, size_t n);
/* Appends N bytes from P.  -1 if B has failed or would pass max; then nothing
 * is written and failed is set. */
int fn_buf_append(struct fn_buf *b, const void *p, size_t n);
int fn_buf_putc(struct fn_buf *b, int c);
int fn_buf_puts(struct fn_buf *b, const char *s);
int fn_buf_printf(struct fn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
