/*
 * The fngate command line: `serve` runs the gateway, `check` validates a
 * configuration and the functions folder exactly as `serve` would (the same
 * gateway/check.c), reporting every problem as "file:line: reason" or
 * "path: reason", and `reload`/`stop` signal the gateway of a socket_dir.
 */
#include "config.h"

#include "preflight.h"
#include "conf.h"
#include "ctl.h"
#include "dev.h"
#include "discover.h"
#include "invoke.h"
#include "log.h"
#include "statcmd.h"
#include "scaffold.h"
#include "snippet.h"
#include "sup.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNGATE_SYSCONFDIR comes from configure's --sysconfdir (Makefile.am). */
#ifndef FNGATE_SYSCONFDIR
#define FNGATE_SYSCONFDIR "/etc"
#endif
#define MAIN_DEFAULT_CONF FNGATE_SYSCONFDIR "/fngate/fngate.conf"

static void main_usage(FILE *out)
{
    fprintf(out,
            "usage: fngate serve [-c FILE]   run the gateway in the foreground\n"
            "       fngate check [-c FILE]   validate the configuration and functions\n"
            "       fngate reload [-c FILE]  make the gateway of FILE's socket_dir reload\n"
            "       fngate stop [-c FILE]    stop that gateway, waiting for its requests\n"
            "       fngate status [-c FILE] [--json] [--watch]\n"
            "                                what the running gateway is doing\n"
            "       fngate new NAME [--db] [--dir DIR]  scaffold a function\n"
            "       fngate dev [--port N] [--db] [DIR]  build, serve and rebuild DIR's functions\n"
            "       fngate invoke [OPTIONS] NAME[/PATH][?QUERY]  call a function (see -h)\n"
            "       fngate nginx [-c FILE] [--prefix /fn]  the nginx locations for FILE's gateway\n"
            "       fngate nginx --locations [-c FILE] [-o PATH]  an exact location per function\n"
            "       fngate version\n"
            "FILE defaults to " MAIN_DEFAULT_CONF ".\n");
}

static void main_check_report(void *arg, const char *problem)
{
    (*(int *)arg)++;
    fprintf(stderr, "%s\n", problem);
}

/* Everything serve would refuse or disable, each problem on its own line.
 * Exits 1 when serve would refuse to start, 3 when it would start with some
 * functions disabled (so that a start-up script can tell the two). */
static int main_check(const char *path)
{
    char err[CONF_ERR_MAX];
    struct discover_list *l = NULL;
    size_t ok = 0;
    int problems = 0, disabled = 0;
    struct conf *c = conf_load_report(path, main_check_report, &problems);

    if (!c) {
        printf("%s: %d problem%s: serve would refuse to start\n", path, problems,
               problems == 1 ? "" : "s");
        return 1;
    }
    preflight_gateway(c, main_check_report, &problems);
    /* An unreadable functions_dir was just reported. */
    l = discover_functions(c, err, sizeof(err));
    if (l && preflight_functions(c, l) < 0)
        main_check_report(&problems, "out of memory");
    for (size_t i = 0; l && i < l->n; i++) {
        if (l->fns[i].disabled)
            main_check_report(&disabled, l->fns[i].disabled);
        else
            ok++;
    }
    if (problems)
        printf("%s: %d problem%s: serve would refuse to start\n", path, problems + disabled,
               problems + disabled == 1 ? "" : "s");
    else if (disabled)
        printf("%s: %d function%s disabled (serve starts; %s 503 with the reason), %zu "
               "ready in %s\n",
               path, disabled, disabled == 1 ? "" : "s",
               disabled == 1 ? "it answers" : "they answer", ok, c->gw.functions_dir);
    else
        printf("%s: ok, %zu function%s in %s\n", path, ok, ok == 1 ? "" : "s", c->gw.functions_dir);
    for (size_t i = 0; l && i < l->n; i++) {
        const struct fn_settings *s = &l->fns[i].set;
        if (l->fns[i].disabled)
            continue;
        printf("  %-20s max_instances=%d min_instances=%d idle_timeout=%lldms "
               "request_timeout=%lldms\n",
               l->fns[i].name, s->max_instances, s->min_instances, (long long)s->idle_timeout_ms,
               (long long)s->request_timeout_ms);
    }
    discover_list_free(l);
    conf_free(c);
    return problems ? 1 : disabled ? 3 : 0;
}

int main(int argc, char **argv)
{
    const char *path = MAIN_DEFAULT_CONF;
    const char *cmd;
    int ch;

    if (argc < 2) {
        main_usage(stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("fngate %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "status") == 0)
        return statcmd_main(argc - 1, argv + 1, MAIN_DEFAULT_CONF);
    /* Commands with options of their own. */
    if (strcmp(cmd, "invoke") == 0)
        return invoke_main(argc - 1, argv + 1, MAIN_DEFAULT_CONF);
    if (strcmp(cmd, "new") == 0)
        return scaffold_main(argc - 1, argv + 1);
    if (strcmp(cmd, "dev") == 0)
        return dev_main(argc - 1, argv + 1);
    if (strcmp(cmd, "nginx") == 0)
        return snippet_main(argc - 1, argv + 1, MAIN_DEFAULT_CONF);
    optind = 2;
    while ((ch = getopt(argc, argv, "c:")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        main_usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "serve") == 0)
        return sup_run(path);
    if (strcmp(cmd, "check") == 0)
        return main_check(path);
    if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0)
        return ctl_command(path, strcmp(cmd, "stop") == 0);
    fprintf(stderr, "fngate: unknown command '%s'\n", cmd);
    main_usage(stderr);
    return 2;
}
