/*
 * Building the one report model from a target, in stages:
 *
 * 1. unwind every thread (the crashing thread first) and classify its
 *    native frames;
 * 2. read the Python runtimes;
 * 3. read the Rust panic state of every thread;
 * -- everything that reads target memory is done: a live process goes on;
 * 4. for a stopped live process, symbolize the native frames with DWARF
 *    (inlined frames, source positions) and classify them again;
 * 5. give each thread its Python state (GIL, exceptions), find the
 *    lifecycle phase, and diagnose (deadlocks, GIL holder blocked) while
 *    the native stacks are whole;
 * 6. merge each thread's native and Python stacks as the options ask.
 *
 * A live process opened running is stopped for stages 1-3 only, with the
 * symbol tables and CFI of its modules loaded before, and its frames are
 * named from symbol tables only while it is stopped (stage 4 adds the
 * rest). Other targets are symbolized with DWARF in stage 1.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "base/options.h"
#include "base/util.h"
#include "cpython/cpython.h"
#include "merge/merge.h"
#include "merge/rules.h"
#include "report/boundary.h"
#include "rust/rust.h"
#include "report/native.h"
#include "target/target.h"
#include "unwind/unwind.h"

#define DEFAULT_MAX_FRAMES 1024

/* Everything a report is built from. */
struct report_inputs {
        struct ms_target *target;
        const struct ms_report_options *options;
        unsigned max_frames;
        struct ms_unwinder *unwinder;
        /* Per report thread: its native stack until stage 4 (for a
         * stopped process: names only, borrowed from the unwinder). */
        struct ms_native_stack *native;
        struct ms_py_runtime *runtimes;
        size_t n_runtimes;
        /* Which Python threads were matched to an OS thread. */
        bool **matched;
        /* Per report thread: its Python thread state and runtime, or NULL. */
        struct ms_py_thread **py;
        struct ms_py_runtime **py_runtime;
        /* With locals: the globals and builtins dicts of the Python frames
         * (for py-print), until the report takes them. */
        struct ms_py_namespace *namespaces;
        size_t n_namespaces, namespaces_capacity;
        /* Warnings about everything (target, unwinder), the Python
         * reader's, the Rust reader's, merging's. */
        struct ms_warnings warnings;
        struct ms_warnings python_warnings;
        struct ms_warnings rust_warnings;
        struct ms_warnings stack_warnings;
};

/* The sections each kind of warning concerns. */
#define SECTIONS_ALL (~0u)
#define SECTIONS_PYTHON (~(1u << MS_SECTION_PANIC))
#define SECTIONS_RUST ((1u << MS_SECTION_REPORT) | (1u << MS_SECTION_PANIC))
#define SECTIONS_STACKS                                          \
        ((1u << MS_SECTION_REPORT) | (1u << MS_SECTION_STACKS) | \
         (1u << MS_SECTION_THREADS))

/* Per thread: the globals and builtins dicts of its Python frames. */
struct python_names {
        uint64_t *globals, *builtins;
        size_t n;
};

/* A report and what it keeps for debugger frontends (report/native.h). */
struct report_impl {
        struct ms_report report;
        /* Per thread. */
        struct ms_native_frames *native;
        struct python_names *names;
        struct ms_py_namespace *namespaces;
        size_t n_namespaces;
};

static const struct ms_py_namespace *find_namespace(
        const struct report_impl *impl, uint64_t dict)
{
        for (size_t i = 0; dict && i < impl->n_namespaces; i++) {
                if (impl->namespaces[i].dict == dict)
                        return &impl->namespaces[i];
        }
        return NULL;
}

void ms_report_python_names(const struct ms_report *report, size_t thread,
                            size_t k, const struct ms_py_namespace **globals,
                            const struct ms_py_namespace **builtins)
{
        const struct report_impl *impl = (const struct report_impl *)report;
        *globals = *builtins = NULL;
        if (!impl->names || thread >= report->n_threads ||
            k >= impl->names[thread].n)
                return;
        *globals = find_namespace(impl, impl->names[thread].globals[k]);
        *builtins = find_namespace(impl, impl->names[thread].builtins[k]);
}

