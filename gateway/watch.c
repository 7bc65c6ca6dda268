/*
 * inotify on functions_dir and on each folder in it.  What counts:
 *  - at the top, any entry created, removed, renamed or chmod'ed (a
 *    function folder appearing, going, or becoming enterable);
 *  - inside a folder, only the names "handler" and "function.conf"
 *    (written and closed, renamed over, removed, chmod'ed) and the folder's
 *    own mode.
 * Everything else is ignored, so a function writing scratch files in its
 * own folder never makes the gateway reload.  Events are debounced: the
 * callback runs WATCH_QUIET_MS after the last one, or WATCH_MAX_MS after
 * the first when they keep coming (a long copy), so a deploy costs one
 * reload and lands within a second.  A partly written handler seen by that
 * reload is a new binary again when the write finishes (its size and mtime
 * change), so the last reload always has the finished file.
 */
#include "config.h"

#include "watch.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WATCH_QUIET_MS 150
#define WATCH_MAX_MS 600
#define WATCH_TOP_MASK                                                                             \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |            \
     IN_MOVE_SELF | IN_ONLYDIR)
/* functions_dir itself replaced: removed and made again, or a symlink to it
 * renamed over (a release-folder deploy). */
#define WATCH_PARENT_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB)
#define WATCH_FN_MASK                                                                              \
    (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR)

struct watch_dir {
    int wd;
    char *path; /* owned */
};

struct watch {
    struct event_base *base;
    int fd;
    char *dir; /* owned: the functions_dir watched */
    int top_wd;
    int parent_wd;          /* the folder holding functions_dir, -1: none */
    char *dir_name;         /* owned: functions_dir's name in it */
    struct event *ev_read;  /* owned */
    struct event *ev_timer; /* owned */
    int64_t first_ns;       /* first event of the pending burst, 0: none */
    struct watch_dir *dirs; /* owned: the folder of each watch descriptor */
    size_t n_dirs;
    watch_cb *cb;
    void *arg;
};

static int64_t watch_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Remembers that WD watches PATH (a folder renamed away keeps its wd). */
static void watch_dir_note(struct watch *w, int wd, const char *path)
{
    struct watch_dir *n;
    char *copy;

    for (size_t i = 0; i < w->n_dirs; i++) {
        if (w->dirs[i].wd == wd) {
            copy = strdup(path);
            if (copy) {
                free(w->dirs[i].path);
                w->dirs[i].path = copy;
            }
            return;
        }
    }
    copy = strdup(path);
    n = copy ? realloc(w->dirs, (w->n_dirs + 1) * sizeof(*n)) : NULL;
    if (!n) {
        free(copy);
        return;
    }
    w->dirs = n;
    w->dirs[w->n_dirs].wd = wd;
    w->dirs[w->n_dirs].path = copy;
    w->n_dirs++;
}

static const char *watch_dir_path(const struct watch *w, int wd)
{
    for (size_t i = 0; i < w->n_dirs; i++) {
        if (w->dirs[i].wd == wd)
            return w->dirs[i].path;
    }
    return NULL;
}

/* Watches every folder now in the functions folder (inotify gives back the
 * same descriptor for a folder already watched). */
static void watch_scan(struct watch *w)
{
    DIR *d = opendir(w->dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        int wd;
        if (de->d_name[0] == '.')
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_LNK && de->d_type != DT_UNKNOWN)
            continue;
        snprintf(path, sizeof(path), "%s/%s", w->dir, de->d_name);
        /* IN_ONLYDIR: a symlink to a file or a plain file fails, quietly. */
        wd = inotify_add_watch(w->fd, path, WATCH_FN_MASK);
        if (wd < 0 && errno != ENOTDIR && errno != ENOENT)
            log_warn("watch: %s", path);
        if (wd >= 0)
            watch_dir_note(w, wd, path);
    }
    closedir(d);
}

static void watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    (void)fd;
    (void)what;

    w->first_ns = 0;
    /* Follow functions_dir if it was replaced (inotify gives back the same
     * descriptor while it is the same folder). */
    {
        int wd = inotify_add_watch(w->fd, w->dir, WATCH_TOP_MASK);
        if (wd >= 0)
            w->top_wd = wd;
    }
    /* New folders get their watch before the reload reads them: a change
     * made in between is then not missed. */
    watch_scan(w);
    w->cb(w->arg);
}

