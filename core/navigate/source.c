/*
 * Python source lines for debugger frontends (py-bt, py-list): read from
 * the file the frame names, on this machine, as CPython's libpython.py
 * does. Files are untrusted: bounded in size, line count and line length.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "navigate/navigate.h"
#include "output/printers.h"

#define MAX_SOURCE_BYTES (64u << 20)
#define MAX_LINE_BYTES 4096

void ms_source_lines_deinit(struct ms_source_lines *src)
{
        for (size_t i = 0; i < src->n; i++)
                free(src->lines[i]);
        free(src->lines);
        memset(src, 0, sizeof(*src));
}

/* Lines first..last (1-based, inclusive) of path; fewer when the file is
 * shorter (src->total says how long it is). */
struct ms_error *ms_source_read(const char *path, long first, long last,
                                struct ms_source_lines *src)
{
        memset(src, 0, sizeof(*src));
        if (!path)
                return ms_error_create(MS_ERROR_NOT_FOUND, "no file name");
        FILE *f = fopen(path, "rb");
        if (!f)
                return ms_error_from_errno(errno, "cannot read %s", path);
        src->first = first;
        size_t capacity = 0, bytes = 0;
        long number = 1;
        char line[MAX_LINE_BYTES];
        size_t len = 0;
        bool truncated = false;
        struct ms_error *err = NULL;
        int c;
        while (!err && bytes < MAX_SOURCE_BYTES) {
                c = getc(f);
                if (c != EOF && c != '\n') {
                        bytes++;
                        if (len < sizeof(line) - 1)
                                line[len++] = (char)c;
                        else
                                truncated = true;
                        continue;
                }
                if (c == EOF && len == 0 && !truncated)
                        break;
                bytes++;
                if (number >= first && number <= last) {
                        if (len && line[len - 1] == '\r')
                                len--;
                        line[len] = '\0';
                        if (!ms_grow((void **)&src->lines, &capacity, src->n,
                                     sizeof(*src->lines)) ||
                            !(src->lines[src->n] = strdup(line)))
                                err = &ms_error_no_memory;
                        else
                                src->n++;
                }
                number++;
                len = 0;
                truncated = false;
                if (c == EOF)
                        break;
        }
        src->total = number - 1;
        fclose(f);
        if (err)
                ms_source_lines_deinit(src);
        return err;
}

/* The source line of a Python frame, indented, after its frame line. */
void ms_source_line_printer(void *arg, const struct ms_frame *f, FILE *out)
{
        (void)arg;
        if (!f->file || f->line <= 0)
                return;
        struct ms_source_lines src;
        struct ms_error *err = ms_source_read(f->file, f->line, f->line, &src);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        if (src.n) {
                const char *text = src.lines[0];
                while (*text == ' ' || *text == '\t')
                        text++;
                fputs("             ", out);
                ms_text_write_safe(out, text);
                fputc('\n', out);
        }
        ms_source_lines_deinit(&src);
}
