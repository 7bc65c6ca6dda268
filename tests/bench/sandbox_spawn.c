/*
 * sandbox_spawn: the sandbox's share of a spawn, without nginx or the
 * network in the way.  Built and run by bench_sandbox.sh:
 *
 *     sandbox_spawn PROGRAM [ROUNDS]
 *
 * Each round spawns PROGRAM (a static program that exits at once) twice
 * the way gateway/proc.c does, vfork + exec + wait: once plainly and once
 * entering the sandbox (no_new_privs, a Landlock domain, the seccomp
 * filter), in alternating order, and prints the median of each and their
 * difference in milliseconds, for wall time and for the child's CPU time.
 */
#include "config.h"

#include "discover.h"
#include "ident.h"
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Wall time, or with CPU set the child's CPU time (user + system, which
 * the kernel accounts precisely): the part a loaded machine cannot blur. */
static double spawn_once(const char *prog, int ruleset, int sandboxed, double *cpu)
{
    struct rusage ru;
    char *argv[] = {(char *)prog, NULL};
    char *envp[] = {NULL};
    double t0 = now_ms();
    pid_t pid = vfork();

    if (pid == 0) {
        const char *what;
        if (sandboxed && (sandbox_child_enter(ruleset, &what) < 0 || sandbox_child_seal(&what) < 0))
            _exit(126);
        execve(prog, argv, envp);
        _exit(127);
    }
    if (pid < 0 || wait4(pid, NULL, 0, &ru) != pid)
        exit(1);
    *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return now_ms() - t0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = argc > 2 ? atoi(argv[2]) : 400;
    struct discover_fn d;
    struct ident id;
    struct sandbox_fn *box;
    char err[512], dir[4096], *slash, tmp[] = "/tmp/sandbox_spawn.XXXXXX";
    double *on, *off, *con, *coff;

    if (argc < 2 || rounds < 1 || !mkdtemp(tmp))
        return 2;
    snprintf(dir, sizeof(dir), "%s", argv[1]);
    slash = strrchr(dir, '/');
    if (!slash)
        return 2;
    *slash = '\0';
    if (sandbox_init() < 0)
        return 1;
    memset(&d, 0, sizeof(d));
    memset(&id, 0, sizeof(id));
    d.name = (char *)"bench";
    d.dir = dir;
    d.set.sandbox = true;
    box = sandbox_fn_new(&d, &id, tmp, err, sizeof(err));
    if (!box) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    on = calloc((size_t)rounds, sizeof(*on));
    off = calloc((size_t)rounds, sizeof(*off));
    con = calloc((size_t)rounds, sizeof(*con));
    coff = calloc((size_t)rounds, sizeof(*coff));
    if (!on || !off || !con || !coff)
        return 1;
    for (int i = 0; i < rounds; i++) {
        if (i % 2) {
            on[i] = spawn_once(argv[1], sandbox_fn_ruleset(box), 1, &con[i]);
            off[i] = spawn_once(argv[1], -1, 0, &coff[i]);
        } else {
            off[i] = spawn_once(argv[1], -1, 0, &coff[i]);
            on[i] = spawn_once(argv[1], sandbox_fn_ruleset(box), 1, &con[i]);
        }
    }
    qsort(on, (size_t)rounds, sizeof(*on), cmp);
    qsort(off, (size_t)rounds, sizeof(*off), cmp);
    qsort(con, (size_t)rounds, sizeof(*con), cmp);
    qsort(coff, (size_t)rounds, sizeof(*coff), cmp);
    /* wall on, off, added; CPU on, off, added */
    printf("%.3f %.3f %.3f %.3f %.3f %.3f\n", on[rounds / 2], off[rounds / 2],
           on[rounds / 2] - off[rounds / 2], con[rounds / 2], coff[rounds / 2],
           con[rounds / 2] - coff[rounds / 2]);
    free(con);
    free(coff);
    sandbox_fn_free(box);
    free(on);
    free(off);
    {
        char path[4200];
        snprintf(path, sizeof(path), "%s/bench", tmp);
        rmdir(path);
        rmdir(tmp);
    }
    return 0;
}
