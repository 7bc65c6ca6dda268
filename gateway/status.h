/*
 * The supervisor's status server: a FastCGI responder on
 * <socket_dir>/status.sock that nginx maps /_fngate/ to.  It answers
 * /_fngate/status (JSON), /_fngate/status.txt (the `fngate status` table),
 * /_fngate/metrics (Prometheus text 0.0.4) and /_fngate/ (the dashboard),
 * on the supervisor's event loop, never on a function's request path.
 */
#ifndef FNGATE_STATUS_H
#define FNGATE_STATUS_H

#include <event2/event.h>
#include <sys/types.h>

struct metrics;
struct status;

/* Listens on <SOCKET_DIR>/status.sock (MODE, group GID unless -1).  MX is
 * borrowed.  NULL with ERR set on failure. */
struct status *status_new(struct event_base *base, const char *socket_dir, mode_t mode, gid_t gid,
                          struct metrics *mx, char *err, size_t errlen);
/* Applies a reloaded socket_mode and socket_group (GID -1: unchanged). */
void status_set_perms(struct status *st, mode_t mode, gid_t gid);
/* Closes and unlinks the socket; open connections are dropped. */
void status_free(struct status *st);

/* The dashboard page (dashboard_html.c, made from gateway/dashboard.html). */
extern const char status_dashboard_html[];

#endif
