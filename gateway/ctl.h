/*
 * Reaching one running gateway: `fngate serve` writes its pid into
 * <socket_dir>/fngate.pid once it holds <socket_dir>/fngate.lock, and
 * `fngate reload` and `fngate stop` signal only the process that the pid
 * file names and that holds that lock, never another fngate on the host.
 */
#ifndef FNGATE_CTL_H
#define FNGATE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes this process's pid into <SOCKET_DIR>/fngate.pid (atomically).
 * Call only while holding the socket_dir lock.  Returns 0, or -1 with ERR. */
int ctl_pid_write(const char *socket_dir, char *err, size_t errlen);

/* Removes <SOCKET_DIR>/fngate.pid if it still names this process. */
void ctl_pid_remove(const char *socket_dir);

/* The pid of the gateway that owns SOCKET_DIR: 0 with *PID set, or -1 with
 * ERR saying why there is none ("no fngate is running with ..."). */
int ctl_find(const char *socket_dir, pid_t *pid, char *err, size_t errlen);

/* True while some process holds SOCKET_DIR's lock. */
bool ctl_running(const char *socket_dir);

/* Called by the gateway after each reload: OK and TEXT ("reloaded: ...", or
 * why it was refused) go to <SOCKET_DIR>/fngate.reload, where `fngate
 * reload` waits for them. */
void ctl_reload_done(const char *socket_dir, bool ok, const char *text);

/* `fngate reload` (SIGHUP, then waits for the gateway's verdict) or `fngate
 * stop` (SIGTERM, then waits until the gateway has exited) for the gateway
 * owning CONF_PATH's socket_dir.  Returns the exit code: 0 done, 1 no such
 * gateway, a bad file or a refused reload. */
int ctl_command(const char *conf_path, bool stop);

#endif
