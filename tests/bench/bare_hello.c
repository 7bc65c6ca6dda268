/*
 * bare_hello: the speed limit of FastCGI for the fngate benchmark.
 *
 * A plain libfcgi program with no SDK, no scoreboard and no signal handling:
 * it accepts on fd 0 (FCGI_LISTENSOCK_FILENO, the socket spawn-fcgi hands it)
 * and answers every request with exactly the bytes fngate's hello sends:
 *
 *     Status: 200 OK
 *     Content-Type: application/json
 *     Content-Length: 17
 *     X-Request-Id: <32 hex digits>      (here a constant one)
 *
 *     {"hello":"world"}
 *
 * Built by tests/bench/bench_core.sh:  cc -O2 bare_hello.c -o bare_hello -lfcgi
 */
#include <fcgiapp.h>

static const char response[] = "Status: 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 17\r\n"
                               "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
                               "\r\n"
                               "{\"hello\":\"world\"}";

int main(void)
{
    FCGX_Request req;

    if (FCGX_Init() != 0)
        return 1;
    if (FCGX_InitRequest(&req, 0, 0) != 0)
        return 1;
    while (FCGX_Accept_r(&req) >= 0) {
        FCGX_PutStr(response, (int)sizeof response - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return 0;
}
