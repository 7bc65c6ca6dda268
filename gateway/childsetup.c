/*
 * An instance's own set-up, shared by the vfork child of proc.c and the
 * spare process (see childsetup.h for the order and why it is one copy).
 * Everything here is a system call on data the caller prepared: it runs in
 * a vfork child that borrows the gateway's memory.
 */
#include "config.h"

#include "childsetup.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

void childsetup_fail(const char *what, int code)
{
    const char *prefix = "fngate: cannot start instance: ";
    const char *err = strerror(errno);
    (void)!write(2, prefix, strlen(prefix));
    (void)!write(2, what, strlen(what));
    (void)!write(2, ": ", 2);
    (void)!write(2, err, strlen(err));
    (void)!write(2, "\n", 1);
    _exit(code);
}

int childsetup_enter(int ruleset_fd, const char **what)
{
    *what = "no_new_privs";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    if (ruleset_fd >= 0) {
        *what = "landlock_restrict_self";
        if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
            return -1;
    }
    return 0;
}

int childsetup_seal(const struct sock_fprog *bpf, const char **what)
{
    struct sock_filter copy[CHILDSETUP_BPF_MAX];
    struct sock_fprog mine;
    bool patch = false;
    pid_t self;

    *what = "seccomp";
    if (!bpf)
        return 0;
    for (unsigned i = 0; i < bpf->len && !patch; i++)
        patch = bpf->filter[i].code == (BPF_JMP | BPF_JEQ | BPF_K) &&
                (bpf->filter[i].k == CHILDSETUP_BPF_SELF ||
                 bpf->filter[i].k == CHILDSETUP_BPF_NEG_SELF);
    if (!patch)
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, bpf);
    /* The shared program stays as it is (the exec path's is the
     * supervisor's own memory, borrowed by vfork): the caller's pid goes
     * into a copy.  getpid() here is the pid the instance is known by, so
     * a descendant it forks keeps the instance's number, not its own. */
    if (bpf->len > CHILDSETUP_BPF_MAX) {
        errno = E2BIG;
        return -1;
    }
    self = getpid();
    memcpy(copy, bpf->filter, bpf->len * sizeof(copy[0]));
    for (unsigned i = 0; i < bpf->len; i++) {
        if (copy[i].code != (BPF_JMP | BPF_JEQ | BPF_K))
            continue;
        if (copy[i].k == CHILDSETUP_BPF_SELF)
            copy[i].k = (uint32_t)self;
        else if (copy[i].k == CHILDSETUP_BPF_NEG_SELF)
            copy[i].k = (uint32_t)-self;
    }
    mine.len = bpf->len;
    mine.filter = copy;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &mine);
}

void childsetup_init(struct childsetup *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->listen_fd = cs->db_fd = cs->scoreboard_fd = cs->ruleset_fd = -1;
    cs->log_fd = cs->devnull = -1;
}

int childsetup_apply(const struct childsetup *cs, const char **what)
{
    const int src[5] = {cs->listen_fd, cs->log_fd, cs->log_fd, cs->db_fd, cs->scoreboard_fd};
    int moved[5];
    sigset_t none;
    struct rlimit rl;

    /* First, while the ruleset's descriptor is still open here. */
    if (cs->sandbox && childsetup_enter(cs->ruleset_fd, what) < 0)
        return -1;
    /* Lift every source above the target range first so that no dup2 below
     * overwrites a source that is still needed. */
    *what = "descriptors";
    for (int i = 0; i < 5; i++) {
        moved[i] = fcntl(src[i] >= 0 ? src[i] : cs->devnull, F_DUPFD, 10);
        if (moved[i] < 0)
            return -1;
    }
    for (int i = 0; i < 5; i++) {
        if (dup2(moved[i], i) < 0)
            return -1;
    }
    /* Nothing else: not the moved copies, nor any descriptor without
     * CLOEXEC that whoever started the gateway left open, nor (in a spare)
     * the socket its assignment came on. */
    if (close_range(5, ~0U, 0) < 0)
        return -1;

    for (int i = 0; i < cs->nsigs; i++)
        signal(cs->sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Its own session: a Ctrl-C at the gateway's terminal must reach the
     * gateway only, which then stops instances between requests.  A spare
     * is a session leader already (EPERM). */
    setsid();

    if (cs->memory_limit > 0) {
        *what = "memory_limit";
        rl.rlim_cur = rl.rlim_max = (rlim_t)cs->memory_limit;
        if (setrlimit(RLIMIT_AS, &rl) < 0)
            return -1;
    }
    if (cs->open_files > 0) {
        *what = "open_files";
        rl.rlim_cur = rl.rlim_max = (rlim_t)cs->open_files;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -1;
    }
    if (cs->drop_privileges) {
        *what = "setgroups";
        if (setgroups(1, &cs->gid) < 0)
            return -1;
        *what = "setgid";
        if (setgid(cs->gid) < 0)
            return -1;
        *what = "setuid";
        if (setuid(cs->uid) < 0)
            return -1;
        *what = "privileges still held after setuid";
        if (setuid(0) == 0) {
            errno = EPERM;
            return -1;
        }
    }
    /* After the credential change, which clears it: an instance whose
     * gateway died stops between requests instead of holding the socket. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != cs->parent)
        return -2;
    *what = "chdir";
    if (cs->cwd && chdir(cs->cwd) < 0)
        return -1;
    if (cs->sandbox && childsetup_seal(cs->bpf, what) < 0)
        return -1;
    return 0;
}
