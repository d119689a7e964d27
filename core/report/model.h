/*
 * The report model: what ms_report_create() makes and the printers, the
 * triage and the debugger frame maps read. Internal to the library (and
 * its unit tests): users of the public header see opaque structures and
 * read them through its accessors (core/report/access.c), or as JSON.
 */
#ifndef MIXSTACK_REPORT_MODEL_H
#define MIXSTACK_REPORT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mixstack/mixstack.h"

/* An argument or local variable of a Python frame (with --locals). */
struct ms_local {
        char *name;
        /* A short repr, bounded: None, bool, int, float, str, bytes, tuple,
         * list and dict shown, other objects as "<type object at 0x...>". */
        char *value;
        /* One of the positional parameters. */
        bool argument;
};

/* One frame of a thread's stack. Strings may be NULL when unknown. */
struct ms_frame {
        enum ms_frame_kind kind;
        enum ms_language language;
        /* The program counter; for caller frames, the return address. A
         * Python frame has the pc of the eval-loop frame running it (0 when
         * none was found). */
        uint64_t pc;
        /* True for the innermost frame and frames interrupted by a signal:
         * pc is exact rather than a return address. */
        bool is_activation;
        /* True for a frame of a function inlined into the next frame out;
         * it shares that frame's pc. */
        bool inlined;
        /* The stack pointer of the physical frame (inlined frames share
         * it); the frame's stack lies in [sp, the next outer physical
         * frame's sp). 0 when unknown (and for Python frames). */
        uint64_t sp;
        /* Path of the module (executable or shared library) holding pc. */
        char *module;
        /* The symbol as found in the symbol table (mangled). */
        char *raw_symbol;
        /* The demangled name, Rust hashes removed; the raw symbol when it is
         * not mangled. */
        char *function;
        /* pc minus the symbol's address; for a frame without a symbol, pc
         * minus its module's load bias (the address in the module's file,
         * as addr2line takes it). */
        uint64_t offset;
        /* Source position, when debug info has it (0 = unknown). */
        char *file;
        int line;
        int column;
        /* What the frame is, from the classification rules
         * (data/frame-rules.conf): "python", "eval-loop", "cpython-internal",
         * "pyo3-trampoline", "rust-panic", "gil-acquire", ... Points to
         * storage that lives as long as the library. */
        const char *category;
        /* Python frames: the qualified name (3.11+; else the function). */
        char *qualname;
        /* The index of this frame in the thread's native-only stack; for a
         * Python frame, the index of the eval-loop frame that runs it. -1
         * when there is none. Debugger frontends select frames with it. */
        int native_index;
        /* Python frames, when the report was asked for locals: the bound
         * arguments and locals. */
        struct ms_local *locals;
        size_t n_locals;
};

/* A frame a Python exception passed through. */
struct ms_traceback_entry {
        char *function;
        char *file;
        int line; /* 0 when unknown */
};

/* One Python exception. Strings may be NULL when unreadable. */
struct ms_exception {
        /* "module.QualName": "builtins.ValueError",
         * "pyo3_runtime.PanicException". */
        char *type;
        /* What str(exc) would give, bounded. */
        char *message;
        bool message_truncated;
        /* PyO3's PanicException: a Rust panic turned into a Python
         * exception. */
        bool is_panic_exception;
        /* How it relates to the exception before it in a chain: NULL for
         * the first, "cause" (raise ... from) or "context" (raised while
         * handling it). */
        const char *link;
        /* Outermost first, the raise point last, as Python prints it. */
        struct ms_traceback_entry *traceback;
        size_t n_traceback;
        /* What could not be read, or NULL. */
        char *error;
};

/* An exception followed by its __cause__ / __context__ chain. n == 0: no
 * exception. */
struct ms_exception_chain {
        struct ms_exception *items;
        size_t n;
        /* The chain went on past what is shown, or looped. */
        bool truncated;
};

