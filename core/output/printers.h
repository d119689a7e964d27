/* The printers of the report model; ms_report_print() picks one. */
#ifndef MIXSTACK_OUTPUT_PRINTERS_H
#define MIXSTACK_OUTPUT_PRINTERS_H

#include <stdbool.h>
#include <stdio.h>

#include "mixstack/mixstack.h"
#include "base/options.h"
#include "report/model.h"

/* Whether thread t is selected by options (all when none are named). */
bool ms_print_selects(const struct ms_print_options *options,
                      const struct ms_thread_report *t);

void ms_print_json(const struct ms_report *report,
                   const struct ms_print_options *options, FILE *out);
void ms_print_text(const struct ms_report *report,
                   const struct ms_print_options *options, FILE *out);

/* How ms_text_thread_numbered() numbers a thread's frames (debugger
 * frontends number them as the debugger does). */
struct ms_text_numbering {
        /* Per frame of the thread: its number, -1 for "?". */
        const long *numbers;
        /* The frame marked as selected, -1 for none. */
        long marked;
        /* Python frames only. */
        bool python_only;
        /* Called after each Python frame's line (its source line), or
         * NULL. */
        void (*source_line)(void *arg, const struct ms_frame *f, FILE *out);
        void *arg;
};

/* One frame's line, numbered number (-1: "?"), marked with '*' when
 * selected. */
void ms_text_frame(const struct ms_frame *f, long number, bool marked,
                   FILE *out);

/* A thread's stack as the text report prints it; numbering NULL numbers
 * the frames from 0. */
void ms_text_thread_numbered(const struct ms_thread_report *t,
                             const struct ms_text_numbering *numbering,
                             FILE *out);

/* Text of the boundary state (text_boundary.c). */
void ms_text_gil(const struct ms_report *report, FILE *out);
void ms_text_errors(const struct ms_report *report, FILE *out);
void ms_text_panic(const struct ms_report *report, FILE *out);
void ms_text_phase(const struct ms_report *report, FILE *out);
void ms_text_diagnoses(const struct ms_report *report, FILE *out);
/* What is printed between the header and the stacks of a full report. */
void ms_text_summary(const struct ms_report *report, FILE *out);

struct ms_json;
/* The report's "diagnoses" member, shared by the report and triage
 * documents. */
void ms_json_diagnoses(struct ms_json *json, const struct ms_report *report);
/* The same with only the diagnoses keep() accepts (all when NULL). */
void ms_json_diagnoses_where(struct ms_json *json,
                             const struct ms_report *report,
                             bool (*keep)(const struct ms_diagnosis *d));

/* asyncio loops and tasks (print_tasks.c): the text section, and the
 * document's "asyncio" member. */
void ms_text_tasks(const struct ms_report *report, FILE *out);
void ms_json_asyncio(struct ms_json *json, const struct ms_report *report);
/* The asyncio diagnoses alone: "diagnoses" of a tasks section document,
 * and their text after the tasks. */
bool ms_diagnosis_is_asyncio(const struct ms_diagnosis *d);
void ms_text_asyncio_diagnoses(const struct ms_report *report, FILE *out);

/* Write s for a terminal: printable ASCII and valid UTF-8 as they are,
 * other bytes as \xNN, so target data cannot send escape sequences. */
void ms_text_write_safe(FILE *out, const char *s);

#endif
