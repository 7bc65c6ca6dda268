/*
 * Instance sandbox.  Everything expensive happens once in the gateway: the
 * seccomp program is compiled by libseccomp at start-up and kept as raw BPF,
 * and each function's Landlock ruleset is built when the function is loaded
 * (a descriptor the supervisor keeps).  The child between vfork and exec then
 * makes only four system calls (prctl, landlock_restrict_self, close,
 * seccomp), which keeps the added cold-start cost in microseconds.
 *
 * What the filter denies (EPERM), and why a function never needs it:
 * ptrace, process_vm_readv/writev, pidfd_getfd and kcmp (reaching into
 * another process); socket(AF_UNIX) (connecting to another function's
 * socket, the pool's or the web server's: the instance gets every unix
 * socket it needs from the gateway); setsid and setpgid (leaving the
 * instance's process group, which is how the gateway finds and kills every
 * descendant); namespaces (unshare, setns, clone with CLONE_NEW*); io_uring
 * (its operations bypass seccomp); keyrings, bpf, perf_event_open,
 * userfaultfd, file handles, syslog, TIOCSTI.  clone3 answers ENOSYS so
 * that libc falls back to clone, whose flags the filter can see.  A 32-bit
 * system call (another ABI) kills the process.  What needs a capability
 * (mounts, modules, kexec, reboot, clocks, swap, raw I/O) is not listed:
 * an instance has no capability and cannot reach a user namespace to get
 * one, and every rule costs: the kernel runs the whole filter once per
 * system call number when it is loaded, so the list stays short and is
 * compiled as a binary tree (about 30 us per spawn, measured).
 *
 * Signals where Landlock cannot scope them (ABI < 6) and every function
 * shares the gateway's uid (no root): the filter ends with a few rules of
 * its own, written here in BPF because they compare against the calling
 * instance's pid, which childsetup_seal writes into its copy of the
 * program (the placeholders CHILDSETUP_BPF_SELF/NEG_SELF); libseccomp's
 * tree leads to them for those system calls only.  kill, tkill,
 * tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo may only aim at the
 * instance itself, 0 or minus its pid (its own process group, which holds
 * everything it forked); pidfd_open only at itself; pidfd_send_signal not
 * at all (a /proc/<pid> folder is a pidfd too, and seccomp cannot see
 * where a descriptor points).  Everything else answers EPERM: another
 * function's instances, the waiting spare, the supervisor, the warden, the
 * pool, and kill(-1, ...).  fcntl F_SETOWN (SIGIO is a signal too) may name
 * only the same three; F_SETOWN_EX, FIOSETOWN and SIOCSPGRP are refused.
 * The comparison is on the low 32 bits, the pid_t the kernel reads.  No
 * other system call runs a further instruction.  On every kernel, since
 * Landlock scopes none of them, prlimit64, sched_set*, setpriority,
 * ioprio_set and the page-migration calls may aim only at the instance
 * itself (pid 0).
 *
 * Landlock: its own folder, the system's libraries and /etc read-only (and
 * executable), /proc read-only (ptrace rules still guard other processes'
 * entries), the usual character devices, and read-write only in its private
 * temporary folder plus what sandbox_write adds.  From ABI 4 TCP bind is
 * denied (connect stays allowed: functions call other services); from ABI 6
 * signals and abstract unix sockets are scoped to the instance's own domain.
 */
#include "config.h"

#include "sandbox.h"

#include "childsetup.h"
#include "discover.h"
#include "ident.h"
#include "log.h"

#include <seccomp.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Landlock's ABI, spelled out here: Debian 12's headers stop at ABI 2 and
 * the running kernel may be far newer. */
#define SBX_LL_CREATE_VERSION (1U << 0)
#define SBX_LL_RULE_PATH_BENEATH 1
#define SBX_FS_EXECUTE (1ULL << 0)
#define SBX_FS_WRITE_FILE (1ULL << 1)
#define SBX_FS_READ_FILE (1ULL << 2)
#define SBX_FS_READ_DIR (1ULL << 3)
#define SBX_FS_REMOVE_DIR (1ULL << 4)
#define SBX_FS_REMOVE_FILE (1ULL << 5)
#define SBX_FS_MAKE_CHAR (1ULL << 6)
#define SBX_FS_MAKE_DIR (1ULL << 7)
#define SBX_FS_MAKE_REG (1ULL << 8)
#define SBX_FS_MAKE_SOCK (1ULL << 9)
#define SBX_FS_MAKE_FIFO (1ULL << 10)
#define SBX_FS_MAKE_BLOCK (1ULL << 11)
#define SBX_FS_MAKE_SYM (1ULL << 12)
#define SBX_FS_REFER (1ULL << 13)           /* ABI 2 */
#define SBX_FS_TRUNCATE (1ULL << 14)        /* ABI 3 */
#define SBX_FS_IOCTL_DEV (1ULL << 15)       /* ABI 5 */
#define SBX_NET_BIND_TCP (1ULL << 0)        /* ABI 4 */
#define SBX_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define SBX_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

