/*
 * Process creation with vfork: the supervisor may hold a few megabytes of
 * mappings, and vfork skips copying its page tables, which is a measurable
 * share of a one-millisecond cold start.  The child between vfork and exec
 * only makes system calls on data prepared beforehand (no malloc, no stdio,
 * no libevent), with every signal blocked until its dispositions are reset,
 * so no handler of the supervisor can run in the borrowed address space.
 * What the child does to itself before the exec is childsetup.c's, shared
 * with spare processes.
 */
#include "config.h"

#include "proc.h"

#include "childsetup.h"
#include "log.h"
#include "warden.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* Signals whose disposition is not the default in the gateway (its own
 * handlers, SIGPIPE ignored, anything ignored by whoever started it),
 * scanned once: the child resets just these instead of making a system call
 * for every signal number on each spawn. */
static int proc_sigs[NSIG];
static int proc_nsigs = -1;
/* Opened once: every instance's unused descriptors are copies of it. */
static int proc_devnull = -1;

static void proc_signals_scan(void)
{
    struct sigaction sa;

    proc_nsigs = 0;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
            continue;
        if (sa.sa_handler != SIG_DFL)
            proc_sigs[proc_nsigs++] = sig;
    }
}

/* Runs in the vfork child; never returns.  CS was filled before the vfork:
 * nothing here allocates. */
static void proc_child(const struct childsetup *cs) __attribute__((noreturn, noinline));
static void proc_child(const struct childsetup *cs)
{
    const char *what = "set-up";
    int rc = childsetup_apply(cs, &what);

    if (rc == -2)
        _exit(0);
    if (rc < 0)
        childsetup_fail(what, 126);
    if (cs->execve_ns) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        *cs->execve_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    execve(cs->path, cs->argv, cs->envp);
    errno = errno ? errno : ENOEXEC;
    {
        const char *prefix = "fngate: cannot exec ";
        const char *err = strerror(errno);
        (void)!write(2, prefix, strlen(prefix));
        (void)!write(2, cs->path, strlen(cs->path));
        (void)!write(2, ": ", 2);
        (void)!write(2, err, strlen(err));
        (void)!write(2, "\n", 1);
    }
    _exit(127);
}

pid_t proc_spawn(const struct childsetup *spec, int *log_fd)
{
    struct childsetup cs = *spec; /* the child's own part is ours to fill */
    int pipefd[2] = {-1, -1};
    sigset_t all, old;
    pid_t pid;

    if (proc_nsigs < 0)
        proc_signals_scan();
    if (proc_devnull < 0)
        proc_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (proc_devnull < 0) {
        log_warn("open /dev/null");
        return -1;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        log_warn("pipe2");
        return -1;
    }
    cs.log_fd = pipefd[1];
    cs.devnull = proc_devnull;
    cs.sigs = proc_sigs;
    cs.nsigs = proc_nsigs;
    cs.parent = getpid();

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = vfork();
    if (pid == 0)
        proc_child(&cs);
    sigprocmask(SIG_SETMASK, &old, NULL);

    close(pipefd[1]);
    if (pid < 0) {
        log_warn("vfork");
        close(pipefd[0]);
        return -1;
    }
    /* Its own group (the child's setsid): the warden kills it if we die. */
    warden_add(pid);
    fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK);
    *log_fd = pipefd[0];
    return pid;
}

/* Children the gateway had before it started anything (in a container,
 * the nginx its entry point started before becoming fngate): never ours to
 * kill. */
#define PROC_INHERITED_MAX 64
static pid_t proc_inherited[PROC_INHERITED_MAX];
static int proc_ninherited;

static bool proc_note_inherited(pid_t pid, void *arg)
{
    (void)arg;
    if (proc_ninherited < PROC_INHERITED_MAX)
        proc_inherited[proc_ninherited++] = pid;
    return true; /* known: nothing is killed */
}

void proc_reaper_init(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        log_warn("PR_SET_CHILD_SUBREAPER: orphans of unsandboxed functions go to init");
    proc_ninherited = 0;
    (void)proc_orphans_kill(proc_note_inherited, NULL);
}

/* The real uid of PID, or -1. */
static long proc_uid_of(pid_t pid)
{
    char path[64], line[256];
    long uid = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    fp = fopen(path, "re");
    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "Uid:", 4) == 0) {
            uid = strtol(line + 4, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return uid;
}

void proc_group_kill(pid_t pgid)
{
    /* The pgid stays reserved while any member lives, so this never hits
     * a stranger's group; ESRCH just means nothing was left. */
    if (pgid > 1 && kill(-pgid, SIGKILL) < 0 && errno != ESRCH)
        log_warn("kill(-%d)", (int)pgid);
}

/* Whether PID is a child to kill, and kills it and its group. */
static int proc_orphan_one(pid_t pid, bool (*known)(pid_t pid, void *arg), void *arg)
{
    pid_t group;

    if (pid <= 1 || known(pid, arg))
        return 0;
    /* Still in a live instance's group (a sandboxed instance cannot leave
     * it): that instance's, killed with its group when it is reaped, not
     * whenever another instance happens to exit.  An instance is its own
     * session, so no process outside it can join its group. */
    group = getpgid(pid);
    if (group > 1 && group != pid && known(group, arg))
        return 0;
    for (int i = 0; i < proc_ninherited; i++) {
        if (proc_inherited[i] == pid)
            return 0;
    }
    /* As root, what a function starts is never root (its uid, and
     * no_new_privs): a root orphan came from elsewhere (fngate as a
     * container's PID 1 adopts every orphan in it). */
    if (geteuid() == 0 && proc_uid_of(pid) == 0)
        return 0;
    /* Its own group too: it may have children of its own. */
    kill(pid, SIGKILL);
    proc_group_kill(pid);
    return 1;
}

/* Without CONFIG_PROC_CHILDREN: every /proc/<pid>/stat whose parent is us. */
static int proc_orphans_scan(bool (*known)(pid_t pid, void *arg), void *arg)
{
    char path[300], buf[512];
    struct dirent *de;
    DIR *d = opendir("/proc");
    pid_t self = getpid();
    int killed = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char *rp;
        int fd;
        ssize_t n;
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* comm may hold anything: the fields follow the last ')'. */
        rp = strrchr(buf, ')');
        if (rp && strtol(rp + 4, NULL, 10) == self)
            killed += proc_orphan_one((pid_t)strtol(de->d_name, NULL, 10), known, arg);
    }
    closedir(d);
    return killed;
}

int proc_orphans_kill(bool (*known)(pid_t pid, void *arg), void *arg)
{
    char path[300], buf[64];
    struct dirent *de;
    DIR *d = opendir("/proc/self/task");
    int killed = 0;
    bool listed = false;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        FILE *fp;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
        fp = fopen(path, "re");
        if (!fp)
            continue;
        listed = true;
        while (fscanf(fp, "%63s", buf) == 1)
            killed += proc_orphan_one((pid_t)strtol(buf, NULL, 10), known, arg);
        fclose(fp);
    }
    closedir(d);
    return listed ? killed : proc_orphans_scan(known, arg);
}
