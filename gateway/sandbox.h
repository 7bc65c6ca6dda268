/*
 * The sandbox every instance starts in, with and without root: no_new_privs,
 * a seccomp filter (gateway/sandbox.c lists what it denies), and a Landlock
 * domain where the kernel has Landlock (read its own folder and the system's
 * libraries, write only a private temporary folder, no TCP bind; signals and
 * abstract unix sockets scoped to the instance from ABI 6; below it, and
 * without root, the seccomp filter lets an instance signal only itself and
 * its own process group).  Each instance
 * gets a Landlock domain of its own, so instances cannot ptrace, signal or
 * read /proc of one another even when they share a uid.  Non-dumpable is set
 * by the SDK after exec (execve resets it); the gateway and the pool make
 * themselves non-dumpable with sandbox_self.
 */
#ifndef FNGATE_SANDBOX_H
#define FNGATE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct discover_fn;
struct sock_fprog;
struct ident;

/* One function's prepared sandbox: its Landlock ruleset (built once, applied
 * by every instance) and its private temporary folder. */
struct sandbox_fn;

/* Probes the running kernel once and logs what it supports and what is in
 * force.  Returns -1 (logged) when the seccomp program cannot be built. */
int sandbox_init(void);
/* Makes the calling process non-dumpable: no same-uid process can ptrace
 * it or read its /proc/<pid>/environ, mem or fd. */
void sandbox_self(const char *who);

/* Prepares function D's sandbox; TMP_BASE is the folder its private temporary
 * folder goes in (created, owned by ID when root).  Returns NULL with ERR set. */
struct sandbox_fn *sandbox_fn_new(const struct discover_fn *d, const struct ident *id,
                                  const char *tmp_base, char *err, size_t errlen);
void sandbox_fn_free(struct sandbox_fn *box);
/* The private temporary folder (TMPDIR of its instances); NULL when none. */
const char *sandbox_fn_tmpdir(const struct sandbox_fn *box);
/* The Landlock ruleset's descriptor, -1 when Landlock is not in force. */
int sandbox_fn_ruleset(const struct sandbox_fn *box);
bool sandbox_fn_on(const struct sandbox_fn *box);

/* In the child between fork and exec, async-signal-safe (no allocation).
 * sandbox_child_enter sets no_new_privs and enters a new Landlock domain
 * from RULESET_FD (-1: none); sandbox_child_seal loads the seccomp filter,
 * last before execve.  Return 0, or -1 with errno set and *WHAT naming the
 * step. */
int sandbox_child_enter(int ruleset_fd, const char **what);
int sandbox_child_seal(const char **what);
/* The seccomp program every instance loads (childsetup_seal), NULL when the
 * kernel has no seccomp.  Owned by this module; a spare gets a copy of it
 * in its assignment, so both ways of starting load the same filter. */
const struct sock_fprog *sandbox_filter(void);

#endif
