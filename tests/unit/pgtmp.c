/*
 * Starts and stops a private PostgreSQL cluster for unit tests.  The server
 * runs from a mkdtemp directory with TCP disabled, so parallel test runs and
 * any real server on the machine never see each other; a watchdog process in
 * its own session holds the other end of a pipe from the test process and
 * cleans up when that pipe closes, so even a test killed by a sanitizer or a
 * signal leaves no postmaster or directory behind.
 */
#include "config.h"

#include "pgtmp.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGTMP_DEFAULT_BINDIR "/usr/lib/postgresql/15/bin"

static int pgtmp_fail(struct pgtmp *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pgtmp_fail(struct pgtmp *pg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(pg->err, sizeof(pg->err), fmt, ap);
    va_end(ap);
    return -1;
}

static int pgtmp_has_initdb(const char *bindir)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/initdb", bindir);
    return access(path, X_OK) == 0;
}

static int pgtmp_find_bindir(struct pgtmp *pg)
{
    const char *env = getenv("PGTMP_BINDIR");
    glob_t g;
    size_t i;
    int found = 0;

    if (env != NULL && *env != '\0') {
        snprintf(pg->bindir, sizeof(pg->bindir), "%s", env);
        return pgtmp_has_initdb(pg->bindir) ? 0 : -1;
    }
    snprintf(pg->bindir, sizeof(pg->bindir), "%s", PGTMP_DEFAULT_BINDIR);
    if (pgtmp_has_initdb(pg->bindir))
        return 0;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
        /* glob sorts: take the last, which is the newest for same-width names. */
        for (i = g.gl_pathc; i > 0 && !found; i--) {
            size_t n = strlen(g.gl_pathv[i - 1]) - strlen("/initdb");
            if (n < sizeof(pg->bindir)) {
                memcpy(pg->bindir, g.gl_pathv[i - 1], n);
                pg->bindir[n] = '\0';
                found = 1;
            }
        }
        globfree(&g);
    }
    return found ? 0 : -1;
}

/* In a child about to exec a server binary: drop root, quiet the output. */
static void pgtmp_child_setup(const char *dir)
{
    char log[256];
    struct passwd *pw;
    int fd;

    if (chdir(dir) < 0)
        _exit(126);
    snprintf(log, sizeof(log), "%s/setup.log", dir);
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    for (fd = 3; fd < 1024; fd++)
        close(fd);
    if (geteuid() == 0) {
        pw = getpwnam("nobody");
        if (pw == NULL || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
            setuid(pw->pw_uid) < 0)
            _exit(126);
    }
}