/* Keep which globals and builtins each Python frame of thread i sees. */
static struct ms_error *keep_python_names(struct report_inputs *in,
                                          struct ms_report *report, size_t i)
{
        struct report_impl *impl = (struct report_impl *)report;
        const struct ms_py_thread *py = in->py ? in->py[i] : NULL;
        if (!in->n_namespaces || !py)
                return NULL;
        if (!impl->names) {
                impl->names = calloc(report->n_threads ? report->n_threads : 1,
                                     sizeof(*impl->names));
                if (!impl->names)
                        return &ms_error_no_memory;
        }
        struct python_names *out = &impl->names[i];
        out->globals = calloc(py->n_frames + 1, sizeof(uint64_t));
        out->builtins = calloc(py->n_frames + 1, sizeof(uint64_t));
        if (!out->globals || !out->builtins)
                return &ms_error_no_memory;
        for (size_t k = 0; k < py->n_frames; k++) {
                out->globals[k] = py->frames[k].globals;
                out->builtins[k] = py->frames[k].builtins;
        }
        out->n = py->n_frames;
        return NULL;
}

const struct ms_native_frames *ms_report_native(const struct ms_report *report,
                                                size_t thread)
{
        static const struct ms_native_frames none;
        const struct report_impl *impl = (const struct report_impl *)report;
        if (!impl->native || thread >= report->n_threads)
                return &none;
        return &impl->native[thread];
}

/* Keep the pcs, inlined flags and names of a thread's native frames
 * before the merge replaces them. */
static struct ms_error *keep_native(struct ms_report *report, size_t i)
{
        struct report_impl *impl = (struct report_impl *)report;
        const struct ms_thread_report *t = &report->threads[i];
        if (!impl->native) {
                impl->native = calloc(report->n_threads ? report->n_threads : 1,
                                      sizeof(*impl->native));
                if (!impl->native)
                        return &ms_error_no_memory;
        }
        struct ms_native_frames *out = &impl->native[i];
        out->frames =
                calloc(t->n_frames ? t->n_frames : 1, sizeof(*out->frames));
        if (!out->frames)
                return &ms_error_no_memory;
        for (size_t j = 0; j < t->n_frames; j++) {
                bool ok = true;
                out->frames[j].pc = t->frames[j].pc;
                out->frames[j].inlined = t->frames[j].inlined;
                out->frames[j].function =
                        ms_strdup_or_null(t->frames[j].function, &ok);
                out->n = j + 1;
                if (!ok)
                        return &ms_error_no_memory;
        }
        return NULL;
}

static void free_native(struct ms_report *report)
{
        struct report_impl *impl = (struct report_impl *)report;
        for (size_t i = 0; impl->names && i < report->n_threads; i++) {
                free(impl->names[i].globals);
                free(impl->names[i].builtins);
        }
        free(impl->names);
        ms_py_namespaces_free(impl->namespaces, impl->n_namespaces);
        for (size_t i = 0; impl->native && i < report->n_threads; i++) {
                for (size_t j = 0; j < impl->native[i].n; j++)
                        free(impl->native[i].frames[j].function);
                free(impl->native[i].frames);
        }
        free(impl->native);
}

static struct ms_error *report_add_warnings(struct ms_report *report,
                                            const struct ms_warnings *w,
                                            unsigned sections)
{
        if (!w->n)
                return NULL;
        size_t n = report->n_warnings + w->n;
        char **items = realloc(report->warnings, n * sizeof(*items));
        if (!items)
                return &ms_error_no_memory;
        report->warnings = items;
        unsigned *masks = realloc(report->warning_sections, n * sizeof(*masks));
        if (!masks)
                return &ms_error_no_memory;
        report->warning_sections = masks;
        for (size_t i = 0; i < w->n; i++) {
                char *copy = strdup(w->items[i]);
                if (!copy)
                        return &ms_error_no_memory;
                report->warning_sections[report->n_warnings] = sections;
                report->warnings[report->n_warnings++] = copy;
        }
        return NULL;
}

/* Index of the thread to report first: the one the signal hit. */
static size_t crashed_index(const struct ms_target *target)
{
        for (size_t i = 0; target->signal_tid && i < target->n_threads; i++) {
                if (target->threads[i].tid == target->signal_tid)
                        return i;
        }
        return 0;
}

/* ------------------------------------------------------------------------
 * Stages 1 and 4: native stacks
 * ------------------------------------------------------------------------ */

static void classify_native(struct ms_native_stack *stack)
{
        const struct ms_rules *rules = ms_frame_rules(NULL);
        for (size_t i = 0; i < stack->n_frames; i++) {
                stack->frames[i].category =
                        ms_rules_frame_category(rules, &stack->frames[i]);
                stack->frames[i].native_index = (int)i;
        }
}

