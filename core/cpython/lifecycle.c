/*
 * The interpreter's lifecycle phase and, while it finalizes, the step
 * (cpython-internals.md §8; cpython.h, ms_py_lifecycle_get).
 *
 * The runtime's flags alone are not enough: Py_FinalizeEx sets
 * _PyRuntime._finalizing only after wait_for_thread_shutdown and the
 * atexit callbacks (checked in the disassembly of 3.8, 3.10, 3.12 and
 * 3.13: the store follows the atexit call), so a crash in an atexit
 * handler happens with the runtime still "initialized". 3.12+ set the main
 * interpreter's finalizing flag first thing, earlier versions have nothing
 * in memory. What the interpreter records settles the early steps: the
 * thread whose outermost Python frame, called from C, is threading._shutdown
 * is joining threads, the one whose outermost Python frame runs a function
 * registered with atexit (interp->atexit, 3.10+) is in the atexit step.
 * Frame names are the hint for the rest: a Py_FinalizeEx frame (3.13: the
 * static _Py_Finalize it tail-calls, often a clone such as
 * _Py_Finalize.part.0.constprop.0) means finalizing, and the innermost
 * frame that names a step says which.
 */
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"

/* Functions that name a finalization step. Names are compared up to the
 * first '.' or '@', so compiler clones match. */
static const struct step_function {
        const char *name;
        enum ms_py_finalize_step step;
} step_functions[] = {
        {"wait_for_thread_shutdown", MS_PY_STEP_WAITING_FOR_THREADS},
        {"call_py_exitfuncs", MS_PY_STEP_ATEXIT},
        {"atexit_callfuncs", MS_PY_STEP_ATEXIT},
        {"_PyAtExit_Call", MS_PY_STEP_ATEXIT},
        {"finalize_modules", MS_PY_STEP_MODULE_TEARDOWN},
        {"finalize_remove_modules", MS_PY_STEP_MODULE_TEARDOWN},
        {"finalize_clear_modules_dict", MS_PY_STEP_MODULE_TEARDOWN},
        {"finalize_restore_builtins", MS_PY_STEP_MODULE_TEARDOWN},
        {"finalize_modules_delete_special", MS_PY_STEP_MODULE_TEARDOWN},
        {"finalize_modules_clear_weaklist", MS_PY_STEP_MODULE_TEARDOWN},
        {"_PyImport_Cleanup", MS_PY_STEP_MODULE_TEARDOWN},
        {"PyImport_Cleanup", MS_PY_STEP_MODULE_TEARDOWN},
        {"_PyImport_FiniExternal", MS_PY_STEP_MODULE_TEARDOWN},
        {"finalize_interp_clear", MS_PY_STEP_INTERPRETER_CLEAR},
        {"finalize_interp_types", MS_PY_STEP_INTERPRETER_CLEAR},
        {"finalize_interp_delete", MS_PY_STEP_INTERPRETER_CLEAR},
        {"PyInterpreterState_Clear", MS_PY_STEP_INTERPRETER_CLEAR},
        {"_PyInterpreterState_Clear", MS_PY_STEP_INTERPRETER_CLEAR},
        {"interpreter_clear", MS_PY_STEP_INTERPRETER_CLEAR},
        {"PyInterpreterState_Delete", MS_PY_STEP_INTERPRETER_CLEAR},
        {"call_ll_exitfuncs", MS_PY_STEP_RUNTIME_CLEAR},
        {"_Py_FinalizeAllocatedBlocks", MS_PY_STEP_RUNTIME_CLEAR},
        {"_PyRuntime_Finalize", MS_PY_STEP_RUNTIME_CLEAR},
        {"_PyRuntimeState_Fini", MS_PY_STEP_RUNTIME_CLEAR},
        /* The C library's exit machinery: the process itself ends. */
        {"exit", MS_PY_STEP_PROCESS_EXIT},
        {"__GI_exit", MS_PY_STEP_PROCESS_EXIT},
        {"quick_exit", MS_PY_STEP_PROCESS_EXIT},
        {"__run_exit_handlers", MS_PY_STEP_PROCESS_EXIT},
        {"_dl_fini", MS_PY_STEP_PROCESS_EXIT},
        {"__cxa_finalize", MS_PY_STEP_PROCESS_EXIT},
        {"__libc_csu_fini", MS_PY_STEP_PROCESS_EXIT},
        {"_fini", MS_PY_STEP_PROCESS_EXIT},
        {"_exit", MS_PY_STEP_PROCESS_EXIT},
        {"_Exit", MS_PY_STEP_PROCESS_EXIT},
};

