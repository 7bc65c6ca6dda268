/*
 * The warden (see warden.h for why it exists).  It is a fork, not an exec,
 * made before the supervisor has much memory: it keeps only the pipe's
 * read end and stderr, leaves the gateway's session (a signal to the
 * gateway's process group does not take it along), ignores the signals an
 * operator sends the gateway, and waits in poll(2) for the supervisor's
 * pidfd to say it died (or its end of a pipe to close, which is how a stop
 * is told apart: the flag first, then the close).  The table it reads then is a shared anonymous
 * mapping that instances never see (they are exec'd).  A stop tells it first, so that only a death
 * kills and logs.
 */
#include "config.h"

#include "warden.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* More than any gateway runs at once (max_instances is per function, and a
 * gateway has at most a few hundred functions); a spawn past it is logged
 * once and left to PR_SET_PDEATHSIG. */
#define WARDEN_MAX 16384

struct warden_tab {
    volatile int stopping; /* set by warden_stop: leave quietly */
    volatile int hi;       /* every used slot is below it */
    volatile pid_t parent; /* the supervisor, for the log line */
    volatile pid_t pgid[WARDEN_MAX];
};

static struct warden_tab *wd_tab; /* shared with the warden; never unmapped */
static int wd_fd = -1;            /* the supervisor's (write) end of the pipe */
static pid_t wd_pid = -1;
static int wd_hint; /* the lowest slot that may be free */
static bool wd_full_logged;

static void warden_main(int rfd) __attribute__((noreturn));
static void warden_main(int rfd)
{
    static const int quiet[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGPIPE,
                                SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU};
    struct pollfd fds[2];
    sigset_t none;
    int groups = 0;
    char c;

    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    }
    for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
        signal(quiet[i], SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    prctl(PR_SET_NAME, "fngate-warden", 0, 0, 0);
    log_set_proc("fngate warden");
    /* Nothing but the pipe (on 0) and the log (1, 2): no listening socket,
     * no lock, no libevent descriptor. */
    if (dup2(rfd, 0) < 0)
        _exit(1);
    close_range(3, ~0U, 0);

    /* The supervisor's pidfd as well as the pipe: a child of the supervisor
     * that forked without exec'ing would keep the pipe open after its
     * death.  Opened, then checked: the supervisor may be gone already. */
    fds[0].fd = (int)syscall(SYS_pidfd_open, wd_tab->parent, 0);
    fds[0].events = POLLIN;
    fds[1].fd = 0;
    fds[1].events = POLLIN;
    while (getppid() == wd_tab->parent) {
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (fds[0].revents || (fds[1].revents && read(0, &c, 1) <= 0)))
            break;
    }
    if (wd_tab->stopping)
        _exit(0);
    for (int i = 0; i < wd_tab->hi && i < WARDEN_MAX; i++) {
        pid_t p = wd_tab->pgid[i];
        if (p > 1 && kill(-p, SIGKILL) == 0)
            groups++;
    }
    log_warnx("the supervisor (pid %d) is gone: killed %d process group%s of its instances",
              (int)wd_tab->parent, groups, groups == 1 ? "" : "s");
    _exit(0);
}

int warden_start(void)
{
    int p[2];
    pid_t pid;

    if (!wd_tab) {
        void *m =
            mmap(NULL, sizeof(*wd_tab), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            log_warn("warden: mmap");
            return -1;
        }
        wd_tab = m;
    }
    wd_tab->parent = getpid();
    /* CLOEXEC: no instance, spare or pool keeps the write end, which would
     * hide the supervisor's death. */
    if (pipe2(p, O_CLOEXEC) < 0) {
        log_warn("warden: pipe2");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        log_warn("warden: fork");
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[1]);
        warden_main(p[0]);
    }
    close(p[0]);
    wd_fd = p[1];
    wd_pid = pid;
    log_debug("warden %d started", (int)pid);
    return 0;
}

void warden_add(pid_t pgid)
{
    if (!wd_tab || pgid <= 1)
        return;
    for (int n = 0, i = wd_hint; n < WARDEN_MAX; n++, i = (i + 1) % WARDEN_MAX) {
        if (wd_tab->pgid[i] == 0) {
            wd_tab->pgid[i] = pgid;
            wd_hint = i + 1;
            if (i >= wd_tab->hi)
                wd_tab->hi = i + 1;
            return;
        }
    }
    if (!wd_full_logged) {
        wd_full_logged = true;
        log_warnx("warden: more than %d instances at once: the rest rely on PR_SET_PDEATHSIG "
                  "alone if the gateway is killed",
                  WARDEN_MAX);
    }
}

void warden_forget(pid_t pgid)
{
    if (!wd_tab || pgid <= 1)
        return;
    for (int i = 0; i < wd_tab->hi; i++) {
        if (wd_tab->pgid[i] == pgid) {
            wd_tab->pgid[i] = 0;
            if (i < wd_hint)
                wd_hint = i;
            while (wd_tab->hi > 0 && wd_tab->pgid[wd_tab->hi - 1] == 0)
                wd_tab->hi--;
            return;
        }
    }
}

bool warden_is(pid_t pid)
{
    return pid > 0 && pid == wd_pid;
}

bool warden_reaped(pid_t pid, int status)
{
    if (!warden_is(pid))
        return false;
    if (WIFSIGNALED(status))
        log_warnx("[warden pid %d] killed by signal %d: starting another", (int)pid,
                  WTERMSIG(status));
    else
        log_warnx("[warden pid %d] exited with status %d: starting another", (int)pid,
                  WEXITSTATUS(status));
    close(wd_fd);
    wd_fd = -1;
    wd_pid = -1;
    (void)warden_start();
    return true;
}

void warden_stop(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};

    if (wd_pid <= 0)
        return;
    wd_tab->stopping = 1;
    close(wd_fd);
    wd_fd = -1;
    for (int i = 0; i < 200; i++) {
        if (waitpid(wd_pid, NULL, WNOHANG) != 0)
            goto out;
        nanosleep(&ts, NULL);
    }
    log_warnx("warden %d did not leave: SIGKILL", (int)wd_pid);
    kill(wd_pid, SIGKILL);
    waitpid(wd_pid, NULL, 0);
out:
    wd_pid = -1;
}
