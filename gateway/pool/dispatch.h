/*
 * Dispatch: the queries waiting for a server connection, and the decision
 * of which runs next where.  Queries wait in one FIFO; dispatch also opens
 * connections as the queue needs them and fails the queue fast when the
 * database is unreachable.
 */
#ifndef FNGATE_POOL_DISPATCH_H
#define FNGATE_POOL_DISPATCH_H

#include <stdint.h>

#include "types.h"

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
