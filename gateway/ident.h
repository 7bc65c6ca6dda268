/*
 * Who a function's instances run as.  A gateway started as root gives every
 * function a uid and gid of its own, like systemd's DynamicUser: taken from
 * [gateway] dynamic_uid_min..dynamic_uid_max, derived from the function's
 * name so that it stays the same across restarts and reloads, with no
 * /etc/passwd entry; the operator's `user`/`group` for a function (in
 * fngate.conf, never in function.conf) replaces it.  The pool process gets
 * one of its own the same way.  A gateway started by a user runs everything
 * as that user (the shared-hosting case).
 */
#ifndef FNGATE_IDENT_H
#define FNGATE_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "fnconf.h"

struct ident {
    bool drop;    /* setgroups/setgid/setuid to uid/gid (the gateway is root) */
    bool dynamic; /* uid/gid taken from the dynamic range */
    uid_t uid;
    gid_t gid;
};

/* The identity of function NAME with settings SET.  Returns 0, or -1 with
 * "file: reason" in ERR (a user or group that does not exist, root, or a
 * dynamic range with no free uid left). */
int ident_function(const struct conf *c, const char *name, const struct fn_settings *set,
                   struct ident *out, char *err, size_t errlen);
/* The pool process's identity (a dynamic uid when root). */
int ident_pool(const struct conf *c, struct ident *out, char *err, size_t errlen);
/* Checks the [gateway] range; -1 with the reason in ERR. */
int ident_check(const struct conf *c, char *err, size_t errlen);

#endif
