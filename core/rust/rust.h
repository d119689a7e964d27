/*
 * Rust panic state of a target: the panic counters of every Rust module
 * (each cdylib, so each PyO3 extension, carries its own std and its own
 * counters), and per thread whether it is in the panic machinery, where
 * the panic came from, and the panic's message and location recovered
 * from memory.
 *
 *     struct ms_rust_thread_input in[] = {{.tid = t, .frames = f, .n_frames =
 * n}, ...}; struct ms_rust_state state; err = ms_rust_analyse(target, in, n_in,
 * &state);
 *     ... state.modules[i], state.threads[j] ...
 *     ms_rust_state_deinit(&state);
 *
 * Facts come from three places, in decreasing order of trust:
 * - symbols: GLOBAL_PANIC_COUNT and LOCAL_PANIC_COUNT from each module's
 *   .symtab/.dynsym (read from the file on this machine; .symtab is not
 *   loaded into memory), read at load bias + st_value. Exact when present;
 *   a stripped module gets count_known = false, never a made-up 0.
 * - frames: the rust-panic category of data/frame-rules.conf and the
 *   function names of the recognition rules of the Rust panic reference
 *   (§1.5) give the kind of panic and its site.
 * - memory heuristics, always labelled with recovered_by: validated scans
 *   for core::panic::Location structures and string payloads on the stack
 *   ("location-scan"), live unwinder exception objects of class
 *   "MOZ\0RUST" whose canary is the module's own ("exception-object"), and
 *   the default panic hook's formatted line ("hook-buffer").
 *
 * Everything read is untrusted: every read is checked, scans are bounded
 * (MS_RUST_STACK_SCAN, MS_RUST_EXCEPTION_SCAN_BUDGET), strings are cut at
 * MS_RUST_MAX_TEXT bytes and must be valid UTF-8. Problems that leave an
 * answer become warnings of the state.
 */
#ifndef MIXSTACK_RUST_RUST_H
#define MIXSTACK_RUST_RUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/util.h"
#include "mixstack/mixstack.h"
#include "report/model.h"
#include "target/target.h"

/* Bounds on what is taken from a target. */
#define MS_RUST_MAX_MODULES 4096
#define MS_RUST_MAX_TEXT 4096
/* Bytes of stack scanned above a thread's stack pointer for Location
 * structures and payloads, and below it for the hook's text buffer. */
#define MS_RUST_STACK_SCAN (64 * 1024)
#define MS_RUST_STACK_SCAN_BELOW (16 * 1024)
/* Bytes of writable memory searched for exception objects, in total. */
#define MS_RUST_EXCEPTION_SCAN_BUDGET ((uint64_t)512 * 1024 * 1024)
#define MS_RUST_MAX_EXCEPTIONS 64

/* The top bit of GLOBAL_PANIC_COUNT: std::panic::always_abort() was
 * called. */
#define MS_RUST_ALWAYS_ABORT_FLAG ((uint64_t)1 << 63)

/* Labels of recovered facts (recovered_by). */
#define MS_RUST_BY_LOCATION_SCAN "location-scan"
#define MS_RUST_BY_EXCEPTION_OBJECT "exception-object"
#define MS_RUST_BY_HOOK_BUFFER "hook-buffer"

struct ms_rust_tls;

/* One loaded Rust module (a file with rustc's .comment or std's panic
 * count symbol); a file mapped twice (dlmopen) is two modules. */
struct ms_rust_module {
        /* The path as the target names it. */
        char *path;
        /* Load bias: runtime address minus link-time address. */
        uint64_t bias;
        /* "rustc version 1.95.0 (59807616e 2026-04-14)" from .comment, or
         * NULL. */
        char *rustc_version;
        /* GLOBAL_PANIC_COUNT: the number of threads of this module's std
         * that are panicking, without the ALWAYS_ABORT flag. Valid only
         * when count_known; otherwise count_unknown_reason says why
         * ("no symbol table (stripped)", "cannot read ..."). */
        bool count_known;
        uint64_t global_panic_count;
        bool always_abort;
        uint64_t count_address;
        char *count_unknown_reason;
        /* Internal: symbols used by the thread analysis, 0 when absent. */
        uint64_t canary_address;  /* panic_unwind::imp::CANARY */
        uint64_t cleanup_address; /* panic_unwind::imp::panic::exception_cleanup
                                   */
        bool have_local;          /* LOCAL_PANIC_COUNT (STT_TLS) */
        uint64_t local_offset;    /* its offset in the module's TLS block */
        uint64_t local_size;      /* 8: count; 16: count + in_hook at +8 */
        bool have_local_hook;     /* 1.85: a separate 1-byte in_hook */
        uint64_t local_hook_offset;
        /* TLS module id (1-based) from the dynamic linker, 0 when unknown. */
        uint64_t tls_modid;
};

