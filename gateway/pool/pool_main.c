/*
 * fngate-pool: the pool process as its own program, so that libpq and its
 * dependency chain (OpenSSL, Kerberos, LDAP) are mapped only here and never
 * in the supervisor, whose idle footprint is what scale-to-zero costs.  The
 * supervisor starts it with the control socket on fd 3 and sends the
 * settings as the first message.
 */
#include "config.h"

#include "log.h"
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define POOL_CTL_FD 3

int main(void)
{
    static char buf[sizeof(struct pool_wire) + POOL_CONNINFO_MAX + 1];
    struct pool_wire w;
    struct pool_settings set;
    struct stat st;
    char *conninfo;
    ssize_t n;
    int rc;

    log_set_proc("fngate pool");
    /* Non-dumpable: it holds the database password; nothing sharing its
     * uid may ptrace it or read its memory through /proc. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (fstat(POOL_CTL_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "fngate-pool: started by fngate only (no control socket on fd 3)\n");
        return 2;
    }
    do
        n = recv(POOL_CTL_FD, buf, sizeof(buf) - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < (ssize_t)sizeof(w)) {
        log_error("no settings on the control socket");
        return 2;
    }
    memcpy(&w, buf, sizeof(w));
    if (w.version != POOL_WIRE_VERSION || w.conninfo_len > POOL_CONNINFO_MAX ||
        (size_t)n != sizeof(w) + w.conninfo_len || w.pool_size < 1) {
        log_error("malformed settings on the control socket");
        return 2;
    }
    conninfo = buf + sizeof(w);
    conninfo[w.conninfo_len] = '\0';
    memset(&set, 0, sizeof(set));
    set.conninfo = conninfo;
    set.pool_size = w.pool_size;
    set.min_pool = w.min_pool;
    set.stmt_cache = w.stmt_cache;
    set.db_wait_timeout_ms = w.db_wait_timeout_ms;
    set.max_result = w.max_result;
    set.max_query = w.max_query;
    set.prepared = w.prepared != 0;
    rc = pool_main(&set, POOL_CTL_FD);
    explicit_bzero(buf, sizeof(buf));
    return rc;
}