struct sandbox_ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct sandbox_ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#define SBX_RO (SBX_FS_EXECUTE | SBX_FS_READ_FILE | SBX_FS_READ_DIR)
#define SBX_RW_BASE                                                                                \
    (SBX_RO | SBX_FS_WRITE_FILE | SBX_FS_REMOVE_DIR | SBX_FS_REMOVE_FILE | SBX_FS_MAKE_DIR |       \
     SBX_FS_MAKE_REG | SBX_FS_MAKE_SOCK | SBX_FS_MAKE_FIFO | SBX_FS_MAKE_SYM)
#define SBX_DEV (SBX_FS_READ_FILE | SBX_FS_WRITE_FILE)

struct sandbox_fn {
    bool on;
    int ruleset_fd; /* -1: no Landlock */
    char *tmpdir;   /* owned */
};

/* What the kernel offers, probed once. */
static int sandbox_ll_abi = -1; /* -1: not probed; 0: no Landlock */
static bool sandbox_seccomp_ok;
/* The signal rules are in the program (see the top of this file). */
static bool sandbox_signals;
/* What libseccomp's program returns for the signal rules' system calls
 * before sandbox_signals_link points them at the rules (SECCOMP_RET_TRACE
 * data, never left in a loaded program). */
#define SBX_MARK_GROUP 0x5e1f
#define SBX_MARK_SELF 0x5e20
#define SBX_MARK_OWNER 0x5e21
/* <linux/ioprio.h>'s IOPRIO_WHO_PROCESS (glibc has no header for it). */
#define SBX_IOPRIO_WHO_PROCESS 1
/* The compiled filter; the child passes it to seccomp(2) as is. */
static struct sock_filter *sandbox_bpf;
static struct sock_fprog sandbox_prog;

static uint64_t sandbox_fs_handled(void)
{
    uint64_t fs = (SBX_FS_MAKE_SYM << 1) - 1; /* the 13 rights of ABI 1 */
    if (sandbox_ll_abi >= 2)
        fs |= SBX_FS_REFER;
    if (sandbox_ll_abi >= 3)
        fs |= SBX_FS_TRUNCATE;
    if (sandbox_ll_abi >= 5)
        fs |= SBX_FS_IOCTL_DEV;
    return fs;
}

/* The rights of a read-write folder under this ABI. */
static uint64_t sandbox_rw(void)
{
    uint64_t rw = SBX_RW_BASE;
    if (sandbox_ll_abi >= 2)
        rw |= SBX_FS_REFER;
    if (sandbox_ll_abi >= 3)
        rw |= SBX_FS_TRUNCATE;
    return rw;
}

/* Compiles the filter and keeps its BPF.  libseccomp 2.5 exports only to a
 * descriptor, hence the memfd. */
