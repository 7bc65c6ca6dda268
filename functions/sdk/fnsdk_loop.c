/*
 * The instance's main loop: FN_MAIN's body.  The one hard requirement is that
 * an instance told to stop never takes a connection it will not serve (the
 * race php-fpm and uWSGI have between an idle kill and a request that just
 * arrived).  So the loop does its own accept, non-blocking, and SIGTERM is
 * blocked everywhere except inside epoll_pwait, the only place the instance
 * waits: the signal either lands while nothing is accepted (and the instance
 * leaves at once) or stays pending until the request in hand is finished.
 * The accepted connection is then handed to libfcgi, which parses the
 * protocol.  EPOLLEXCLUSIVE wakes one waiting instance per connection instead
 * of the whole herd.
 *
 * A request timeout arrives as SIGUSR1 from the gateway: the handler writes a
 * complete FastCGI 504 response straight to the connection (if nothing was
 * written yet) with async-signal-safe writes, and exits.  SIGUSR2 is the
 * gateway's question when it sees a connection older than request_timeout
 * but cannot tell which instance holds it: an instance whose own request is
 * that old times out the same way, any other carries on.
 *
 * An instance whose database channel the pool closed (a protocol error,
 * unread answers, the pool restarting) could only answer 08006 from then
 * on, and the supervisor cannot tell.  So the channel is watched in the
 * same epoll_pwait, and peeked at before each accept that did not follow
 * a quiet wait: such an instance leaves before taking another request, and
 * the supervisor starts one with a new channel.
 */
#include "config.h"

#include "fnsdk_loop.h"
#include "fnsdk_scoreboard.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FNSDK_EXIT_TIMEOUT 3

static volatile sig_atomic_t fnsdk_stop;
static volatile sig_atomic_t fnsdk_in_request;
static volatile sig_atomic_t fnsdk_resp_started;
static volatile sig_atomic_t fnsdk_conn_fd = -1;
static volatile sig_atomic_t fnsdk_conn_reqid;
/* Aligned 64-bit words: single loads and stores on every target we build. */
static volatile int64_t fnsdk_req_start_ns;
/* The request in hand once its parameters are read, and when it was
 * accepted: what the timeout handler logs. */
static fn_req *volatile fnsdk_cur_req;
static struct timespec fnsdk_req_wall;
static int64_t fnsdk_req_timeout_ns;

static struct fnsdk_scoreboard_slot fnsdk_local_slot;
static struct fnsdk_scoreboard_slot *fnsdk_slot = &fnsdk_local_slot;
/* The request-log ring after the slot; NULL when request_log is off. */
static char *fnsdk_log_ring;
static uint64_t fnsdk_log_size;
static bool fnsdk_first_done;

static int64_t fnsdk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fnsdk_loop_request_stop(void)
{
    fnsdk_stop = 1;
}

void fnsdk_loop_response_started(void)
{
    fnsdk_resp_started = 1;
}

static void fnsdk_on_term(int sig)
{
    (void)sig;
    fnsdk_stop = 1;
}

/* Appends a FastCGI record header to P. */
static unsigned char *fnsdk_rec(unsigned char *p, int type, int reqid, size_t len)
{
    p[0] = 1;
    p[1] = (unsigned char)type;
    p[2] = (unsigned char)(reqid >> 8);
    p[3] = (unsigned char)reqid;
    p[4] = (unsigned char)(len >> 8);
    p[5] = (unsigned char)len;
    p[6] = 0;
    p[7] = 0;
    return p + 8;
}

static void fnsdk_slot_count_timeout(void);
static void fnsdk_reqlog_timeout(void);

static void fnsdk_on_timeout(int sig)
{
    static const char head[] = "Status: 504 Gateway Timeout\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 53\r\n";
    static const char body[] = "\r\n{\"error\":\"the function exceeded its request_timeout\"}";
    unsigned char buf[sizeof(head) + sizeof(body) + 128 + 64], *p = buf;
    /* The X-Request-Id every other response carries (at most 128 bytes). */
    const char *id = fnsdk_cur_req ? fnsdk_res_id_value() : NULL;
    size_t idlen = id ? strlen(id) : 0;
    int fd = fnsdk_conn_fd;
    (void)sig;

    if (!fnsdk_in_request) {
        fnsdk_stop = 1;
        return;
    }
    if (!fnsdk_resp_started && fd >= 0) {
        p = fnsdk_rec(p, 6 /* FCGI_STDOUT */, fnsdk_conn_reqid,
                      sizeof(head) - 1 + (id ? 16 + idlen : 0) + sizeof(body) - 1);
        memcpy(p, head, sizeof(head) - 1);
        p += sizeof(head) - 1;
        if (id) {
            memcpy(p, "X-Request-Id: ", 14);
            memcpy(p + 14, id, idlen);
            memcpy(p + 14 + idlen, "\r\n", 2);
            p += 16 + idlen;
        }
        memcpy(p, body, sizeof(body) - 1);
        p += sizeof(body) - 1;
        p = fnsdk_rec(p, 6, fnsdk_conn_reqid, 0);
        p = fnsdk_rec(p, 3 /* FCGI_END_REQUEST */, fnsdk_conn_reqid, 8);
        memset(p, 0, 8); /* appStatus 0, FCGI_REQUEST_COMPLETE */
        p += 8;
        if (write(fd, buf, (size_t)(p - buf)) == p - buf) {
            fnsdk_slot_count_timeout(); /* the client has its 504: count it */
            fnsdk_reqlog_timeout();
        }
    }
    (void)!write(2, "fngate: request timeout: answered 504, exiting\n", 47);
    _exit(FNSDK_EXIT_TIMEOUT);
}