/* Frame categories that name a step wherever the collector is entered
 * from (data/frame-rules.conf keeps the list of gc functions). */
static const struct step_category {
        const char *category;
        enum ms_py_finalize_step step;
} step_categories[] = {
        {"gc", MS_PY_STEP_GC},
};

/* Python frames that name a step: threading._shutdown is what
 * wait_for_thread_shutdown runs. */
static const struct step_python {
        const char *function;
        const char *file_suffix;
        enum ms_py_finalize_step step;
} step_python[] = {
        {"_shutdown", "threading.py", MS_PY_STEP_WAITING_FOR_THREADS},
};

/* The functions running finalization, and initialization. */
static const char *const finalizers[] = {
        "Py_FinalizeEx",
        "Py_Finalize",
        "_Py_Finalize",
        "Py_Exit",
};
static const char *const initializers[] = {
        "Py_Initialize",
        "Py_InitializeEx",
        "Py_InitializeFromConfig",
        "Py_PreInitialize",
        "Py_PreInitializeFromArgs",
        "Py_PreInitializeFromBytesArgs",
        "pyinit_core",
        "pyinit_main",
        "init_interp_main",
        "_Py_InitializeMain",
        "pymain_init",
};

static const char *const eval_categories[] = {"eval-loop", "eval-loop-tail"};

const char *ms_py_phase_name(enum ms_py_phase phase)
{
        static const char *const names[] = {
                [MS_PY_PHASE_UNKNOWN] = "unknown",
                [MS_PY_PHASE_NOT_INITIALIZED] = "not initialized",
                [MS_PY_PHASE_INITIALIZING] = "initializing",
                [MS_PY_PHASE_RUNNING] = "running",
                [MS_PY_PHASE_FINALIZING] = "finalizing",
                [MS_PY_PHASE_FINALIZED] = "finalized",
        };
        return (size_t)phase < MS_ARRAY_SIZE(names) ? names[phase] : "unknown";
}

static const struct {
        const char *id, *text;
} step_names[] = {
        [MS_PY_STEP_NONE] = {NULL, NULL},
        [MS_PY_STEP_WAITING_FOR_THREADS] = {"waiting-for-threads",
                                            "waiting for threads"},
        [MS_PY_STEP_ATEXIT] = {"atexit", "atexit callbacks"},
        [MS_PY_STEP_GC] = {"gc", "garbage collection"},
        [MS_PY_STEP_MODULE_TEARDOWN] = {"module-teardown", "module teardown"},
        [MS_PY_STEP_INTERPRETER_CLEAR] = {"interpreter-clear",
                                          "interpreter clear"},
        [MS_PY_STEP_RUNTIME_CLEAR] = {"runtime-clear", "runtime clear"},
        [MS_PY_STEP_PROCESS_EXIT] = {"process-exit", "process exit"},
};

const char *ms_py_finalize_step_id(enum ms_py_finalize_step step)
{
        return (size_t)step < MS_ARRAY_SIZE(step_names) ? step_names[step].id
                                                        : NULL;
}

const char *ms_py_finalize_step_text(enum ms_py_finalize_step step)
{
        return (size_t)step < MS_ARRAY_SIZE(step_names) ? step_names[step].text
                                                        : NULL;
}

/* ------------------------------------------------------------------------
 * What one stack shows
 * ------------------------------------------------------------------------ */

/* function equals name up to a clone suffix (".part.0", ".cold") or a
 * symbol version ("@GLIBC_2.2.5"). */
static bool name_is(const char *function, const char *name)
{
        size_t n = strcspn(function, ".@");
        return strlen(name) == n && strncmp(function, name, n) == 0;
}

