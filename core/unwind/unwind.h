/*
 * Native unwinding and symbolization of every thread of a target, with
 * libdw (dwfl). Modules are reported to dwfl from the target's mappings;
 * memory and registers come from the target, so one code path serves cores,
 * live processes and debugger-fed targets.
 */
#ifndef MIXSTACK_UNWIND_UNWIND_H
#define MIXSTACK_UNWIND_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixstack/mixstack.h"
#include "report/model.h"
#include "target/target.h"

struct ms_unwinder;

/* A native frame before merging: the same fields as struct ms_frame. The
 * strings are owned by the stack. */
struct ms_native_stack {
        struct ms_frame *frames; /* innermost first, kind MS_FRAME_NATIVE */
        size_t n_frames;
        /* Why unwinding stopped before the outermost frame, or NULL. */
        char *error;
        /* The frames' strings belong to the unwinder (a names-only stack):
         * valid while it lives, never freed with the stack. */
        bool borrowed;
};

/* Report the target's modules to libdw and attach its threads. Files that
 * cannot be opened become warnings of the target. */
struct ms_error *ms_unwinder_create(struct ms_target *target,
                                    struct ms_unwinder **ret);
void ms_unwinder_destroy(struct ms_unwinder *unwinder);

/* Whether source positions and inlined frames may come from separate debug
 * files (/usr/lib/debug, .gnu_debuglink): on by default. Off, only DWARF in
 * the modules themselves is read; names still come from the separate files'
 * symbol tables. Opening a distribution's libc debug file costs ~50 ms of
 * decompression. Call before unwinding. */
void ms_unwinder_set_separate_debuginfo(struct ms_unwinder *unwinder, bool use);

/* While on, ms_unwind_thread() names frames from symbol tables only: one
 * frame per physical frame, without inlined frames or source positions,
 * which take DWARF and time, and with borrowed strings. That is what to do
 * while a live process is stopped; ms_unwinder_add_debuginfo() adds the
 * rest after. */
void ms_unwinder_set_names_only(struct ms_unwinder *unwinder, bool on);

/* Whether frames are unwound with rules cached per address (on by
 * default), falling back to libdwfl's unwinder for a thread with a frame
 * those rules do not cover; off, libdwfl unwinds every frame. Both give the
 * same stacks; the switch is for tests and measurements. */
void ms_unwinder_set_cfi_cache(struct ms_unwinder *unwinder, bool on);

/* Symbolize the frames of a stack unwound names-only again, with DWARF:
 * inlined frames, source positions, DWARF names; the strings are then the
 * stack's own. A stack unwound with DWARF is left as it is. At most max_frames
 * frames (stack->error then says so). Reads no target memory. */
struct ms_error *ms_unwinder_add_debuginfo(struct ms_unwinder *unwinder,
                                           struct ms_native_stack *stack,
                                           unsigned max_frames);

/* Load every module's symbol tables and CFI now rather than at the first
 * frame that needs them: for a live process, so that it is done before the
 * process is stopped. */
void ms_unwinder_load_modules(struct ms_unwinder *unwinder);

/* Unwind thread number index of the target (an index into
 * target->threads), at most max_frames frames including inlined ones. An
 * error is returned only for failures that leave nothing (out of memory);
 * an unwinder that stops early fills stack->error. */
struct ms_error *ms_unwind_thread(struct ms_unwinder *unwinder, size_t index,
                                  unsigned max_frames,
                                  struct ms_native_stack *stack);
void ms_native_stack_deinit(struct ms_native_stack *stack);

/* Free the strings of one frame (core/report/frame.c). */
void ms_frame_deinit(struct ms_frame *frame);

/* Find a symbol by name in the module whose path ends with module_suffix
 * (any module when NULL): symbol tables (.symtab, then .dynsym) are
 * searched. Returns MS_ERROR_NOT_FOUND when absent. */
struct ms_error *ms_unwinder_find_symbol(struct ms_unwinder *unwinder,
                                         const char *module_suffix,
                                         const char *name, uint64_t *address,
                                         uint64_t *size);

#endif /* MIXSTACK_UNWIND_UNWIND_H */
