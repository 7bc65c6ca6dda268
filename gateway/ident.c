/*
 * Dynamic identities.  A uid is the range's base plus a hash of a key (the
 * function's name, or a name no function can have for the pool), probing on
 * to the next uid when that one is taken: by a user or group in the system's
 * databases, or by another key this process already placed.  Placements are
 * remembered for the life of the gateway, so a reload never moves a running
 * function, and a restart puts every function back where it was unless two
 * names collide (then the one seen first keeps the hashed uid).  The gid is
 * the same number.  Nothing is written anywhere: the kernel needs no passwd
 * entry to run a process as a uid.
 */
#include "config.h"

#include "ident.h"

#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The key of the pool: '@' cannot start a function name. */
#define IDENT_POOL_KEY "@fngate-pool"

struct ident_slot {
    char *key; /* owned */
    uid_t uid;
};

/* Every placement this process made; lives as long as the process. */
static struct ident_slot *ident_slots;
static size_t ident_nslots;

static uint32_t ident_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static bool ident_uid_taken(uid_t uid)
{
    for (size_t i = 0; i < ident_nslots; i++) {
        if (ident_slots[i].uid == uid)
            return true;
    }
    return getpwuid(uid) != NULL || getgrgid((gid_t)uid) != NULL;
}

int ident_check(const struct conf *c, char *err, size_t errlen)
{
    if (c->gw.dynamic_uid_min > c->gw.dynamic_uid_max) {
        snprintf(err, errlen, "%s: dynamic_uid_min (%d) is greater than dynamic_uid_max (%d)",
                 c->path, c->gw.dynamic_uid_min, c->gw.dynamic_uid_max);
        return -1;
    }
    return 0;
}

/* The dynamic uid of KEY, placing it on first use. */
static int ident_dynamic(const struct conf *c, const char *key, uid_t *uid, char *err,
                         size_t errlen)
{
    uint32_t lo = (uint32_t)c->gw.dynamic_uid_min, n;
    struct ident_slot *slots;
    char *copy;

    if (ident_check(c, err, errlen) < 0)
        return -1;
    n = (uint32_t)c->gw.dynamic_uid_max - lo + 1;
    for (size_t i = 0; i < ident_nslots; i++) {
        /* Placed before: keep it while it is still inside the range. */
        if (strcmp(ident_slots[i].key, key) == 0 && ident_slots[i].uid >= lo &&
            ident_slots[i].uid - lo < n) {
            *uid = ident_slots[i].uid;
            return 0;
        }
    }
    for (uint32_t probe = 0, h = ident_hash(key) % n; probe < n; probe++) {
        uid_t cand = (uid_t)(lo + (h + probe) % n);
        if (ident_uid_taken(cand))
            continue;
        copy = strdup(key);
        slots = copy ? realloc(ident_slots, (ident_nslots + 1) * sizeof(*slots)) : NULL;
        if (!slots) {
            free(copy);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        ident_slots = slots;
        ident_slots[ident_nslots].key = copy;
        ident_slots[ident_nslots].uid = cand;
        ident_nslots++;
        *uid = cand;
        return 0;
    }
    snprintf(err, errlen, "%s: no free uid left in dynamic_uid_min..dynamic_uid_max (%d..%d)",
             c->path, c->gw.dynamic_uid_min, c->gw.dynamic_uid_max);
    return -1;
}

/* An explicit USER (and GROUP, else the user's primary group). */
static int ident_named(const struct conf *c, const char *name, const char *user, const char *group,
                       struct ident *out, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    struct group *gr = group ? getgrnam(group) : NULL;

    if (!pw) {
        snprintf(err, errlen, "%s: [%s] user '%s' does not exist", c->path, name, user);
        return -1;
    }
    if (group && !gr) {
        snprintf(err, errlen, "%s: [%s] group '%s' does not exist", c->path, name, group);
        return -1;
    }
    if (pw->pw_uid == 0 || (gr ? gr->gr_gid : pw->pw_gid) == 0) {
        snprintf(err, errlen, "%s: [%s] user '%s' is root: instances never run as root", c->path,
                 name, user);
        return -1;
    }
    out->uid = pw->pw_uid;
    out->gid = gr ? gr->gr_gid : pw->pw_gid;
    return 0;
}

/* Starts OUT as "the gateway's own user"; true when the gateway is root and
 * the caller must pick an unprivileged identity. */
static bool ident_start(struct ident *out)
{
    memset(out, 0, sizeof(*out));
    out->uid = getuid();
    out->gid = getgid();
    out->drop = geteuid() == 0;
    return out->drop;
}

int ident_function(const struct conf *c, const char *name, const struct fn_settings *set,
                   struct ident *out, char *err, size_t errlen)
{
    const char *user = set->user ? set->user : c->gw.user;
    const char *group = set->user ? set->group : (set->group ? set->group : c->gw.group);

    if (!ident_start(out))
        return 0;
    if (user)
        return ident_named(c, name, user, group, out, err, errlen);
    if (group) {
        snprintf(err, errlen, "%s: [%s] group is set without user", c->path, name);
        return -1;
    }
    out->dynamic = true;
    if (ident_dynamic(c, name, &out->uid, err, errlen) < 0)
        return -1;
    out->gid = (gid_t)out->uid;
    return 0;
}

int ident_pool(const struct conf *c, struct ident *out, char *err, size_t errlen)
{
    if (!ident_start(out))
        return 0;
    out->dynamic = true;
    if (ident_dynamic(c, IDENT_POOL_KEY, &out->uid, err, errlen) < 0)
        return -1;
    out->gid = (gid_t)out->uid;
    return 0;
}
