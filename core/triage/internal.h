/* What the triage files share: facts read from a report, the reason, and
 * the printers of each format. */
#ifndef MIXSTACK_TRIAGE_INTERNAL_H
#define MIXSTACK_TRIAGE_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "mixstack/mixstack.h"
#include "base/options.h"
#include "report/model.h"
#include "triage/model.h"

bool ms_triage_category_is(const struct ms_frame *f, const char *category);

/* Index of the thread with tid in r->threads, or -1. */
int ms_triage_find_thread(const struct ms_report *r, pid_t tid);

/* The thread holding a GIL, 0 when none. */
pid_t ms_triage_gil_holder(const struct ms_report *r);

/* The first "deadlock" diagnosis, or NULL. */
const struct ms_diagnosis *ms_triage_deadlock(const struct ms_report *r);

/* Fill t->reason from the rest of t (reason.c). */
struct ms_error *ms_triage_build_reason(struct ms_triage *t);

/* The signature frames of an asyncio hang (an await cycle, tasks stalled
 * on Rust futures) when the report diagnoses one (asyncio.c): *done tells
 * whether it did. */
struct ms_error *ms_triage_asyncio_signature(struct ms_triage *t, bool *done);

/* The innermost Python frame of a thread at or after index from, or
 * NULL. */
const struct ms_frame *ms_triage_python_caller(
        const struct ms_thread_report *th, size_t from);

/* A frame's name as people read it: qualified name, function, "??". */
const char *ms_triage_frame_name(const struct ms_frame *f);

/* The basename of a path. */
const char *ms_triage_basename(const char *path);

/* One-line text of every thread that is not in the signature (the
 * MS_SECTION_THREADS lines), as a malloc'd array of malloc'd lines. */
struct ms_error *ms_triage_other_threads(const struct ms_triage *t,
                                         char ***lines, size_t *n);
void ms_triage_free_lines(char **lines, size_t n);

/* Whether frame index of thread (index in report->threads) is in the
 * signature. */
bool ms_triage_in_signature(const struct ms_triage *t, size_t thread,
                            size_t index);

/* Text of one frame and of the shown stack of signature thread which
 * (0 or 1), shared by the text and markdown printers. */
void ms_triage_text_frame(const struct ms_frame *f, size_t index,
                          bool in_signature, FILE *out);
void ms_triage_text_stack(const struct ms_triage *t, size_t which, FILE *out);

/* Markdown text (escaped) and code spans (print_markdown.c). */
void ms_triage_md_text(FILE *out, const char *s);
void ms_triage_md_code(FILE *out, const char *s);

/* The printers of each format (print_*.c). */
void ms_triage_text(const struct ms_triage *t, FILE *out);
void ms_triage_markdown(const struct ms_triage *t, FILE *out);

#endif /* MIXSTACK_TRIAGE_INTERNAL_H */
