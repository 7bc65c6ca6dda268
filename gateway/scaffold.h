/*
 * `fngate new`: scaffolds a function folder that builds and tests against
 * an installed fngate.
 */
#ifndef FNGATE_SCAFFOLD_H
#define FNGATE_SCAFFOLD_H

/* ARGV[0] is "new".  Returns the exit status (0, 1 on a file error, 2 on
 * bad usage). */
int scaffold_main(int argc, char **argv);

#endif
