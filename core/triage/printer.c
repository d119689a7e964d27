/*
 * The triage printer: triages, errors and notes as they come, in one of
 * three formats. Text and markdown are written at once (a crash under
 * `mixstack run` is reported while the command goes on); JSON keeps one
 * document open until ms_triage_printer_finish().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "output/json_writer.h"
#include "output/printers.h"
#include "triage/internal.h"
#include "triage/json.h"

struct ms_triage_printer {
        enum ms_triage_format format;
        FILE *out;
        struct ms_json json;
        /* Triages and errors added. */
        size_t n_results;
        /* Notes, kept for JSON's "notes" array. */
        char **notes;
        size_t n_notes;
        size_t notes_capacity;
        /* Markdown's heading is written before the first thing added. */
        bool started;
        bool finished;
};

struct ms_error *ms_triage_printer_create(enum ms_triage_format format,
                                          FILE *out,
                                          struct ms_triage_printer **ret)
{
        if (!out || (format != MS_TRIAGE_TEXT && format != MS_TRIAGE_MARKDOWN &&
                     format != MS_TRIAGE_JSON))
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "bad triage printer format or stream");
        struct ms_triage_printer *p = calloc(1, sizeof(*p));
        if (!p)
                return &ms_error_no_memory;
        p->format = format;
        p->out = out;
        if (format == MS_TRIAGE_JSON) {
                ms_json_init(&p->json, out, true);
                ms_json_begin_object(&p->json);
                ms_json_key(&p->json, "schema");
                ms_json_string(&p->json, "mixstack-triage/1");
                ms_json_key(&p->json, "version");
                ms_json_string(&p->json, MIXSTACK_VERSION);
                ms_json_key(&p->json, "results");
                ms_json_begin_array(&p->json);
        }
        *ret = p;
        return NULL;
}

void ms_triage_printer_destroy(struct ms_triage_printer *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_notes; i++)
                free(p->notes[i]);
        free(p->notes);
        free(p);
}

static struct ms_error *check_open(const struct ms_triage_printer *p)
{
        if (!p)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no triage printer");
        if (p->finished)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "the triage printer is finished");
        return NULL;
}

static struct ms_error *written(struct ms_triage_printer *p)
{
        if (fflush(p->out) != 0 || ferror(p->out))
                return ms_error_from_errno(errno ? errno : EIO,
                                           "cannot write the triage");
        return NULL;
}

static void markdown_start(struct ms_triage_printer *p)
{
        if (p->format != MS_TRIAGE_MARKDOWN || p->started)
                return;
        fputs("## mixstack crash triage\n\n", p->out);
        p->started = true;
}

struct ms_error *ms_triage_printer_add(struct ms_triage_printer *p,
                                       const struct ms_triage *triage)
{
        struct ms_error *err = check_open(p);
        if (err)
                return err;
        markdown_start(p);
        switch (p->format) {
        case MS_TRIAGE_TEXT:
                ms_triage_text(triage, p->out);
                break;
        case MS_TRIAGE_MARKDOWN:
                ms_triage_markdown(triage, p->out);
                break;
        case MS_TRIAGE_JSON:
                ms_triage_json(triage, &p->json);
                break;
        }
        p->n_results++;
        return written(p);
}

struct ms_error *ms_triage_printer_add_error(struct ms_triage_printer *p,
                                             const char *target,
                                             const char *message)
{
        struct ms_error *err = check_open(p);
        if (err)
                return err;
        markdown_start(p);
        switch (p->format) {
        case MS_TRIAGE_TEXT:
                fputs("mixstack: cannot triage ", p->out);
                ms_text_write_safe(p->out, target ? target : "?");
                fputs(": ", p->out);
                ms_text_write_safe(p->out, message ? message : "?");
                fputc('\n', p->out);
                break;
        case MS_TRIAGE_MARKDOWN:
                fputs("### cannot triage ", p->out);
                ms_triage_md_code(p->out, target);
                fputs("\n\n", p->out);
                ms_triage_md_text(p->out, message);
                fputs("\n\n", p->out);
                break;
        case MS_TRIAGE_JSON:
                ms_json_begin_object(&p->json);
                ms_json_key(&p->json, "source");
                ms_json_string(&p->json, target);
                ms_json_key(&p->json, "error");
                ms_json_string(&p->json, message);
                ms_json_end_object(&p->json);
                break;
        }
        p->n_results++;
        return written(p);
}

struct ms_error *ms_triage_printer_add_note(struct ms_triage_printer *p,
                                            const char *message)
{
        struct ms_error *err = check_open(p);
        if (err)
                return err;
        char *copy = strdup(message ? message : "");
        if (!copy || !ms_grow((void **)&p->notes, &p->notes_capacity,
                              p->n_notes, sizeof(*p->notes))) {
                free(copy);
                return &ms_error_no_memory;
        }
        p->notes[p->n_notes++] = copy;
        markdown_start(p);
        if (p->format == MS_TRIAGE_TEXT) {
                fputs("mixstack: ", p->out);
                ms_text_write_safe(p->out, message);
                fputc('\n', p->out);
        } else if (p->format == MS_TRIAGE_MARKDOWN) {
                fputs("> **mixstack:** ", p->out);
                ms_triage_md_text(p->out, message);
                fputs("\n\n", p->out);
        }
        return written(p);
}

/* The command as a shell would take it back: words with anything but
 * plain characters in single quotes. */
