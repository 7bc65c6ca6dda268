/*
 * The request side of libfngate (fnsdk_req.c), as the accept loop (fnsdk_loop.c),
 * the test harness (fn_test.c) and the rest of the SDK see it.  Not
 * installed: authors see only fngate.h's accessors.
 */
#ifndef FNSDK_REQ_H
#define FNSDK_REQ_H

#include <fcgiapp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fngate.h"

struct fnsdk_limits;

/* Per-request state, reused across requests; fnsdk_req_free(NULL) is a no-op. */
fn_req *fnsdk_req_new(void);
void fnsdk_req_free(fn_req *req);

/* Reads params and body of the request R into REQ.  Returns 0, or an HTTP
 * status (413, 400) after putting the error into RES. */
int fnsdk_req_begin(fn_req *req, fn_res *res, FCGX_Request *r, const struct fnsdk_limits *lim);
/* The same for a request built in memory (fngate_test.h): ENVP is borrowed
 * until fnsdk_req_end, BODY is copied. */
int fnsdk_req_begin_env(fn_req *req, fn_res *res, char **envp, const void *body, size_t len,
                        const struct fnsdk_limits *lim);
void fnsdk_req_end(fn_req *req);
/* Runs HANDLER on the request; a handler that produced no response gets a
 * 500.  Returns the handler's result. */
int fnsdk_req_run(fn_req *req, fn_res *res, fn_handler handler);
/* The instance's request_timeout in ms (0: none), for fn_deadline_ms. */
void fnsdk_req_set_timeout(int64_t ms);
/* The function's name from the environment, once for all requests (fn_main:
 * getenv per request cost more than the rest of the name's handling).
 * NAME is borrowed for the process's life; NULL when there is none. */
void fnsdk_req_set_function(const char *name);
/* Seeds the request ids the SDK makes (16 random bytes). */
void fnsdk_req_seed_ids(const unsigned char seed[16]);
/* The arrival time nginx recorded ($msec), in ms since the epoch, or -1. */
int64_t fnsdk_req_arrival_ms(const fn_req *req);
/* The id of the request in progress (for fn_log and X-Request-Id), or NULL
 * between requests.  Borrowed: valid until fnsdk_req_end. */
const char *fnsdk_req_current_id(void);
/* True when that id is one the SDK made (32 hex digits: a valid header
 * value), false for one the front end sent, or between requests. */
bool fnsdk_req_current_id_made(void);

/* The database state of a request (fn_db.c): a slot in fn_req that
 * fnsdk_req_end clears through fnsdk_db_request_end. */
struct fnsdk_dbreq;
struct fnsdk_dbreq **fnsdk_req_db(fn_req *req);

#endif