static struct ms_error *report_native_thread(struct ms_report *report,
                                             struct report_inputs *in,
                                             size_t index)
{
        const struct ms_target_thread *t = &in->target->threads[index];
        struct ms_native_stack *stack = &in->native[report->n_threads];
        struct ms_thread_report *out = &report->threads[report->n_threads++];
        bool ok = true;
        out->tid = t->tid;
        out->name = ms_strdup_or_null(t->name, &ok);
        out->crashed = in->target->signo && t->tid == in->target->signal_tid;
        out->interpreter_id = -1;
        out->gil_wait_frame = -1;
        if (!ok)
                return &ms_error_no_memory;
        if (!in->unwinder)
                return NULL;
        struct ms_error *err =
                ms_unwind_thread(in->unwinder, index, in->max_frames, stack);
        if (err)
                return err;
        classify_native(stack);
        out->lock_owner_tid =
                ms_lock_owner(in->target, t, stack->frames, stack->n_frames);
        return NULL;
}

/* Stage 4: the frames of thread i, with DWARF when they were unwound
 * names-only; either way they become the thread's. */
static struct ms_error *report_debuginfo(struct report_inputs *in, size_t i,
                                         struct ms_thread_report *out)
{
        struct ms_native_stack *stack = &in->native[i];
        bool names_only = stack->borrowed;
        if (!in->unwinder)
                return NULL;
        struct ms_error *err =
                ms_unwinder_add_debuginfo(in->unwinder, stack, in->max_frames);
        if (err)
                return err;
        if (names_only)
                classify_native(stack);
        out->frames = stack->frames;
        out->n_frames = stack->n_frames;
        out->unwind_error = stack->error;
        memset(stack, 0, sizeof(*stack));
        /* Found on frames without inlined functions: again on these. */
        if (names_only && out->panic)
                err = ms_panic_refresh_site(out->panic, out->frames,
                                            out->n_frames);
        return err;
}

/* ------------------------------------------------------------------------
 * Stages 2 and 5: Python state
 * ------------------------------------------------------------------------ */

/* The Python thread running on OS thread tid, and its runtime. */
static struct ms_py_thread *find_py_thread(struct report_inputs *in, pid_t tid,
                                           struct ms_py_runtime **runtime)
{
        for (size_t r = 0; tid && r < in->n_runtimes; r++) {
                struct ms_py_runtime *rt = &in->runtimes[r];
                for (size_t i = 0; i < rt->n_threads; i++) {
                        if (rt->threads[i].native_tid == tid) {
                                in->matched[r][i] = true;
                                *runtime = rt;
                                return &rt->threads[i];
                        }
                }
        }
        *runtime = in->n_runtimes ? &in->runtimes[0] : NULL;
        return NULL;
}

static enum ms_gil_state public_gil_state(enum ms_py_gil_state state)
{
        switch (state) {
        case MS_PY_GIL_HELD:
                return MS_GIL_HELD;
        case MS_PY_GIL_WAITING:
                return MS_GIL_WAITING;
        case MS_PY_GIL_RELEASED:
                return MS_GIL_RELEASED;
        case MS_PY_GIL_NONE:
                break;
        }
        return MS_GIL_NONE;
}

/* The address a thread sleeps on in the futex system call, 0 when it is
 * not in one (or the target does not say). */
static uint64_t futex_address(struct ms_target *target, pid_t tid)
{
        const struct ms_target_thread *t = ms_target_find_thread(target, tid);
        if (!t || !t->have_regs || t->syscall_nr != SYS_futex)
                return 0;
        return t->regs[MS_REG_RDI];
}

/* The frame that took the thread into a GIL wait found from registers:
 * the innermost interpreter frame (take_gil, maybe unnamed). */
static size_t interpreter_wait_frame(const struct ms_frame *frames, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const char *c = frames[i].category;
                if (c && (strcmp(c, "cpython-internal") == 0 ||
                          strcmp(c, "gil-acquire") == 0 ||
                          strcmp(c, "eval-loop") == 0))
                        return i;
        }
        return SIZE_MAX;
}

