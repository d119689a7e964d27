/* What the mixstack CLI's commands share. */
#ifndef MIXSTACK_CLI_CLI_H
#define MIXSTACK_CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mixstack/mixstack.h"

#define CLI_MAX_LIBRARY_PATHS 64

/* How targets are opened and triaged: the target and triage options
 * (ms_options_set()), made by cli_triage_config_init(). */
struct cli_triage_config {
        struct ms_options *options;
        size_t n_library_paths;
        enum ms_triage_format format;
};

/* false (with a message printed) when out of memory. */
bool cli_triage_config_init(struct cli_triage_config *cfg);
void cli_triage_config_deinit(struct cli_triage_config *cfg);

/* ms_options_set(), with a message printed when it fails. */
bool cli_set_option(struct ms_options *options, const char *name,
                    const char *value);

/* The options of triage and run, for getopt_long (to end a longopts
 * array with). */
#define CLI_TRIAGE_LONGOPTS                                 \
        {"json", no_argument, NULL, 'j'},                   \
                {"markdown", no_argument, NULL, 'm'},       \
                {"sysroot", required_argument, NULL, 's'},  \
                {"lib-path", required_argument, NULL, 'L'}, \
                {"no-debuginfod", no_argument, NULL, 'I'},  \
                {"frames", required_argument, NULL, 'F'},   \
                {"signature-frames", required_argument, NULL, 'S'}

/* Apply one of those options; false (with a message printed) when its
 * argument is bad, or when c is not one of them. */
bool cli_triage_option(int c, const char *arg, struct cli_triage_config *cfg);

/* A positive integer option no larger than max, or false. */
bool cli_parse_count(const char *s, long max, long *ret);

/* Show debug info downloads (debuginfod) on stderr when it is a
 * terminal (download.c). */
void cli_watch_downloads(struct ms_options *options);

/* mixstack debugger-setup gdb|lldb (setup.c); argv[0] is the command. */
int cli_setup_main(int argc, char **argv);

/* Print "mixstack: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Triage a core and hand it to each printer. The core's process must be
 * expect_pid unless that is 0; *pid gets the core's pid. The error says
 * why it cannot be triaged (the caller reports it).
 */
struct ms_error *cli_triage_core(const struct cli_triage_config *cfg,
                                 const char *core, pid_t expect_pid,
                                 struct ms_triage_printer *const *printers,
                                 size_t n_printers, pid_t *pid);

/* Triage a live process (stopped while its report is made). A process
 * without a Python runtime is left alone: *is_python false, nothing
 * printed. */
struct ms_error *cli_triage_pid(const struct cli_triage_config *cfg, pid_t pid,
                                struct ms_triage_printer *const *printers,
                                size_t n_printers, bool *is_python);

/* Detach target's process if mixstack gets a fatal signal until
 * cli_unguard() (cli/guard.c): call it before the target is frozen (before
 * ms_report_create()), and cli_unguard() before destroying it. */
void cli_guard(struct ms_target *target);
void cli_unguard(void);

/* The commands: argv[0] is the command's name; the result is the exit
 * status. */
int cli_triage_main(int argc, char **argv);
int cli_run_main(int argc, char **argv);

#endif /* MIXSTACK_CLI_CLI_H */
