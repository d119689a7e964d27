/* What every triage printer shows the same way. */
#include <stdlib.h>
#include <string.h>

#include "triage/internal.h"

bool ms_triage_in_signature(const struct ms_triage *t, size_t thread,
                            size_t index)
{
        for (size_t i = 0; i < t->n_signature_frames; i++) {
                if (t->signature_frames[i].thread == thread &&
                    t->signature_frames[i].frame == index)
                        return true;
        }
        return false;
}

void ms_triage_free_lines(char **lines, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(lines[i]);
        free(lines);
}

static bool is_signature_thread(const struct ms_triage *t, size_t index)
{
        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i] == index)
                        return true;
        }
        return false;
}

/* The report's own one-line-per-thread section is the one style for
 * thread lists: it prints one line per thread, in report order. */
struct ms_error *ms_triage_other_threads(const struct ms_triage *t,
                                         char ***lines, size_t *n)
{
        struct ms_print_options print = {
                .format = MS_FORMAT_TEXT,
                .section = MS_SECTION_THREADS,
        };
        char *text;
        struct ms_error *err =
                ms_report_format_section(t->report, &print, &text);
        if (err)
                return err;
        *lines = calloc(t->report->n_threads + 1, sizeof(**lines));
        *n = 0;
        if (!*lines) {
                free(text);
                return &ms_error_no_memory;
        }
        char *save = NULL;
        size_t index = 0;
        for (char *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save), index++) {
                if (index >= t->report->n_threads)
                        break;
                if (is_signature_thread(t, index))
                        continue;
                (*lines)[*n] = strdup(line);
                if (!(*lines)[(*n)++]) {
                        ms_triage_free_lines(*lines, *n);
                        free(text);
                        return &ms_error_no_memory;
                }
        }
        free(text);
        return NULL;
}