/* Runs BINDIR/PROG with ARGS (NULL-terminated, ARGS[0] unused) and waits. */
static int pgtmp_run(const struct pgtmp *pg, const char *prog, char **args)
{
    char path[512];
    pid_t pid;
    int status;

    snprintf(path, sizeof(path), "%s/%s", pg->bindir, prog);
    args[0] = path;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        pgtmp_child_setup(pg->dir);
        execv(path, args);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int pgtmp_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void pgtmp_server_stop(const struct pgtmp *pg)
{
    char data[256];
    char *args[] = {NULL, "-D", data, "-m", "immediate", "-w", "-s", "stop", NULL};
    struct stat st;

    snprintf(data, sizeof(data), "%s/data/postmaster.pid", pg->dir);
    if (stat(data, &st) == 0) {
        snprintf(data, sizeof(data), "%s/data", pg->dir);
        pgtmp_run(pg, "pg_ctl", args);
    }
}

/* The watchdog: waits for the test process's end of the pipe to close, then
 * stops the server and removes the directory. */
static void pgtmp_watch(const struct pgtmp *pg, int rfd)
{
    char c;
    ssize_t k;

    setsid(); /* a ^C to the test's process group must not kill the cleaner */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    do
        k = read(rfd, &c, 1);
    while (k > 0 || (k < 0 && errno == EINTR));
    pgtmp_server_stop(pg);
    nftw(pg->dir, pgtmp_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    _exit(0);
}

static void pgtmp_dump_log(const struct pgtmp *pg, const char *name)
{
    char path[256], line[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", pg->dir, name);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "pgtmp %s: %s", name, line);
    fclose(f);
}

int pgtmp_start(struct pgtmp *pg)
{
    const char *tmp = getenv("TMPDIR");
    char data[256], opts[512];
    char *initdb_args[] = {NULL,    "-D", data,   "-U",         "postgres",  "-A",
                           "trust", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    char *start_args[] = {NULL, "-D", data, "-l", NULL,    "-o", opts,
                          "-w", "-t", "60", "-s", "start", NULL};
    char logpath[256];
    struct passwd *pw;
    int p[2];

    memset(pg, 0, sizeof(*pg));
    pg->wfd = -1;
    pg->watchdog = -1;
    if (pgtmp_find_bindir(pg) < 0) {
        pg->unavailable = 1;
        return pgtmp_fail(pg, "no PostgreSQL server binaries (set PGTMP_BINDIR)");
    }
    /* The socket path must fit in sun_path and be reachable by nobody. */
    if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 60 || geteuid() == 0)
        tmp = "/tmp";
    snprintf(pg->dir, sizeof(pg->dir), "%s/pgtmp.XXXXXX", tmp);
    if (mkdtemp(pg->dir) == NULL)
        return pgtmp_fail(pg, "mkdtemp %s: %s", pg->dir, strerror(errno));
    if (geteuid() == 0) {
        pw = getpwnam("nobody");
        if (pw == NULL || chown(pg->dir, pw->pw_uid, pw->pw_gid) < 0) {
            rmdir(pg->dir);
            return pgtmp_fail(pg, "cannot hand %s to user nobody", pg->dir);
        }
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        rmdir(pg->dir);
        return pgtmp_fail(pg, "pipe: %s", strerror(errno));
    }
    pg->watchdog = fork();
    if (pg->watchdog < 0) {
        close(p[0]);
        close(p[1]);
        rmdir(pg->dir);
        return pgtmp_fail(pg, "fork: %s", strerror(errno));
    }
    if (pg->watchdog == 0) {
        close(p[1]);
        pgtmp_watch(pg, p[0]);
    }
    close(p[0]);
    pg->wfd = p[1];

    snprintf(data, sizeof(data), "%s/data", pg->dir);
    if (pgtmp_run(pg, "initdb", initdb_args) < 0) {
        pgtmp_dump_log(pg, "setup.log");
        pgtmp_fail(pg, "initdb failed in %s", pg->dir);
        pgtmp_stop(pg);
        return -1;
    }
    snprintf(logpath, sizeof(logpath), "%s/postgres.log", pg->dir);
    start_args[4] = logpath;
    snprintf(opts, sizeof(opts),
             "-k %s -c listen_addresses='' -c fsync=off -c full_page_writes=off "
             "-c synchronous_commit=off -c max_connections=20 -c shared_buffers=16MB",
             pg->dir);
    if (pgtmp_run(pg, "pg_ctl", start_args) < 0) {
        pgtmp_dump_log(pg, "setup.log");
        pgtmp_dump_log(pg, "postgres.log");
        pgtmp_fail(pg, "pg_ctl start failed in %s", pg->dir);
        pgtmp_stop(pg);
        return -1;
    }
    snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s dbname=postgres user=postgres", pg->dir);
    return 0;
}

void pgtmp_stop(struct pgtmp *pg)
{
    int status;

    if (pg == NULL || pg->wfd < 0)
        return;
    close(pg->wfd);
    pg->wfd = -1;
    while (waitpid(pg->watchdog, &status, 0) < 0 && errno == EINTR)
        ;
    pg->watchdog = -1;
}

const char *pgtmp_conninfo(const struct pgtmp *pg)
{
    return pg->conninfo;
}
