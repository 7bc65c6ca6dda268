/*
 * database_url syntax, following libpq's conninfo_parse and
 * conninfo_uri_parse (fe-connect.c): the same grammar, the same keywords (of
 * libpq 15 to 18, so that a newer client library's options are not refused)
 * and the same messages, so that `fngate check` says what the pool would
 * otherwise say at its first connection.  Values are never echoed: a
 * password may be one of them.
 */
#include "config.h"

#include "dburl.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const dburl_keywords[] = {"service",
                                             "user",
                                             "password",
                                             "passfile",
                                             "channel_binding",
                                             "connect_timeout",
                                             "dbname",
                                             "host",
                                             "hostaddr",
                                             "port",
                                             "client_encoding",
                                             "options",
                                             "application_name",
                                             "fallback_application_name",
                                             "keepalives",
                                             "keepalives_idle",
                                             "keepalives_interval",
                                             "keepalives_count",
                                             "tcp_user_timeout",
                                             "sslmode",
                                             "sslnegotiation",
                                             "sslcompression",
                                             "sslcert",
                                             "sslkey",
                                             "sslcertmode",
                                             "sslpassword",
                                             "sslkeylogfile",
                                             "sslrootcert",
                                             "sslcrl",
                                             "sslcrldir",
                                             "sslsni",
                                             "requirepeer",
                                             "require_auth",
                                             "ssl_min_protocol_version",
                                             "ssl_max_protocol_version",
                                             "min_protocol_version",
                                             "max_protocol_version",
                                             "gssencmode",
                                             "krbsrvname",
                                             "gsslib",
                                             "gssdelegation",
                                             "target_session_attrs",
                                             "load_balance_hosts",
                                             "replication",
                                             "oauth_issuer",
                                             "oauth_client_id",
                                             "oauth_client_secret",
                                             "oauth_scope",
                                             "scram_client_key",
                                             "scram_server_key"};

static bool dburl_keyword(const char *k, size_t len)
{
    for (size_t i = 0; i < sizeof(dburl_keywords) / sizeof(dburl_keywords[0]); i++) {
        if (strlen(dburl_keywords[i]) == len && memcmp(dburl_keywords[i], k, len) == 0)
            return true;
    }
    return false;
}

/* keyword = value pairs separated by white space; values may be quoted. */
static int dburl_conninfo(const char *s, char *why, size_t whylen)
{
    while (*s) {
        const char *key;
        size_t klen;

        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        key = s;
        while (*s && *s != '=' && !isspace((unsigned char)*s))
            s++;
        klen = (size_t)(s - key);
        while (isspace((unsigned char)*s))
            s++;
        if (*s != '=') {
            snprintf(why, whylen, "missing \"=\" after \"%.*s\" in connection info string",
                     (int)klen, key);
            return -1;
        }
        s++;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\'') {
            for (s++;; s++) {
                if (!*s) {
                    snprintf(why, whylen, "unterminated quoted string in connection info string");
                    return -1;
                }
                if (*s == '\\' && s[1]) {
                    s++;
                    continue;
                }
                if (*s == '\'') {
                    s++;
                    break;
                }
            }
        } else {
            while (*s && !isspace((unsigned char)*s)) {
                if (*s == '\\' && s[1])
                    s++;
                s++;
            }
        }
        if (!dburl_keyword(key, klen)) {
            snprintf(why, whylen, "invalid connection option \"%.*s\"", (int)klen, key);
            return -1;
        }
    }
    return 0;
}

static int dburl_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decoding of S[0..LEN) would succeed (no stray %, no %00). */
static int dburl_percent(const char *s, size_t len, char *why, size_t whylen)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%')
            continue;
        if (i + 2 >= len || dburl_hex(s[i + 1]) < 0 || dburl_hex(s[i + 2]) < 0) {
            snprintf(why, whylen, "invalid percent-encoded token");
            return -1;
        }
        if (s[i + 1] == '0' && s[i + 2] == '0') {
            snprintf(why, whylen, "forbidden value %%00 in percent-encoded value");
            return -1;
        }
        i += 2;
    }
    return 0;
}

/* postgresql://[userinfo@][host][:port][,...][/dbname][?param=value&...] */
static int dburl_uri(const char *uri, size_t prefix, char *why, size_t whylen)
{
    const char *s = uri + prefix, *q = strchr(s, '?');
    size_t main_len = q ? (size_t)(q - s) : strlen(s);
    const char *at = memchr(s, '@', main_len);
    const char *h = at ? at + 1 : s;

    if (dburl_percent(s, main_len, why, whylen) < 0)
        return -1;
    /* Hosts: a comma-separated list, each a name or [IPv6], then :port. */
    for (;;) {
        if (*h == '[') {
            const char *end = strchr(h, ']');
            if (!end || (q && end > q)) {
                snprintf(why, whylen,
                         "end of string reached when looking for matching \"]\" in IPv6 host "
                         "address in URI");
                return -1;
            }
            if (end == h + 1) {
                snprintf(why, whylen, "IPv6 host address may not be empty in URI");
                return -1;
            }
            h = end + 1;
            if (*h && *h != ':' && *h != '/' && *h != ',' && *h != '?') {
                snprintf(why, whylen,
                         "unexpected character \"%c\" at position %d in URI (expected \":\" or "
                         "\"/\")",
                         *h, (int)(h - uri) + 1);
                return -1;
            }
        } else {
            while (*h && *h != ':' && *h != '/' && *h != '?' && *h != ',')
                h++;
        }
        if (*h == ':')
            while (*h && *h != '/' && *h != '?' && *h != ',')
                h++;
        if (*h != ',')
            break;
        h++;
    }
    if (!q)
        return 0;
    for (const char *p = q + 1; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            snprintf(why, whylen,
                     "missing key/value separator \"=\" in URI query parameter: \"%.*s\"", (int)len,
                     p);
            return -1;
        }
        if (memchr(eq + 1, '=', len - (size_t)(eq + 1 - p))) {
            snprintf(why, whylen, "extra key/value separator \"=\" in URI query parameter");
            return -1;
        }
        if (dburl_percent(p, len, why, whylen) < 0)
            return -1;
        /* "ssl=true" is the JDBC spelling libpq accepts for sslmode=require. */
        if (!(eq - p == 3 && memcmp(p, "ssl", 3) == 0) && !dburl_keyword(p, (size_t)(eq - p))) {
            snprintf(why, whylen, "invalid URI query parameter: \"%.*s\"", (int)(eq - p), p);
            return -1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

int dburl_check(const char *url, char *why, size_t whylen)
{
    static const char *const schemes[] = {"postgresql://", "postgres://"};

    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(url, schemes[i], n) == 0)
            return dburl_uri(url, n, why, whylen);
    }
    return dburl_conninfo(url, why, whylen);
}
