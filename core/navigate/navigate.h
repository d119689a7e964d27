/* Internals of the debugger frontends' support (frame maps, source). */
#ifndef MIXSTACK_NAVIGATE_NAVIGATE_H
#define MIXSTACK_NAVIGATE_NAVIGATE_H

#include <stdbool.h>
#include <stdio.h>

#include "base/util.h"
#include "mixstack/mixstack.h"
#include "report/model.h"

struct ms_source_lines {
        /* The number of lines[0]. */
        long first;
        char **lines;
        size_t n;
        /* Lines in the file (as far as it was read). */
        long total;
};

struct ms_error *ms_source_read(const char *path, long first, long last,
                                struct ms_source_lines *src);
void ms_source_lines_deinit(struct ms_source_lines *src);

/* For struct ms_text_numbering::source_line. */
void ms_source_line_printer(void *arg, const struct ms_frame *f, FILE *out);

/* Whether a name from the library (qualified, compiler clone suffixes) and
 * a debugger's name (often the bare DWARF name) are one function's. */
bool ms_same_function_name(const char *lib, const char *debugger);

#endif /* MIXSTACK_NAVIGATE_NAVIGATE_H */
