/* Merging native and Python stacks on synthetic stacks of each shape. */
#include <stdlib.h>
#include <string.h>

#include "merge/merge.h"
#include "merge/rules.h"
#include "unit.h"
#include "unwind/unwind.h"

#define MAX 32

struct stacks {
        struct ms_frame native[MAX], python[MAX];
        bool entry[MAX];
        uint64_t anchor[MAX];
        size_t n_native, n_python;
};

static void native(struct stacks *s, const char *function, const char *module)
{
        struct ms_frame *f = &s->native[s->n_native++];
        memset(f, 0, sizeof(*f));
        f->kind = MS_FRAME_NATIVE;
        f->function = strdup(function);
        f->module = strdup(module);
        f->language = strstr(function, "::") ? MS_LANGUAGE_RUST : MS_LANGUAGE_C;
        f->category = ms_rules_frame_category(ms_frame_rules(NULL), f);
}

static void python(struct stacks *s, const char *function, bool entry)
{
        struct ms_frame *f = &s->python[s->n_python];
        memset(f, 0, sizeof(*f));
        f->kind = MS_FRAME_PYTHON;
        f->language = MS_LANGUAGE_PYTHON;
        f->function = strdup(function);
        f->category = "python";
        s->entry[s->n_python++] = entry;
}

/* A native frame with its stack pointer. */
static void native_sp(struct stacks *s, const char *function,
                      const char *module, uint64_t sp)
{
        native(s, function, module);
        s->native[s->n_native - 1].sp = sp;
}

/* An entry frame whose eval call keeps anchor on the C stack. */
static void python_at(struct stacks *s, const char *function, uint64_t anchor)
{
        s->anchor[s->n_python] = anchor;
        python(s, function, true);
}

/* Merge and return the function names joined by spaces. */
static char *merged(struct stacks *s, enum ms_merge_mode mode, bool all,
                    size_t *n_warnings)
{
        struct ms_merge_input in = {
                .native = malloc(sizeof(struct ms_frame) * MAX),
                .n_native = s->n_native,
                .python = malloc(sizeof(struct ms_frame) * MAX),
                .n_python = s->n_python,
                .python_is_entry = s->entry,
                .python_anchor = s->anchor,
        };
        memcpy(in.native, s->native, sizeof(s->native));
        memcpy(in.python, s->python, sizeof(s->python));
        struct ms_warnings w = {0};
        struct ms_frame *frames;
        size_t n;
        CHECK(ms_merge_thread(&in, mode, all, 1, &w, &frames, &n) == NULL);
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        for (size_t i = 0; i < n; i++) {
                fprintf(out, "%s%s", i ? " " : "", frames[i].function);
                if (frames[i].kind == MS_FRAME_PYTHON)
                        fprintf(out, "@%d", frames[i].native_index);
                ms_frame_deinit(&frames[i]);
        }
        fclose(out);
        free(frames);
        *n_warnings = w.n;
        ms_warnings_deinit(&w);
        s->n_native = s->n_python = 0;
        memset(s->anchor, 0, sizeof(s->anchor));
        return buf;
}

static const char *PY = "/usr/bin/python3.11", *EXT = "/x/ext.so",
                  *LIBC = "/lib/libc.so.6";

static void check_merge(struct stacks *s, enum ms_merge_mode mode, bool all,
                        const char *want, size_t want_warnings)
{
        size_t n_warnings;
        char *got = merged(s, mode, all, &n_warnings);
        CHECK_STR(got, want);
        CHECK(n_warnings == want_warnings);
        free(got);
}

/* 3.8-3.10: one eval frame per Python frame; a call into Rust on top. */
static void build_310(struct stacks *s)
{
        native(s, "mixsample::segfault_now", EXT);
        native(s, "mixsample::_::__pyfunction_segfault_now", EXT);
        native(s, "cfunction_vectorcall_FASTCALL_KEYWORDS", PY);
        native(s, "_PyEval_EvalFrameDefault", PY);
        native(s, "_PyFunction_Vectorcall", PY);
        native(s, "_PyEval_EvalFrameDefault", PY);
        native(s, "Py_RunMain", PY);
        native(s, "main", PY);
        python(s, "crash", true);
        python(s, "<module>", true);
}

static void test_one_eval_per_frame(void)
{
        struct stacks s = {0};
        build_310(&s);
        check_merge(&s, MS_MERGE_MIXED, false,
                    "mixsample::segfault_now "
                    "mixsample::_::__pyfunction_segfault_now crash@3 "
                    "<module>@5",
                    0);
        build_310(&s);
        check_merge(&s, MS_MERGE_MIXED, true,
                    "mixsample::segfault_now "
                    "mixsample::_::__pyfunction_segfault_now "
                    "cfunction_vectorcall_FASTCALL_KEYWORDS crash@3 "
                    "_PyFunction_Vectorcall <module>@5 Py_RunMain main",
                    0);
        build_310(&s);
        check_merge(&s, MS_MERGE_PYTHON_ONLY, false, "crash@-1 <module>@-1", 0);
        build_310(&s);
        check_merge(&s, MS_MERGE_NATIVE_ONLY, false,
                    "mixsample::segfault_now "
                    "mixsample::_::__pyfunction_segfault_now "
                    "cfunction_vectorcall_FASTCALL_KEYWORDS "
                    "_PyEval_EvalFrameDefault _PyFunction_Vectorcall "
                    "_PyEval_EvalFrameDefault Py_RunMain main",
                    0);
}

