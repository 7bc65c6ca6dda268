/*
 * The few FastCGI record operations the supervisor's responders share.
 * Lengths are checked against what the buffer holds before anything is
 * read past the header, so a client sending garbage only ever costs the
 * bytes it sent (each responder bounds those).
 */
#include "config.h"

#include "fcgirec.h"

void fcgirec_header(unsigned char *h, int type, unsigned reqid, size_t len)
{
    h[0] = 1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(reqid >> 8);
    h[3] = (unsigned char)reqid;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)len;
    h[6] = 0;
    h[7] = 0;
}

int fcgirec_peek(struct evbuffer *in, struct fcgirec *r)
{
    unsigned char h[FCGIREC_HDR];

    if (evbuffer_get_length(in) < sizeof(h))
        return 0;
    evbuffer_copyout(in, h, sizeof(h));
    r->type = h[1];
    r->reqid = ((unsigned)h[2] << 8) | h[3];
    r->len = ((size_t)h[4] << 8) | h[5];
    r->total = sizeof(h) + r->len + h[6];
    return evbuffer_get_length(in) >= r->total;
}

void fcgirec_stdout(struct evbuffer *out, unsigned reqid, const void *data, size_t len)
{
    const char *p = data;
    unsigned char h[FCGIREC_HDR];

    while (len > 0) {
        size_t k = len > 32768 ? 32768 : len;
        fcgirec_header(h, FCGIREC_STDOUT, reqid, k);
        evbuffer_add(out, h, sizeof(h));
        evbuffer_add(out, p, k);
        p += k;
        len -= k;
    }
}

void fcgirec_end(struct evbuffer *out, unsigned reqid)
{
    unsigned char h[FCGIREC_HDR], end[8] = {0}; /* appStatus 0, FCGI_REQUEST_COMPLETE */

    fcgirec_header(h, FCGIREC_STDOUT, reqid, 0);
    evbuffer_add(out, h, sizeof(h));
    fcgirec_header(h, FCGIREC_END_REQUEST, reqid, sizeof(end));
    evbuffer_add(out, h, sizeof(h));
    evbuffer_add(out, end, sizeof(end));
}
