/*
 * The socket_dir marks of probe.h.  connect(2) on a unix socket needs search
 * permission on every folder of the path and write permission on the socket;
 * nginx's error path can only stat.  So next to the sockets the gateway keeps
 * a folder, .access, with the socket's owner and group and, for each of
 * user, group and other, the search bit set exactly when the socket has the
 * write bit: stat(".access/ok") then succeeds for nginx's worker exactly when
 * its connect would, and fails with EACCES when socket_mode/socket_group
 * leave nginx out.  .fngate, a plain file, says that a gateway serves the
 * folder and that nginx can reach it at all.  .draining, from SIGTERM on
 * (and after the exit, until the next start), turns the 404 a vanished
 * socket would give into a 503 that a front nginx retries on another host:
 * such a request never reached a function.
 */
#include "config.h"

#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_GATEWAY "fn/.fngate"
#define PROBE_DIR "fn/.access"
#define PROBE_OK "fn/.access/ok"
#define PROBE_DRAINING "fn/.draining"

static int probe_path(char *buf, size_t len, const char *dir, const char *rel)
{
    int n = snprintf(buf, len, "%s/%s", dir, rel);

    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int probe_touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

    if (fd < 0)
        return -1;
    if (fchmod(fd, 0644) < 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

int probe_write(const char *socket_dir, mode_t mode, gid_t gid, char *err, size_t errlen)
{
    char path[4096];
    /* The write bits of the socket become the search bits of the folder. */
    mode_t dmode = (mode & 0222) >> 1;
    const char *what = PROBE_GATEWAY;

    if (probe_path(path, sizeof(path), socket_dir, PROBE_GATEWAY) < 0 || probe_touch(path) < 0)
        goto fail;
    what = PROBE_DIR;
    if (probe_path(path, sizeof(path), socket_dir, PROBE_DIR) < 0)
        goto fail;
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        goto fail;
    /* Ours to enter while ok is made; the real mode comes last. */
    if (chmod(path, 0700) < 0)
        goto fail;
    what = PROBE_OK;
    if (probe_path(path, sizeof(path), socket_dir, PROBE_OK) < 0 || probe_touch(path) < 0)
        goto fail;
    what = PROBE_DIR;
    if (probe_path(path, sizeof(path), socket_dir, PROBE_DIR) < 0)
        goto fail;
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0)
        goto fail;
    if (chmod(path, dmode) < 0)
        goto fail;
    /* A previous gateway's drain is over: this one serves. */
    what = PROBE_DRAINING;
    if (probe_path(path, sizeof(path), socket_dir, PROBE_DRAINING) < 0 ||
        (unlink(path) < 0 && errno != ENOENT))
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%s/%s: %s (nginx's 502 bodies cannot tell a permission problem)",
             socket_dir, what, strerror(errno));
    return -1;
}

void probe_draining(const char *socket_dir)
{
    char path[4096];

    if (probe_path(path, sizeof(path), socket_dir, PROBE_DRAINING) == 0)
        probe_touch(path);
}

void probe_remove(const char *socket_dir)
{
    char path[4096];

    if (probe_path(path, sizeof(path), socket_dir, PROBE_GATEWAY) == 0)
        unlink(path);
    if (probe_path(path, sizeof(path), socket_dir, PROBE_DIR) == 0 && chmod(path, 0700) == 0 &&
        probe_path(path, sizeof(path), socket_dir, PROBE_OK) == 0) {
        unlink(path);
        if (probe_path(path, sizeof(path), socket_dir, PROBE_DIR) == 0)
            rmdir(path);
    }
}
