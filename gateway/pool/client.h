/*
 * Client channels: one per instance, the pool's end of the socketpair whose
 * other end is the instance's fd 3.  A channel reads one query frame at a
 * time (an instance is single-threaded: a second frame before the answer is
 * a protocol error), queues it for dispatch, and writes the answer frame.
 */
#ifndef FNGATE_POOL_CLIENT_H
#define FNGATE_POOL_CLIENT_H

#include <libpq-fe.h>

#include "types.h"

/* Takes FD (closed on failure) as the channel of HELLO's instance, whose
 * function logs in with CONNINFO (NULL: the gateway's database_url); NULL
 * on failure. The pool owns the client (P->clients). */
struct client *client_new(struct pool *p, int fd, const struct pool_hello *hello,
                          const char *conninfo);
/* Closes the channel (logs WHY unless NULL) and frees C, or, while its
 * query runs on a server, cancels it and frees C when it comes back. */
void client_close(struct client *c, const char *why);
/* Past the cap on answer bytes waiting for their instances (pool_size x
 * max_result, at least 4 MB), closes the channels with the most unread
 * output.  Called by dispatch, where no channel is in use. */
void client_enforce_unsent(struct pool *p);
/* Frees C without the bookkeeping (at exit). NULL is a no-op. */
void client_free(struct client *c);

/* Answers the query in flight: an error frame, the error of R, or R's rows.
 * The answer goes out as far as the socket takes it, the rest on write. */
void client_error(struct client *c, const char *sqlstate, const char *msg, const char *detail,
                  const char *hint, const char *position);
void client_error_res(struct client *c, const PGresult *r);
/* R's command tag and count with JSON, the rendered rows; JSON NULL: the
 * result of NROWS rows passed max_result (FG002). */
void client_result(struct client *c, const PGresult *r, const struct fnsdk_buf *json, long nrows);

#endif
