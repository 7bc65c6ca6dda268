/*
 * Scoreboard slots.  MFD_CLOEXEC keeps the memfd out of every child except
 * the one it is dup2'ed into; sealing the size stops an instance from
 * shrinking the file under the supervisor's mapping (which would SIGBUS the
 * supervisor on its next read).
 */
#include "config.h"

#include "sb.h"

#include "log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct sb *sb_new(const char *fn_name)
{
    return sb_new_log(fn_name, 0);
}

char *sb_log_ring(const struct sb *sb, size_t *size)
{
    *size = sb->size - sizeof(struct fn_sb_slot);
    return *size ? (char *)sb->slot + sizeof(struct fn_sb_slot) : NULL;
}

struct sb *sb_new_log(const char *fn_name, size_t log_bytes)
{
    struct sb *sb = calloc(1, sizeof(*sb));
    size_t size = sizeof(struct fn_sb_slot) + log_bytes;

    if (!sb) {
        log_warn("[fn %s] scoreboard", fn_name);
        return NULL;
    }
    sb->fd = -1;
    sb->fd = memfd_create("fngate-sb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
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
    sb_free(sb);
    return NULL;
}

void sb_close_fd(struct sb *sb)
{
    if (sb && sb->fd >= 0) {
        close(sb->fd);
        sb->fd = -1;
    }
}

void sb_free(struct sb *sb)
{
    if (!sb)
        return;
    if (sb->slot)
        munmap(sb->slot, sb->size);
    sb_close_fd(sb);
    free(sb);
}
