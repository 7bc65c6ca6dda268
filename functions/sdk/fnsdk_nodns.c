/*
 * Linked only into fully static function binaries (the in-tree examples in a
 * non-sanitizer build).  libfcgi's os_unix.o references gethostbyname, used
 * only to bind a TCP port, which an instance never does (fngate hands it a
 * unix socket on fd 0); glibc's static gethostbyname would need the shared
 * NSS libraries at run time and makes the linker warn.  This definition
 * satisfies the reference so that glibc's is never pulled in.  Dynamic links
 * (pkg-config users) never see this file.
 */
#include "config.h"

#include <netdb.h>
#include <stddef.h>

struct hostent *gethostbyname(const char *name)
{
    (void)name;
    h_errno = NO_RECOVERY;
    return NULL;
}
