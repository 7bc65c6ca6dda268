/*
 * fn_log: a line in the gateway log, naming the request in progress.
 */
#include "config.h"

#include "fnsdk_req.h"
#include "fngate.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void fn_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    size_t off = 0;
    int n;
    const char *id = fnsdk_req_current_id();

    /* Inside a request the line names it, so an operator can find every
     * line of one request in the gateway log and nginx's access log. */
    if (id && *id) {
        n = snprintf(line, 128, "[req %.100s] ", id);
        if (n > 0)
            off = (size_t)n;
    }
    va_start(ap, fmt);
    n = vsnprintf(line + off, sizeof(line) - 1 - off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    n += (int)off;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