static bool in_list(const char *function, const char *const *list, size_t n)
{
        for (size_t i = 0; function && i < n; i++) {
                if (name_is(function, list[i]))
                        return true;
        }
        return false;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

static const char *frame_name(const struct ms_frame *f)
{
        return f->function ? f->function : f->raw_symbol;
}

/* The step a frame names, or MS_PY_STEP_NONE; *name is the static name of
 * the table entry. */
static enum ms_py_finalize_step frame_step(const struct ms_frame *f,
                                           const char **name)
{
        const char *fn = frame_name(f);
        if (f->kind == MS_FRAME_PYTHON) {
                for (size_t i = 0; i < MS_ARRAY_SIZE(step_python); i++) {
                        const struct step_python *s = &step_python[i];
                        if (fn && f->file && strcmp(fn, s->function) == 0 &&
                            ends_with(f->file, s->file_suffix)) {
                                *name = s->function;
                                return s->step;
                        }
                }
                return MS_PY_STEP_NONE;
        }
        for (size_t i = 0; fn && i < MS_ARRAY_SIZE(step_functions); i++) {
                if (name_is(fn, step_functions[i].name)) {
                        *name = step_functions[i].name;
                        return step_functions[i].step;
                }
        }
        for (size_t i = 0; f->category && i < MS_ARRAY_SIZE(step_categories);
             i++) {
                if (strcmp(f->category, step_categories[i].category) == 0) {
                        *name = step_categories[i].category;
                        return step_categories[i].step;
                }
        }
        return MS_PY_STEP_NONE;
}

struct stack_facts {
        const struct ms_py_stack_ref *stack;
        bool finalizer, initializer, exiting;
        /* Python code runs above (inside) the finalizer frame. */
        bool python_in_finalizer;
        enum ms_py_finalize_step step;
        const char *step_function;
};

static bool is_python(const struct ms_frame *f)
{
        return f->kind == MS_FRAME_PYTHON ||
               (f->category && in_list(f->category, eval_categories,
                                       MS_ARRAY_SIZE(eval_categories)));
}

static void scan_stack(const struct ms_py_stack_ref *s, struct stack_facts *sf)
{
        memset(sf, 0, sizeof(*sf));
        sf->stack = s;
        bool python = false;
        for (size_t i = 0; s->frames && i < s->n_frames; i++) {
                const struct ms_frame *f = &s->frames[i];
                const char *fn = frame_name(f);
                const char *name = NULL;
                enum ms_py_finalize_step step = frame_step(f, &name);
                if (step == MS_PY_STEP_PROCESS_EXIT)
                        sf->exiting = true;
                if (step && !sf->step) {
                        sf->step = step;
                        sf->step_function = name;
                }
                if (f->kind == MS_FRAME_NATIVE &&
                    in_list(fn, finalizers, MS_ARRAY_SIZE(finalizers)) &&
                    !sf->finalizer) {
                        sf->finalizer = true;
                        sf->python_in_finalizer = python;
                }
                sf->initializer |=
                        f->kind == MS_FRAME_NATIVE &&
                        in_list(fn, initializers, MS_ARRAY_SIZE(initializers));
                python |= is_python(f);
        }
}

/* ------------------------------------------------------------------------
 * The phase
 * ------------------------------------------------------------------------ */

static const struct ms_py_thread *thread_by(const struct ms_py_runtime *rt,
                                            uint64_t tstate,
                                            uint64_t pthread_id, pid_t tid)
{
        for (size_t i = 0; i < rt->n_threads; i++) {
                const struct ms_py_thread *t = &rt->threads[i];
                if ((tstate && t->tstate == tstate) ||
                    (pthread_id && t->pthread_id == pthread_id) ||
                    (tid && t->native_tid == tid))
                        return t;
        }
        return NULL;
}

static const struct ms_py_interp *main_interp(const struct ms_py_runtime *rt)
{
        for (size_t i = 0; i < rt->n_interps; i++) {
                if (rt->interps[i].is_main)
                        return &rt->interps[i];
        }
        return NULL;
}

/* The finalizing thread as memory tells it: the runtime's tstate, its
 * pthread id (3.12+), or the main interpreter's tstate (3.12+). */
static pid_t finalizing_tid_from_memory(const struct ms_py_runtime *rt)
{
        const struct ms_py_interp *main = main_interp(rt);
        const struct ms_py_thread *t = NULL;
        if (rt->finalizing_tstate)
                t = thread_by(rt, rt->finalizing_tstate, 0, 0);
        if (!t && rt->finalizing_id)
                t = thread_by(rt, 0, rt->finalizing_id, 0);
        if (!t && main && main->finalizing_tstate)
                t = thread_by(rt, main->finalizing_tstate, 0, 0);
        return t ? t->native_tid : 0;
}

static bool is_threading_shutdown(const struct ms_py_frame *f)
{
        return f->function && f->file &&
               strcmp(f->function, "_shutdown") == 0 &&
               ends_with(f->file, "threading.py");
}

static bool is_atexit_callback(const struct ms_py_interp *in,
                               const struct ms_py_frame *f)
{
        for (size_t i = 0; f->code_address && i < in->n_atexit_code; i++) {
                if (in->atexit_code[i] == f->code_address)
                        return true;
        }
        return false;
}

/* Before the runtime's finalizing thread is set, the thread of the main
 * interpreter whose outermost Python frame (called from C) is one an
 * early finalization step runs: threading._shutdown (joining threads) or
 * a callback registered with atexit. NULL when none is. */
static const struct ms_py_thread *early_step_thread(
        const struct ms_py_runtime *rt, enum ms_py_finalize_step *step)
{
        const struct ms_py_interp *main = main_interp(rt);
        if (!main || rt->finalizing_tstate || rt->finalizing_id)
                return NULL;
        for (size_t i = 0; i < rt->n_threads; i++) {
                const struct ms_py_thread *t = &rt->threads[i];
                /* A walk that stopped early has not seen the outermost. */
                if (t->interp_id != main->id || !t->n_frames || t->error)
                        continue;
                const struct ms_py_frame *bottom = &t->frames[t->n_frames - 1];
                if (is_threading_shutdown(bottom))
                        *step = MS_PY_STEP_WAITING_FOR_THREADS;
                else if (is_atexit_callback(main, bottom))
                        *step = MS_PY_STEP_ATEXIT;
                else
                        continue;
                return t;
        }
        return NULL;
}

/* Without a frame naming the step (stripped builds): before the runtime's
 * flag is set, Python code on the finalizing thread is either
 * threading._shutdown (joining threads) or an atexit callback. */
static enum ms_py_finalize_step infer_step(const struct ms_py_runtime *rt,
                                           const struct stack_facts *sf,
                                           pid_t tid)
{
        if (rt->finalizing_tstate || rt->finalizing_id)
                return MS_PY_STEP_NONE;
        const struct ms_py_thread *t = tid ? thread_by(rt, 0, 0, tid) : NULL;
        bool python = (sf && sf->python_in_finalizer) || (t && t->n_frames);
        if (!python)
                return MS_PY_STEP_NONE;
        if (t && t->n_frames &&
            is_threading_shutdown(&t->frames[t->n_frames - 1]))
                return MS_PY_STEP_WAITING_FOR_THREADS;
        return MS_PY_STEP_ATEXIT;
}

struct all_facts {
        const struct stack_facts *finalizer; /* the finalizing thread's */
        bool initializer;
        const struct stack_facts *exiting;
        /* The early step the interpreter's records show (early_step_thread)
         * on the finalizing thread, else MS_PY_STEP_NONE. */
        enum ms_py_finalize_step recorded_step;
        pid_t recorded_tid;
};

static void set_step(const struct ms_py_runtime *rt, const struct all_facts *af,
                     struct ms_py_lifecycle *ret)
{
        const struct stack_facts *sf = af->finalizer;
        if (af->recorded_step) {
                ret->step = af->recorded_step;
                return;
        }
        if (sf && sf->step) {
                ret->step = sf->step;
                ret->step_function = sf->step_function;
                return;
        }
        if (ret->phase == MS_PY_PHASE_FINALIZING) {
                ret->step = infer_step(rt, sf, ret->finalizing_tid);
                ret->step_inferred = ret->step != MS_PY_STEP_NONE;
        }
        if (!ret->step && af->exiting) {
                ret->step = MS_PY_STEP_PROCESS_EXIT;
                ret->step_function = af->exiting->step_function;
        }
}

static void set_finalizing(const struct ms_py_runtime *rt,
                           const struct all_facts *af,
                           struct ms_py_lifecycle *ret)
{
        const struct ms_py_interp *main = main_interp(rt);
        bool late = rt->finalizing_tstate || rt->finalizing_id;
        bool frame = af->finalizer && af->finalizer->finalizer;
        if (!rt->interpreters_head && !frame) {
                ret->phase = MS_PY_PHASE_FINALIZED;
                snprintf(ret->reason, sizeof(ret->reason),
                         "no interpreter is left and no thread is in "
                         "Py_FinalizeEx");
        } else if (late) {
                snprintf(ret->reason, sizeof(ret->reason),
                         "the runtime's finalizing thread is set");
        } else if (af->recorded_step) {
                snprintf(ret->reason, sizeof(ret->reason),
                         "%s thread %d runs %s; the runtime's finalizing "
                         "thread is not set yet",
                         main && main->finalizing
                                 ? "the main interpreter is finalizing and"
                                 : "under Py_FinalizeEx,",
                         (int)af->recorded_tid,
                         af->recorded_step == MS_PY_STEP_ATEXIT
                                 ? "an atexit callback"
                                 : "threading._shutdown");
        } else if (main && (main->finalizing || main->finalizing_tstate)) {
                snprintf(ret->reason, sizeof(ret->reason),
                         "the main interpreter is finalizing; the runtime's "
                         "finalizing thread is not set yet");
        } else {
                snprintf(ret->reason, sizeof(ret->reason),
                         "Py_FinalizeEx is on thread %d's stack; the runtime's "
                         "finalizing thread is not set yet",
                         (int)af->finalizer->stack->tid);
        }
}

static void decide(const struct ms_py_runtime *rt, const struct all_facts *af,
                   struct ms_py_lifecycle *ret)
{
        const struct ms_py_interp *main = main_interp(rt);
        bool finalizing =
                rt->finalizing_tstate || rt->finalizing_id ||
                (main && (main->finalizing || main->finalizing_tstate)) ||
                (af->finalizer && af->finalizer->finalizer);
        if (finalizing) {
                ret->phase = MS_PY_PHASE_FINALIZING;
                set_finalizing(rt, af, ret);
        } else if (rt->initialized == 1) {
                ret->phase = MS_PY_PHASE_RUNNING;
                snprintf(ret->reason, sizeof(ret->reason), "initialized");
        } else if (rt->core_initialized == 1 || af->initializer ||
                   (rt->initialized == 0 && rt->interpreters_head)) {
                ret->phase = MS_PY_PHASE_INITIALIZING;
                snprintf(ret->reason, sizeof(ret->reason),
                         "Py_Initialize has not finished");
        } else if (rt->initialized == 0) {
                ret->phase = MS_PY_PHASE_NOT_INITIALIZED;
                snprintf(ret->reason, sizeof(ret->reason),
                         "no interpreter and not initialized");
        } else {
                ret->phase = MS_PY_PHASE_UNKNOWN;
                snprintf(ret->reason, sizeof(ret->reason),
                         "the runtime's flags could not be read");
        }
}

/* Which stack is the finalizing thread's: the one memory names, else the
 * first with a finalizer frame. */
static void gather(const struct stack_facts *facts, size_t n, pid_t tid,
                   struct all_facts *af)
{
        memset(af, 0, sizeof(*af));
        for (size_t i = 0; i < n; i++) {
                const struct stack_facts *sf = &facts[i];
                if (tid && sf->stack->tid == tid)
                        af->finalizer = sf;
                else if (!tid && sf->finalizer && !af->finalizer)
                        af->finalizer = sf;
                af->initializer |= sf->initializer;
                if (sf->exiting && !af->exiting)
                        af->exiting = sf;
        }
}

/* Whether early's outermost Python frame runs under Py_FinalizeEx: the
 * main interpreter says it finalizes, or (the flag being set only by
 * Py_EndInterpreter before 3.12) early's stack shows a finalizer frame. */
static bool early_finalizing(const struct ms_py_runtime *rt,
                             const struct stack_facts *facts, size_t n,
                             const struct ms_py_thread *early)
{
        const struct ms_py_interp *main = main_interp(rt);
        if (main && main->finalizing)
                return true;
        for (size_t i = 0; early->native_tid && i < n; i++) {
                if (facts[i].stack->tid == early->native_tid)
                        return facts[i].finalizer;
        }
        return false;
}

void ms_py_lifecycle_get(const struct ms_py_runtime *rt,
                         const struct ms_py_stack_ref *stacks, size_t n_stacks,
                         struct ms_py_lifecycle *ret)
{
        memset(ret, 0, sizeof(*ret));
        struct stack_facts *facts =
                n_stacks ? calloc(n_stacks, sizeof(*facts)) : NULL;
        /* Without memory for the stack facts, the flags still answer. */
        if (!facts)
                n_stacks = 0;
        for (size_t i = 0; i < n_stacks; i++)
                scan_stack(&stacks[i], &facts[i]);
        pid_t tid = finalizing_tid_from_memory(rt);
        enum ms_py_finalize_step recorded = MS_PY_STEP_NONE;
        const struct ms_py_thread *early = early_step_thread(rt, &recorded);
        /* That thread is the finalizing one when nothing else is named and
         * the main interpreter is finalizing (3.12+), or, before 3.12,
         * when its stack shows a finalizer frame. */
        if (early && !tid && early_finalizing(rt, facts, n_stacks, early))
                tid = early->native_tid;
        struct all_facts af;
        gather(facts, n_stacks, tid, &af);
        if (early && tid && early->native_tid == tid) {
                af.recorded_step = recorded;
                af.recorded_tid = tid;
        }
        decide(rt, &af, ret);
        if (ret->phase == MS_PY_PHASE_FINALIZING)
                ret->finalizing_tid = tid            ? tid
                                      : af.finalizer ? af.finalizer->stack->tid
                                                     : 0;
        if (ret->phase == MS_PY_PHASE_FINALIZING ||
            ret->phase == MS_PY_PHASE_FINALIZED)
                set_step(rt, &af, ret);
        if (af.exiting) {
                ret->process_exiting = true;
                ret->exit_tid = af.exiting->stack->tid;
        }
        free(facts);
}