static int sandbox_build_seccomp(void)
{
    static const int deny[] = {
#ifndef FNGATE_SANITIZERS
        /* LeakSanitizer stops the world with ptrace; a sanitizer build keeps
         * only the kernel's checks (uid, dumpable, Landlock domain). */
        SCMP_SYS(ptrace),
#endif
        SCMP_SYS(process_vm_readv),
        SCMP_SYS(process_vm_writev),
        SCMP_SYS(pidfd_getfd),
        SCMP_SYS(kcmp),
        SCMP_SYS(setsid),
        SCMP_SYS(setpgid),
        SCMP_SYS(unshare),
        SCMP_SYS(setns),
        SCMP_SYS(io_uring_setup),
        SCMP_SYS(io_uring_enter),
        SCMP_SYS(io_uring_register),
        SCMP_SYS(keyctl),
        SCMP_SYS(add_key),
        SCMP_SYS(request_key),
        SCMP_SYS(bpf),
        SCMP_SYS(perf_event_open),
        SCMP_SYS(userfaultfd),
        SCMP_SYS(open_by_handle_at),
        SCMP_SYS(name_to_handle_at),
        SCMP_SYS(syslog),
    };
    static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    struct stat st;
    int fd = -1, rc = -1;
    ssize_t n;

    if (!ctx)
        return -1;
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
        goto out;
    /* A binary tree instead of a list: the kernel runs the filter for
     * every system call number at load time (to cache the ones always
     * allowed), so its depth is cold-start time. */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
        goto out;
    for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++) {
        if (deny[i] < 0)
            continue; /* not a system call on this architecture */
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[i], 0) < 0)
            goto out;
    }
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                         SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) < 0)
        goto out;
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i])) < 0)
            goto out;
    }
    /* Another process's limits, priority, scheduling and memory placement:
     * the kernel lets any process of a uid change them (RLIMIT_CPU or
     * SCHED_IDLE on the supervisor, say), and Landlock scopes none of it.
     * Without root every function, the spare, the supervisor, the warden
     * and the pool share one uid, so an instance may aim these only at
     * itself: pid 0 (what setrlimit, nice and sched_setaffinity(0, ...)
     * pass; its own pid given as a number is refused too, as is a thread
     * of its own). */
    {
        static const int self_only[] = {SCMP_SYS(prlimit64),         SCMP_SYS(sched_setscheduler),
                                        SCMP_SYS(sched_setparam),    SCMP_SYS(sched_setattr),
                                        SCMP_SYS(sched_setaffinity), SCMP_SYS(migrate_pages),
                                        SCMP_SYS(move_pages)};
        for (size_t i = 0; i < sizeof(self_only) / sizeof(self_only[0]); i++) {
            if (self_only[i] < 0)
                continue;
            if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), self_only[i], 1,
                                 SCMP_A0(SCMP_CMP_NE, 0)) < 0)
                goto out;
        }
        /* setpriority(PRIO_PROCESS, 0, ...) and ioprio_set(IOPRIO_WHO_PROCESS,
         * 0, ...) only: no other process, group or user. */
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1,
                             SCMP_A0(SCMP_CMP_NE, PRIO_PROCESS)) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1,
                             SCMP_A1(SCMP_CMP_NE, 0)) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioprio_set), 1,
                             SCMP_A0(SCMP_CMP_NE, SBX_IOPRIO_WHO_PROCESS)) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioprio_set), 1,
                             SCMP_A1(SCMP_CMP_NE, 0)) < 0)
            goto out;
    }
    /* The signal rules' system calls end in markers that sandbox_signals_link
     * turns into jumps to the rules (libseccomp cannot compare an argument
     * against three values): its own binary tree finds them, so no other
     * system call runs one more instruction. */
    if (sandbox_signals) {
        static const int group[] = {SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(tgkill),
                                    SCMP_SYS(rt_sigqueueinfo), SCMP_SYS(rt_tgsigqueueinfo)};
        for (size_t i = 0; i < sizeof(group) / sizeof(group[0]); i++) {
            if (seccomp_rule_add(ctx, SCMP_ACT_TRACE(SBX_MARK_GROUP), group[i], 0) < 0)
                goto out;
        }
        if (seccomp_rule_add(ctx, SCMP_ACT_TRACE(SBX_MARK_SELF), SCMP_SYS(pidfd_open), 0) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_send_signal), 0) < 0)
            goto out;
        /* SIGIO is a signal too: a descriptor's owner gets any signal
         * F_SETSIG names.  F_SETOWN only at itself or its own group (or 0,
         * no owner); F_SETOWN_EX, FIOSETOWN and SIOCSPGRP not at all. */
        if (seccomp_rule_add(ctx, SCMP_ACT_TRACE(SBX_MARK_OWNER), SCMP_SYS(fcntl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, F_SETOWN)) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, F_SETOWN_EX)) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, FIOSETOWN)) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, SIOCSPGRP)) < 0)
            goto out;
    }
    fd = memfd_create("fngate-seccomp", MFD_CLOEXEC);
    if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 ||
        st.st_size % (off_t)sizeof(struct sock_filter) != 0)
        goto out;
    sandbox_bpf = malloc((size_t)st.st_size);
    if (!sandbox_bpf)
        goto out;
    n = pread(fd, sandbox_bpf, (size_t)st.st_size, 0);
    if (n != st.st_size)
        goto out;
    sandbox_prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
    sandbox_prog.filter = sandbox_bpf;
    rc = 0;
