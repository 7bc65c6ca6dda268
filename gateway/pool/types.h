/*
 * The pool's shared data: the pool itself, an instance's channel (struct
 * client, client.c) and a server connection (struct server, server.c).
 * Every module of fngate-pool works on these; each module's own header says
 * which of their fields it owns.
 */
#ifndef FNGATE_POOL_TYPES_H
#define FNGATE_POOL_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "fnsdk_buf.h"
#include "fnsdk_frame.h"
#include "pgjson.h"
#include "pool.h"
#include "poolstat.h"
#include "stmt.h"

struct pool;
struct server;

/* A function's place in dispatch: its waiting queries, in arrival order,
 * and how many server connections it holds against its share.  Shared by
 * every channel of that function (refcounted by them). */
struct fnq {
    struct fnq *next; /* the pool's ring, in arrival order */
    char name[72];
    int share;      /* max_db_connections, 1..pool_size */
    char *conninfo; /* owned: its own database_url, NULL: the gateway's */
    int busy;       /* server connections running (or holding) its queries */
    int nclients;
    struct client *head, *tail;
    int nwait;
    struct stmt_bigset big; /* its statements read row by row for good */
};

/* One instance's channel. */
struct client {
    struct client *next;  /* all clients */
    struct client *wnext; /* its function's wait queue */
    struct fnq *fq;       /* its function's queue (a reference) */
    struct pool *pool;
    int fd;
    struct event *rev, *wev;
    struct pool_hello hello;
    struct fnsdk_frame_reader rd;
    struct fnsdk_buf out;
    size_t out_off;
    size_t unsent; /* counted in pool->unsent */
    /* The query in flight: payload copy and libpq-ready parameters. */
    bool has_query;
    bool waiting;
    char *qbuf; /* owned: NUL-terminated sql and values */
    const char *sql;
    int nparams;
    const char **values; /* owned array; entries point into qbuf or NULL */
    int64_t queued_ns;
    int64_t started_ns; /* a connection took it (0: not yet) */
    int stat_idx;       /* its function's entry in the statistics */
    char trace[33];     /* the query's trace id, "" if none */
    struct server *conn;
    struct server *pinned; /* the connection holding its open transaction */
    bool dead;             /* channel closed while its query runs */
};

/* PC_PINNED: idle inside one client's transaction, for that client only. */
enum server_state { PC_FREE, PC_CONNECTING, PC_IDLE, PC_BUSY, PC_PINNED };
/* In the order a query runs them; each is optional but EXEC.  OP_SYNC: a
 * pipelined query's results are in, its pipeline's end is awaited. */
enum server_op { OP_NONE, OP_RESET, OP_SET, OP_DEALLOC, OP_PREPARE, OP_EXEC, OP_SYNC };

struct server {
    struct pool *pool;
    int idx;
    enum server_state state;
    PGconn *pg;
    struct event *rev, *wev, *cev;
    int64_t timeout_cur; /* statement_timeout in force, 0: the server's */
    struct client *client;
    enum server_op op;
    struct stmt *cur_stmt;
    bool retried;
    char owner[72];        /* the function whose queries the session last ran */
    bool need_reset;       /* the query in hand is another function's: reset first */
    bool piped;            /* the reset, its SET and the query went as one pipeline */
    bool pipe_set;         /* that pipeline holds a SET statement_timeout */
    struct event *tev;     /* the pool's own statement_timeout for the query in hand */
    int timed_out;         /* 1: cancelled for statement_timeout, 2: dropped */
    size_t errmark;        /* PQerrorMessage's length before the current read */
    bool cancelled;        /* a cancel was sent: never reuse this session */
    char dealloc[24];      /* a statement to DEALLOCATE before the next PREPARE */
    PGresult *result;      /* the EXEC's result, owned */
    PGresult *error;       /* the first error of this query, owned */
    struct fnq *fq;        /* whose share this connection counts against now */
    char *ident;           /* owned: the conninfo it logged in with, NULL: the gateway's */
    struct client *pinned; /* the client whose transaction this session is in */
    struct event *pin_ev;  /* that transaction's request_timeout */
    struct stmt_cache stmts;
    /* The EXEC's rows, read in single-row mode and rendered as they come
     * (so max_result holds while reading): the JSON array so far, capped
     * at max_result; once past it, the rest is read and dropped. */
    struct pgjson_rows *rows; /* owned, made on the first EXEC */
    struct fnsdk_buf json;
    long nrows;     /* rows the server sent for the EXEC, kept or not */
    bool too_large; /* the rendered rows passed max_result */
    /* How the EXEC is read (server.c, rxcount.c): whole, without single-row
     * mode, when its statement's results have stayed small; the bytes read
     * from the socket are counted either way, to learn each statement's
     * size and to cut a whole read off at the guard. */
    bool rx_armed;      /* the socket's bytes are counted */
    bool whole;         /* the EXEC in hand is read whole */
    bool noticed;       /* a notice was parsed in this read (server_notice) */
    struct stmt *sized; /* its statement (in stmts), whose size it teaches */
};

struct pool {
    struct pool_settings set;
    struct event_base *base;
    int ctl_fd;
    struct event *ctl_ev, *tick_ev, *sig_ev[2];
    struct client *clients;
    struct fnq *fnqs; /* every function with a channel */
    size_t unsent;    /* answer bytes waiting for their instances to read them */
    struct fnq *rr;   /* the function served last */
    int nwait;        /* queries waiting, all functions */
    struct server *conns;
    int connect_failures;
    int64_t connect_after_ns;
    char conn_err[256];
    struct poolstat_shm *stats; /* never NULL */
};

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t pool_now_ns(void);
/* Strips the newline and spaces libpq ends its messages with. */
void pool_chomp(char *s);

#endif