/* Arms the debounce timer for one more relevant event. */
static void watch_poke(struct watch *w)
{
    int64_t now = watch_now_ns(), left_ms;
    struct timeval tv;

    if (!w->first_ns)
        w->first_ns = now;
    left_ms = WATCH_MAX_MS - (now - w->first_ns) / 1000000;
    if (left_ms > WATCH_QUIET_MS)
        left_ms = WATCH_QUIET_MS;
    if (left_ms < 0)
        left_ms = 0;
    tv.tv_sec = 0;
    tv.tv_usec = (suseconds_t)(left_ms * 1000);
    evtimer_add(w->ev_timer, &tv);
}

static bool watch_relevant(const struct watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return true; /* events were lost: look at everything again */
    if (ev->mask & IN_IGNORED)
        return false;
    if (ev->wd == w->top_wd)
        return ev->len == 0 || ev->name[0] != '.';
    if (ev->wd == w->parent_wd)
        return ev->len > 0 && strcmp(ev->name, w->dir_name) == 0;
    if (ev->len == 0)
        return (ev->mask & IN_ATTRIB) != 0; /* the folder's own mode */
    if (strcmp(ev->name, "handler") != 0 && strcmp(ev->name, "function.conf") != 0)
        return false;
    if (ev->mask & IN_CREATE) {
        /* A file being copied in counts when it is closed (IN_CLOSE_WRITE):
         * a reload in the middle of a slow copy would see half a binary.
         * A symlink is complete when created. */
        const char *dir = watch_dir_path(w, ev->wd);
        char path[PATH_MAX];
        struct stat st;
        if (!dir)
            return true;
        snprintf(path, sizeof(path), "%s/%s", dir, ev->name);
        return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    }
    return true;
}

static void watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool poke = false;
    (void)what;

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            poke = poke || watch_relevant(w, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
    if (poke)
        watch_poke(w);
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    if (w->ev_read)
        event_free(w->ev_read);
    if (w->ev_timer)
        event_free(w->ev_timer);
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->n_dirs; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    free(w->dir);
    free(w->dir_name);
    free(w);
}

struct watch *watch_new(struct event_base *base, const struct conf *c, watch_cb *cb, void *arg)
{
    struct watch *w;

    if (!c->gw.watch)
        return NULL;
    w = calloc(1, sizeof(*w));
    if (!w) {
        log_warnx("watch: out of memory: functions_dir changes need fngate reload");
        return NULL;
    }
    w->base = base;
    w->cb = cb;
    w->arg = arg;
    w->dir = strdup(c->gw.functions_dir);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (!w->dir || w->fd < 0) {
        log_warn("watch: inotify: functions_dir changes need fngate reload");
        goto fail;
    }
    w->top_wd = inotify_add_watch(w->fd, w->dir, WATCH_TOP_MASK);
    w->parent_wd = -1;
    {
        /* functions_dir is absolute (conf.c makes it so). */
        char parent[PATH_MAX];
        char *slash;
        snprintf(parent, sizeof(parent), "%s", w->dir);
        slash = strrchr(parent, '/');
        w->dir_name = strdup(slash ? slash + 1 : parent);
        if (slash && slash != parent) {
            *slash = '\0';
            w->parent_wd = inotify_add_watch(w->fd, parent, WATCH_PARENT_MASK | IN_ONLYDIR);
        }
    }
    if (w->top_wd < 0 || !w->dir_name) {
        log_warn("watch: %s: changes need fngate reload", w->dir);
        goto fail;
    }
    w->ev_read = event_new(base, w->fd, EV_READ | EV_PERSIST, watch_read_cb, w);
    w->ev_timer = evtimer_new(base, watch_timer_cb, w);
    if (!w->ev_read || !w->ev_timer || event_add(w->ev_read, NULL) < 0) {
        log_warnx("watch: cannot add its events: functions_dir changes need fngate reload");
        goto fail;
    }
    watch_scan(w);
    log_info("watching %s: added, replaced and removed functions apply without a reload", w->dir);
    return w;
fail:
    watch_free(w);
    return NULL;
}

struct watch *watch_update(struct watch *w, struct event_base *base, const struct conf *c,
                           watch_cb *cb, void *arg)
{
    if (w && c->gw.watch && strcmp(w->dir, c->gw.functions_dir) == 0) {
        watch_scan(w);
        return w;
    }
    if (w && !c->gw.watch)
        log_info("watch = off: no longer watching %s", w->dir);
    watch_free(w);
    return watch_new(base, c, cb, arg);
}