static struct ms_error *report_python_thread(struct report_inputs *in, size_t i,
                                             struct ms_thread_report *out)
{
        struct ms_py_runtime *rt;
        struct ms_py_thread *py = find_py_thread(in, out->tid, &rt);
        in->py[i] = py;
        in->py_runtime[i] = rt;
        if (rt) {
                /* Also without a thread state: a Rust thread blocked in
                 * Python::attach is waiting all the same. */
                size_t wait = SIZE_MAX;
                enum ms_py_gil_state state = ms_py_thread_gil_state(
                        rt, py, out->frames, out->n_frames, &wait);
                if (state != MS_PY_GIL_HELD && state != MS_PY_GIL_WAITING &&
                    ms_py_gil_futex_wait(rt, py,
                                         futex_address(in->target, out->tid))) {
                        state = MS_PY_GIL_WAITING;
                        wait = interpreter_wait_frame(out->frames,
                                                      out->n_frames);
                }
                out->gil = public_gil_state(state);
                if (wait != SIZE_MAX && wait < out->n_frames)
                        out->gil_wait_frame = (int)wait;
        }
        if (!py)
                return NULL;
        out->python = true;
        out->interpreter_id = py->interp_id;
        if (py->error) {
                out->python_error = strdup(py->error);
                if (!out->python_error)
                        return &ms_error_no_memory;
        }
        struct ms_error *err =
                ms_exception_chain_take(&py->pending, &out->pending);
        if (!err && py->n_handled)
                err = ms_exception_chain_take(&py->handled[0], &out->handled);
        return err;
}

static struct ms_error *inputs_read_python(struct report_inputs *in,
                                           struct ms_report *report)
{
        struct ms_py_find_options find = {
                .exhaustive = in->options->exhaustive,
        };
        /* What the search says about runtimes it could not read concerns
         * the Python sections: it goes with the Python reader's warnings. */
        struct ms_warnings *tw = &in->target->warnings;
        size_t before = tw->n;
        struct ms_error *err =
                ms_py_runtimes_find(in->target, in->unwinder, &find,
                                    &in->runtimes, &in->n_runtimes);
        for (size_t i = before; i < tw->n; i++) {
                ms_warnings_add(&in->python_warnings, "%s", tw->items[i]);
                free(tw->items[i]);
        }
        if (tw->n > before)
                tw->n = before;
        if (err)
                return err;
        size_t n = in->target->n_threads ? in->target->n_threads : 1;
        in->matched = calloc(in->n_runtimes ? in->n_runtimes : 1,
                             sizeof(*in->matched));
        in->py = calloc(n, sizeof(*in->py));
        in->py_runtime = calloc(n, sizeof(*in->py_runtime));
        if (!in->matched || !in->py || !in->py_runtime)
                return &ms_error_no_memory;
        for (size_t r = 0; r < in->n_runtimes; r++) {
                struct ms_py_runtime *rt = &in->runtimes[r];
                in->matched[r] =
                        calloc(rt->n_threads ? rt->n_threads : 1, sizeof(bool));
                if (!in->matched[r])
                        return &ms_error_no_memory;
                if (in->options->locals) {
                        err = ms_py_read_locals(in->target, rt);
                        if (!err)
                                err = ms_py_read_namespaces(
                                        in->target, rt, &in->namespaces,
                                        &in->n_namespaces,
                                        &in->namespaces_capacity);
                        if (err)
                                return err;
                }
                err = ms_report_asyncio_read(in->target, rt, report,
                                             &in->python_warnings);
                if (err)
                        return err;
                ms_warnings_move(&in->python_warnings, &rt->warnings);
        }
        if (!in->n_runtimes)
                return NULL;
        const struct ms_py_runtime *first = &in->runtimes[0];
        report->python_version = strdup(
                first->version_string ? first->version_string : "unknown");
        if (!report->python_version)
                return &ms_error_no_memory;
        report->python_free_threaded = first->free_threaded;
        report->python_runtime_found_by = first->found_by;
        if (first->module) {
                report->python_runtime_module = strdup(first->module);
                if (!report->python_runtime_module)
                        return &ms_error_no_memory;
        }
        if (in->n_runtimes > 1)
                ms_warnings_add(&in->python_warnings,
                                "%zu Python runtimes in this process; the "
                                "version and phase shown are the first one's",
                                in->n_runtimes);
        return NULL;
}

