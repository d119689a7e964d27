/*
 * mixstack: the command-line frontend. Option parsing plus calls into
 * libmixstack; no analysis happens here.
 *
 * Exit status: 0 report complete, 1 report printed with warnings (partial),
 * 2 unusable input or usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mixstack/mixstack.h"

enum {
        EXIT_COMPLETE = 0,
        EXIT_PARTIAL = 1,
        EXIT_UNUSABLE = 2,
};

#define MAX_LIBRARY_PATHS 64

struct cli_options {
        enum ms_format format;
        /* Target, report and print options (ms_options_set()). */
        struct ms_options *options;
        size_t n_library_paths;
};

static const char usage_text[] =
        "Usage: mixstack core CORE [EXECUTABLE] [OPTIONS]\n"
        "       mixstack pid PID [OPTIONS]\n"
        "       mixstack gil|err|panic|phase|threads|tasks CORE [EXECUTABLE] "
        "| PID\n"
        "       mixstack triage CORE|PID... [--json|--markdown]\n"
        "       mixstack run [--timeout SECONDS] [--out DIR] -- COMMAND...\n"
        "\n"
        "Print the stack of every thread of a core dump or a live process:\n"
        "Python frames in place of the eval-loop frames that run them, Rust\n"
        "and C++ names demangled, C frames.\n"
        "\n"
        "Commands (mixstack COMMAND --help for one):\n";

static const char options_text[] =
        "Options:\n"
        "  --json              print the report as JSON (schema mixstack/1)\n"
        "  --python-only       show only Python frames\n"
        "  --native-only       show only native frames (no Python merging)\n"
        "  --all-frames        keep CPython-internal frames between Python\n"
        "                      frames\n"
        "  --locals            show arguments and locals of Python frames\n";

static const char target_options_text[] =
        "  --exhaustive        scan memory for the Python runtime when no\n"
        "                      symbol or section shows it\n"
        "  --no-debug-files    no source lines or inlined frames from\n"
        "                      separate debug files (/usr/lib/debug): faster\n"
        "  --no-debuginfod     fetch no debug info from the servers of\n"
        "                      $DEBUGINFOD_URLS\n"
        "  --sysroot DIR       look for the target's files under DIR\n"
        "  --lib-path DIR      also look for files by name in DIR "
        "(repeatable)\n"
        "  --max-frames N      unwind at most N frames per thread (1024)\n"
        "  -h, --help          show this help\n";

static const char exit_text[] =
        "\n"
        "Exit status: 0 complete report, 1 report with warnings, 2 unusable\n"
        "input or bad usage.\n";

/* A command: a report (or a section of one) of a target, or a command
 * with a parser of its own (main). New section commands are a row here
 * and a section in the library's printers. */
struct command {
        const char *name;
        /* What it takes, and a line for the global help. */
        const char *operands;
        const char *summary;
        /* The paragraph of its own --help. */
        const char *description;
        enum ms_section section;
        /* Its own parser and main, or NULL for report commands. */
        int (*main)(int argc, char **argv);
};

