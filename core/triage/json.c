/* A triage as one element of the "results" array of a mixstack-triage/1
 * document (docs/triage.md). */
#include <string.h>

#include "output/json_writer.h"
#include "output/printers.h"
#include "triage/internal.h"
#include "triage/json.h"

void ms_triage_json_source(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "source");
        if (r->target_kind == MS_TARGET_CORE) {
                ms_json_string(json, r->core);
        } else {
                char pid[32];
                snprintf(pid, sizeof(pid), "pid %d", (int)r->pid);
                ms_json_string(json, pid);
        }
}

static void json_target(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "target");
        ms_json_begin_object(json);
        ms_json_key_string(json, "kind",
                           r->target_kind == MS_TARGET_CORE  ? "core"
                           : r->target_kind == MS_TARGET_PID ? "pid"
                                                             : "debugger");
        ms_json_key_string(json, "core", r->core);
        ms_json_key_string(json, "executable", r->executable);
        ms_json_key_int_or_null(json, "pid", r->pid != 0, r->pid);
        ms_json_key_string(json, "python", r->python_version);
        ms_json_end_object(json);
}

static void json_signal(struct ms_json *json, int signo)
{
        ms_json_key(json, "signal");
        if (!signo) {
                ms_json_null(json);
                return;
        }
        ms_json_begin_object(json);
        ms_json_key(json, "number");
        ms_json_int(json, signo);
        ms_json_key_string(json, "name", ms_signal_name(signo));
        ms_json_end_object(json);
}

static void json_signature(struct ms_json *json, const struct ms_triage *t)
{
        ms_json_key_string(json, "signature", t->signature);
        ms_json_key_string(json, "signature_id", t->signature_id);
        ms_json_key(json, "signature_frames");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->n_signature_frames; i++) {
                const struct ms_signature_frame *f = &t->signature_frames[i];
                ms_json_begin_object(json);
                ms_json_key_string(json, "text", f->text);
                ms_json_key(json, "tid");
                ms_json_int(json, t->report->threads[f->thread].tid);
                ms_json_key(json, "index");
                /* An awaiting task's frame is no frame of the thread. */
                if (f->frame == SIZE_MAX)
                        ms_json_null(json);
                else
                        ms_json_int(json, (int64_t)f->frame);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
}

static void json_crash(struct ms_json *json, const struct ms_triage *t)
{
        ms_json_key(json, "crash");
        if (t->crash_frame < 0) {
                ms_json_null(json);
                return;
        }
        const struct ms_thread_report *th = &t->report->threads[t->threads[0]];
        const struct ms_frame *f = &th->frames[t->crash_frame];
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, th->tid);
        ms_json_key(json, "index");
        ms_json_int(json, t->crash_frame);
        ms_json_key_string(json, "function", ms_triage_frame_name(f));
        ms_json_key_string(json, "module", t->crash_module);
        ms_json_key_string(json, "file", f->file);
        ms_json_key_int_or_null(json, "line", f->line > 0, f->line);
        ms_json_end_object(json);
}

static void json_panic(struct ms_json *json, const struct ms_triage *t)
{
        ms_json_key(json, "panic");
        const struct ms_panic *p =
                t->n_threads ? t->report->threads[t->threads[0]].panic : NULL;
        if (!p) {
                ms_json_null(json);
                return;
        }
        ms_json_begin_object(json);
        ms_json_key_string(json, "kind", p->kind);
        ms_json_key(json, "panicking");
        ms_json_bool(json, p->panicking);
        ms_json_key_string(json, "message", p->message);
        ms_json_key_string(json, "site_function", p->site_function);
        ms_json_key_string(json, "site_file", p->site_file);
        ms_json_key_int_or_null(json, "site_line", p->site_line > 0,
                                p->site_line);
        ms_json_key_string(json, "file", p->location_file);
        ms_json_key_int_or_null(json, "line", p->location_line > 0,
                                p->location_line);
        ms_json_key_int_or_null(json, "column", p->location_column > 0,
                                p->location_column);
        ms_json_end_object(json);
}

static void json_exception(struct ms_json *json, pid_t tid, const char *state,
                           const struct ms_exception *e)
{
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, tid);
        ms_json_key_string(json, "state", state);
        ms_json_key_string(json, "type", e->type);
        ms_json_key_string(json, "message", e->message);
        ms_json_key(json, "panic_exception");
        ms_json_bool(json, e->is_panic_exception);
        ms_json_end_object(json);
}

static void json_exceptions(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "exceptions");
        ms_json_begin_array(json);
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *th = &r->threads[i];
                if (th->pending.n)
                        json_exception(json, th->tid, "pending",
                                       &th->pending.items[0]);
                if (th->handled.n)
                        json_exception(json, th->tid, "handled",
                                       &th->handled.items[0]);
        }
        ms_json_end_array(json);
}

static void json_phase(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "phase");
        if (!r->phase) {
                ms_json_null(json);
                return;
        }
        ms_json_begin_object(json);
        ms_json_key_string(json, "phase", r->phase);
        ms_json_key_string(json, "finalize_step", r->finalize_step);
        ms_json_end_object(json);
}

void ms_triage_json(const struct ms_triage *t, struct ms_json *json)
{
        ms_json_begin_object(json);
        ms_triage_json_source(json, t->report);
        json_target(json, t->report);
        ms_json_key_string(json, "kind", t->kind);
        ms_json_key_string(json, "reason", t->reason);
        json_signature(json, t);
        json_signal(json, t->report->signo);
        json_crash(json, t);
        json_panic(json, t);
        json_exceptions(json, t->report);
        json_phase(json, t->report);
        ms_json_diagnoses(json, t->report);
        ms_triage_json_threads(json, t);
        ms_json_key(json, "warnings");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->n_warnings; i++)
                ms_json_string(json, t->warnings[i]);
        for (size_t i = 0; i < t->report->n_warnings; i++)
                ms_json_string(json, t->report->warnings[i]);
        ms_json_end_array(json);
        ms_json_end_object(json);
}