static struct ms_error *report_interpreters(struct report_inputs *in,
                                            struct ms_report *report)
{
        size_t total = 0;
        for (size_t r = 0; r < in->n_runtimes; r++)
                total += in->runtimes[r].n_interps;
        if (!total)
                return NULL;
        report->interpreters = calloc(total, sizeof(*report->interpreters));
        if (!report->interpreters)
                return &ms_error_no_memory;
        for (size_t r = 0; r < in->n_runtimes; r++) {
                const struct ms_py_runtime *rt = &in->runtimes[r];
                for (size_t i = 0; i < rt->n_interps; i++) {
                        const struct ms_py_interp *p = &rt->interps[i];
                        struct ms_interpreter_report *out =
                                &report->interpreters[report->n_interpreters++];
                        out->id = p->id;
                        out->gil_known = p->gil_known;
                        out->gil_locked = p->gil_locked;
                        out->gil_holder_tid = p->gil_holder_tid;
                        out->gil_disabled = p->gil_disabled;
                }
        }
        return NULL;
}

/* The thread state shown for OS thread tid when it has several (one per
 * interpreter it entered: a thread that runs code in a subinterpreter keeps
 * its suspended thread state in the interpreter it came from), or NULL. */
static const struct ms_py_thread *matched_on_tid(struct report_inputs *in,
                                                 pid_t tid)
{
        for (size_t r = 0; tid && r < in->n_runtimes; r++) {
                for (size_t i = 0; i < in->runtimes[r].n_threads; i++) {
                        if (in->matched[r][i] &&
                            in->runtimes[r].threads[i].native_tid == tid)
                                return &in->runtimes[r].threads[i];
                }
        }
        return NULL;
}

static void inputs_warn_unmatched(struct report_inputs *in)
{
        for (size_t r = 0; r < in->n_runtimes; r++) {
                struct ms_py_runtime *rt = &in->runtimes[r];
                for (size_t i = 0; i < rt->n_threads; i++) {
                        if (in->matched[r][i])
                                continue;
                        const struct ms_py_thread *shown =
                                matched_on_tid(in, rt->threads[i].native_tid);
                        if (shown) {
                                ms_warnings_add(
                                        &in->python_warnings,
                                        "thread %d runs in interpreter %lld; "
                                        "its thread state in interpreter "
                                        "%lld, which entered it, has %zu "
                                        "Python frames not shown",
                                        (int)shown->native_tid,
                                        (long long)shown->interp_id,
                                        (long long)rt->threads[i].interp_id,
                                        rt->threads[i].n_frames);
                                continue;
                        }
                        ms_warnings_add(
                                &in->python_warnings,
                                "Python thread state 0x%llx (native "
                                "thread id %d) has no thread in the "
                                "target; its %zu Python frames are "
                                "not shown",
                                (unsigned long long)rt->threads[i].tstate,
                                (int)rt->threads[i].native_tid,
                                rt->threads[i].n_frames);
                }
        }
}

/* ------------------------------------------------------------------------
 * Stages 3 and 5: Rust panics and the lifecycle phase
 * ------------------------------------------------------------------------ */

static struct ms_error *report_rust(struct report_inputs *in,
                                    struct ms_report *report)
{
        size_t n = report->n_threads;
        struct ms_rust_thread_input *threads =
                calloc(n ? n : 1, sizeof(*threads));
        if (!threads)
                return &ms_error_no_memory;
        for (size_t i = 0; i < n; i++) {
                threads[i].tid = report->threads[i].tid;
                threads[i].frames = in->native[i].frames;
                threads[i].n_frames = in->native[i].n_frames;
        }
        struct ms_rust_state state;
        struct ms_error *err = ms_rust_analyse(in->target, threads, n, &state);
        free(threads);
        if (err)
                return err;
        ms_warnings_move(&in->rust_warnings, &state.warnings);
        for (size_t i = 0; !err && i < state.n_threads && i < n; i++)
                err = ms_panic_take(&state.threads[i],
                                    &report->threads[i].panic);
        if (!err)
                err = ms_rust_modules_take(&state, report);
        ms_rust_state_deinit(&state);
        return err;
}

static struct ms_error *report_phase(struct report_inputs *in,
                                     struct ms_report *report)
{
        if (!in->n_runtimes)
                return NULL;
        size_t n = report->n_threads;
        struct ms_py_stack_ref *refs = calloc(n ? n : 1, sizeof(*refs));
        if (!refs)
                return &ms_error_no_memory;
        for (size_t i = 0; i < n; i++) {
                refs[i].tid = report->threads[i].tid;
                refs[i].frames = report->threads[i].frames;
                refs[i].n_frames = report->threads[i].n_frames;
        }
        struct ms_py_lifecycle lc;
        ms_py_lifecycle_get(&in->runtimes[0], refs, n, &lc);
        free(refs);
        report->phase = ms_py_phase_name(lc.phase);
        report->finalize_step = ms_py_finalize_step_id(lc.step);
        report->finalize_step_inferred = lc.step_inferred;
        report->finalizing_tid = lc.finalizing_tid;
        report->exit_tid = lc.process_exiting ? lc.exit_tid : 0;
        report->phase_reason = strdup(lc.reason);
        return report->phase_reason ? NULL : &ms_error_no_memory;
}

