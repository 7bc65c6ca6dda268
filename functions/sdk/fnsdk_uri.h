/*
 * Percent-decoding, the one copy the SDK's request parsing (fnsdk_req.c) and
 * `fngate invoke` (gateway/invoke.c, which must hand a function the path
 * exactly as the SDK and nginx's $uri would decode it) share.  SDK
 * internal: compiled into libfngate and the gateway, never exported.
 */
#ifndef FNSDK_URI_H
#define FNSDK_URI_H

#include <stddef.h>

/* The N bytes at S with %XX and '+' (a space) decoded, as in a query
 * string or a form: a new string (the caller frees it), or NULL. */
char *fnsdk_uri_decode_query(const char *s, size_t n);

/* The N bytes at S with %XX decoded, as nginx decodes a path into $uri:
 * '+' stays, and %00 stays as it is (a path is a C string).  A new string
 * (the caller frees it), or NULL. */
char *fnsdk_uri_decode_path(const char *s, size_t n);

#endif
