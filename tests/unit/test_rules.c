/* Frame classification rules: the shipped file and user extensions. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "merge/rules.h"
#include "unit.h"

static const char *category(const char *function, const char *module,
                            enum ms_language language)
{
        struct ms_frame frame = {
                .kind = MS_FRAME_NATIVE,
                .function = (char *)function,
                .module = (char *)module,
                .language = language,
        };
        return ms_frame_category(ms_frame_rules(NULL), &frame);
}

static void check(const char *function, const char *module,
                  enum ms_language language, const char *want)
{
        const char *got = category(function, module, language);
        if (!got || strcmp(got, want) != 0)
                fprintf(stderr, "  for %s\n", function);
        CHECK_STR(got, want);
}

static void test_builtin(void)
{
        const char *py = "/usr/bin/python3.11";
        const char *libpy = "/opt/lib/libpython3.12.so.1.0";
        const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        const char *ext = "/x/mixsample.abi3.so";
        enum ms_language C = MS_LANGUAGE_C, R = MS_LANGUAGE_RUST;
        check("_PyEval_EvalFrameDefault", py, C, "eval-loop");
        check("_PyEval_EvalFrameDefault.cold", libpy, C, "eval-loop");
        check("_TAIL_CALL_LOAD_FAST", libpy, C, "eval-loop-tail");
        check("take_gil", py, C, "gil-acquire");
        check("take_gil.lto_priv.0", py, C, "gil-acquire");
        check("PyEval_RestoreThread", py, C, "gil-acquire");
        check("drop_gil.constprop.0", py, C, "gil-release");
        check("PyObject_Call", py, C, "cpython-internal");
        check("cfunction_vectorcall_FASTCALL_KEYWORDS", py, C,
              "cpython-internal");
        check("some_static_helper", libpy, C, "cpython-internal");
        check("Py_FinalizeEx", py, C, "finalization");
        check("finalize_modules", py, C, "finalization");
        check("gc_collect_main", py, C, "gc");
        check("__rustc::rust_begin_unwind", ext, R, "rust-panic");
        check("rust_begin_unwind", ext, R, "rust-panic");
        check("core::panicking::panic_fmt", ext, R, "rust-panic");
        check("core::panicking::panic_cannot_unwind", ext, R, "rust-panic");
        check("std::panicking::panic_with_hook", ext, R, "rust-panic");
        check("std::sys::pal::unix::abort_internal", ext, R, "rust-panic");
        check("pyo3::impl_::trampoline::trampoline", ext, R, "pyo3-trampoline");
        check("mixsample::_::__pyfunction_segfault_now", ext, R,
              "pyo3-trampoline");
        check("pyo3::marker::Python::attach", ext, R, "gil-acquire");
        check("pyo3::marker::Python::detach", ext, R, "gil-release");
        check("pyo3::err::PyErr::restore", ext, R, "pyo3");
        check("std::sys::sync::mutex::futex::Mutex::lock_contended", ext, R,
              "rust-wait");
        check("std::sys::pal::unix::futex::futex_wait", ext, R, "rust-wait");
        check("<std::sys::sync::mutex::futex::Mutex>::lock_contended", ext, R,
              "rust-wait");
        check("<std::sync::poison::mutex::Mutex<u64>>::lock", ext, R,
              "rust-wait");
        check("std::thread::sleep", ext, R, "rust-wait");
        check("alloc::vec::Vec<T>::push", ext, R, "rust-std");
        check("__futex_abstimed_wait_common64", libc, C, "libc-wait");
        check("__futex_abstimed_wait_common", libc, C, "libc-wait");
        check("___pthread_cond_wait", libc, C, "libc-wait");
        check("__GI___clock_nanosleep", libc, C, "libc-wait");
        check("__libc_read", libc, C, "libc-wait");
        check("read", libc, C, "libc-wait");
        check("__pthread_kill_implementation", libc, C, "signal");
        check("raise", libc, C, "signal");
        check("abort", libc, C, "signal");
        check("_dl_fini", "/lib64/ld-linux-x86-64.so.2", C, "finalization");
        check("main", "/x/demo", C, "native");
        check("mixsample::descend", ext, R, "rust");
        check(NULL, NULL, MS_LANGUAGE_UNKNOWN, "native");
        /* Inlined functions named without their path: the file tells. */
        struct ms_frame inl = {
                .kind = MS_FRAME_NATIVE,
                .function = "lock<u64>",
                .file = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/"
                        "library/std/src/sync/poison/mutex.rs",
                .language = R,
        };
        CHECK_STR(ms_frame_category(ms_frame_rules(NULL), &inl), "rust-std");
        inl.file = "/root/.cargo/registry/src/index.crates.io-1949/"
                   "pyo3-0.29.2/src/impl_/trampoline.rs";
        CHECK_STR(ms_frame_category(ms_frame_rules(NULL), &inl),
                  "rust-dependency");
        inl.file = "src/lib.rs";
        CHECK_STR(ms_frame_category(ms_frame_rules(NULL), &inl), "rust");
        /* Names close to rules but not in them. */
        check("reader_thread", "/x/demo", C, "native");
}

