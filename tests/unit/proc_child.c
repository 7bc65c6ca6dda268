/*
 * The instance test_proc spawns through proc_spawn: it reports what an
 * instance finds at start-up as "key=value" lines on stdout (fd 1, the log
 * pipe), then writes one line to stderr, and exits 0.  It must be built
 * without sanitizers: AddressSanitizer cannot start under the RLIMIT_AS the
 * test sets.
 *
 * Keys: argc, argv, env (one line each, in order), fd<N> (type:dev:ino:rdev
 * for N in 0..4), fd0_acceptconn, fds (every open descriptor but the one
 * listing them), as / nofile (soft:hard limits), uid, euid, gid, egid,
 * groups, pid, sid, pgid, pdeathsig, sigblk / sigign (hex masks from
 * /proc/self/status), cwd, setuid0 (whether setuid(0) works).
 *
 * Like an instance, it also uses what it was given: it writes "db\n" to fd
 * 3 when that is a socket, and maps fd 4 and stores FNSDK_SCOREBOARD_MAGIC and the
 * IDLE state into the scoreboard slot, as the SDK does.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fnsdk_scoreboard.h"

extern char **environ;

static const char *fd_type(mode_t m)
{
    if (S_ISSOCK(m))
        return "sock";
    if (S_ISFIFO(m))
        return "fifo";
    if (S_ISCHR(m))
        return "chr";
    if (S_ISREG(m))
        return "reg";
    if (S_ISDIR(m))
        return "dir";
    return "other";
}

static void report_fd(int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        printf("fd%d=closed\n", fd);
        return;
    }
    printf("fd%d=%s:%llu:%llu:%llu\n", fd, fd_type(st.st_mode), (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino, (unsigned long long)st.st_rdev);
}

static void report_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int fds[256], n = 0;

    if (!d) {
        printf("fds=error %s\n", strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL && n < 256) {
        if (de->d_name[0] == '.')
            continue;
        if (atoi(de->d_name) == dirfd(d))
            continue;
        fds[n++] = atoi(de->d_name);
    }
    closedir(d);
    /* readdir order is ascending for /proc/self/fd, but do not rely on it */
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    }
    printf("fds=");
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", fds[i]);
    printf("\n");
}

static void report_limit(const char *key, int res)
{
    struct rlimit rl;

    if (getrlimit(res, &rl) < 0) {
        printf("%s=error\n", key);
        return;
    }
    printf("%s=", key);
    if (rl.rlim_cur == RLIM_INFINITY)
        printf("inf:");
    else
        printf("%llu:", (unsigned long long)rl.rlim_cur);
    if (rl.rlim_max == RLIM_INFINITY)
        printf("inf\n");
    else
        printf("%llu\n", (unsigned long long)rl.rlim_max);
}

/* SigBlk and SigIgn from /proc/self/status. */
static void report_signals(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];

    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "SigBlk:\t", 8) == 0)
            printf("sigblk=%s", line + 8);
        else if (strncmp(line, "SigIgn:\t", 8) == 0)
            printf("sigign=%s", line + 8);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    gid_t groups[64];
    char cwd[PATH_MAX];
    int on = 0, sig = 0, ng;
    socklen_t len = sizeof(on);

    /* Everything but the descriptors comes after the fd listing, which must
     * see exactly what the instance was given. */
    report_fds();
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv=%s\n", argv[i]);
    for (char **e = environ; *e; e++)
        printf("env=%s\n", *e);
    for (int fd = 0; fd <= 4; fd++)
        report_fd(fd);
    if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0)
        on = -1;
    printf("fd0_acceptconn=%d\n", on);
    report_limit("as", RLIMIT_AS);
    report_limit("nofile", RLIMIT_NOFILE);
    printf("uid=%u\neuid=%u\ngid=%u\negid=%u\n", (unsigned)getuid(), (unsigned)geteuid(),
           (unsigned)getgid(), (unsigned)getegid());
    ng = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
    printf("groups=");
    for (int i = 0; i < ng; i++)
        printf(i ? ",%u" : "%u", (unsigned)groups[i]);
    printf("\n");
    printf("pid=%d\nsid=%d\npgid=%d\n", (int)getpid(), (int)getsid(0), (int)getpgid(0));
    if (prctl(PR_GET_PDEATHSIG, &sig) < 0)
        sig = -1;
    printf("pdeathsig=%d\n", sig);
    report_signals();
    printf("cwd=%s\n", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
    printf("setuid0=%s\n", setuid(0) == 0 ? "yes" : "no");
    {
        struct stat st;
        if (fstat(FNSDK_DB_FD, &st) == 0 && S_ISSOCK(st.st_mode))
            printf("db_write=%zd\n", write(FNSDK_DB_FD, "db\n", 3));
    }
    {
        void *m = mmap(NULL, sizeof(struct fnsdk_scoreboard_slot), PROT_READ | PROT_WRITE,
                       MAP_SHARED, FNSDK_SCOREBOARD_FD, 0);
        if (m != MAP_FAILED) {
            struct fnsdk_scoreboard_slot *slot = m;
            slot->version = FNSDK_SCOREBOARD_VERSION;
            FNSDK_SCOREBOARD_STORE(slot->state, (uint32_t)FNSDK_SCOREBOARD_IDLE);
            FNSDK_SCOREBOARD_STORE(slot->magic, FNSDK_SCOREBOARD_MAGIC);
            munmap(m, sizeof(*slot));
            printf("sb=mapped\n");
        } else {
            printf("sb=%s\n", strerror(errno));
        }
    }
    printf("end=1\n");
    fflush(stdout);
    fprintf(stderr, "proc_child: to stderr\n");
    return 0;
}