out:
    if (rc < 0) {
        free(sandbox_bpf);
        sandbox_bpf = NULL;
    }
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}

/* Where the low 32 bits of a system call's first argument are. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SBX_ARG0_LO offsetof(struct seccomp_data, args[0])
#define SBX_ARG2_LO offsetof(struct seccomp_data, args[2])
#else
#define SBX_ARG0_LO (offsetof(struct seccomp_data, args[0]) + 4)
#define SBX_ARG2_LO (offsetof(struct seccomp_data, args[2]) + 4)
#endif

/* Appends the signal rules to the compiled program and points its
 * markers at them: a marker's RET becomes a forward jump. */
static int sandbox_signals_link(void)
{
    enum { N = 13 };
    const unsigned group = sandbox_prog.len, self = group + 3, owner = group + 7;
    const struct sock_filter rules[N] = {
        /* +0, the group kind: 0 or minus itself (its own process group) */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SBX_ARG0_LO),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHILDSETUP_BPF_NEG_SELF, 3, 0),
        /* +3, both kinds: itself */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SBX_ARG0_LO),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHILDSETUP_BPF_SELF, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        /* +6 */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* +7, fcntl F_SETOWN: its third argument 0, itself or minus itself */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SBX_ARG2_LO),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHILDSETUP_BPF_NEG_SELF, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHILDSETUP_BPF_SELF, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        /* +12 */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    const uint32_t mark_group = SECCOMP_RET_TRACE | SBX_MARK_GROUP;
    const uint32_t mark_self = SECCOMP_RET_TRACE | SBX_MARK_SELF;
    const uint32_t mark_owner = SECCOMP_RET_TRACE | SBX_MARK_OWNER;
    struct sock_filter *all;
    size_t n = sandbox_prog.len + N;
    int marks = 0;

    if (n > CHILDSETUP_BPF_MAX) {
        log_error("sandbox: the seccomp program has %zu instructions, more than %d", n,
                  CHILDSETUP_BPF_MAX);
        return -1;
    }
    all = malloc(n * sizeof(*all));
    if (!all)
        return -1;
    memcpy(all, sandbox_bpf, sandbox_prog.len * sizeof(*all));
    memcpy(all + sandbox_prog.len, rules, sizeof(rules));
    for (unsigned i = 0; i < sandbox_prog.len; i++) {
        struct sock_filter *f = &all[i];
        /* The placeholders must mean nothing else in the compiled part. */
        if (f->k == CHILDSETUP_BPF_SELF || f->k == CHILDSETUP_BPF_NEG_SELF) {
            log_error("sandbox: the seccomp program uses 0x%x, a signal rule's placeholder", f->k);
            free(all);
            return -1;
        }
        if (f->code != (BPF_RET | BPF_K) ||
            (f->k != mark_group && f->k != mark_self && f->k != mark_owner))
            continue;
        f->code = BPF_JMP | BPF_JA;
        f->k = (f->k == mark_group ? group : f->k == mark_self ? self : owner) - (i + 1);
        f->jt = f->jf = 0;
        marks++;
    }
    if (marks == 0) {
        log_error("sandbox: the signal rules' markers are not in the seccomp program");
        free(all);
        return -1;
    }
    free(sandbox_bpf);
    sandbox_bpf = all;
    sandbox_prog.len = (unsigned short)n;
    sandbox_prog.filter = sandbox_bpf;
    return 0;
}

