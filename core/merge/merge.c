#include <stdlib.h>
#include <string.h>

#include "merge/merge.h"
#include "unwind/unwind.h"

/* A run of Python frames executed by one eval-loop call. */
struct py_group {
        size_t start; /* innermost frame */
        size_t end;   /* one past the outermost frame */
};

static bool category_is(const struct ms_frame *f, const char *category)
{
        return f->category && strcmp(f->category, category) == 0;
}

static bool is_interpreter_machinery(const struct ms_frame *f)
{
        return category_is(f, "cpython-internal") ||
               category_is(f, "eval-loop") || category_is(f, "eval-loop-tail");
}

/* Frames that say what a thread is doing (waiting for the GIL, for a lock,
 * panicking, collecting, finalizing): the interpreter frames next to them
 * explain them and stay visible. */
static bool reveals_state(const struct ms_frame *f)
{
        static const char *const categories[] = {
                "gil-acquire", "gil-release", "libc-wait",    "rust-wait",
                "signal",      "gc",          "finalization", "rust-panic",
        };
        for (size_t i = 0; i < MS_ARRAY_SIZE(categories); i++) {
                if (category_is(f, categories[i]))
                        return true;
        }
        return false;
}

/* Split the Python frames into groups, innermost first. */
static size_t group_python(const struct ms_merge_input *in,
                           struct py_group *groups)
{
        size_t n = 0, start = 0;
        for (size_t i = 0; i < in->n_python; i++) {
                if (in->python_is_entry[i] || i + 1 == in->n_python) {
                        groups[n++] = (struct py_group){start, i + 1};
                        start = i + 1;
                }
        }
        return n;
}

struct merge_state {
        struct ms_frame *out;
        size_t n_out;
        /* Per output frame: whether it may be hidden as machinery. */
        bool *hideable;
};

static void emit(struct merge_state *s, struct ms_frame *f, int native_index,
                 bool hideable)
{
        s->out[s->n_out] = *f;
        s->out[s->n_out].native_index = native_index;
        s->hideable[s->n_out] = hideable;
        s->n_out++;
        memset(f, 0, sizeof(*f));
}

/* Emit a group of Python frames run by the eval-loop frame at
 * native_index (-1: none), which lends them its pc. */
static void emit_group(struct merge_state *s, struct ms_merge_input *in,
                       const struct py_group *g, int native_index)
{
        for (size_t i = g->start; i < g->end; i++) {
                if (native_index >= 0)
                        in->python[i].pc = in->native[native_index].pc;
                emit(s, &in->python[i], native_index, false);
        }
}

/*
 * Drop runs of interpreter frames that are only the way from one user frame
 * (Python, Rust, C of an extension) to the next, or from the process's start
 * to the outermost Python frame. A run stays when it is innermost (where the
 * thread is) or when the frame inside it says what the thread is doing.
 */
static bool run_is_hidden(const struct merge_state *s, size_t i, size_t j)
{
        if (i == 0)
                return false;
        const struct ms_frame *inner = &s->out[i - 1];
        const struct ms_frame *outer = j < s->n_out ? &s->out[j] : NULL;
        if (is_interpreter_machinery(inner) || reveals_state(inner))
                return false;
        if (!outer)
                return inner->kind == MS_FRAME_PYTHON;
        if (is_interpreter_machinery(outer))
                return false;
        return inner->kind == MS_FRAME_PYTHON || outer->kind == MS_FRAME_PYTHON;
}

/* Functions of the standard library and of dependencies inlined into
 * the program's code: their physical frame stays. */
static bool is_hidden_inline(const struct ms_frame *f)
{
        return f->inlined && f->kind == MS_FRAME_NATIVE &&
               (category_is(f, "rust-std") ||
                category_is(f, "rust-dependency") || category_is(f, "pyo3"));
}

static void hide_machinery(struct merge_state *s)
{
        size_t w = 0;
        for (size_t i = 0; i < s->n_out; i++) {
                if (is_hidden_inline(&s->out[i])) {
                        ms_frame_deinit(&s->out[i]);
                        continue;
                }
                s->hideable[w] = s->hideable[i];
                s->out[w++] = s->out[i];
        }
        s->n_out = w;
        w = 0;
        for (size_t i = 0; i < s->n_out;) {
                size_t j = i;
                while (j < s->n_out && s->hideable[j])
                        j++;
                if (j == i) {
                        s->out[w++] = s->out[i++];
                        continue;
                }
                bool drop = run_is_hidden(s, i, j);
                for (; i < j; i++) {
                        if (drop)
                                ms_frame_deinit(&s->out[i]);
                        else
                                s->out[w++] = s->out[i];
                }
        }
        s->n_out = w;
}

