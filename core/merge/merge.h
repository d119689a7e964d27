/*
 * Merging one thread's native and Python stacks: each eval-loop native
 * frame is replaced by the Python frames it runs. Which native frame runs
 * a group of Python frames comes from the interpreter's own records: the
 * group's stack anchor lies in that frame's stack, [sp, caller's sp).
 * Only when no group can be placed so (3.8-3.9, stacks without stack
 * pointers) are eval-loop frames found by name (_PyEval_EvalFrameDefault
 * and its clones) and paired in order.
 */
#ifndef MIXSTACK_MERGE_MERGE_H
#define MIXSTACK_MERGE_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"
#include "mixstack/mixstack.h"
#include "report/model.h"

enum ms_merge_mode {
        MS_MERGE_MIXED,
        MS_MERGE_PYTHON_ONLY,
        MS_MERGE_NATIVE_ONLY,
};

struct ms_merge_input {
        /* Native frames innermost first, with categories set. */
        struct ms_frame *native;
        size_t n_native;
        /* Python frames innermost first (kind MS_FRAME_PYTHON). */
        struct ms_frame *python;
        size_t n_python;
        /* Per Python frame: true when it is the first frame run by a new
         * eval-loop call (3.8-3.10: every frame; 3.11+: is_entry, or the
         * frame above a C-stack shim), i.e. the outermost of its group. */
        const bool *python_is_entry;
        /* Per Python frame (may be NULL): on entry frames, the address on
         * the C stack that the eval call running its group keeps there
         * (ms_py_frame.stack_anchor), 0 when unknown. */
        const uint64_t *python_anchor;
};

/*
 * Merge, taking ownership of the frames of input (their arrays are freed
 * and the pointers cleared). *frames gets the merged stack innermost
 * first. CPython-internal frames between Python frames are dropped unless
 * all_frames. A mismatch between the stacks adds a warning naming tid and
 * keeps every frame of both.
 */
struct ms_error *ms_merge_thread(struct ms_merge_input *input,
                                 enum ms_merge_mode mode, bool all_frames,
                                 pid_t tid, struct ms_warnings *warnings,
                                 struct ms_frame **frames, size_t *n_frames);

#endif
