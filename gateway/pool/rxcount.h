/*
 * Bytes received on the pool's server sockets, counted as libpq reads them,
 * with an optional ceiling per socket.  libpq has no hook for its reads and
 * buffers a whole result before handing it over (outside single-row mode),
 * so the pool defines recv(), which libpq calls for every read from a server
 * (plain, TLS and GSS alike), counts what arrives on the sockets it armed
 * and passes everything else straight to the C library.  server.c uses the
 * count to learn how large each statement's results are and to cut off a
 * result it reads whole before it outgrows its allowance.
 */
#ifndef FNGATE_POOL_RXCOUNT_H
#define FNGATE_POOL_RXCOUNT_H

#include <stddef.h>
#include <sys/types.h>

/* Sockets numbered below this can be counted; others are never armed. */
#define RXCOUNT_MAX_FD 4096

/* Starts counting FD's bytes from zero, without a ceiling.  0, or -1 if FD
 * cannot be counted (negative or too large). */
int rxcount_arm(int fd);
/* Stops counting FD (before it is closed).  Any FD is accepted. */
void rxcount_disarm(int fd);
/* The count back to zero, and the ceiling: once more than LIMIT bytes have
 * arrived, reads of FD fail with EAGAIN (libpq then stops reading) until
 * the next reset; 0 means none.  FD must be armed. */
void rxcount_reset(int fd, size_t limit);
/* Moves FD's ceiling to LIMIT (0: none), keeping its count. */
void rxcount_ceil(int fd, size_t limit);
/* Bytes received on FD since it was armed or reset; 0 if not armed. */
size_t rxcount_get(int fd);
/* Whether FD's count passed its ceiling. */
int rxcount_over(int fd);

#endif
