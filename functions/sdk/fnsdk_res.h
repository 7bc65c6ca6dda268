/*
 * The response side of libfngate (fnsdk_res.c), as the accept loop (fnsdk_loop.c),
 * the test harness (fn_test.c) and the JSON bodies (fn_json.c) see it.  Not
 * installed: authors see only fngate.h's fn_send* calls.
 */
#ifndef FNSDK_RES_H
#define FNSDK_RES_H

#include <fcgiapp.h>
#include <stddef.h>

#include "fngate.h"

/* fnsdk_res_free(NULL) is a no-op. */
fn_res *fnsdk_res_new(void);
void fnsdk_res_free(fn_res *res);
/* Drops the response in hand (status back to 0), keeping RES for reuse. */
void fnsdk_res_reset(fn_res *res);
/* Makes RES send LEN bytes at BASE + OFF, taking ownership of BASE (also
 * on error).  Returns 0, or -1 for a bad status or content type. */
int fnsdk_res_take(fn_res *res, int status, const char *content_type, char *base, size_t off,
                   size_t len);
/* What the handler produced: status (0 if none), content type, body. */
int fnsdk_res_status(const fn_res *res);
const char *fnsdk_res_content_type(const fn_res *res);
const char *fnsdk_res_body(const fn_res *res, size_t *len);
/* Response headers the handler set, in order. */
size_t fnsdk_res_header_count(const fn_res *res);
int fnsdk_res_header_at(const fn_res *res, size_t i, const char **name, const char **value);
/* The current request's id as an X-Request-Id value, or NULL when it would
 * not make a valid one.  No allocation and no lock: the timeout handler
 * calls it. */
const char *fnsdk_res_id_value(void);
/* Writes RES to the request's stdout; returns 0 or -1. */
int fnsdk_res_write(fn_res *res, FCGX_Request *r);

#endif
