/*
 * Control of one gateway by its socket_dir.  `kill -HUP $(pidof fngate)`
 * signals every fngate on the host; instead the gateway that holds
 * <socket_dir>/fngate.lock writes <socket_dir>/fngate.pid, and the commands
 * find their gateway from the same configuration file.  A pid file alone can
 * be stale (a crash leaves it behind, and the pid is then reused): the lock
 * says whether a gateway runs there at all, and /proc/locks, where the
 * kernel lists the pid that took each flock, says which process it is.
 */
#include "config.h"

#include "ctl.h"

#include "conf.h"
#include "preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define CTL_PID_FILE "fngate.pid"
#define CTL_LOCK_FILE "fngate.lock"
#define CTL_RELOAD_FILE "fngate.reload"
#define CTL_RELOAD_WAIT_MS 10000
#define CTL_WAIT_STEP_MS 50
#define CTL_WAIT_NOTE_MS 5000

int ctl_pid_write(const char *socket_dir, char *err, size_t errlen)
{
    char path[4096], tmp[4096], buf[32];
    int fd, n;

    snprintf(path, sizeof(path), "%s/" CTL_PID_FILE, socket_dir);
    snprintf(tmp, sizeof(tmp), "%s/." CTL_PID_FILE ".%d", socket_dir, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* A reader sees the old file or the whole new one, never half of it. */
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static pid_t ctl_pid_read(const char *socket_dir)
{
    char path[4096], buf[32];
    ssize_t r;
    long v;
    char *end;
    int fd;

    snprintf(path, sizeof(path), "%s/" CTL_PID_FILE, socket_dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return -1;
    buf[r] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || end == buf || (*end != '\n' && *end != '\0') || v <= 1 || v > INT32_MAX)
        return -1;
    return (pid_t)v;
}

void ctl_pid_remove(const char *socket_dir)
{
    char path[4096];

    if (ctl_pid_read(socket_dir) != getpid())
        return;
    snprintf(path, sizeof(path), "%s/" CTL_PID_FILE, socket_dir);
    unlink(path);
}

/* Opens the lock file; returns the fd (read-only), or -1 with errno. */
static int ctl_lock_open(const char *socket_dir)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/" CTL_LOCK_FILE, socket_dir);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* True when FD's file is flock()ed by someone (a shared lock would be
 * granted unless a gateway holds its exclusive one). */
static bool ctl_locked(int fd)
{
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        return false;
    }
    return errno == EWOULDBLOCK;
}

bool ctl_running(const char *socket_dir)
{
    int fd = ctl_lock_open(socket_dir);
    bool locked;

    if (fd < 0)
        return false;
    locked = ctl_locked(fd);
    close(fd);
    return locked;
}

/* The pid holding an exclusive FLOCK on FD's file according to /proc/locks,
 * or -1 when it cannot be told (no /proc, or another pid namespace). */
static pid_t ctl_lock_holder(int fd)
{
    struct stat st;
    char line[256];
    FILE *fp;
    pid_t holder = -1;

    if (fstat(fd, &st) < 0)
        return -1;
    fp = fopen("/proc/locks", "re");
    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp)) {
        char type[16], mode[16], rw[16];
        unsigned maj, min;
        unsigned long long ino;
        int pid;
        /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; lines with
         * " -> " are waiters, which the format below does not match. */
        if (sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%llu", type, mode, rw, &pid, &maj, &min,
                   &ino) != 7)
            continue;
        if (strcmp(type, "FLOCK") == 0 && strcmp(rw, "WRITE") == 0 && ino == st.st_ino &&
            makedev(maj, min) == st.st_dev && pid > 0) {
            holder = (pid_t)pid;
            break;
        }
    }
    fclose(fp);
    return holder;
}

int ctl_find(const char *socket_dir, pid_t *pid, char *err, size_t errlen)
{
    int fd = ctl_lock_open(socket_dir);
    pid_t from_file, holder;

    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "no fngate is running with socket_dir %s", socket_dir);
        else
            snprintf(err, errlen, "%s/" CTL_LOCK_FILE ": cannot open: %s", socket_dir,
                     strerror(errno));
        return -1;
    }
    if (!ctl_locked(fd)) {
        close(fd);
        snprintf(err, errlen, "no fngate is running with socket_dir %s", socket_dir);
        return -1;
    }
    from_file = ctl_pid_read(socket_dir);
    holder = ctl_lock_holder(fd);
    close(fd);
    /* The kernel's word wins over a file anyone with access could edit; the
     * file is for when /proc/locks cannot tell. */
    if (holder > 0)
        *pid = holder;
    else if (from_file > 0)
        *pid = from_file;
    else {
        snprintf(err, errlen,
                 "a gateway holds %s/" CTL_LOCK_FILE " but %s/" CTL_PID_FILE
                 " is missing or unreadable",
                 socket_dir, socket_dir);
        return -1;
    }
    return 0;
}

