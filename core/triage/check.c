/* Whether a target can be triaged at all. */
#include <unistd.h>

#include "target/target.h"

struct ms_error *ms_triage_check_target(const struct ms_target *target)
{
        if (!target)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no target to triage");
        /* A debugger knows its files; it reports missing ones itself. */
        if (target->kind == MS_TARGET_DEBUGGER)
                return NULL;
        if (!target->executable && !target->host_executable)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "the target does not name its "
                                       "executable; give it as EXE");
        if (!target->host_executable ||
            access(target->host_executable, R_OK) != 0)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "executable %s not found (deleted, or "
                                       "from another machine: give it as "
                                       "EXE, or use --sysroot or --lib-path)",
                                       target->executable
                                               ? target->executable
                                               : target->host_executable);
        return NULL;
}
