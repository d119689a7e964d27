/*
 * The reason of a triage: one or two sentences saying what happened,
 * where, and what the report adds (the panic's message, a pending
 * PanicException, the lifecycle phase, the diagnoses).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triage/internal.h"

const char *ms_triage_basename(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

const char *ms_triage_frame_name(const struct ms_frame *f)
{
        if (f->qualname)
                return f->qualname;
        return f->function ? f->function : "??";
}

const struct ms_frame *ms_triage_python_caller(
        const struct ms_thread_report *th, size_t from)
{
        for (size_t i = from; i < th->n_frames; i++) {
                if (th->frames[i].kind == MS_FRAME_PYTHON)
                        return &th->frames[i];
        }
        return NULL;
}

/* A memstream being written, to end sentences once. */
struct text {
        FILE *out;
        char *buf;
        size_t len;
};

/* End the sentence being written, unless it ended itself. */
static void full_stop(struct text *x)
{
        fflush(x->out);
        if (x->len && x->buf[x->len - 1] != '.')
                fputc('.', x->out);
}

/* " (file:line)" when known. */
static void where(FILE *out, const char *file, int line)
{
        if (!file)
                return;
        fprintf(out, " (%s", file);
        if (line > 0)
                fprintf(out, ":%d", line);
        fputc(')', out);
}

static void native_frame(FILE *out, const struct ms_frame *f)
{
        if (f->function) {
                fputs(f->function, out);
                where(out, f->file, f->line);
        } else {
                fputs("an unnamed function (no symbols)", out);
        }
}

/* ", called from Python FUNC (file.py:12)" */
static void python_caller(FILE *out, const struct ms_thread_report *th,
                          size_t from)
{
        const struct ms_frame *py = ms_triage_python_caller(th, from);
        if (!py)
                return;
        fprintf(out, ", called from Python %s", ms_triage_frame_name(py));
        where(out, py->file ? ms_triage_basename(py->file) : NULL, py->line);
}

static const char *panic_outcome(const char *kind)
{
        static const struct {
                const char *kind, *text;
        } outcomes[] = {
                {"cannot-unwind", "it reached a function that cannot unwind "
                                  "(extern \"C\"), so Rust aborted"},
                {"panic-abort", "the code is built with panic=abort"},
                {"in-cleanup", "it panicked again while unwinding (a panic "
                               "in a destructor), so Rust aborted"},
                {"nounwind", "it was a panic that cannot unwind, so Rust "
                             "aborted"},
                {"aborted", "the panic runtime aborted"},
                {"foreign-exception", "a foreign exception reached Rust, "
                                      "which aborted"},
                {"in-progress", "it was still unwinding"},
        };
        for (size_t i = 0; kind && i < sizeof(outcomes) / sizeof(outcomes[0]);
             i++) {
                if (strcmp(outcomes[i].kind, kind) == 0)
                        return outcomes[i].text;
        }
        return NULL;
}

static void panic_reason(FILE *out, const struct ms_triage *t,
                         const struct ms_thread_report *th)
{
        const struct ms_panic *p = th->panic;
        fputs("Rust panic", out);
        if (p->site_function) {
                fprintf(out, " in %s", p->site_function);
                where(out, p->site_file, p->site_line);
        }
        if (p->message)
                fprintf(out, ": \"%s\"", p->message);
        if (p->location_file) {
                fprintf(out, " at %s", p->location_file);
                if (p->location_line > 0)
                        fprintf(out, ":%d", p->location_line);
                if (p->location_column > 0)
                        fprintf(out, ":%d", p->location_column);
        }
        const char *outcome = panic_outcome(p->kind);
        if (outcome)
                fprintf(out, "; %s", outcome);
        const char *sig = ms_signal_name(t->report->signo);
        fprintf(out, " (%s)", sig ? sig : "signal");
        python_caller(out, th, p->site_index >= 0 ? (size_t)p->site_index : 0);
}

static void signal_reason(FILE *out, const struct ms_triage *t,
                          const struct ms_thread_report *th)
{
        const char *sig = ms_signal_name(t->report->signo);
        if (!sig)
                sig = "a fatal signal";
        if (strcmp(t->kind, "fatal-error") == 0)
                fprintf(out, "Fatal Python error (Py_FatalError, %s)", sig);
        else if (strcmp(t->kind, "abort") == 0)
                fprintf(out, "abort() (%s)", sig);
        else
                fputs(sig, out);
        if (t->crash_frame < 0) {
                fputs(": no frame at fault was found", out);
                return;
        }
        const struct ms_frame *f = &th->frames[t->crash_frame];
        /* An abort is called; a fault happens in a module. */
        if (strcmp(t->kind, "abort") == 0 ||
            strcmp(t->kind, "fatal-error") == 0)
                fputs(" called from ", out);
        else if (t->crash_module)
                fprintf(out, " in %s at ", t->crash_module);
        else
                fputs(" at ", out);
        if (f->kind == MS_FRAME_PYTHON)
                fprintf(out, "Python %s", ms_triage_frame_name(f));
        else
                native_frame(out, f);
        if (th->panic && th->panic->kind &&
            strcmp(th->panic->kind, "process-abort") == 0)
                fputs(" through std::process::abort", out);
        python_caller(out, th, (size_t)t->crash_frame + 1);
}

