/*
 * The CPython reader: finds every CPython runtime in a target (core dump,
 * live process, debugger view) and reads its interpreters, thread states
 * and Python frames, for CPython 3.8-3.15, with or without debug info.
 *
 *     struct ms_py_runtime *rts;
 *     size_t n;
 *     err = ms_py_runtimes_find(target, unwinder, NULL, &rts, &n);
 *     for each rts[i]: rts[i].threads[j].frames[k] ...
 *     ms_py_runtimes_destroy(rts, n);
 *
 * How a runtime is found, in order (all candidates are collected, then
 * de-duplicated by address, so an embedding process with several
 * libpythons reports each):
 * 1. options->runtime_address, when given;
 * 2. the symbol _PyRuntime of every module (the unwinder's .symtab/.dynsym
 *    lookup, and this module's own .dynsym read from the file), which
 *    static and shared builds export;
 * 3. the ELF section .PyRuntime (3.10+), which starts exactly at
 *    _PyRuntime even when the symbol table is gone;
 * 4. with options->exhaustive, a scan of the writable file-backed mappings
 *    for the 3.13+ "xdebugpy" cookie or, before 3.13, a structure that
 *    validates as a runtime (main interpreter with id 0 whose threads point
 *    back to it).
 *
 * The version comes from _Py_DebugOffsets.version (3.13+), else the
 * Py_Version symbol (3.11+), else the module name (libpython3.X.so,
 * python3.X), else a "3.X.Y (" version string in the module's data.
 * Offsets come from the generated tables (layout.h), overridden by the
 * target's own _Py_DebugOffsets when it has them: a target that describes
 * itself is believed over the tables, since patch releases move fields.
 *
 * Everything read is untrusted: each pointer is checked on read, each
 * list is bounded, strings are cut at MS_PY_MAX_STRING bytes. Problems
 * that leave an answer become warnings of the runtime or a thread's error.
 *
 * Not yet read: locals and arguments (the layout has the offsets:
 * if_localsplus, co_varnames, co_nlocalsplus), pending/handled exceptions,
 * GIL holder for free-threaded builds, per-thread bytecode (3.14t
 * tlbc_index/co_tlbc: the line of such a frame may be wrong).
 */
#ifndef MIXSTACK_CPYTHON_CPYTHON_H
#define MIXSTACK_CPYTHON_CPYTHON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/util.h"
#include "cpython/layout.h"
#include "mixstack/mixstack.h"
#include "target/target.h"

struct ms_unwinder;

/* Bounds on what is taken from a target. */
#define MS_PY_MAX_INTERPRETERS 1024
#define MS_PY_MAX_THREADS 65536
#define MS_PY_MAX_FRAMES 4096
#define MS_PY_MAX_STRING 1024

struct ms_py_find_options {
        /* Also scan writable file-backed mappings for runtimes that neither
         * a symbol nor a .PyRuntime section shows. Reads a lot. */
        bool exhaustive;
        /* Do not look at symbols and sections: only runtime_address and the
         * exhaustive scan (tests; module files that lie or do not match). */
        bool skip_modules;
        /* A runtime address known by other means (a debugger's
         * &_PyRuntime), 0 for none. */
        uint64_t runtime_address;
        /* Version to assume when the target does not tell (e.g. a runtime
         * found at runtime_address in a 3.8-3.12 target), 0 = detect. */
        int major, minor;
        /* Python frames taken per thread (0: MS_PY_MAX_FRAMES). */
        unsigned max_frames;
};

struct ms_py_frame {
        /* co_name, co_qualname (3.11+; NULL before), co_filename. NULL
         * when unreadable. */
        char *function;
        char *qualname;
        char *file;
        /* Line of the instruction the frame is executing (callers: the
         * call), 0 when unknown, from the line table at the exact
         * instruction (or f_lineno while tracing). */
        int line;
        /* This frame is the first one run by a new _PyEval_EvalFrameDefault
         * call (every frame in 3.8-3.10; is_entry in 3.11; the frame just
         * above a C-stack/interpreter shim frame in 3.12+). Merging pairs
         * each group of frames up to and including one with is_entry with
         * one native eval frame. */
        bool is_entry;
        /* Owned by a generator/coroutine (3.11+). */
        bool is_generator;
        /* The PyFrameObject (3.8-3.10) or _PyInterpreterFrame (3.11+). */
        uint64_t address;
        uint64_t code_address;
        /* Byte offset of the instruction in the bytecode, -1 unknown. */
        int64_t instruction_offset;
};

