/*
 * The pool's control socket, the sending side and the settings message:
 * one encoding of what the supervisor (poolctl.c) and the SDK's test
 * harness (functions/sdk/fn_test.c), the two programs that start an
 * fngate-pool, send it, and the pool's (pool_main.c) decoding of its
 * settings.  SOCK_SEQPACKET: each message arrives whole or not at all.
 */
#ifndef FNGATE_POOLWIRE_H
#define FNGATE_POOLWIRE_H

#include "pool.h"

#include <stddef.h>

/* The most bytes a settings message takes: what poolwire_recv_settings
 * needs for its buffer. */
#define POOLWIRE_SETTINGS_MAX (64 + POOL_CONNINFO_MAX + 1)

/* Sends SET (its conninfo too) on the new control socket FD, in one
 * message.  0, or -1 with errno (ENAMETOOLONG: the conninfo is longer than
 * POOL_CONNINFO_MAX; nothing was sent). */
int poolwire_send_settings(int fd, const struct pool_settings *set);

/* Waits for the settings message on FD and decodes it into SET, whose
 * conninfo then points into BUF (LEN bytes, POOLWIRE_SETTINGS_MAX at
 * least; the caller wipes it).  0, or -1 with errno: ENOMSG when no
 * settings arrived, EPROTO when they are malformed. */
int poolwire_recv_settings(int fd, char *buf, size_t len, struct pool_settings *set);

/* Sends HELLO with its HELLO->conninfo_len bytes of CONNINFO (may be NULL
 * when 0) and, when CHAN >= 0, the channel CHAN as SCM_RIGHTS, on FD;
 * FLAGS go to sendmsg (MSG_NOSIGNAL always).  0, or -1 with errno. */
int poolwire_send_hello(int fd, const struct pool_hello *hello, const char *conninfo, int chan,
                        int flags);

#endif
