/*
 * One function as the running gateway knows it: its socket and listen
 * watch, identity, sandbox and environment, its instances, scaling to what
 * the queue asks, policing timeouts and idle instances, regenerating on new
 * settings, and removal.  The supervisor (sup.c) keeps the list of them.
 */
#ifndef FNGATE_SUPFN_H
#define FNGATE_SUPFN_H

#include "discover.h"
#include "ident.h"

#include <stdbool.h>
#include <stdint.h>

struct backlog;
struct event;
struct inst;
struct metrics_fn;
struct police_fn;
struct sandbox_fn;
struct sup;

/* One function as the running gateway knows it. */
struct sup_fn {
    struct sup_fn *next;
    struct sup *sup;
    struct discover_fn desc; /* owned: name, folder, handler, settings, identity */
    unsigned gen;
    bool so_broken; /* a spare could not load its handler.so: exec until it changes */
    char **envp;    /* owned, NULL-terminated */
    char *argv[2];
    char *sock_path; /* owned */
    int listen_fd;
    struct event *ev_listen; /* owned */
    struct event *ev_burst;  /* owned: the queue looked at again while instances start */
    struct police_fn *pol;   /* owned: its connections in service */
    bool armed;
    bool removed; /* socket unlinked; serving what is queued, then gone */
    bool drained; /* queue seen empty after removal: instances told to stop */
    struct inst *insts;
    struct metrics_fn *metrics; /* owned: its figures */
    int n_insts;
    int crashes;
    int64_t spawn_after_ns;
    struct ident id;            /* who its instances run as */
    struct sandbox_fn *sandbox; /* owned */
    char last_exit[160];        /* how the last crash ended, for the 503 */
    int64_t stuck_since_ns;     /* queue non-empty with idle instances since */
    bool burst;                 /* a cold burst in service (scale.h): set at a cold
                                 * start, cleared once scale_burst_over */
    struct backlog *backlog;    /* owned: the queue police */
    /* Scaling hints from its instances' slots (claims, clamped; a lie
     * only mis-sizes this function): what the instances gone served and
     * how long it took them, and how long the last one took to start. */
    double served_ns;
    uint64_t served_n;
    int64_t start_ns;
    /* The same for the last instance that was exec'd, not handed to a
     * spare: after a burst's first instance takes the spare, the rest are
     * exec'd, and sizing them by a spare's 0.2 ms start asked for all of
     * max_instances. */
    int64_t exec_start_ns;
};

/* Takes ownership of *D (zeroing it) and opens the function's socket. */
struct sup_fn *supfn_new(struct sup *s, struct discover_fn *d, char *err, size_t errlen);
/* Frees F and its instances (not their processes); supfn_free(NULL) is a no-op. */
void supfn_free(struct sup_fn *f);
/* The function named NAME that is not being removed, or NULL. */
struct sup_fn *supfn_find(struct sup *s, const char *name);
/* A new binary or new settings (takes *D): later spawns use them, and the
 * current instances retire between requests. */
void supfn_regenerate(struct sup_fn *f, struct discover_fn *d, const char *why, int64_t now);
/* Watches the socket again. */
void supfn_arm(struct sup_fn *f);
/* Unlinks the socket so no new connection can arrive; what is queued is
 * still served. */
void supfn_remove(struct sup_fn *f);
/* Spawns what the queue and min_instances call for.  Returns the queue
 * length it saw (-1: unknown). */
int supfn_scale_q(struct sup_fn *f, int64_t now);
void supfn_scale(struct sup_fn *f, int64_t now);
/* Timeouts, stop escalation (police.c decides), idle reaping. */
void supfn_police(struct sup_fn *f, int64_t now);

#endif
