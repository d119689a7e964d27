/*
 * What a report keeps of each thread's native stack besides the frames it
 * shows: the pc, inlined flag and name of every native frame, so that
 * debugger frontends can match the report's frames to the debugger's (see
 * core/navigate/). Reports made by ms_report_create() only.
 */
#ifndef MIXSTACK_REPORT_NATIVE_H
#define MIXSTACK_REPORT_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython/cpython.h"
#include "mixstack/mixstack.h"
#include "report/model.h"

struct ms_native_frame {
        uint64_t pc;
        bool inlined;
        char *function; /* may be NULL */
};

struct ms_native_frames {
        struct ms_native_frame *frames; /* innermost first */
        size_t n;
};

/* The native frames of report->threads[thread] (n 0 when none). */
const struct ms_native_frames *ms_report_native(const struct ms_report *report,
                                                size_t thread);

/* The globals and builtins dicts that Python frame k (0: the innermost)
 * of report->threads[thread] sees, each NULL when not read (reports made
 * without locals, an unreadable dict). */
void ms_report_python_names(const struct ms_report *report, size_t thread,
                            size_t k, const struct ms_py_namespace **globals,
                            const struct ms_py_namespace **builtins);

#endif /* MIXSTACK_REPORT_NATIVE_H */
