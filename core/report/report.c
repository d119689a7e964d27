/*
 * Building the one report model from a target: unwind every thread, read
 * the Python runtimes, merge each thread's native and Python stacks, put the
 * crashing thread first, and carry every warning along.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cpython/cpython.h"
#include "merge/merge.h"
#include "merge/rules.h"
#include "target/target.h"
#include "unwind/unwind.h"

#define DEFAULT_MAX_FRAMES 1024

/* Everything a report is built from, gathered before the threads. */
struct report_inputs {
        struct ms_target *target;
        const struct ms_report_options *options;
        unsigned max_frames;
        struct ms_unwinder *unwinder;
        struct ms_py_runtime *runtimes;
        size_t n_runtimes;
        /* Which Python threads were matched to an OS thread. */
        bool **matched;
        struct ms_warnings warnings;
};

static struct ms_error *report_add_warnings(struct ms_report *report,
                                            const struct ms_warnings *w)
{
        if (!w->n)
                return NULL;
        char **items = realloc(report->warnings,
                               (report->n_warnings + w->n) * sizeof(*items));
        if (!items)
                return &ms_error_no_memory;
        report->warnings = items;
        for (size_t i = 0; i < w->n; i++) {
                char *copy = strdup(w->items[i]);
                if (!copy)
                        return &ms_error_no_memory;
                report->warnings[report->n_warnings++] = copy;
        }
        return NULL;
}

/* Index of the thread to print first: the one the signal hit. */
static size_t crashed_index(const struct ms_target *target)
{
        for (size_t i = 0; target->signal_tid && i < target->n_threads; i++) {
                if (target->threads[i].tid == target->signal_tid)
                        return i;
        }
        return 0;
}

/* The Python thread running on OS thread tid, or NULL. */
static struct ms_py_thread *find_py_thread(struct report_inputs *in,
                                           pid_t tid)
{
        for (size_t r = 0; tid && r < in->n_runtimes; r++) {
                struct ms_py_runtime *rt = &in->runtimes[r];
                for (size_t i = 0; i < rt->n_threads; i++) {
                        if (rt->threads[i].native_tid == tid) {
                                in->matched[r][i] = true;
                                return &rt->threads[i];
                        }
                }
        }
        return NULL;
}

/* Move the Python frames of t into report frames (strings change owner). */
static struct ms_error *take_python_frames(struct ms_py_thread *t,
                                           struct ms_frame **frames,
                                           bool **is_entry)
{
        *frames = calloc(t->n_frames ? t->n_frames : 1, sizeof(**frames));
        *is_entry = calloc(t->n_frames ? t->n_frames : 1, sizeof(**is_entry));
        if (!*frames || !*is_entry) {
                free(*frames);
                free(*is_entry);
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
        }
        return NULL;
}

static void classify_native(struct ms_native_stack *stack)
{
        const struct ms_rules *rules = ms_frame_rules(NULL);
        for (size_t i = 0; i < stack->n_frames; i++) {
                stack->frames[i].category =
                        ms_frame_category(rules, &stack->frames[i]);
                stack->frames[i].native_index = (int)i;
        }
}

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

static struct ms_error *report_stack(struct report_inputs *in, size_t index,
                                     struct ms_thread_report *out)
{
        struct ms_native_stack stack = {0};
        if (in->unwinder) {
                struct ms_error *err = ms_unwind_thread(
                        in->unwinder, index, in->max_frames, &stack);
                if (err)
                        return err;
                classify_native(&stack);
        }
        out->unwind_error = stack.error;

        struct ms_merge_input merge = {
                .native = stack.frames,
                .n_native = stack.n_frames,
        };
        bool *is_entry = NULL;
        struct ms_py_thread *py = find_py_thread(in, out->tid);
        if (py) {
                out->python = true;
                out->interpreter_id = py->interp_id;
                if (py->error) {
                        out->python_error = strdup(py->error);
                        if (!out->python_error)
                                goto no_memory;
                }
                if (take_python_frames(py, &merge.python, &is_entry))
                        goto no_memory;
                merge.n_python = py->n_frames;
                merge.python_is_entry = is_entry;
        }
        struct ms_error *err = ms_merge_thread(
                &merge, merge_mode(in->options->mode),
                in->options->all_frames, out->tid, &in->warnings,
                &out->frames, &out->n_frames);
        free(is_entry);
        return err;

no_memory:
        merge.python = NULL;
        merge.n_python = 0;
        ms_merge_thread(&merge, MS_MERGE_NATIVE_ONLY, true, out->tid,
                        &in->warnings, &out->frames, &out->n_frames);
        return &ms_error_no_memory;
}

