/*
 * mixstack: mixed CPython / Rust / C stacks of core dumps and live processes.
 *
 * This is the whole public interface of libmixstack. Every frontend (the
 * mixstack CLI, the gdb plugin, the lldb plugin) is a target plus a printer
 * call:
 *
 *     struct ms_target *target;
 *     struct ms_report *report;
 *     struct ms_error *err = ms_target_open_core("core", NULL, &target);
 *     if (!err)
 *             err = ms_report_create(target, NULL, &report);
 *     if (!err)
 *             err = ms_report_print(report, MS_FORMAT_TEXT, stdout);
 *
 * Conventions (after libdrgn):
 * - every fallible function returns a struct ms_error * which is NULL on
 *   success; results come back through out-parameters;
 * - an error is owned by the caller and released with ms_error_destroy();
 * - objects come in _create/_destroy pairs; _destroy accepts NULL;
 * - objects are opaque handles read through accessors, and options are set
 *   by name (ms_options_set()), so the library grows without callers
 *   knowing its layouts; only ms_error and ms_download are structures
 *   (filled by the library, read by the caller: they may grow at their
 *   end). MS_ABI_VERSION / ms_abi_version() tell a
 *   frontend whether the library loaded is the one it was built for.
 *
 * A target is untrusted input: every read is checked, every list is bounded.
 * Problems that leave a useful answer are warnings in the report; problems
 * that leave nothing to show are errors.
 */
#ifndef MIXSTACK_MIXSTACK_H
#define MIXSTACK_MIXSTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXSTACK_VERSION "0.1.0"

/* Marks the library's interface: libmixstack is built with hidden
 * visibility, and exports only what is declared with MS_PUBLIC here (it is
 * loaded into debuggers, whose own symbols it must not shadow). */
#if defined(__GNUC__)
#define MS_PUBLIC __attribute__((visibility("default")))
#else
#define MS_PUBLIC
#endif

/* The version of the library loaded (MIXSTACK_VERSION when it was built):
 * for frontends that load it at run time and cannot see the header. */
MS_PUBLIC const char *ms_version(void);

/*
 * The version of the library's binary interface: MS_ABI_VERSION as the
 * loaded library was built. It changes whenever a function of this header
 * changes its signature or meaning (new functions leave it alone: the
 * report model and the options are opaque, so they grow without it).
 * Frontends that load the library at run time check it before the first
 * other call:
 *
 *     if (ms_abi_version() != MS_ABI_VERSION)
 *             refuse to run: the library is not the one built against
 */
#define MS_ABI_VERSION 1
MS_PUBLIC unsigned ms_abi_version(void);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

enum ms_error_code {
        /* Out of memory. */
        MS_ERROR_NO_MEMORY = 1,
        /* A caller passed something meaningless (NULL path, bad option). */
        MS_ERROR_INVALID_ARGUMENT,
        /* A system call failed; ms_error::errnum holds errno. */
        MS_ERROR_OS,
        /* Target memory at an address could not be read. */
        MS_ERROR_FAULT,
        /* The input is not what it should be: not an ELF file, not a core,
         * truncated, inconsistent. */
        MS_ERROR_BAD_INPUT,
        /* Something looked for does not exist (a pid, a file, a symbol). */
        MS_ERROR_NOT_FOUND,
        /* The target uses something mixstack does not understand. */
        MS_ERROR_UNSUPPORTED,
        /* A library mixstack relies on (libdw, libelf, pcre2) failed. */
        MS_ERROR_LIBRARY,
        /* The operation was interrupted (SIGINT, SIGTERM). */
        MS_ERROR_INTERRUPTED,
        /* Permission denied (ptrace, reading a file). */
        MS_ERROR_PERMISSION,
};

/* An error: a code and a one-line message meant for the user. Public (as
 * libdrgn's): the library allocates it and callers only read it, so it may
 * grow at its end; the accessors below serve callers without the header. */
struct ms_error {
        enum ms_error_code code;
        /* errno for MS_ERROR_OS and MS_ERROR_PERMISSION, else 0. */
        int errnum;
        /* One line, no trailing newline, never NULL. */
        char *message;
        /* Set for the statically allocated errors, which must not be freed. */
        bool is_static;
};

/* The error returned when memory runs out; never freed. */
MS_PUBLIC extern struct ms_error ms_error_no_memory;

/* Create an error with a printf-style message. Never returns NULL: if the
 * message cannot be allocated, &ms_error_no_memory is returned. */