static void fnsdk_on_check(int sig)
{
    if (fnsdk_in_request && fnsdk_req_timeout_ns > 0 &&
        fnsdk_now_ns() - fnsdk_req_start_ns >= fnsdk_req_timeout_ns)
        fnsdk_on_timeout(sig);
}

static long fnsdk_env_long(const char *name, long def)
{
    const char *v = getenv(name);
    char *end;
    long r;

    if (!v || !*v)
        return def;
    r = strtol(v, &end, 10);
    return *end ? def : r;
}

/* Maps the scoreboard slot the gateway passed, if any. */
static void fnsdk_scoreboard_attach(void)
{
    long fd = fnsdk_env_long("FNGATE_SB_FD", -1);
    struct stat st;
    size_t size = sizeof(struct fnsdk_scoreboard_slot);
    void *m;

    if (fd < 0)
        return;
    /* The gateway sealed the size: anything past the slot is the ring. */
    if (fstat((int)fd, &st) == 0 && (uint64_t)st.st_size > size &&
        (uint64_t)st.st_size - size <= (UINT64_C(1) << 30))
        size = (size_t)st.st_size;
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    close((int)fd);
    if (m == MAP_FAILED) {
        fprintf(stderr, "fngate: cannot map the scoreboard: %s\n", strerror(errno));
        return;
    }
    fnsdk_slot = m;
    if (size > sizeof(struct fnsdk_scoreboard_slot)) {
        fnsdk_log_ring = (char *)m + sizeof(struct fnsdk_scoreboard_slot);
        fnsdk_log_size = size - sizeof(struct fnsdk_scoreboard_slot);
    }
    fnsdk_slot->version = FNSDK_SCOREBOARD_VERSION;
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->magic, FNSDK_SCOREBOARD_MAGIC);
}

static void fnsdk_slot_idle(int64_t now)
{
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->idle_since_ns, now);
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->state, (uint32_t)FNSDK_SCOREBOARD_IDLE);
}

static int fnsdk_setup_signals(sigset_t *waitmask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = fnsdk_on_term; /* no SA_RESTART: interrupt epoll_pwait */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = fnsdk_on_timeout;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = fnsdk_on_check;
    sigaction(SIGUSR2, &sa, NULL);

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    if (sigprocmask(SIG_BLOCK, &block, waitmask) < 0)
        return -1;
    sigdelset(waitmask, SIGTERM);
    sigdelset(waitmask, SIGINT);
    return 0;
}

/* Answers a request that waited in the queue longer than queue_timeout
 * without running the handler: under overload, fail fast. */
static bool fnsdk_queue_expired(fn_req *req, fn_res *res, const struct fnsdk_limits *lim)
{
    int64_t arrival = fnsdk_req_arrival_ms(req), now_ms, waited;
    struct timespec ts;

    if (lim->queue_timeout_ms <= 0 || arrival < 0)
        return false;
    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    waited = now_ms - arrival;
    if (waited <= lim->queue_timeout_ms)
        return false;
    /* The supervisor's queue police answers at the deadline; this is for
     * what an instance accepts in the moment before it does. */
    fn_set_header(res, "Retry-After", "1");
    fn_error(res, 503, "no instance free: waited %lld ms in the queue (queue_timeout %lld ms)",
             (long long)waited, (long long)lim->queue_timeout_ms);
    fn_log("request %s waited %lld ms in the queue: 503", fn_request_id(req), (long long)waited);
    return true;
}

/* Single writer: a load and a store, no locked instruction. */
#define FNSDK_SCOREBOARD_BUMP(field, by)                                                           \
    FNSDK_SCOREBOARD_STORE(field, FNSDK_SCOREBOARD_LOAD(field) + (by))

