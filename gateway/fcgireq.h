/*
 * A FastCGI request written the way nginx writes one, built in memory and
 * sent in one go.  `fngate invoke`, `fngate status` and the SDK's unit tests
 * all play nginx towards a responder; with one writer they cannot drift
 * apart from each other in record framing, padding or name-value lengths.
 */
#ifndef FNGATE_FCGIREQ_H
#define FNGATE_FCGIREQ_H

#include <stdbool.h>
#include <stddef.h>

#define FCGIREQ_MAX_CONTENT 65535

/* One request: the records so far (P, N) and the PARAMS content not yet
 * framed.  Owns both buffers. */
struct fcgireq {
    unsigned char *p;
    size_t n, cap;
    unsigned id;
    unsigned char *params;
    size_t params_n, params_cap;
};

/* A request with id ID whose BEGIN_REQUEST (role responder, KEEP_CONN as
 * asked) is written; NULL when out of memory. */
struct fcgireq *fcgireq_new(unsigned id, bool keep_conn);
void fcgireq_free(struct fcgireq *r);
/* Adds the pair NAME = VALUE to the PARAMS stream: 0, or -1 (no memory). */
int fcgireq_param(struct fcgireq *r, const char *name, const char *value);
int fcgireq_param_n(struct fcgireq *r, const char *name, size_t nlen, const char *value,
                    size_t vlen);
/* Writes the PARAMS stream, then BODY as the STDIN stream, each split into
 * records of at most FCGIREQ_MAX_CONTENT bytes and ended by an empty one;
 * R->p and R->n are then the whole request.  0, or -1 (no memory). */
int fcgireq_finish(struct fcgireq *r, const void *body, size_t len);

#endif
