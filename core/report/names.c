/* Names of the report model's enumerations, shared by every printer. */
#include <signal.h>
#include <stddef.h>

#include "mixstack/mixstack.h"

const char *ms_language_name(enum ms_language language)
{
        switch (language) {
        case MS_LANGUAGE_C:
                return "c";
        case MS_LANGUAGE_CXX:
                return "c++";
        case MS_LANGUAGE_RUST:
                return "rust";
        case MS_LANGUAGE_PYTHON:
                return "python";
        case MS_LANGUAGE_UNKNOWN:
                break;
        }
        return "unknown";
}

const char *ms_signal_name(int signo)
{
        /* The Linux x86-64 numbers; a core from this platform uses them. */
        static const char *const names[] = {
                [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",
                [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
                [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
                [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
                [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",
                [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
                [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",
                [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
                [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",
                [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
                [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",
                [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU",
                [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM",
                [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
                [SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",
                [SIGSYS] = "SIGSYS",
        };
        if (signo <= 0 || (size_t)signo >= sizeof(names) / sizeof(names[0]))
                return NULL;
        return names[signo];
}

const char *ms_gil_state_name(enum ms_gil_state state)
{
        switch (state) {
        case MS_GIL_HELD:
                return "held";
        case MS_GIL_WAITING:
                return "waiting";
        case MS_GIL_RELEASED:
                return "released";
        case MS_GIL_NONE:
                break;
        }
        return "none";
}
