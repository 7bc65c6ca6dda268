/*
 * Internal interface between the SDK's accept loop (fnsdk_loop.c) and its
 * request/response layer (fnsdk_req.c, fnsdk_res.c, fn_json.c).  Not installed.
 */
#ifndef FNSDK_LOOP_H
#define FNSDK_LOOP_H

#include <fcgiapp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fnsdk_req.h"
#include "fnsdk_res.h"
#include "fngate.h"

/* What one FCGX_GetStr or FCGX_PutStr moves at most: they count in int. */
#define FNSDK_IO_CHUNK (1 << 20)

struct fnsdk_limits {
    int64_t max_body;
    int64_t queue_timeout_ms;
    long max_requests;
};

/* Makes the instance leave after the request in hand. */
void fnsdk_loop_request_stop(void);
/* fn_main's function-independent set-up (FCGX_Init, the random seeds),
 * which a spare process does ahead, before its assignment; fn_main does it
 * itself when nobody did.  0, or -1 with the reason on stderr. */
int fnsdk_loop_prepare(void);
/* A spare's cold-start trace (CLOCK_MONOTONIC ns), stored in the slot by
 * fn_main: assignment received, set-up done, shared object loaded. */
void fnsdk_loop_spare_trace(int64_t assigned_ns, int64_t setup_ns, int64_t loaded_ns);
/* Sets the "response started" flag the timeout handler reads. */
void fnsdk_loop_response_started(void);
/* Ends a request's database state (fn_db.c); NULL is a no-op. */
struct fnsdk_dbreq;
void fnsdk_db_request_end(struct fnsdk_dbreq *db);
/* The database channel's fd, to watch for the pool closing it while the
 * instance waits; -1 when there is none (or it broke). */
int fnsdk_db_watch_fd(void);
/* False once the database channel can no longer carry a query (the pool
 * closed it, or it broke mid-query): the instance must take no further
 * request, since each would fail with 08006.  One non-blocking peek. */
bool fnsdk_db_channel_ok(void);
#endif
