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
        struct ms_target_options target;
        const char *library_paths[MAX_LIBRARY_PATHS];
        struct ms_report_options report;
};

static const char usage_text[] =
        "Usage: mixstack core CORE [EXECUTABLE] [OPTIONS]\n"
        "       mixstack pid PID [OPTIONS]\n"
        "       mixstack gil|err|panic|phase|threads CORE [EXECUTABLE] | PID\n"
        "       mixstack triage CORE|PID... [--json|--markdown]\n"
        "       mixstack run [--timeout SECONDS] [--out DIR] -- COMMAND...\n"
        "\n"
        "Print the stack of every thread of a core dump or a live process:\n"
        "Python frames in place of the eval-loop frames that run them, Rust\n"
        "and C++ names demangled, C frames.\n"
        "\n"
        "Commands:\n"
        "  core CORE [EXE]     analyse a core file (the executable is found\n"
        "                      from the core when not given)\n"
        "  pid PID             stop a live process, analyse it, resume it\n"
        "  gil TARGET          who holds the GIL, who waits, diagnoses\n"
        "  err TARGET          pending and handled Python exceptions\n"
        "  panic TARGET        Rust panic state: threads, messages, counters\n"
        "  phase TARGET        the interpreter's lifecycle phase\n"
        "  threads TARGET      one line per thread\n"
        "                      (TARGET: a core file, or a pid when all "
        "digits)\n"
        "  triage CORE|PID...  why each died or hangs, with a crash signature\n"
        "                      (mixstack triage --help)\n"
        "  run -- COMMAND...   run a command (a test suite) and triage every\n"
        "                      crash and hang of its processes (mixstack run\n"
        "                      --help)\n"
        "\n"
        "Options:\n"
        "  --json              print the report as JSON (schema mixstack/1)\n"
        "  --python-only       show only Python frames\n"
        "  --native-only       show only native frames (no Python merging)\n"
        "  --all-frames        keep CPython-internal frames between Python\n"
        "                      frames\n"
        "  --locals            show arguments and locals of Python frames\n"
        "  --exhaustive        scan memory for the Python runtime when no\n"
        "                      symbol or section shows it\n"
        "  --no-debug-files    no source lines or inlined frames from\n"
        "                      separate debug files (/usr/lib/debug): faster\n"
        "  --sysroot DIR       look for the target's files under DIR\n"
        "  --lib-path DIR      also look for files by name in DIR "
        "(repeatable)\n"
        "  --max-frames N      unwind at most N frames per thread (1024)\n"
        "  -h, --help          show this help\n"
        "  -V, --version       show the version\n"
        "\n"
        "Exit status: 0 complete report, 1 report with warnings, 2 unusable\n"
        "input or bad usage.\n";