static void test_user_rules(void)
{
        struct ms_rules *rules;
        CHECK(ms_rules_create(&rules) == NULL);
        CHECK(ms_rules_add_text(rules, "a function ^foo$\n", "t", false) ==
              NULL);
        CHECK(ms_rules_add_text(rules, "# comment\n\nb function ^fo\n", "u",
                                true) == NULL);
        CHECK_STR(ms_rules_match(rules, "foo", NULL), "b");
        CHECK_STR(ms_rules_match(rules, "foo.cold", NULL), "b");
        CHECK(ms_rules_match(rules, "bar", NULL) == NULL);
        struct ms_error *err =
                ms_rules_add_text(rules, "c function (\n", "v", false);
        CHECK(err && strstr(err->message, "v:1: bad regex"));
        ms_error_destroy(err);
        err = ms_rules_add_text(rules, "c\n", "w", false);
        CHECK(err && strstr(err->message, "w:1:"));
        ms_error_destroy(err);
        err = ms_rules_add_text(rules, "c symbol x\n", "x", false);
        CHECK(err && strstr(err->message, "'module' or 'file'"));
        ms_error_destroy(err);
        ms_rules_destroy(rules);
}

/* Answers are memoised per (function, module, file): the memo must give
 * what matching gives, keep NULL apart from "", see through the subjects'
 * fields, and forget everything when rules are added. */
static void test_memo(void)
{
        struct ms_rules *rules;
        CHECK(ms_rules_create(&rules) == NULL);
        CHECK(ms_rules_add_text(rules,
                                "f function ^foo$\n"
                                "m module ^/lib/x\\.so$\n"
                                "e file ^$\n",
                                "t", false) == NULL);
        for (int round = 0; round < 3; round++) {
                CHECK_STR(ms_rules_match(rules, "foo", NULL), "f");
                CHECK_STR(ms_rules_match(rules, "foo.cold", "/lib/x.so"), "f");
                CHECK_STR(ms_rules_match(rules, "bar", "/lib/x.so"), "m");
                CHECK(ms_rules_match(rules, "bar", NULL) == NULL);
                CHECK(ms_rules_match(rules, NULL, NULL) == NULL);
                /* "" is a file, NULL is none. */
                CHECK_STR(ms_rules_match_file(rules, "bar", NULL, ""), "e");
                CHECK(ms_rules_match_file(rules, "bar", NULL, NULL) == NULL);
                /* Same bytes, split differently between the fields. */
                CHECK_STR(ms_rules_match_file(rules, "foo", "", NULL), "f");
                CHECK(ms_rules_match(rules, "fo", "o") == NULL);
        }
        /* Many distinct subjects: the memo grows and starts over. */
        char name[32];
        for (int i = 0; i < 70000; i++) {
                snprintf(name, sizeof(name), "fn_%d", i);
                if (ms_rules_match(rules, name, NULL) != NULL) {
                        CHECK(!"fn_N matched");
                        break;
                }
        }
        CHECK_STR(ms_rules_match(rules, "foo", NULL), "f");
        /* New rules take effect for subjects already asked about. */
        CHECK(ms_rules_add_text(rules, "g function ^bar$\n", "u", true) ==
              NULL);
        CHECK_STR(ms_rules_match(rules, "bar", NULL), "g");
        CHECK_STR(ms_rules_match(rules, "bar", "/lib/x.so"), "g");
        ms_rules_destroy(rules);
}

int main(void)
{
        /* The user's rules come first: prove it with a file. */
        char path[] = "/tmp/mixstack-rules-XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        fputs("custom-wait function ^my_wait$\n"
              "custom-eval function ^take_gil_helper$\n",
              f);
        fclose(f);
        setenv("MIXSTACK_RULES", path, 1);
        struct ms_error *err = NULL;
        CHECK(ms_frame_rules(&err) != NULL && err == NULL);
        check("my_wait", "/x/demo", MS_LANGUAGE_C, "custom-wait");
        CHECK_STR(category("take_gil_helper", "/x/demo", MS_LANGUAGE_C),
                  "custom-eval");
        unlink(path);
        unsetenv("MIXSTACK_RULES");
        test_builtin();
        test_user_rules();
        test_memo();
        return unit_finish();
}
