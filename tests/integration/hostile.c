/*
 * hostile: the attack suite's function (tests/integration/test_attack.py).
 * Each request makes one attempt on another process or on the gateway and
 * answers what the kernel said, so the test can assert the exact errno:
 *
 *   ?attack=kill&pid=P         kill(P, SIGCONT)
 *   ?attack=ptrace&pid=P       ptrace(PTRACE_ATTACH, P)
 *   ?attack=vmread&pid=P       process_vm_readv of one byte of P
 *   ?attack=environ&pid=P      open + read /proc/P/environ
 *   ?attack=fd&pid=P&fd=N      open /proc/P/fd/N read-write
 *   ?attack=getfd&pid=P&fd=N   pidfd_open(P) then pidfd_getfd(N)
 *   ?attack=connect&path=S     socket(AF_UNIX) + connect to S
 *   ?attack=escape             a double fork whose middle child tries setsid:
 *                              a grandchild that sleeps forever, orphaned;
 *                              answers setsid's errno and the grandchild
 *   ?attack=garbage            garbage frames on fd 3 (the database channel),
 *                              then a query through the SDK
 *   ?attack=read&path=F        open F for reading
 *   ?attack=write&path=F       create F for writing
 *   ?attack=bind               bind a TCP socket on 127.0.0.1
 *   ?attack=self               its own state: dumpable, CLOEXEC of fds 0 and 3
 *   ?attack=alloc&mb=N         malloc and touch N MiB (memory_limit)
 *   ?attack=nofile             open /dev/null until refused (open_files):
 *                              how many it got, and the errno
 *   ?attack=creds              its uid, gid, groups, capabilities,
 *                              no_new_privs and seccomp mode as
 *                              /proc/self/status says them
 *   ?attack=signal&how=H&pid=P&sig=S
 *                              one signal by way H: kill(P), tkill(P),
 *                              tgkill(P, P), sigqueue (rt_sigqueueinfo(P)),
 *                              tgsigqueue (rt_tgsigqueueinfo(P, P)), pidfd
 *                              (pidfd_open(P) + pidfd_send_signal) or
 *                              procfd (open /proc/P + pidfd_send_signal);
 *                              P may be 0, -1 or -PGID; pid=self is getpid(),
 *                              pid=-self its own process group
 *   ?attack=linger             fork a child that ignores SIGTERM, keeps
 *                              every descriptor (fd 0: the listening
 *                              socket) and sleeps forever; answers its pid
 *   ?attack=noterm             the instance ignores SIGTERM from now on and
 *                              clears its PR_SET_PDEATHSIG (answers that
 *                              prctl's errno): a gateway's death is no
 *                              signal to it
 *   ?attack=prlimit&pid=P      prlimit64(P, RLIMIT_MSGQUEUE, 12345/12345):
 *                              another process's limits (RLIMIT_CPU or
 *                              RLIMIT_NOFILE there would kill or cripple it)
 *   ?attack=nice&pid=P&who=W   setpriority(W = process|pgrp|user, P, 7)
 *   ?attack=sched&pid=P        sched_setscheduler(P, SCHED_IDLE)
 *   ?attack=affinity&pid=P     sched_setaffinity(P, CPU 0 only)
 *   ?attack=ioprio&pid=P       ioprio_set(IOPRIO_WHO_PROCESS, P, idle class)
 *   ?attack=setown&pid=P&sig=S a pipe with O_ASYNC, F_SETSIG S and F_SETOWN
 *                              P, then a write to it: the kernel's SIGIO
 *                              path sends S to P (answers F_SETOWN's errno)
 *   ?attack=state              everything a process inherits: its open
 *                              descriptors (target, flags, CLOEXEC), the
 *                              environment, cwd, umask, every rlimit,
 *                              signal mask and dispositions, the status
 *                              lines of credentials and sandbox, dumpable,
 *                              pdeathsig, nice, oom_score_adj, cgroup
 *
 * The answer is {"attack": ..., "errno": E, "error": "strerror"} with E = 0
 * when the attempt succeeded; extra fields where an attack has more to say.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <fngate.h>

extern char **environ;

static long arg_long(fn_req *req, const char *name, long dflt)
{
    const char *v = fn_arg(req, name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

/* The lines KEYS (N of them) of /proc/self/status, as {key: value}. */
static json_t *status_lines(const char *const *keys, size_t nkeys)
{
    json_t *out = json_object();
    char line[512];
    FILE *f = fopen("/proc/self/status", "re");

    while (f && fgets(line, sizeof(line), f)) {
        for (size_t i = 0; i < nkeys; i++) {
            size_t n = strlen(keys[i]);
            if (strncmp(line, keys[i], n) == 0) {
                char *v = line + n;
                v += strspn(v, " \t");
                v[strcspn(v, "\n")] = '\0';
                json_object_set_new(out, keys[i], json_string(v));
            }
        }
    }
    if (f)
        fclose(f);
    return out;
}

