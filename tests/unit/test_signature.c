/*
 * Crash signatures: frame normalisation, the signature lists (built-in,
 * user extensions, bad files), signatures of synthetic stacks shaped like
 * the crash samples', and the kind and reason of triages.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/options.h"
#include "merge/rules.h"
#include "triage/signature.h"
#include "unit.h"

static void check_norm(const char *function, const char *want)
{
        char *got = ms_signature_normalize_function(function);
        if (!got || strcmp(got, want) != 0)
                fprintf(stderr, "  normalising %s\n", function);
        CHECK_STR(got, want);
        free(got);
}

static void test_normalize(void)
{
        check_norm("mixsample::segfault_now", "mixsample::segfault_now");
        /* Clone suffixes and per-build hashes. */
        check_norm("take_gil.constprop.0", "take_gil");
        check_norm("_Py_Finalize.part.0.constprop.0", "_Py_Finalize");
        check_norm("pyo3::internal::state::AttachGuard::do_attach_unchecked"
                   ".llvm.11826773138450336034",
                   "pyo3::internal::state::AttachGuard::do_attach_unchecked");
        check_norm("mixsample::foo::h0123456789abcdef", "mixsample::foo");
        /* Generic arguments: legacy and v0 agree. */
        check_norm("core::ptr::drop_in_place<alloc::vec::Vec<u8>>",
                   "core::ptr::drop_in_place");
        check_norm("core::ptr::drop_in_place::<alloc::vec::Vec<u8>>",
                   "core::ptr::drop_in_place");
        check_norm("read_volatile<u64>", "read_volatile");
        check_norm("mixsample::map::<fn() -> u8, u32>", "mixsample::map");
        /* Qualified paths: plain types lose their brackets, trait impls
         * keep them. */
        check_norm("<std::sys::sync::mutex::futex::Mutex>::lock_contended",
                   "std::sys::sync::mutex::futex::Mutex::lock_contended");
        check_norm("<alloc::vec::Vec<u8>>::push", "alloc::vec::Vec::push");
        check_norm("alloc::vec::Vec<T,A>::push", "alloc::vec::Vec::push");
        check_norm("<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop",
                   "<alloc::vec::Vec as core::ops::drop::Drop>::drop");
        check_norm("pyo3::types::tuple::<impl pyo3::call::PyCallArgs for "
                   "(T0,)>::call_positional",
                   "pyo3::types::tuple::<impl pyo3::call::PyCallArgs for "
                   "(T0,)>::call_positional");
        /* Closures of both manglings. */
        check_norm("mixsample::run::{closure#0}", "mixsample::run::{closure}");
        check_norm("mixsample::run::{{closure}}", "mixsample::run::{closure}");
        check_norm("{closure#0}<pyo3::impl_::trampoline::x, *mut u8>",
                   "{closure}");
        /* C++: argument lists, qualifiers, templates, operators. */
        check_norm("std::vector<int, std::allocator<int> >::push_back(int "
                   "const&)",
                   "std::vector::push_back");
        check_norm("Foo::bar() const", "Foo::bar");
        check_norm("(anonymous namespace)::helper(int)",
                   "(anonymous namespace)::helper");
        check_norm("ns::operator<<(std::ostream&, Bar const&)",
                   "ns::operator<<");
        check_norm("Foo::operator()(int) const", "Foo::operator()");
        check_norm("Foo<int>::operator<(Foo const&)", "Foo::operator<");
        /* Unbalanced input is kept, not lost. */
        check_norm("weird<name", "weird<name");
}

static struct ms_frame native(const char *function, const char *module)
{
        struct ms_frame f = {
                .kind = MS_FRAME_NATIVE,
                .function = (char *)function,
                .module = (char *)module,
                .language = function && strstr(function, "::")
                                    ? MS_LANGUAGE_RUST
                                    : MS_LANGUAGE_C,
        };
        f.category = ms_rules_frame_category(ms_frame_rules(NULL), &f);
        return f;
}

static struct ms_frame python(const char *function, const char *file, int line)
{
        struct ms_frame f = {
                .kind = MS_FRAME_PYTHON,
                .language = MS_LANGUAGE_PYTHON,
                .function = (char *)function,
                .file = (char *)file,
                .line = line,
                .category = "python",
        };
        return f;
}