static int usage_error(const char *fmt, const char *arg)
{
        fputs("mixstack: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs("\nTry 'mixstack --help'.\n", stderr);
        return EXIT_UNUSABLE;
}

static int parse_options(int argc, char **argv, struct cli_options *opts)
{
        static const struct option longopts[] = {
                {"json", no_argument, NULL, 'j'},
                {"python-only", no_argument, NULL, 'P'},
                {"native-only", no_argument, NULL, 'N'},
                {"all-frames", no_argument, NULL, 'a'},
                {"locals", no_argument, NULL, 'l'},
                {"exhaustive", no_argument, NULL, 'x'},
                {"no-debug-files", no_argument, NULL, 'D'},
                {"sysroot", required_argument, NULL, 's'},
                {"lib-path", required_argument, NULL, 'L'},
                {"max-frames", required_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        int c;
        while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
                char *end;
                long n;
                switch (c) {
                case 'j':
                        opts->format = MS_FORMAT_JSON;
                        break;
                case 'P':
                        opts->report.mode = MS_STACK_PYTHON_ONLY;
                        break;
                case 'N':
                        opts->report.mode = MS_STACK_NATIVE_ONLY;
                        break;
                case 'a':
                        opts->report.all_frames = true;
                        break;
                case 'l':
                        opts->report.locals = true;
                        break;
                case 'x':
                        opts->report.exhaustive = true;
                        break;
                case 'D':
                        opts->report.skip_debug_files = true;
                        break;
                case 's':
                        opts->target.sysroot = optarg;
                        break;
                case 'L':
                        if (opts->target.n_library_paths == MAX_LIBRARY_PATHS)
                                return usage_error("too many --lib-path: %s",
                                                   optarg);
                        opts->library_paths[opts->target.n_library_paths++] =
                                optarg;
                        break;
                case 'n':
                        errno = 0;
                        n = strtol(optarg, &end, 10);
                        if (errno || *end || n <= 0 || n > 1000000)
                                return usage_error("bad --max-frames: %s",
                                                   optarg);
                        opts->report.max_frames = (unsigned)n;
                        break;
                case 'h':
                        fputs(usage_text, stdout);
                        exit(EXIT_COMPLETE);
                case 'V':
                        puts("mixstack " MIXSTACK_VERSION);
                        exit(EXIT_COMPLETE);
                default:
                        return usage_error("%s", "bad option");
                }
        }
        opts->target.library_paths = opts->library_paths;
        return -1;
}

/* What a command prints. */
struct command {
        const char *name;
        enum ms_section section;
};

static const struct command commands[] = {
        {"core", MS_SECTION_REPORT},     {"pid", MS_SECTION_REPORT},
        {"gil", MS_SECTION_GIL},         {"err", MS_SECTION_ERRORS},
        {"panic", MS_SECTION_PANIC},     {"phase", MS_SECTION_PHASE},
        {"threads", MS_SECTION_THREADS},
};

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
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
 * core, "pid" a pid, the section commands either (digits are a pid unless
 * a file has that name). */
static struct ms_error *open_target(const char *command, char **operands,
                                    int n_operands, struct cli_options *opts,
                                    struct ms_target **target)
{
        pid_t pid;
        bool is_pid = strcmp(command, "pid") == 0;
        if (strcmp(command, "core") != 0 && !is_pid && n_operands == 1 &&
            parse_pid(operands[0], &pid) && access(operands[0], F_OK) != 0)
                is_pid = true;
        if (!is_pid) {
                if (n_operands < 1 || n_operands > 2)
                        return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                               "usage: mixstack %s CORE "
                                               "[EXECUTABLE]",
                                               command);
                if (n_operands == 2)
                        opts->target.executable = operands[1];
                return ms_target_open_core(operands[0], &opts->target, target);
        }
        if (n_operands != 1)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "usage: mixstack %s PID", command);
        if (!parse_pid(operands[0], &pid))
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "not a process id: %s", operands[0]);
        return ms_target_open_pid(pid, &opts->target, target);
}

static int fail(struct ms_error *err)
{
        fprintf(stderr, "mixstack: %s\n", err->message);
        ms_error_destroy(err);
        return EXIT_UNUSABLE;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage_error("%s", "missing command");
        const char *command = argv[1];
        if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) {
                fputs(usage_text, stdout);
                return EXIT_COMPLETE;
        }
        if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
                puts("mixstack " MIXSTACK_VERSION);
                return EXIT_COMPLETE;
        }
        /* triage and run have options of their own. */
        if (strcmp(command, "triage") == 0)
                return cli_triage_main(argc - 1, argv + 1);
        if (strcmp(command, "run") == 0)
                return cli_run_main(argc - 1, argv + 1);
        const struct command *cmd = find_command(command);
        if (!cmd)
                return usage_error("unknown command: %s", command);

        struct cli_options opts = {0};
        int status = parse_options(argc - 1, argv + 1, &opts);
        if (status >= 0)
                return status;
        /* getopt permuted argv + 1: the operands follow optind there. */
        char **operands = argv + 1 + optind;
        int n_operands = argc - 1 - optind;

        struct ms_target *target = NULL;
        struct ms_error *err =
                open_target(command, operands, n_operands, &opts, &target);
        if (err)
                return fail(err);
        struct ms_report *report = NULL;
        cli_guard(target);
        err = ms_report_create(target, &opts.report, &report);
        /* Detach a live process before printing: it is stopped meanwhile. */
        cli_unguard();
        ms_target_destroy(target);
        if (err)
                return fail(err);
        struct ms_print_options print = {
                .format = opts.format,
                .section = cmd->section,
        };
        err = ms_report_print_section(report, &print, stdout);
        status = report->n_warnings ? EXIT_PARTIAL : EXIT_COMPLETE;
        ms_report_destroy(report);
        if (err)
                return fail(err);
        if (fflush(stdout) != 0)
                return EXIT_UNUSABLE;
        return status;
}
