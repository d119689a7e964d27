/* The threads of a triage in JSON: one object per thread, and the stacks
 * of the threads the signature comes from. */
#include "triage/internal.h"
#include "triage/json.h"

static bool is_signature_thread(const struct ms_triage *t, size_t index)
{
        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i] == index)
                        return true;
        }
        return false;
}

/* The frame that best says where a thread is: its innermost Python
 * frame, else its innermost native frame (as the threads section). */
static const struct ms_frame *thread_top(const struct ms_thread_report *th)
{
        const struct ms_frame *py = ms_triage_python_caller(th, 0);
        if (py)
                return py;
        return th->n_frames ? &th->frames[0] : NULL;
}

static void json_thread(struct ms_json *json, const struct ms_triage *t,
                        size_t index)
{
        const struct ms_thread_report *th = &t->report->threads[index];
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, th->tid);
        ms_json_key(json, "name");
        ms_json_string(json, th->name);
        ms_json_key(json, "python");
        ms_json_bool(json, th->python);
        ms_json_key(json, "gil");
        ms_json_string(json, ms_gil_state_name(th->gil));
        ms_json_key(json, "crashed");
        ms_json_bool(json, th->crashed);
        ms_json_key(json, "in_signature");
        ms_json_bool(json, is_signature_thread(t, index));
        const struct ms_frame *top = thread_top(th);
        ms_json_key(json, "top");
        ms_json_string(json, top ? ms_triage_frame_name(top) : NULL);
        ms_json_key(json, "top_file");
        ms_json_string(json, top ? top->file : NULL);
        ms_json_end_object(json);
}

static void json_frame(struct ms_json *json, const struct ms_frame *f,
                       size_t index, bool in_signature)
{
        ms_json_begin_object(json);
        ms_json_key(json, "index");
        ms_json_int(json, (int64_t)index);
        ms_json_key(json, "kind");
        ms_json_string(json, f->kind == MS_FRAME_PYTHON ? "python" : "native");
        ms_json_key(json, "function");
        ms_json_string(json, ms_triage_frame_name(f));
        ms_json_key(json, "module");
        ms_json_string(json, f->module);
        ms_json_key(json, "file");
        ms_json_string(json, f->file);
        ms_json_key(json, "line");
        if (f->line > 0)
                ms_json_int(json, f->line);
        else
                ms_json_null(json);
        ms_json_key(json, "category");
        ms_json_string(json, f->category);
        ms_json_key(json, "in_signature");
        ms_json_bool(json, in_signature);
        ms_json_end_object(json);
}

static void json_stack(struct ms_json *json, const struct ms_triage *t,
                       size_t which)
{
        size_t index = t->threads[which];
        const struct ms_thread_report *th = &t->report->threads[index];
        size_t i = which == 0 ? t->machinery_frames : 0;
        ms_json_begin_object(json);
        ms_json_key(json, "tid");
        ms_json_int(json, th->tid);
        ms_json_key(json, "machinery_frames");
        ms_json_int(json, (int64_t)i);
        ms_json_key(json, "frames");
        ms_json_begin_array(json);
        unsigned shown = 0;
        for (; i < th->n_frames && shown < t->stack_frames; i++) {
                const struct ms_frame *f = &th->frames[i];
                if (f->inlined && f->kind == MS_FRAME_NATIVE)
                        continue;
                json_frame(json, f, i, ms_triage_in_signature(t, index, i));
                shown++;
        }
        ms_json_end_array(json);
        ms_json_key(json, "more_frames");
        ms_json_int(json, (int64_t)(th->n_frames - i));
        ms_json_end_object(json);
}

void ms_triage_json_threads(struct ms_json *json, const struct ms_triage *t)
{
        ms_json_key(json, "threads");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->report->n_threads; i++)
                json_thread(json, t, i);
        ms_json_end_array(json);
        ms_json_key(json, "stacks");
        ms_json_begin_array(json);
        for (size_t i = 0; i < t->n_threads; i++)
                json_stack(json, t, i);
        ms_json_end_array(json);
}
