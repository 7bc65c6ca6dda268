/*
 * The supervisor: `fngate serve`.  Owns the event loop, the function table
 * and every instance; spawns on demand, reaps, times out, reloads on SIGHUP
 * and drains on SIGTERM.  It is never on the request path: nginx connects
 * straight to a function's socket and an idle instance accepts.
 */
#ifndef FNGATE_SUP_H
#define FNGATE_SUP_H

/* Runs until SIGTERM/SIGINT has drained everything.  Returns the process
 * exit code: 0 after a clean drain, 1 when start-up failed (logged). */
int sup_run(const char *conf_path);

#endif