static const struct command commands[] = {
        {"core", "CORE [EXECUTABLE]",
         "analyse a core file (the executable is found from the\n"
         "                      core when not given)",
         "The whole report of a core dump: the boundary state (phase, GIL,\n"
         "exceptions, Rust panics, diagnoses), every thread's mixed stack,\n"
         "and warnings about anything missing. EXECUTABLE, when given, is\n"
         "used in place of the one the core names.\n",
         MS_SECTION_REPORT, NULL},
        {"pid", "PID", "stop a live process, analyse it, resume it",
         "The whole report of a live process, stopped only while it is "
         "read.\n",
         MS_SECTION_REPORT, NULL},
        {"gil", "TARGET", "who holds the GIL, who waits, diagnoses",
         "Who holds each interpreter's GIL, who waits for it (and where),\n"
         "and the diagnoses: deadlocks, a holder blocked outside Python,\n"
         "contention.\n",
         MS_SECTION_GIL, NULL},
        {"err", "TARGET", "pending and handled Python exceptions",
         "Each thread's pending exception (being raised) and handled one\n"
         "(sys.exc_info()), with their chains; PyO3's PanicException is\n"
         "flagged.\n",
         MS_SECTION_ERRORS, NULL},
        {"panic", "TARGET", "Rust panic state: threads, messages, counters",
         "Each thread in Rust's panic machinery (kind, site, message and\n"
         "location recovered from memory), panics PyO3 caught, and each\n"
         "Rust module's panic count.\n",
         MS_SECTION_PANIC, NULL},
        {"phase", "TARGET", "the interpreter's lifecycle phase",
         "The interpreter's lifecycle phase (initializing, running,\n"
         "finalizing and its step, finalized) and process exit.\n",
         MS_SECTION_PHASE, NULL},
        {"threads", "TARGET", "one line per thread",
         "One line per thread: tid, name, Python or native, GIL state, where\n"
         "it is (its innermost Python frame), its exception or panic.\n",
         MS_SECTION_THREADS, NULL},
        {"tasks", "TARGET", "asyncio tasks: what each awaits, who awaits it",
         "asyncio tasks per event loop and the thread running it: each\n"
         "pending task's name, the suspended frames of its coroutine chain\n"
         "(file:line of each await), what it awaits (a task, a future, a\n"
         "gather/TaskGroup child set, a Rust future made by PyO3 or\n"
         "pyo3-async-runtimes), who awaits it, the running task, and the\n"
         "diagnoses: await cycles, futures only Rust can complete, a loop\n"
         "blocked outside its selector.\n",
         MS_SECTION_TASKS, NULL},
        {"triage", "CORE|PID...",
         "why each died or hangs, with a crash signature", NULL,
         MS_SECTION_REPORT, cli_triage_main},
        {"run", "-- COMMAND...",
         "run a command (a test suite) and triage every crash\n"
         "                      and hang of its processes",
         NULL, MS_SECTION_REPORT, cli_run_main},
        {"debugger-setup", "gdb|lldb",
         "print the line that loads the gdb or lldb plugin\n"
         "                      (for ~/.gdbinit or ~/.lldbinit)",
         NULL, MS_SECTION_REPORT, cli_setup_main},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static bool is_section(const struct command *cmd)
{
        return !cmd->main && cmd->section != MS_SECTION_REPORT;
}

static void print_usage(void)
{
        fputs(usage_text, stdout);
        for (size_t i = 0; i < N_COMMANDS; i++) {
                char head[64];
                snprintf(head, sizeof(head), "%s %s", commands[i].name,
                         commands[i].operands);
                if (strlen(head) < 20)
                        printf("  %-20s%s\n", head, commands[i].summary);
                else
                        printf("  %s\n%22s%s\n", head, "", commands[i].summary);
        }
        fputs("\nTARGET: a core file [EXECUTABLE], or a pid when all "
              "digits.\n\n",
              stdout);
        fputs(options_text, stdout);
        fputs(target_options_text, stdout);
        fputs("  -V, --version       show the version\n", stdout);
        fputs(exit_text, stdout);
}

/* A report command's own help. */
static void print_command_usage(const struct command *cmd)
{
        if (strcmp(cmd->name, "core") == 0)
                fputs("Usage: mixstack core CORE [EXECUTABLE] [OPTIONS]\n",
                      stdout);
        else if (strcmp(cmd->name, "pid") == 0)
                fputs("Usage: mixstack pid PID [OPTIONS]\n", stdout);
        else
                printf("Usage: mixstack %s CORE [EXECUTABLE] [OPTIONS]\n"
                       "       mixstack %s PID [OPTIONS]\n",
                       cmd->name, cmd->name);
        printf("\n%s", cmd->description);
        if (is_section(cmd))
                fputs("Warnings that concern it go to stderr.\n\n"
                      "Options:\n"
                      "  --json              this section as JSON (schema "
                      "mixstack/1, with\n"
                      "                      \"section\")\n",
                      stdout);
        else
                fprintf(stdout, "\n%s", options_text);
        fputs(target_options_text, stdout);
        fputs(exit_text, stdout);
}

/* A one-line error, and where to look (the command's help when known). */
static int usage_error(const char *command, const char *fmt, const char *arg)
{
        fputs("mixstack: ", stderr);
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'mixstack %s%s--help'.\n",
                command ? command : "", command ? " " : "");
        return EXIT_UNUSABLE;
}

