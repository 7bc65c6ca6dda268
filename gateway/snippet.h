/*
 * `fngate nginx`: the nginx location blocks for one gateway, made from the
 * fngate.inc this fngate was built with, so that several gateways (several
 * users on one shared host) can share one nginx server block.
 */
#ifndef FNGATE_SNIPPET_H
#define FNGATE_SNIPPET_H

#include <stddef.h>
#include <stdio.h>

/* The text of nginx/fngate.inc (gateway/snippet_inc.c, made by the build). */
extern const char snippet_fngate_inc[];

/* Writes to OUT the include for a gateway whose socket_dir is SOCKET_DIR,
 * serving functions at PREFIX/<name> ("/fn" for the include as it is),
 * with an exact location for each of the N NAMES in place of the include's
 * `include fngate-functions*.conf;`.  Returns 0, or -1 with ERR set when
 * PREFIX, SOCKET_DIR or a name cannot be written into nginx's
 * configuration. */
int snippet_write(FILE *out, const char *socket_dir, const char *prefix, const char *const *names,
                  size_t n, const char *conf_path, char *err, size_t errlen);

/* Writes to OUT the file fngate.inc picks up with `include
 * fngate-functions*.conf;`: for each of the N NAMES, `location = /fn/<name>`
 * with the body of the include's regex location, the name, an empty
 * FNGATE_PATH and the socket <SOCKET_DIR>/fn/<name>.sock written in (quoted
 * when SOCKET_DIR needs it).  Returns 0, or -1 with ERR set for a name
 * outside [a-z0-9][a-z0-9_-]{0,63} or a SOCKET_DIR nginx cannot take ($, a
 * control character); nothing is written then. */
int snippet_write_locations(FILE *out, const char *socket_dir, const char *const *names, size_t n,
                            const char *conf_path, char *err, size_t errlen);

/* `fngate nginx [--locations] [-c FILE] [--prefix PREFIX] [-o PATH]`: ARGV[0]
 * is "nginx". */
int snippet_main(int argc, char **argv, const char *default_conf);

#endif
