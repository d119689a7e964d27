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

/* ------------------------------------------------------------------------
 * Placing groups from the interpreter's records
 * ------------------------------------------------------------------------ */

/* The last level (the physical function; inlined levels come first) of
 * the physical frame that starts at level a, or n when none does. */
static size_t physical_end(const struct ms_merge_input *in, size_t a)
{
        while (a < in->n_native && in->native[a].inlined)
                a++;
        return a;
}

/* The level that runs the group whose anchor lies in the stack of the
 * physical frame [a, b]: the one named like the eval loop (with DWARF, the
 * eval function may be inlined into its caller), else the physical one,
 * which stripped PGO+LTO builds leave unnamed. */
static size_t eval_level(const struct ms_merge_input *in, size_t a, size_t b)
{
        for (size_t i = a; i <= b; i++) {
                if (category_is(&in->native[i], "eval-loop"))
                        return i;
        }
        return b;
}

/* The level index of the frame whose stack, [sp, caller's sp), holds
 * anchor, looking at physical frames from level `from` outwards; -1 when
 * none does. The outermost frame has no known end and holds nothing. */
static int frame_holding(const struct ms_merge_input *in, uint64_t anchor,
                         size_t from)
{
        for (size_t a = from; a < in->n_native;) {
                size_t b = physical_end(in, a);
                size_t next = b + 1;
                size_t caller = physical_end(in, next);
                if (b >= in->n_native || caller >= in->n_native)
                        return -1;
                uint64_t lo = in->native[b].sp, hi = in->native[caller].sp;
                if (lo && lo <= anchor && anchor < hi)
                        return (int)eval_level(in, a, b);
                a = next;
        }
        return -1;
}

/* place[g]: the native level running group g, or -1. Groups and frames
 * are both innermost first, so each group is looked for outside the one
 * placed before it. Returns how many were placed. */
static size_t place_groups(const struct ms_merge_input *in,
                           const struct py_group *groups, size_t n_groups,
                           int *place)
{
        size_t placed = 0, from = 0;
        for (size_t g = 0; g < n_groups; g++) {
                uint64_t anchor = in->python_anchor
                                          ? in->python_anchor[groups[g].end - 1]
                                          : 0;
                place[g] = anchor ? frame_holding(in, anchor, from) : -1;
                if (place[g] < 0)
                        continue;
                placed++;
                from = physical_end(in, (size_t)place[g]) + 1;
        }
        return placed;
}

static void warn_unplaced(struct ms_warnings *w, pid_t tid,
                          const struct ms_merge_input *in,
                          const struct py_group *groups, size_t n_groups,
                          const int *place, size_t placed)
{
        /* A group without an anchor is tolerated innermost only: an eval
         * call caught between pushing its frame and recording it. */
        bool bad = false;
        for (size_t g = 0; g < n_groups; g++) {
                bool anchored = in->python_anchor &&
                                in->python_anchor[groups[g].end - 1];
                if (place[g] < 0 && (anchored || g > 0))
                        bad = true;
        }
        if (bad)
                warn_mismatch(w, tid, placed, n_groups);
}

/* Merge with the groups placed by their anchors; unplaced groups go just
 * inside the next placed one, or outermost. */
static void merge_placed(struct merge_state *s, struct ms_merge_input *in,
                         const struct py_group *groups, size_t n_groups,
                         const int *place)
{
        size_t next = 0;
        for (size_t i = 0; i < in->n_native; i++) {
                struct ms_frame *f = &in->native[i];
                size_t g = next;
                while (g < n_groups && place[g] < 0)
                        g++;
                if (g >= n_groups || place[g] != (int)i) {
                        emit(s, f, (int)i, is_interpreter_machinery(f));
                        continue;
                }
                while (next < g)
                        emit_group(s, in, &groups[next++], -1);
                emit_group(s, in, &groups[next++], (int)i);
                ms_frame_deinit(f);
        }
        while (next < n_groups)
                emit_group(s, in, &groups[next++], -1);
}

/* Native frames found to run Python code are the eval loop, named or not
 * (--native-only shows them so). */
static void mark_eval_frames(struct ms_merge_input *in, const int *place,
                             size_t n_groups)
{
        for (size_t g = 0; g < n_groups; g++) {
                if (place[g] >= 0)
                        in->native[place[g]].category = "eval-loop";
        }
}

/* ------------------------------------------------------------------------
 * Placing groups by name (3.8-3.9, stacks without stack pointers)
 * ------------------------------------------------------------------------ */

static void merge_by_name(struct merge_state *s, struct ms_merge_input *in,
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
        int *place = calloc(n_groups ? n_groups : 1, sizeof(*place));
        if (!place) {
                free(s.out);
                free(s.hideable);
                free(groups);
                free_input(in);
                return &ms_error_no_memory;
        }
        size_t placed = place_groups(in, groups, n_groups, place);
        mark_eval_frames(in, place, n_groups);

        if (mode == MS_MERGE_NATIVE_ONLY) {
                for (size_t i = 0; i < in->n_native; i++)
                        emit(&s, &in->native[i], (int)i, false);
        } else if (mode == MS_MERGE_PYTHON_ONLY) {
                for (size_t g = 0; g < n_groups; g++)
                        emit_group(&s, in, &groups[g], -1);
        } else {
                if (placed) {
                        warn_unplaced(warnings, tid, in, groups, n_groups,
                                      place, placed);
                        merge_placed(&s, in, groups, n_groups, place);
                } else {
                        merge_by_name(&s, in, groups, n_groups, tid, warnings);
                }
                if (!all_frames)
                        hide_machinery(&s);
        }
        free(place);
        free(groups);
        free_input(in);
        free(s.hideable);
        *frames = s.out;
        *n_frames = s.n_out;
        return NULL;
}