static void check_text(struct ms_frame f, const char *want)
{
        char *got = ms_signature_frame_text(&f);
        CHECK_STR(got, want);
        free(got);
}

static void test_frame_text(void)
{
        check_text(python("parse", "/home/u/proj/tests/test_io.py", 12),
                   "test_io.py:parse");
        check_text(python("<module>", "/x/site-packages/pkg/__init__.py", 1),
                   "pkg/__init__.py:<module>");
        check_text(python("main", "/x/pkg/__main__.py", 3),
                   "pkg/__main__.py:main");
        check_text(python("f", "<frozen runpy>", 3), "<frozen runpy>:f");
        check_text(python("f", NULL, 0), "?:f");
        /* Modules without versions and ABI tags. */
        check_text(native(NULL, "/opt/ext/mixsample.abi3.so"), "mixsample");
        check_text(native(NULL, "/usr/lib/python3.11/lib-dynload/"
                                "_ctypes.cpython-311-x86_64-linux-gnu.so"),
                   "_ctypes");
        check_text(native(NULL, "/x/fast.cpython-313t-x86_64-linux-gnu.so"),
                   "fast");
        check_text(native(NULL, "/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2"),
                   "libffi.so");
        check_text(native(NULL, "/usr/lib/libpython3.12.so.1.0"),
                   "libpython3.12.so");
        check_text(native(NULL, "/usr/lib/libfoo.so"), "libfoo.so");
        check_text(native(NULL, "/usr/lib/libfoo.so.1.rc2"), "libfoo.so.1.rc2");
        check_text(native(NULL, "/usr/bin/python3.11"), "python3.11");
        check_text(native(NULL, NULL), "??");
        check_text(native("free", "/lib/libc.so.6"), "free");
}

static const char *const LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6";
static const char *const EXT = "/a/b/mixsample.abi3.so";
static const char *const LIBPY = "/usr/lib/libpython3.12.so.1.0";

/* The signature of frames (innermost first) with the default lists. */
static char *signature_of(struct ms_frame *frames, size_t n, unsigned max,
                          const char *kind)
{
        struct ms_thread_report t = {.frames = frames, .n_frames = n};
        struct ms_signature_frame *sf = NULL;
        size_t n_sf = 0, cap = 0;
        const struct ms_signature_rules *rules =
                ms_signature_rules_default(NULL);
        CHECK(rules != NULL);
        struct ms_error *err =
                ms_signature_thread(rules, &t, 0, max, &sf, &n_sf, &cap);
        CHECK(err == NULL);
        char *s = ms_signature_join(kind, sf, n_sf);
        for (size_t i = 0; i < n_sf; i++)
                free(sf[i].text);
        free(sf);
        return s;
}