/* 3.11+: one eval call runs several frames; waiting for the GIL keeps the
 * builtin that released it visible. */
static void test_groups_and_gil_wait(void)
{
        struct stacks s = {0};
        native(&s, "__futex_abstimed_wait_common", LIBC);
        native(&s, "take_gil", PY);
        native(&s, "PyEval_RestoreThread", PY);
        native(&s, "time_sleep", PY);
        native(&s, "cfunction_vectorcall_O", PY);
        native(&s, "_PyEval_EvalFrameDefault", PY);
        native(&s, "PyObject_Call", PY);
        native(&s, "pyo3::marker::Python::attach", EXT);
        native(&s, "mixsample::worker", EXT);
        native(&s, "_PyEval_EvalFrameDefault", PY);
        native(&s, "Py_RunMain", PY);
        python(&s, "nap", false);
        python(&s, "callback", true);
        python(&s, "main", false);
        python(&s, "<module>", true);
        check_merge(&s, MS_MERGE_MIXED, false,
                    "__futex_abstimed_wait_common take_gil "
                    "PyEval_RestoreThread time_sleep cfunction_vectorcall_O "
                    "nap@5 callback@5 pyo3::marker::Python::attach "
                    "mixsample::worker main@9 <module>@9",
                    0);
}

/* Off by one: the innermost eval call has not pushed its frame yet. */
static void test_off_by_one(void)
{
        struct stacks s = {0};
        native(&s, "_PyEval_EvalFrameDefault", PY);
        native(&s, "_PyFunction_Vectorcall", PY);
        native(&s, "_PyEval_EvalFrameDefault", PY);
        native(&s, "main", PY);
        python(&s, "f", true);
        check_merge(&s, MS_MERGE_MIXED, false,
                    "_PyEval_EvalFrameDefault _PyFunction_Vectorcall f@2", 0);
        /* And the other way: a frame pushed before its eval call. */
        native(&s, "_PyFunction_Vectorcall", PY);
        native(&s, "_PyEval_EvalFrameDefault", PY);
        native(&s, "main", PY);
        python(&s, "g", true);
        python(&s, "f", true);
        check_merge(&s, MS_MERGE_MIXED, false,
                    "_PyFunction_Vectorcall g@-1 f@1", 0);
}

/* Stacks that cannot be matched: everything is shown, with a warning. */
static void test_mismatch(void)
{
        struct stacks s = {0};
        native(&s, "??", "");
        native(&s, "main", "/x/demo");
        python(&s, "f", true);
        python(&s, "g", true);
        check_merge(&s, MS_MERGE_MIXED, false, "?? main f@-1 g@-1", 1);
        native(&s, "_PyEval_EvalFrameDefault", PY);
        python(&s, "a", true);
        python(&s, "b", true);
        python(&s, "c", true);
        check_merge(&s, MS_MERGE_MIXED, false, "a@-1 b@-1 c@0", 1);
        /* No Python frames at all: native stays as it is. */
        native(&s, "main", "/x/demo");
        check_merge(&s, MS_MERGE_MIXED, false, "main", 0);
}

/* A stripped PGO+LTO build: nothing is named like the eval loop; the
 * groups go where their anchors lie, [sp, caller's sp). */
static void build_stripped(struct stacks *s, uint64_t inner_anchor)
{
        native_sp(s, "clock_nanosleep", LIBC, 0x1000);
        native_sp(s, "??", PY, 0x1100);
        native_sp(s, "??", PY, 0x1200);
        native_sp(s, "??", PY, 0x1300);
        native_sp(s, "??", PY, 0x1500);
        native_sp(s, "PyEval_EvalCode", PY, 0x1600);
        native_sp(s, "main", PY, 0x1700);
        python(s, "leaf", false);
        python_at(s, "mid", inner_anchor);
        python_at(s, "<module>", 0x1520);
}

static void test_placed_by_anchor(void)
{
        struct stacks s = {0};
        build_stripped(&s, 0x1250);
        check_merge(&s, MS_MERGE_MIXED, true,
                    "clock_nanosleep ?? leaf@2 mid@2 ?? <module>@4 "
                    "PyEval_EvalCode main",
                    0);
        /* Outside every frame: the group goes inside the next one placed,
         * and the thread is warned about. */
        build_stripped(&s, 0x900);
        check_merge(&s, MS_MERGE_MIXED, true,
                    "clock_nanosleep ?? ?? ?? leaf@-1 mid@-1 <module>@4 "
                    "PyEval_EvalCode main",
                    1);
        /* A named eval loop that holds no anchor stays a native frame. */
        native_sp(&s, "_PyEval_EvalFrameDefault", PY, 0x1000);
        native_sp(&s, "??", PY, 0x1100);
        native_sp(&s, "main", PY, 0x1200);
        python_at(&s, "f", 0x1180);
        check_merge(&s, MS_MERGE_MIXED, true,
                    "_PyEval_EvalFrameDefault f@1 main", 0);
}

int main(void)
{
        test_one_eval_per_frame();
        test_groups_and_gil_wait();
        test_off_by_one();
        test_mismatch();
        test_placed_by_anchor();
        return unit_finish();
}
