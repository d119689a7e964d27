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
 * Also read: each interpreter's GIL (holder and its tid), each thread's
 * pending and handled exceptions (exceptions.c), and the lifecycle flags.
 * Two questions need the native stacks too, which this reader does not
 * unwind; the report builder asks them once the stacks are classified:
 * ms_py_thread_gil_state() (is a thread waiting for the GIL?) and
 * ms_py_lifecycle_get() (which finalization step?).
 *
 * Not yet read: locals and arguments (the layout has the offsets:
 * if_localsplus, co_varnames, co_nlocalsplus), per-thread bytecode (3.14t
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
#include "report/model.h"
#include "target/target.h"

struct ms_unwinder;

/* Bounds on what is taken from a target. */
#define MS_PY_MAX_INTERPRETERS 1024
#define MS_PY_MAX_THREADS 65536
#define MS_PY_MAX_FRAMES 4096
#define MS_PY_MAX_STRING 1024
/* Exceptions: handled ones per thread (the exc_info stack), links of a
 * __cause__/__context__ chain, traceback entries per exception, bytes of a
 * message. */
#define MS_PY_MAX_HANDLED 64
#define MS_PY_MAX_EXC_CHAIN 8
#define MS_PY_MAX_TRACEBACK 256
#define MS_PY_MAX_MESSAGE 2048

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

/* An argument or local variable of a Python frame (ms_py_read_locals). */
struct ms_py_local {
        char *name;
        /* A short repr: None, bool, int, float, str, bytes, tuple, list
         * and dict shown, other objects as "<type object at 0x...>". */
        char *value;
        /* One of the positional parameters. */
        bool argument;
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
        /* On an entry frame: an address the interpreter keeps on the C
         * stack inside the native frame of the eval call that runs this
         * frame's group (3.12+ the entry/shim _PyInterpreterFrame that
         * _PyEval_EvalFrameDefault keeps as a local, 3.10-3.11 its
         * _PyCFrame), 0 when unknown (3.8-3.9). Merging places the group
         * on the native frame whose stack holds it, whatever its name. */
        uint64_t stack_anchor;
        /* The PyFrameObject (3.8-3.10) or _PyInterpreterFrame (3.11+). */
        uint64_t address;
        uint64_t code_address;
        /* Byte offset of the instruction in the bytecode, -1 unknown. */
        int64_t instruction_offset;
        /* Bound arguments and locals, in co_varnames order; filled only by
         * ms_py_read_locals(). */
        struct ms_py_local *locals;
        size_t n_locals;
        /* Its module's globals dict (f_globals) and the builtins dict it uses,
         * 0 when unknown; set by ms_py_read_namespaces(). */
        uint64_t globals;
        uint64_t builtins;
};

/* One entry of a traceback: a frame the exception passed through. */
struct ms_py_tb_frame {
        char *function;
        char *qualname; /* 3.11+, else NULL */
        char *file;
        int line; /* 0 when unknown */
};

/* How an exception of a chain relates to the one before it. */
enum ms_py_exc_link {
        MS_PY_EXC_LINK_NONE,    /* the first: the exception itself */
        MS_PY_EXC_LINK_CAUSE,   /* __cause__: "raise ... from" it */
        MS_PY_EXC_LINK_CONTEXT, /* __context__: raised while handling it */
};

/* One exception object (or, before 3.12, a pending exception that was
 * never normalised: a type and its constructor arguments). */
struct ms_py_exc {
        /* The instance; 0 for an un-normalised exception. */
        uint64_t address;
        uint64_t type_address;
        /* "module.QualName": "builtins.ValueError",
         * "pyo3_runtime.PanicException". NULL when unreadable. */
        char *type;
        /* What str(exc) gives, for args of str, int, float, bytes, None,
         * bool, tuples and lists of those; other objects as
         * "<type object at 0x...>". Cut at MS_PY_MAX_MESSAGE bytes. NULL
         * when unreadable. */
        char *message;
        bool message_truncated;
        /* False for a 3.8-3.11 pending exception still held as (type,
         * value): message then comes from the value as constructor args. */
        bool normalized;
        /* PyO3's pyo3_runtime.PanicException: a Rust panic turned into a
         * Python exception. */
        bool is_panic_exception;
        enum ms_py_exc_link link;
        /* Traceback, outermost first and the raise point last, as Python
         * prints it. */
        struct ms_py_tb_frame *traceback;
        size_t n_traceback;
        bool traceback_truncated;
        /* What could not be read, or NULL. */
        char *error;
};

/* An exception and its chain: items[0] is the exception, items[i + 1] the
 * __cause__ (or, when it has none and does not suppress it, the
 * __context__) of items[i], as far as Python would print them. n == 0:
 * no exception. */
struct ms_py_exc_chain {
        struct ms_py_exc *items;
        size_t n;
        /* The chain went on past MS_PY_MAX_EXC_CHAIN or looped. */
        bool truncated;
};

void ms_py_exc_chain_deinit(struct ms_py_exc_chain *chain);
/* Free a traceback entry's strings (a traceback's, or a suspended task's). */
void ms_py_tb_frame_deinit(struct ms_py_tb_frame *f);

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
        /* 3.15+ tstate->gil_requested (it waits for the GIL), -1 when the
         * version has none. */
        int gil_requested;
        /* The exception being raised or propagated (PyErr_Occurred()), and
         * the handled ones (sys.exc_info(); the exc_info stack, innermost
         * first: handled[0] is what sys.exc_info() returns). */
        struct ms_py_exc_chain pending;
        struct ms_py_exc_chain *handled;
        size_t n_handled;
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
        /* The GIL this interpreter uses (3.12+ ceval.gil, which may be the
         * main interpreter's; before, the runtime's), 0 when unknown. */
        uint64_t gil_address;
        /* locked and last_holder were read. */
        bool gil_known;
        bool gil_locked;
        /* The LAST holder: it holds the GIL only while gil_locked. */
        uint64_t gil_last_holder;
        uint64_t gil_switch_number;
        /* A free-threaded build running without a GIL (enabled == 0). */
        bool gil_disabled;
        /* The thread state holding the GIL now (locked and last_holder), 0
         * when nobody does; its kernel tid, 0 when unknown. */
        uint64_t gil_holder;
        pid_t gil_holder_tid;
        /* interp->finalizing, and (3.12+) interp->_finalizing, the tstate
         * finalizing it (0 none). */
        bool finalizing;
        uint64_t finalizing_tstate;
        /* The code objects of the Python functions registered with atexit
         * (interp->atexit, 3.10+), in registration order; atexit_known:
         * the callbacks were read (none registered gives n == 0). Callables
         * that are not Python functions are left out. */
        uint64_t *atexit_code;
        size_t n_atexit_code;
        bool atexit_known;
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
        /* Address of the _asyncio module's _Py_AsyncioModuleDebugOffsets
         * (section .AsyncioDebug, 3.14+), 0 when none was found. */
        uint64_t asyncio_debug;
        /* Lifecycle flags read from the runtime (-1 unknown):
         * runtime_initialized is _initialized (3.11+: the struct is set up),
         * initialized / core_initialized Py_Initialize's progress. */
        int runtime_initialized, initialized, core_initialized;
        /* _finalizing: the tstate running Py_FinalizeEx once it passed the
         * atexit callbacks (never cleared afterwards), 0 none; 3.12+
         * _finalizing_id, that thread's pthread id. */
        uint64_t finalizing_tstate;
        uint64_t finalizing_id;
        /* interpreters.head: 0 before the first interpreter exists and
         * after the last one is deleted. */
        uint64_t interpreters_head;
        /* 3.8-3.11 gilstate.tstate_current: the tstate attached right now
         * (NULL while the GIL changes hands), 0 when unknown. */
        uint64_t tstate_current;
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
                                     struct ms_py_runtime **ret, size_t *n_ret);