void ctl_reload_done(const char *socket_dir, bool ok, const char *text)
{
    static unsigned long seq;
    char path[4096], tmp[4096];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/" CTL_RELOAD_FILE, socket_dir);
    snprintf(tmp, sizeof(tmp), "%s/." CTL_RELOAD_FILE ".%d", socket_dir, (int)getpid());
    fp = fopen(tmp, "we");
    if (!fp)
        return;
    /* pid and a sequence number make every verdict differ from the last. */
    fprintf(fp, "%d %lu %s %s\n", (int)getpid(), ++seq, ok ? "ok" : "refused", text);
    if (fclose(fp) != 0 || rename(tmp, path) < 0)
        unlink(tmp);
}

/* The verdict file's text, "" when there is none yet. */
static void ctl_reload_read(const char *socket_dir, char *out, size_t outlen)
{
    char path[4096];
    FILE *fp;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/" CTL_RELOAD_FILE, socket_dir);
    fp = fopen(path, "re");
    if (!fp)
        return;
    if (!fgets(out, (int)outlen, fp))
        out[0] = '\0';
    fclose(fp);
    out[strcspn(out, "\n")] = '\0';
}

static void ctl_report(void *arg, const char *problem)
{
    (*(int *)arg)++;
    fprintf(stderr, "%s\n", problem);
}

static void ctl_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Waits for a verdict other than BEFORE and prints it; the exit code. */
static int ctl_reload_wait(const char *socket_dir, pid_t pid, const char *before)
{
    char now[CONF_ERR_MAX * 3];

    for (long waited = 0; waited < CTL_RELOAD_WAIT_MS; waited += CTL_WAIT_STEP_MS) {
        char word[16];
        int n = 0;
        ctl_reload_read(socket_dir, now, sizeof(now));
        if (strcmp(now, before) != 0 && sscanf(now, "%*d %*u %15s %n", word, &n) == 1 && n > 0) {
            if (strcmp(word, "ok") == 0) {
                printf("fngate (pid %d, socket_dir %s): %s\n", (int)pid, socket_dir, now + n);
                return 0;
            }
            fprintf(stderr,
                    "fngate reload: refused by the gateway (pid %d), which keeps its "
                    "running configuration: %s\n",
                    (int)pid, now + n);
            return 1;
        }
        ctl_sleep_ms(CTL_WAIT_STEP_MS);
    }
    fprintf(stderr, "fngate reload: pid %d did not answer within %d s (stopping?): see its log\n",
            (int)pid, CTL_RELOAD_WAIT_MS / 1000);
    return 1;
}

int ctl_command(const char *conf_path, bool stop)
{
    char before[CONF_ERR_MAX * 3] = "";
    char err[CONF_ERR_MAX];
    const char *what = stop ? "stop" : "reload";
    int problems = 0;
    /* A reload would be refused anyway: say why, every problem, and send
     * nothing. */
    struct conf *c = stop ? conf_load(conf_path, err, sizeof(err))
                          : conf_load_report(conf_path, ctl_report, &problems);
    pid_t pid;
    int rc = 1;

    if (!c && stop) {
        /* Stopping must not depend on the file being right: what socket_dir
         * it names is enough. */
        int errors;
        c = conf_load_lenient(conf_path, &errors);
        if (c)
            fprintf(stderr, "fngate stop: %s (%d error%s in all; its socket_dir is %s)\n", err,
                    errors, errors == 1 ? "" : "s", c->gw.socket_dir);
    }
    if (!c) {
        if (stop)
            fprintf(stderr, "fngate stop: %s\n", err);
        else
            fprintf(stderr, "fngate reload: not sent: the gateway would refuse %s\n",
                    problems == 1 ? "this" : "these");
        return 1;
    }
    if (ctl_find(c->gw.socket_dir, &pid, err, sizeof(err)) < 0) {
        fprintf(stderr, "fngate %s: %s\n", what, err);
        goto out;
    }
    if (!stop) {
        /* What the gateway would refuse, said here, before any signal. */
        preflight_gateway(c, ctl_report, &problems);
        if (problems) {
            fprintf(stderr, "fngate reload: not sent: the gateway would refuse %s\n",
                    problems == 1 ? "this" : "these");
            goto out;
        }
        ctl_reload_read(c->gw.socket_dir, before, sizeof(before));
    }
    if (kill(pid, stop ? SIGTERM : SIGHUP) < 0) {
        fprintf(stderr, "fngate %s: cannot signal pid %d (the gateway of %s): %s\n", what, (int)pid,
                c->gw.socket_dir, strerror(errno));
        goto out;
    }
    if (!stop) {
        rc = ctl_reload_wait(c->gw.socket_dir, pid, before);
        goto out;
    }
    /* A stop finishes queued and running requests first: wait for the lock
     * to go, which happens only when the gateway has exited. */
    for (long waited = 0; ctl_running(c->gw.socket_dir); waited += CTL_WAIT_STEP_MS) {
        if (waited == CTL_WAIT_NOTE_MS)
            printf("fngate (pid %d): waiting for running requests to finish...\n", (int)pid);
        fflush(stdout);
        ctl_sleep_ms(CTL_WAIT_STEP_MS);
    }
    printf("fngate (pid %d, socket_dir %s): stopped\n", (int)pid, c->gw.socket_dir);
    rc = 0;
out:
    conf_free(c);
    return rc;
}
