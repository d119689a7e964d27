/* The report as one JSON document: schema "mixstack/1" (docs/json-schema.md).
 */
#include "output/json_writer.h"
#include "output/printers.h"

static const char *target_kind_name(enum ms_target_kind kind)
{
        switch (kind) {
        case MS_TARGET_CORE:
                return "core";
        case MS_TARGET_PID:
                return "pid";
        case MS_TARGET_DEBUGGER:
                return "debugger";
        }
        return "unknown";
}

static void json_target(struct ms_json *json, const struct ms_report *report)
{
        ms_json_key(json, "target");
        ms_json_begin_object(json);
        ms_json_key_string(json, "kind", target_kind_name(report->target_kind));
        ms_json_key_string(json, "core", report->core);
        ms_json_key_string(json, "executable", report->executable);
        ms_json_key(json, "pid");
        if (report->pid)
                ms_json_int(json, report->pid);
        else
                ms_json_null(json);
        ms_json_key(json, "signal");
        if (report->signo) {
                ms_json_begin_object(json);
                ms_json_key(json, "number");
                ms_json_int(json, report->signo);
                ms_json_key_string(json, "name", ms_signal_name(report->signo));
                ms_json_end_object(json);
        } else {
                ms_json_null(json);
        }
        ms_json_key(json, "crashed_tid");
        if (report->crashed_tid)
                ms_json_int(json, report->crashed_tid);
        else
                ms_json_null(json);
        ms_json_end_object(json);
}

static void json_frame(struct ms_json *json, const struct ms_frame *f,
                       size_t index)
{
        ms_json_begin_object(json);
        ms_json_key(json, "index");
        ms_json_int(json, (int64_t)index);
        ms_json_key_string(json, "kind",
                           f->kind == MS_FRAME_PYTHON ? "python" : "native");
        ms_json_key(json, "pc");
        ms_json_address(json, f->pc);
        ms_json_key_string(json, "module", f->module);
        ms_json_key_string(json, "function", f->function);
        ms_json_key_string(json, "raw_symbol", f->raw_symbol);
        ms_json_key(json, "offset");
        ms_json_address(json, f->offset);
        ms_json_key_string(json, "file", f->file);
        ms_json_key(json, "line");
        if (f->line > 0)
                ms_json_int(json, f->line);
        else
                ms_json_null(json);
        ms_json_key(json, "column");
        if (f->column > 0)
                ms_json_int(json, f->column);
        else
                ms_json_null(json);
        ms_json_key(json, "inlined");
        ms_json_bool(json, f->inlined);
        ms_json_key(json, "activation");
        ms_json_bool(json, f->is_activation);
        ms_json_key_string(json, "language", ms_language_name(f->language));
        ms_json_key_string(json, "category", f->category);
        if (f->kind == MS_FRAME_PYTHON)
                ms_json_key_string(json, "qualname", f->qualname);
        ms_json_key(json, "native_index");
        if (f->native_index >= 0)
                ms_json_int(json, f->native_index);
        else
                ms_json_null(json);
        if (f->locals) {
                ms_json_key(json, "locals");
                ms_json_begin_array(json);
                for (size_t i = 0; i < f->n_locals; i++) {
                        ms_json_begin_object(json);
                        ms_json_key_string(json, "name", f->locals[i].name);
                        ms_json_key_string(json, "value", f->locals[i].value);
                        ms_json_key(json, "argument");
                        ms_json_bool(json, f->locals[i].argument);
                        ms_json_end_object(json);
                }
                ms_json_end_array(json);
        }
        ms_json_end_object(json);
}

