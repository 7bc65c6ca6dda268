/*
 * `fngate dev [--port N] [--db] [DIR]`: the author's loop in one command.
 * Builds every function folder of DIR that has a Makefile, serves the
 * results through a gateway and an nginx of its own on 127.0.0.1:N (and a
 * throwaway Postgres with --db), prints each request, rebuilds a function
 * when one of its files changes and serves the new build within a second or
 * two; a failed build is printed and the previous build keeps serving.
 * Ctrl-C stops everything it started and removes its files.
 */
#ifndef FNGATE_DEV_H
#define FNGATE_DEV_H

#include <stdbool.h>

/* ARGV[0] is "dev".  Returns the exit code. */
int dev_main(int argc, char **argv);

/* Whether a change to file NAME in a function folder means a rebuild: not
 * the build's own outputs (handler, *.o, *.a, *.d) nor editors' droppings
 * (hidden files, *~, *.swp, *.tmp, vim's 4913). */
bool dev_is_source(const char *name);

#endif