/* What a thread's frames say about a panic. */
enum ms_rust_panic_kind {
        /* No panic machinery on the stack. */
        MS_RUST_PANIC_NONE,
        /* A panic is being raised or unwound (rust_panic,
         * _Unwind_RaiseException), or the hook runs. */
        MS_RUST_PANIC_IN_PROGRESS,
        /* panic=abort runtime: __rust_start_panic -> __rust_abort. */
        MS_RUST_PANIC_ABORT_RUNTIME,
        /* A panic tried to leave a function that cannot unwind
         * (extern "C"): core::panicking::panic_cannot_unwind. */
        MS_RUST_PANIC_CANNOT_UNWIND,
        /* A destructor panicked during unwinding:
         * core::panicking::panic_in_cleanup. */
        MS_RUST_PANIC_IN_CLEANUP,
        /* Another non-unwinding panic (core::panicking::panic_nounwind*:
         * precondition checks, misaligned pointers). */
        MS_RUST_PANIC_NOUNWIND,
        /* panic_with_hook aborted by itself: a panic in the hook,
         * always_abort, or a double panic in old releases. */
        MS_RUST_PANIC_ABORTED,
        /* A foreign (C++) exception reached catch_unwind. */
        MS_RUST_PANIC_FOREIGN_EXCEPTION,
        /* std::process::abort without any panic. */
        MS_RUST_PANIC_PROCESS_ABORT,
};

/* "none", "in-progress", "panic-abort", "cannot-unwind", "in-cleanup",
 * "nounwind", "aborted", "foreign-exception", "process-abort". */
const char *ms_rust_panic_kind_name(enum ms_rust_panic_kind kind);

/* The panic of one thread. */
struct ms_rust_thread {
        pid_t tid;
        /* Some frame is in the panic machinery (category rust-panic; the
         * catching side of catch_unwind excluded). */
        bool in_machinery;
        /* A panic is under way: a panic frame (§1.5) is on the stack, or
         * the thread's LOCAL_PANIC_COUNT is not 0. A bare
         * std::process::abort is machinery but no panic. */
        bool panicking;
        enum ms_rust_panic_kind kind;

        /* The panic site: the first native frame outside the machinery
         * and outside std/core/alloc, outer of the machinery (for a
         * cannot-unwind abort, the extern "C" function itself; for a
         * process-abort, the caller of std::process::abort). site_index
         * indexes the input frames; -1 when there is none. */
        int site_index;
        char *site_function;
        char *site_module;
        char *site_file;
        int site_line;
        int site_column;

        /* LOCAL_PANIC_COUNT of panic_module (the module of the machinery,
         * else the first module whose local count is not 0), when its TLS
         * block could be resolved through the dynamic linker's link_map and
         * the thread's DTV. */
        const char *panic_module; /* a module path of the state, or NULL */
        bool local_count_known;
        uint64_t local_panic_count;
        bool in_panic_hook;

        /* The panic's message and location recovered from memory (NULL /
         * 0 when nothing was found), each labelled. For cannot-unwind and
         * in-cleanup aborts these are the original panic's, not core's
         * "panic in a function that cannot unwind". */
        char *message;
        const char *message_recovered_by;
        char *file;
        uint32_t line;
        uint32_t column;
        const char *location_recovered_by;
        /* The thread name the hook text gave ("<unnamed>", "main"), or
         * NULL. */
        char *hook_thread_name;
};

/* Set in_machinery, panicking (from frames only), kind and the site of
 * out. Returns false when out of memory. */
bool ms_rust_frames_classify(const struct ms_frame *frames, size_t n,
                             struct ms_rust_thread *out);

/* A live unwinder exception object ("MOZ\0RUST") found in memory. */
struct ms_rust_exception {
        uint64_t address;
        /* The module whose CANARY it carries (a path of the state). */
        const char *module;
        /* The canary is that module's panic_unwind::imp::CANARY symbol;
         * false when the module has no symbols and the canary and cleanup
         * pointers were only seen to point into it. */
        bool canary_verified;
        /* The payload when it is a String or &str, else NULL. */
        char *message;
        /* The thread whose stack refers to it, 0 when none does. */
        pid_t tid;
};

struct ms_rust_state {
        struct ms_rust_module *modules;
        size_t n_modules;
        /* One per input, in input order. */
        struct ms_rust_thread *threads;
        size_t n_threads;
        struct ms_rust_exception *exceptions;
        size_t n_exceptions;
        /* Whether writable memory could be enumerated and searched for
         * exception objects (not for debugger-fed targets). */
        bool exceptions_searched;
        struct ms_warnings warnings;
        /* Internal: glibc's TLS layout (tls.c), NULL when unknown. */
        struct ms_rust_tls *tls;
};

/* One thread to analyse: its tid and its classified native frames
 * (innermost first, category set by ms_frame_category; Python frames are
 * skipped, so a merged stack will do). frames may be NULL. */
struct ms_rust_thread_input {
        pid_t tid;
        const struct ms_frame *frames;
        size_t n_frames;
};

/*
 * Read the Rust panic state of target: every Rust module and its counts,
 * then each input thread. Memory is only scanned for threads that are
 * panicking. Fails only when out of memory or on invalid arguments;
 * everything else becomes a warning or an unknown field.
 */
struct ms_error *ms_rust_analyse(struct ms_target *target,
                                 const struct ms_rust_thread_input *threads,
                                 size_t n_threads, struct ms_rust_state *ret);

void ms_rust_state_deinit(struct ms_rust_state *state);

/* The module of state with path (as the target names it), or NULL. */
const struct ms_rust_module *ms_rust_find_module(
        const struct ms_rust_state *state, const char *path);

#endif /* MIXSTACK_RUST_RUST_H */