static void json_exception(struct ms_json *json, const struct ms_exception *e)
{
        ms_json_begin_object(json);
        ms_json_key_string(json, "type", e->type);
        ms_json_key_string(json, "message", e->message);
        ms_json_key(json, "message_truncated");
        ms_json_bool(json, e->message_truncated);
        ms_json_key(json, "panic_exception");
        ms_json_bool(json, e->is_panic_exception);
        ms_json_key(json, "traceback");
        ms_json_begin_array(json);
        for (size_t i = 0; i < e->n_traceback; i++) {
                ms_json_begin_object(json);
                ms_json_key_string(json, "file", e->traceback[i].file);
                ms_json_key_int_or_null(json, "line", e->traceback[i].line > 0,
                                        e->traceback[i].line);
                ms_json_key_string(json, "function", e->traceback[i].function);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
        ms_json_key_string(json, "error", e->error);
}

/* An exception with its chain, or null. */
static void json_chain(struct ms_json *json, const char *key,
                       const struct ms_exception_chain *chain)
{
        ms_json_key(json, key);
        if (!chain->n) {
                ms_json_null(json);
                return;
        }
        json_exception(json, &chain->items[0]);
        ms_json_key(json, "chain");
        ms_json_begin_array(json);
        for (size_t i = 1; i < chain->n; i++) {
                json_exception(json, &chain->items[i]);
                ms_json_key_string(json, "link", chain->items[i].link);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
        ms_json_key(json, "chain_truncated");
        ms_json_bool(json, chain->truncated);
        ms_json_end_object(json);
}

static void json_panic(struct ms_json *json, const struct ms_panic *p)
{
        ms_json_key(json, "panic");
        if (!p) {
                ms_json_null(json);
                return;
        }
        ms_json_begin_object(json);
        ms_json_key_string(json, "kind", p->kind);
        ms_json_key(json, "panicking");
        ms_json_bool(json, p->panicking);
        ms_json_key(json, "site");
        ms_json_begin_object(json);
        ms_json_key_string(json, "function", p->site_function);
        ms_json_key_string(json, "module", p->site_module);
        ms_json_key_string(json, "file", p->site_file);
        ms_json_key_int_or_null(json, "line", p->site_line > 0, p->site_line);
        ms_json_key_int_or_null(json, "column", p->site_column > 0,
                                p->site_column);
        ms_json_key_int_or_null(json, "frame", p->site_index >= 0,
                                p->site_index);
        ms_json_end_object(json);
        ms_json_key_string(json, "message", p->message);
        ms_json_key_string(json, "message_recovered_by",
                           p->message_recovered_by);
        ms_json_key(json, "location");
        if (p->location_file) {
                ms_json_begin_object(json);
                ms_json_key_string(json, "file", p->location_file);
                ms_json_key_int_or_null(json, "line", true, p->location_line);
                ms_json_key_int_or_null(json, "column", true,
                                        p->location_column);
                ms_json_key_string(json, "recovered_by",
                                   p->location_recovered_by);
                ms_json_end_object(json);
        } else {
                ms_json_null(json);
        }
        ms_json_key_int_or_null(json, "local_panic_count",
                                p->local_panic_count >= 0,
                                p->local_panic_count);
        ms_json_key(json, "in_panic_hook");
        ms_json_bool(json, p->in_panic_hook);
        ms_json_end_object(json);
}

static void json_thread_boundary(struct ms_json *json,
                                 const struct ms_thread_report *t)
{
        ms_json_key_string(json, "gil", ms_gil_state_name(t->gil));
        ms_json_key_int_or_null(json, "gil_wait_frame", t->gil_wait_frame >= 0,
                                t->gil_wait_frame);
        ms_json_key(json, "exception");
        ms_json_begin_object(json);
        json_chain(json, "pending", &t->pending);
        json_chain(json, "handled", &t->handled);
        ms_json_end_object(json);
        json_panic(json, t->panic);
        ms_json_key_int_or_null(json, "lock_owner_tid", t->lock_owner_tid,
                                t->lock_owner_tid);
}

static void json_thread(struct ms_json *json, const struct ms_thread_report *t)
{
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, t->tid);
        ms_json_key_string(json, "name", t->name);
        ms_json_key(json, "crashed");
        ms_json_bool(json, t->crashed);
        ms_json_key(json, "frames");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->n_frames; i++)
                json_frame(json, &t->frames[i], i);
        ms_json_end_array(json);
        ms_json_key_string(json, "unwind_error", t->unwind_error);
        ms_json_key(json, "python");
        ms_json_bool(json, t->python);
        ms_json_key(json, "interpreter_id");
        if (t->python)
                ms_json_int(json, t->interpreter_id);
        else
                ms_json_null(json);
        ms_json_key_string(json, "python_error", t->python_error);
        json_thread_boundary(json, t);
        ms_json_end_object(json);
}

