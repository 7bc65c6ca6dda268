/*
 * `fngate new NAME [--db] [--dir DIR]`: a new function folder that builds and
 * tests with nothing but an installed fngate (pkg-config finds the SDK), the
 * way `faas-cli new` or `spin new` start a project.  It writes handler.c
 * (the hello example; with --db an fn_query example), test_handler.c (a
 * unit test on fngate_test.h), a Makefile (handler linked statically, as
 * the README recommends; `make test`) and a README.  It never overwrites:
 * an existing DIR/NAME is refused.
 */
#include "config.h"

#include "scaffold.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCAFFOLD_NAME_MAX 64

static const char scaffold_handler[] =
    "/*\n"
    " * @NAME@: a fngate function.  GET /fn/@NAME@?name=ada answers\n"
    " * {\"hello\":\"ada\"}; without ?name, {\"hello\":\"world\"}.\n"
    " */\n"
    "#include <fngate.h>\n"
    "\n"
    "static int handle(fn_req *req, fn_res *res)\n"
    "{\n"
    "    const char *name = fn_arg(req, \"name\");\n"
    "    return fn_send_jsonf(res, 200, \"{s:s}\", \"hello\", name ? name : \"world\");\n"
    "}\n"
    "\n"
    "FN_MAIN(handle)\n";

static const char scaffold_handler_db[] =
    "/*\n"
    " * @NAME@: a fngate function that queries the gateway's database.\n"
    " * GET /fn/@NAME@?name=ada answers {\"hello\":\"ada\",\"at\":\"<the server's time>\"}.\n"
    " * fn_query sends the SQL and its parameters ($1 ...) to the gateway's pool:\n"
    " * values are never spliced into the SQL, and the function never sees the\n"
    " * connection string.\n"
    " */\n"
    "#include <fngate.h>\n"
    "\n"
    "static int handle(fn_req *req, fn_res *res)\n"
    "{\n"
    "    const char *name = fn_arg(req, \"name\");\n"
    "    fn_rows *rows = fn_query(req, \"SELECT $1::text AS hello, now()::text AS at\", \"[s]\",\n"
    "                             name ? name : \"world\");\n"
    "\n"
    "    if (!rows)\n"
    "        return fn_send_db_error(res, 503, req); /* {\"error\", \"sqlstate\", ...} */\n"
    "    return fn_send_row(res, 200, rows);\n"
    "}\n"
    "\n"
    "FN_MAIN(handle)\n";

static const char scaffold_test_head[] =
    "/*\n"
    " * Unit test of @NAME@'s handler, in-process (fngate_test.h): `make test`.\n"
    " */\n"
    "#include <fngate_test.h>\n"
    "\n"
    "#include \"handler.c\" /* fngate_test.h makes its FN_MAIN empty */\n"
    "\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "\n"
    "static int checks, failures;\n"
    "\n"
    "static void expect(int ok, const char *what, const fn_test_res *r)\n"
    "{\n"
    "    checks++;\n"
    "    if (ok)\n"
    "        return;\n"
    "    failures++;\n"
    "    fprintf(stderr, \"FAIL: %s (status %d, body %s)\\n\", what, fn_test_status(r),\n"
    "            fn_test_body(r, NULL));\n"
    "}\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    fn_test_res *r;\n"
    "\n";

static const char scaffold_test_body[] =
    "    r = fn_test(handle, \"GET\", \"/fn/@NAME@\", NULL, NULL, 0);\n"
    "    expect(fn_test_status(r) == 200, \"GET answers 200\", r);\n"
    "    expect(strcmp(fn_test_body(r, NULL), \"{\\\"hello\\\":\\\"world\\\"}\") == 0,\n"
    "           \"GET answers hello world\", r);\n"
    "    expect(strcmp(fn_test_header(r, \"Content-Type\"), \"application/json\") == 0,\n"
    "           \"the answer is JSON\", r);\n"
    "    fn_test_free(r);\n"
    "\n"
    "    r = fn_test(handle, \"GET\", \"/fn/@NAME@?name=ada\", NULL, NULL, 0);\n"
    "    expect(strcmp(fn_test_body(r, NULL), \"{\\\"hello\\\":\\\"ada\\\"}\") == 0,\n"
    "           \"?name=ada answers hello ada\", r);\n"
    "    fn_test_free(r);\n";

