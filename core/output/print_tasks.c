/* asyncio loops and tasks: text and JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "output/json_writer.h"
#include "output/printers.h"
#include "report/boundary.h"

/* Tasks listed per loop in text; JSON lists every task read. */
#define TEXT_MAX_TASKS 1000

static void text_task_name(const struct ms_report *r, uint64_t id, FILE *out)
{
        const struct ms_asyncio_task *t = ms_asyncio_task_find(r, id);
        fputc('\'', out);
        ms_text_write_safe(out, t && t->name ? t->name : "?");
        fprintf(out, "' (0x%" PRIx64 ")", id);
}

static void text_task_list(const struct ms_report *r, const char *label,
                           const uint64_t *ids, size_t n, FILE *out)
{
        if (!n)
                return;
        fprintf(out, "      %s", label);
        for (size_t i = 0; i < n && i < 20; i++) {
                fputs(i ? ", " : " ", out);
                text_task_name(r, ids[i], out);
        }
        if (n > 20)
                fprintf(out, " and %zu more", n - 20);
        fputc('\n', out);
}

static void text_task(const struct ms_report *r,
                      const struct ms_asyncio_task *t, FILE *out)
{
        fprintf(out, "    task 0x%" PRIx64 " '", t->id);
        ms_text_write_safe(out, t->name ? t->name : "?");
        fprintf(out, "' %s%s\n", t->state, t->running ? " (running)" : "");
        if (t->awaiting_kind) {
                fputs("      awaits ", out);
                if (t->awaiting_task) {
                        fputs("task ", out);
                        text_task_name(r, t->awaiting_task, out);
                } else {
                        if (!strcmp(t->awaiting_kind, "rust-future"))
                                fprintf(out, "a Rust future (%s): ",
                                        t->rust_detail ? t->rust_detail
                                                       : "PyO3");
                        else
                                fprintf(out, "%s ", t->awaiting_kind);
                        ms_text_write_safe(
                                out, t->awaiting_type ? t->awaiting_type : "?");
                        fprintf(out, " (0x%" PRIx64 ")", t->awaiting_object);
                }
                fputc('\n', out);
        }
        text_task_list(r, "through it, tasks:", t->children, t->n_children,
                       out);
        text_task_list(r, "awaited by:", t->awaited_by, t->n_awaited_by, out);
        for (size_t i = 0; i < t->n_frames; i++) {
                const struct ms_task_frame *f = &t->frames[i];
                fprintf(out, "      #%-3zu ", i);
                ms_text_write_safe(
                        out, f->qualname ? f->qualname
                                         : (f->function ? f->function : "??"));
                fputs(" (", out);
                ms_text_write_safe(out, f->file ? f->file : "?");
                fprintf(out, ":%d)\n", f->line);
        }
}

void ms_text_tasks(const struct ms_report *r, FILE *out)
{
        if (!r->n_asyncio_loops) {
                fputs("asyncio: no tasks\n", out);
                return;
        }
        for (size_t i = 0; i < r->n_asyncio_loops; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                fprintf(out, "asyncio loop 0x%" PRIx64, lp->address);
                if (lp->tid)
                        fprintf(out, " on thread %d", (int)lp->tid);
                else
                        fputs(" (no thread runs it)", out);
                fprintf(out, ": %zu pending, %zu done, %zu cancelled",
                        lp->n_tasks, lp->n_done, lp->n_cancelled);
                if (lp->running_task) {
                        fputs("; running ", out);
                        text_task_name(r, lp->running_task, out);
                }
                fputc('\n', out);
                for (size_t j = 0; j < lp->n_tasks && j < TEXT_MAX_TASKS; j++)
                        text_task(r, &lp->tasks[j], out);
                if (lp->n_tasks > TEXT_MAX_TASKS)
                        fprintf(out,
                                "    ... %zu more tasks (--json lists "
                                "them all)\n",
                                lp->n_tasks - TEXT_MAX_TASKS);
        }
        for (size_t i = 0; i < r->n_async_threads; i++) {
                const struct ms_async_thread *a = &r->async_threads[i];
                fprintf(out, "%s%d %s (%s)",
                        i ? ", " : "Rust async threads: ", (int)a->tid, a->role,
                        a->state);
                if (i + 1 == r->n_async_threads)
                        fputc('\n', out);
        }
        if (r->asyncio_left_out)
                fprintf(out,
                        "asyncio: %zu tasks or lists left out by the "
                        "bounds of the walk\n",
                        r->asyncio_left_out);
}

