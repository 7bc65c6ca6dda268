/*
 * The supervisor's side of the scoreboard: one small memfd per instance,
 * created before the spawn and mapped read-mostly here.  One memfd per
 * instance (rather than one table per function) means no slot allocator, no
 * resizing when max_instances changes on reload, and an instance can only
 * ever write its own slot.
 */
#ifndef FNGATE_SB_H
#define FNGATE_SB_H

#include "fn_sb.h"

struct sb {
    int fd;                  /* the memfd; closed after the spawn */
    struct fn_sb_slot *slot; /* shared mapping, owned */
};

/* A zeroed slot (state STARTING). Returns NULL on failure (logged). */
struct sb *sb_new(const char *fn_name);
void sb_free(struct sb *sb);
/* Closes the memfd once the child holds its own copy. */
void sb_close_fd(struct sb *sb);

#endif
