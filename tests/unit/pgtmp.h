/*
 * A throwaway PostgreSQL server for tests that need real PGresults.  Tests
 * must not depend on a server someone else configured, and a crashed or
 * killed test must not leave a postmaster behind, so each call starts a
 * private cluster in a fresh temporary directory, reachable only through a
 * unix socket in that directory, and a watchdog process tears it down when
 * the test process goes away however it ends.
 */
#ifndef PGTMP_H
#define PGTMP_H

#include <sys/types.h>

struct pgtmp {
    char dir[128];      /* the cluster: data/, the socket, the logs */
    char bindir[256];   /* where initdb and pg_ctl were found */
    char conninfo[256]; /* libpq connection string for the superuser */
    pid_t watchdog;     /* stops the server and removes dir when wfd closes */
    int wfd;            /* write end of the watchdog's pipe; -1 when stopped */
    int unavailable;    /* pgtmp_start found no PostgreSQL server binaries */
    char err[512];      /* why pgtmp_start failed */
};

/* Creates a cluster (initdb) and starts it (pg_ctl -w), as user nobody when
 * running as root since PostgreSQL refuses to run as root.  The binaries come
 * from $PGTMP_BINDIR, else /usr/lib/postgresql/15/bin, else the newest
 * /usr/lib/postgresql/N/bin.  Takes a couple of seconds.  Returns 0, or -1 with
 * PG->err set (and PG->unavailable when the binaries are missing: a test can
 * then exit 77 to be reported as skipped).  Nothing is left behind on failure. */
int pgtmp_start(struct pgtmp *pg);
/* Stops the server (immediate shutdown) and removes the directory, waiting
 * for both.  Safe to call twice, or after a failed start. */
void pgtmp_stop(struct pgtmp *pg);
/* "host=DIR dbname=postgres user=postgres", for PQconnectdb. */
const char *pgtmp_conninfo(const struct pgtmp *pg);

#endif