static void fnsdk_slot_count_code(int status)
{
    struct fnsdk_scoreboard_code *c = fnsdk_slot->codes;
    int i;

    for (i = 0; i < FNSDK_SCOREBOARD_CODES - 1; i++) {
        uint32_t code = FNSDK_SCOREBOARD_LOAD(c[i].code);
        if (code == (uint32_t)status)
            break;
        if (code == 0) {
            FNSDK_SCOREBOARD_STORE(c[i].code, (uint32_t)status);
            break;
        }
    }
    /* A full table counts the rest in its last entry, code 0 ("other"). */
    FNSDK_SCOREBOARD_BUMP(c[i].n, 1);
}

/* The 504 the timeout handler wrote, counted like any response: plain
 * stores and clock_gettime, both async-signal-safe. */
static void fnsdk_slot_count_timeout(void)
{
    int64_t dur = fnsdk_now_ns() - fnsdk_req_start_ns;

    fnsdk_slot_count_code(504);
    FNSDK_SCOREBOARD_BUMP(fnsdk_slot->dur_hist[fnsdk_scoreboard_hist_bucket(dur)], 1);
    FNSDK_SCOREBOARD_BUMP(fnsdk_slot->dur_sum_ns, (uint64_t)dur);
}

/* Appends S as JSON string content (quotes not included); invalid UTF-8
 * becomes U+FFFD so the line stays valid JSON whatever a client sent. */
static size_t fnsdk_json_esc(char *out, size_t cap, const char *s)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    while (*p && n + 12 < cap) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hexd[c >> 4];
            out[n + 5] = hexd[c & 15];
            n += 6;
            p++;
        } else if (c < 0x80) {
            out[n++] = (char)c;
            p++;
        } else {
            int len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            int ok = len > 0;
            for (int i = 1; ok && i < len; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok) {
                memcpy(out + n, p, (size_t)len);
                n += (size_t)len;
                p += len;
            } else {
                memcpy(out + n, "\\ufffd", 6);
                n += 6;
                p++;
            }
        }
    }
    return n;
}

/* V in decimal, at least WIDTH digits, at P; returns the end. */
static char *fnsdk_put_dec(char *p, uint64_t v, int width)
{
    char digits[20];
    int n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        digits[n++] = '0';
    while (n)
        *p++ = digits[--n];
    return p;
}

/* NS as milliseconds with three decimals ("12.345"); returns the end. */
static char *fnsdk_put_ms(char *p, int64_t ns)
{
    p = fnsdk_put_dec(p, (uint64_t)(ns / 1000000), 1);
    *p++ = '.';
    return fnsdk_put_dec(p, (uint64_t)(ns / 1000 % 1000), 3);
}

/* WALL as "2026-12-02T03:04:05.678" (UTC), by hand: gmtime_r and strftime
 * are not async-signal-safe, and the timeout handler logs too. */
static char *fnsdk_put_time(char *p, const struct timespec *wall)
{
    /* Days since 1970-01-01 to a civil date (the proleptic Gregorian
     * calendar, in eras of 400 years starting on March 1st). */
    int64_t days = wall->tv_sec / 86400, sod = wall->tv_sec % 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    uint64_t doe = (uint64_t)(z - era * 146097);
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    uint64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);

    p = fnsdk_put_dec(p, (uint64_t)y, 4);
    *p++ = '-';
    p = fnsdk_put_dec(p, m, 2);
    *p++ = '-';
    p = fnsdk_put_dec(p, d, 2);
    *p++ = 'T';
    p = fnsdk_put_dec(p, (uint64_t)(sod / 3600), 2);
    *p++ = ':';
    p = fnsdk_put_dec(p, (uint64_t)(sod / 60 % 60), 2);
    *p++ = ':';
    p = fnsdk_put_dec(p, (uint64_t)(sod % 60), 2);
    *p++ = '.';
    return fnsdk_put_dec(p, (uint64_t)(wall->tv_nsec / 1000000), 3);
}

#define FNSDK_PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* One request-log line into the ring, or a drop when the gateway has not
 * kept up: never a wait or a syscall on the request path.  The gateway adds
 * the function's name and the pid itself (it does not take them from us).
 * Async-signal-safe (no stdio, no allocation): the timeout handler logs the
 * 504 it wrote with it. */
