/* Progress of debug info downloads (debuginfod) on a terminal. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void print_size(int64_t bytes)
{
        if (bytes >= 1024 * 1024)
                fprintf(stderr, "%.1f MiB", bytes / (1024.0 * 1024.0));
        else
                fprintf(stderr, "%lld KiB", (long long)(bytes + 1023) / 1024);
}

/* One line per download on stderr, rewritten in place while it runs (kept
 * short so that it stays one line); a lookup that found nothing leaves no
 * line (the report's warnings say what debug info is missing). */
static void show_download(void *arg, const struct ms_download *d)
{
        fputs("\r\033[K", stderr);
        if (d->finished && !d->ok) {
                fflush(stderr);
                return;
        }
        const char *module = d->module ? d->module : "?";
        const char *slash = strrchr(module, '/');
        fprintf(stderr, "mixstack: %s debug info of %s",
                d->finished ? "downloaded" : "downloading",
                slash ? slash + 1 : module);
        if (d->bytes > 0) {
                fputs(" (", stderr);
                print_size(d->bytes);
                if (d->total > 0 && !d->finished) {
                        fputs(" of ", stderr);
                        print_size(d->total);
                }
                fputs(")", stderr);
        }
        if (d->finished && d->url)
                fprintf(stderr, " from %s", d->url);
        fputs(d->finished ? "\n" : "", stderr);
        fflush(stderr);
}

void cli_watch_downloads(struct ms_options *options)
{
        if (isatty(STDERR_FILENO))
                ms_options_set_download(options, show_download, NULL);
}
