/* The report as text for people: a header, then every thread's frames. */
#include <inttypes.h>
#include <string.h>

#include "output/printers.h"

void ms_text_write_safe(FILE *out, const char *str)
{
        for (const unsigned char *s = (const unsigned char *)str; *s; s++) {
                if (*s < 0x20 || *s == 0x7f)
                        fprintf(out, "\\x%02x", *s);
                else
                        fputc(*s, out);
        }
}

static const char *basename_of(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

static void text_header(const struct ms_report *r, FILE *out)
{
        switch (r->target_kind) {
        case MS_TARGET_CORE:
                fputs("core ", out);
                ms_text_write_safe(out, r->core ? r->core : "?");
                break;
        case MS_TARGET_PID:
                fprintf(out, "process %d", (int)r->pid);
                break;
        case MS_TARGET_DEBUGGER:
                fputs("debugger target", out);
                break;
        }
        if (r->target_kind != MS_TARGET_PID && r->pid)
                fprintf(out, " (pid %d)", (int)r->pid);
        fputc('\n', out);
        fputs("executable: ", out);
        ms_text_write_safe(out, r->executable ? r->executable : "unknown");
        fputc('\n', out);
        if (r->signo) {
                const char *name = ms_signal_name(r->signo);
                fprintf(out, "signal: %s (%d) in thread %d\n",
                        name ? name : "unknown", r->signo, (int)r->crashed_tid);
        }
}

static void text_frame(const struct ms_frame *f, size_t index, FILE *out)
{
        fprintf(out, "  #%-3zu ", index);
        if (f->inlined)
                fputs("[inlined]          ", out);
        else
                fprintf(out, "0x%016" PRIx64 " ", f->pc);
        if (f->function) {
                ms_text_write_safe(out, f->function);
                if (!f->file && !f->inlined)
                        fprintf(out, "+0x%" PRIx64, f->offset);
        } else {
                fputs("??", out);
        }
        if (f->module && !f->inlined) {
                fputs(" (", out);
                ms_text_write_safe(out, basename_of(f->module));
                fputc(')', out);
        }
        if (f->file) {
                fputs(" at ", out);
                ms_text_write_safe(out, f->file);
                if (f->line > 0)
                        fprintf(out, ":%d", f->line);
        }
        fputc('\n', out);
}

static void text_thread(const struct ms_thread_report *t, FILE *out)
{
        fprintf(out, "\nThread %d", (int)t->tid);
        if (t->name) {
                fputs(" \"", out);
                ms_text_write_safe(out, t->name);
                fputc('"', out);
        }
        if (t->crashed)
                fputs(" (crashed)", out);
        fputs(":\n", out);
        for (size_t i = 0; i < t->n_frames; i++)
                text_frame(&t->frames[i], i, out);
        if (!t->n_frames)
                fputs("  (no frames)\n", out);
        if (t->unwind_error) {
                fputs("  (unwinding stopped: ", out);
                ms_text_write_safe(out, t->unwind_error);
                fputs(")\n", out);
        }
}

void ms_print_text(const struct ms_report *report, FILE *out)
{
        text_header(report, out);
        for (size_t i = 0; i < report->n_threads; i++)
                text_thread(&report->threads[i], out);
        if (report->n_warnings)
                fputs("\nwarnings:\n", out);
        for (size_t i = 0; i < report->n_warnings; i++) {
                fputs("  - ", out);
                ms_text_write_safe(out, report->warnings[i]);
                fputc('\n', out);
        }
}
