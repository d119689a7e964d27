/*
 * mixstack debugger-setup gdb|lldb: print the line that loads the plugin
 * of this install, for ~/.gdbinit or ~/.lldbinit:
 *
 *     mixstack debugger-setup gdb >> ~/.gdbinit
 *
 * The plugins are found relative to the running executable, as installed
 * (CMake install, wheel) or in a build tree.
 */
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

#ifndef MIXSTACK_BIN_TO_GDB_PLUGIN
#define MIXSTACK_BIN_TO_GDB_PLUGIN "../share/mixstack/gdb/mixstack-gdb.py"
#endif
#ifndef MIXSTACK_LLDB_MAJOR
#define MIXSTACK_LLDB_MAJOR 0
#endif
#ifndef MIXSTACK_BIN_TO_LLDB_PLUGIN
#define MIXSTACK_BIN_TO_LLDB_PLUGIN "../lib/mixstack/libmixstack-lldb.so"
#endif

static const char setup_usage[] =
        "Usage: mixstack debugger-setup gdb|lldb [--lldb PROGRAM]\n"
        "\n"
        "Print the line that loads mixstack's plugin into gdb (for\n"
        "~/.gdbinit) or lldb (for ~/.lldbinit), e.g.\n"
        "    mixstack debugger-setup gdb >> ~/.gdbinit\n"
        "The lldb plugin is built against one liblldb version: PROGRAM\n"
        "(default lldb) is asked its version, and when it cannot load the\n"
        "plugin the command says how to get one that it can.\n";

/* The file rel (relative to the executable's directory, as installed),
 * else build (the build tree's layout), or NULL. */
static char *find_file(const char *rel, const char *build)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return NULL;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash)
                return NULL;
        *slash = '\0';
        const char *tries[] = {rel, build};
        for (size_t i = 0; i < 2; i++) {
                char *path;
                if (asprintf(&path, "%s/%s", exe, tries[i]) < 0)
                        return NULL;
                char *real = realpath(path, NULL);
                free(path);
                if (real)
                        return real;
        }
        return NULL;
}

/* The major version `program --version` prints ("lldb version 19.1.7"),
 * 0 when it cannot be run or says nothing of the kind. */
static int lldb_major(const char *program)
{
        int fds[2];
        if (pipe(fds) != 0)
                return 0;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null",
                                         O_WRONLY, 0);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        char *argv[] = {(char *)program, "--version", NULL};
        pid_t pid;
        int r = posix_spawnp(&pid, program, &actions, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        char buf[512] = {0};
        size_t len = 0;
        ssize_t got;
        while (r == 0 && len < sizeof(buf) - 1 &&
               (got = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)got;
        close(fds[0]);
        if (r != 0)
                return 0;
        int status;
        waitpid(pid, &status, 0);
        const char *v = strstr(buf, "version ");
        return v ? atoi(v + strlen("version ")) : 0;
}

static int setup_gdb(void)
{
        char *plugin = find_file(MIXSTACK_BIN_TO_GDB_PLUGIN,
                                 "gdb-plugin/mixstack-gdb.py");
        if (!plugin) {
                cli_error("the gdb plugin is not installed next to this "
                          "mixstack (" MIXSTACK_BIN_TO_GDB_PLUGIN ")");
                return 1;
        }
        printf("source %s\n", plugin);
        free(plugin);
        return 0;
}

static int setup_lldb(const char *program)
{
        char *plugin = find_file(MIXSTACK_BIN_TO_LLDB_PLUGIN,
                                 "lldb-plugin/libmixstack-lldb.so");
        if (!plugin) {
                cli_error("this mixstack has no lldb plugin (it was built "
                          "without liblldb); build mixstack from source with "
                          "Debian's liblldb-N-dev of your lldb-N (see "
                          "lldb-plugin/README.md)");
                return 1;
        }
        int built = MIXSTACK_LLDB_MAJOR;
        int have = lldb_major(program);
        if (have && built && have != built) {
                cli_error("the lldb plugin here (%s) is built for lldb %d "
                          "and cannot be loaded by %s, which is lldb %d: use "
                          "lldb-%d (apt-get install lldb-%d), or build the "
                          "plugin for lldb %d from source: cmake "
                          "-DMIXSTACK_LLDB_ROOT=/usr/lib/llvm-%d (with "
                          "liblldb-%d-dev; see lldb-plugin/README.md)",
                          plugin, built, program, have, built, built, have,
                          have, have);
                free(plugin);
                return 1;
        }
        if (!have)
                fprintf(stderr,
                        "mixstack: note: %s not found; the plugin is built "
                        "for lldb %d\n",
                        program, built);
        printf("plugin load %s\n", plugin);
        free(plugin);
        return 0;
}

static int setup_usage_error(const char *fmt, const char *arg)
{
        fputs("mixstack: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs("\nTry 'mixstack debugger-setup --help'.\n", stderr);
        return 2;
}

int cli_setup_main(int argc, char **argv)
{
        const char *debugger = NULL, *program = "lldb";
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-h") == 0 ||
                    strcmp(argv[i], "--help") == 0) {
                        fputs(setup_usage, stdout);
                        return 0;
                }
                if (strcmp(argv[i], "--lldb") == 0) {
                        if (i + 1 == argc)
                                return setup_usage_error("%s needs a program",
                                                         argv[i]);
                        program = argv[++i];
                } else if (!debugger && argv[i][0] != '-') {
                        debugger = argv[i];
                } else {
                        return setup_usage_error("unexpected argument: %s",
                                                 argv[i]);
                }
        }
        if (!debugger)
                return setup_usage_error("%s", "which debugger: gdb or lldb?");
        if (strcmp(debugger, "gdb") == 0)
                return setup_gdb();
        if (strcmp(debugger, "lldb") == 0)
                return setup_lldb(program);
        return setup_usage_error("unknown debugger: %s (gdb or lldb)",
                                 debugger);
}
