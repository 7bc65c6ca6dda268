/*
 * The supervisor's side of the scoreboard: one small memfd per instance,
 * created before the spawn and mapped read-mostly here.  One memfd per
 * instance (rather than one table per function) means no slot allocator, no
 * resizing when max_instances changes on reload, and an instance can only
 * ever write its own slot.
 */
#ifndef FNGATE_SCOREBOARD_H
#define FNGATE_SCOREBOARD_H

#include <stddef.h>

#include "fnsdk_scoreboard.h"

struct scoreboard {
    int fd;                             /* the memfd; closed after the spawn */
    struct fnsdk_scoreboard_slot *slot; /* shared mapping, owned */
    size_t size;                        /* of the mapping: the slot plus the log ring */
};

/* A zeroed slot (state STARTING). Returns NULL on failure (logged). */
struct scoreboard *scoreboard_new(const char *fn_name);
/* The same followed by a request-log ring of LOG_BYTES (0: none). */
struct scoreboard *scoreboard_new_log(const char *fn_name, size_t log_bytes);
/* The ring after the slot, or NULL. */
char *scoreboard_log_ring(const struct scoreboard *sb, size_t *size);
void scoreboard_free(struct scoreboard *sb);
/* Closes the memfd once the child holds its own copy. */
void scoreboard_close_fd(struct scoreboard *sb);

#endif
