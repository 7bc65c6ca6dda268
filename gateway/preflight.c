/*
 * Start-up checks shared by serve and check.  Without them serve failed
 * half-way (chown EPERM on the first socket, a missing functions_dir) and,
 * worse, started fine with a function folder its instances could not enter:
 * every request then got 503 "exited with status 126".  The access test runs
 * as the instance user itself, in a child that drops to that user exactly as
 * proc_spawn does (one group, then the uid), so ACLs, supplementary groups
 * and every folder on the way are judged by the kernel, not by reading mode
 * bits.
 */
#include "config.h"

#include "preflight.h"

#include "dburl.h"
#include "ident.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PREFLIGHT_MSG_MAX (PATH_MAX + 256)

void preflight_report_error(void *arg, const char *problem)
{
    (void)arg;
    log_error("%s", problem);
}

void preflight_report_warn(void *arg, const char *problem)
{
    (void)arg;
    log_warnx("%s", problem);
}

void preflight_report_join(void *arg, const char *problem)
{
    struct preflight_joined *j = arg;
    size_t n = strlen(j->text);

    snprintf(j->text + n, sizeof(j->text) - n, "%s%s", n ? "; " : "", problem);
}

/* Reports "c->path[:LINE]: message" for [gateway] KEY. */
static void preflight_gw(const struct conf *c, const char *key, preflight_report_fn *report,
                         void *arg, int *n, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void preflight_gw(const struct conf *c, const char *key, preflight_report_fn *report,
                         void *arg, int *n, const char *fmt, ...)
{
    char msg[PREFLIGHT_MSG_MAX], text[PREFLIGHT_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    conf_gw_err(c, key, msg, sizeof(msg), "%s%s", text,
                conf_gw_line(c, key) ? "" : " (the default)");
    report(arg, msg);
    (*n)++;
}

static bool preflight_in_groups(gid_t gid)
{
    gid_t groups[NGROUPS_MAX];
    int n;

    if (getegid() == gid)
        return true;
    n = getgroups(NGROUPS_MAX, groups);
    for (int i = 0; i < n; i++) {
        if (groups[i] == gid)
            return true;
    }
    return false;
}

static const char *preflight_me(void)
{
    struct passwd *pw = getpwuid(geteuid());
    static char buf[32];

    if (pw)
        return pw->pw_name;
    snprintf(buf, sizeof(buf), "uid %d", (int)geteuid());
    return buf;
}

/* socket_dir: serve creates it (one level) and <dir>/fn, then binds there. */
static void preflight_socket_dir(const struct conf *c, preflight_report_fn *report, void *arg,
                                 int *n)
{
    const char *dir = c->gw.socket_dir;
    char parent[PATH_MAX], sub[PATH_MAX];
    struct stat st;
    char *slash;

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            preflight_gw(c, "socket_dir", report, arg, n, "socket_dir %s: not a directory", dir);
            return;
        }
        if (access(dir, W_OK | X_OK) < 0) {
            preflight_gw(c, "socket_dir", report, arg, n,
                         "socket_dir %s: %s cannot write there: %s", dir, preflight_me(),
                         strerror(errno));
            return;
        }
        snprintf(sub, sizeof(sub), "%s/fn", dir);
        if (stat(sub, &st) == 0 && (!S_ISDIR(st.st_mode) || access(sub, W_OK | X_OK) < 0))
            preflight_gw(c, "socket_dir", report, arg, n,
                         "socket_dir %s: %s cannot write there: %s", dir, preflight_me(),
                         S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
        return;
    }
    if (errno != ENOENT) {
        preflight_gw(c, "socket_dir", report, arg, n, "socket_dir %s: %s", dir, strerror(errno));
        return;
    }
    snprintf(parent, sizeof(parent), "%s", dir);
    slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    if (access(parent, W_OK | X_OK) < 0)
        preflight_gw(c, "socket_dir", report, arg, n, "socket_dir %s: cannot be created in %s: %s",
                     dir, parent, strerror(errno));
}

int preflight_gateway(const struct conf *c, preflight_report_fn *report, void *arg)
{
    const char *env_url = getenv("DATABASE_URL");
    char why[PREFLIGHT_MSG_MAX];
    int n = 0;
    DIR *d;

    if (ident_check(c, why, sizeof(why)) < 0) {
        report(arg, why);
        n++;
    }
    if (geteuid() == 0) {
        struct passwd *pw = c->gw.user ? getpwnam(c->gw.user) : NULL;
        struct group *gr = c->gw.group ? getgrnam(c->gw.group) : NULL;
        if (c->gw.user && !pw)
            preflight_gw(c, "user", report, arg, &n, "user '%s' does not exist", c->gw.user);
        else if (pw && (pw->pw_uid == 0 || (!c->gw.group && pw->pw_gid == 0)))
            preflight_gw(c, "user", report, arg, &n,
                         "user '%s' is root: instances never run as root", c->gw.user);
        if (c->gw.group && !gr)
            preflight_gw(c, "group", report, arg, &n, "group '%s' does not exist", c->gw.group);
        else if (gr && gr->gr_gid == 0)
            preflight_gw(c, "group", report, arg, &n,
                         "group '%s' is root: instances never run as root", c->gw.group);
        else if (c->gw.group && !c->gw.user)
            preflight_gw(c, "group", report, arg, &n,
                         "group '%s' is set without user (a dynamic uid has a group of its own)",
                         c->gw.group);
    }
    if (c->gw.socket_group) {
        struct group *gr = getgrnam(c->gw.socket_group);
        if (!gr)
            preflight_gw(c, "socket_group", report, arg, &n, "socket_group '%s' does not exist",
                         c->gw.socket_group);
        else if (geteuid() != 0 && !preflight_in_groups(gr->gr_gid))
            preflight_gw(c, "socket_group", report, arg, &n,
                         "socket_group '%s': %s is not a member, so the sockets cannot be given "
                         "that group (chown: %s)",
                         c->gw.socket_group, preflight_me(), strerror(EPERM));
    }
    preflight_socket_dir(c, report, arg, &n);
    d = opendir(c->gw.functions_dir);
    if (d)
        closedir(d);
    else
        preflight_gw(c, "functions_dir", report, arg, &n, "functions_dir %s: %s",
                     c->gw.functions_dir, strerror(errno));
    if (c->gw.database_url && dburl_check(c->gw.database_url, why, sizeof(why)) < 0) {
        if (env_url && *env_url) {
            char msg[PREFLIGHT_MSG_MAX + 64];
            snprintf(msg, sizeof(msg), "DATABASE_URL (environment): %s", why);
            report(arg, msg);
            n++;
        } else {
            preflight_gw(c, "database_url", report, arg, &n, "database_url: %s", why);
        }
    }
    return n;
}

/* ------------------------------------------------------------------------
 * Functions
 */

/* Who the instances of D run as: gateway/ident.c's answer, as for a spawn.
 * Returns 1 when D runs as the gateway's own user (no drop), 0 with UID/GID
 * and WHO set, -1 with the reason in ERR. */
static int preflight_fn_ident(const struct conf *c, const struct discover_fn *d, uid_t *uid,
                              gid_t *gid, char *who, size_t wholen, char *err, size_t errlen)
{
    struct ident id;

    if (ident_function(c, d->name, &d->set, &id, err, errlen) < 0)
        return -1;
    if (!id.drop) {
        snprintf(who, wholen, "user %s", preflight_me());
        return 1;
    }
    *uid = id.uid;
    *gid = id.gid;
    if (id.dynamic)
        snprintf(who, wholen, "dynamic uid %d", (int)id.uid);
    else
        snprintf(who, wholen, "user %s", d->set.user ? d->set.user : c->gw.user);
    return 0;
}

/* Whether the current process may enter every folder down to D's and run
 * its handler; writes the reason into MSG when not. */
static int preflight_fn_paths(const struct discover_fn *d, const char *who, char *msg,
                              size_t msglen)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s", d->dir);
    for (char *p = path + 1;; p++) {
        char saved = *p;
        if (saved != '/' && saved != '\0')
            continue;
        *p = '\0';
        if (access(path, X_OK) < 0) {
            snprintf(msg, msglen, "%s: instances (%s) cannot enter this folder: %s", path, who,
                     strerror(errno));
            return -1;
        }
        *p = saved;
        if (!saved)
            break;
    }
    if (access(d->handler, X_OK) < 0) {
        snprintf(msg, msglen, "%s: instances (%s) cannot execute it: %s", d->handler, who,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* preflight_fn_paths as UID/GID, in a child that drops to them. */
static int preflight_fn_paths_as(const struct discover_fn *d, uid_t uid, gid_t gid, const char *who,
                                 char *msg, size_t msglen)
{
    int fds[2], status;
    ssize_t got = 0, r;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return 0; /* cannot tell: let the spawn say */
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        char m[PREFLIGHT_MSG_MAX] = "";
        close(fds[0]);
        if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            snprintf(m, sizeof(m), "cannot switch to %s: %s", who, strerror(errno));
        else
            preflight_fn_paths(d, who, m, sizeof(m));
        if (write(fds[1], m, strlen(m)) < 0)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    while ((size_t)got < msglen - 1 &&
           (r = read(fds[0], msg + got, msglen - 1 - (size_t)got)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += r;
    }
    msg[got] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return got > 0 ? -1 : 0;
}

int preflight_functions(const struct conf *c, struct discover_list *l)
{
    struct sockaddr_un sa;

    for (size_t i = 0; i < l->n; i++) {
        struct discover_fn *d = &l->fns[i];
        char msg[PREFLIGHT_MSG_MAX] = "", who[64];
        uid_t uid = 0;
        gid_t gid = 0;
        int r = 0, id;

        if (d->disabled)
            continue;
        if (strlen(c->gw.socket_dir) + strlen("/fn/.sock") + strlen(d->name) >=
            sizeof(sa.sun_path)) {
            snprintf(msg, sizeof(msg), "%s/fn/%s.sock: socket path longer than %zu bytes",
                     c->gw.socket_dir, d->name, sizeof(sa.sun_path) - 1);
            r = -1;
        } else if ((id = preflight_fn_ident(c, d, &uid, &gid, who, sizeof(who), msg, sizeof(msg))) <
                   0) {
            /* The gateway's own user or group: reported once, by
             * preflight_gateway, not again for every function. */
            if (!d->set.user && !d->set.group)
                continue;
            r = -1;
        } else if (id == 0) {
            r = preflight_fn_paths_as(d, uid, gid, who, msg, sizeof(msg));
        } else {
            r = preflight_fn_paths(d, who, msg, sizeof(msg));
        }
        if (r < 0 && discover_fn_disable(d, msg) < 0)
            return -1;
    }
    return 0;
}
