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

#include "fn_buf.h"

/* Appends RES's rows to OUT as a JSON array of objects,
 * [{"col":value,...},...], "[]" for no rows (or a command without rows).
 * Columns must be in text format (PQfformat 0), as libpq returns by default;
 * duplicate column names give duplicate keys (JSON.parse keeps the last).
 * Returns 0, or -1 if RES is NULL, has a binary-format column, or the output
 * would pass out->max (or memory ran out): then out->failed is set and out->len
 * is back where it was, so whatever OUT held before is intact. */
int pgjson_render(const PGresult *res, struct fn_buf *out);

/* Appends the JSON string literal for the LEN bytes at S, quotes included:
 * escapes '"', '\\' and control characters, passes valid UTF-8 through
 * unchanged and turns each byte of an invalid UTF-8 sequence into U+FFFD, so
 * the output is valid JSON whatever the input.  0 or -1 (out->failed). */
int pgjson_string(struct fn_buf *out, const char *s, size_t len);

#endif
