/*
 * mixstack triage CORE|PID...: a short report per target, with its
 * signature. Targets are triaged one after another; one that cannot be
 * (a missing executable, an unreadable core) gets a one-line error and
 * the others go on.
 *
 * Exit status: 0 every target triaged, 1 some could not be, 2 none could
 * be or bad usage.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum {
        TRIAGE_ALL = 0,
        TRIAGE_SOME_FAILED = 1,
        TRIAGE_UNUSABLE = 2,
};

static const char triage_usage[] =
        "Usage: mixstack triage CORE|PID... [OPTIONS]\n"
        "\n"
        "Explain each core dump (or live process) in a few lines: why it "
        "died\n"
        "(signal, Rust panic, abort, fatal Python error, deadlock), where, "
        "the\n"
        "crashing thread's stack, the other threads, and a signature that "
        "is the\n"
        "same for every occurrence of one bug.\n"
        "\n"
        "Options:\n"
        "  --json                one mixstack-triage/1 JSON document\n"
        "  --markdown            markdown, for CI step summaries\n"
        "  --sysroot DIR         look for the target's files under DIR\n"
        "  --lib-path DIR        also look for files by name in DIR "
        "(repeatable)\n"
        "  --no-debuginfod       fetch no debug info from the servers of\n"
        "                        $DEBUGINFOD_URLS\n"
        "  --frames N            show N frames of the crashing stack (16)\n"
        "  --signature-frames N  frames in a signature (5)\n"
        "\n"
        "Exit status: 0 every target triaged, 1 some could not be, 2 none "
        "could\n"
        "be or bad usage.\n";

void cli_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("mixstack: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

bool cli_parse_count(const char *s, long max, long *ret)
{
        char *end;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (errno || *end || end == s || n <= 0 || n > max)
                return false;
        *ret = n;
        return true;
}

bool cli_set_option(struct ms_options *options, const char *name,
                    const char *value)
{
        struct ms_error *err = ms_options_set(options, name, value);
        if (!err)
                return true;
        cli_error("%s", err->message);
        ms_error_destroy(err);
        return false;
}

bool cli_triage_config_init(struct cli_triage_config *cfg)
{
        *cfg = (struct cli_triage_config){0};
        struct ms_error *err = ms_options_create(&cfg->options);
        if (!err)
                return true;
        cli_error("%s", err->message);
        ms_error_destroy(err);
        return false;
}

void cli_triage_config_deinit(struct cli_triage_config *cfg)
{
        ms_options_destroy(cfg->options);
        cfg->options = NULL;
}

bool cli_triage_option(int c, const char *arg, struct cli_triage_config *cfg)
{
        char number[24];
        long n;
        switch (c) {
        case 'j':
                cfg->format = MS_TRIAGE_JSON;
                return true;
        case 'm':
                cfg->format = MS_TRIAGE_MARKDOWN;
                return true;
        case 's':
                return cli_set_option(cfg->options, "sysroot", arg);
        case 'I':
                return cli_set_option(cfg->options, "no-debuginfod", "1");
        case 'L':
                if (cfg->n_library_paths == CLI_MAX_LIBRARY_PATHS) {
                        cli_error("too many --lib-path: %s", arg);
                        return false;
                }
                cfg->n_library_paths++;
                return cli_set_option(cfg->options, "library-path", arg);
        case 'F':
        case 'S':
                if (!cli_parse_count(arg, 10000, &n)) {
                        cli_error("bad --%s: %s",
                                  c == 'F' ? "frames" : "signature-frames",
                                  arg);
                        return false;
                }
                snprintf(number, sizeof(number), "%ld", n);
                return cli_set_option(
                        cfg->options,
                        c == 'F' ? "stack-frames" : "signature-frames", number);
        }
        return false;
}

static struct ms_error *print_all(const struct ms_triage *triage,
                                  struct ms_triage_printer *const *printers,
                                  size_t n)
{
        struct ms_error *err = NULL;
        for (size_t i = 0; i < n && !err; i++)
                err = ms_triage_printer_add(printers[i], triage);
        return err;
}

/* The report of an open target, which is released (a live process is
 * stopped only while its report is made). */
static struct ms_error *report_of(struct ms_target *target,
                                  struct ms_report **report)
{
        struct ms_error *err = ms_triage_check_target(target);
        cli_guard(target);
        if (!err)
                err = ms_report_create(target, NULL, report);
        cli_unguard();
        ms_target_destroy(target);
        return err;
}

static struct ms_error *triage_report(const struct ms_report *report,
                                      const struct ms_triage_options *options,
                                      struct ms_triage_printer *const *printers,
                                      size_t n_printers)
{
        struct ms_triage *triage = NULL;
        struct ms_error *err = ms_triage_create(report, options, &triage);
        if (!err)
                err = print_all(triage, printers, n_printers);
        ms_triage_destroy(triage);
        return err;
}

