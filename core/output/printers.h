/* The printers of the report model; ms_report_print() picks one. */
#ifndef MIXSTACK_OUTPUT_PRINTERS_H
#define MIXSTACK_OUTPUT_PRINTERS_H

#include <stdio.h>

#include "mixstack/mixstack.h"

void ms_print_json(const struct ms_report *report, FILE *out);
void ms_print_text(const struct ms_report *report, FILE *out);

/* Write s for a terminal: printable ASCII and valid UTF-8 as they are,
 * other bytes as \xNN, so target data cannot send escape sequences. */
void ms_text_write_safe(FILE *out, const char *s);

#endif
