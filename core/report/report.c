/*
 * Building the one report model from a target: unwind every thread, put the
 * crashing thread first, and carry the target's warnings along.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "merge/rules.h"
#include "target/target.h"
#include "unwind/unwind.h"

#define DEFAULT_MAX_FRAMES 1024

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

static struct ms_error *report_thread(struct ms_report *report,
                                      struct ms_target *target,
                                      struct ms_unwinder *unwinder,
                                      size_t index, unsigned max_frames)
{
        const struct ms_target_thread *t = &target->threads[index];
        struct ms_thread_report *out = &report->threads[report->n_threads];
        bool ok = true;
        memset(out, 0, sizeof(*out));
        out->tid = t->tid;
        out->name = ms_strdup_or_null(t->name, &ok);
        out->crashed = target->signo && t->tid == target->signal_tid;
        out->interpreter_id = -1;
        if (!ok)
                return &ms_error_no_memory;
        report->n_threads++;
        if (!unwinder)
                return NULL;

        struct ms_native_stack stack = {0};
        struct ms_error *err = ms_unwind_thread(unwinder, index, max_frames,
                                                &stack);
        if (err)
                return err;
        const struct ms_rules *rules = ms_frame_rules(NULL);
        for (size_t i = 0; i < stack.n_frames; i++) {
                stack.frames[i].category =
                        ms_frame_category(rules, &stack.frames[i]);
                stack.frames[i].native_index = (int)i;
        }
        out->frames = stack.frames;
        out->n_frames = stack.n_frames;
        out->unwind_error = stack.error;
        return NULL;
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

struct ms_error *ms_report_create(struct ms_target *target,
                                  const struct ms_report_options *options,
                                  struct ms_report **ret)
{
        if (!target || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_report_create: no target");
        unsigned max_frames = options && options->max_frames
                                      ? options->max_frames
                                      : DEFAULT_MAX_FRAMES;
        struct ms_report *report = calloc(1, sizeof(*report));
        if (!report)
                return &ms_error_no_memory;
        struct ms_error *err = report_fill_target(report, target);
        if (err)
                goto fail;
        report->threads = calloc(target->n_threads ? target->n_threads : 1,
                                 sizeof(*report->threads));
        if (!report->threads) {
                err = &ms_error_no_memory;
                goto fail;
        }

        struct ms_unwinder *unwinder = NULL;
        err = ms_unwinder_create(target, &unwinder);
        if (err) {
                /* Without an unwinder the threads are still worth listing. */
                ms_warnings_add(&target->warnings, "no native stacks: %s",
                                err->message);
                ms_error_destroy(err);
                err = NULL;
                unwinder = NULL;
        }

        size_t first = crashed_index(target);
        if (target->n_threads)
                err = report_thread(report, target, unwinder, first,
                                    max_frames);
        for (size_t i = 0; !err && i < target->n_threads; i++) {
                if (i != first)
                        err = report_thread(report, target, unwinder, i,
                                            max_frames);
        }
        ms_unwinder_destroy(unwinder);
        if (!err)
                err = report_add_warnings(report, &target->warnings);
        if (err)
                goto fail;
        *ret = report;
        return NULL;

fail:
        ms_report_destroy(report);
        return err;
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
