/*
 * Internal interface between the SDK's accept loop (fn_loop.c) and its
 * request/response layer (fngate.c).  Not installed.
 */
#ifndef FN_LOOP_H
#define FN_LOOP_H

#include <fcgiapp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fngate.h"

struct fn_limits {
    int64_t max_body;
    int64_t queue_timeout_ms;
    long max_requests;
};

/* Per-request state, reused across requests. */
fn_req *fn_req_new(void);
void fn_req_free(fn_req *req);
fn_res *fn_res_new(void);
void fn_res_free(fn_res *res);

/* Reads params and body of the request R into REQ.  Returns 0, or an HTTP
 * status (413, 400) after putting the error into RES. */
int fn_req_begin(fn_req *req, fn_res *res, FCGX_Request *r, const struct fn_limits *lim);
/* The same for a request built in memory (fngate_test.h): ENVP is borrowed
 * until fn_req_end, BODY is copied. */
int fn_req_begin_env(fn_req *req, fn_res *res, char **envp, const void *body, size_t len,
                     const struct fn_limits *lim);
void fn_req_end(fn_req *req);
/* Runs HANDLER on the request; a handler that produced no response gets a
 * 500.  Returns the handler's result. */
int fn_req_run(fn_req *req, fn_res *res, fn_handler handler);
/* The instance's request_timeout in ms (0: none), for fn_deadline_ms. */
void fn_req_set_timeout(int64_t ms);
/* What the handler produced: status (0 if none), content type, body. */
int fn_res_status(const fn_res *res);
const char *fn_res_content_type(const fn_res *res);
const char *fn_res_body(const fn_res *res, size_t *len);
/* Response headers the handler set, in order. */
size_t fn_res_header_count(const fn_res *res);
int fn_res_header_at(const fn_res *res, size_t i, const char **name, const char **value);
void fn_res_reset(fn_res *res);
/* Writes RES to the request's stdout; returns 0 or -1. */
int fn_res_write(fn_res *res, FCGX_Request *r);
/* Makes the instance leave after the request in hand. */
void fn_loop_request_stop(void);
/* Sets the "response started" flag the timeout handler reads. */
void fn_loop_response_started(void);
/* The database state of a request (fn_db.c): a slot in fn_req that fngate.c
 * clears through fn_db_request_end at the end of every request. */
struct fn_dbreq;
struct fn_dbreq **fn_req_db(fn_req *req);
void fn_db_request_end(struct fn_dbreq *db);
/* The database channel's fd, to watch for the pool closing it while the
 * instance waits; -1 when there is none (or it broke). */
int fn_db_watch_fd(void);
/* False once the database channel can no longer carry a query (the pool
 * closed it, or it broke mid-query): the instance must take no further
 * request, since each would fail with 08006.  One non-blocking peek. */
bool fn_db_channel_ok(void);
/* Makes RES send LEN bytes at BASE + OFF, taking ownership of BASE. */
int fn_res_take(fn_res *res, int status, const char *content_type, char *base, size_t off,
                size_t len);

/* Seeds the request ids the SDK makes (16 random bytes). */
void fn_req_seed_ids(const unsigned char seed[16]);

/* The arrival time nginx recorded ($msec), in ms since the epoch, or -1. */
int64_t fn_req_arrival_ms(const fn_req *req);

#endif
