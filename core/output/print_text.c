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
        if (r->python_version)
                fprintf(out, "python: %s%s\n", r->python_version,
                        r->python_free_threaded ? " (free-threaded)" : "");
        if (r->signo) {
                const char *name = ms_signal_name(r->signo);
                fprintf(out, "signal: %s (%d) in thread %d\n",
                        name ? name : "unknown", r->signo, (int)r->crashed_tid);
        }
}

static const char *frame_name(const struct ms_frame *f)
{
        if (f->qualname)
                return f->qualname;
        return f->function ? f->function : "??";
}

static void text_location(const struct ms_frame *f, FILE *out)
{
        if (!f->file)
                return;
        fputs(f->kind == MS_FRAME_PYTHON ? " (" : " at ", out);
        ms_text_write_safe(out, f->file);
        if (f->line > 0)
                fprintf(out, ":%d", f->line);
        if (f->kind == MS_FRAME_PYTHON)
                fputc(')', out);
}

static bool category_is(const struct ms_frame *f, const char *category)
{
        return f->category && strcmp(f->category, category) == 0;
}

/* A frame without a symbol says what it is when that is known: code the
 * JIT compiled, or the eval loop (found from the interpreter's records);
 * its module then names where it is, as module+offset. */
static const char *native_name(const struct ms_frame *f)
{
        if (f->function || f->qualname)
                return frame_name(f);
        if (category_is(f, "jit"))
                return "[jit]";
        if (category_is(f, "eval-loop"))
                return "[eval loop]";
        return "??";
}

static void text_native_frame(const struct ms_frame *f, FILE *out)
{
        if (f->inlined)
                fputs("[inlined]          ", out);
        else
                fprintf(out, "0x%016" PRIx64 " ", f->pc);
        ms_text_write_safe(out, native_name(f));
        if (f->function && !f->file && !f->inlined)
                fprintf(out, "+0x%" PRIx64, f->offset);
        if (f->module && !f->inlined && !category_is(f, "jit")) {
                fputs(" (", out);
                ms_text_write_safe(out, basename_of(f->module));
                if (!f->function)
                        fprintf(out, "+0x%" PRIx64, f->offset);
                fputc(')', out);
        }
        text_location(f, out);
}

void ms_text_frame(const struct ms_frame *f, long number, bool marked,
                   FILE *out)
{
        fputs(marked ? "* " : "  ", out);
        if (number >= 0)
                fprintf(out, "#%-3ld ", number);
        else
                fputs("#?   ", out);
        if (f->kind == MS_FRAME_PYTHON) {
                fputs("[python]           ", out);
                ms_text_write_safe(out, frame_name(f));
                text_location(f, out);
        } else {
                text_native_frame(f, out);
        }
        fputc('\n', out);
}

static void text_locals(const struct ms_frame *f, FILE *out)
{
        for (size_t i = 0; i < f->n_locals; i++) {
                fputs(f->locals[i].argument ? "         arg   "
                                            : "         local ",
                      out);
                ms_text_write_safe(out, f->locals[i].name);
                fputs(" = ", out);
                ms_text_write_safe(out, f->locals[i].value);
                fputc('\n', out);
        }
}

void ms_text_thread_numbered(const struct ms_thread_report *t,
                             const struct ms_text_numbering *numbering,
                             FILE *out)
{
        fprintf(out, "\nThread %d", (int)t->tid);
        if (t->name) {
                fputs(" \"", out);
                ms_text_write_safe(out, t->name);
                fputc('"', out);
        }
        if (t->python)
                fprintf(out, " (Python, interpreter %lld)",
                        (long long)t->interpreter_id);
        if (t->crashed)
                fputs(" (crashed)", out);
        fputs(":\n", out);
        size_t shown = 0;
        for (size_t i = 0; i < t->n_frames; i++) {
                const struct ms_frame *f = &t->frames[i];
                if (numbering && numbering->python_only &&
                    f->kind != MS_FRAME_PYTHON)
                        continue;
                long number = numbering ? numbering->numbers[i] : (long)i;
                ms_text_frame(f, number,
                              numbering && numbering->marked == (long)i, out);
                if (numbering && numbering->source_line &&
                    f->kind == MS_FRAME_PYTHON)
                        numbering->source_line(numbering->arg, f, out);
                text_locals(f, out);
                shown++;
        }
        if (!shown)
                fputs("  (no frames)\n", out);
        if (t->unwind_error) {
                fputs("  (unwinding stopped: ", out);
                ms_text_write_safe(out, t->unwind_error);
                fputs(")\n", out);
        }
        if (t->python_error) {
                fputs("  (Python frames unavailable: ", out);
                ms_text_write_safe(out, t->python_error);
                fputs(")\n", out);
        }
}

