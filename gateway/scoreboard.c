/*
 * Scoreboard slots.  MFD_CLOEXEC keeps the memfd out of every child except
 * the one it is dup2'ed into; sealing the size stops an instance from
 * shrinking the file under the supervisor's mapping (which would SIGBUS the
 * supervisor on its next read).
 */
#include "config.h"

#include "scoreboard.h"

#include "log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct scoreboard *scoreboard_new(const char *fn_name)
{
    return scoreboard_new_log(fn_name, 0);
}

char *scoreboard_log_ring(const struct scoreboard *sb, size_t *size)
{
    *size = sb->size - sizeof(struct fnsdk_scoreboard_slot);
    return *size ? (char *)sb->slot + sizeof(struct fnsdk_scoreboard_slot) : NULL;
}

struct scoreboard *scoreboard_new_log(const char *fn_name, size_t log_bytes)
{
    struct scoreboard *sb = calloc(1, sizeof(*sb));
    size_t size = sizeof(struct fnsdk_scoreboard_slot) + log_bytes;

    if (!sb) {
        log_warn("[fn %s] scoreboard", fn_name);
        return NULL;
    }
    sb->fd = -1;
    sb->fd = memfd_create("fngate-scoreboard", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (sb->fd < 0) {
        log_warn("[fn %s] memfd_create", fn_name);
        goto fail;
    }
    if (ftruncate(sb->fd, (off_t)size) < 0 ||
        fcntl(sb->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        log_warn("[fn %s] scoreboard size", fn_name);
        goto fail;
    }
    sb->slot = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sb->fd, 0);
    if (sb->slot == MAP_FAILED) {
        sb->slot = NULL;
        log_warn("[fn %s] scoreboard mmap", fn_name);
        goto fail;
    }
    sb->size = size;
    return sb;
fail:
    scoreboard_free(sb);
    return NULL;
}

void scoreboard_close_fd(struct scoreboard *sb)
{
    if (sb && sb->fd >= 0) {
        close(sb->fd);
        sb->fd = -1;
    }
}

void scoreboard_free(struct scoreboard *sb)
{
    if (!sb)
        return;
    if (sb->slot)
        munmap(sb->slot, sb->size);
    scoreboard_close_fd(sb);
    free(sb);
}
