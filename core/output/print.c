/* The printers' entry points: to a FILE, or into a string. */
#include <errno.h>
#include <stdlib.h>

#include "output/printers.h"

bool ms_print_selects(const struct ms_print_options *options,
                      const struct ms_thread_report *t)
{
        if (!options->n_tids)
                return true;
        for (size_t i = 0; i < options->n_tids; i++) {
                if (options->tids[i] == t->tid)
                        return true;
        }
        return false;
}

struct ms_error *ms_report_print_section(const struct ms_report *report,
                                         const struct ms_print_options *options,
                                         FILE *out)
{
        if (!report || !options || !out)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_report_print: no report or stream");
        switch (options->section) {
        case MS_SECTION_REPORT:
        case MS_SECTION_STACKS:
        case MS_SECTION_THREADS:
        case MS_SECTION_GIL:
        case MS_SECTION_ERRORS:
        case MS_SECTION_PANIC:
        case MS_SECTION_PHASE:
        case MS_SECTION_TASKS:
                break;
        default:
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "unknown report section %d",
                                       options->section);
        }
        switch (options->format) {
        case MS_FORMAT_TEXT:
                ms_print_text(report, options, out);
                break;
        case MS_FORMAT_JSON:
                ms_print_json(report, options, out);
                break;
        default:
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "unknown output format %d",
                                       options->format);
        }
        if (ferror(out))
                return ms_error_from_errno(errno ? errno : EIO,
                                           "cannot write the report");
        return NULL;
}

struct ms_error *ms_report_format_section(
        const struct ms_report *report, const struct ms_print_options *options,
        char **ret)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return &ms_error_no_memory;
        struct ms_error *err = ms_report_print_section(report, options, out);
        if (fclose(out) != 0 && !err)
                err = &ms_error_no_memory;
        if (err) {
                free(buf);
                return err;
        }
        *ret = buf;
        return NULL;
}

struct ms_error *ms_report_print(const struct ms_report *report,
                                 enum ms_format format, FILE *out)
{
        struct ms_print_options options = {.format = format};
        return ms_report_print_section(report, &options, out);
}

struct ms_error *ms_report_format(const struct ms_report *report,
                                  enum ms_format format, char **ret)
{
        struct ms_print_options options = {.format = format};
        return ms_report_format_section(report, &options, ret);
}