static void fnsdk_reqlog(fn_req *req, int status, const struct timespec *wall, int64_t dur_ns,
                         int64_t queue_ns, bool cold)
{
    char line[2048], *p = line;
    const char *trace = fn_trace_id(req);
    uint64_t head = fnsdk_slot->log_head, tail = FNSDK_SCOREBOARD_LOAD(fnsdk_slot->log_tail), off;
    size_t n;

    p = FNSDK_PUT(p, "{\"time\":\"");
    p = fnsdk_put_time(p, wall);
    p = FNSDK_PUT(p, "Z\",\"method\":\"");
    p += fnsdk_json_esc(p, 64, fn_method(req));
    p = FNSDK_PUT(p, "\",\"path\":\"");
    p += fnsdk_json_esc(p, 1024, fn_path(req));
    p = FNSDK_PUT(p, "\",\"status\":");
    p = fnsdk_put_dec(p, (uint64_t)(status > 0 ? status : 0), 1);
    p = FNSDK_PUT(p, ",\"duration_ms\":");
    p = fnsdk_put_ms(p, dur_ns);
    p = FNSDK_PUT(p, ",\"queue_ms\":");
    if (queue_ns >= 0)
        p = fnsdk_put_ms(p, queue_ns);
    else
        p = FNSDK_PUT(p, "null");
    p = cold ? FNSDK_PUT(p, ",\"cold\":true") : FNSDK_PUT(p, ",\"cold\":false");
    p = FNSDK_PUT(p, ",\"request_id\":\"");
    p += fnsdk_json_esc(p, 128, fn_request_id(req));
    if (trace) {
        p = FNSDK_PUT(p, "\",\"trace_id\":\"");
        p += fnsdk_json_esc(p, 64, trace);
        p = FNSDK_PUT(p, "\"}\n");
    } else {
        p = FNSDK_PUT(p, "\",\"trace_id\":null}\n");
    }
    n = (size_t)(p - line);

    if (tail > head || head - tail + n > fnsdk_log_size) {
        FNSDK_SCOREBOARD_BUMP(fnsdk_slot->log_dropped, 1);
        return;
    }
    off = head % fnsdk_log_size;
    if (off + n <= fnsdk_log_size) {
        memcpy(fnsdk_log_ring + off, line, n);
    } else {
        size_t first = (size_t)(fnsdk_log_size - off);
        memcpy(fnsdk_log_ring + off, line, first);
        memcpy(fnsdk_log_ring, line + first, n - first);
    }
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->log_head, head + n);
}

/* How long the request waited between nginx and the accept, or -1 when the
 * front end did not say when it arrived. */
static int64_t fnsdk_queue_ns(const fn_req *req, const struct timespec *wall)
{
    int64_t arrival = fnsdk_req_arrival_ms(req), queue;

    if (arrival < 0)
        return -1;
    queue = ((int64_t)wall->tv_sec * 1000 + wall->tv_nsec / 1000000 - arrival) * 1000000;
    return queue < 0 ? 0 : queue;
}

/* The request-log line of the 504 the timeout handler wrote (the handler
 * never returned, so fnsdk_account never runs for it). */
static void fnsdk_reqlog_timeout(void)
{
    fn_req *req = fnsdk_cur_req;

    if (fnsdk_log_ring && req)
        fnsdk_reqlog(req, 504, &fnsdk_req_wall, fnsdk_now_ns() - fnsdk_req_start_ns,
                     fnsdk_queue_ns(req, &fnsdk_req_wall), !fnsdk_first_done);
}

/* Counts one finished request in the slot (and logs it when asked). */
static void fnsdk_account(fn_req *req, int status, int64_t start, const struct timespec *wall,
                          int64_t now)
{
    int64_t dur = now - start, queue = fnsdk_queue_ns(req, wall);
    bool cold = !fnsdk_first_done;

    if (queue >= 0) {
        FNSDK_SCOREBOARD_BUMP(fnsdk_slot->queue_hist[fnsdk_scoreboard_hist_bucket(queue)], 1);
        FNSDK_SCOREBOARD_BUMP(fnsdk_slot->queue_sum_ns, (uint64_t)queue);
        FNSDK_SCOREBOARD_BUMP(fnsdk_slot->queue_n, 1);
    }
    FNSDK_SCOREBOARD_BUMP(fnsdk_slot->dur_hist[fnsdk_scoreboard_hist_bucket(dur)], 1);
    FNSDK_SCOREBOARD_BUMP(fnsdk_slot->dur_sum_ns, (uint64_t)dur);
    fnsdk_slot_count_code(status);
    if (cold) {
        fnsdk_first_done = true;
        FNSDK_SCOREBOARD_STORE(fnsdk_slot->first_resp_ns, now);
    }
    if (fnsdk_log_ring)
        fnsdk_reqlog(req, status, wall, dur, queue, cold);
}

/* The most of a request's unread stdin read before its connection is kept
 * or closed. */
#define FNSDK_STDIN_DRAIN (64 * 1024)

/* Reads the rest of the request's stdin, up to its end record; false when
 * more than FNSDK_STDIN_DRAIN bytes were left, or the read failed.  A front
 * end may send that record in a write of its own after the parameters
 * (Apache does), so a handler that answers from the parameters leaves it
 * unread.  On a kept connection it would then wake the idle instance as if
 * it were the next request, libfcgi would find no FCGI_BEGIN_REQUEST in it
 * and close the connection, racing the front end's reuse of it (Apache: 503
 * "Failed to read FastCGI header").  On a closed one it is what decides
 * how to close (fnsdk_conn_end). */