struct ms_py_thread {
        uint64_t tstate;
        /* Kernel thread id: native_thread_id (3.11+), else the target thread
         * whose fs_base equals thread_id (x86-64 glibc: pthread_self() is
         * the thread pointer). 0 when unknown. */
        pid_t native_tid;
        /* pthread_t. */
        uint64_t pthread_id;
        int64_t interp_id;
        /* tstate->state (3.13+: 0 detached, 1 attached, 2 suspended,
         * 3 shutting down), -1 when the version has none. */
        int state;
        /* This thread holds the GIL (GIL locked and last_holder == this
         * tstate, or the 3.13+/3.14+ per-thread flag). */
        bool holds_gil;
        struct ms_py_frame *frames; /* innermost first */
        size_t n_frames;
        /* How many C-stack/interpreter shim frames were passed (3.12+). */
        size_t n_shim_frames;
        /* Why the frame walk stopped early, or NULL. */
        char *error;
};

struct ms_py_interp {
        uint64_t address;
        int64_t id;
        bool is_main;
        /* The GIL this interpreter uses: locked, and the last holder. */
        bool gil_locked;
        uint64_t gil_last_holder;
        bool finalizing;
};

struct ms_py_runtime {
        /* &_PyRuntime. */
        uint64_t address;
        /* Path of the module holding it (as the target names it), or NULL. */
        char *module;
        /* How it was found: "symbol", "section", "address", "scan". */
        const char *found_by;
        /* "3.12.1"; "3.13.0t" for a free-threaded build. */
        char *version_string;
        int major, minor, micro;
        /* PY_VERSION_HEX, 0 when only major.minor are known. */
        uint32_t version_hex;
        bool free_threaded;
        /* The target held a valid _Py_DebugOffsets (3.13+), which was
         * merged into layout. */
        bool has_debug_offsets;
        /* The table entry for the version, overridden by debug offsets. */
        struct ms_py_layout layout;
        /* Lifecycle flags read from the runtime (-1 unknown). */
        int initialized, core_initialized;
        uint64_t finalizing_tstate;
        struct ms_py_interp *interps;
        size_t n_interps;
        /* Threads of all interpreters, in list order (newest first). */
        struct ms_py_thread *threads;
        size_t n_threads;
        struct ms_warnings warnings;
};

/*
 * Find and read every CPython runtime in target. unwinder may be NULL
 * (then symbols come only from each module's .dynsym); options may be
 * NULL. A target without Python gives *n_ret == 0 and no error; errors are
 * only for failures that leave nothing (out of memory).
 */
struct ms_error *ms_py_runtimes_find(struct ms_target *target,
                                     struct ms_unwinder *unwinder,
                                     const struct ms_py_find_options *options,
                                     struct ms_py_runtime **ret,
                                     size_t *n_ret);

void ms_py_runtimes_destroy(struct ms_py_runtime *runtimes, size_t n);

/*
 * Read the runtime at address, with the version already known (major,
 * minor; version_hex may be 0) into *rt (initialized by this function;
 * release with ms_py_runtime_deinit). Used by ms_py_runtimes_find after
 * finding a candidate, and directly by tests and debuggers.
 */
struct ms_error *ms_py_runtime_read(struct ms_target *target, uint64_t address,
                                    int major, int minor, uint32_t version_hex,
                                    const struct ms_py_find_options *options,
                                    struct ms_py_runtime *rt);
void ms_py_runtime_deinit(struct ms_py_runtime *rt);

#endif /* MIXSTACK_CPYTHON_CPYTHON_H */
