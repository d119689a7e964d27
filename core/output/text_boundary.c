/* The boundary state as text: GIL, exceptions, panics, phase, diagnoses. */
#include <inttypes.h>
#include <string.h>

#include "output/printers.h"

/* "123 (name)" */
static void text_tid(const struct ms_report *r, pid_t tid, FILE *out)
{
        fprintf(out, "%d", (int)tid);
        const struct ms_thread_report *t = ms_report_find_thread(r, tid);
        if (t && t->name) {
                fputs(" (", out);
                ms_text_write_safe(out, t->name);
                fputc(')', out);
        }
}

static const char *frame_name(const struct ms_frame *f)
{
        if (f->qualname)
                return f->qualname;
        return f->function ? f->function : "??";
}

void ms_text_diagnoses(const struct ms_report *r, FILE *out)
{
        for (size_t i = 0; i < r->n_diagnoses; i++) {
                fputs("diagnosis: ", out);
                ms_text_write_safe(out, r->diagnoses[i].message);
                fputc('\n', out);
        }
}

static void text_gil_of(const struct ms_report *r,
                        const struct ms_interpreter_report *interp, FILE *out)
{
        if (r->n_interpreters > 1)
                fprintf(out, "GIL of interpreter %" PRId64 ": ", interp->id);
        else
                fputs("GIL: ", out);
        if (interp->gil_disabled)
                fputs("none (free-threaded build running without a GIL)", out);
        else if (!interp->gil_known)
                fputs("unknown", out);
        else if (!interp->gil_locked)
                fputs("free (nobody holds it)", out);
        else if (!interp->gil_holder_tid)
                fputs("held by a thread that is not in the target", out);
        else {
                fputs("held by thread ", out);
                text_tid(r, interp->gil_holder_tid, out);
        }
        fputc('\n', out);
}

/* The GIL holder of each interpreter, the waiters, the diagnoses. */
void ms_text_gil(const struct ms_report *r, FILE *out)
{
        if (!r->python_version) {
                fputs("GIL: no Python interpreter found\n", out);
                return;
        }
        for (size_t i = 0; i < r->n_interpreters; i++)
                text_gil_of(r, &r->interpreters[i], out);
        bool any = false;
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *t = &r->threads[i];
                if (t->gil != MS_GIL_WAITING)
                        continue;
                fputs(any ? ", " : "waiting for the GIL: ", out);
                text_tid(r, t->tid, out);
                if (t->gil_wait_frame >= 0 &&
                    (size_t)t->gil_wait_frame < t->n_frames) {
                        fputs(" in ", out);
                        ms_text_write_safe(
                                out, frame_name(&t->frames[t->gil_wait_frame]));
                }
                any = true;
        }
        if (any)
                fputc('\n', out);
        ms_text_diagnoses(r, out);
}

static void text_traceback(const struct ms_exception *e, FILE *out)
{
        if (!e->n_traceback)
                return;
        fputs("    Traceback (most recent call last):\n", out);
        for (size_t i = 0; i < e->n_traceback; i++) {
                const struct ms_traceback_entry *tb = &e->traceback[i];
                fputs("      File \"", out);
                ms_text_write_safe(out, tb->file ? tb->file : "?");
                fprintf(out, "\", line %d, in ", tb->line);
                ms_text_write_safe(out, tb->function ? tb->function : "?");
                fputc('\n', out);
        }
}

static void text_exception(const struct ms_exception *e, FILE *out)
{
        ms_text_write_safe(out, e->type ? e->type : "<unknown type>");
        if (e->message && *e->message) {
                fputs(": ", out);
                ms_text_write_safe(out, e->message);
                if (e->message_truncated)
                        fputs("...", out);
        }
        if (e->is_panic_exception)
                fputs("  [a Rust panic, raised by PyO3]", out);
        fputc('\n', out);
        text_traceback(e, out);
        if (e->error) {
                fputs("    (", out);
                ms_text_write_safe(out, e->error);
                fputs(")\n", out);
        }
}