static void free_input(struct ms_merge_input *in)
{
        for (size_t i = 0; i < in->n_native; i++)
                ms_frame_deinit(&in->native[i]);
        for (size_t i = 0; i < in->n_python; i++)
                ms_frame_deinit(&in->python[i]);
        free(in->native);
        free(in->python);
        in->native = in->python = NULL;
        in->n_native = in->n_python = 0;
}

static void warn_mismatch(struct ms_warnings *w, pid_t tid, size_t n_eval,
                          size_t n_groups)
{
        ms_warnings_add(w,
                        "thread %d: Python and native stacks do not match "
                        "(%zu eval-loop frames, %zu Python frame groups); "
                        "both are shown, Python frames may be misplaced",
                        (int)tid, n_eval, n_groups);
}

static void merge_mixed(struct merge_state *s, struct ms_merge_input *in,
                        struct py_group *groups, size_t n_groups, pid_t tid,
                        struct ms_warnings *warnings)
{
        size_t n_eval = 0;
        for (size_t i = 0; i < in->n_native; i++)
                n_eval += category_is(&in->native[i], "eval-loop");
        /* Pair from the outermost end, which is stable; the innermost end
         * may be off by one while a call pushes or pops a frame. */
        size_t skip_eval = n_eval > n_groups ? n_eval - n_groups : 0;
        size_t extra_groups = n_groups > n_eval ? n_groups - n_eval : 0;
        if (skip_eval > 1 || extra_groups > 1 ||
            (n_eval == 0 && n_groups > 0 && in->n_native > 0))
                warn_mismatch(warnings, tid, n_eval, n_groups);

        size_t next_group = 0, eval_seen = 0;
        bool extras_placed = extra_groups == 0;
        for (size_t i = 0; i < in->n_native; i++) {
                struct ms_frame *f = &in->native[i];
                if (!category_is(f, "eval-loop")) {
                        emit(s, f, (int)i, is_interpreter_machinery(f));
                        continue;
                }
                eval_seen++;
                if (eval_seen <= skip_eval) {
                        emit(s, f, (int)i, false);
                        continue;
                }
                /* Groups without an eval frame go just inside the
                 * innermost paired one. */
                while (!extras_placed && next_group < extra_groups)
                        emit_group(s, in, &groups[next_group++], -1);
                extras_placed = true;
                emit_group(s, in, &groups[next_group++], (int)i);
                ms_frame_deinit(f);
        }
        /* No eval frames at all: the Python frames still get shown. */
        while (next_group < n_groups)
                emit_group(s, in, &groups[next_group++], -1);
}

struct ms_error *ms_merge_thread(struct ms_merge_input *in,
                                 enum ms_merge_mode mode, bool all_frames,
                                 pid_t tid, struct ms_warnings *warnings,
                                 struct ms_frame **frames, size_t *n_frames)
{
        size_t total = in->n_native + in->n_python;
        struct merge_state s = {
                .out = calloc(total ? total : 1, sizeof(*s.out)),
                .hideable = calloc(total ? total : 1, sizeof(*s.hideable)),
        };
        struct py_group *groups =
                calloc(in->n_python ? in->n_python : 1, sizeof(*groups));
        if (!s.out || !s.hideable || !groups) {
                free(s.out);
                free(s.hideable);
                free(groups);
                free_input(in);
                return &ms_error_no_memory;
        }
        size_t n_groups = group_python(in, groups);

        if (mode == MS_MERGE_NATIVE_ONLY) {
                for (size_t i = 0; i < in->n_native; i++)
                        emit(&s, &in->native[i], (int)i, false);
        } else if (mode == MS_MERGE_PYTHON_ONLY) {
                for (size_t g = 0; g < n_groups; g++)
                        emit_group(&s, in, &groups[g], -1);
        } else {
                merge_mixed(&s, in, groups, n_groups, tid, warnings);
                if (!all_frames)
                        hide_machinery(&s);
        }
        free(groups);
        free_input(in);
        free(s.hideable);
        *frames = s.out;
        *n_frames = s.n_out;
        return NULL;
}
