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
        return ms_rules_frame_category(ms_frame_rules(NULL), &frame);
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
        CHECK_STR(ms_rules_frame_category(ms_frame_rules(NULL), &inl),
                  "rust-std");
        inl.file = "/root/.cargo/registry/src/index.crates.io-1949/"
                   "pyo3-0.29.2/src/impl_/trampoline.rs";
        CHECK_STR(ms_rules_frame_category(ms_frame_rules(NULL), &inl),
                  "rust-dependency");
        inl.file = "src/lib.rs";
        CHECK_STR(ms_rules_frame_category(ms_frame_rules(NULL), &inl), "rust");
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

/* glibc 2.36's condition-variable and futex waits under every name a stack
 * shows them by: the public symbols (versioned in the dynamic table),
 * their ___name / ___name64 / __GI_ aliases in the debug symbols, and the
 * inlined helpers DWARF names. All wait like pthread_cond_wait. */
static void test_libc_cond_wait(void)
{
        static const char *const waits[] = {
                "pthread_cond_wait",
                "pthread_cond_timedwait",
                "pthread_cond_clockwait",
                "__pthread_cond_wait",
                "__pthread_cond_timedwait",
                "___pthread_cond_wait",
                "___pthread_cond_timedwait",
                "___pthread_cond_timedwait64",
                "___pthread_cond_clockwait64",
                "__pthread_cond_wait_2_0",
                "__pthread_cond_timedwait_2_0",
                "__GI___pthread_cond_wait",
                "__GI___pthread_cond_timedwait",
                "__GI___pthread_cond_clockwait",
                "__pthread_cond_wait_common",
                "__pthread_cond_wait_common.constprop.0",
                "__futex_abstimed_wait_common",
                "__futex_abstimed_wait_common64",
                "__futex_abstimed_wait64",
                "__futex_abstimed_wait_cancelable64",
                "__GI___futex_abstimed_wait64",
                "__GI___futex_abstimed_wait_cancelable64",
                "futex_wait",
                "futex_wait_simple",
                "__lll_lock_wait",
                "__lll_lock_wait_private",
                /* The same prefixes on the other blocking calls. */
                "pthread_mutex_lock",
                "___pthread_mutex_lock",
                "__GI___pthread_mutex_lock",
                "___pthread_mutex_timedlock64",
                "__pthread_mutex_lock_full",
                "__pthread_mutex_clocklock_common",
                "pthread_rwlock_rdlock",
                "___pthread_rwlock_wrlock",
                "___pthread_rwlock_timedrdlock64",
                "pthread_join",
                "___pthread_join",
                "__GI___pthread_join",
                "___pthread_clockjoin_np64",
                "__pthread_clockjoin_ex",
                NULL,
        };
        const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        for (size_t i = 0; waits[i]; i++)
                check(waits[i], libc, MS_LANGUAGE_C, "libc-wait");
        /* Calls that do not block. */
        static const char *const others[] = {
                "pthread_cond_signal",
                "___pthread_cond_broadcast",
                "__pthread_cond_init",
                "pthread_mutex_unlock",
                "___pthread_mutex_trylock",
                "__pthread_mutex_unlock_full",
                "pthread_rwlock_unlock",
                "___pthread_rwlock_unlock",
                "pthread_rwlock_tryrdlock",
                "pthread_tryjoin_np",
                "futex_wake",
                "my_pthread_cond_wait",
                NULL,
        };
        for (size_t i = 0; others[i]; i++)
                check(others[i], libc, MS_LANGUAGE_C, "native");
}

/* PyO3's attach path (pyo3::internal::state::AttachGuard, PyO3 >= 0.27:
 * attach -> try_attach / attach_unchecked -> do_attach_unchecked, which
 * calls PyGILState_Ensure) and the GILGuard of older PyO3, with legacy and
 * v0 (<Type>::method) demangling. */