static char *command_line(const struct ms_triage_run *run)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return NULL;
        for (size_t i = 0; i < run->argc; i++) {
                const char *a = run->argv[i] ? run->argv[i] : "";
                bool plain =
                        *a && strspn(a, "abcdefghijklmnopqrstuvwxyz"
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./=:,+@%") == strlen(a);
                fputs(i ? " " : "", out);
                if (plain) {
                        fputs(a, out);
                        continue;
                }
                fputc('\'', out);
                for (; *a; a++)
                        fputs(*a == '\'' ? "'\\''" : (char[]){*a, 0}, out);
                fputc('\'', out);
        }
        if (fclose(out) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* "exited with status 3", "was killed by SIGSEGV", "timed out after
 * 60 s". */
static void outcome(FILE *out, const struct ms_triage_run *run)
{
        if (run->timed_out) {
                fprintf(out, "timed out after %g s", run->timeout);
        } else if (run->signo) {
                const char *name = ms_signal_name(run->signo);
                fprintf(out, "was killed by %s", name ? name : "a signal");
        } else {
                fprintf(out, "exited with status %d", run->exit_code);
        }
        fprintf(out, " (mixstack run exits %d)", run->exit_status);
}

static void json_run(struct ms_json *json, const struct ms_triage_run *run)
{
        ms_json_key(json, "run");
        if (!run) {
                ms_json_null(json);
                return;
        }
        ms_json_begin_object(json);
        ms_json_key(json, "argv");
        ms_json_begin_array(json);
        for (size_t i = 0; i < run->argc; i++)
                ms_json_string(json, run->argv[i]);
        ms_json_end_array(json);
        ms_json_key(json, "exit_code");
        if (!run->signo && !run->timed_out)
                ms_json_int(json, run->exit_code);
        else
                ms_json_null(json);
        ms_json_key(json, "signal");
        ms_json_string(json, run->signo ? ms_signal_name(run->signo) : NULL);
        ms_json_key(json, "timed_out");
        ms_json_bool(json, run->timed_out);
        /* The JSON writer has no floats: milliseconds. */
        ms_json_key(json, "timeout_ms");
        if (run->timeout > 0)
                ms_json_int(json, (int64_t)(run->timeout * 1000 + 0.5));
        else
                ms_json_null(json);
        ms_json_key(json, "duration_ms");
        ms_json_int(json, (int64_t)(run->seconds * 1000 + 0.5));
        ms_json_key(json, "exit_status");
        ms_json_int(json, run->exit_status);
        ms_json_end_object(json);
}

static void text_finish(struct ms_triage_printer *p,
                        const struct ms_triage_run *run)
{
        if (!run || (!p->n_results && !p->n_notes))
                return;
        char *cmd = command_line(run);
        fputs("mixstack: ", p->out);
        ms_text_write_safe(p->out, cmd ? cmd : "the command");
        fputc(' ', p->out);
        outcome(p->out, run);
        fprintf(p->out, "; %zu triaged\n", p->n_results);
        free(cmd);
}

static void markdown_finish(struct ms_triage_printer *p,
                            const struct ms_triage_run *run)
{
        if (!run || !p->started)
                return;
        char *cmd = command_line(run);
        ms_triage_md_code(p->out, cmd ? cmd : "the command");
        fputc(' ', p->out);
        outcome(p->out, run);
        fprintf(p->out, " after %.1f s.\n\n", run->seconds);
        free(cmd);
}

static void json_finish(struct ms_triage_printer *p,
                        const struct ms_triage_run *run)
{
        ms_json_end_array(&p->json);
        json_run(&p->json, run);
        ms_json_key(&p->json, "notes");
        ms_json_begin_array(&p->json);
        for (size_t i = 0; i < p->n_notes; i++)
                ms_json_string(&p->json, p->notes[i]);
        ms_json_end_array(&p->json);
        ms_json_end_object(&p->json);
        fputc('\n', p->out);
}

struct ms_error *ms_triage_printer_finish(struct ms_triage_printer *p,
                                          const struct ms_triage_run *run)
{
        struct ms_error *err = check_open(p);
        if (err)
                return err;
        p->finished = true;
        switch (p->format) {
        case MS_TRIAGE_TEXT:
                text_finish(p, run);
                break;
        case MS_TRIAGE_MARKDOWN:
                markdown_finish(p, run);
                break;
        case MS_TRIAGE_JSON:
                json_finish(p, run);
                break;
        }
        return written(p);
}

struct ms_error *ms_triage_run_create(const char *const *argv, size_t argc,
                                      struct ms_triage_run **ret)
{
        if (!ret || (argc && !argv))
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no command or no run to return");
        *ret = calloc(1, sizeof(**ret));
        if (!*ret)
                return &ms_error_no_memory;
        (*ret)->argv = argv;
        (*ret)->argc = argc;
        return NULL;
}

void ms_triage_run_destroy(struct ms_triage_run *run)
{
        free(run);
}

void ms_triage_run_set_outcome(struct ms_triage_run *run, int exit_code,
                               int signo, bool timed_out)
{
        run->exit_code = exit_code;
        run->signo = signo;
        run->timed_out = timed_out;
}

void ms_triage_run_set_times(struct ms_triage_run *run, double timeout,
                             double seconds)
{
        run->timeout = timeout;
        run->seconds = seconds;
}

void ms_triage_run_set_exit_status(struct ms_triage_run *run, int exit_status)
{
        run->exit_status = exit_status;
}