/* The lines of /proc/self/status that say what a process may do. */
static int attack_creds(fn_res *res)
{
    static const char *const keys[] = {"Uid:",    "Gid:",    "Groups:", "CapInh:",     "CapPrm:",
                                       "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"};
    return fn_send_json_new(res, 200, status_lines(keys, sizeof(keys) / sizeof(keys[0])));
}

/* One file's text, whitespace-trimmed (empty when unreadable). */
static json_t *state_file(const char *path)
{
    char buf[4096];
    size_t n = 0;
    FILE *f = fopen(path, "re");

    if (f) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return json_string(buf);
}

/* What a process inherits from whoever made it: the spare-born instance
 * must get exactly what the exec-born one gets. */
static int attack_state(fn_res *res)
{
    static const char *const keys[] = {"Uid:",
                                       "Gid:",
                                       "Groups:",
                                       "CapInh:",
                                       "CapPrm:",
                                       "CapEff:",
                                       "CapBnd:",
                                       "CapAmb:",
                                       "NoNewPrivs:",
                                       "Seccomp:",
                                       "Seccomp_filters:",
                                       "SigBlk:",
                                       "SigIgn:",
                                       "SigCgt:",
                                       "Speculation_Store_Bypass:",
                                       "NSpid:",
                                       "NSpgid:",
                                       "NSsid:"};
    json_t *out = json_object(), *fds = json_object(), *env = json_object();
    json_t *st = status_lines(keys, sizeof(keys) / sizeof(keys[0]));
    char line[512], path[64], target[4096];
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    mode_t um = umask(0);
    int sig = 0;

    umask(um);
    while (d && (de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name);
        ssize_t n;
        if (de->d_name[0] == '.' || fd == dirfd(d))
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        /* a socket's or pipe's inode differs between any two processes */
        if (strncmp(target, "socket:", 7) == 0)
            strcpy(target, "socket");
        else if (strncmp(target, "pipe:", 5) == 0)
            strcpy(target, "pipe");
        else if (strncmp(target, "anon_inode:", 11) == 0)
            target[strcspn(target, "]") + 1] = '\0';
        snprintf(line, sizeof(line), "%s cloexec=%d flags=%o", target,
                 (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, (unsigned)fcntl(fd, F_GETFL));
        json_object_set_new(fds, de->d_name, json_string(line));
    }
    if (d)
        closedir(d);
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        snprintf(line, sizeof(line), "%.*s", (int)(eq - *e), *e);
        json_object_set_new(env, line, json_string(eq + 1));
    }
    prctl(PR_GET_PDEATHSIG, &sig);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    json_object_set_new(out, "fds", fds);
    json_object_set_new(out, "env", env);
    json_object_set_new(out, "status", st);
    json_object_set_new(out, "cwd", json_string(getcwd(target, sizeof(target)) ? target : ""));
    json_object_set_new(out, "umask", json_integer(um));
    json_object_set_new(out, "limits", state_file("/proc/self/limits"));
    json_object_set_new(out, "cgroup", state_file("/proc/self/cgroup"));
    json_object_set_new(out, "oom_score_adj", state_file("/proc/self/oom_score_adj"));
    json_object_set_new(out, "dumpable", json_integer(prctl(PR_GET_DUMPABLE)));
    json_object_set_new(out, "pdeathsig", json_integer(sig));
    json_object_set_new(out, "nice", json_integer(nice));
    json_object_set_new(out, "sid_is_pid", json_boolean(getsid(0) == getpid()));
    json_object_set_new(out, "pgid_is_pid", json_boolean(getpgrp() == getpid()));
    json_object_set_new(out, "pid", json_integer(getpid()));
    return fn_send_json_new(res, 200, out);
}

