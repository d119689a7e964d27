/*
 * A triage as GitHub-flavoured markdown, for CI step summaries: a heading
 * with the kind and the signature, the reason, the stack in a fenced code
 * block, the other threads folded away.
 *
 * Everything comes from the target, so nothing is trusted: text is
 * escaped (a "<module>" frame would otherwise be an HTML tag), code spans
 * and fences are longer than any run of backticks they hold.
 */
#include <stdlib.h>
#include <string.h>

#include "output/printers.h"
#include "triage/internal.h"

/* A CI summary is read, not searched: threads beyond this many are
 * counted. */
#define MAX_OTHER_THREADS 24

/* The longest run of c in s. */
static size_t longest_run(const char *s, char c)
{
        size_t best = 0, run = 0;
        for (; *s; s++) {
                run = *s == c ? run + 1 : 0;
                if (run > best)
                        best = run;
        }
        return best;
}

/* Markdown text: the characters markdown gives a meaning escaped, angle
 * brackets as entities, control characters as \xNN. */
void ms_triage_md_text(FILE *out, const char *s)
{
        for (const unsigned char *p = (const unsigned char *)(s ? s : "?"); *p;
             p++) {
                if (*p == '<')
                        fputs("&lt;", out);
                else if (*p == '>')
                        fputs("&gt;", out);
                else if (*p == '&')
                        fputs("&amp;", out);
                else if (strchr("\\`*_[]|~#!", *p))
                        fprintf(out, "\\%c", *p);
                else if (*p < 0x20 || *p == 0x7f)
                        fprintf(out, "\\x%02x", *p);
                else
                        fputc(*p, out);
        }
}

/* `s` as a code span. */
void ms_triage_md_code(FILE *out, const char *s)
{
        s = s ? s : "?";
        size_t ticks = longest_run(s, '`') + 1;
        bool pad = s[0] == '`' || (*s && s[strlen(s) - 1] == '`');
        for (size_t i = 0; i < ticks; i++)
                fputc('`', out);
        if (pad)
                fputc(' ', out);
        ms_text_write_safe(out, s);
        if (pad)
                fputc(' ', out);
        for (size_t i = 0; i < ticks; i++)
                fputc('`', out);
}

/* text in a fenced code block. */
static void md_fence(FILE *out, const char *text)
{
        size_t ticks = longest_run(text, '`') + 1;
        if (ticks < 3)
                ticks = 3;
        for (size_t i = 0; i < ticks; i++)
                fputc('`', out);
        fputs("text\n", out);
        fputs(text, out);
        for (size_t i = 0; i < ticks; i++)
                fputc('`', out);
        fputc('\n', out);
}

static void md_block(FILE *out, void (*fill)(const struct ms_triage *, FILE *),
                     const struct ms_triage *t)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem)
                return;
        fill(t, mem);
        if (fclose(mem) == 0 && buf && len)
                md_fence(out, buf);
        free(buf);
}

static void stacks(const struct ms_triage *t, FILE *out)
{
        for (size_t i = 0; i < t->n_threads; i++)
                ms_triage_text_stack(t, i, out);
}

static void md_facts(const struct ms_triage *t, FILE *out)
{
        const struct ms_report *r = t->report;
        fputs("**", out);
        ms_triage_md_text(out, t->kind);
        fputs("** in ", out);
        if (r->target_kind == MS_TARGET_CORE) {
                fputs("core ", out);
                ms_triage_md_code(out, r->core);
        } else {
                fputs("live process", out);
        }
        if (r->pid)
                fprintf(out, " (pid %d", (int)r->pid);
        if (r->executable) {
                fputs(r->pid ? ", " : " (", out);
                ms_triage_md_code(out, ms_triage_basename(r->executable));
        }
        if (r->pid || r->executable)
                fputc(')', out);
        if (r->python_version)
                fprintf(out, " · Python %s", r->python_version);
        if (r->phase)
                fprintf(out, " · phase %s%s%s", r->phase,
                        r->finalize_step ? " / " : "",
                        r->finalize_step ? r->finalize_step : "");
        fprintf(out, " · signature id `%s`\n\n", t->signature_id);
}

static void md_other_threads(const struct ms_triage *t, FILE *out)
{
        char **lines = NULL;
        size_t n = 0;
        struct ms_error *err = ms_triage_other_threads(t, &lines, &n);
        if (!err && n) {
                fprintf(out,
                        "<details><summary>Other threads (%zu)</summary>"
                        "\n\n",
                        n);
                char *buf = NULL;
                size_t len = 0;
                FILE *mem = open_memstream(&buf, &len);
                for (size_t i = 0; mem && i < n && i < MAX_OTHER_THREADS; i++)
                        fprintf(mem, "%s\n", lines[i]);
                if (mem && n > MAX_OTHER_THREADS)
                        fprintf(mem, "... and %zu more\n",
                                n - MAX_OTHER_THREADS);
                if (mem && fclose(mem) == 0 && buf)
                        md_fence(out, buf);
                free(buf);
                fputs("\n</details>\n\n", out);
        }
        ms_error_destroy(err);
        ms_triage_free_lines(lines, n);
}

void ms_triage_markdown(const struct ms_triage *t, FILE *out)
{
        fputs("### ", out);
        ms_triage_md_text(out, t->kind);
        fputs(": ", out);
        ms_triage_md_code(out, t->signature);
        fputs("\n\n", out);
        md_facts(t, out);
        ms_triage_md_text(out, t->reason);
        fputs("\n\n", out);
        md_block(out, stacks, t);
        fputc('\n', out);
        md_other_threads(t, out);
        for (size_t i = 0; i < t->n_warnings; i++) {
                fputs("> warning: ", out);
                ms_triage_md_text(out, t->warnings[i]);
                fputs("\n\n", out);
        }
}