/* ------------------------------------------------------------------------
 * Stage 6: merging
 * ------------------------------------------------------------------------ */

static enum ms_merge_mode merge_mode(enum ms_stack_mode mode)
{
        switch (mode) {
        case MS_STACK_PYTHON_ONLY:
                return MS_MERGE_PYTHON_ONLY;
        case MS_STACK_NATIVE_ONLY:
                return MS_MERGE_NATIVE_ONLY;
        case MS_STACK_MIXED:
                break;
        }
        return MS_MERGE_MIXED;
}

/* Move the Python frames of t into report frames (strings change owner). */
static struct ms_error *take_python_frames(struct ms_py_thread *t,
                                           struct ms_frame **frames,
                                           bool **is_entry, uint64_t **anchor)
{
        size_t n = t->n_frames ? t->n_frames : 1;
        *frames = calloc(n, sizeof(**frames));
        *is_entry = calloc(n, sizeof(**is_entry));
        *anchor = calloc(n, sizeof(**anchor));
        if (!*frames || !*is_entry || !*anchor) {
                free(*frames);
                free(*is_entry);
                free(*anchor);
                *frames = NULL;
                *is_entry = NULL;
                *anchor = NULL;
                return &ms_error_no_memory;
        }
        for (size_t i = 0; i < t->n_frames; i++) {
                struct ms_py_frame *p = &t->frames[i];
                struct ms_frame *f = &(*frames)[i];
                f->kind = MS_FRAME_PYTHON;
                f->language = MS_LANGUAGE_PYTHON;
                f->category = "python";
                f->function = p->function;
                f->qualname = p->qualname;
                f->file = p->file;
                f->line = p->line;
                f->native_index = -1;
                p->function = p->qualname = p->file = NULL;
                (*is_entry)[i] = p->is_entry;
                (*anchor)[i] = p->stack_anchor;
                if (!p->n_locals)
                        continue;
                f->locals = calloc(p->n_locals, sizeof(*f->locals));
                if (!f->locals) {
                        for (size_t k = 0; k <= i; k++)
                                ms_frame_deinit(&(*frames)[k]);
                        free(*frames);
                        free(*is_entry);
                        free(*anchor);
                        *frames = NULL;
                        *is_entry = NULL;
                        *anchor = NULL;
                        return &ms_error_no_memory;
                }
                for (size_t j = 0; j < p->n_locals; j++) {
                        f->locals[j].name = p->locals[j].name;
                        f->locals[j].value = p->locals[j].value;
                        f->locals[j].argument = p->locals[j].argument;
                        p->locals[j].name = p->locals[j].value = NULL;
                }
                f->n_locals = p->n_locals;
        }
        return NULL;
}

/* The merged frame that shows native frame native_index, or -1. */
static int merged_index(const struct ms_thread_report *t, int native_index)
{
        for (size_t i = 0; native_index >= 0 && i < t->n_frames; i++) {
                if (t->frames[i].kind == MS_FRAME_NATIVE &&
                    t->frames[i].native_index == native_index)
                        return (int)i;
        }
        return -1;
}

static struct ms_error *merge_thread(struct report_inputs *in, size_t i,
                                     struct ms_thread_report *out)
{
        struct ms_merge_input merge = {
                .native = out->frames,
                .n_native = out->n_frames,
        };
        out->frames = NULL;
        out->n_frames = 0;
        bool *is_entry = NULL;
        uint64_t *anchor = NULL;
        struct ms_error *err = NULL;
        if (in->py[i]) {
                err = take_python_frames(in->py[i], &merge.python, &is_entry,
                                         &anchor);
                if (!err) {
                        merge.n_python = in->py[i]->n_frames;
                        merge.python_is_entry = is_entry;
                        merge.python_anchor = anchor;
                }
        }
        /* Out of memory for the Python frames: native frames still. */
        enum ms_merge_mode mode =
                err ? MS_MERGE_NATIVE_ONLY : merge_mode(in->options->mode);
        struct ms_error *merge_err = ms_merge_thread(
                &merge, mode, in->options->all_frames, out->tid,
                &in->stack_warnings, &out->frames, &out->n_frames);
        free(is_entry);
        free(anchor);
        out->gil_wait_frame = merged_index(out, out->gil_wait_frame);
        if (out->panic)
                out->panic->site_index =
                        merged_index(out, out->panic->site_index);
        return err ? err : merge_err;
}

