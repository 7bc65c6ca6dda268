/*
 * Server connections: at most pool_size libpq connections, each running one
 * query at a time as a small state machine (SET of the function's
 * statement_timeout if it differs, DEALLOCATE of an evicted statement,
 * PREPARE on first use, the prepared EXECUTE, and a session reset after a
 * statement that may have changed the session).  Connections are opened on
 * demand, reconnect with backoff, and are dropped whenever they end a query
 * in anything but an idle transaction state.
 */
#ifndef FNGATE_POOL_SERVER_H
#define FNGATE_POOL_SERVER_H

#include "types.h"

/* Opens PC (PC_FREE) without blocking: PC_CONNECTING, or PC_FREE again with
 * the reason in pool->conn_err and the backoff set. */
void server_start(struct server *pc, const char *ident);
/* Does PC log in as IDENT (a function's conninfo, NULL: the gateway's)? */
bool server_is(const struct server *pc, const char *ident);
/* Runs C's query on the idle connection PC; C's answer comes when it is
 * done. */
void server_begin(struct server *pc, struct client *c);
/* Asks the server to cancel PC's query; the session is dropped after. */
void server_cancel(struct server *pc);
/* Closes PC (PC_FREE); the query it was running is answered with WHY. */
void server_drop(struct server *pc, const char *why);

#endif
