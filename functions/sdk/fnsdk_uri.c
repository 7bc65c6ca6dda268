/*
 * Percent-decoding (fnsdk_uri.h).  A '%' not followed by two hex digits stays
 * as it is, like nginx and PHP do, rather than failing the request.
 */
#include "config.h"

#include "fnsdk_uri.h"

#include <stdbool.h>
#include <stdlib.h>

static int fnsdk_uri_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *fnsdk_uri_decode(const char *s, size_t n, bool path)
{
    char *out = malloc(n + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+' && !path) {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n && (hi = fnsdk_uri_hex((unsigned char)s[i + 1])) >= 0 &&
                   (lo = fnsdk_uri_hex((unsigned char)s[i + 2])) >= 0 && (!path || hi || lo)) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

char *fnsdk_uri_decode_query(const char *s, size_t n)
{
    return fnsdk_uri_decode(s, n, false);
}

char *fnsdk_uri_decode_path(const char *s, size_t n)
{
    return fnsdk_uri_decode(s, n, true);
}