static struct ms_error *report_thread(struct ms_report *report,
                                      struct report_inputs *in, size_t index)
{
        const struct ms_target_thread *t = &in->target->threads[index];
        struct ms_thread_report *out = &report->threads[report->n_threads];
        bool ok = true;
        memset(out, 0, sizeof(*out));
        out->tid = t->tid;
        out->name = ms_strdup_or_null(t->name, &ok);
        out->crashed = in->target->signo && t->tid == in->target->signal_tid;
        out->interpreter_id = -1;
        report->n_threads++;
        if (!ok)
                return &ms_error_no_memory;
        return report_stack(in, index, out);
}

static struct ms_error *report_fill_target(struct ms_report *report,
                                           const struct ms_target *target)
{
        bool ok = true;
        report->target_kind = target->kind;
        report->core = ms_strdup_or_null(target->core_path, &ok);
        report->executable = ms_strdup_or_null(
                target->host_executable ? target->host_executable
                                        : target->executable,
                &ok);
        report->pid = target->pid;
        report->signo = target->signo;
        report->crashed_tid = target->signo ? target->signal_tid : 0;
        return ok ? NULL : &ms_error_no_memory;
}

/* Find the Python runtimes and say which of their threads no OS thread
 * runs. */
static struct ms_error *inputs_read_python(struct report_inputs *in,
                                           struct ms_report *report)
{
        struct ms_py_find_options find = {
                .exhaustive = in->options->exhaustive,
        };
        struct ms_error *err = ms_py_runtimes_find(
                in->target, in->unwinder, &find, &in->runtimes,
                &in->n_runtimes);
        if (err)
                return err;
        in->matched = calloc(in->n_runtimes ? in->n_runtimes : 1,
                             sizeof(*in->matched));
        if (!in->matched)
                return &ms_error_no_memory;
        for (size_t r = 0; r < in->n_runtimes; r++) {
                struct ms_py_runtime *rt = &in->runtimes[r];
                in->matched[r] = calloc(rt->n_threads ? rt->n_threads : 1,
                                        sizeof(bool));
                if (!in->matched[r])
                        return &ms_error_no_memory;
                ms_warnings_move(&in->warnings, &rt->warnings);
        }
        if (in->n_runtimes) {
                report->python_version =
                        strdup(in->runtimes[0].version_string
                                       ? in->runtimes[0].version_string
                                       : "unknown");
                if (!report->python_version)
                        return &ms_error_no_memory;
                report->python_free_threaded = in->runtimes[0].free_threaded;
        }
        if (in->n_runtimes > 1)
                ms_warnings_add(&in->warnings,
                                "%zu Python runtimes in this process; the "
                                "version shown is the first one's",
                                in->n_runtimes);
        return NULL;
}

static void inputs_warn_unmatched(struct report_inputs *in)
{
        for (size_t r = 0; r < in->n_runtimes; r++) {
                struct ms_py_runtime *rt = &in->runtimes[r];
                for (size_t i = 0; i < rt->n_threads; i++) {
                        if (in->matched[r][i])
                                continue;
                        ms_warnings_add(&in->warnings,
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

static void inputs_deinit(struct report_inputs *in)
{
        for (size_t r = 0; in->matched && r < in->n_runtimes; r++)
                free(in->matched[r]);
        free(in->matched);
        ms_py_runtimes_destroy(in->runtimes, in->n_runtimes);
        ms_unwinder_destroy(in->unwinder);
        ms_warnings_deinit(&in->warnings);
}

static void inputs_create_unwinder(struct report_inputs *in)
{
        struct ms_error *err = ms_unwinder_create(in->target, &in->unwinder);
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
        struct ms_report *report = calloc(1, sizeof(*report));
        if (!report)
                return &ms_error_no_memory;
        struct ms_error *err = report_fill_target(report, target);
        if (!err) {
                report->threads =
                        calloc(target->n_threads ? target->n_threads : 1,
                               sizeof(*report->threads));
                if (!report->threads)
                        err = &ms_error_no_memory;
        }
        if (!err) {
                inputs_create_unwinder(&in);
                err = inputs_read_python(&in, report);
        }
        size_t first = crashed_index(target);
        if (!err && target->n_threads)
                err = report_thread(report, &in, first);
        for (size_t i = 0; !err && i < target->n_threads; i++) {
                if (i != first)
                        err = report_thread(report, &in, i);
        }
        if (!err) {
                inputs_warn_unmatched(&in);
                err = report_add_warnings(report, &target->warnings);
        }
        if (!err)
                err = report_add_warnings(report, &in.warnings);
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
        }
        free(report->threads);
        for (size_t i = 0; i < report->n_warnings; i++)
                free(report->warnings[i]);
        free(report->warnings);
        free(report->core);
        free(report->executable);
        free(report->python_version);
        free(report);
}