static int answer(fn_res *res, const char *attack, int rc, int err)
{
    int e = rc < 0 ? err : 0;
    return fn_send_jsonf(res, 200, "{s:s, s:i, s:s}", "attack", attack, "errno", e, "error",
                         e ? strerror(e) : "");
}

/* Reaching another process without a signal or ptrace: what the kernel
 * allows between processes of one uid (the no-root case). */
static int attack_owner(fn_req *req, fn_res *res, const char *attack)
{
    pid_t pid = (pid_t)arg_long(req, "pid", 0);
    int rc = -1, e = EINVAL;

    if (strcmp(attack, "prlimit") == 0) {
        struct rlimit rl = {12345, 12345};
        rc = (int)syscall(SYS_prlimit64, pid, RLIMIT_MSGQUEUE, &rl, NULL);
    } else if (strcmp(attack, "nice") == 0) {
        const char *w = fn_arg(req, "who");
        int which = w && strcmp(w, "user") == 0   ? PRIO_USER
                    : w && strcmp(w, "pgrp") == 0 ? PRIO_PGRP
                                                  : PRIO_PROCESS;
        rc = setpriority(which, (id_t)pid, 7);
    } else if (strcmp(attack, "sched") == 0) {
        struct sched_param sp = {0};
        rc = (int)syscall(SYS_sched_setscheduler, pid, SCHED_IDLE, &sp);
    } else if (strcmp(attack, "affinity") == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        rc = (int)syscall(SYS_sched_setaffinity, pid, sizeof(set), &set);
    } else if (strcmp(attack, "ioprio") == 0) {
        /* IOPRIO_WHO_PROCESS, class IDLE (3) << 13 */
        rc = (int)syscall(SYS_ioprio_set, 1, pid, 3 << 13);
    } else if (strcmp(attack, "setown") == 0) {
        int p[2];
        if (pipe(p) < 0)
            return answer(res, attack, -1, errno);
        rc = fcntl(p[0], F_SETSIG, (int)arg_long(req, "sig", SIGCONT));
        if (rc == 0)
            rc = fcntl(p[0], F_SETOWN, pid);
        e = errno;
        if (rc == 0 && fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) == 0)
            (void)!write(p[1], "x", 1);
        close(p[0]);
        close(p[1]);
        return answer(res, attack, rc, e);
    }
    e = errno;
    return answer(res, attack, rc, e);
}

/* The child (not a group leader, so setsid is its to try) leaves the
 * session if it may and forks the grandchild; it reports both and exits,
 * orphaning the grandchild. */
static int attack_escape(fn_res *res)
{
    int pfd[2];
    int report[2] = {-1, -1}; /* setsid errno, grandchild pid */
    pid_t child;

    if (pipe(pfd) < 0)
        return answer(res, "escape", -1, errno);
    child = fork();
    if (child == 0) {
        int r[2];
        close(pfd[0]);
        r[0] = setsid() < 0 ? errno : 0;
        r[1] = (int)fork();
        if (r[1] == 0) {
            close(pfd[1]);
            for (int i = 0; i < 1024; i++)
                if (i != 3)
                    close(i);
            for (;;)
                pause();
        }
        (void)!write(pfd[1], r, sizeof(r));
        _exit(0);
    }
    close(pfd[1]);
    if (child > 0) {
        (void)!read(pfd[0], report, sizeof(report));
        waitpid(child, NULL, 0);
    }
    close(pfd[0]);
    return fn_send_jsonf(res, 200, "{s:s, s:i, s:s, s:i, s:i}", "attack", "escape", "errno",
                         report[0], "error", report[0] > 0 ? strerror(report[0]) : "", "grandchild",
                         report[1], "pid", (int)getpid());
}

/* One signal to PID by way HOW: what the kernel (or the seccomp filter)
 * answers.  SIGCONT and SIGSTOP are what an attacker would use to freeze
 * another function; the test picks the signal. */