static bool fnsdk_stdin_drain(FCGX_Request *r)
{
    char scratch[4096];
    long total = 0;
    int n;

    while ((n = FCGX_GetStr(scratch, (int)sizeof(scratch), r->in)) > 0) {
        total += n;
        if (total > FNSDK_STDIN_DRAIN)
            return false;
    }
    return FCGX_GetError(r->in) == 0;
}

/* Ends the request on its connection, before FCGX_Finish_r.
 *
 * A kept connection's stdin is read to its end before the response goes
 * out: the front end sends its next request on the connection only after
 * the response, and a read after that could take the next request's first
 * bytes into libfcgi's buffer, which the finish frees.  One whose stdin
 * could not be read to its end is closed.
 *
 * A connection that is not kept gets its response first, in the one write
 * libfcgi makes of it and its end records (closing the streams twice is
 * harmless), so that nothing below waits with it unsent.  Then its stdin
 * is read to its end: with nothing left unread, it is closed at once.
 * libfcgi's own close would shut down our side and then wait, up to 2 s,
 * for the front end to close its own before the instance takes another
 * connection (a poll and two more system calls per request even when
 * nginx closes at once).  Only with stdin left unread does libfcgi close
 * that slow way, which reads what is left so that the close is not a reset
 * the front end could take for a failure before it read our answer. */
static void fnsdk_conn_end(FCGX_Request *r)
{
    if (r->keepConnection) {
        if (!fnsdk_stdin_drain(r))
            r->keepConnection = 0;
        return;
    }
    FCGX_FClose(r->err);
    FCGX_FClose(r->out);
    if (fnsdk_stdin_drain(r)) {
        /* The end of the answer for the front end even when another
         * process holds the connection too (a child the function forked
         * inherits it): nginx waits for end of file, not END_REQUEST, on a
         * connection it does not keep.  No wait follows, unlike libfcgi's
         * close. */
        shutdown(r->ipcFd, SHUT_WR);
        FCGX_Detach(r);
    }
}

/* Serves one request on the connection CFD.  Returns CFD when the front end
 * asked to keep the connection (FCGI_KEEP_CONN: nginx's fastcgi_keep_conn,
 * Apache's enablereuse) and it is still usable, else -1 (CFD closed).  The
 * caller waits for the next request on a kept connection in epoll_pwait,
 * with the slot idle, so an instance holding one can still be stopped and
 * is never taken for a busy one. */
static int fnsdk_serve(int cfd, FCGX_Request *r, fn_req *req, fn_res *res, fn_handler handler,
                       const struct fnsdk_limits *lim)
{
    int64_t start = fnsdk_now_ns();
    int kept = -1;

    fnsdk_conn_fd = cfd;
    fnsdk_resp_started = 0;
    fnsdk_req_start_ns = start;
    fnsdk_in_request = 1;
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->req_start_ns, start);
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->state, (uint32_t)FNSDK_SCOREBOARD_BUSY);

    /* libfcgi reads the connection given in ipcFd instead of accepting;
     * keepConnection stops its implicit finish from closing it first.  It
     * then sets keepConnection from the request's FCGI_KEEP_CONN flag. */
    r->ipcFd = cfd;
    r->keepConnection = 1;
    if (FCGX_Accept_r(r) >= 0) {
        int rc, status;
        struct timespec wall;
        fnsdk_conn_reqid = r->requestId;
        clock_gettime(CLOCK_REALTIME, &wall);
        fnsdk_req_wall = wall;
        rc = fnsdk_req_begin(req, res, r, lim);
        fnsdk_cur_req = req;
        if (rc == 0 && fnsdk_queue_expired(req, res, lim))
            FNSDK_SCOREBOARD_BUMP(fnsdk_slot->queue_timeouts, 1);
        else if (rc == 0)
            fnsdk_req_run(req, res, handler);
        if (fnsdk_res_write(res, r) < 0)
            fn_log("%s %s: the client went away before the response was sent", fn_method(req),
                   fn_path(req));
        status = fnsdk_res_status(res);
        fnsdk_res_reset(res);
        /* Before the finish, which frees the parameters the log line
         * quotes: a few stores, plus the line when request_log is on. */
        fnsdk_account(req, status, start, &wall, fnsdk_now_ns());
        fnsdk_cur_req = NULL;
        fnsdk_req_end(req);
        fnsdk_conn_end(r);
        FCGX_Finish_r(r);
        __atomic_add_fetch(&fnsdk_slot->requests, 1, __ATOMIC_RELEASE);
        if (r->ipcFd >= 0 && !FNSDK_SCOREBOARD_LOAD(fnsdk_slot->stop_req))
            kept = r->ipcFd;
    }
    if (kept < 0 && r->ipcFd >= 0)
        close(r->ipcFd);
    r->ipcFd = -1;
    fnsdk_in_request = 0;
    fnsdk_conn_fd = -1;
    {
        int64_t now = fnsdk_now_ns();
        __atomic_add_fetch(&fnsdk_slot->busy_ns, (uint64_t)(now - start), __ATOMIC_RELAXED);
        fnsdk_slot_idle(now);
    }
    return kept;
}