static void json_ids(struct ms_json *json, const char *key, const uint64_t *ids,
                     size_t n)
{
        ms_json_key(json, key);
        ms_json_begin_array(json);
        for (size_t i = 0; i < n; i++)
                ms_json_address(json, ids[i]);
        ms_json_end_array(json);
}

static void json_address_or_null(struct ms_json *json, const char *key,
                                 uint64_t v)
{
        ms_json_key(json, key);
        if (v)
                ms_json_address(json, v);
        else
                ms_json_null(json);
}

static void json_task(struct ms_json *json, const struct ms_asyncio_task *t)
{
        ms_json_begin_object(json);
        json_address_or_null(json, "id", t->id);
        ms_json_key_string(json, "name", t->name);
        ms_json_key_string(json, "state", t->state);
        ms_json_key(json, "running");
        ms_json_bool(json, t->running);
        ms_json_key(json, "frames");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->n_frames; i++) {
                const struct ms_task_frame *f = &t->frames[i];
                ms_json_begin_object(json);
                ms_json_key_string(json, "function", f->function);
                ms_json_key_string(json, "qualname",
                                   f->qualname ? f->qualname : f->function);
                ms_json_key_string(json, "file", f->file);
                ms_json_key_int_or_null(json, "line", f->line > 0, f->line);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
        ms_json_key(json, "awaiting");
        if (t->awaiting_kind) {
                ms_json_begin_object(json);
                ms_json_key_string(json, "kind", t->awaiting_kind);
                json_address_or_null(json, "task", t->awaiting_task);
                ms_json_key_string(json, "type", t->awaiting_type);
                json_address_or_null(json, "object", t->awaiting_object);
                ms_json_key_string(json, "rust", t->rust_detail);
                json_ids(json, "children", t->children, t->n_children);
                ms_json_end_object(json);
        } else {
                ms_json_null(json);
        }
        json_ids(json, "awaited_by", t->awaited_by, t->n_awaited_by);
        ms_json_end_object(json);
}

void ms_json_asyncio(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "asyncio");
        ms_json_begin_array(json);
        for (size_t i = 0; i < r->n_asyncio_loops; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                ms_json_begin_object(json);
                json_address_or_null(json, "loop", lp->address);
                ms_json_key_int_or_null(json, "tid", lp->tid != 0, lp->tid);
                ms_json_key_int_or_null(json, "interpreter",
                                        lp->interpreter_id >= 0,
                                        lp->interpreter_id);
                json_address_or_null(json, "running_task", lp->running_task);
                ms_json_key_int_or_null(json, "done", true,
                                        (int64_t)lp->n_done);
                ms_json_key_int_or_null(json, "cancelled", true,
                                        (int64_t)lp->n_cancelled);
                ms_json_key(json, "tasks");
                ms_json_begin_array(json);
                for (size_t j = 0; j < lp->n_tasks; j++)
                        json_task(json, &lp->tasks[j]);
                ms_json_end_array(json);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
        ms_json_key_int_or_null(json, "asyncio_left_out", true,
                                (int64_t)r->asyncio_left_out);
        ms_json_key(json, "async_threads");
        ms_json_begin_array(json);
        for (size_t i = 0; i < r->n_async_threads; i++) {
                const struct ms_async_thread *a = &r->async_threads[i];
                ms_json_begin_object(json);
                ms_json_key(json, "tid");
                ms_json_int(json, a->tid);
                ms_json_key_string(json, "role", a->role);
                ms_json_key_string(json, "state", a->state);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
}

bool ms_diagnosis_is_asyncio(const struct ms_diagnosis *d)
{
        return d->kind && (!strcmp(d->kind, "await-cycle") ||
                           !strcmp(d->kind, "rust-future-stalled") ||
                           !strcmp(d->kind, "loop-blocked"));
}

void ms_text_asyncio_diagnoses(const struct ms_report *r, FILE *out)
{
        for (size_t i = 0; i < r->n_diagnoses; i++) {
                if (!ms_diagnosis_is_asyncio(&r->diagnoses[i]))
                        continue;
                fputs("diagnosis: ", out);
                ms_text_write_safe(out, r->diagnoses[i].message);
                fputc('\n', out);
        }
}
