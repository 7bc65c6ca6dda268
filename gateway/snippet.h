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
 * serving functions at PREFIX/<name> ("/fn" for the include as it is).
 * Returns 0, or -1 with ERR set when PREFIX or SOCKET_DIR cannot be written
 * into nginx's configuration. */
int snippet_write(FILE *out, const char *socket_dir, const char *prefix, const char *conf_path,
                  char *err, size_t errlen);

/* `fngate nginx [-c FILE] [--prefix PREFIX]`: ARGV[0] is "nginx". */
int snippet_main(int argc, char **argv, const char *default_conf);

#endif