/*
 * Kept connections.  Only the front end can close an idle kept connection
 * without a race: it knows it will not send on it.  An instance closing
 * one loses the request the front end may be sending in that moment (after
 * its own check that the connection is open), and Apache answers that
 * with 503, never a retry.  So an instance closes a kept connection only
 * when the front end did, or when it stops (README: Apache's ttl), and it
 * holds as many as it was given, serving whichever is readable.
 *
 * A request on one of them waits while the instance serves another, where
 * neither the supervisor's scaling (the listening socket's backlog) nor
 * its queue_timeout can see it.  So an instance holding any leaves new
 * connections to instances that hold none: its slot says how many it
 * holds, and the supervisor does not count it as idle, so a new connection
 * gets an instance of its own up to max_instances, and the front end's
 * connections spread one per instance.  Only one that waited
 * FNSDK_KEPT_DEFER_MS (max_instances reached, or a start that failed) is
 * taken by an instance already holding some.
 */
#define FNSDK_KEPT_MAX 32
#define FNSDK_KEPT_DEFER_MS 10

/* The idle kept connections, watched in the loop's epoll set. */
static int fnsdk_kept_fd[FNSDK_KEPT_MAX];
static int fnsdk_kept_n;

/* How fd 0 is watched: exclusively while no connection is kept (one
 * instance woken per connection), for a wake-up only while some are
 * (the connection is another's first), not at all while a wait is timed
 * or FNSDK_KEPT_MAX are held. */
enum fnsdk_listen { FNSDK_LISTEN_EXCL, FNSDK_LISTEN_SHARED, FNSDK_LISTEN_OFF };
static enum fnsdk_listen fnsdk_listen_mode = FNSDK_LISTEN_EXCL;

static void fnsdk_listen_set(int epfd, enum fnsdk_listen mode)
{
    struct epoll_event ev;

    if (mode == fnsdk_listen_mode)
        return;
    if (fnsdk_listen_mode != FNSDK_LISTEN_OFF)
        epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
    fnsdk_listen_mode = FNSDK_LISTEN_OFF;
    if (mode == FNSDK_LISTEN_OFF)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | (mode == FNSDK_LISTEN_EXCL ? EPOLLEXCLUSIVE : 0);
    ev.data.fd = 0;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0)
        fnsdk_listen_mode = mode;
    else
        fprintf(stderr, "fngate: epoll: watching the listening socket: %s\n", strerror(errno));
}

/* Watches FD (just returned by fnsdk_serve, -1: none) for a next request. */
static void fnsdk_kept_add(int epfd, int fd)
{
    struct epoll_event ev;

    if (fd < 0)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (fnsdk_kept_n == FNSDK_KEPT_MAX ||
        (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)) {
        close(fd);
        return;
    }
    fnsdk_kept_fd[fnsdk_kept_n++] = fd;
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->kept, (uint32_t)fnsdk_kept_n);
}

/* Stops watching kept connection FD, which the caller then serves;
 * false when FD is not one. */
static bool fnsdk_kept_take(int epfd, int fd)
{
    for (int i = 0; i < fnsdk_kept_n; i++) {
        if (fnsdk_kept_fd[i] != fd)
            continue;
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        fnsdk_kept_fd[i] = fnsdk_kept_fd[--fnsdk_kept_n];
        FNSDK_SCOREBOARD_STORE(fnsdk_slot->kept, (uint32_t)fnsdk_kept_n);
        return true;
    }
    return false;
}

/* True when the kept connection FD already holds bytes of a next request:
 * closing it now would lose a request the front end has sent (only nginx
 * retries one on a reused connection), so it is served first. */
static bool fnsdk_kept_pending(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* The part of fn_main's set-up that does not depend on the function: a
 * spare process (fnsdk_spare.c) does it while it waits for an assignment. */
static bool fnsdk_prepared;
/* A spare's trace: its assignment received, its set-up done, the function's
 * shared object loaded (0 in an exec'd instance). */
static int64_t fnsdk_spare_ns[3];

int fnsdk_loop_prepare(void)
{
    /* One getrandom instead of jansson's own open/read/close of
     * /dev/urandom on the first object: it is on the cold-start path.
     * The seed must stay unpredictable (request bodies are parsed into
     * hash tables); a spare is exec'd fresh, so no two instances share
     * it. */
    unsigned char seed[20];
    uint32_t js;
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed)) {
        memcpy(&js, seed, sizeof(js));
        if (js)
            json_object_seed(js);
        fnsdk_req_seed_ids(seed + 4); /* the request ids, from the same call */
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "fngate: FCGX_Init failed\n");
        return -1;
    }
    fnsdk_prepared = true;
    return 0;
}