void ms_py_runtimes_destroy(struct ms_py_runtime *runtimes, size_t n);

/* Bounds on the locals read per frame and on the text of each value. */
#define MS_PY_MAX_LOCALS 64
#define MS_PY_MAX_LOCAL_REPR 120

/*
 * Read the bound arguments and locals of every frame of every thread of
 * rt (frame->locals). Unreadable values are shown as "<unreadable>"; only
 * running out of memory is an error.
 */
struct ms_error *ms_py_read_locals(struct ms_target *target,
                                   struct ms_py_runtime *rt);
void ms_py_locals_free(struct ms_py_frame *frame);

/* A dict of names (a module's globals, an interpreter's builtins): each
 * str key with the short repr of its value (argument is false). */
struct ms_py_namespace {
        uint64_t dict;
        struct ms_py_local *items;
        size_t n;
};

/* Set the globals (the frame's f_globals) and builtins of every
 * frame of rt's threads, and read each of those dicts once, appended to
 * *ns (n entries, capacity *capacity). Dicts that cannot be read are left
 * out. For py-print: a name looked up in locals, globals, builtins. */
struct ms_error *ms_py_read_namespaces(struct ms_target *target,
                                       struct ms_py_runtime *rt,
                                       struct ms_py_namespace **ns, size_t *n,
                                       size_t *capacity);
void ms_py_namespaces_free(struct ms_py_namespace *ns, size_t n);

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

/* ------------------------------------------------------------------------
 * Questions that need the native stacks (gil.c, lifecycle.c)
 *
 * Both take frames classified by the frame rules (struct ms_frame with
 * category set: "gil-acquire", "finalization", "gc", ...), innermost
 * first: a thread's native frames, or its merged frames (Python frames
 * are then used as hints too).
 * ------------------------------------------------------------------------ */

/* A thread's relation to the GIL of its interpreter. */
enum ms_py_gil_state {
        MS_PY_GIL_NONE,     /* no thread state: never attached to Python */
        MS_PY_GIL_HELD,     /* holds it */
        MS_PY_GIL_WAITING,  /* blocked taking it (or attaching, 3.13+) */
        MS_PY_GIL_RELEASED, /* has a thread state, does not hold it */
};

/* "none", "held", "waiting", "released". */
const char *ms_py_gil_state_name(enum ms_py_gil_state state);