static void phase_clause(FILE *out, const struct ms_report *r)
{
        if (!r->phase || strcmp(r->phase, "running") == 0 ||
            strcmp(r->phase, "unknown") == 0)
                return;
        if (strcmp(r->phase, "finalizing") == 0) {
                fputs(", while the interpreter was finalizing", out);
                if (r->finalize_step)
                        fprintf(out, " (%s)", r->finalize_step);
        } else {
                fprintf(out, ", while the interpreter was %s", r->phase);
        }
}

static void gil_clause(FILE *out, const struct ms_report *r)
{
        if (!r->python_version) {
                fputs("; no Python interpreter found", out);
                return;
        }
        pid_t holder = ms_triage_gil_holder(r);
        int index = ms_triage_find_thread(r, holder);
        if (!holder || index < 0) {
                fputs("; no thread holds the GIL", out);
                return;
        }
        const struct ms_thread_report *th = &r->threads[index];
        fprintf(out, "; thread %d holds the GIL", (int)holder);
        const struct ms_frame *py = ms_triage_python_caller(th, 0);
        /* A wait (read, a futex, a Mutex) is named with its caller, which
         * says what is waited for. */
        size_t i = 0;
        while (i < th->n_frames &&
               (th->frames[i].inlined ||
                ms_triage_category_is(&th->frames[i], "libc-wait") ||
                ms_triage_category_is(&th->frames[i], "rust-wait")))
                i++;
        if (i && i < th->n_frames && th->frames[0].function) {
                fprintf(out, ", waiting in %s from ", th->frames[0].function);
                native_frame(out, &th->frames[i]);
        } else if (th->n_frames) {
                fputs(" in ", out);
                native_frame(out, &th->frames[0]);
        }
        if (py)
                fprintf(out, ", Python %s", ms_triage_frame_name(py));
}

static void idle_reason(struct text *x, const struct ms_triage *t)
{
        const struct ms_report *r = t->report;
        const struct ms_diagnosis *d = ms_triage_deadlock(r);
        FILE *out = x->out;
        if (d) {
                fputs(d->message, out);
                return;
        }
        fputs(strcmp(t->kind, "hang") == 0 ? "Still running at the timeout"
                                           : "No fatal signal (a snapshot)",
              out);
        /* The diagnoses say who holds the GIL and who waits, better. */
        if (!r->n_diagnoses)
                gil_clause(out, r);
        for (size_t i = 0; i < r->n_diagnoses; i++) {
                if (i)
                        full_stop(x);
                fprintf(out, i ? " %s" : ": %s", r->diagnoses[i].message);
        }
}

static bool is_signature_thread(const struct ms_triage *t, size_t index)
{
        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i] == index)
                        return true;
        }
        return false;
}

/* "A PanicException (...) is pending on thread 12: "msg"." for the
 * exceptions of the signature's threads and the PanicExceptions of every
 * thread (a Rust panic turned into an exception is news wherever it is;
 * other threads' exceptions are usually ordinary). */
static void exception_sentences(struct text *x, const struct ms_triage *t)
{
        const struct ms_report *r = t->report;
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *th = &r->threads[i];
                const struct ms_exception_chain *chains[] = {&th->pending,
                                                             &th->handled};
                for (int c = 0; c < 2; c++) {
                        if (!chains[c]->n)
                                continue;
                        const struct ms_exception *e = &chains[c]->items[0];
                        if (!e->is_panic_exception &&
                            !is_signature_thread(t, i))
                                continue;
                        full_stop(x);
                        if (e->is_panic_exception)
                                fputs(" A PanicException (a Rust panic "
                                      "raised by PyO3)",
                                      x->out);
                        else
                                fprintf(x->out, " An exception %s",
                                        e->type ? e->type : "of unknown type");
                        fprintf(x->out, " is %s on thread %d",
                                c == 0 ? "pending" : "being handled",
                                (int)th->tid);
                        if (e->message)
                                fprintf(x->out, ": \"%s\"", e->message);
                }
        }
}

struct ms_error *ms_triage_build_reason(struct ms_triage *t)
{
        struct text x = {0};
        x.out = open_memstream(&x.buf, &x.len);
        if (!x.out)
                return &ms_error_no_memory;
        const struct ms_report *r = t->report;
        const struct ms_thread_report *th =
                t->n_threads ? &r->threads[t->threads[0]] : NULL;
        if (!r->signo)
                idle_reason(&x, t);
        else if (th && strcmp(t->kind, "panic") == 0)
                panic_reason(x.out, t, th);
        else if (th)
                signal_reason(x.out, t, th);
        else
                fputs("a fatal signal, in a target without threads", x.out);
        if (r->signo)
                phase_clause(x.out, r);
        exception_sentences(&x, t);
        full_stop(&x);
        if (fclose(x.out) != 0 || !x.buf) {
                free(x.buf);
                return &ms_error_no_memory;
        }
        t->reason = x.buf;
        return NULL;
}