/* Rust panic state of a thread. Strings may be NULL when unknown. */
struct ms_panic {
        /* "in-progress", "panic-abort", "cannot-unwind", "in-cleanup",
         * "nounwind", "aborted", "foreign-exception", "process-abort". */
        const char *kind;
        /* A panic is under way (a process-abort is machinery but no
         * panic). */
        bool panicking;
        /* The panic site: the first frame outside the panic machinery, and
         * its index in the thread's frames (-1 when not shown). */
        char *site_function;
        char *site_module;
        char *site_file;
        int site_line;
        int site_column;
        int site_index;
        /* The message and location recovered from memory, each with how:
         * "exception-object", "hook-buffer" or "location-scan" (all
         * heuristics). */
        char *message;
        const char *message_recovered_by;
        char *location_file;
        int location_line;
        int location_column;
        const char *location_recovered_by;
        /* The thread's LOCAL_PANIC_COUNT, -1 when unknown. */
        int64_t local_panic_count;
        bool in_panic_hook;
};

/* One thread of the target. */
struct ms_thread_report {
        pid_t tid;
        /* The thread's name (comm) when the target has it. */
        char *name;
        /* True for the thread that received the fatal signal. */
        bool crashed;
        struct ms_frame *frames; /* innermost first */
        size_t n_frames;
        /* Why unwinding stopped early, or NULL when it reached the end. */
        char *unwind_error;
        /* True when the thread has a Python thread state. */
        bool python;
        /* The id of its interpreter (0 is the main one), -1 when none. */
        int64_t interpreter_id;
        /* Why its Python frames could not be read, or NULL. */
        char *python_error;
        /* Its relation to the GIL, and the index in frames of the frame it
         * waits for the GIL in (-1 when not waiting or not shown). */
        enum ms_gil_state gil;
        int gil_wait_frame;
        /* The exception being raised (PyErr_Occurred()) and the one being
         * handled (sys.exc_info()). */
        struct ms_exception_chain pending;
        struct ms_exception_chain handled;
        /* Rust panic state, NULL when no panic machinery is on its stack. */
        struct ms_panic *panic;
        /* The thread owning the lock this thread is blocked on, when the
         * lock records its owner (a pthread mutex), else 0. */
        pid_t lock_owner_tid;
};

/* One Python interpreter. */
struct ms_interpreter_report {
        int64_t id;
        /* The GIL was read; locked; the thread holding it (0: nobody or
         * unknown); a free-threaded build running without a GIL. */
        bool gil_known;
        bool gil_locked;
        pid_t gil_holder_tid;
        bool gil_disabled;
};

/* A Rust module (each PyO3 extension carries its own std). */
struct ms_rust_module_report {
        char *path;
        char *rustc_version;
        /* std's GLOBAL_PANIC_COUNT (panics under way: a panic while
         * panicking counts twice) and its ALWAYS_ABORT
         * flag; unknown (count_known false) in a stripped module, with the
         * reason. */
        bool count_known;
        uint64_t global_panic_count;
        bool always_abort;
        char *count_unknown_reason;
};

/* A conclusion drawn from several facts: a deadlock, a GIL holder blocked
 * outside Python, ... */
struct ms_diagnosis {
        /* "deadlock", "gil-holder-blocked", "gil-contention". */
        const char *kind;
        /* One sentence. */
        char *message;
        /* The threads it names. */
        pid_t *tids;
        size_t n_tids;
};

/* A frame of a suspended asyncio task's coroutine chain. */
struct ms_task_frame {
        char *function;
        /* 3.11+, else NULL. */
        char *qualname;
        char *file;
        int line; /* 0 when unknown */
};