/*
 * The GIL state of one OS thread. rt is the runtime thread belongs to
 * (may be NULL with thread NULL: an OS thread no runtime knows); thread is
 * its Python thread state, or NULL when it has none (a thread blocked in
 * PyGILState_Ensure/Python::attach may still be WAITING). frames are its
 * classified frames. Held comes from memory (locked GIL whose last holder
 * is this thread state, or the per-thread flag); waiting from the stack:
 * the innermost frame that is neither a libc wait, CPython-internal nor
 * unknown native code is in the gil-acquire category (take_gil, including
 * clones such as take_gil.lto_priv.0, PyEval_RestoreThread,
 * _PyThreadState_Attach, PyGILState_Ensure, PyO3's attach), or 3.15's
 * gil_requested. *wait_frame (may be NULL) is set to the index of that
 * gil-acquire frame, or SIZE_MAX.
 */
enum ms_py_gil_state ms_py_thread_gil_state(const struct ms_py_runtime *rt,
                                            const struct ms_py_thread *thread,
                                            const struct ms_frame *frames,
                                            size_t n_frames,
                                            size_t *wait_frame);

/*
 * Whether an OS thread asleep in the futex system call on address futex
 * (its first argument) waits for a GIL of rt: taking the GIL sleeps on the
 * GIL's condition variable (or contends for its mutex), so the address
 * lies inside the cond or mutex of the GIL struct (layout gil_cond,
 * gil_mutex; switch_cond, where a thread dropping it waits, does not
 * count). thread (may be NULL) narrows it to its interpreter's GIL. Found
 * from memory and registers alone: stripped interpreters have no take_gil
 * symbol to recognise the wait by.
 */
bool ms_py_gil_futex_wait(const struct ms_py_runtime *rt,
                          const struct ms_py_thread *thread, uint64_t futex);

enum ms_py_phase {
        MS_PY_PHASE_UNKNOWN,
        MS_PY_PHASE_NOT_INITIALIZED,
        MS_PY_PHASE_INITIALIZING,
        MS_PY_PHASE_RUNNING,
        MS_PY_PHASE_FINALIZING,
        MS_PY_PHASE_FINALIZED,
};

/* Where finalization is, from the finalizing thread's stack. */
enum ms_py_finalize_step {
        MS_PY_STEP_NONE, /* not finalizing, or no frame tells */
        MS_PY_STEP_WAITING_FOR_THREADS,
        MS_PY_STEP_ATEXIT,
        MS_PY_STEP_GC,
        MS_PY_STEP_MODULE_TEARDOWN,
        MS_PY_STEP_INTERPRETER_CLEAR,
        MS_PY_STEP_RUNTIME_CLEAR,
        MS_PY_STEP_PROCESS_EXIT,
};

/* "not initialized", "initializing", "running", "finalizing",
 * "finalized", "unknown". */
const char *ms_py_phase_name(enum ms_py_phase phase);
/* Stable ids for JSON: "waiting-for-threads", "atexit", "gc",
 * "module-teardown", "interpreter-clear", "runtime-clear",
 * "process-exit"; NULL for MS_PY_STEP_NONE. */
const char *ms_py_finalize_step_id(enum ms_py_finalize_step step);
/* For people: "waiting for threads", "atexit callbacks", ... */
const char *ms_py_finalize_step_text(enum ms_py_finalize_step step);

/* The classified frames of one OS thread, innermost first. */
struct ms_py_stack_ref {
        pid_t tid;
        const struct ms_frame *frames;
        size_t n_frames;
};

struct ms_py_lifecycle {
        enum ms_py_phase phase;
        enum ms_py_finalize_step step;
        /* The thread running finalization, 0 when not finalizing or
         * unknown. */
        pid_t finalizing_tid;
        /* The function that named the step (a static string), or NULL. */
        const char *step_function;
        /* The step was inferred without a frame naming it (stripped
         * binaries): Python code running under Py_FinalizeEx before the
         * runtime's finalizing flag is set is an atexit callback. */
        bool step_inferred;
        /* Some thread is in the C library's exit machinery (exit,
         * __run_exit_handlers, _dl_fini, __cxa_finalize, ...). */
        bool process_exiting;
        pid_t exit_tid;
        /* One phrase saying which facts decided the phase. */
        char reason[160];
};

/*
 * The lifecycle phase of rt from its flags (runtime initialized /
 * core_initialized / _finalizing / _finalizing_id, the main interpreter's
 * finalizing, interpreters.head), refined by every thread's stack: a
 * Py_FinalizeEx/_Py_Finalize frame means finalizing even before the
 * runtime says so (3.8-3.13 set _finalizing only after the atexit
 * callbacks), and the finalizing thread's innermost step frame names the
 * step. stacks may be NULL (n_stacks 0): flags only.
 */
void ms_py_lifecycle_get(const struct ms_py_runtime *rt,
                         const struct ms_py_stack_ref *stacks, size_t n_stacks,
                         struct ms_py_lifecycle *ret);

#endif /* MIXSTACK_CPYTHON_CPYTHON_H */