static int attack_signal(fn_req *req, fn_res *res)
{
    const char *how = fn_arg(req, "how");
    const char *p = fn_arg(req, "pid");
    pid_t pid = p && strcmp(p, "self") == 0    ? getpid()
                : p && strcmp(p, "-self") == 0 ? -getpid()
                                               : (pid_t)arg_long(req, "pid", 0);
    int sig = (int)arg_long(req, "sig", SIGCONT);
    siginfo_t si;
    long rc = -1;
    int e = EINVAL, fd;

    memset(&si, 0, sizeof(si));
    si.si_signo = sig;
    si.si_code = SI_QUEUE; /* what sigqueue(3) sends: allowed to another process */
    si.si_pid = getpid();
    si.si_uid = getuid();
    if (!how)
        how = "kill";
    errno = 0;
    if (strcmp(how, "kill") == 0)
        rc = kill(pid, sig);
    else if (strcmp(how, "tkill") == 0)
        rc = syscall(SYS_tkill, pid, sig);
    else if (strcmp(how, "tgkill") == 0)
        rc = syscall(SYS_tgkill, pid, pid, sig);
    else if (strcmp(how, "sigqueue") == 0)
        rc = syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
    else if (strcmp(how, "tgsigqueue") == 0)
        rc = syscall(SYS_rt_tgsigqueueinfo, pid, pid, sig, &si);
    else if (strcmp(how, "pidfd") == 0 || strcmp(how, "procfd") == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d", (int)pid);
        fd = how[1] == 'i' ? (int)syscall(SYS_pidfd_open, pid, 0)
                           : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return fn_send_jsonf(res, 200, "{s:s, s:i, s:s, s:s}", "attack", "signal", "errno",
                                 errno, "error", strerror(errno), "step", "open");
        rc = syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
        e = errno;
        close(fd);
        errno = e;
    } else
        return fn_error(res, 400, "unknown way '%s'", how);
    e = errno;
    return fn_send_jsonf(res, 200, "{s:s, s:i, s:s, s:s}", "attack", "signal", "errno",
                         rc < 0 ? e : 0, "error", rc < 0 ? strerror(e) : "", "step", "send");
}

/* A child that outlives whatever stops its parent: SIGTERM ignored, every
 * descriptor kept (the listening socket on fd 0 included). */
static int attack_linger(fn_res *res)
{
    pid_t child = fork();

    if (child == 0) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        prctl(PR_SET_PDEATHSIG, 0);
        for (;;)
            pause();
    }
    return fn_send_jsonf(res, 200, "{s:s, s:i, s:s, s:i, s:i}", "attack", "linger", "errno",
                         child < 0 ? errno : 0, "error", child < 0 ? strerror(errno) : "", "child",
                         (int)child, "pid", (int)getpid());
}

static int attack_garbage(fn_req *req, fn_res *res)
{
    static const unsigned char junk[] = "\xff\xff\xff\x7fGARBAGE\x00\x01\x02 not a frame";
    ssize_t w = write(3, junk, sizeof(junk));
    int werr = w < 0 ? errno : 0;
    fn_rows *rows = fn_query(req, "SELECT 1 AS one", NULL);

    return fn_send_jsonf(res, 200, "{s:s, s:i, s:s, s:b, s:s, s:i}", "attack", "garbage", "errno",
                         werr, "error", werr ? strerror(werr) : "", "query_ok", rows != NULL,
                         "sqlstate", rows ? "" : fn_db_error(req)->sqlstate, "pid", (int)getpid());
}