int sandbox_init(void)
{
    struct utsname u;
    uint32_t action = SECCOMP_RET_ERRNO;
    long abi;
    char ll[160];

    if (sandbox_ll_abi >= 0)
        return 0;
    abi = syscall(SYS_landlock_create_ruleset, NULL, 0, SBX_LL_CREATE_VERSION);
    sandbox_ll_abi = abi > 0 ? (int)abi : 0;
    {
        /* Test-only: the integration tests run the sandbox as an older
         * kernel's (Debian 12's 6.1 has ABI 2) on a newer one.  Never
         * raises the ABI. */
        const char *cap = getenv("FNGATE_TEST_LANDLOCK_ABI");
        if (cap && *cap && atoi(cap) >= 0 && atoi(cap) < sandbox_ll_abi) {
            log_warnx("sandbox: FNGATE_TEST_LANDLOCK_ABI=%s (a test setting): Landlock used "
                      "as ABI %d, not the kernel's %d",
                      cap, atoi(cap), sandbox_ll_abi);
            sandbox_ll_abi = atoi(cap);
        }
    }
    sandbox_seccomp_ok = syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
    /* As root every function has a uid of its own, which the kernel's own
     * signal check already keeps apart (and the waiting spare is root). */
    sandbox_signals = sandbox_seccomp_ok && sandbox_ll_abi < 6 && geteuid() != 0;
    if (sandbox_seccomp_ok &&
        (sandbox_build_seccomp() < 0 || (sandbox_signals && sandbox_signals_link() < 0))) {
        log_error("sandbox: cannot build the seccomp filter");
        return -1;
    }
    if (uname(&u) < 0)
        snprintf(u.release, sizeof(u.release), "?");
    if (sandbox_ll_abi == 0)
        snprintf(ll, sizeof(ll), "Landlock: not available (%s): filesystem not confined",
                 abi < 0 && errno == EOPNOTSUPP ? "disabled at boot" : "not in this kernel");
    else
        snprintf(ll, sizeof(ll), "Landlock ABI %d: filesystem%s%s", sandbox_ll_abi,
                 sandbox_ll_abi >= 4 ? ", no TCP bind" : " (TCP bind needs ABI 4)",
                 sandbox_ll_abi >= 6 ? ", signals and abstract sockets scoped"
                 : sandbox_signals   ? " (signal scoping needs ABI 6: seccomp lets an instance "
                                       "signal only itself and its own process group)"
                                     : " (signal scoping needs ABI 6)");
#ifdef FNGATE_SANITIZERS
    const char *san = " (sanitizer build: ptrace left to the kernel's checks)";
#else
    const char *san = "";
#endif
    log_info("sandbox: kernel %s; in force for every instance unless its sandbox = off: "
             "no_new_privs, seccomp %s%s, %s; instances of libfngate non-dumpable",
             u.release, sandbox_seccomp_ok ? "filter" : "NOT AVAILABLE", san, ll);
    return 0;
}

void sandbox_self(const char *who)
{
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        log_warn("%s: PR_SET_DUMPABLE", who);
}

