/* The report as one JSON document: schema "mixstack/1" (docs/json-schema.md). */
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

static void json_optional_string(struct ms_json *json, const char *key,
                                 const char *value)
{
        ms_json_key(json, key);
        ms_json_string(json, value);
}

static void json_target(struct ms_json *json, const struct ms_report *report)
{
        ms_json_key(json, "target");
        ms_json_begin_object(json);
        json_optional_string(json, "kind",
                             target_kind_name(report->target_kind));
        json_optional_string(json, "core", report->core);
        json_optional_string(json, "executable", report->executable);
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
                json_optional_string(json, "name",
                                     ms_signal_name(report->signo));
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
        json_optional_string(json, "kind",
                             f->kind == MS_FRAME_PYTHON ? "python" : "native");
        ms_json_key(json, "pc");
        ms_json_address(json, f->pc);
        json_optional_string(json, "module", f->module);
        json_optional_string(json, "function", f->function);
        json_optional_string(json, "raw_symbol", f->raw_symbol);
        ms_json_key(json, "offset");
        ms_json_address(json, f->offset);
        json_optional_string(json, "file", f->file);
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
        json_optional_string(json, "language", ms_language_name(f->language));
        json_optional_string(json, "category", f->category);
        if (f->kind == MS_FRAME_PYTHON)
                json_optional_string(json, "qualname", f->qualname);
        ms_json_key(json, "native_index");
        if (f->native_index >= 0)
                ms_json_int(json, f->native_index);
        else
                ms_json_null(json);
        ms_json_end_object(json);
}

static void json_thread(struct ms_json *json, const struct ms_thread_report *t)
{
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, t->tid);
        json_optional_string(json, "name", t->name);
        ms_json_key(json, "crashed");
        ms_json_bool(json, t->crashed);
        ms_json_key(json, "frames");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->n_frames; i++)
                json_frame(json, &t->frames[i], i);
        ms_json_end_array(json);
        json_optional_string(json, "unwind_error", t->unwind_error);
        ms_json_key(json, "python");
        ms_json_bool(json, t->python);
        ms_json_key(json, "interpreter_id");
        if (t->python)
                ms_json_int(json, t->interpreter_id);
        else
                ms_json_null(json);
        json_optional_string(json, "python_error", t->python_error);
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
        json_optional_string(json, "version", report->python_version);
        ms_json_key(json, "free_threaded");
        ms_json_bool(json, report->python_free_threaded);
        ms_json_end_object(json);
}

void ms_print_json(const struct ms_report *report,
                   const struct ms_print_options *options, FILE *out)
{
        struct ms_json json;
        bool whole = options->section == MS_SECTION_REPORT;
        ms_json_init(&json, out, true);
        ms_json_begin_object(&json);
        json_optional_string(&json, "schema", "mixstack/1");
        json_optional_string(&json, "version", MIXSTACK_VERSION);
        if (whole) {
                json_target(&json, report);
                json_python(&json, report);
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
