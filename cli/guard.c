/*
 * The CLI's signal handlers while it holds a live process: if mixstack is
 * killed (SIGINT, SIGTERM, SIGHUP, SIGQUIT) or crashes (SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE, SIGILL) while a process is stopped, its threads are
 * detached first, then the signal goes on to the disposition it had (the
 * default one, which ends mixstack). The library installs no handler of
 * its own: it also lives inside debuggers.
 */
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "cli.h"

static const int guarded_signals[] = {
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV,
        SIGBUS, SIGABRT, SIGFPE, SIGILL,
};
#define N_GUARDED (sizeof(guarded_signals) / sizeof(guarded_signals[0]))

static struct ms_target *volatile guarded;
static struct sigaction saved[N_GUARDED];
static bool installed;

static void on_signal(int sig)
{
        struct ms_target *target = guarded;
        if (target)
                ms_target_detach_now(target);
        for (size_t i = 0; i < N_GUARDED; i++) {
                if (guarded_signals[i] == sig)
                        sigaction(sig, &saved[i], NULL);
        }
        raise(sig);
}

void cli_guard(struct ms_target *target)
{
        guarded = target;
        if (installed || !target)
                return;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < N_GUARDED; i++)
                sigaddset(&sa.sa_mask, guarded_signals[i]);
        for (size_t i = 0; i < N_GUARDED; i++)
                sigaction(guarded_signals[i], &sa, &saved[i]);
        installed = true;
}

void cli_unguard(void)
{
        if (installed) {
                for (size_t i = 0; i < N_GUARDED; i++)
                        sigaction(guarded_signals[i], &saved[i], NULL);
                installed = false;
        }
        guarded = NULL;
}
