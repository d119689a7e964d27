/*
 * What a thread's classified native frames say about a panic: whether the
 * panic machinery is on the stack, which kind of panic or abort it is, and
 * the panic site. Names are the demangler's (hashes and v0 crate
 * disambiguators removed); since Rust 1.87 the runtime's symbols live in a
 * pseudo-crate "__rustc", so names are matched by path component, never
 * whole (Rust panic reference §1.1, §1.5).
 */
#include <stdlib.h>
#include <string.h>

#include "rust/internal.h"

static bool is_boundary_before(const char *function, const char *at)
{
        return at == function || at[-1] == ':' || at[-1] == '<' ||
               at[-1] == ' ' || at[-1] == '&';
}

static bool is_boundary_after(char c)
{
        return c == '\0' || c == ':' || c == '<' || c == '>' || c == '.' ||
               c == ' ' || c == ',' || c == '(';
}

bool ms_rust_name_has(const char *function, const char *component)
{
        size_t len = strlen(component);
        if (!function || !len)
                return false;
        for (const char *at = strstr(function, component); at;
             at = strstr(at + 1, component)) {
                if (is_boundary_before(function, at) &&
                    is_boundary_after(at[len]))
                        return true;
        }
        return false;
}

static bool starts_with(const char *s, const char *prefix)
{
        return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_native(const struct ms_frame *f)
{
        return f->kind == MS_FRAME_NATIVE;
}

static bool has_category(const struct ms_frame *f, const char *category)
{
        return f->category && strcmp(f->category, category) == 0;
}

/* std::panicking::{try,catch_unwind} and their do_call run on every call
 * through catch_unwind (PyO3's trampolines), panic or not; only their
 * cleanup belongs to a panic. */
static bool is_catch_side(const char *function)
{
        if (ms_rust_name_has(function, "cleanup"))
                return false;
        return ms_rust_name_has(function, "try") ||
               ms_rust_name_has(function, "catch_unwind") ||
               ms_rust_name_has(function, "do_call") ||
               ms_rust_name_has(function, "do_catch");
}

/* _Unwind_RaiseException and friends serve C++ exceptions too. */
static bool is_unwinder(const char *function)
{
        return starts_with(function, "_Unwind_");
}

static bool is_machinery(const struct ms_frame *f)
{
        return is_native(f) && has_category(f, "rust-panic") && f->function &&
               !is_catch_side(f->function);
}

/* Frames that exist only while a panic is under way (reference §1.5, plus
 * core::panicking, the runtime entry and resume_unwind). */
static bool is_panic_frame(const char *fn)
{
        static const char *const std_parts[] = {
                "begin_panic_handler",
                "panic_handler",
                "rust_panic_with_hook",
                "panic_with_hook",
                "begin_panic",
                "default_hook",
                "rust_panic_without_hook",
                "resume_unwind",
                "panic_count",
                "cleanup",
                "rust_panic",
        };
        if (!fn)
                return false;
        if (ms_rust_name_has(fn, "rust_begin_unwind") ||
            ms_rust_name_has(fn, "__rust_start_panic") ||
            starts_with(fn, "core::panicking::") ||
            strcmp(fn, "rust_panic") == 0 ||
            strcmp(fn, "__rustc::rust_panic") == 0)
                return true;
        if (starts_with(fn, "std::panic::"))
                return ms_rust_name_has(fn, "resume_unwind") ||
                       ms_rust_name_has(fn, "panic_any");
        if (!starts_with(fn, "std::panicking::"))
                return false;
        for (size_t i = 0; i < MS_ARRAY_SIZE(std_parts); i++) {
                if (ms_rust_name_has(fn, std_parts[i]))
                        return true;
        }
        return false;
}

static bool is_abort_frame(const char *fn)
{
        return ms_rust_name_has(fn, "abort_internal") ||
               (starts_with(fn, "std::process::") &&
                ms_rust_name_has(fn, "abort"));
}

/* Facts gathered over the machinery frames. */
struct seen {
        bool machinery, rust_machinery, panic, abort, cannot_unwind, in_cleanup,
                foreign, nounwind, abort_runtime;
        size_t outermost;
};

static void see_frame(const struct ms_frame *f, size_t i, struct seen *s)
{
        const char *fn = f->function;
        s->machinery = true;
        s->outermost = i;
        if (!is_unwinder(fn))
                s->rust_machinery = true;
        s->panic = s->panic || is_panic_frame(fn);
        s->abort = s->abort || is_abort_frame(fn);
        s->cannot_unwind =
                s->cannot_unwind || ms_rust_name_has(fn, "panic_cannot_unwind");
        s->in_cleanup =
                s->in_cleanup || ms_rust_name_has(fn, "panic_in_cleanup");
        s->foreign =
                s->foreign || ms_rust_name_has(fn, "__rust_foreign_exception");
        s->nounwind = s->nounwind || ms_rust_name_has(fn, "panic_nounwind") ||
                      ms_rust_name_has(fn, "panic_nounwind_fmt") ||
                      ms_rust_name_has(fn, "panic_nounwind_nobacktrace");
        /* 1.87+: __rustc::__rust_abort; before: panic_abort's
         * __rust_start_panic::abort. */
        s->abort_runtime = s->abort_runtime ||
                           ms_rust_name_has(fn, "__rust_abort") ||
                           (ms_rust_name_has(fn, "__rust_start_panic") &&
                            ms_rust_name_has(fn, "abort"));
}

static enum ms_rust_panic_kind kind_of(const struct seen *s)
{
        if (s->cannot_unwind)
                return MS_RUST_PANIC_CANNOT_UNWIND;
        if (s->in_cleanup)
                return MS_RUST_PANIC_IN_CLEANUP;
        if (s->foreign)
                return MS_RUST_PANIC_FOREIGN_EXCEPTION;
        if (s->nounwind)
                return MS_RUST_PANIC_NOUNWIND;
        if (s->abort_runtime)
                return MS_RUST_PANIC_ABORT_RUNTIME;
        if (s->panic && s->abort)
                return MS_RUST_PANIC_ABORTED;
        if (s->panic)
                return MS_RUST_PANIC_IN_PROGRESS;
        if (s->abort)
                return MS_RUST_PANIC_PROCESS_ABORT;
        return MS_RUST_PANIC_NONE;
}

/* Rust's own library: by name, or by the source file of an inlined frame
 * whose DWARF name is not qualified ("unwrap<T>"). */
static bool is_library_frame(const struct ms_frame *f)
{
        static const char *const prefixes[] = {
                "std::",     "core::",        "alloc::",
                "__rustc::", "<std::",        "<core::",
                "<alloc::",  "panic_abort::", "panic_unwind::",
        };
        for (size_t i = 0; i < MS_ARRAY_SIZE(prefixes); i++) {
                if (starts_with(f->function, prefixes[i]))
                        return true;
        }
        return f->file && ms_rust_is_library_file(f->file);
}

static bool set_site(const struct ms_frame *f, int index,
                     struct ms_rust_thread *out)
{
        bool ok = true;
        out->site_index = index;
        out->site_function = ms_strdup_or_null(f->function, &ok);
        out->site_module = ms_strdup_or_null(f->module, &ok);
        out->site_file = ms_strdup_or_null(f->file, &ok);
        out->site_line = f->line;
        out->site_column = f->column;
        return ok;
}

/* The first frame outer of the machinery that is neither Python nor Rust's
 * library: for a cannot-unwind abort that is the extern "C" function,
 * whose frame called panic_cannot_unwind from its terminate pad. */
static bool find_site(const struct ms_frame *frames, size_t n, size_t from,
                      struct ms_rust_thread *out)
{
        for (size_t i = from; i < n && i <= (size_t)INT32_MAX; i++) {
                const struct ms_frame *f = &frames[i];
                if (!is_native(f) || !f->function || is_library_frame(f))
                        continue;
                return set_site(f, (int)i, out);
        }
        return true;
}

bool ms_rust_frames_classify(const struct ms_frame *frames, size_t n,
                             struct ms_rust_thread *out)
{
        struct seen s = {0};
        out->site_index = -1;
        for (size_t i = 0; frames && i < n; i++) {
                if (is_machinery(&frames[i]))
                        see_frame(&frames[i], i, &s);
        }
        /* Unwinder frames alone are a C++ exception, not a panic. */
        if (!s.rust_machinery)
                return true;
        out->in_machinery = true;
        out->kind = kind_of(&s);
        out->panicking = out->kind != MS_RUST_PANIC_NONE &&
                         out->kind != MS_RUST_PANIC_PROCESS_ABORT;
        return find_site(frames, n, s.outermost + 1, out);
}

const char *ms_rust_panic_kind_name(enum ms_rust_panic_kind kind)
{
        switch (kind) {
        case MS_RUST_PANIC_NONE:
                return "none";
        case MS_RUST_PANIC_IN_PROGRESS:
                return "in-progress";
        case MS_RUST_PANIC_ABORT_RUNTIME:
                return "panic-abort";
        case MS_RUST_PANIC_CANNOT_UNWIND:
                return "cannot-unwind";
        case MS_RUST_PANIC_IN_CLEANUP:
                return "in-cleanup";
        case MS_RUST_PANIC_NOUNWIND:
                return "nounwind";
        case MS_RUST_PANIC_ABORTED:
                return "aborted";
        case MS_RUST_PANIC_FOREIGN_EXCEPTION:
                return "foreign-exception";
        case MS_RUST_PANIC_PROCESS_ABORT:
                return "process-abort";
        }
        return "unknown";
}
