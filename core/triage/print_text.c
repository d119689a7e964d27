/*
 * A triage as text, for terminals and CI logs. Frames are shown as in
 * `mixstack core` (same indexes, so the full report can be read next to
 * it), without inlined frames; frames in the signature are marked '*'.
 */
#include <stdlib.h>
#include <string.h>

#include "output/printers.h"
#include "triage/internal.h"

/* Threads beyond this many are counted, not listed. */
#define MAX_OTHER_THREADS 24

static void safe(FILE *out, const char *s)
{
        ms_text_write_safe(out, s ? s : "?");
}

static void text_target(const struct ms_report *r, FILE *out)
{
        if (r->target_kind == MS_TARGET_CORE) {
                fputs("core ", out);
                safe(out, r->core);
                if (r->pid)
                        fprintf(out, " (pid %d)", (int)r->pid);
        } else {
                fprintf(out, "process %d", (int)r->pid);
        }
        if (r->executable) {
                fputs(", ", out);
                safe(out, ms_triage_basename(r->executable));
        }
        if (r->python_version)
                fprintf(out, ", Python %s", r->python_version);
        if (r->phase) {
                fprintf(out, ", phase %s", r->phase);
                if (r->finalize_step)
                        fprintf(out, " (%s)", r->finalize_step);
        }
}

void ms_triage_text_frame(const struct ms_frame *f, size_t index,
                          bool in_signature, FILE *out)
{
        fprintf(out, "  %c #%-3zu ", in_signature ? '*' : ' ', index);
        if (f->kind == MS_FRAME_PYTHON) {
                fputs("[python] ", out);
                safe(out, ms_triage_frame_name(f));
                if (f->file) {
                        fputs(" (", out);
                        safe(out, f->file);
                        if (f->line > 0)
                                fprintf(out, ":%d", f->line);
                        fputc(')', out);
                }
        } else {
                safe(out, f->function ? f->function : "??");
                if (f->module) {
                        fputs(" (", out);
                        safe(out, ms_triage_basename(f->module));
                        fputc(')', out);
                }
                if (f->file) {
                        fputs(" at ", out);
                        safe(out, f->file);
                        if (f->line > 0)
                                fprintf(out, ":%d", f->line);
                }
        }
        fputc('\n', out);
}

/* The first frame shown of a signature thread. */
static size_t first_shown(const struct ms_triage *t, size_t which)
{
        return which == 0 ? t->machinery_frames : 0;
}

void ms_triage_text_stack(const struct ms_triage *t, size_t which, FILE *out)
{
        size_t index = t->threads[which];
        const struct ms_thread_report *th = &t->report->threads[index];
        fprintf(out, "thread %d", (int)th->tid);
        if (th->name) {
                fputs(" \"", out);
                safe(out, th->name);
                fputc('"', out);
        }
        fprintf(out, " (%s%s", th->crashed ? "crashed, " : "",
                th->python ? "Python" : "native");
        if (t->report->python_version)
                fprintf(out, ", gil %s", ms_gil_state_name(th->gil));
        fputc(')', out);
        size_t i = first_shown(t, which);
        if (i)
                fprintf(out,
                        ", %zu frames of signal and panic machinery "
                        "above",
                        i);
        fputs(":\n", out);
        unsigned shown = 0;
        for (; i < th->n_frames && shown < t->stack_frames; i++) {
                const struct ms_frame *f = &th->frames[i];
                if (f->inlined && f->kind == MS_FRAME_NATIVE)
                        continue;
                ms_triage_text_frame(f, i, ms_triage_in_signature(t, index, i),
                                     out);
                shown++;
        }
        if (i < th->n_frames)
                fprintf(out, "    ... %zu more frames\n", th->n_frames - i);
        if (!th->n_frames)
                fputs("    (no frames)\n", out);
}

static void text_other_threads(const struct ms_triage *t, FILE *out)
{
        char **lines = NULL;
        size_t n = 0;
        struct ms_error *err = ms_triage_other_threads(t, &lines, &n);
        if (err || !n) {
                ms_error_destroy(err);
                ms_triage_free_lines(lines, n);
                return;
        }
        fprintf(out, "other threads (%zu):\n", n);
        for (size_t i = 0; i < n && i < MAX_OTHER_THREADS; i++)
                fprintf(out, "    %s\n", lines[i]);
        if (n > MAX_OTHER_THREADS)
                fprintf(out, "    ... and %zu more\n", n - MAX_OTHER_THREADS);
        ms_triage_free_lines(lines, n);
}

static void text_warnings(const struct ms_triage *t, FILE *out)
{
        for (size_t i = 0; i < t->n_warnings; i++) {
                fputs("warning: ", out);
                safe(out, t->warnings[i]);
                fputc('\n', out);
        }
        if (t->report->n_warnings)
                fprintf(out,
                        "(%zu warnings in the report: mixstack core "
                        "shows them)\n",
                        t->report->n_warnings);
}

void ms_triage_text(const struct ms_triage *t, FILE *out)
{
        fputs("==== mixstack triage: ", out);
        safe(out, t->kind);
        fputs(" in ", out);
        text_target(t->report, out);
        fputs(" ====\n", out);
        fputs("reason:    ", out);
        safe(out, t->reason);
        fputs("\nsignature: ", out);
        safe(out, t->signature);
        fprintf(out, "\n           (id %s)\n", t->signature_id);
        for (size_t i = 0; i < t->n_threads; i++)
                ms_triage_text_stack(t, i, out);
        text_other_threads(t, out);
        text_warnings(t, out);
}
