/*
 * fngate-spare: a generic instance process, exec'd fresh by the supervisor
 * before any function needs it, so that a cold start skips the exec.  It
 * has done fn_main's function-independent set-up (libfcgi, the random
 * seeds) and waits on fd 3, its socket to the supervisor, for one
 * assignment (gateway/assign.h): the instance's set-up description, the
 * very struct childsetup the exec path fills.  Then, in this order, it
 * becomes that function's instance: the set-up proc.c's vfork child makes,
 * through the same childsetup_apply (gateway/childsetup.c: Landlock and
 * no_new_privs, fds 0..4 and nothing else, which closes the supervisor's
 * socket, signals, limits, the function's uid, PR_SET_PDEATHSIG, its
 * folder, the seccomp program the supervisor sent), non-dumpable, the
 * function's environment, and only then dlopen()s the function's handler.so, so that the shared
 * object's constructors run confined and unprivileged.  Each spare is its own exec: no
 * address-space layout, stack canary or memory is shared between instances, unlike a zygote's
 * forks.  A failed assignment writes its reason to stderr (the instance log) and exits 127; a
 * supervisor that closes the socket gets a silent exit 0.
 */
#include "config.h"

#include "assign.h"
#include "childsetup.h"
#include "fnsdk_loop.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The assignment, kept for the process's life: its strings are the
 * environment.  Not static: a store to a static that is never read may be
 * dropped, and a leak checker must see the assignment reachable. */
struct childsetup *fnsdk_spare_assignment;

static int64_t fnsdk_spare_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    struct childsetup *a;
    const char *what = "set-up";
    char err[160];
    int64_t t_assigned, t_setup, t_loaded;
    pid_t parent = getppid();
    int devnull, rc;
    void *so;
    fn_handler (*entry)(void);
    fn_handler handler;

    /* Nothing that shares its uid reads its memory or its descriptors, even
     * before it is assigned. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || fnsdk_loop_prepare() < 0)
        return 127;

    a = fnsdk_spare_assignment = assign_recv(3, err, sizeof(err));
    t_assigned = fnsdk_spare_now();
    if (!a) {
        if (!err[0])
            return 0;
        fprintf(stderr, "fngate: spare: %s\n", err);
        return 127;
    }

    /* The set-up's own part: its stdout and stderr are the pipe into the
     * gateway's log since the spare began (proc_spawn put it on both), and
     * its dispositions are the exec's defaults, none to reset. */
    a->log_fd = 1;
    a->devnull = devnull;
    a->parent = parent;
    rc = childsetup_apply(a, &what);
    if (rc == -2)
        return 0;
    if (rc < 0)
        childsetup_fail(what, 126);
    /* The credential change reset it. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* A is never freed: its strings are the environment from now on (its
     * descriptors were closed by the set-up, all but 0..4; nothing closes
     * them again). */
    environ = (char **)a->envp;
    {
        /* ps and top show the function, not "fngate-spare". */
        const char *name = getenv("FNGATE_FUNCTION");
        if (name)
            prctl(PR_SET_NAME, name, 0, 0, 0);
    }
    t_setup = fnsdk_spare_now();

    so = dlopen(a->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "fngate: cannot load %s: %s\n", a->so_path, dlerror());
        return 127;
    }
    *(void **)&entry = dlsym(so, "fn_spare_entry");
    handler = entry ? entry() : NULL;
    if (!handler) {
        fprintf(stderr, "fngate: cannot load %s: no FN_MAIN handler (fn_spare_entry)\n",
                a->so_path);
        return 127;
    }
    t_loaded = fnsdk_spare_now();
    fnsdk_loop_spare_trace(t_assigned, t_setup, t_loaded);
    return fn_main(argc, argv, handler);
}
