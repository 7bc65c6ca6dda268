/*
 * fngate dev.  Everything lives in a fresh folder under $TMPDIR that the
 * command removes on exit: fngate.conf, the socket_dir, nginx's prefix, the
 * request log, a Postgres cluster with --db, and the staging functions_dir
 * the gateway serves.  A function is built in its source folder with its
 * own Makefile; only a successful build is copied (handler and
 * function.conf, renamed into place) to the staging folder, so a build in
 * progress or a failed one never reaches a request and the previous build
 * keeps serving.  The gateway's own folder watch then reloads it, with the
 * same graceful retirement as SIGHUP.
 *
 * One libevent loop: inotify on DIR and on each function folder (a change
 * marks the function; it is built once its folder has been quiet for
 * DEV_QUIET_MS), a timer that runs due builds and prints new request-log
 * lines, SIGCHLD for the gateway and nginx (either dying ends the session),
 * and SIGINT/SIGTERM.  The children run in sessions of their own, so the
 * terminal's Ctrl-C reaches only this process, which stops nginx first,
 * then the gateway (it drains), then Postgres.  Builds run in the
 * foreground of the loop: nothing here is on the request path.
 */
#include "config.h"

#include "dev.h"

#include "conf.h"
#include "devlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define DEV_QUIET_MS 100
#define DEV_TICK_MS 100
#define DEV_STOP_WAIT_MS 15000
#define DEV_FN_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB)
#define DEV_TOP_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)

/* One function folder of DIR. */
struct dev_fn {
    struct dev_fn *next;
    char name[CONF_NAME_MAX + 1];
    char src[PATH_MAX];
    int wd;
    bool dirty;      /* a file changed: build when due */
    int64_t due_ns;  /* when its folder will have been quiet long enough */
    bool staged;     /* a handler is being served */
    bool seen;       /* found by the current scan */
    struct stat hst; /* the source handler last staged */
};

struct dev {
    struct event_base *base;
    char dir[PATH_MAX];
    char run[PATH_MAX];
    char staging[PATH_MAX + 16];
    char exe[PATH_MAX];
    int port;
    bool db;
    pid_t gw, ngx;
    char pg_bin[PATH_MAX];
    bool pg_up;
    int ino, top_wd;
    struct dev_fn *fns;
    struct event *ev_ino, *ev_tick, *ev_sig[3];
    struct devlog log;
    bool stopping;
    int rc;
};

