/*
 * `fngate dev`'s window on the request log: the gateway appends one JSON
 * line per request to a file, and the author wants to read "GET /fn/hello
 * -> 200 in 0.8 ms (cold start)" in the terminal as they happen.  The file
 * is tailed by offset and only complete lines are printed, so a line the
 * gateway is still writing waits for the next tick instead of coming out
 * in two halves.
 */
#include "config.h"

#include "devlog.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value of "KEY": in the JSON object LINE, as text (strings unquoted,
 * the basic escapes undone); "" when absent. */
static void devlog_json_field(const char *line, const char *key, char *out, size_t outlen)
{
    char pat[64];
    const char *p;
    size_t n = 0;

    out[0] = '\0';
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(line, pat);
    if (!p)
        return;
    p += strlen(pat);
    if (*p != '"') {
        while (*p && *p != ',' && *p != '}' && n + 1 < outlen)
            out[n++] = *p++;
        out[n] = '\0';
        return;
    }
    for (p++; *p && *p != '"' && n + 1 < outlen; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            out[n++] = *p == 'n' ? ' ' : *p == 't' ? ' ' : *p;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

void devlog_line(const char *line, char *out, size_t outlen)
{
    char fn[80], method[16], path[512], status[8], ms[32], cold[8];

    devlog_json_field(line, "function", fn, sizeof(fn));
    devlog_json_field(line, "method", method, sizeof(method));
    devlog_json_field(line, "path", path, sizeof(path));
    devlog_json_field(line, "status", status, sizeof(status));
    devlog_json_field(line, "duration_ms", ms, sizeof(ms));
    devlog_json_field(line, "cold", cold, sizeof(cold));
    if (!fn[0] || !method[0] || !status[0]) {
        snprintf(out, outlen, "%s", line);
        return;
    }
    snprintf(out, outlen, "%s /fn/%s%s -> %s in %s ms%s", method, fn, path, status, ms,
             strcmp(cold, "true") == 0 ? " (cold start)" : "");
}

static void devlog_print(const char *line)
{
    char text[1024];

    devlog_line(line, text, sizeof(text));
    puts(text);
}

void devlog_tail(struct devlog *l, const char *path)
{
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    while ((n = pread(fd, l->buf + l->len, sizeof(l->buf) - 1 - l->len, l->off)) > 0) {
        char *start = l->buf, *nl;
        l->off += n;
        l->len += (size_t)n;
        l->buf[l->len] = '\0';
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = '\0';
            devlog_print(start);
            start = nl + 1;
        }
        l->len -= (size_t)(start - l->buf);
        memmove(l->buf, start, l->len);
        if (l->len == sizeof(l->buf) - 1)
            l->len = 0; /* a line longer than the buffer: drop it */
    }
    close(fd);
    fflush(stdout);
}
