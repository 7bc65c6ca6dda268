/*
 * FastCGI records for the supervisor's own responders (refuse.c's 503s and
 * status.c's /_fngate/ pages): the 8-byte header, taking one complete
 * record off an input buffer, and writing a whole response as FCGI_STDOUT
 * records followed by FCGI_END_REQUEST.
 */
#ifndef FNGATE_FCGIREC_H
#define FNGATE_FCGIREC_H

#include <stddef.h>

#include <event2/buffer.h>

#define FCGIREC_BEGIN_REQUEST 1
#define FCGIREC_END_REQUEST 3
#define FCGIREC_PARAMS 4
#define FCGIREC_STDIN 5
#define FCGIREC_STDOUT 6
#define FCGIREC_HDR 8

/* One record as it came in. */
struct fcgirec {
    int type;
    unsigned reqid;
    size_t len;   /* content bytes */
    size_t total; /* header, content and padding */
};

void fcgirec_header(unsigned char *h, int type, unsigned reqid, size_t len);
/* 1 when IN starts with a complete record (described in *R, still in IN:
 * evbuffer_drain R->total once done with it), 0 when more bytes are needed. */
int fcgirec_peek(struct evbuffer *in, struct fcgirec *r);
/* Appends LEN bytes of DATA as FCGI_STDOUT records (any length). */
void fcgirec_stdout(struct evbuffer *out, unsigned reqid, const void *data, size_t len);
/* Appends the empty FCGI_STDOUT and FCGI_END_REQUEST (request complete). */
void fcgirec_end(struct evbuffer *out, unsigned reqid);

#endif
