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
#include "poolwire.h"

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
    static char buf[POOLWIRE_SETTINGS_MAX];
    struct pool_settings set;
    struct stat st;
    int rc;

    log_set_proc("fngate pool");
    /* Non-dumpable: it holds the database password; nothing sharing its
     * uid may ptrace it or read its memory through /proc. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (fstat(POOL_CTL_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "fngate-pool: started by fngate only (no control socket on fd 3)\n");
        return 2;
    }
    if (poolwire_recv_settings(POOL_CTL_FD, buf, sizeof(buf), &set) < 0) {
        log_error(errno == ENOMSG ? "no settings on the control socket"
                                  : "malformed settings on the control socket");
        return 2;
    }
    rc = pool_main(&set, POOL_CTL_FD);
    explicit_bzero(buf, sizeof(buf));
    return rc;
}
