/*
 * The watched functions folder: an added, replaced or removed handler or
 * function.conf under functions_dir calls back (for a reload, the very one
 * SIGHUP does) once the folder has been quiet for a moment, so a deploy by
 * copy, by rename or by copy-then-chmod takes effect within a second
 * without a signal.  `watch = off` in [gateway] turns it off.
 */
#ifndef FNGATE_WATCH_H
#define FNGATE_WATCH_H

#include <event2/event.h>

#include "conf.h"

struct watch;

typedef void watch_cb(void *arg);

/* Starts watching C's functions_dir on BASE when c->gw.watch is on; CB(ARG)
 * runs on the loop after a burst of changes.  Returns NULL when the watch is
 * off or cannot be set up (logged: the gateway then works by reload only). */
struct watch *watch_new(struct event_base *base, const struct conf *c, watch_cb *cb, void *arg);

/* After a reload: follows C's functions_dir and watch setting and the
 * function folders that exist now.  W may be NULL (then it may start one).
 * Returns the watch to keep (possibly new, possibly NULL). */
struct watch *watch_update(struct watch *w, struct event_base *base, const struct conf *c,
                           watch_cb *cb, void *arg);

void watch_free(struct watch *w);

#endif