MS_PUBLIC struct ms_error *ms_error_create(enum ms_error_code code,
                                           const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Create an MS_ERROR_OS (or MS_ERROR_PERMISSION for EPERM/EACCES) error
 * from errno value errnum: "<what>: <strerror(errnum)>". */
MS_PUBLIC struct ms_error *ms_error_from_errno(int errnum, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Prefix an error's message with "<prefix>: ", taking ownership of err and
 * returning the (possibly new) error. */
MS_PUBLIC struct ms_error *ms_error_wrap(struct ms_error *err, const char *fmt,
                                         ...)
        __attribute__((format(printf, 2, 3)));

/* Free an error. Accepts NULL and static errors. */
MS_PUBLIC void ms_error_destroy(struct ms_error *err);

/* An error's code, errno (0 when none) and message, for frontends that
 * cannot see the structure (ctypes); C callers may read its members. */
MS_PUBLIC enum ms_error_code ms_error_code(const struct ms_error *err);
MS_PUBLIC int ms_error_errnum(const struct ms_error *err);
MS_PUBLIC const char *ms_error_message(const struct ms_error *err);

/* ------------------------------------------------------------------------
 * Targets
 * ------------------------------------------------------------------------ */

/* What a target is. */
enum ms_target_kind {
        MS_TARGET_CORE,
        MS_TARGET_PID,
        MS_TARGET_DEBUGGER,
};

/* A process image: a core file, a stopped live process, or a view handed
 * over by a debugger. */
struct ms_target;

/* A download of debug info from a debuginfod server, as reported while it
 * runs: module is the file the debug info is for, url the file fetched
 * (NULL until the server is chosen), bytes so far and total (0 when not
 * known yet). finished is set in the last report of a download (ok: a file
 * was obtained). A public structure, unlike the others of this header: the
 * library fills it and the caller only reads it during the call, so it
 * may grow at its end without breaking callers. */
struct ms_download {
        const char *module;
        const char *url;
        int64_t bytes, total;
        bool finished, ok;
};

/* Called during a download (ms_options_set_download()) with its arg. Must
 * not call back into the library. */
typedef void ms_download_fn(void *arg, const struct ms_download *download);

/* Options for opening targets (opaque): made and set with ms_options_*
 * (see "Options" below); NULL gives the defaults. */
struct ms_target_options;

/*
 * Open an ELF core file. The core is mapped, not read. Mapped files are
 * located from NT_FILE; files that cannot be found, or whose build-id does
 * not match the core, become warnings, and analysis goes on without them.
 */
MS_PUBLIC struct ms_error *ms_target_open_core(
        const char *path, const struct ms_target_options *options,
        struct ms_target **ret);

/*
 * Open a live process without stopping it: its mappings and files are read
 * now. ms_report_create() stops every thread with ptrace only while it
 * reads registers and memory (unwinding, naming frames from symbol tables,
 * Python and Rust state): symbol tables are loaded before, and source
 * positions, inlined frames, merging and diagnoses come after the process
 * has been resumed. A target is stopped at most once:
 * reports made later from it show that same moment. The library installs
 * no signal handler: a frontend that may be killed while the process is
 * stopped detaches it from its own handler with ms_target_detach_now().
 */
MS_PUBLIC struct ms_error *ms_target_open_pid(
        pid_t pid, const struct ms_target_options *options,
        struct ms_target **ret);

/*
 * Attach to a live process: every thread is stopped with ptrace at once and
 * stays stopped until ms_target_destroy(), which detaches and resumes them
 * (for callers that read the process between reports). See
 * ms_target_detach_now() for signals.
 */
MS_PUBLIC struct ms_error *ms_target_attach_pid(
        pid_t pid, const struct ms_target_options *options,
        struct ms_target **ret);

/*
 * Whether signal signo is a crash: one whose default action dumps core.
 * SIGTRAP counts only for a core written by the kernel (in_core); a
 * debugger stops a live process on it for breakpoints and steps. For
 * frontends that decide which thread of a debugger target crashed.
 */
MS_PUBLIC bool ms_signal_is_crash(int signo, bool in_core);

/*
 * Memory reader of a debugger-fed target: copy size bytes at address into
 * buf. Return 0 on success, nonzero when any byte cannot be read.
 */
typedef int ms_read_memory_fn(void *arg, uint64_t address, void *buf,
                              size_t size);

/* Number of registers a debugger hands over per thread: the x86-64 DWARF
 * registers 0-16 (rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8-r15, rip). */
#define MS_NUM_REGS 17

/*
 * Create a target whose memory is read through read_memory(arg, ...), with
 * threads and modules added by the functions below. This is the target of
 * the gdb and lldb plugins. Memory is read a page at a time and kept: the
 * process must not run while the target lives.
 */
MS_PUBLIC struct ms_error *ms_target_create_debugger(
        ms_read_memory_fn *read_memory, void *arg,
        const struct ms_target_options *options, struct ms_target **ret);

/* Add a thread with its registers (MS_NUM_REGS values in DWARF order) and
 * its fs_base (0 if unknown). name may be NULL. */
MS_PUBLIC struct ms_error *ms_target_add_thread(
        struct ms_target *target, pid_t tid, const char *name,
        const uint64_t regs[MS_NUM_REGS], uint64_t fs_base);

/* Add a file mapping [start, end) of path at file_offset. A module whose
 * only known extent is its load address may be added with end == start and
 * file_offset 0. Mappings may come in any order (in address order is
 * cheapest); each call leaves the target usable: kept sorted, the file
 * located on this machine and its build-id checked, so no "finish" call is
 * needed. */
MS_PUBLIC struct ms_error *ms_target_add_mapping(struct ms_target *target,
                                                 const char *path,
                                                 uint64_t start, uint64_t end,
                                                 uint64_t file_offset);

/*
 * Add a module (executable or shared library) by where it is loaded: its
 * section named section (".text", ".dynamic", ...) is at address, or, with
 * section NULL, its ELF header is. The library reads the file on this
 * machine and adds the mappings of its PT_LOAD segments (for debuggers
 * that know the modules loaded but not the process's mappings).
 */
MS_PUBLIC struct ms_error *ms_target_add_module(struct ms_target *target,
                                                const char *path,
                                                const char *section,
                                                uint64_t address);

/* Add a region of the address space with its permission: the writable
 * ones are searched for live Rust panic exception objects (their message
 * survives an abort). Read-only regions may be added and are ignored. */
MS_PUBLIC struct ms_error *ms_target_add_region(struct ms_target *target,
                                                uint64_t start, uint64_t end,
                                                bool writable);

/* Set the process id, the executable path, and the signal that stopped
 * the process with the thread it hit (0 when none). */
MS_PUBLIC struct ms_error *ms_target_set_process(struct ms_target *target,
                                                 pid_t pid,
                                                 const char *executable,
                                                 int signo, pid_t signal_tid);

/*
 * Detach every thread of a live target now, for a frontend's signal handler
 * (SIGINT, SIGTERM, or its own crash) while a report is made: the process
 * runs on whatever happens to the frontend next. Async-signal-safe; does
 * nothing for other targets. Reads fail afterwards (MS_ERROR_INTERRUPTED);
 * the target must still be destroyed.
 */
MS_PUBLIC void ms_target_detach_now(struct ms_target *target);

/* Release a target; a live process is detached and resumed. Accepts NULL. */
MS_PUBLIC void ms_target_destroy(struct ms_target *target);

/* ------------------------------------------------------------------------
 * Reports
 * ------------------------------------------------------------------------ */

/* What the library found in a target: its threads with their mixed stacks
 * and the boundary state. A report, its threads and their frames are
 * opaque: read them with the accessors ("Reading a report" below), print
 * them, or parse the JSON document, which holds all of it. */
struct ms_report;
/* One thread of a report. */
struct ms_thread_report;
/* One frame of a thread's stack. */
struct ms_frame;

/* The language a frame's code was written in. */
enum ms_language {
        MS_LANGUAGE_UNKNOWN,
        MS_LANGUAGE_C,
        MS_LANGUAGE_CXX,
        MS_LANGUAGE_RUST,
        MS_LANGUAGE_PYTHON,
};

/* "c", "c++", "rust", "python", "unknown". */
MS_PUBLIC const char *ms_language_name(enum ms_language language);

enum ms_frame_kind {
        MS_FRAME_NATIVE,
        MS_FRAME_PYTHON,
};

/* A thread's relation to the GIL of its interpreter. */
enum ms_gil_state {
        /* No Python thread state and not trying to get one. */
        MS_GIL_NONE,
        /* Holds the GIL. */
        MS_GIL_HELD,
        /* Blocked taking the GIL (or attaching to the interpreter). */
        MS_GIL_WAITING,
        /* Has a thread state but does not hold the GIL. */
        MS_GIL_RELEASED,
};

/* "none", "held", "waiting", "released". */
MS_PUBLIC const char *ms_gil_state_name(enum ms_gil_state state);

/* Which frames a thread's stack shows. */
enum ms_stack_mode {
        /* Python frames in place of the eval-loop frames that run them. */
        MS_STACK_MIXED,
        /* Python frames only. */
        MS_STACK_PYTHON_ONLY,
        /* Native frames only, as the unwinder found them. */
        MS_STACK_NATIVE_ONLY,
};

/* What a report should hold (opaque): made and set with ms_options_*
 * (see "Options" below); NULL gives the defaults. */
struct ms_report_options;

/* Analyse a target. The target must outlive nothing: the report copies
 * what it needs. */
MS_PUBLIC struct ms_error *ms_report_create(
        struct ms_target *target, const struct ms_report_options *options,
        struct ms_report **ret);

MS_PUBLIC void ms_report_destroy(struct ms_report *report);

/* Printer formats. */
enum ms_format {
        MS_FORMAT_TEXT,
        MS_FORMAT_JSON,
};

/* Parts of a report a frontend may print on their own. */
enum ms_section {
        /* Everything: header, summary, every thread's stack, warnings. */
        MS_SECTION_REPORT,
        /* Every selected thread's stack (gdb/lldb "mixstack bt"). */
        MS_SECTION_STACKS,
        /* One line per thread: tid, name, Python or not, state. */
        MS_SECTION_THREADS,
        /* Who holds the GIL, who waits for it, diagnoses. */
        MS_SECTION_GIL,
        /* Pending and handled Python exceptions per thread. */
        MS_SECTION_ERRORS,
        /* Rust panic state. */
        MS_SECTION_PANIC,
        /* The interpreter's lifecycle phase. */
        MS_SECTION_PHASE,
        /* asyncio event loops, their tasks and await graph. */
        MS_SECTION_TASKS,
};

/* What to print (opaque): made and set with ms_options_* (see "Options"
 * below). */
struct ms_print_options;

/* Print a section of a report. In JSON, MS_SECTION_REPORT and
 * MS_SECTION_STACKS print the whole document (with the selected threads);
 * the other sections a document of that section alone (schema mixstack/1
 * with a "section" member), with the warnings that concern it. */
MS_PUBLIC struct ms_error *ms_report_print_section(
        const struct ms_report *report, const struct ms_print_options *options,
        FILE *out);

/* The same into a newly allocated string; free it with free(). */
MS_PUBLIC struct ms_error *ms_report_format_section(
        const struct ms_report *report, const struct ms_print_options *options,
        char **ret);

/* Print a report. Text and JSON are produced by the same code for every
 * frontend. */
MS_PUBLIC struct ms_error *ms_report_print(const struct ms_report *report,
                                           enum ms_format format, FILE *out);

/* Print a report into a newly allocated NUL-terminated string (for
 * frontends that cannot hand over a FILE *); free it with free(). */
MS_PUBLIC struct ms_error *ms_report_format(const struct ms_report *report,
                                            enum ms_format format, char **ret);

/* The name of a signal ("SIGSEGV"), or NULL when unknown. */
MS_PUBLIC const char *ms_signal_name(int signo);

/* ------------------------------------------------------------------------
 * Reading a report
 *
 * A report, its threads and their frames are read through the functions
 * below, so the report model can grow without breaking callers. They cover
 * what a frontend needs to drive the rest of the API (which threads there
 * are, where each stands, what went wrong); the whole model, with the
 * boundary state (exceptions, panics, GIL, lifecycle phase, asyncio
 * tasks, diagnoses), is the JSON document of ms_report_format() (schema
 * mixstack/1, docs/).
 *
 *     for (size_t i = 0; i < ms_report_thread_count(report); i++) {
 *             const struct ms_thread_report *t = ms_report_thread(report, i);
 *             for (size_t j = 0; j < ms_thread_frame_count(t); j++)
 *                     puts(ms_frame_function(ms_thread_frame(t, j)));
 *     }
 *
 * Pointers and strings returned live as long as the report. Strings are
 * NULL when unknown; an index out of range gives NULL.
 * ------------------------------------------------------------------------ */

/* The process id (0 when unknown), the fatal signal (0 when none; cores)
 * and the thread that received it (0 when none). */
MS_PUBLIC pid_t ms_report_pid(const struct ms_report *report);
MS_PUBLIC int ms_report_signal(const struct ms_report *report);
MS_PUBLIC pid_t ms_report_crashed_tid(const struct ms_report *report);

/* The executable as resolved on this machine. */
MS_PUBLIC const char *ms_report_executable(const struct ms_report *report);

/* The version of the Python runtime found in the target ("3.11.7"), or
 * NULL when the target runs no Python. */
MS_PUBLIC const char *ms_report_python_version(const struct ms_report *report);

/* The threads: the crashing thread first, then the others in target
 * order. */
MS_PUBLIC size_t ms_report_thread_count(const struct ms_report *report);
MS_PUBLIC const struct ms_thread_report *ms_report_thread(
        const struct ms_report *report, size_t i);

/* The thread tid, or NULL (also for tid 0). */
MS_PUBLIC const struct ms_thread_report *ms_report_find_thread(
        const struct ms_report *report, pid_t tid);

/* What was missing or wrong but not fatal, one line each, and whether
 * warning i concerns a section (a missing file or a truncated core
 * concerns them all). */
MS_PUBLIC size_t ms_report_warning_count(const struct ms_report *report);
MS_PUBLIC const char *ms_report_warning(const struct ms_report *report,
                                        size_t i);
MS_PUBLIC bool ms_report_warning_concerns(const struct ms_report *report,
                                          size_t i, enum ms_section section);

/* A thread's id and name (comm; NULL when the target does not have it). */
MS_PUBLIC pid_t ms_thread_tid(const struct ms_thread_report *thread);
MS_PUBLIC const char *ms_thread_name(const struct ms_thread_report *thread);

/* Whether the thread received the fatal signal; whether it has a Python
 * thread state; its relation to its interpreter's GIL. */
MS_PUBLIC bool ms_thread_crashed(const struct ms_thread_report *thread);
MS_PUBLIC bool ms_thread_python(const struct ms_thread_report *thread);
MS_PUBLIC enum ms_gil_state ms_thread_gil(
        const struct ms_thread_report *thread);

/* The thread's frames as the report's stack mode shows them, innermost
 * first. */
MS_PUBLIC size_t ms_thread_frame_count(const struct ms_thread_report *thread);
MS_PUBLIC const struct ms_frame *ms_thread_frame(
        const struct ms_thread_report *thread, size_t i);

/* A Python frame (in place of the eval-loop frame running it) or a native
 * one, and the language of its code. */
MS_PUBLIC enum ms_frame_kind ms_frame_kind(const struct ms_frame *frame);
MS_PUBLIC enum ms_language ms_frame_language(const struct ms_frame *frame);

/* The program counter; for caller frames, the return address. A Python
 * frame has the pc of the eval-loop frame running it (0 when none was
 * found). An inlined frame (a function inlined into the next frame out)
 * shares that frame's pc. */
MS_PUBLIC uint64_t ms_frame_pc(const struct ms_frame *frame);
MS_PUBLIC bool ms_frame_inlined(const struct ms_frame *frame);

/* The demangled function (Rust hashes removed; a Python frame's function
 * name), the module (executable or shared library) holding the pc, and
 * the source position (line 0 when unknown). */
MS_PUBLIC const char *ms_frame_function(const struct ms_frame *frame);
MS_PUBLIC const char *ms_frame_module(const struct ms_frame *frame);
MS_PUBLIC const char *ms_frame_file(const struct ms_frame *frame);
MS_PUBLIC int ms_frame_line(const struct ms_frame *frame);

/* What the frame is, from the classification rules
 * (data/frame-rules.conf): "python", "eval-loop", "cpython-internal",
 * "pyo3-trampoline", "rust-panic", "gil-acquire", ... Lives as long as the
 * library. */
MS_PUBLIC const char *ms_frame_category(const struct ms_frame *frame);

/* ------------------------------------------------------------------------
 * Options
 *
 * The options of targets, reports, printers and triages are the library's
 * own structures, set by name, so they grow without callers knowing their
 * layout (and frontends that load the library at run time, like ctypes in
 * gdb, need no header at all):
 *
 *     struct ms_options *o;
 *     err = ms_options_create(&o);
 *     err = ms_options_set(o, "locals", "1");
 *     err = ms_report_create(target, ms_options_report(o), &report);
 *     ms_options_destroy(o);    (once nothing uses them any more)
 * ------------------------------------------------------------------------ */

struct ms_options;

MS_PUBLIC struct ms_error *ms_options_create(struct ms_options **ret);
MS_PUBLIC void ms_options_destroy(struct ms_options *options);

/*
 * Set an option (value is copied). Target options: "executable", "sysroot"
 * (paths: the executable is found from the core when not set; sysroot is
 * prepended to every file name found in the target, for cores from another
 * machine or a container), "library-path" (a directory searched by file
 * name for files not found at their recorded path nor under sysroot; each
 * call adds one), "no-debuginfod" (bool: debug info missing from this
 * machine is otherwise fetched by build-id from the servers of
 * $DEBUGINFOD_URLS). Report options: "max-frames" (native frames unwound
 * per thread, 1024 when not set), "mode" ("mixed", "python-only",
 * "native-only"), "all-frames" (keep the CPython internals between Python
 * frames), "locals" (read the arguments and locals of Python frames),
 * "exhaustive" (scan writable memory for a runtime found no other way),
 * "no-debug-files" (read no DWARF from separate debug files; their symbol
 * tables are still used) (bools). Print options: "format" ("text",
 * "json"), "section" ("report", "stacks", "threads", "gil", "errors",
 * "panic", "phase", "tasks"), "thread" (a tid shown by the "stacks"
 * section; each call adds one; every thread when none). Triage options:
 * "signature-frames" (frames in a signature, prefix frames not counted;
 * 5), "stack-frames" (frames of the stack shown; 16), "hang" (bool: the
 * target is a live process that did not finish in time). Bools are
 * "1"/"0", "true"/"false", "on"/"off"; NULL is true.
 * MS_ERROR_INVALID_ARGUMENT for an unknown name or a bad value.
 */
MS_PUBLIC struct ms_error *ms_options_set(struct ms_options *options,
                                          const char *name, const char *value);

/* The names ms_options_set() takes for a stack mode ("mixed",
 * "python-only", "native-only") and a section ("report", "stacks",
 * "threads", "gil", "errors", "panic", "phase", "tasks"); NULL for a value
 * out of range. */
MS_PUBLIC const char *ms_stack_mode_name(enum ms_stack_mode mode);
MS_PUBLIC const char *ms_section_name(enum ms_section section);

/* Hear of each debuginfod download while targets opened with these
 * options read debug info: fn(arg, download) (see ms_download_fn). */
MS_PUBLIC void ms_options_set_download(struct ms_options *options,
                                       ms_download_fn *fn, void *arg);

struct ms_target_options;
struct ms_report_options;
struct ms_print_options;
struct ms_triage_options;

/* The options to pass to the functions taking them; they live as long as
 * options. */
MS_PUBLIC const struct ms_target_options *ms_options_target(
        const struct ms_options *options);
MS_PUBLIC const struct ms_report_options *ms_options_report(
        const struct ms_options *options);
MS_PUBLIC const struct ms_print_options *ms_options_print(
        const struct ms_options *options);
MS_PUBLIC const struct ms_triage_options *ms_options_triage(
        const struct ms_options *options);

/* ------------------------------------------------------------------------
 * Debugger frontends: a thread's frames against the debugger's, and Python
 * frame navigation
 *
 *     struct ms_frame_map *map;
 *     err = ms_frame_map_create(report, tid, &map);
 *     for each frame the debugger lists for tid, innermost first:
 *             err = ms_frame_map_add_debugger_frame(map, pc, flags, name);
 *     ms_frame_map_sync(map, selected);   (the debugger's selected frame)
 *     err = ms_frame_map_format_stack(map, 0, &text);
 *
 * The report must come from ms_report_create() (a frame map uses what it
 * keeps of the native stacks) and outlive the map. Frames are matched
 * physical frame by physical frame on their pcs (the longest common
 * subsequence of the two stacks, so frames one side lacks do not shift
 * the others), inlined frames by name within their physical frame. Every
 * frame of the report then has the debugger's number, which the printers
 * use: `frame N` in the debugger selects what mixstack listed as #N (a
 * Python frame's number is that of the eval-loop frame running it).
 * ------------------------------------------------------------------------ */

/* Flags of a debugger frame. */
/* A function inlined into the next frame out (no stack frame of its own). */
#define MS_DEBUGGER_FRAME_INLINED 1u
/* A frame the debugger inferred (a tail call): no stack frame either. */
#define MS_DEBUGGER_FRAME_ARTIFICIAL 2u

struct ms_frame_map;

MS_PUBLIC struct ms_error *ms_frame_map_create(const struct ms_report *report,
                                               pid_t tid,
                                               struct ms_frame_map **ret);

/* Add the debugger's next frame (outwards); function may be NULL. */
MS_PUBLIC struct ms_error *ms_frame_map_add_debugger_frame(
        struct ms_frame_map *map, uint64_t pc, unsigned flags,
        const char *function);

MS_PUBLIC void ms_frame_map_destroy(struct ms_frame_map *map);

/* The report's thread the map is about. */
MS_PUBLIC const struct ms_thread_report *ms_frame_map_thread(
        const struct ms_frame_map *map);

/* The debugger frame of frame i of that thread (for a Python frame, the
 * eval-loop frame running it); -1 when the debugger has none. */
MS_PUBLIC long ms_frame_map_debugger_frame(struct ms_frame_map *map, size_t i);

/*
 * What debugger frame n shows in place of itself: the report's frames
 * [*first, *first + *count), i.e. a native frame, or the Python frames an
 * eval-loop frame runs (innermost first), possibly followed by Python frames
 * the library could not place. *count is 0 for a frame the library hides
 * (CPython internals between Python frames). Returns false, with *count 0,
 * for a frame the library does not know (show the debugger's own).
 */
MS_PUBLIC bool ms_frame_map_shows(struct ms_frame_map *map, size_t n,
                                  size_t *first, size_t *count);

/* The number of Python frames of the thread, and the index in the
 * thread's frames of Python frame k (0 is the innermost); -1 when k is out
 * of range. */
MS_PUBLIC size_t ms_frame_map_n_python(const struct ms_frame_map *map);
MS_PUBLIC long ms_frame_map_python_frame(const struct ms_frame_map *map,
                                         size_t k);

/* Tell the map which debugger frame is selected. A Python frame chosen
 * with ms_frame_map_move() or _select_python() stays the current one while
 * that frame stays selected; otherwise the current Python frame is the
 * innermost one at or above the selected frame. */
MS_PUBLIC void ms_frame_map_sync(struct ms_frame_map *map, size_t n);

/* The current Python frame (k), -1 when there is none. */
MS_PUBLIC long ms_frame_map_current_python(struct ms_frame_map *map);

/* Make Python frame k the current one. Its debugger frame
 * (ms_frame_map_debugger_frame()) is the one to select. */
MS_PUBLIC struct ms_error *ms_frame_map_select_python(struct ms_frame_map *map,
                                                      size_t k);

/* The debugger frame running the current Python frame (its eval loop):
 * the one to select after ms_frame_map_move() or _select_python(); -1
 * when there is no current Python frame or the debugger has no frame for
 * it (its unwinder stopped earlier). */
MS_PUBLIC long ms_frame_map_current_debugger_frame(struct ms_frame_map *map);

/* Make leader's current Python frame map's current one: maps of one thread
 * from reports made with other options (with locals, every frame) follow
 * the navigation done on the plain map. Nothing changes when leader has
 * no current Python frame or map has no such frame. */
MS_PUBLIC void ms_frame_map_follow(struct ms_frame_map *map,
                                   struct ms_frame_map *leader);

/* Move count Python frames older (count > 0) or newer (count < 0), as
 * far as there are; an error when there is none that way. *ret: the new
 * current Python frame. */
MS_PUBLIC struct ms_error *ms_frame_map_move(struct ms_frame_map *map,
                                             long count, size_t *ret);

/* What the frame printers show. */
/* Python frames only (py-bt). */
#define MS_FRAME_MAP_PYTHON_ONLY 1u
/* The source line of each Python frame under it (py-bt). */
#define MS_FRAME_MAP_SOURCE 2u

/* The thread's stack as `mixstack bt` prints it, numbered as the debugger
 * numbers its frames, the current Python frame marked with '*'. Locals are
 * shown when the report was made with them. Free *ret with free(). */
MS_PUBLIC struct ms_error *ms_frame_map_format_stack(struct ms_frame_map *map,
                                                     unsigned flags,
                                                     char **ret);

/* The current Python frame: its line of the stack and its source line. */
MS_PUBLIC struct ms_error *ms_frame_map_format_current(struct ms_frame_map *map,
                                                       char **ret);

/*
 * Source of the current Python frame, its line marked with '>': lines
 * first..last; first 0 lists around the line, or, when the last list was
 * of this same frame, the 10 lines after it (a repeated `list`); last 0
 * lists 10 lines from first.
 */
MS_PUBLIC struct ms_error *ms_frame_map_format_list(struct ms_frame_map *map,
                                                    long first, long last,
                                                    char **ret);

/* The arguments and locals of the current Python frame (the report must
 * have been made with locals). */
MS_PUBLIC struct ms_error *ms_frame_map_format_locals(struct ms_frame_map *map,
                                                      char **ret);

/* NAME in the current Python frame: "local NAME = value" from its locals,
 * else from its module's globals, else from the builtins (as
 * libpython.py's py-print); MS_ERROR_NOT_FOUND when it is in none. */
MS_PUBLIC struct ms_error *ms_frame_map_lookup(struct ms_frame_map *map,
                                               const char *name, char **ret);

/* ------------------------------------------------------------------------
 * Triage: why a process died or hung, in a few lines, with a signature
 *
 *     struct ms_triage *triage;
 *     struct ms_triage_printer *printer;
 *     err = ms_triage_create(report, NULL, &triage);
 *     if (!err)
 *             err = ms_triage_printer_create(MS_TRIAGE_MARKDOWN, stdout,
 *                                            &printer);
 *     if (!err)
 *             err = ms_triage_printer_add(printer, triage);
 *     if (!err)
 *             err = ms_triage_printer_finish(printer, NULL);
 *
 * The signature is a short text that is the same for every occurrence of
 * one bug (across runs, machines, interpreter versions and rebuilds) and
 * differs between bugs: "SIGSEGV | mixsample::segfault_now | ...". It is
 * computed from the merged stack with the PCRE2 lists of
 * data/signature-rules.conf (docs/triage.md), which users extend with
 * $MIXSTACK_SIGNATURE_RULES or ~/.config/mixstack/signature-rules.conf.
 * ------------------------------------------------------------------------ */

/* What to triage and how much to show (opaque): made and set with
 * ms_options_* (see "Options"); NULL gives the defaults. */
struct ms_triage_options;

/* The result of a triage. */
struct ms_triage;

/* Triage a report. The report must outlive the triage. */
MS_PUBLIC struct ms_error *ms_triage_create(
        const struct ms_report *report, const struct ms_triage_options *options,
        struct ms_triage **ret);

MS_PUBLIC void ms_triage_destroy(struct ms_triage *triage);

/* What the triage found (opaque; read with these or printed): the kind
 * ("SIGSEGV", "panic", "abort", "fatal-error", "deadlock", "hang",
 * "snapshot"), one or two sentences for people, the signature ("KIND |
 * FRAME | FRAME ...") and its id (16 hex digits of its 64-bit FNV-1a hash,
 * for file names and grouping). The strings live as long as the triage. */
MS_PUBLIC const char *ms_triage_kind(const struct ms_triage *triage);
MS_PUBLIC const char *ms_triage_reason(const struct ms_triage *triage);
MS_PUBLIC const char *ms_triage_signature(const struct ms_triage *triage);
MS_PUBLIC const char *ms_triage_signature_id(const struct ms_triage *triage);

/* Check that a target can be triaged: its executable is known and was
 * found on this machine (without it, native frames have no names and a
 * signature would group unrelated crashes). NULL when it can be; else an
 * MS_ERROR_NOT_FOUND error saying which file is missing. */
MS_PUBLIC struct ms_error *ms_triage_check_target(
        const struct ms_target *target);

/* Triage output formats. */
enum ms_triage_format {
        /* For terminals and CI logs. */
        MS_TRIAGE_TEXT,
        /* For CI step summaries ($GITHUB_STEP_SUMMARY). */
        MS_TRIAGE_MARKDOWN,
        /* One document, schema "mixstack-triage/1" (docs/triage.md). */
        MS_TRIAGE_JSON,
};

/* Writes triages as they come: text and markdown at once, JSON as one
 * document closed by ms_triage_printer_finish(). */
struct ms_triage_printer;

MS_PUBLIC struct ms_error *ms_triage_printer_create(
        enum ms_triage_format format, FILE *out,
        struct ms_triage_printer **ret);

/* Print a triage. */
MS_PUBLIC struct ms_error *ms_triage_printer_add(
        struct ms_triage_printer *printer, const struct ms_triage *triage);

/* A target that could not be triaged: its name ("core.123", "pid 123")
 * and why, in one line. */
MS_PUBLIC struct ms_error *ms_triage_printer_add_error(
        struct ms_triage_printer *printer, const char *target,
        const char *message);

/* Something the reader must know that is not a triage: "pid 123 died of
 * SIGSEGV but left no core: ...". */
MS_PUBLIC struct ms_error *ms_triage_printer_add_note(
        struct ms_triage_printer *printer, const char *message);

/* A command run under `mixstack run` (opaque): argv is borrowed (it must
 * outlive the run); the facts are 0 until set. */
struct ms_triage_run;

MS_PUBLIC struct ms_error *ms_triage_run_create(const char *const *argv,
                                                size_t argc,
                                                struct ms_triage_run **ret);
MS_PUBLIC void ms_triage_run_destroy(struct ms_triage_run *run);

/* How the command ended: its exit code, or the signal that killed it (0
 * when it exited), or timed_out. */
MS_PUBLIC void ms_triage_run_set_outcome(struct ms_triage_run *run,
                                         int exit_code, int signo,
                                         bool timed_out);

/* The --timeout in seconds (0: none) and the time it ran. */
MS_PUBLIC void ms_triage_run_set_times(struct ms_triage_run *run,
                                       double timeout, double seconds);

/* What mixstack run exits with. */
MS_PUBLIC void ms_triage_run_set_exit_status(struct ms_triage_run *run,
                                             int exit_status);

/* End the output: the run (NULL for triages of cores) and what was
 * added. Nothing more may be added. Markdown prints nothing at all when
 * nothing was added, so a quiet run leaves a CI summary untouched. */
MS_PUBLIC struct ms_error *ms_triage_printer_finish(
        struct ms_triage_printer *printer, const struct ms_triage_run *run);

MS_PUBLIC void ms_triage_printer_destroy(struct ms_triage_printer *printer);

#ifdef __cplusplus
}
#endif

#endif /* MIXSTACK_MIXSTACK_H */
