/*
 * The status command is a FastCGI client of the supervisor's status
 * server, the same path nginx takes, so what it prints is what the
 * dashboard and Prometheus see.  The supervisor renders the table itself
 * (req/s needs its per-second samples); this side only frames the request
 * and unwraps FCGI_STDOUT.
 */
#include "config.h"

#include "statcmd.h"

#include "conf.h"
#include "fcgireq.h"
#include "sock.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATCMD_TIMEOUT_MS 5000
#define STATCMD_MAX (16 << 20)

static volatile sig_atomic_t statcmd_stop;

static void statcmd_on_int(int sig)
{
    (void)sig;
    statcmd_stop = 1;
}

static int statcmd_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&pfd, 1, STATCMD_TIMEOUT_MS) <= 0)
            return -1;
        r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Fetches PATH from the status socket; returns the HTTP body (malloc'ed,
 * NUL-terminated) or NULL with a message on stderr. */
static char *statcmd_fetch(const char *sock, const char *path)
{
    struct fcgireq *req;
    unsigned char h[8];
    bool sent;
    char *out = NULL, *body;
    size_t out_len = 0;
    int fd;

    fd = sock_connect(sock, 0);
    if (fd < 0 && errno == ENAMETOOLONG) {
        fprintf(stderr, "fngate status: %s: path too long\n", sock);
        return NULL;
    }
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "fngate status: cannot connect to %s: %s%s\n", sock, strerror(e),
                e == ENOENT || e == ECONNREFUSED
                    ? " (is `fngate serve` running with this configuration?)"
                : e == EACCES ? " (run it as the gateway's user, or as a member of socket_group)"
                              : "");
        return NULL;
    }
    req = fcgireq_new(1, false);
    sent = req && fcgireq_param(req, "REQUEST_METHOD", "GET") == 0 &&
           fcgireq_param(req, "FNGATE_STATUS_PATH", path) == 0 &&
           fcgireq_finish(req, NULL, 0) == 0 && write(fd, req->p, req->n) == (ssize_t)req->n;
    fcgireq_free(req);
    if (!sent)
        goto fail;
    for (;;) {
        size_t len;
        unsigned char pad[256];
        if (statcmd_read_full(fd, h, 8) < 0)
            goto fail;
        len = ((size_t)h[4] << 8) | h[5];
        if (h[1] == 6 && len) {
            char *n = out_len + len < STATCMD_MAX ? realloc(out, out_len + len + 1) : NULL;
            if (!n)
                goto fail;
            out = n;
            if (statcmd_read_full(fd, out + out_len, len) < 0)
                goto fail;
            out_len += len;
        } else if (len) {
            unsigned char skip[65536];
            if (statcmd_read_full(fd, skip, len) < 0)
                goto fail;
        }
        if (h[6] && statcmd_read_full(fd, pad, h[6]) < 0)
            goto fail;
        if (h[1] == 3)
            break;
    }
    close(fd);
    if (!out)
        goto fail_closed;
    out[out_len] = '\0';
    body = strstr(out, "\r\n\r\n");
    if (!body)
        goto fail_closed;
    if (strncmp(out, "Status: 200", 11) != 0) {
        fprintf(stderr, "fngate status: the gateway answered: %.*s\n", (int)strcspn(out, "\r"),
                out);
        free(out);
        return NULL;
    }
    body += 4;
    memmove(out, body, strlen(body) + 1);
    return out;
fail:
    close(fd);
fail_closed:
    fprintf(stderr, "fngate status: no valid answer from %s\n", sock);
    free(out);
    return NULL;
}

static void statcmd_usage(FILE *f)
{
    fprintf(f, "usage: fngate status [-c FILE] [--json] [--watch]\n");
}

int statcmd_main(int argc, char **argv, const char *default_conf)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"watch", no_argument, NULL, 'w'},
                                             {"config", required_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    const char *path = default_conf;
    char err[CONF_ERR_MAX], *sock = NULL;
    bool json = false, watch = false;
    struct conf *c;
    int ch, rc = 0;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:jw", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'w':
            watch = true;
            break;
        default:
            statcmd_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        statcmd_usage(stderr);
        return 2;
    }
    c = conf_load(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (asprintf(&sock, "%s/status.sock", c->gw.socket_dir) < 0) {
        conf_free(c);
        return 1;
    }
    conf_free(c);
    signal(SIGINT, statcmd_on_int);
    signal(SIGTERM, statcmd_on_int);
    do {
        char *body = statcmd_fetch(sock, json ? "/_fngate/status" : "/_fngate/status.txt");
        if (!body) {
            rc = 1;
            break;
        }
        if (watch && isatty(STDOUT_FILENO))
            fputs("\033[H\033[2J", stdout);
        if (watch && !json) {
            time_t t = time(NULL);
            char ts[32];
            strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
            printf("fngate status  %s  (Ctrl-C to stop)\n", ts);
        }
        fputs(body, stdout);
        fflush(stdout);
        free(body);
        if (watch) {
            struct timespec one = {1, 0};
            while (!statcmd_stop && nanosleep(&one, &one) < 0 && errno == EINTR)
                ;
        }
    } while (watch && !statcmd_stop);
    free(sock);
    return rc;
}
