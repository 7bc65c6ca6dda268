/*
 * `fngate invoke`: calls one function over its socket as FastCGI, no web
 * server needed.
 */
#ifndef FNGATE_INVOKE_H
#define FNGATE_INVOKE_H

/* ARGV[0] is "invoke"; -c defaults to DEFAULT_CONF.  Returns the exit status: 0 for a 2xx answer, 1
 * for any other status, 2 when the function could not be called. */
int invoke_main(int argc, char **argv, const char *default_conf);

#endif
