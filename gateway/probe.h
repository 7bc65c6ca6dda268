/*
 * Marks in socket_dir that let nginx's error path (nginx/fngate.inc,
 * @fngate_502) tell why a connect to a function's socket failed, with the
 * only tests nginx has (-f, -d, -x: stat, never connect):
 *
 *   <socket_dir>/fn/.fngate        a gateway serves this socket_dir
 *   <socket_dir>/fn/.access/ok     reachable exactly when the socket is
 *                                  writable, i.e. when connect(2) is allowed
 *   <socket_dir>/fn/.draining      the gateway is stopping or has stopped:
 *                                  no request reached a function, answer 503
 *                                  so a front retries it on another host
 */
#ifndef FNGATE_PROBE_H
#define FNGATE_PROBE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes both marks for sockets of MODE and group GID ((gid_t)-1: the
 * gateway's own), replacing older ones; again on every reload.  Returns 0,
 * or -1 with ERR set (the gateway runs on: only the error bodies suffer). */
int probe_write(const char *socket_dir, mode_t mode, gid_t gid, char *err, size_t errlen);

/* Marks the drain (SIGTERM): new requests find no socket and get 503. */
void probe_draining(const char *socket_dir);

/* At exit: removes .fngate and .access; .draining stays until the next start,
 * so a front keeps retrying this host's requests elsewhere meanwhile. */
void probe_remove(const char *socket_dir);

#endif