/* Adds a path-beneath rule; a path that does not exist is skipped. */
static int sandbox_ll_add(int ruleset, const char *path, uint64_t access, bool must_exist,
                          char *err, size_t errlen)
{
    struct sandbox_ll_path_beneath pb;
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC);

    if (fd < 0) {
        if (!must_exist && errno == ENOENT)
            return 0;
        snprintf(err, errlen, "sandbox: %s: %s", path, strerror(errno));
        return -1;
    }
    /* Rights that only make sense on folders are refused on a file. */
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= SBX_FS_EXECUTE | SBX_FS_WRITE_FILE | SBX_FS_READ_FILE | SBX_FS_TRUNCATE |
                  SBX_FS_IOCTL_DEV;
    access &= sandbox_fs_handled();
    pb.allowed_access = access;
    pb.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ruleset, SBX_LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
        snprintf(err, errlen, "sandbox: landlock rule for %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Adds each path of the space-separated LIST. */
static int sandbox_ll_add_list(int ruleset, const char *list, uint64_t access, char *err,
                               size_t errlen)
{
    char path[4096];

    while (list && *list) {
        size_t n;
        list += strspn(list, " \t");
        n = strcspn(list, " \t");
        if (n == 0)
            break;
        if (n >= sizeof(path)) {
            snprintf(err, errlen, "sandbox: path too long");
            return -1;
        }
        memcpy(path, list, n);
        path[n] = '\0';
        if (sandbox_ll_add(ruleset, path, access, true, err, errlen) < 0)
            return -1;
        list += n;
    }
    return 0;
}

static int sandbox_ruleset(const struct discover_fn *d, const char *tmpdir, char *err,
                           size_t errlen)
{
    /* /run/systemd/resolve: where /etc/resolv.conf points under
     * systemd-resolved; without it DNS would fail in functions. */
    static const char *const ro[] = {"/usr",
                                     "/lib",
                                     "/lib64",
                                     "/lib32",
                                     "/libx32",
                                     "/bin",
                                     "/sbin",
                                     "/etc",
                                     "/proc",
                                     "/sys/devices/system/cpu",
                                     "/run/systemd/resolve"};
    static const char *const dev[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                      "/dev/urandom"};
    struct sandbox_ll_ruleset_attr attr;
    int fd;

    memset(&attr, 0, sizeof(attr));
    attr.handled_access_fs = sandbox_fs_handled();
    if (sandbox_ll_abi >= 4)
        attr.handled_access_net = SBX_NET_BIND_TCP;
    if (sandbox_ll_abi >= 6)
        attr.scoped = SBX_SCOPE_ABSTRACT_UNIX | SBX_SCOPE_SIGNAL;
    fd = (int)syscall(SYS_landlock_create_ruleset, &attr,
                      sandbox_ll_abi >= 6   ? sizeof(attr)
                      : sandbox_ll_abi >= 4 ? 2 * sizeof(uint64_t)
                                            : sizeof(uint64_t),
                      0);
    if (fd < 0) {
        snprintf(err, errlen, "sandbox: landlock_create_ruleset: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        uint64_t a = strcmp(ro[i], "/proc") == 0 || strncmp(ro[i], "/sys", 4) == 0 ||
                             strncmp(ro[i], "/run", 4) == 0
                         ? SBX_FS_READ_FILE | SBX_FS_READ_DIR
                         : SBX_RO;
        if (sandbox_ll_add(fd, ro[i], a, false, err, errlen) < 0)
            goto fail;
    }
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) {
        if (sandbox_ll_add(fd, dev[i], SBX_DEV, false, err, errlen) < 0)
            goto fail;
    }
    if (sandbox_ll_add(fd, d->dir, SBX_RO, true, err, errlen) < 0 ||
        (tmpdir && sandbox_ll_add(fd, tmpdir, sandbox_rw(), true, err, errlen) < 0) ||
        sandbox_ll_add_list(fd, d->set.sandbox_read, SBX_RO, err, errlen) < 0 ||
        sandbox_ll_add_list(fd, d->set.sandbox_write, sandbox_rw(), err, errlen) < 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

/* TMP_BASE/NAME, mode 0700, owned by the function's uid when root. */
static char *sandbox_tmpdir(const struct discover_fn *d, const struct ident *id,
                            const char *tmp_base, char *err, size_t errlen)
{
    struct stat st;
    char *path = NULL;

    if (mkdir(tmp_base, 0711) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp_base, strerror(errno));
        return NULL;
    }
    if (asprintf(&path, "%s/%s", tmp_base, d->name) < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((mkdir(path, 0700) < 0 && errno != EEXIST) || lstat(path, &st) < 0 ||
        !S_ISDIR(st.st_mode) || (id->drop && chown(path, id->uid, id->gid) < 0) ||
        chmod(path, 0700) < 0) {
        snprintf(err, errlen, "%s: cannot prepare the private temporary folder: %s", path,
                 errno ? strerror(errno) : "not a folder");
        free(path);
        return NULL;
    }
    return path;
}

struct sandbox_fn *sandbox_fn_new(const struct discover_fn *d, const struct ident *id,
                                  const char *tmp_base, char *err, size_t errlen)
{
    struct sandbox_fn *box = calloc(1, sizeof(*box));

    if (!box) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    box->ruleset_fd = -1;
    box->on = d->set.sandbox;
    errno = 0;
    box->tmpdir = sandbox_tmpdir(d, id, tmp_base, err, errlen);
    if (!box->tmpdir)
        goto fail;
    if (box->on && sandbox_ll_abi > 0) {
        box->ruleset_fd = sandbox_ruleset(d, box->tmpdir, err, errlen);
        if (box->ruleset_fd < 0)
            goto fail;
    }
    if (!box->on)
        log_warnx("[fn %s] sandbox = off: its instances run without seccomp or Landlock", d->name);
    return box;
fail:
    sandbox_fn_free(box);
    return NULL;
}

void sandbox_fn_free(struct sandbox_fn *box)
{
    if (!box)
        return;
    if (box->ruleset_fd >= 0)
        close(box->ruleset_fd);
    free(box->tmpdir);
    free(box);
}

const char *sandbox_fn_tmpdir(const struct sandbox_fn *box)
{
    return box ? box->tmpdir : NULL;
}

int sandbox_fn_ruleset(const struct sandbox_fn *box)
{
    return box && box->on ? box->ruleset_fd : -1;
}

bool sandbox_fn_on(const struct sandbox_fn *box)
{
    return box && box->on;
}

int sandbox_child_enter(int ruleset_fd, const char **what)
{
    return childsetup_enter(ruleset_fd, what);
}

int sandbox_child_seal(const char **what)
{
    return childsetup_seal(sandbox_filter(), what);
}

const struct sock_fprog *sandbox_filter(void)
{
    return sandbox_bpf ? &sandbox_prog : NULL;
}
