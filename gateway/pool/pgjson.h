/*
 * Renders a libpq result as JSON text for the database channel.  This is the
 * hot spot of the database path: building a jansson tree and dumping it costs
 * about three times the query itself, so the pool writes the JSON straight
 * from the PGresult into a buffer, with column keys escaped once per result
 * and each value written by its column type, and the SDK can pass the bytes
 * to the HTTP response untouched.  Types map the way a JavaScript developer
 * expects from Neon's driver: int2/int4/oid and float4/float8 as numbers
 * (NaN and the infinities as strings), int8 and numeric as strings so no
 * precision is lost, bool as true/false, json/jsonb embedded, NULL as null,
 * arrays of those as JSON arrays, and everything else as its text form.
 */
#ifndef PGJSON_H
#define PGJSON_H

#include <stddef.h>

#include <libpq-fe.h>

#include "fnsdk_buf.h"

/* Appends RES's rows to OUT as a JSON array of objects,
 * [{"col":value,...},...], "[]" for no rows (or a command without rows).
 * Columns must be in text format (PQfformat 0), as libpq returns by default;
 * duplicate column names give duplicate keys (JSON.parse keeps the last).
 * Returns 0, or -1 if RES is NULL, has a binary-format column, or the output
 * would pass out->max (or memory ran out): then out->failed is set and out->len
 * is back where it was, so whatever OUT held before is intact. */
int pgjson_render(const PGresult *res, struct fnsdk_buf *out);

/* The same array rendered a row at a time, for results read in libpq's
 * single-row mode: the pool enforces max_result while it reads instead of
 * after libpq has buffered the whole result.  Column keys are escaped once,
 * from the first PGresult that has rows (every PGRES_SINGLE_TUPLE of one
 * result has the same description).  The caller owns the state (new/free)
 * and OUT; reset before each result. */
struct pgjson_rows;
struct pgjson_rows *pgjson_rows_new(void);
/* NULL is a no-op. */
void pgjson_rows_free(struct pgjson_rows *st);
/* Forgets the columns and the row count, keeping the allocations. */
void pgjson_rows_reset(struct pgjson_rows *st);
/* Appends every row of RES (a PGRES_SINGLE_TUPLE, or a whole
 * PGRES_TUPLES_OK; none for a result without rows) to the array in OUT,
 * opening it with the first row.  0, or -1 with out->failed set (past
 * out->max, a binary column, no memory); OUT then holds a partial array. */
int pgjson_rows_add(struct pgjson_rows *st, const PGresult *res, struct fnsdk_buf *out);
/* Closes the array: "]", or "[]" if no row was added.  0 or -1 (failed). */
int pgjson_rows_end(struct pgjson_rows *st, struct fnsdk_buf *out);
/* Rows added since the last reset. */
long pgjson_rows_count(const struct pgjson_rows *st);

/* Appends the JSON string literal for the LEN bytes at S, quotes included:
 * escapes '"', '\\' and control characters, passes valid UTF-8 through
 * unchanged and turns each byte of an invalid UTF-8 sequence into U+FFFD, so
 * the output is valid JSON whatever the input.  0 or -1 (out->failed). */
int pgjson_string(struct fnsdk_buf *out, const char *s, size_t len);

#endif