static void check_sig(struct ms_frame *frames, size_t n, unsigned max,
                      const char *kind, const char *want)
{
        char *got = signature_of(frames, n, max, kind);
        CHECK_STR(got, want);
        free(got);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A panic that could not unwind, as in the abort-in-callback sample. */
static void test_panic_stack(void)
{
        struct ms_frame frames[] = {
                native("__pthread_kill_implementation", LIBC),
                native("raise", LIBC),
                native("abort", LIBC),
                native("std::sys::pal::unix::abort_internal", EXT),
                native("std::process::abort", EXT),
                native("std::panicking::panic_with_hook", EXT),
                native("__rustc::rust_begin_unwind", EXT),
                native("core::panicking::panic_cannot_unwind", EXT),
                native("mixsample::boom_callback", EXT),
                native("mixsample::call_extern_callback", EXT),
                native("mixsample::__pyfunction_abort_in_callback", EXT),
                native("pyo3::impl_::trampoline::trampoline", EXT),
                native("pyo3::impl_::trampoline::cfunction_with_keywords", EXT),
                python("run_callbacks", "/s/abort-in-callback.py", 48),
                python("main", "/s/abort-in-callback.py", 52),
                python("<module>", "/s/abort-in-callback.py", 55),
                native("__libc_start_call_main", LIBC),
                native("__libc_start_main", LIBC),
                native("_start", "/usr/bin/python3.12"),
        };
        check_sig(frames, N(frames), 5, "panic",
                  "panic | mixsample::boom_callback | "
                  "mixsample::call_extern_callback | "
                  "mixsample::__pyfunction_abort_in_callback | "
                  "abort-in-callback.py:run_callbacks | "
                  "abort-in-callback.py:main");
        /* Fewer frames; the start-up frames never count. */
        check_sig(frames, N(frames), 2, "panic",
                  "panic | mixsample::boom_callback | "
                  "mixsample::call_extern_callback");
        check_sig(frames, N(frames), 50, "panic",
                  "panic | mixsample::boom_callback | "
                  "mixsample::call_extern_callback | "
                  "mixsample::__pyfunction_abort_in_callback | "
                  "abort-in-callback.py:run_callbacks | "
                  "abort-in-callback.py:main | "
                  "abort-in-callback.py:<module>");
}

/* Python calls a ctypes function pointer whose Python callback calls
 * Rust (the ctypes-callback sample): ctypes and libffi go, named (pyenv)
 * or not (Debian's stripped _ctypes, libffi without symbols), whatever
 * libffi's version. */
static void test_ctypes_bridge(void)
{
        const char *ctypes_311 = "/usr/lib/python3.11/lib-dynload/"
                                 "_ctypes.cpython-311-x86_64-linux-gnu.so";
        const char *ctypes_313 = "/p/lib/python3.13/lib-dynload/"
                                 "_ctypes.cpython-313-x86_64-linux-gnu.so";
        const char *ffi_812 = "/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2";
        const char *ffi_814 = "/usr/lib/x86_64-linux-gnu/libffi.so.8.1.4";
        struct ms_frame stripped[] = {
                native("mixsample::segfault_now", EXT),
                native("mixsample::__pyfunction_segfault", EXT),
                python("on_record", "/s/ctypes-callback.py", 49),
                native(NULL, ctypes_311),
                native(NULL, ctypes_311),
                native(NULL, ffi_812),
                native(NULL, ffi_812),
                native("ffi_call", ffi_812),
                native(NULL, ctypes_311),
                python("dispatch", "/s/ctypes-callback.py", 54),
                python("run_handlers", "/s/ctypes-callback.py", 59),
                python("<module>", "/s/ctypes-callback.py", 62),
        };
        struct ms_frame named[] = {
                native("mixsample::segfault_now", EXT),
                native("mixsample::__pyfunction_segfault", EXT),
                python("on_record", "/s/ctypes-callback.py", 49),
                native("_CallPythonObject", ctypes_313),
                native("closure_fcn", ctypes_313),
                native("ffi_closure_unix64_inner", ffi_814),
                native("ffi_closure_unix64", ffi_814),
                native("ffi_call_unix64", ffi_814),
                native("ffi_call_int", ffi_814),
                native("ffi_call", ffi_814),
                native("_call_function_pointer", ctypes_313),
                native("_ctypes_callproc", ctypes_313),
                native("PyCFuncPtr_call", ctypes_313),
                python("dispatch", "/s/ctypes-callback.py", 54),
                python("string_at", "/p/lib/python3.13/ctypes/__init__.py",
                       520),
                python("run_handlers", "/s/ctypes-callback.py", 59),
        };
        const char *want = "SIGSEGV | mixsample::segfault_now | "
                           "mixsample::__pyfunction_segfault | "
                           "ctypes-callback.py:on_record | "
                           "ctypes-callback.py:dispatch | "
                           "ctypes-callback.py:run_handlers";
        check_sig(stripped, N(stripped), 5, "SIGSEGV", want);
        check_sig(named, N(named), 5, "SIGSEGV", want);
        /* An unnamed frame of another library keeps its module's name,
         * without its version. */
        struct ms_frame lib[] = {
                native(NULL, "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"),
                python("load", "/s/app.py", 3),
        };
        check_sig(lib, N(lib), 5, "SIGSEGV", "SIGSEGV | libz.so | app.py:load");
}

/* Debian unstable's interpreters without libc6-dbg: glibc's static
 * functions have no name, and frames of the interpreter are named from a
 * separate debug file (their module): the signature is the one of a
 * machine with glibc's symbols. */
static void test_unnamed_libc_and_cpython_api(void)
{
        const char *debug = "/usr/lib/debug/.build-id/d4/1ac9e2.debug";
        struct ms_frame sid[] = {
                native(NULL, LIBC),
                native("raise", LIBC),
                native("abort", LIBC),
                native("core::panicking::panic_cannot_unwind", EXT),
                native("mixsample::boom_callback", EXT),
                native("mixsample::__pyfunction_abort_in_callback", EXT),
                native("cfunction_call.lto_priv.0", debug),
                native("_PyObject_MakeTpCall", debug),
                native("PyObject_Vectorcall", debug),
                native("_Py_VectorCallInstrumentation_StackRefSteal"
                       ".constprop.0",
                       debug),
                python("run_callbacks", "/s/abort-in-callback.py", 48),
                native(NULL, LIBC),
        };
        struct ms_frame host[] = {
                native("__pthread_kill_implementation", LIBC),
                native("raise", LIBC),
                native("abort", LIBC),
                native("core::panicking::panic_cannot_unwind", EXT),
                native("mixsample::boom_callback", EXT),
                native("mixsample::__pyfunction_abort_in_callback", EXT),
                python("run_callbacks", "/s/abort-in-callback.py", 48),
                native("__libc_start_call_main", LIBC),
        };
        const char *want = "panic | mixsample::boom_callback | "
                           "mixsample::__pyfunction_abort_in_callback | "
                           "abort-in-callback.py:run_callbacks";
        check_sig(sid, N(sid), 5, "panic", want);
        check_sig(host, N(host), 5, "panic", want);
        /* Named libc frames still count (or prefix what follows). */
        struct ms_frame named[] = {
                native("qsort_r", LIBC),
                python("sort", "/s/app.py", 3),
        };
        check_sig(named, N(named), 5, "SIGSEGV",
                  "SIGSEGV | qsort_r | app.py:sort");
}

/* faulthandler catches the SIGSEGV, dumps the traceback and raises it
 * again: the frames above the signal trampoline are its, not the bug's. */
static void test_faulthandler_sentinel(void)
{
        struct ms_frame plain[] = {
                native("mixsample::segfault_now", EXT),
                native("mixsample::__pyfunction_segfault", EXT),
                python("parse_record", "/s/segfault-in-rust.py", 39),
        };
        struct ms_frame handled[] = {
                native("__pthread_kill_implementation", LIBC),
                native("raise", LIBC),
                native("faulthandler_fatal_error", LIBPY),
                native("my_crash_reporter_hook", "/opt/libreporter.so"),
                native("__restore_rt", LIBC),
                native("mixsample::segfault_now", EXT),
                native("mixsample::__pyfunction_segfault", EXT),
                python("parse_record", "/s/segfault-in-rust.py", 39),
        };
        const char *want = "SIGSEGV | mixsample::segfault_now | "
                           "mixsample::__pyfunction_segfault | "
                           "segfault-in-rust.py:parse_record";
        check_sig(plain, N(plain), 5, "SIGSEGV", want);
        check_sig(handled, N(handled), 5, "SIGSEGV", want);
}

/* Generic library frames combine with the frame after them; runs of one
 * frame collapse; inlined frames never count. */
static void test_prefix_and_collapse(void)
{
        struct ms_frame frames[] = {
                native("__memmove_avx_unaligned_erms", LIBC),
                native("core::ptr::drop_in_place<mixsample::Cache>", EXT),
                native("alloc::vec::Vec<T,A>::truncate", EXT),
                native("mixsample::recurse", EXT),
                native("mixsample::recurse", EXT),
                native("mixsample::recurse", EXT),
                native("mixsample::Cache::clear", EXT),
                native("pyo3::err::PyErr::take", EXT),
                python("flush", "/p/cache.py", 10),
        };
        frames[2].inlined = true;
        check_sig(frames, N(frames), 2, "SIGSEGV",
                  "SIGSEGV | core::ptr::drop_in_place | mixsample::recurse | "
                  "mixsample::Cache::clear");
        /* A prefix frame with no frame after it within the limit goes. */
        check_sig(frames, N(frames), 3, "SIGSEGV",
                  "SIGSEGV | core::ptr::drop_in_place | mixsample::recurse | "
                  "mixsample::Cache::clear | pyo3::err::PyErr::take | "
                  "cache.py:flush");
        /* Nothing but machinery. */
        struct ms_frame machinery[] = {native("raise", LIBC),
                                       native("abort", LIBC)};
        check_sig(machinery, N(machinery), 5, "abort", "abort | (no frames)");
}

/* A Python thread of a test suite: pytest and threading frames go. */
static void test_python_runners(void)
{
        struct ms_frame frames[] = {
                native("mixsample::segfault_now", EXT),
                python("test_parse", "/proj/tests/test_parse.py", 7),
                python("pytest_pyfunc_call",
                       "/venv/lib/python3.12/site-packages/_pytest/python.py",
                       195),
                python("_multicall",
                       "/venv/lib/python3.12/site-packages/pluggy/_callers.py",
                       103),
                python("run", "/usr/lib/python3.12/threading.py", 1010),
                python("_bootstrap_inner", "/usr/lib/python3.12/threading.py",
                       1073),
        };
        check_sig(frames, N(frames), 5, "SIGSEGV",
                  "SIGSEGV | mixsample::segfault_now | "
                  "test_parse.py:test_parse");
}

static void check_rules_error(const char *text, const char *want)
{
        struct ms_signature_rules *rules;
        CHECK(ms_signature_rules_create(&rules) == NULL);
        struct ms_error *err =
                ms_signature_rules_add_text(rules, text, "user.conf", false);
        CHECK(err != NULL);
        if (err) {
                if (!strstr(err->message, want))
                        fprintf(stderr, "  error: %s\n", err->message);
                CHECK(strstr(err->message, want) != NULL);
        }
        ms_error_destroy(err);
        ms_signature_rules_destroy(rules);
}

static void test_rules_files(void)
{
        check_rules_error("# ok\n\nbogus function ^x$\n",
                          "user.conf:3: label must be");
        check_rules_error("irrelevant symbol ^x$\n",
                          "user.conf:1: field must be function, module or "
                          "category");
        check_rules_error("prefix function\n", "user.conf:1: expected");
        /* The engine's own errors keep the file's line numbers. */
        check_rules_error("keep function ^a$\nirrelevant category (\n",
                          "user.conf:2: bad regex");

        /* Category lines match the frame's category; function and module
         * lines come first. */
        struct ms_signature_rules *rules;
        CHECK(ms_signature_rules_create(&rules) == NULL);
        CHECK(ms_signature_rules_add_text(rules,
                                          "irrelevant category ^rust$\n"
                                          "keep function ^mine::\n"
                                          "prefix module libz\\.so\n"
                                          "sentinel category ^signal$\n",
                                          "t.conf", false) == NULL);
        struct ms_frame mine = native("mine::f", EXT);
        struct ms_frame theirs = native("theirs::f", EXT);
        struct ms_frame z = native("inflate", "/lib/libz.so.1");
        struct ms_frame sig = native("raise", LIBC);
        CHECK(ms_signature_label(rules, &mine, "mine::f") ==
              MS_SIGNATURE_FRAME);
        CHECK(ms_signature_label(rules, &theirs, "theirs::f") ==
              MS_SIGNATURE_IRRELEVANT);
        CHECK(ms_signature_label(rules, &z, "inflate") == MS_SIGNATURE_PREFIX);
        CHECK(ms_signature_is_sentinel(rules, &sig, "raise"));
        CHECK(!ms_signature_is_sentinel(rules, &mine, "mine::f"));
        /* Lines added with prepend are tried first. */
        CHECK(ms_signature_rules_add_text(rules,
                                          "irrelevant function ^mine::\n",
                                          "u.conf", true) == NULL);
        CHECK(ms_signature_label(rules, &mine, "mine::f") ==
              MS_SIGNATURE_IRRELEVANT);
        ms_signature_rules_destroy(rules);
}

/* $MIXSTACK_SIGNATURE_RULES is tried before the built-in lists. */
static void test_user_file(const char *path)
{
        const struct ms_error *warning = NULL;
        const struct ms_signature_rules *rules =
                ms_signature_rules_default(&warning);
        CHECK(rules != NULL);
        CHECK(warning == NULL);
        struct ms_frame f = native("mixsample::__pyfunction_segfault", EXT);
        CHECK(ms_signature_label(rules, &f, "x") == MS_SIGNATURE_IRRELEVANT);
        /* The built-in lines are still there. */
        struct ms_frame start = native("__libc_start_main", LIBC);
        CHECK(ms_signature_label(rules, &start, "x") ==
              MS_SIGNATURE_IRRELEVANT);
        unlink(path);
}

static void test_id(void)
{
        char id[17];
        /* FNV-1a 64 test vectors. */
        ms_signature_id("", id);
        CHECK_STR(id, "cbf29ce484222325");
        ms_signature_id("a", id);
        CHECK_STR(id, "af63dc4c8601ec8c");
}

/* ------------------------------------------------------------------------
 * Triages of synthetic reports
 * ------------------------------------------------------------------------ */

static struct ms_triage *triage_of(struct ms_report *r, bool hang)
{
        struct ms_triage_options options = {.hang = hang};
        struct ms_triage *t = NULL;
        struct ms_error *err = ms_triage_create(r, &options, &t);
        CHECK(err == NULL);
        ms_error_destroy(err);
        return t;
}

static void check_contains(const char *s, const char *want)
{
        bool ok = s && strstr(s, want);
        if (!ok)
                fprintf(stderr, "  \"%s\" lacks \"%s\"\n", s ? s : "(null)",
                        want);
        CHECK(ok);
}

static void test_triage_kinds(void)
{
        struct ms_frame segv[] = {
                native("mixsample::segfault_now", EXT),
                python("parse_record", "/s/segfault-in-rust.py", 39),
        };
        struct ms_thread_report crashed = {
                .tid = 100,
                .crashed = true,
                .frames = segv,
                .n_frames = N(segv),
                .python = true,
                .gil = MS_GIL_HELD,
        };
        struct ms_report r = {
                .target_kind = MS_TARGET_CORE,
                .pid = 100,
                .signo = SIGSEGV,
                .crashed_tid = 100,
                .threads = &crashed,
                .n_threads = 1,
                .python_version = "3.12.1",
                .phase = "running",
        };
        struct ms_triage *t = triage_of(&r, false);
        CHECK_STR(t ? t->kind : NULL, "SIGSEGV");
        CHECK_STR(t ? t->crash_module : NULL, "mixsample.abi3.so");
        check_contains(t ? t->reason : NULL,
                       "SIGSEGV in mixsample.abi3.so at "
                       "mixsample::segfault_now, called from Python "
                       "parse_record (segfault-in-rust.py:39)");
        CHECK(t && t->crash_frame == 0 && t->n_signature_frames == 2);
        ms_triage_destroy(t);

        /* A fatal Python error is an abort with Py_FatalError on the
         * stack. */
        struct ms_frame fatal[] = {
                native("raise", LIBC),
                native("abort", LIBC),
                native("fatal_error_exit", LIBPY),
                native("_Py_FatalErrorFunc", LIBPY),
                native("mixsample::bad_decref", EXT),
        };
        crashed.frames = fatal;
        crashed.n_frames = N(fatal);
        r.signo = SIGABRT;
        t = triage_of(&r, false);
        CHECK_STR(t ? t->kind : NULL, "fatal-error");
        CHECK_STR(t ? t->signature : NULL,
                  "fatal-error | mixsample::bad_decref");
        check_contains(t ? t->reason : NULL, "Fatal Python error");
        CHECK(t && t->machinery_frames == 4);
        ms_triage_destroy(t);

        /* A Rust panic with its message. */
        struct ms_panic panic = {
                .kind = "cannot-unwind",
                .panicking = true,
                .site_function = "mixsample::boom",
                .site_index = 4,
                .message = "boom 42",
                .location_file = "src/lib.rs",
                .location_line = 7,
                .location_column = 9,
        };
        crashed.panic = &panic;
        t = triage_of(&r, false);
        CHECK_STR(t ? t->kind : NULL, "panic");
        check_contains(t ? t->reason : NULL,
                       "Rust panic in mixsample::boom: \"boom 42\" at "
                       "src/lib.rs:7:9; it reached a function that cannot "
                       "unwind");
        ms_triage_destroy(t);

        /* No signal: a snapshot, a hang when live past its time, the GIL
         * holder's stack. */
        crashed.panic = NULL;
        crashed.crashed = false;
        crashed.frames = segv;
        crashed.n_frames = N(segv);
        r.signo = 0;
        r.crashed_tid = 0;
        struct ms_interpreter_report interp = {
                .gil_known = true,
                .gil_locked = true,
                .gil_holder_tid = 100,
        };
        r.interpreters = &interp;
        r.n_interpreters = 1;
        t = triage_of(&r, false);
        CHECK_STR(t ? t->kind : NULL, "snapshot");
        ms_triage_destroy(t);
        t = triage_of(&r, true);
        CHECK_STR(t ? t->kind : NULL, "hang");
        check_contains(t ? t->reason : NULL, "thread 100 holds the GIL");
        CHECK_STR(t ? t->signature : NULL, "hang | mixsample::segfault_now | "
                                           "segfault-in-rust.py:parse_record");
        ms_triage_destroy(t);
}

static void test_triage_deadlock(void)
{
        struct ms_frame a[] = {
                native("syscall", LIBC),
                native("<std::sys::sync::mutex::futex::Mutex>::lock_contended",
                       EXT),
                native("mixsample::lock_shared_mutex", EXT),
                python("refresh_cache", "/s/gil-deadlock.py", 48),
        };
        struct ms_frame b[] = {
                native("take_gil", LIBPY),
                native("PyGILState_Ensure", LIBPY),
                native("pyo3_ffi::pystate::PyGILState_Ensure", EXT),
                native("mixsample::attach_while_holding_mutex", EXT),
                native("mixsample::deadlock_thread_b", EXT),
                native("std::sys::backtrace::__rust_begin_short_backtrace",
                       EXT),
                native("start_thread", LIBC),
        };
        struct ms_thread_report threads[] = {
                {.tid = 200,
                 .frames = b,
                 .n_frames = N(b),
                 .gil = MS_GIL_WAITING},
                {.tid = 100,
                 .frames = a,
                 .n_frames = N(a),
                 .python = true,
                 .gil = MS_GIL_HELD},
        };
        pid_t pair[] = {100, 200};
        struct ms_diagnosis d = {
                .kind = "deadlock",
                .message = "deadlock: thread 100 holds the GIL and waits",
                .tids = pair,
                .n_tids = 2,
        };
        struct ms_report r = {
                .target_kind = MS_TARGET_PID,
                .pid = 100,
                .threads = threads,
                .n_threads = N(threads),
                .python_version = "3.9.18",
                .diagnoses = &d,
                .n_diagnoses = 1,
        };
        struct ms_triage *t = triage_of(&r, true);
        CHECK_STR(t ? t->kind : NULL, "deadlock");
        CHECK_STR(t ? t->signature : NULL,
                  "deadlock | mixsample::lock_shared_mutex | "
                  "gil-deadlock.py:refresh_cache || "
                  "mixsample::attach_while_holding_mutex | "
                  "mixsample::deadlock_thread_b");
        CHECK(t && t->n_threads == 2 && t->threads[0] == 1 &&
              t->threads[1] == 0);
        check_contains(t ? t->reason : NULL, "deadlock: thread 100");
        ms_triage_destroy(t);
}

/* The process-wide lists are loaded once, so the user's file is tried in
 * a child process. */
static void test_user_file_in_child(void)
{
        char path[] = "/tmp/mixstack-sigrules-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) {
                CHECK(!"mkstemp");
                return;
        }
        const char text[] = "# a user's list\n"
                            "irrelevant function ::__pyfunction_\\w+$\n";
        CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
        close(fd);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                setenv("MIXSTACK_SIGNATURE_RULES", path, 1);
                test_user_file(path);
                _exit(unit_failed ? 1 : 0);
        }
        int status = -1;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        unlink(path);
}

int main(void)
{
        /* Only the built-in lists: no user file from the environment. */
        unsetenv("MIXSTACK_SIGNATURE_RULES");
        setenv("HOME", "/nonexistent-mixstack-test-home", 1);
        test_user_file_in_child();
        test_normalize();
        test_frame_text();
        test_rules_files();
        test_id();
        test_panic_stack();
        test_faulthandler_sentinel();
        test_ctypes_bridge();
        test_unnamed_libc_and_cpython_api();
        test_prefix_and_collapse();
        test_python_runners();
        test_triage_kinds();
        test_triage_deadlock();
        return unit_finish();
}