void fnsdk_loop_spare_trace(int64_t assigned_ns, int64_t setup_ns, int64_t loaded_ns)
{
    fnsdk_spare_ns[0] = assigned_ns;
    fnsdk_spare_ns[1] = setup_ns;
    fnsdk_spare_ns[2] = loaded_ns;
}

int fn_main(int argc, char **argv, fn_handler handler)
{
    struct fnsdk_limits lim;
    struct epoll_event ev;
    sigset_t waitmask;
    FCGX_Request r;
    fn_req *req = NULL;
    fn_res *res = NULL;
    int epfd = -1, rc = 1, kept = -1, dbfd;
    long served = 0;
    bool recycled = false, broke = false, quiet = false, take_new = false;
    /* When a new connection left to others is taken after all (0: none). */
    int64_t defer_ns = 0;
    int flags;
    int64_t main_ns = fnsdk_now_ns();
    (void)argc;
    (void)argv;

    lim.max_body = fnsdk_env_long("FNGATE_MAX_BODY", 1 << 20);
    lim.queue_timeout_ms = fnsdk_env_long("FNGATE_QUEUE_TIMEOUT_MS", 0);
    lim.max_requests = fnsdk_env_long("FNGATE_MAX_REQUESTS", 0);
    fnsdk_req_timeout_ns = (int64_t)fnsdk_env_long("FNGATE_REQUEST_TIMEOUT_MS", 0) * 1000000;
    fnsdk_req_set_timeout(fnsdk_env_long("FNGATE_REQUEST_TIMEOUT_MS", 0));
    fnsdk_req_set_function(getenv("FNGATE_FUNCTION"));

    /* execve made the instance dumpable again: without this, anything
     * sharing its uid could ptrace it or read its /proc/<pid>/environ, mem
     * and fd (fd 3 above all). */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* Nothing it execs inherits the listening socket or the database
     * channel. */
    fcntl(0, F_SETFD, FD_CLOEXEC);
    {
        long db = fnsdk_env_long("FNGATE_DB_FD", -1);
        if (db >= 0)
            fcntl((int)db, F_SETFD, FD_CLOEXEC);
    }
    if (FCGX_IsCGI()) {
        fprintf(stderr, "fngate: fd 0 is not a listening socket: run this under fngate, "
                        "spawn-fcgi or another FastCGI process manager\n");
        return 1;
    }
    fnsdk_scoreboard_attach();
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->main_ns, main_ns);
    for (int i = 0; i < 3; i++)
        FNSDK_SCOREBOARD_STORE(fnsdk_slot->spare_ns[i], fnsdk_spare_ns[i]);
    if (!fnsdk_prepared && fnsdk_loop_prepare() < 0)
        return 1;
    if (FCGX_InitRequest(&r, -1, 0) != 0) {
        fprintf(stderr, "fngate: FCGX_InitRequest failed\n");
        return 1;
    }
    /* Non-blocking accept on the shared socket: an instance woken for a
     * connection a sibling took gets EAGAIN, never a blocking accept that a
     * stop request could not interrupt. */
    flags = fcntl(0, F_GETFL);
    if (flags < 0 || fcntl(0, F_SETFL, flags | O_NONBLOCK) < 0) {
        fprintf(stderr, "fngate: fcntl(0): %s\n", strerror(errno));
        return 1;
    }
    if (fnsdk_setup_signals(&waitmask) < 0)
        return 1;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) {
        fprintf(stderr, "fngate: epoll: %s\n", strerror(errno));
        goto out;
    }
    /* The pool closes a channel it will not serve again (a protocol error,
     * unread answers, a pool restart): watched here, an instance waiting
     * for a request leaves as soon as that happens instead of failing the
     * next request with 08006. */
    dbfd = fnsdk_db_watch_fd();
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = dbfd;
    if (dbfd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, dbfd, &ev) < 0)
        dbfd = -1; /* still checked before each request */
    req = fnsdk_req_new();
    res = fnsdk_res_new();
    if (!req || !res)
        goto out;

    {
        int64_t now = fnsdk_now_ns();
        FNSDK_SCOREBOARD_STORE(fnsdk_slot->ready_ns, now);
        fnsdk_slot_idle(now);
    }
    rc = 0;
    while (!fnsdk_stop && !FNSDK_SCOREBOARD_LOAD(fnsdk_slot->stop_req)) {
        struct epoll_event evs[FNSDK_KEPT_MAX + 2];
        int cfd, nev, wait_ms = -1;
        /* Before taking a request, not after: one that would only fail
         * with 08006 is left to an instance with a live channel.  Skipped
         * right after a wait that found the channel quiet. */
        if (!quiet && !fnsdk_db_channel_ok()) {
            broke = true;
            break;
        }
        quiet = false;
        if (fnsdk_kept_n == 0)
            defer_ns = 0;
        /* Holding kept connections, a new one is another's first (see
         * Kept connections above). */
        cfd = fnsdk_kept_n == 0 || take_new ? accept4(0, NULL, NULL, SOCK_CLOEXEC) : -1;
        take_new = false;
        if (cfd >= 0) {
            fnsdk_kept_add(epfd, fnsdk_serve(cfd, &r, req, res, handler, &lim));
            if (lim.max_requests > 0 && ++served >= lim.max_requests) {
                recycled = true;
                break;
            }
            continue;
        }
        if (fnsdk_kept_n > 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            fnsdk_listen_set(epfd, fnsdk_kept_n == 0 ? FNSDK_LISTEN_EXCL
                                   : defer_ns || fnsdk_kept_n == FNSDK_KEPT_MAX
                                       ? FNSDK_LISTEN_OFF
                                       : FNSDK_LISTEN_SHARED);
            if (defer_ns) {
                int64_t now = fnsdk_now_ns();
                wait_ms = now >= defer_ns ? 0 : (int)((defer_ns - now + 999999) / 1000000);
            }
            /* The only wait, and the only place SIGTERM is let in. */
            nev = epoll_pwait(epfd, evs, FNSDK_KEPT_MAX + 2, wait_ms, &waitmask);
            if (nev < 0 && errno != EINTR) {
                fprintf(stderr, "fngate: epoll_pwait: %s\n", strerror(errno));
                rc = 1;
                break;
            }
            quiet = nev > 0;
            for (int i = 0; i < nev; i++) {
                if (dbfd >= 0 && evs[i].data.fd == dbfd && !fnsdk_db_channel_ok())
                    broke = true;
            }
            if (broke)
                break;
            for (int i = 0; i < nev && !fnsdk_stop; i++) {
                cfd = evs[i].data.fd;
                if (cfd == 0 && fnsdk_kept_n > 0 && !defer_ns) {
                    /* Left to others for FNSDK_KEPT_DEFER_MS. */
                    defer_ns = fnsdk_now_ns() + (int64_t)FNSDK_KEPT_DEFER_MS * 1000000;
                    fnsdk_listen_set(epfd, FNSDK_LISTEN_OFF);
                }
                if (cfd == 0 || cfd == dbfd || !fnsdk_kept_take(epfd, cfd))
                    continue;
                /* The next request on a kept connection (or its close). */
                quiet = false;
                fnsdk_kept_add(epfd, fnsdk_serve(cfd, &r, req, res, handler, &lim));
                if (lim.max_requests > 0 && ++served >= lim.max_requests) {
                    recycled = true;
                    break;
                }
            }
            if (recycled)
                break;
            if (defer_ns && fnsdk_now_ns() >= defer_ns) {
                /* Nobody else took it: this instance does. */
                defer_ns = 0;
                take_new = true;
            }
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            fprintf(stderr, "fngate: accept: %s: backing off\n", strerror(errno));
            usleep(10000);
            continue;
        }
        fprintf(stderr, "fngate: accept: %s\n", strerror(errno));
        rc = 1;
        break;
    }
    /* Told to stop (or recycled) while a request was already sent on a
     * kept connection: serve it rather than drop it. */
    while (fnsdk_kept_n > 0) {
        int k = fnsdk_kept_fd[fnsdk_kept_n - 1];
        fnsdk_kept_take(epfd, k);
        if (rc == 0 && fnsdk_kept_pending(k))
            k = fnsdk_serve(k, &r, req, res, handler, &lim);
        if (k >= 0)
            close(k);
    }
    /* A query that broke the channel mid-request stopped the loop too. */
    if (rc == 0 && !broke && !fnsdk_db_channel_ok())
        broke = true;
    /* With EPOLLEXCLUSIVE the kernel woke this instance alone for a
     * connection; leaving now without it would strand it while the other
     * idle instances sleep.  Serve what is already waiting, then leave. */
    for (int i = 0; rc == 0 && !recycled && !broke && i < 8; i++) {
        int cfd = accept4(0, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            break;
        kept = fnsdk_serve(cfd, &r, req, res, handler, &lim);
        if (kept >= 0) {
            close(kept);
            kept = -1;
        }
    }
    if (broke)
        fprintf(stderr, "fngate: the database channel was closed: leaving, so that an instance "
                        "with a new channel takes the next request\n");
    FNSDK_SCOREBOARD_STORE(fnsdk_slot->state, (uint32_t)FNSDK_SCOREBOARD_STOPPING);
out:
    fnsdk_req_free(req);
    fnsdk_res_free(res);
    if (epfd >= 0)
        close(epfd);
    return rc;
}