/* ------------------------------------------------------------------------
 * The whole
 * ------------------------------------------------------------------------ */

static struct ms_error *report_fill_target(struct ms_report *report,
                                           const struct ms_target *target)
{
        bool ok = true;
        report->target_kind = target->kind;
        report->core = ms_strdup_or_null(target->core_path, &ok);
        report->executable = ms_strdup_or_null(target->host_executable
                                                       ? target->host_executable
                                                       : target->executable,
                                               &ok);
        report->pid = target->pid;
        report->signo = target->signo;
        report->crashed_tid = target->signo ? target->signal_tid : 0;
        report->threads = calloc(target->n_threads ? target->n_threads : 1,
                                 sizeof(*report->threads));
        if (!report->threads)
                ok = false;
        return ok ? NULL : &ms_error_no_memory;
}

static void inputs_create_unwinder(struct report_inputs *in)
{
        struct ms_error *err = ms_unwinder_create(in->target, &in->unwinder);
        if (!err)
                ms_unwinder_set_separate_debuginfo(
                        in->unwinder, !in->options->skip_debug_files);
        if (err) {
                /* Without an unwinder the threads are still worth listing. */
                ms_warnings_add(&in->warnings, "no native stacks: %s",
                                err->message);
                ms_error_destroy(err);
                in->unwinder = NULL;
        }
        struct ms_error *rules_error = NULL;
        ms_frame_rules(&rules_error);
        if (rules_error)
                ms_warnings_add(&in->warnings,
                                "frame rules: %s (the built-in rules are used)",
                                rules_error->message);
}

static void inputs_deinit(struct report_inputs *in)
{
        for (size_t r = 0; in->matched && r < in->n_runtimes; r++)
                free(in->matched[r]);
        free(in->matched);
        free(in->py);
        free(in->py_runtime);
        for (size_t i = 0; in->native && i < in->target->n_threads; i++)
                ms_native_stack_deinit(&in->native[i]);
        free(in->native);
        ms_py_namespaces_free(in->namespaces, in->n_namespaces);
        ms_py_runtimes_destroy(in->runtimes, in->n_runtimes);
        ms_unwinder_destroy(in->unwinder);
        ms_warnings_deinit(&in->warnings);
        ms_warnings_deinit(&in->python_warnings);
        ms_warnings_deinit(&in->rust_warnings);
        ms_warnings_deinit(&in->stack_warnings);
}

/* Stop a target that runs (a live process) for as short a time as
 * possible: its modules are loaded before. Files mapped or unmapped
 * meanwhile call for a new unwinder, made while stopped. */
static struct ms_error *inputs_freeze(struct report_inputs *in, bool *froze)
{
        bool changed = false;
        if (in->unwinder && ms_target_runs(in->target))
                ms_unwinder_load_modules(in->unwinder);
        struct ms_error *err = ms_target_freeze(in->target, froze, &changed);
        if (!err && changed) {
                ms_unwinder_destroy(in->unwinder);
                inputs_create_unwinder(in);
        }
        return err;
}

/* Stages 1-3: everything that reads the target. */
static struct ms_error *read_target(struct report_inputs *in,
                                    struct ms_report *report, bool stopped)
{
        struct ms_target *target = in->target;
        struct ms_error *err = report_fill_target(report, target);
        if (err)
                return err;
        in->native = calloc(target->n_threads ? target->n_threads : 1,
                            sizeof(*in->native));
        if (!in->native)
                return &ms_error_no_memory;
        /* A stopped process waits for us: DWARF comes after it goes on.
         * Other targets are symbolized in one pass. */
        if (in->unwinder)
                ms_unwinder_set_names_only(in->unwinder, stopped);
        size_t first = crashed_index(target);
        if (target->n_threads)
                err = report_native_thread(report, in, first);
        for (size_t i = 0; !err && i < target->n_threads; i++) {
                if (i != first)
                        err = report_native_thread(report, in, i);
        }
        if (!err)
                err = inputs_read_python(in, report);
        if (!err)
                err = report_rust(in, report);
        return err;
}

