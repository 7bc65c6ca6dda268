/*
 * hostile_so: a function's shared object whose constructor attacks the
 * spare process it is loaded into, the moment dlopen() runs it, and writes
 * one line per attempt to stderr (the instance log):
 *
 *     hostile-so: NAME rc=RC errno=ERRNO
 *
 * test_spare.py asserts each attempt's errno: by then the spare must hold
 * no privilege, no descriptor but 0..4, and be sealed in the sandbox.  The
 * handler then serves {"attacked":true}, so the cold start completes.
 */
#include <fngate.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* TRY(name, call): the call first, then errno (argument evaluation order
 * is unspecified). */
#define TRY(name, call)                                                                            \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long rc_ = (long)(call);                                                                   \
        report(name, rc_, errno);                                                                  \
    } while (0)

static void report(const char *name, long rc, int err)
{
    fprintf(stderr, "hostile-so: %s rc=%ld errno=%s\n", name, rc < 0 ? -1 : rc,
            rc < 0 ? strerrorname_np(err) : "0");
}

/* Other fngate-spare processes: the waiting spares. */
static void attack_spares(void)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int found = 0;

    if (!d) {
        report("opendir-proc", -1, errno);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        int fd;
        ssize_t n;
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, comm, sizeof(comm) - 1);
        close(fd);
        if (n <= 0 || strncmp(comm, "fngate-spare", 12) != 0)
            continue;
        found++;
        snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
        TRY("open-spare-environ", open(path, O_RDONLY | O_CLOEXEC));
        snprintf(path, sizeof(path), "/proc/%d/fd/3", (int)pid);
        TRY("open-spare-socket", open(path, O_RDWR | O_CLOEXEC));
        TRY("kill-spare", kill(pid, SIGKILL));
        TRY("ptrace-spare", ptrace(PTRACE_ATTACH, pid, NULL, NULL));
    }
    closedir(d);
    fprintf(stderr, "hostile-so: spares-found %d\n", found);
}

__attribute__((constructor)) static void hostile_so_attack(void)
{
    struct stat st;
    int open_fds = 0;

    TRY("setuid-0", setuid(0));
    TRY("open-shadow", open("/etc/shadow", O_RDONLY | O_CLOEXEC));
    TRY("unshare-user", unshare(CLONE_NEWUSER));
    for (int fd = 5; fd <= 20; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            open_fds++;
        if (write(fd, "x", 1) >= 0)
            open_fds++;
    }
    fprintf(stderr, "hostile-so: fds-5-20-open %d\n", open_fds);
    /* fd 3 without a database is /dev/null, not the supervisor's socket. */
    report("fd3-is-socket", fstat(3, &st) == 0 && S_ISSOCK(st.st_mode) ? 1 : -1, ENOTSOCK);
    fprintf(stderr, "hostile-so: no_new_privs %d seccomp %d dumpable %d uid %d\n",
            prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), prctl(PR_GET_SECCOMP, 0, 0, 0, 0),
            prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), (int)getuid());
    attack_spares();
}

static int attacked(fn_req *req, fn_res *res)
{
    (void)req;
    return fn_send_jsonf(res, 200, "{s:b}", "attacked", 1);
}

FN_MAIN(attacked)