/* One asyncio Task. Ids are the Task objects' addresses. */
struct ms_asyncio_task {
        uint64_t id;
        char *name;
        /* "pending", "done", "cancelled". */
        const char *state;
        /* The suspended frames of its coroutine chain, innermost first. */
        struct ms_task_frame *frames;
        size_t n_frames;
        /* Its coroutine is running now on the loop's thread. */
        bool running;
        /* What it awaits: "task", "future", "rust-future", "coroutine",
         * "other", or NULL (ready to run, running, unknown). */
        const char *awaiting_kind;
        /* The object awaited and its type ("module.Type"); the task
         * awaited directly (0 when none). */
        uint64_t awaiting_object;
        char *awaiting_type;
        uint64_t awaiting_task;
        /* For a rust-future: what is known of it ("pyo3-async-runtimes
         * future_into_py", "PyO3 async fn"), else NULL. */
        const char *rust_detail;
        /* Tasks it awaits through the awaited object (gather, TaskGroup,
         * shield children), and the tasks that await it. */
        uint64_t *children;
        size_t n_children;
        uint64_t *awaited_by;
        size_t n_awaited_by;
};

/* A thread of a Rust async runtime (tokio), found by its frames or name. */
struct ms_async_thread {
        pid_t tid;
        /* "tokio-worker", "tokio-blocking" (the blocking pool), "tokio". */
        const char *role;
        /* "running", "idle" (parked), "waiting-for-gil", "blocked". */
        const char *state;
};

/* One asyncio event loop and its tasks. */
struct ms_asyncio_loop {
        uint64_t address;
        /* The thread running it, 0 when none or unknown. */
        pid_t tid;
        int64_t interpreter_id;
        /* The task running now, 0 when none. */
        uint64_t running_task;
        /* Pending tasks are listed; finished ones counted. */
        struct ms_asyncio_task *tasks;
        size_t n_tasks;
        size_t n_done;
        size_t n_cancelled;
};

struct ms_report {
        enum ms_target_kind target_kind;
        /* Core file path (cores only). */
        char *core;
        /* The executable as resolved on this machine. */
        char *executable;
        pid_t pid;
        /* The fatal signal (cores) or 0, and the thread that received it. */
        int signo;
        pid_t crashed_tid;
        /* The crashing thread first, then the others in target order. */
        struct ms_thread_report *threads;
        size_t n_threads;
        /* The Python runtime found in the target, or NULL. */
        char *python_version; /* "3.11.7" */
        bool python_free_threaded;
        struct ms_interpreter_report *interpreters;
        size_t n_interpreters;
        /* The lifecycle phase of the runtime: "not initialized",
         * "initializing", "running", "finalizing", "finalized", "unknown";
         * NULL without Python. During finalization, the step ("atexit",
         * "gc", "module-teardown", ... NULL when unknown), whether it was
         * inferred rather than read from a frame, and the thread doing it. */
        const char *phase;
        const char *finalize_step;
        bool finalize_step_inferred;
        pid_t finalizing_tid;
        /* Which facts decided the phase. */
        char *phase_reason;
        /* A thread is in the C library's exit machinery (exit, _dl_fini). */
        pid_t exit_tid;
        struct ms_rust_module_report *rust_modules;
        size_t n_rust_modules;
        struct ms_diagnosis *diagnoses;
        size_t n_diagnoses;
        /* Everything that was missing or wrong but not fatal. */
        char **warnings;
        size_t n_warnings;
        /* For each warning, the sections it concerns: bit
         * (1u << MS_SECTION_...) for each. A missing file or a truncated
         * core concerns them all; a Rust reader's problem, the panic
         * section and the whole report. */
        unsigned *warning_sections;
        /* asyncio event loops with their tasks (none without tasks), and
         * how many tasks were left out by the bounds of the walk. */
        struct ms_asyncio_loop *asyncio_loops;
        size_t n_asyncio_loops;
        size_t asyncio_left_out;
        /* Threads of Rust async runtimes (tokio workers and blocking
         * threads), shown with the tasks they should complete. */
        struct ms_async_thread *async_threads;
        size_t n_async_threads;
        /* Where the Python runtime (_PyRuntime) was found: the module that
         * holds it, as the target names it (the executable of most python3
         * builds, libpython3.X.so for a program that embeds Python), and how
         * ("symbol", "section", "address", "scan"); NULL without Python. */
        char *python_runtime_module;
        const char *python_runtime_found_by;
};

#endif /* MIXSTACK_REPORT_MODEL_H */
