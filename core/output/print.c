/* The printers' entry points: to a FILE, or into a string. */
#include <errno.h>
#include <stdlib.h>

#include "output/printers.h"

struct ms_error *ms_report_print(const struct ms_report *report,
                                 enum ms_format format, FILE *out)
{
        if (!report || !out)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_report_print: no report or stream");
        switch (format) {
        case MS_FORMAT_TEXT:
                ms_print_text(report, out);
                break;
        case MS_FORMAT_JSON:
                ms_print_json(report, out);
                break;
        default:
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "unknown output format %d", format);
        }
        if (ferror(out))
                return ms_error_from_errno(errno ? errno : EIO,
                                           "cannot write the report");
        return NULL;
}

struct ms_error *ms_report_format(const struct ms_report *report,
                                  enum ms_format format, char **ret)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return &ms_error_no_memory;
        struct ms_error *err = ms_report_print(report, format, out);
        if (fclose(out) != 0 && !err)
                err = &ms_error_no_memory;
        if (err) {
                free(buf);
                return err;
        }
        *ret = buf;
        return NULL;
}