static void text_chain(const struct ms_report *r,
                       const struct ms_thread_report *t, const char *what,
                       const struct ms_exception_chain *chain, FILE *out)
{
        if (!chain->n)
                return;
        fputs("thread ", out);
        text_tid(r, t->tid, out);
        fprintf(out, ", %s: ", what);
        text_exception(&chain->items[0], out);
        for (size_t i = 1; i < chain->n; i++) {
                const struct ms_exception *e = &chain->items[i];
                fprintf(out, "  %s: ",
                        e->link && strcmp(e->link, "cause") == 0
                                ? "caused by"
                                : "while handling");
                text_exception(e, out);
        }
        if (chain->truncated)
                fputs("  (the chain goes on)\n", out);
}

/* Pending and handled exceptions of every thread. */
void ms_text_errors(const struct ms_report *r, FILE *out)
{
        bool any = false;
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *t = &r->threads[i];
                text_chain(r, t, "pending", &t->pending, out);
                text_chain(r, t, "handled", &t->handled, out);
                any = any || t->pending.n || t->handled.n;
        }
        if (!any)
                fputs(r->python_version
                              ? "exceptions: none pending or handled\n"
                              : "exceptions: no Python interpreter found\n",
                      out);
}

/* How a heuristic found something, for people. */
static const char *recovered_by_text(const char *by)
{
        if (!by)
                return "memory";
        if (strcmp(by, "exception-object") == 0)
                return "a live unwinder exception object";
        if (strcmp(by, "hook-buffer") == 0)
                return "the panic hook's text buffer";
        if (strcmp(by, "location-scan") == 0)
                return "a scan of the stack";
        return by;
}

static void text_panic(const struct ms_report *r,
                       const struct ms_thread_report *t, FILE *out)
{
        const struct ms_panic *p = t->panic;
        /* std::process::abort without a panic is machinery, not a panic. */
        fputs(p->panicking ? "panic: thread " : "rust abort: thread ", out);
        text_tid(r, t->tid, out);
        fprintf(out, ": %s", p->kind ? p->kind : "?");
        if (p->site_function) {
                fputs(" at ", out);
                ms_text_write_safe(out, p->site_function);
                if (p->site_file) {
                        fputs(" (", out);
                        ms_text_write_safe(out, p->site_file);
                        if (p->site_line > 0)
                                fprintf(out, ":%d", p->site_line);
                        fputc(')', out);
                }
        }
        fputc('\n', out);
        if (p->message) {
                fputs("  message: \"", out);
                ms_text_write_safe(out, p->message);
                fprintf(out, "\" (recovered from %s: a heuristic)\n",
                        recovered_by_text(p->message_recovered_by));
        }
        if (p->location_file) {
                fputs("  location: ", out);
                ms_text_write_safe(out, p->location_file);
                fprintf(out, ":%d:%d (recovered from %s: a heuristic)\n",
                        p->location_line, p->location_column,
                        recovered_by_text(p->location_recovered_by));
        }
        if (p->local_panic_count >= 0)
                fprintf(out, "  thread's panic count: %" PRId64 "%s\n",
                        p->local_panic_count,
                        p->in_panic_hook ? " (in the panic hook)" : "");
}

/* Whether a thread's panic is in module m: its site is there, or it is
 * not known where it is. */
static bool panic_in_module(const struct ms_panic *p,
                            const struct ms_rust_module_report *m)
{
        if (!p->site_module || !m->path)
                return true;
        const char *a = strrchr(p->site_module, '/');
        const char *b = strrchr(m->path, '/');
        return strcmp(a ? a + 1 : p->site_module, b ? b + 1 : m->path) == 0;
}

/* A module's GLOBAL_PANIC_COUNT counts panics under way, a nested panic
 * (a panic while panicking) twice: the threads are counted from the
 * stacks. */