static int64_t dev_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void dev_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dev_say(const char *fmt, ...)
{
    va_list ap;

    fputs("fngate dev: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void dev_usage(FILE *out)
{
    fprintf(out, "usage: fngate dev [--port N] [--db] [DIR]\n"
                 "  builds each function folder of DIR (default ./functions) that has a\n"
                 "  Makefile, serves them at http://127.0.0.1:N/fn/<name> (default 8080)\n"
                 "  and rebuilds one when its files change; --db starts a throwaway\n"
                 "  Postgres when DATABASE_URL is unset.  Ctrl-C stops everything.\n");
}

/* ------------------------------------------------------------------------
 * Processes and files
 */

static bool dev_root(void)
{
    return geteuid() == 0;
}

/* Drops to nobody:nogroup in a child (Postgres refuses to run as root). */
static void dev_child_drop(void)
{
    struct passwd *pw = getpwnam("nobody");
    struct group *gr = getgrnam("nogroup");
    gid_t gid = gr ? gr->gr_gid : (pw ? pw->pw_gid : 65534);

    if (!pw || setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
        perror("fngate dev: cannot switch to nobody");
        _exit(127);
    }
}

/* Starts ARGV in CWD (NULL: ours), as nobody when DROP and we are root;
 * OUT_FD (-1: inherit) becomes its stdout and stderr.  Servers get a session
 * of their own (DEV_SESSION) so that only we see the terminal's Ctrl-C; a
 * build stays in ours, so that Ctrl-C stops a build that hangs. */
#define DEV_SESSION 1
#define DEV_DROP 2
static pid_t dev_spawn(char *const argv[], const char *cwd, int flags, int out_fd)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    if (flags & DEV_SESSION)
        setsid();
    signal(SIGPIPE, SIG_DFL);
    if (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0))
        _exit(127);
    if (cwd && chdir(cwd) < 0) {
        fprintf(stderr, "fngate dev: %s: %s\n", cwd, strerror(errno));
        _exit(127);
    }
    if ((flags & DEV_DROP) && dev_root())
        dev_child_drop();
    execvp(argv[0], argv);
    fprintf(stderr, "fngate dev: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Runs ARGV to completion; returns its wait status (-1: could not wait). */
static int dev_run_wait(char *const argv[], const char *cwd, int flags, int out_fd)
{
    pid_t pid = dev_spawn(argv, cwd, flags, out_fd);
    int status;

    if (pid < 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return status;
}

static bool dev_status_ok(int status)
{
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int dev_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void dev_rm_rf(const char *path)
{
    nftw(path, dev_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int dev_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
        fprintf(stderr, "fngate dev: %s: %s\n", path, strerror(errno));
        return -1;
    }
    chmod(path, 0644);
    return 0;
}

/* Copies SRC to DST through DST.tmp and a rename, with MODE. */
static int dev_copy(const char *src, const char *dst, mode_t mode)
{
    char tmp[PATH_MAX + 8], buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
    ssize_t n;

    snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
    if (in < 0)
        goto fail;
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (out < 0)
        goto fail;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n)
            goto fail;
    }
    if (n < 0 || fchmod(out, mode) < 0 || close(out) < 0) {
        out = -1;
        goto fail;
    }
    out = -1;
    close(in);
    if (rename(tmp, dst) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
fail:
    fprintf(stderr, "fngate dev: copying %s: %s\n", src, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    unlink(tmp);
    return -1;
}

/* ------------------------------------------------------------------------
 * Functions: build and stage
 */

static bool dev_has_makefile(const struct dev_fn *f)
{
    static const char *const names[] = {"GNUmakefile", "makefile", "Makefile"};
    char p[PATH_MAX + 16];

    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->src, names[i]);
        if (access(p, F_OK) == 0)
            return true;
    }
    return false;
}

/* Puts F's built handler (and function.conf) where the gateway serves it,
 * when the handler differs from the one staged. */
static void dev_stage(struct dev *d, struct dev_fn *f)
{
    char src[PATH_MAX + 32], dir[PATH_MAX + 96], dst[PATH_MAX + 128];
    struct stat st;
    bool fresh;

    snprintf(src, sizeof(src), "%s/handler", f->src);
    if (stat(src, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR)) {
        if (!f->staged)
            dev_say("%s: no executable %s: not served (%s)", f->name, src,
                    dev_has_makefile(f) ? "its Makefile must build handler"
                                        : "no Makefile to build one");
        return;
    }
    fresh = !f->staged || st.st_ino != f->hst.st_ino || st.st_size != f->hst.st_size ||
            st.st_mtim.tv_sec != f->hst.st_mtim.tv_sec ||
            st.st_mtim.tv_nsec != f->hst.st_mtim.tv_nsec;
    snprintf(dir, sizeof(dir), "%s/%s", d->staging, f->name);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return;
    chmod(dir, 0755);
    /* function.conf first: a new binary must start with its settings. */
    snprintf(src, sizeof(src), "%s/function.conf", f->src);
    snprintf(dst, sizeof(dst), "%s/function.conf", dir);
    if (access(src, F_OK) == 0)
        dev_copy(src, dst, 0644);
    else
        unlink(dst);
    if (!fresh)
        return;
    snprintf(src, sizeof(src), "%s/handler", f->src);
    snprintf(dst, sizeof(dst), "%s/handler", dir);
    if (dev_copy(src, dst, 0755) < 0)
        return;
    dev_say("%s: %s http://127.0.0.1:%d/fn/%s", f->name,
            f->staged ? "new build, serving it at" : "serving at", d->port, f->name);
    f->staged = true;
    f->hst = st;
}

static void dev_ino_read(struct dev *d, int ignore_wd);

static void dev_build(struct dev *d, struct dev_fn *f)
{
    char *argv[] = {"make", "--no-print-directory", "-C", f->src, NULL};
    int status;

    f->dirty = false;
    if (!dev_has_makefile(f)) {
        dev_stage(d, f); /* a prebuilt handler, served as it is */
        return;
    }
    dev_say("%s: make -C %s", f->name, f->src);
    status = dev_run_wait(argv, NULL, 0, -1);
    /* What the build itself wrote is no change of the author's. */
    dev_ino_read(d, f->wd);
    if (!dev_status_ok(status)) {
        char how[48];
        if (status >= 0 && WIFEXITED(status))
            snprintf(how, sizeof(how), "make exited with %d", WEXITSTATUS(status));
        else if (status >= 0 && WIFSIGNALED(status))
            snprintf(how, sizeof(how), "make killed by signal %d", WTERMSIG(status));
        else
            snprintf(how, sizeof(how), "make could not run");
        dev_say("%s: build failed (%s): %s", f->name, how,
                f->staged ? "the previous build keeps serving" : "not served until it builds");
        return;
    }
    dev_stage(d, f);
}

static struct dev_fn *dev_fn_find(struct dev *d, const char *name)
{
    for (struct dev_fn *f = d->fns; f; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* Follows DIR: new folders are watched and marked for a build, folders
 * gone are no longer served. */
static void dev_scan(struct dev *d)
{
    DIR *dir = opendir(d->dir);
    struct dirent *de;

    for (struct dev_fn *f = d->fns; f; f = f->next)
        f->seen = false;
    while (dir && (de = readdir(dir)) != NULL) {
        struct dev_fn *f;
        struct stat st;
        char src[PATH_MAX + 256];
        if (!confval_name_valid(de->d_name))
            continue;
        snprintf(src, sizeof(src), "%s/%s", d->dir, de->d_name);
        if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        f = dev_fn_find(d, de->d_name);
        if (f) {
            f->seen = true;
            continue;
        }
        f = calloc(1, sizeof(*f));
        if (!f)
            continue;
        snprintf(f->name, sizeof(f->name), "%.64s", de->d_name);
        if ((size_t)snprintf(f->src, sizeof(f->src), "%s", src) >= sizeof(f->src)) {
            free(f);
            continue;
        }
        f->wd = inotify_add_watch(d->ino, src, DEV_FN_MASK);
        f->seen = true;
        f->dirty = true;
        f->due_ns = dev_now_ns();
        f->next = d->fns;
        d->fns = f;
    }
    if (dir)
        closedir(dir);
    for (struct dev_fn **pf = &d->fns; *pf;) {
        struct dev_fn *f = *pf;
        char staged[PATH_MAX + 96];
        if (f->seen) {
            pf = &f->next;
            continue;
        }
        snprintf(staged, sizeof(staged), "%s/%s", d->staging, f->name);
        dev_rm_rf(staged);
        if (f->staged)
            dev_say("%s: folder removed, no longer served", f->name);
        *pf = f->next;
        free(f);
    }
}

bool dev_is_source(const char *n)
{
    size_t len = strlen(n);

    if (n[0] == '.' || strcmp(n, "handler") == 0 || strcmp(n, "4913") == 0 || n[len - 1] == '~')
        return false;
    if (len > 2 && n[len - 2] == '.' &&
        (n[len - 1] == 'o' || n[len - 1] == 'a' || n[len - 1] == 'd'))
        return false;
    if (len > 4 && (strcmp(n + len - 4, ".swp") == 0 || strcmp(n + len - 4, ".tmp") == 0))
        return false;
    return true;
}

/* Reads pending events; a change in a function folder (other than
 * IGNORE_WD's) marks it for a build. */
static void dev_ino_read(struct dev *d, int ignore_wd)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool rescan = false;
    ssize_t n;

    while ((n = read(d->ino, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                rescan = true;
                for (struct dev_fn *f = d->fns; f; f = f->next)
                    f->dirty = true;
                continue;
            }
            if (ev->wd == d->top_wd) {
                rescan = true;
                continue;
            }
            if (ev->wd == ignore_wd || ev->len == 0 || !dev_is_source(ev->name))
                continue;
            for (struct dev_fn *f = d->fns; f; f = f->next) {
                if (f->wd == ev->wd) {
                    f->dirty = true;
                    f->due_ns = dev_now_ns() + (int64_t)DEV_QUIET_MS * 1000000;
                }
            }
        }
    }
    if (rescan)
        dev_scan(d);
}

/* New lines of the gateway's request log, printed. */
static void dev_reqlog_tail(struct dev *d)
{
    char path[PATH_MAX + 32];

    snprintf(path, sizeof(path), "%s/requests.log", d->run);
    devlog_tail(&d->log, path);
}

/* ------------------------------------------------------------------------
 * The servers
 */

/* nginx's fngate.inc: $FNGATE_NGINX_DIR, next to a build tree's fngate, or
 * the installed share/fngate/nginx. */
static int dev_find_inc(const struct dev *d, char *out, size_t outlen)
{
    const char *env = getenv("FNGATE_NGINX_DIR");
    char exedir[PATH_MAX];
    char *slash;
    const char *cands[4];
    char c0[PATH_MAX + 32], c1[PATH_MAX + 64], c2[PATH_MAX + 64];

    snprintf(exedir, sizeof(exedir), "%s", d->exe);
    slash = strrchr(exedir, '/');
    if (slash)
        *slash = '\0';
    snprintf(c0, sizeof(c0), "%s/fngate.inc", env ? env : "/nonexistent");
    snprintf(c1, sizeof(c1), "%s/../nginx/fngate.inc", exedir);
    snprintf(c2, sizeof(c2), "%s/../share/fngate/nginx/fngate.inc", exedir);
    cands[0] = c0;
    cands[1] = c1;
    cands[2] = c2;
    cands[3] = "/usr/share/fngate/nginx/fngate.inc";
    for (size_t i = 0; i < 4; i++) {
        if (realpath(cands[i], out) && access(out, R_OK) == 0)
            return 0;
    }
    (void)outlen;
    return -1;
}

static int dev_write_confs(struct dev *d)
{
    char path[PATH_MAX + 64], inc[PATH_MAX], text[8 * PATH_MAX];
    const char *env_url = getenv("DATABASE_URL");

    if (dev_find_inc(d, inc, sizeof(inc)) < 0) {
        fprintf(stderr, "fngate dev: cannot find nginx/fngate.inc (set FNGATE_NGINX_DIR to the "
                        "folder that holds it)\n");
        return -1;
    }
    snprintf(text, sizeof(text),
             "; written by fngate dev, removed when it stops\n"
             "[gateway]\n"
             "functions_dir = %s\n"
             "socket_dir = %s/sock\n"
             "request_log = %s/requests.log\n"
             "log_level = info\n"
             "%s"
             "%s%s%s"
             "\n[defaults]\nidle_timeout = 30s\n",
             d->staging, d->run, d->run, dev_root() ? "socket_group = nogroup\n" : "",
             d->db && !(env_url && *env_url) ? "database_url = host=" : "",
             d->db && !(env_url && *env_url) ? d->run : "",
             d->db && !(env_url && *env_url) ? "/pg user=postgres dbname=postgres\n" : "");
    snprintf(path, sizeof(path), "%s/fngate.conf", d->run);
    if (dev_write(path, text) < 0)
        return -1;
    snprintf(text, sizeof(text),
             "# written by fngate dev, removed when it stops\n"
             "%s"
             "worker_processes 1;\n"
             "pid nginx.pid;\n"
             "error_log stderr emerg;\n"
             "error_log error.log warn;\n"
             "events { worker_connections 256; }\n"
             "http {\n"
             "    access_log off;\n"
             "    client_body_temp_path client_body_temp;\n"
             "    fastcgi_temp_path fastcgi_temp;\n"
             "    proxy_temp_path proxy_temp;\n"
             "    uwsgi_temp_path uwsgi_temp;\n"
             "    scgi_temp_path scgi_temp;\n"
             "    server {\n"
             "        listen 127.0.0.1:%d;\n"
             "        set $fngate_socket_dir %s/sock;\n"
             "        include %s;\n"
             "        location / {\n"
             "            default_type application/json;\n"
             "            return 404 '{\"error\":\"not found\"}\\n';\n"
             "        }\n"
             "    }\n"
             "}\n",
             dev_root() ? "user nobody nogroup;\n" : "", d->port, d->run, inc);
    snprintf(path, sizeof(path), "%s/nginx/nginx.conf", d->run);
    return dev_write(path, text);
}

/* /usr/lib/postgresql/N/bin with initdb, newest first. */
static int dev_pg_bindir(char *out, size_t outlen)
{
    char best[PATH_MAX] = "";
    int best_v = -1;
    DIR *dir = opendir("/usr/lib/postgresql");
    struct dirent *de;

    while (dir && (de = readdir(dir)) != NULL) {
        char p[PATH_MAX];
        int v = atoi(de->d_name);
        snprintf(p, sizeof(p), "/usr/lib/postgresql/%s/bin/initdb", de->d_name);
        if (v > best_v && access(p, X_OK) == 0) {
            best_v = v;
            snprintf(best, sizeof(best), "/usr/lib/postgresql/%s/bin", de->d_name);
        }
    }
    if (dir)
        closedir(dir);
    if (best_v < 0)
        return -1;
    snprintf(out, outlen, "%s", best);
    return 0;
}

static int dev_pg_start(struct dev *d)
{
    char pgdir[PATH_MAX + 8], data[PATH_MAX + 16], logf[PATH_MAX + 32], prog[PATH_MAX + 16];
    char conf[PATH_MAX + 64], extra[PATH_MAX + 256];
    int fd, status;

    if (dev_pg_bindir(d->pg_bin, sizeof(d->pg_bin)) < 0) {
        fprintf(stderr, "fngate dev: --db: no PostgreSQL server (initdb) found: install "
                        "postgresql, or set DATABASE_URL\n");
        return -1;
    }
    snprintf(pgdir, sizeof(pgdir), "%s/pg", d->run);
    snprintf(data, sizeof(data), "%s/data", pgdir);
    snprintf(logf, sizeof(logf), "%s/postgres.log", pgdir);
    if (mkdir(pgdir, 0755) < 0)
        return -1;
    if (dev_root()) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw || chown(pgdir, pw->pw_uid, (gid_t)-1) < 0)
            return -1;
    }
    dev_say("--db: a throwaway Postgres in %s (unix socket only)", pgdir);
    fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0 && dev_root()) {
        struct passwd *pw = getpwnam("nobody");
        if (pw && fchown(fd, pw->pw_uid, (gid_t)-1) < 0) {
            close(fd);
            return -1;
        }
    }
    snprintf(prog, sizeof(prog), "%s/initdb", d->pg_bin);
    {
        char *argv[] = {prog,    "-D", data,   "-U",         "postgres",  "-A",
                        "trust", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
        status = dev_run_wait(argv, pgdir, DEV_SESSION | DEV_DROP, fd);
    }
    if (!dev_status_ok(status)) {
        fprintf(stderr, "fngate dev: initdb failed: see %s\n", logf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(conf, sizeof(conf), "%s/postgresql.conf", data);
    snprintf(extra, sizeof(extra),
             "\n# fngate dev\nunix_socket_directories = '%s'\nlisten_addresses = ''\n"
             "fsync = off\n",
             pgdir);
    {
        FILE *fp = fopen(conf, "a");
        if (!fp || fputs(extra, fp) < 0 || fclose(fp) != 0) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
    }
    snprintf(prog, sizeof(prog), "%s/pg_ctl", d->pg_bin);
    {
        char *argv[] = {prog, "-D", data, "-w", "-t", "30", "-l", logf, "start", NULL};
        status = dev_run_wait(argv, pgdir, DEV_SESSION | DEV_DROP, fd);
    }
    if (fd >= 0)
        close(fd);
    if (!dev_status_ok(status)) {
        fprintf(stderr, "fngate dev: Postgres did not start: see %s\n", logf);
        return -1;
    }
    d->pg_up = true;
    dev_say("--db: psql -h %s -U postgres postgres", pgdir);
    return 0;
}

static void dev_pg_stop(struct dev *d)
{
    char data[PATH_MAX + 16], prog[PATH_MAX + 16];
    int null_fd;

    if (!d->pg_up)
        return;
    snprintf(data, sizeof(data), "%s/pg/data", d->run);
    snprintf(prog, sizeof(prog), "%s/pg_ctl", d->pg_bin);
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    {
        char *argv[] = {prog, "-D", data, "-m", "fast", "-w", "-t", "20", "stop", NULL};
        dev_run_wait(argv, "/", DEV_SESSION | DEV_DROP, null_fd);
    }
    if (null_fd >= 0)
        close(null_fd);
    d->pg_up = false;
}

/* Waits for PID up to MS, then SIGKILLs it. */
static void dev_reap(pid_t pid, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return;
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void dev_stop(struct dev *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    dev_say("%s: stopping", why);
    if (d->ngx > 0) {
        kill(d->ngx, SIGTERM);
        dev_reap(d->ngx, DEV_STOP_WAIT_MS);
        d->ngx = 0;
    }
    if (d->gw > 0) {
        kill(d->gw, SIGTERM);
        dev_reap(d->gw, DEV_STOP_WAIT_MS);
        d->gw = 0;
    }
    dev_reqlog_tail(d);
    dev_pg_stop(d);
    if (d->base)
        event_base_loopexit(d->base, NULL);
}

/* ------------------------------------------------------------------------
 * The loop
 */

static void dev_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dev *d = arg;
    int64_t now = dev_now_ns();
    (void)fd;
    (void)what;

    for (struct dev_fn *f = d->fns; f && !d->stopping; f = f->next) {
        if (f->dirty && f->due_ns <= now)
            dev_build(d, f);
    }
    dev_reqlog_tail(d);
}

static void dev_ino_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dev_ino_read(arg, -1);
}

static void dev_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct dev *d = arg;
    int status;
    (void)what;

    if (sig != SIGCHLD) {
        d->rc = 0;
        dev_stop(d, sig == SIGINT ? "Ctrl-C" : "SIGTERM");
        return;
    }
    if (d->gw > 0 && waitpid(d->gw, &status, WNOHANG) == d->gw) {
        d->gw = 0;
        d->rc = 1;
        dev_stop(d, "the gateway exited");
    }
    if (d->ngx > 0 && waitpid(d->ngx, &status, WNOHANG) == d->ngx) {
        d->ngx = 0;
        d->rc = 1;
        dev_stop(d, "nginx exited (is the port taken? use --port)");
    }
}

static int dev_start(struct dev *d)
{
    char conf[PATH_MAX + 32], prefix[PATH_MAX + 16], ngconf[PATH_MAX + 32], sub[PATH_MAX + 16];
    char *nginx_paths[] = {"nginx", "/usr/sbin/nginx"};
    struct timeval tick = {0, DEV_TICK_MS * 1000};

    snprintf(sub, sizeof(sub), "%s/nginx", d->run);
    if (mkdir(d->staging, 0755) < 0 || mkdir(sub, 0755) < 0)
        return -1;
    chmod(d->staging, 0755);
    if (d->db && !(getenv("DATABASE_URL") && *getenv("DATABASE_URL")) && dev_pg_start(d) < 0)
        return -1;
    if (dev_write_confs(d) < 0)
        return -1;
    d->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    d->top_wd = d->ino >= 0 ? inotify_add_watch(d->ino, d->dir, DEV_TOP_MASK) : -1;
    if (d->top_wd < 0) {
        fprintf(stderr, "fngate dev: inotify on %s: %s\n", d->dir, strerror(errno));
        return -1;
    }
    /* First builds, before anything serves: the gateway starts with them. */
    dev_scan(d);
    for (struct dev_fn *f = d->fns; f; f = f->next)
        dev_build(d, f);
    snprintf(conf, sizeof(conf), "%s/fngate.conf", d->run);
    {
        char *argv[] = {d->exe, "serve", "-c", conf, NULL};
        d->gw = dev_spawn(argv, d->run, DEV_SESSION, -1);
    }
    /* The sockets exist once the pid file does (serve writes it after the
     * lock, before its functions): give it a moment. */
    snprintf(sub, sizeof(sub), "%s/sock/fngate.pid", d->run);
    for (int i = 0; i < 100 && access(sub, F_OK) < 0; i++)
        usleep(20 * 1000);
    snprintf(prefix, sizeof(prefix), "%s/nginx/", d->run);
    snprintf(ngconf, sizeof(ngconf), "%s/nginx/nginx.conf", d->run);
    {
        const char *ngx = access("/usr/sbin/nginx", X_OK) == 0 ? nginx_paths[1] : nginx_paths[0];
        char *argv[] = {(char *)ngx, "-p",     prefix, "-c",          ngconf,
                        "-e",        "stderr", "-g",   "daemon off;", NULL};
        d->ngx = dev_spawn(argv, NULL, DEV_SESSION, -1);
    }
    if (d->gw < 0 || d->ngx < 0)
        return -1;
    d->ev_ino = event_new(d->base, d->ino, EV_READ | EV_PERSIST, dev_ino_cb, d);
    d->ev_tick = event_new(d->base, -1, EV_PERSIST, dev_tick_cb, d);
    if (!d->ev_ino || !d->ev_tick || event_add(d->ev_ino, NULL) < 0 ||
        event_add(d->ev_tick, &tick) < 0)
        return -1;
    dev_say("http://127.0.0.1:%d/fn/<name> serves %s (gateway pid %d, nginx pid %d)", d->port,
            d->dir, (int)d->gw, (int)d->ngx);
    dev_say("watching %s: a change rebuilds that function; Ctrl-C stops", d->dir);
    return 0;
}

int dev_main(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"db", no_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const int sigs[3] = {SIGINT, SIGTERM, SIGCHLD};
    struct dev *d = calloc(1, sizeof(*d));
    const char *dir = "functions";
    char *end;
    int ch;
    ssize_t n;

    if (!d)
        return 1;
    d->port = 8080;
    d->rc = 1;
    d->ino = -1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            errno = 0;
            d->port = (int)strtol(optarg, &end, 10);
            if (errno || *end || d->port < 1 || d->port > 65535) {
                fprintf(stderr, "fngate dev: --port: '%s' is not a port (1..65535)\n", optarg);
                free(d);
                return 2;
            }
            break;
        case 'd':
            d->db = true;
            break;
        case 'h':
            dev_usage(stdout);
            free(d);
            return 0;
        default:
            dev_usage(stderr);
            free(d);
            return 2;
        }
    }
    if (optind < argc)
        dir = argv[optind++];
    if (optind != argc) {
        dev_usage(stderr);
        free(d);
        return 2;
    }
    if (!realpath(dir, d->dir)) {
        fprintf(stderr, "fngate dev: %s: %s\n", dir, strerror(errno));
        free(d);
        return 1;
    }
    n = readlink("/proc/self/exe", d->exe, sizeof(d->exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "fngate dev: cannot find my own program: %s\n", strerror(errno));
        free(d);
        return 1;
    }
    d->exe[n] = '\0';
    snprintf(d->run, sizeof(d->run), "%s/fngate-dev.XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(d->run)) {
        fprintf(stderr, "fngate dev: %s: %s\n", d->run, strerror(errno));
        free(d);
        return 1;
    }
    /* Instances (a uid of their own under root) and nginx's workers must
     * reach the staging folder and the sockets. */
    chmod(d->run, 0755);
    snprintf(d->staging, sizeof(d->staging), "%s/functions", d->run);
    signal(SIGPIPE, SIG_IGN);
    d->base = event_base_new();
    for (size_t i = 0; d->base && i < 3; i++) {
        d->ev_sig[i] = evsignal_new(d->base, sigs[i], dev_signal_cb, d);
        if (d->ev_sig[i])
            evsignal_add(d->ev_sig[i], NULL);
    }
    if (!d->base || dev_start(d) < 0) {
        dev_stop(d, "start-up failed");
        d->rc = 1;
    } else {
        event_base_dispatch(d->base);
    }
    dev_stop(d, "done");
    dev_rm_rf(d->run);
    dev_say("stopped; removed %s", d->run);
    for (size_t i = 0; i < 3; i++) {
        if (d->ev_sig[i])
            event_free(d->ev_sig[i]);
    }
    if (d->ev_ino)
        event_free(d->ev_ino);
    if (d->ev_tick)
        event_free(d->ev_tick);
    if (d->base)
        event_base_free(d->base);
    if (d->ino >= 0)
        close(d->ino);
    while (d->fns) {
        struct dev_fn *f = d->fns;
        d->fns = f->next;
        free(f);
    }
    n = d->rc;
    free(d);
    return (int)n;
}
