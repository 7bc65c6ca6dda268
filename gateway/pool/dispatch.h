/*
 * Dispatch: the queries waiting for a server connection, and the decision
 * of which runs next where: per-function queues served round-robin within
 * each function's share of the pool.  Dispatch also opens connections as
 * the queues need them and fails them fast when the database is
 * unreachable.
 */
#ifndef FNGATE_POOL_DISPATCH_H
#define FNGATE_POOL_DISPATCH_H

#include <stdint.h>

#include "types.h"

/* The queue of HELLO's function (made on its first channel), counted as
 * used by one more channel; NULL when out of memory. */
struct fnq *dispatch_join(struct pool *p, const struct pool_hello *hello, const char *conninfo);
/* One channel fewer of FQ's function (freed after the last). NULL: no-op. */
void dispatch_leave(struct pool *p, struct fnq *fq);
/* Queues C's query (C->sql is set). */
void dispatch_add(struct pool *p, struct client *c);
/* Takes C out of the queue (it must be there). */
void dispatch_remove(struct pool *p, struct client *c);
/* Starts queued queries on idle connections, opens connections for the
 * rest, or fails them when the database cannot be reached. */
void dispatch_run(struct pool *p);
/* Fails the queries that waited longer than db_wait_timeout (FG001). */
void dispatch_expire(struct pool *p, int64_t now);

#endif