static void text_panic_count(const struct ms_report *r,
                             const struct ms_rust_module_report *m, FILE *out)
{
        uint64_t count = m->global_panic_count;
        if (!count)
                fputs(": no panic under way", out);
        else
                fprintf(out, ": %" PRIu64 " panic%s under way", count,
                        count == 1 ? "" : "s");
        size_t n = 0;
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_panic *p = r->threads[i].panic;
                n += p && p->panicking && panic_in_module(p, m);
        }
        if (n) {
                fprintf(out, " in %zu thread%s:", n, n == 1 ? "" : "s");
                const char *sep = " ";
                for (size_t i = 0; i < r->n_threads; i++) {
                        const struct ms_panic *p = r->threads[i].panic;
                        if (!p || !p->panicking || !panic_in_module(p, m))
                                continue;
                        fprintf(out, "%s%d", sep, (int)r->threads[i].tid);
                        sep = ", ";
                }
        } else if (count) {
                fputs(" (in threads whose stacks do not show it)", out);
        }
        if (count > n && n)
                fputs(" (a panic while panicking counts twice)", out);
        if (m->always_abort)
                fputs(", always-abort set", out);
        fputc('\n', out);
}

/* Rust panic state: each thread in the panic machinery, each module's
 * counter. */
void ms_text_panic(const struct ms_report *r, FILE *out)
{
        bool any = false;
        for (size_t i = 0; i < r->n_threads; i++) {
                if (r->threads[i].panic) {
                        text_panic(r, &r->threads[i], out);
                        any = true;
                }
        }
        /* Panics PyO3 caught and turned into Python exceptions. */
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *t = &r->threads[i];
                const struct ms_exception_chain *chains[] = {&t->pending,
                                                             &t->handled};
                for (size_t c = 0; c < 2; c++) {
                        if (!chains[c]->n ||
                            !chains[c]->items[0].is_panic_exception)
                                continue;
                        fputs("panic: thread ", out);
                        text_tid(r, t->tid, out);
                        fprintf(out, ": caught by PyO3, %s as ",
                                c == 0 ? "pending" : "being handled");
                        text_exception(&chains[c]->items[0], out);
                        any = true;
                }
        }
        if (!any)
                fputs("panic: no thread is in Rust's panic machinery\n", out);
        for (size_t i = 0; i < r->n_rust_modules; i++) {
                const struct ms_rust_module_report *m = &r->rust_modules[i];
                fputs("rust module ", out);
                ms_text_write_safe(out, m->path ? m->path : "?");
                if (m->count_known)
                        text_panic_count(r, m, out);
                else {
                        fputs(": panic count unknown (", out);
                        ms_text_write_safe(out,
                                           m->count_unknown_reason
                                                   ? m->count_unknown_reason
                                                   : "?");
                        fputs(")\n", out);
                }
        }
}

/* The interpreter's lifecycle phase. */
void ms_text_phase(const struct ms_report *r, FILE *out)
{
        if (!r->phase) {
                fputs("phase: no Python interpreter found\n", out);
                return;
        }
        fprintf(out, "phase: %s", r->phase);
        if (r->finalize_step) {
                fprintf(out, " (%s%s)", r->finalize_step,
                        r->finalize_step_inferred ? ", inferred" : "");
        }
        if (r->finalizing_tid) {
                fputs(" in thread ", out);
                text_tid(r, r->finalizing_tid, out);
        }
        fputc('\n', out);
        if (r->exit_tid) {
                fputs("process exit: thread ", out);
                text_tid(r, r->exit_tid, out);
                fputs(" is in the C library's exit machinery\n", out);
        }
}

/* The summary printed before the stacks: only what is worth a look. */
void ms_text_summary(const struct ms_report *r, FILE *out)
{
        if (r->python_version) {
                ms_text_phase(r, out);
                for (size_t i = 0; i < r->n_interpreters; i++)
                        text_gil_of(r, &r->interpreters[i], out);
                ms_text_diagnoses(r, out);
        }
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *t = &r->threads[i];
                text_chain(r, t, "pending", &t->pending, out);
                text_chain(r, t, "handled", &t->handled, out);
                if (t->panic)
                        text_panic(r, t, out);
        }
}