static const char scaffold_test_body_db[] =
    "    r = fn_test(handle, \"GET\", \"/fn/@NAME@?name=ada\", NULL, NULL, 0);\n"
    "    if (getenv(\"DATABASE_URL\")) {\n"
    "        static const char row[] = \"{\\\"hello\\\":\\\"ada\\\",\\\"at\\\":\";\n"
    "        /* fn_test started a real fngate-pool for DATABASE_URL. */\n"
    "        expect(fn_test_status(r) == 200, \"the query answers 200\", r);\n"
    "        expect(strncmp(fn_test_body(r, NULL), row, sizeof(row) - 1) == 0,\n"
    "               \"the row comes back as an object\", r);\n"
    "    } else {\n"
    "        printf(\"note: DATABASE_URL is not set: only the no-database answer is tested\\n\");\n"
    "        expect(fn_test_status(r) == 503, \"no database: 503\", r);\n"
    "        expect(strstr(fn_test_body(r, NULL), \"\\\"sqlstate\\\":\\\"FG004\\\"\") != NULL,\n"
    "               \"no database: FG004\", r);\n"
    "    }\n"
    "    fn_test_free(r);\n";

static const char scaffold_test_tail[] =
    "\n"
    "    printf(\"@NAME@: %d checks, %d failed\\n\", checks, failures);\n"
    "    return failures ? EXIT_FAILURE : EXIT_SUCCESS;\n"
    "}\n";

static const char scaffold_makefile[] =
    "# @NAME@: build the handler fngate runs (`make`) and its unit test (`make test`).\n"
    "# Needs an installed fngate: pkg-config finds libfngate (set PKG_CONFIG_PATH\n"
    "# for an install outside the default places).\n"
    "PKG_CONFIG ?= pkg-config\n"
    "CC ?= cc\n"
    "CFLAGS ?= -O2 -g\n"
    "CFLAGS += -Wall -Wextra\n"
    "FNGATE_CFLAGS := $(shell $(PKG_CONFIG) --cflags fngate)\n"
    "FNGATE_LIBS := $(shell $(PKG_CONFIG) --libs --static fngate)\n"
    "FNGATE_SO_FLAGS := $(shell $(PKG_CONFIG) --variable=so_flags fngate)\n"
    "\n"
    "all: handler handler.so\n"
    "\n"
    "# Fully static, as fngate's README recommends: no dynamic loader at each cold\n"
    "# start.  glibc warns that libfcgi's gethostbyname needs NSS at run time: it is\n"
    "# used only to bind TCP ports, and an instance only ever gets a unix socket.\n"
    "handler: handler.c\n"
    "\t$(CC) $(CFLAGS) $(FNGATE_CFLAGS) -o $@ handler.c -static $(FNGATE_LIBS)\n"
    "\n"
    "# The same function as a shared object, which fngate's spare processes load\n"
    "# for a cold start without an exec (its fn_* come from the spare).  After the\n"
    "# handler: fngate ignores a handler.so older than its handler.\n"
    "handler.so: handler.c handler\n"
    "\t$(CC) $(CFLAGS) $(FNGATE_CFLAGS) $(FNGATE_SO_FLAGS) -o $@ handler.c\n"
    "\n"
    "test_handler: test_handler.c handler.c\n"
    "\t$(CC) $(CFLAGS) $(FNGATE_CFLAGS) -o $@ test_handler.c $(FNGATE_LIBS)\n"
    "\n"
    "test: test_handler\n"
    "\t./test_handler\n"
    "\n"
    "clean:\n"
    "\trm -f handler handler.so test_handler\n"
    "\n"
    ".PHONY: all test clean\n";

static const char scaffold_readme[] =
    "# @NAME@\n"
    "\n"
    "A fngate function, made by `fngate new`.\n"
    "\n"
    "    make            # builds ./handler (static, against the installed libfngate)\n"
    "                    # and ./handler.so (for fngate's spare processes)\n"
    "    make test       # runs test_handler.c: the handler in-process, no gateway\n"
    "@DBNOTE@"
    "\n"
    "Deploy: copy this folder (at least `handler`, then `handler.so` for cold starts\n"
    "without an exec) into the gateway's functions_dir\n"
    "as `@NAME@/`.  The folder is watched: it is served within a second, no signal\n"
    "(with `watch = off`: `fngate reload -c /etc/fngate/fngate.conf`).  Try it\n"
    "without nginx:\n"
    "\n"
    "    fngate invoke -c /etc/fngate/fngate.conf '@NAME@?name=ada'\n"
    "\n"
    "or through nginx: `curl localhost:8080/fn/@NAME@?name=ada`.  Settings of its own\n"
    "(request_timeout, max_instances, env.KEY ...) go in `function.conf` next to the\n"
    "handler.\n";