static int parse_options(const struct command *cmd, int argc, char **argv,
                         struct cli_options *opts)
{
        static const struct option longopts[] = {
                {"json", no_argument, NULL, 'j'},
                {"python-only", no_argument, NULL, 'P'},
                {"native-only", no_argument, NULL, 'N'},
                {"all-frames", no_argument, NULL, 'a'},
                {"locals", no_argument, NULL, 'l'},
                {"exhaustive", no_argument, NULL, 'x'},
                {"no-debug-files", no_argument, NULL, 'D'},
                {"no-debuginfod", no_argument, NULL, 'I'},
                {"sysroot", required_argument, NULL, 's'},
                {"lib-path", required_argument, NULL, 'L'},
                {"max-frames", required_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
                struct ms_options *o = opts->options;
                char *end, number[24];
                long n;
                bool ok = true;
                switch (c) {
                case 'j':
                        opts->format = MS_FORMAT_JSON;
                        ok = cli_set_option(o, "format", "json");
                        break;
                case 'P':
                        ok = cli_set_option(o, "mode", "python-only");
                        break;
                case 'N':
                        ok = cli_set_option(o, "mode", "native-only");
                        break;
                case 'a':
                        ok = cli_set_option(o, "all-frames", "1");
                        break;
                case 'l':
                        ok = cli_set_option(o, "locals", "1");
                        break;
                case 'x':
                        ok = cli_set_option(o, "exhaustive", "1");
                        break;
                case 'D':
                        ok = cli_set_option(o, "no-debug-files", "1");
                        break;
                case 'I':
                        ok = cli_set_option(o, "no-debuginfod", "1");
                        break;
                case 's':
                        ok = cli_set_option(o, "sysroot", optarg);
                        break;
                case 'L':
                        if (opts->n_library_paths == MAX_LIBRARY_PATHS)
                                return usage_error(cmd->name,
                                                   "too many --lib-path: %s",
                                                   optarg);
                        opts->n_library_paths++;
                        ok = cli_set_option(o, "library-path", optarg);
                        break;
                case 'n':
                        errno = 0;
                        n = strtol(optarg, &end, 10);
                        if (errno || *end || n <= 0 || n > 1000000)
                                return usage_error(cmd->name,
                                                   "bad --max-frames: %s",
                                                   optarg);
                        snprintf(number, sizeof(number), "%ld", n);
                        ok = cli_set_option(o, "max-frames", number);
                        break;
                case 'h':
                        print_command_usage(cmd);
                        exit(EXIT_COMPLETE);
                case 'V':
                        puts("mixstack " MIXSTACK_VERSION);
                        exit(EXIT_COMPLETE);
                default:
                        return usage_error(cmd->name,
                                           "unknown option or missing "
                                           "argument: %s",
                                           argv[optind - 1]);
                }
                if (!ok)
                        return EXIT_UNUSABLE;
        }
        cli_watch_downloads(opts->options);
        return -1;
}

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < N_COMMANDS; i++) {
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        }
        return NULL;
}

static bool parse_pid(const char *s, pid_t *pid)
{
        char *end;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (errno || *end || end == s || n <= 0 || n > INT_MAX)
                return false;
        *pid = (pid_t)n;
        return true;
}

/* Open the target named by the command and its operands: "core" takes a
 * core and maybe its executable, "pid" a pid, the section commands either
 * (digits are a pid unless a file has that name). A word too many is a
 * usage error; an EXECUTABLE that is no readable ELF file is an error of
 * the target (a mistyped word is not taken for a missing file). */