static void json_python(struct ms_json *json, const struct ms_report *report)
{
        ms_json_key(json, "python");
        if (!report->python_version) {
                ms_json_null(json);
                return;
        }
        ms_json_begin_object(json);
        ms_json_key_string(json, "version", report->python_version);
        ms_json_key(json, "free_threaded");
        ms_json_bool(json, report->python_free_threaded);
        ms_json_key(json, "runtime");
        ms_json_begin_object(json);
        ms_json_key_string(json, "module", report->python_runtime_module);
        ms_json_key_string(json, "found_by", report->python_runtime_found_by);
        ms_json_end_object(json);
        ms_json_end_object(json);
}

static void json_interpreters(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "interpreters");
        ms_json_begin_array(json);
        for (size_t i = 0; i < r->n_interpreters; i++) {
                const struct ms_interpreter_report *p = &r->interpreters[i];
                ms_json_begin_object(json);
                ms_json_key(json, "id");
                ms_json_int(json, p->id);
                ms_json_key(json, "gil");
                if (p->gil_known || p->gil_disabled) {
                        ms_json_begin_object(json);
                        ms_json_key_int_or_null(json, "holder_tid",
                                                p->gil_locked &&
                                                        p->gil_holder_tid,
                                                p->gil_holder_tid);
                        ms_json_key(json, "locked");
                        ms_json_bool(json, p->gil_locked);
                        ms_json_key(json, "disabled");
                        ms_json_bool(json, p->gil_disabled);
                        ms_json_end_object(json);
                } else {
                        ms_json_null(json);
                }
                /* The phase is the runtime's: the same for each. */
                ms_json_key_string(json, "phase", r->phase);
                ms_json_key_string(json, "finalize_step", r->finalize_step);
                ms_json_key_int_or_null(json, "finalizing_tid",
                                        r->finalizing_tid, r->finalizing_tid);
                ms_json_end_object(json);
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
        ms_json_key(json, "finalize_step_inferred");
        ms_json_bool(json, r->finalize_step_inferred);
        ms_json_key_int_or_null(json, "finalizing_tid", r->finalizing_tid,
                                r->finalizing_tid);
        ms_json_key_int_or_null(json, "exit_tid", r->exit_tid, r->exit_tid);
        ms_json_key_string(json, "reason", r->phase_reason);
        ms_json_end_object(json);
}

