/*
 * `fngate status [-c FILE] [--json] [--watch]`: asks the running supervisor
 * over <socket_dir>/status.sock (the socket nginx maps /_fngate/ to) and
 * prints its table, or its JSON.
 */
#ifndef FNGATE_STATCMD_H
#define FNGATE_STATCMD_H

/* ARGV[0] is "status".  Returns the exit code. */
int statcmd_main(int argc, char **argv, const char *default_conf);

#endif