static int open_target(const struct command *cmd, char **operands,
                       int n_operands, struct cli_options *opts,
                       struct ms_target **target, struct ms_error **err)
{
        pid_t pid;
        bool is_pid = strcmp(cmd->name, "pid") == 0;
        if (n_operands < 1)
                return usage_error(cmd->name, "%s: missing operand", cmd->name);
        if (strcmp(cmd->name, "core") != 0 && !is_pid &&
            parse_pid(operands[0], &pid) && access(operands[0], F_OK) != 0)
                is_pid = true;
        int max = is_pid ? 1 : 2;
        if (n_operands > max)
                return usage_error(cmd->name, "unexpected argument: %s",
                                   operands[max]);
        if (is_pid) {
                if (!parse_pid(operands[0], &pid))
                        return usage_error(cmd->name, "not a process id: %s",
                                           operands[0]);
                *err = ms_target_open_pid(pid, ms_options_target(opts->options),
                                          target);
                return -1;
        }
        if (n_operands == 2 &&
            !cli_set_option(opts->options, "executable", operands[1]))
                return EXIT_UNUSABLE;
        *err = ms_target_open_core(operands[0],
                                   ms_options_target(opts->options), target);
        return -1;
}

static int fail(struct ms_error *err)
{
        fprintf(stderr, "mixstack: %s\n", err->message);
        ms_error_destroy(err);
        return EXIT_UNUSABLE;
}

/* Warnings go with the report; a section command prints those that concern
 * its section on stderr (its output is the section alone). */
static void print_section_warnings(const struct ms_report *report,
                                   enum ms_section section)
{
        for (size_t i = 0; i < ms_report_warning_count(report); i++) {
                if (ms_report_warning_concerns(report, i, section))
                        fprintf(stderr, "mixstack: warning: %s\n",
                                ms_report_warning(report, i));
        }
}

/* How many warnings concern a section. */
static size_t count_warnings(const struct ms_report *report,
                             enum ms_section section)
{
        size_t n = 0;
        for (size_t i = 0; i < ms_report_warning_count(report); i++)
                n += ms_report_warning_concerns(report, i, section);
        return n;
}

static int report_run(const struct command *cmd, int argc, char **argv,
                      struct cli_options *opts);

static int report_main(const struct command *cmd, int argc, char **argv)
{
        struct cli_options opts = {0};
        struct ms_error *err = ms_options_create(&opts.options);
        if (err)
                return fail(err);
        int status = report_run(cmd, argc, argv, &opts);
        ms_options_destroy(opts.options);
        return status;
}

static int report_run(const struct command *cmd, int argc, char **argv,
                      struct cli_options *opts)
{
        int status = parse_options(cmd, argc, argv, opts);
        if (status >= 0)
                return status;
        /* getopt permuted argv: the operands follow optind. */
        char **operands = argv + optind;
        int n_operands = argc - optind;

        struct ms_target *target = NULL;
        struct ms_error *err = NULL;
        status = open_target(cmd, operands, n_operands, opts, &target, &err);
        if (status >= 0)
                return status;
        if (err)
                return fail(err);
        struct ms_report *report = NULL;
        cli_guard(target);
        err = ms_report_create(target, ms_options_report(opts->options),
                               &report);
        /* Detach a live process before printing: it is stopped meanwhile. */
        cli_unguard();
        ms_target_destroy(target);
        if (err)
                return fail(err);
        if (!cli_set_option(opts->options, "section",
                            ms_section_name(cmd->section))) {
                ms_report_destroy(report);
                return EXIT_UNUSABLE;
        }
        err = ms_report_print_section(report, ms_options_print(opts->options),
                                      stdout);
        if (is_section(cmd) && opts->format == MS_FORMAT_TEXT)
                print_section_warnings(report, cmd->section);
        status = count_warnings(report, cmd->section) ? EXIT_PARTIAL
                                                      : EXIT_COMPLETE;
        ms_report_destroy(report);
        if (err)
                return fail(err);
        if (fflush(stdout) != 0)
                return EXIT_UNUSABLE;
        return status;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage_error(NULL, "%s", "missing command");
        const char *command = argv[1];
        if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) {
                print_usage();
                return EXIT_COMPLETE;
        }
        if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
                puts("mixstack " MIXSTACK_VERSION);
                return EXIT_COMPLETE;
        }
        const struct command *cmd = find_command(command);
        if (!cmd)
                return usage_error(NULL, "unknown command: %s", command);
        if (cmd->main)
                return cmd->main(argc - 1, argv + 1);
        return report_main(cmd, argc - 1, argv + 1);
}