static void json_rust(struct ms_json *json, const struct ms_report *r)
{
        ms_json_key(json, "rust");
        ms_json_begin_object(json);
        ms_json_key(json, "modules");
        ms_json_begin_array(json);
        for (size_t i = 0; i < r->n_rust_modules; i++) {
                const struct ms_rust_module_report *m = &r->rust_modules[i];
                ms_json_begin_object(json);
                ms_json_key_string(json, "path", m->path);
                ms_json_key_string(json, "rustc_version", m->rustc_version);
                ms_json_key_int_or_null(json, "global_panic_count",
                                        m->count_known,
                                        (int64_t)m->global_panic_count);
                ms_json_key(json, "always_abort");
                if (m->count_known)
                        ms_json_bool(json, m->always_abort);
                else
                        ms_json_null(json);
                ms_json_key_string(json, "count_unknown_reason",
                                   m->count_unknown_reason);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
        ms_json_end_object(json);
}

void ms_json_diagnoses_where(struct ms_json *json, const struct ms_report *r,
                             bool (*keep)(const struct ms_diagnosis *d))
{
        ms_json_key(json, "diagnoses");
        ms_json_begin_array(json);
        for (size_t i = 0; i < r->n_diagnoses; i++) {
                const struct ms_diagnosis *d = &r->diagnoses[i];
                if (keep && !keep(d))
                        continue;
                ms_json_begin_object(json);
                ms_json_key_string(json, "kind", d->kind);
                ms_json_key_string(json, "message", d->message);
                ms_json_key(json, "tids");
                ms_json_begin_array(json);
                for (size_t j = 0; j < d->n_tids; j++)
                        ms_json_int(json, d->tids[j]);
                ms_json_end_array(json);
                ms_json_end_object(json);
        }
        ms_json_end_array(json);
}

void ms_json_diagnoses(struct ms_json *json, const struct ms_report *r)
{
        ms_json_diagnoses_where(json, r, NULL);
}

/* ------------------------------------------------------------------------
 * A section alone: "section", the target, what the section prints, and the
 * warnings that concern it. Threads carry only the section's members.
 * ------------------------------------------------------------------------ */

static const char *section_name(enum ms_section section)
{
        switch (section) {
        case MS_SECTION_THREADS:
                return "threads";
        case MS_SECTION_GIL:
                return "gil";
        case MS_SECTION_ERRORS:
                return "err";
        case MS_SECTION_PANIC:
                return "panic";
        case MS_SECTION_PHASE:
                return "phase";
        case MS_SECTION_TASKS:
                return "tasks";
        case MS_SECTION_REPORT:
        case MS_SECTION_STACKS:
                break;
        }
        return NULL;
}

/* The frame a thread is "in": its innermost Python frame, else its
 * innermost frame. */
static const struct ms_frame *thread_top(const struct ms_thread_report *t,
                                         size_t *index)
{
        for (size_t i = 0; i < t->n_frames; i++) {
                if (t->frames[i].kind == MS_FRAME_PYTHON) {
                        *index = i;
                        return &t->frames[i];
                }
        }
        *index = 0;
        return t->n_frames ? &t->frames[0] : NULL;
}

static bool has_panic_exception(const struct ms_thread_report *t)
{
        return (t->pending.n && t->pending.items[0].is_panic_exception) ||
               (t->handled.n && t->handled.items[0].is_panic_exception);
}

/* Whether a thread has anything for the section. */
static bool section_shows(enum ms_section section,
                          const struct ms_thread_report *t)
{
        switch (section) {
        case MS_SECTION_ERRORS:
                return t->pending.n || t->handled.n;
        case MS_SECTION_PANIC:
                return t->panic || has_panic_exception(t);
        case MS_SECTION_PHASE:
        case MS_SECTION_TASKS:
                return false;
        default:
                return true;
        }
}

static void json_exceptions(struct ms_json *json,
                            const struct ms_thread_report *t)
{
        ms_json_key(json, "exception");
        ms_json_begin_object(json);
        json_chain(json, "pending", &t->pending);
        json_chain(json, "handled", &t->handled);
        ms_json_end_object(json);
}

static void json_section_thread(struct ms_json *json, enum ms_section section,
                                const struct ms_thread_report *t)
{
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, t->tid);
        ms_json_key_string(json, "name", t->name);
        if (section == MS_SECTION_THREADS || section == MS_SECTION_GIL) {
                ms_json_key(json, "python");
                ms_json_bool(json, t->python);
                ms_json_key_string(json, "gil", ms_gil_state_name(t->gil));
        }
        if (section == MS_SECTION_THREADS) {
                size_t index;
                const struct ms_frame *top = thread_top(t, &index);
                ms_json_key(json, "crashed");
                ms_json_bool(json, t->crashed);
                ms_json_key(json, "interpreter_id");
                if (t->python)
                        ms_json_int(json, t->interpreter_id);
                else
                        ms_json_null(json);
                ms_json_key(json, "frame");
                if (top)
                        json_frame(json, top, index);
                else
                        ms_json_null(json);
        }
        if (section == MS_SECTION_GIL) {
                ms_json_key(json, "gil_wait");
                if (t->gil_wait_frame >= 0 &&
                    (size_t)t->gil_wait_frame < t->n_frames)
                        json_frame(json, &t->frames[t->gil_wait_frame],
                                   (size_t)t->gil_wait_frame);
                else
                        ms_json_null(json);
                ms_json_key_int_or_null(json, "lock_owner_tid",
                                        t->lock_owner_tid, t->lock_owner_tid);
        }
        if (section == MS_SECTION_THREADS || section == MS_SECTION_ERRORS ||
            section == MS_SECTION_PANIC)
                json_exceptions(json, t);
        if (section == MS_SECTION_THREADS || section == MS_SECTION_PANIC)
                json_panic(json, t->panic);
        ms_json_end_object(json);
}

