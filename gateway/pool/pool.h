/*
 * The pool process: the only holder of the database URL and of server
 * connections.  It serves every instance's channel (one socketpair end each,
 * handed over by the supervisor with SCM_RIGHTS on the control socket), runs
 * their queries on at most pool_size libpq connections, and answers with
 * JSON rendered straight from the PGresult.
 */
#ifndef FNGATE_POOL_H
#define FNGATE_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct pool_settings {
    const char *conninfo; /* a libpq URI or conninfo string */
    int pool_size;
    int min_pool;
    int64_t db_wait_timeout_ms;
    int64_t max_result;
    int64_t max_query; /* largest query frame an instance may send */
    bool prepared;     /* cache named prepared statements per server connection */
    int stmt_cache;    /* statements kept per connection (LRU) */
};

/* The first message on the control socket carries the settings and the
 * connection string (never argv or the environment, where other users
 * could read the password): poolwire.h. */
#define POOL_CONNINFO_MAX 8192

/* A message on the control socket after the settings: a channel hand-over
 * (with the descriptor, SCM_RIGHTS) or, without one, the supervisor's word
 * that instance PID was reaped, so the pool closes its channel and no fd 3
 * outlives its instance (a descendant that kept a copy is cut off too). */
struct pool_hello {
    uint32_t version;
    uint32_t kind;                /* POOL_HELLO_CHANNEL or POOL_HELLO_REAPED */
    int32_t pid;                  /* the instance */
    int32_t max_db_connections;   /* the function's share; 0: pool_size */
    int64_t statement_timeout_ms; /* 0: the server's default */
    int64_t request_timeout_ms;   /* 0: none */
    char fn[72];
    uint32_t conninfo_len; /* this many bytes of the function's own
                              database_url follow; 0: the gateway's */
};

#define POOL_HELLO_VERSION 3

/* The pool's one message to the supervisor, once its loop is set up: from
 * then on channels are handed to it (before, a pool that cannot start
 * would take them down with it). */
#define POOL_READY 'R'
#define POOL_HELLO_CHANNEL 0
#define POOL_HELLO_REAPED 1

/* A connection keeps a JSON buffer this large for the next answer. */
#define POOL_JSON_KEEP ((size_t)1 << 20)

/* SQLSTATEs of the pool's own errors (class FG is fngate's). */
#define POOL_ERR_TIMEOUT "FG001"   /* waited longer than db_wait_timeout */
#define POOL_ERR_TOO_LARGE "FG002" /* result over max_result */
#define POOL_ERR_REQUEST "FG003"   /* malformed request */
/* FG004 (no database configured) is the SDK's; FG005 (no pool process
 * running) the supervisor's, which answers for the pool while it is down. */
#define POOL_ERR_CONNECT "08001" /* cannot reach the database */
#define POOL_ERR_LOST "08006"    /* connection lost during the query */

/* Runs the pool until the control socket CTL_FD closes.  Returns the exit
 * code.  (fngate-pool's main reads the settings and calls it.) */
int pool_main(const struct pool_settings *set, int ctl_fd);

#endif