static void test_pyo3_attach(void)
{
        static const char *const acquire[] = {
                "pyo3::internal::state::AttachGuard::do_attach_unchecked",
                "pyo3::internal::state::AttachGuard::attach_unchecked",
                "pyo3::internal::state::AttachGuard::try_attach",
                "pyo3::internal::state::AttachGuard::attach",
                "pyo3::internal::state::AttachGuard::acquire",
                "pyo3::internal::state::AttachGuard::acquire_unchecked",
                "<pyo3::internal::state::AttachGuard>::do_attach_unchecked",
                "<pyo3::internal::state::AttachGuard>::attach",
                "pyo3::gil::GILGuard::acquire",
                "pyo3::gil::GILGuard::acquire_unchecked",
                "<pyo3::gil::GILGuard>::acquire_unchecked",
                "pyo3::gil::ensure_gil",
                "pyo3::gil::ensure_gil_unchecked",
                "pyo3::marker::Python::attach",
                "pyo3::marker::Python::try_attach",
                "pyo3::marker::Python::attach_unchecked",
                "<pyo3::marker::Python>::attach::<u64, f>",
                "pyo3::marker::Python::with_gil",
                NULL,
        };
        const char *ext = "/x/mixsample.abi3.so";
        for (size_t i = 0; acquire[i]; i++)
                check(acquire[i], ext, MS_LANGUAGE_RUST, "gil-acquire");
        /* Neighbours that take nothing: the fast path that assumes the
         * thread attached, the attach count, and the guard's drop. */
        static const char *const others[] = {
                "pyo3::internal::state::AttachGuard::assume",
                "pyo3::internal::state::AttachGuard::python",
                "pyo3::internal::state::thread_is_attached",
                "pyo3::internal::state::increment_attach_count",
                "pyo3::internal::state::decrement_attach_count",
                "<pyo3::internal::state::AttachGuard as "
                "core::ops::drop::Drop>::drop",
                "pyo3::gil::GILGuard::assume",
                NULL,
        };
        for (size_t i = 0; others[i]; i++) {
                const char *got = category(others[i], ext, MS_LANGUAGE_RUST);
                if (!got || strcmp(got, "gil-acquire") == 0)
                        fprintf(stderr, "  for %s\n", others[i]);
                CHECK(got && strcmp(got, "gil-acquire") != 0);
        }
}

/* Errors name the line of the text, 1-based, counting blank lines (empty,
 * white space only, CRLF) and comments before it. */
static void test_error_lines(void)
{
        struct ms_rules *rules;
        CHECK(ms_rules_create(&rules) == NULL);
        struct ms_error *err = ms_rules_add_text(rules,
                                                 "# header\n"
                                                 "\n"
                                                 "\n"
                                                 "a function ^a$\n"
                                                 "   \n"
                                                 "# comment\n"
                                                 "\t\n"
                                                 "\n"
                                                 "b function (\n"
                                                 "c function ^c$\n",
                                                 "r.conf", false);
        bool ok = err && strstr(err->message, "r.conf:9: bad regex");
        if (!ok)
                fprintf(stderr, "  got: %s\n", err ? err->message : "");
        CHECK(ok);
        ms_error_destroy(err);
        /* Blank lines before the first line, and a missing field. */
        err = ms_rules_add_text(rules, "\n\n\n# x\n\nlonely\n", "s", false);
        CHECK(err && strstr(err->message, "s:6: expected"));
        ms_error_destroy(err);
        /* A bad field after CRLF blank lines. */
        err = ms_rules_add_text(rules,
                                "a function ^a$\r\n\r\n\r\n# c\r\n"
                                "a symbol ^a$\r\n",
                                "t", false);
        CHECK(err && strstr(err->message, "t:5: field must be"));
        ms_error_destroy(err);
        /* The last line without a newline. */
        err = ms_rules_add_text(rules, "\n\na function [", "u", false);
        CHECK(err && strstr(err->message, "u:3: bad regex"));
        ms_error_destroy(err);
        /* CRLF blank lines are blank, not malformed. */
        CHECK(ms_rules_add_text(rules, "\r\n# c\r\n\r\nz function ^z$\r\n", "v",
                                false) == NULL);
        CHECK_STR(ms_rules_match(rules, "z", NULL), "z");
        ms_rules_destroy(rules);

        /* The same through a file: the message names the path's line. */
        char path[] = "/tmp/mixstack-rules-lines-XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        fputs("# rules\n\n\nok function ^ok$\n\n# next\nbad function (?<\n", f);
        fclose(f);
        CHECK(ms_rules_create(&rules) == NULL);
        err = ms_rules_add_file(rules, path, false, false);
        char want[64];
        snprintf(want, sizeof(want), "%s:7: bad regex", path);
        CHECK(err && strstr(err->message, want));
        ms_error_destroy(err);
        ms_rules_destroy(rules);
        unlink(path);
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
        test_libc_cond_wait();
        test_pyo3_attach();
        test_error_lines();
        return unit_finish();
}