static void text_thread(const struct ms_thread_report *t, FILE *out)
{
        ms_text_thread_numbered(t, NULL, out);
}

/* The frame that best says where a thread is: its innermost Python frame,
 * else its innermost native frame. */
static const struct ms_frame *thread_top(const struct ms_thread_report *t)
{
        for (size_t i = 0; i < t->n_frames; i++) {
                if (t->frames[i].kind == MS_FRAME_PYTHON)
                        return &t->frames[i];
        }
        return t->n_frames ? &t->frames[0] : NULL;
}

/* One line: tid, name, Python or native, where it is. */
static void text_thread_line(const struct ms_thread_report *t, FILE *out)
{
        fprintf(out, "%-8d ", (int)t->tid);
        ms_text_write_safe(out, t->name ? t->name : "-");
        int pad = 16 - (int)strlen(t->name ? t->name : "-");
        fprintf(out, "%*s %-7s gil:%-9s", pad > 0 ? pad : 1, "",
                t->python ? "python" : "native", ms_gil_state_name(t->gil));
        const struct ms_frame *top = thread_top(t);
        if (top) {
                fputs(" in ", out);
                ms_text_write_safe(out, frame_name(top));
                text_location(top, out);
        }
        if (t->crashed)
                fputs(" [crashed]", out);
        if (t->pending.n) {
                fputs(" [pending ", out);
                ms_text_write_safe(out, t->pending.items[0].type
                                                ? t->pending.items[0].type
                                                : "?");
                fputc(']', out);
        }
        if (t->handled.n) {
                fputs(" [handling ", out);
                ms_text_write_safe(out, t->handled.items[0].type
                                                ? t->handled.items[0].type
                                                : "?");
                fputc(']', out);
        }
        if (t->panic)
                fprintf(out, " [rust panic: %s]", t->panic->kind);
        fputc('\n', out);
}

static void text_warnings(const struct ms_report *report, FILE *out)
{
        if (report->n_warnings)
                fputs("\nwarnings:\n", out);
        for (size_t i = 0; i < report->n_warnings; i++) {
                fputs("  - ", out);
                ms_text_write_safe(out, report->warnings[i]);
                fputc('\n', out);
        }
}

void ms_print_text(const struct ms_report *report,
                   const struct ms_print_options *options, FILE *out)
{
        switch (options->section) {
        case MS_SECTION_THREADS:
                for (size_t i = 0; i < report->n_threads; i++)
                        text_thread_line(&report->threads[i], out);
                return;
        case MS_SECTION_GIL:
                ms_text_gil(report, out);
                return;
        case MS_SECTION_ERRORS:
                ms_text_errors(report, out);
                return;
        case MS_SECTION_PANIC:
                ms_text_panic(report, out);
                return;
        case MS_SECTION_PHASE:
                ms_text_phase(report, out);
                return;
        case MS_SECTION_TASKS:
                ms_text_tasks(report, out);
                ms_text_asyncio_diagnoses(report, out);
                return;
        case MS_SECTION_REPORT:
                text_header(report, out);
                ms_text_summary(report, out);
                if (report->n_asyncio_loops) {
                        fputc('\n', out);
                        ms_text_tasks(report, out);
                }
                break;
        case MS_SECTION_STACKS:
                break;
        }
        for (size_t i = 0; i < report->n_threads; i++) {
                if (ms_print_selects(options, &report->threads[i]))
                        text_thread(&report->threads[i], out);
        }
        if (options->section == MS_SECTION_REPORT)
                text_warnings(report, out);
}
