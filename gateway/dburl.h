/*
 * The syntax of database_url, checked before anything connects: the libpq
 * connection string ("host=/run/postgresql dbname=app") or URI
 * ("postgresql://user@host/db?sslmode=require") the pool will hand to
 * PQconnectdb.  The supervisor never links libpq (only the pool process
 * does), so the grammar and keywords are checked here.
 */
#ifndef FNGATE_DBURL_H
#define FNGATE_DBURL_H

#include <stddef.h>

/* Returns 0 when URL would parse, or -1 with libpq's own wording of the
 * problem in WHY.  WHY never contains a value (a password may be one). */
int dburl_check(const char *url, char *why, size_t whylen);

#endif