struct ms_error *cli_triage_core(const struct cli_triage_config *cfg,
                                 const char *core, pid_t expect_pid,
                                 struct ms_triage_printer *const *printers,
                                 size_t n_printers, pid_t *pid)
{
        struct ms_target *target;
        struct ms_report *report = NULL;
        struct ms_error *err = ms_target_open_core(
                core, ms_options_target(cfg->options), &target);
        if (!err)
                err = report_of(target, &report);
        if (err)
                return err;
        if (pid)
                *pid = ms_report_pid(report);
        /* Without %p in core_pattern, one crash's core can replace
         * another's before it is read. */
        if (expect_pid && ms_report_pid(report) != expect_pid)
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "%s is the core of pid %d, not of pid "
                                      "%d",
                                      core, (int)ms_report_pid(report),
                                      (int)expect_pid);
        /* A core is triaged even without Python: a crash is a crash. */
        if (!err)
                err = triage_report(report, ms_options_triage(cfg->options),
                                    printers, n_printers);
        ms_report_destroy(report);
        return err;
}

struct ms_error *cli_triage_pid(const struct cli_triage_config *cfg, pid_t pid,
                                struct ms_triage_printer *const *printers,
                                size_t n_printers, bool *is_python)
{
        struct ms_target *target;
        struct ms_report *report = NULL;
        *is_python = false;
        struct ms_error *err = ms_target_open_pid(
                pid, ms_options_target(cfg->options), &target);
        if (!err)
                err = report_of(target, &report);
        if (err)
                return err;
        *is_python = ms_report_python_version(report) != NULL;
        if (*is_python)
                err = triage_report(report, ms_options_triage(cfg->options),
                                    printers, n_printers);
        ms_report_destroy(report);
        return err;
}

/* Digits naming no file are a pid. */
static bool operand_pid(const char *s, pid_t *pid)
{
        long n;
        if (!cli_parse_count(s, INT_MAX, &n) || access(s, F_OK) == 0)
                return false;
        *pid = (pid_t)n;
        return true;
}

static struct ms_error *triage_operand(const struct cli_triage_config *cfg,
                                       const char *operand,
                                       struct ms_triage_printer *printer)
{
        pid_t pid;
        if (!operand_pid(operand, &pid))
                return cli_triage_core(cfg, operand, 0, &printer, 1, NULL);
        bool is_python;
        struct ms_error *err =
                cli_triage_pid(cfg, pid, &printer, 1, &is_python);
        if (!err && !is_python)
                err = ms_error_create(MS_ERROR_NOT_FOUND,
                                      "no Python runtime in process %d",
                                      (int)pid);
        return err;
}

static int parse_triage_options(int argc, char **argv,
                                struct cli_triage_config *cfg)
{
        static const struct option longopts[] = {
                CLI_TRIAGE_LONGOPTS,
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                if (c == 'h') {
                        fputs(triage_usage, stdout);
                        exit(TRIAGE_ALL);
                }
                if (c == '?')
                        cli_error("unknown option or missing argument: %s",
                                  argv[optind - 1]);
                if (c == '?' || !cli_triage_option(c, optarg, cfg)) {
                        fputs("Try 'mixstack triage --help'.\n", stderr);
                        return TRIAGE_UNUSABLE;
                }
        }
        if (optind >= argc) {
                cli_error("triage: no core or pid given");
                return TRIAGE_UNUSABLE;
        }
        cli_watch_downloads(cfg->options);
        return -1;
}

static int triage_main(int argc, char **argv, struct cli_triage_config *cfg);

int cli_triage_main(int argc, char **argv)
{
        struct cli_triage_config cfg;
        if (!cli_triage_config_init(&cfg))
                return TRIAGE_UNUSABLE;
        int status = triage_main(argc, argv, &cfg);
        cli_triage_config_deinit(&cfg);
        return status;
}

static int triage_main(int argc, char **argv, struct cli_triage_config *cfg)
{
        int status = parse_triage_options(argc, argv, cfg);
        if (status >= 0)
                return status;
        struct ms_triage_printer *printer;
        struct ms_error *err =
                ms_triage_printer_create(cfg->format, stdout, &printer);
        if (err) {
                cli_error("%s", err->message);
                ms_error_destroy(err);
                return TRIAGE_UNUSABLE;
        }
        int failed = 0, n = argc - optind;
        for (int i = optind; i < argc; i++) {
                err = triage_operand(cfg, argv[i], printer);
                if (!err)
                        continue;
                failed++;
                /* Errors go to stderr; JSON and markdown documents hold
                 * them too, so that they are complete. */
                cli_error("cannot triage %s: %s", argv[i], err->message);
                if (cfg->format != MS_TRIAGE_TEXT)
                        ms_error_destroy(ms_triage_printer_add_error(
                                printer, argv[i], err->message));
                ms_error_destroy(err);
        }
        err = ms_triage_printer_finish(printer, NULL);
        ms_triage_printer_destroy(printer);
        if (err) {
                cli_error("%s", err->message);
                ms_error_destroy(err);
                return TRIAGE_UNUSABLE;
        }
        if (!failed)
                return TRIAGE_ALL;
        return failed == n ? TRIAGE_UNUSABLE : TRIAGE_SOME_FAILED;
}