static void json_section(const struct ms_report *report,
                         enum ms_section section, FILE *out)
{
        struct ms_json json;
        ms_json_init(&json, out, true);
        ms_json_begin_object(&json);
        ms_json_key_string(&json, "schema", "mixstack/1");
        ms_json_key_string(&json, "version", MIXSTACK_VERSION);
        ms_json_key_string(&json, "section", section_name(section));
        json_target(&json, report);
        if (section != MS_SECTION_THREADS)
                json_python(&json, report);
        if (section == MS_SECTION_GIL || section == MS_SECTION_PHASE)
                json_interpreters(&json, report);
        if (section == MS_SECTION_PHASE)
                json_phase(&json, report);
        if (section == MS_SECTION_PANIC)
                json_rust(&json, report);
        if (section == MS_SECTION_GIL)
                ms_json_diagnoses(&json, report);
        if (section == MS_SECTION_TASKS) {
                ms_json_diagnoses_where(&json, report, ms_diagnosis_is_asyncio);
                ms_json_asyncio(&json, report);
        }
        if (section != MS_SECTION_PHASE && section != MS_SECTION_TASKS) {
                ms_json_key(&json, "threads");
                ms_json_begin_array(&json);
                for (size_t i = 0; i < report->n_threads; i++) {
                        if (section_shows(section, &report->threads[i]))
                                json_section_thread(&json, section,
                                                    &report->threads[i]);
                }
                ms_json_end_array(&json);
        }
        ms_json_key(&json, "warnings");
        ms_json_begin_array(&json);
        for (size_t i = 0; i < report->n_warnings; i++) {
                if (!report->warning_sections ||
                    (report->warning_sections[i] & (1u << section)))
                        ms_json_string(&json, report->warnings[i]);
        }
        ms_json_end_array(&json);
        ms_json_end_object(&json);
}

void ms_print_json(const struct ms_report *report,
                   const struct ms_print_options *options, FILE *out)
{
        if (section_name(options->section)) {
                json_section(report, options->section, out);
                return;
        }
        struct ms_json json;
        /* Sections select threads for stacks; every other section is
         * the whole document, which holds it. */
        bool whole = options->section != MS_SECTION_STACKS;
        ms_json_init(&json, out, true);
        ms_json_begin_object(&json);
        ms_json_key_string(&json, "schema", "mixstack/1");
        ms_json_key_string(&json, "version", MIXSTACK_VERSION);
        if (whole) {
                json_target(&json, report);
                json_python(&json, report);
                json_interpreters(&json, report);
                json_phase(&json, report);
                json_rust(&json, report);
                ms_json_diagnoses(&json, report);
                ms_json_asyncio(&json, report);
        }
        ms_json_key(&json, "threads");
        ms_json_begin_array(&json);
        for (size_t i = 0; i < report->n_threads; i++) {
                if (ms_print_selects(options, &report->threads[i]))
                        json_thread(&json, &report->threads[i]);
        }
        ms_json_end_array(&json);
        if (whole) {
                ms_json_key(&json, "warnings");
                ms_json_begin_array(&json);
                for (size_t i = 0; i < report->n_warnings; i++)
                        ms_json_string(&json, report->warnings[i]);
                ms_json_end_array(&json);
        }
        ms_json_end_object(&json);
}