/* Stages 4-5: what is known from the reads. */
static struct ms_error *finish_threads(struct report_inputs *in,
                                       struct ms_report *report)
{
        struct ms_error *err = NULL;
        for (size_t i = 0; !err && i < report->n_threads; i++)
                err = report_debuginfo(in, i, &report->threads[i]);
        for (size_t i = 0; !err && i < report->n_threads; i++)
                err = report_python_thread(in, i, &report->threads[i]);
        if (!err)
                err = report_interpreters(in, report);
        if (!err)
                err = report_phase(in, report);
        if (!err)
                err = ms_report_diagnose(report, in->py);
        if (!err)
                err = ms_report_diagnose_asyncio(report);
        return err;
}

static struct ms_error *build(struct report_inputs *in,
                              struct ms_report *report)
{
        struct ms_target *target = in->target;
        bool froze = false;
        inputs_create_unwinder(in);
        struct ms_error *err = inputs_freeze(in, &froze);
        if (!err)
                err = read_target(in, report, froze);
        if (froze)
                ms_target_thaw(target);
        if (!err)
                err = finish_threads(in, report);
        /* Stage 6. */
        for (size_t i = 0; !err && i < report->n_threads; i++) {
                err = keep_native(report, i);
                if (!err)
                        err = keep_python_names(in, report, i);
                if (!err)
                        err = merge_thread(in, i, &report->threads[i]);
        }
        if (!err) {
                struct report_impl *impl = (struct report_impl *)report;
                impl->namespaces = in->namespaces;
                impl->n_namespaces = in->n_namespaces;
                in->namespaces = NULL;
                in->n_namespaces = 0;
        }
        if (err)
                return err;
        inputs_warn_unmatched(in);
        err = report_add_warnings(report, &target->warnings, SECTIONS_ALL);
        if (!err)
                err = report_add_warnings(report, &in->warnings, SECTIONS_ALL);
        if (!err)
                err = report_add_warnings(report, &in->python_warnings,
                                          SECTIONS_PYTHON);
        if (!err)
                err = report_add_warnings(report, &in->rust_warnings,
                                          SECTIONS_RUST);
        if (!err)
                err = report_add_warnings(report, &in->stack_warnings,
                                          SECTIONS_STACKS);
        return err;
}

struct ms_error *ms_report_create(struct ms_target *target,
                                  const struct ms_report_options *options,
                                  struct ms_report **ret)
{
        static const struct ms_report_options defaults;
        if (!target || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_report_create: no target");
        struct report_inputs in = {
                .target = target,
                .options = options ? options : &defaults,
        };
        in.max_frames = in.options->max_frames ? in.options->max_frames
                                               : DEFAULT_MAX_FRAMES;
        struct report_impl *impl = calloc(1, sizeof(*impl));
        if (!impl)
                return &ms_error_no_memory;
        struct ms_report *report = &impl->report;
        struct ms_error *err = build(&in, report);
        inputs_deinit(&in);
        if (err) {
                ms_report_destroy(report);
                return err;
        }
        *ret = report;
        return NULL;
}

void ms_report_destroy(struct ms_report *report)
{
        if (!report)
                return;
        for (size_t i = 0; i < report->n_threads; i++) {
                struct ms_thread_report *t = &report->threads[i];
                for (size_t j = 0; j < t->n_frames; j++)
                        ms_frame_deinit(&t->frames[j]);
                free(t->frames);
                free(t->name);
                free(t->unwind_error);
                free(t->python_error);
                ms_exception_chain_free(&t->pending);
                ms_exception_chain_free(&t->handled);
                ms_panic_free(t->panic);
        }
        free(report->threads);
        for (size_t i = 0; i < report->n_warnings; i++)
                free(report->warnings[i]);
        free(report->warnings);
        free(report->warning_sections);
        free(report->core);
        free(report->executable);
        free(report->python_version);
        free(report->python_runtime_module);
        free(report->interpreters);
        free(report->phase_reason);
        for (size_t i = 0; i < report->n_rust_modules; i++) {
                free(report->rust_modules[i].path);
                free(report->rust_modules[i].rustc_version);
                free(report->rust_modules[i].count_unknown_reason);
        }
        free(report->rust_modules);
        ms_diagnoses_free(report);
        ms_asyncio_free(report);
        free_native(report);
        free(report);
}