static const char scaffold_readme_db[] =
    "\n"
    "`make test` runs the query for real when DATABASE_URL is set: the test starts\n"
    "a fngate-pool for that database, as the gateway would.  Without it, only the\n"
    "no-database answer (503, sqlstate FG004) is tested.\n";

static void scaffold_usage(FILE *out)
{
    fprintf(out, "usage: fngate new NAME [--db] [--dir DIR]\n"
                 "  makes DIR/NAME (DIR defaults to .) with handler.c, test_handler.c, a\n"
                 "  Makefile (`make`, `make test`) and a README; --db: an fn_query example.\n"
                 "  NAME: [a-z0-9][a-z0-9_-]{0,63}, as the gateway wants function names.\n");
}

static bool scaffold_name_ok(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len > SCAFFOLD_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* mkdir -p DIR (0755). */
static int scaffold_mkdirs(const char *dir)
{
    char p[4096];
    size_t len = strlen(dir);

    if (len >= sizeof(p)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        p[i] = i == len ? '\0' : '/';
    }
    return 0;
}

/* Writes the concatenation of PARTS (NULL-terminated) to DIR/FILE with
 * every @NAME@ replaced by NAME and @DBNOTE@ by DBNOTE. */
static int scaffold_write(const char *dir, const char *file, const char *name, const char *dbnote,
                          const char *const *parts)
{
    char path[4096];
    FILE *f;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) {
        fprintf(stderr, "fngate new: %s/%s: path too long\n", dir, file);
        return -1;
    }
    f = fopen(path, "wx");
    if (!f) {
        fprintf(stderr, "fngate new: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; parts[i]; i++) {
        for (const char *p = parts[i]; *p;) {
            if (strncmp(p, "@NAME@", 6) == 0) {
                fputs(name, f);
                p += 6;
            } else if (strncmp(p, "@DBNOTE@", 8) == 0) {
                fputs(dbnote, f);
                p += 8;
            } else {
                fputc(*p++, f);
            }
        }
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "fngate new: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int scaffold_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", no_argument, NULL, 'b'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = ".", *name;
    char path[4096];
    bool db = false;
    int ch;

    /* GNU getopt permutes: "new hello --db" and "new --db hello" alike. */
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            db = true;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            scaffold_usage(stdout);
            return 0;
        default:
            scaffold_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        scaffold_usage(stderr);
        return 2;
    }
    name = argv[optind];
    if (!scaffold_name_ok(name)) {
        fprintf(stderr,
                "fngate new: '%s' is not a function name: use [a-z0-9][a-z0-9_-]{0,63} "
                "(the /fn/<name> the gateway serves)\n",
                name);
        return 2;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        fprintf(stderr, "fngate new: %s/%s: path too long\n", dir, name);
        return 1;
    }
    if (scaffold_mkdirs(dir) < 0) {
        fprintf(stderr, "fngate new: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (mkdir(path, 0755) < 0) {
        fprintf(stderr, "fngate new: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (nothing was changed)" : "");
        return 1;
    }
    {
        const char *const handler[] = {db ? scaffold_handler_db : scaffold_handler, NULL};
        const char *const test[] = {scaffold_test_head,
                                    db ? scaffold_test_body_db : scaffold_test_body,
                                    scaffold_test_tail, NULL};
        const char *const makefile[] = {scaffold_makefile, NULL};
        const char *const readme[] = {scaffold_readme, NULL};
        const char *dbnote = db ? scaffold_readme_db : "";

        if (scaffold_write(path, "handler.c", name, dbnote, handler) < 0 ||
            scaffold_write(path, "test_handler.c", name, dbnote, test) < 0 ||
            scaffold_write(path, "Makefile", name, dbnote, makefile) < 0 ||
            scaffold_write(path, "README.md", name, dbnote, readme) < 0)
            return 1;
    }
    printf("created %s: handler.c test_handler.c Makefile README.md\n"
           "  cd %s && make && make test\n",
           path, path);
    return 0;
}
