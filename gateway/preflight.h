/*
 * What serve needs before it can run, checked the same way by `fngate serve`
 * (at start and on every reload) and by `fngate check`, so that check never
 * says ok where serve then fails.  Two levels: gateway-level problems
 * (users, groups, socket_group membership, socket_dir, functions_dir,
 * database_url) refuse the start or the reload; a function its instances
 * could not run (folder or handler the instance user cannot reach, socket
 * path too long) is only disabled, with the reason, while the others serve.
 */
#ifndef FNGATE_PREFLIGHT_H
#define FNGATE_PREFLIGHT_H

#include "conf.h"
#include "discover.h"

/* Receives one problem, a whole line without newline ("file:line: reason"
 * or "path: reason"). */
typedef void preflight_report_fn(void *arg, const char *problem);

/* Reporters for serve: each problem as one log_error or log_warnx line. */
void preflight_report_error(void *arg, const char *problem);
void preflight_report_warn(void *arg, const char *problem);

/* A reporter that joins the problems, "; " between them, into TEXT (cut to
 * fit): for one log line and one answer to `fngate reload`. */
struct preflight_joined {
    char text[CONF_ERR_MAX * 2];
};
void preflight_report_join(void *arg, const char *problem);

/* Reports every gateway-level problem of C through REPORT; returns how many
 * there were (0: serve can start with C). */
int preflight_gateway(const struct conf *c, preflight_report_fn *report, void *arg);

/* Disables (discover_fn_disable) each function of L whose instances could not
 * run, trying access as the very user they run as.  Returns 0, or -1 when
 * out of memory. */
int preflight_functions(const struct conf *c, struct discover_list *l);

#endif