static int handle(fn_req *req, fn_res *res)
{
    const char *attack = fn_arg(req, "attack");
    pid_t pid = (pid_t)arg_long(req, "pid", 0);
    int fd = (int)arg_long(req, "fd", 3);
    const char *path = fn_arg(req, "path");
    char buf[256];
    int rc, s;

    if (!attack)
        return fn_send_jsonf(res, 200, "{s:i}", "pid", (int)getpid());
    if (strcmp(attack, "kill") == 0) {
        rc = kill(pid, SIGCONT);
        return answer(res, attack, rc, errno);
    }
    if (strcmp(attack, "ptrace") == 0) {
        rc = (int)ptrace(PTRACE_ATTACH, pid, NULL, NULL);
        int e = errno;
        if (rc == 0)
            ptrace(PTRACE_DETACH, pid, NULL, NULL);
        return answer(res, attack, rc, e);
    }
    if (strcmp(attack, "vmread") == 0) {
        struct iovec local = {buf, 1}, remote = {(void *)0x400000, 1};
        rc = (int)process_vm_readv(pid, &local, 1, &remote, 1, 0);
        return answer(res, attack, rc, errno);
    }
    if (strcmp(attack, "environ") == 0 || strcmp(attack, "fd") == 0) {
        bool env = strcmp(attack, "environ") == 0;
        if (env)
            snprintf(buf, sizeof(buf), "/proc/%d/environ", (int)pid);
        else
            snprintf(buf, sizeof(buf), "/proc/%d/fd/%d", (int)pid, fd);
        int f = open(buf, env ? O_RDONLY : O_RDWR);
        if (f < 0)
            return answer(res, attack, -1, errno);
        rc = (int)read(f, buf, sizeof(buf));
        int e = errno;
        close(f);
        /* Opened and read: the attack worked (errno 0). */
        return answer(res, attack, rc < 0 && env ? -1 : 0, e);
    }
    if (strcmp(attack, "getfd") == 0) {
        int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pfd < 0)
            return answer(res, "getfd", -1, errno);
        rc = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
        int e = errno;
        if (rc >= 0)
            close(rc);
        close(pfd);
        return answer(res, attack, rc, e);
    }
    if (strcmp(attack, "connect") == 0 && path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0)
            return answer(res, attack, -1, errno);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        close(s);
        return answer(res, attack, rc, e);
    }
    if (strcmp(attack, "escape") == 0)
        return attack_escape(res);
    if (strcmp(attack, "garbage") == 0)
        return attack_garbage(req, res);
    if ((strcmp(attack, "read") == 0 || strcmp(attack, "write") == 0) && path) {
        bool wr = strcmp(attack, "write") == 0;
        int f = open(path, wr ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY, 0600);
        int e = errno;
        if (f >= 0)
            close(f);
        return answer(res, attack, f, e);
    }
    if (strcmp(attack, "bind") == 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            return answer(res, attack, -1, errno);
        rc = bind(s, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        close(s);
        return answer(res, attack, rc, e);
    }
    if (strcmp(attack, "alloc") == 0) {
        size_t n = (size_t)arg_long(req, "mb", 1) << 20;
        char *p = malloc(n);
        int e = errno;
        if (p) {
            memset(p, 1, n);
            free(p);
        }
        return answer(res, attack, p ? 0 : -1, e);
    }
    if (strcmp(attack, "nofile") == 0) {
        int got = 0, e = 0, fds[4096];
        while (got < 4096) {
            int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (f < 0) {
                e = errno;
                break;
            }
            fds[got++] = f;
        }
        for (int i = 0; i < got; i++)
            close(fds[i]);
        return fn_send_jsonf(res, 200, "{s:s, s:i, s:s, s:i}", "attack", attack, "errno", e,
                             "error", e ? strerror(e) : "", "opened", got);
    }
    if (strcmp(attack, "creds") == 0)
        return attack_creds(res);
    if (strcmp(attack, "signal") == 0)
        return attack_signal(req, res);
    if (strcmp(attack, "linger") == 0)
        return attack_linger(res);
    if (strcmp(attack, "noterm") == 0) {
        signal(SIGTERM, SIG_IGN);
        rc = prctl(PR_SET_PDEATHSIG, 0);
        return answer(res, attack, rc, errno);
    }
    if (strcmp(attack, "state") == 0)
        return attack_state(res);
    if (strcmp(attack, "prlimit") == 0 || strcmp(attack, "nice") == 0 ||
        strcmp(attack, "sched") == 0 || strcmp(attack, "affinity") == 0 ||
        strcmp(attack, "ioprio") == 0 || strcmp(attack, "setown") == 0)
        return attack_owner(req, res, attack);
    if (strcmp(attack, "self") == 0) {
        return fn_send_jsonf(res, 200, "{s:s, s:i, s:b, s:b, s:s}", "attack", attack, "dumpable",
                             prctl(PR_GET_DUMPABLE), "cloexec0",
                             (fcntl(0, F_GETFD) & FD_CLOEXEC) != 0, "cloexec3",
                             (fcntl(3, F_GETFD) & FD_CLOEXEC) != 0, "tmpdir",
                             getenv("TMPDIR") ? getenv("TMPDIR") : "");
    }
    return fn_error(res, 400, "unknown attack '%s'", attack);
}

FN_MAIN(handle)
