/*
 * Options by name, for frontends that load the library at run time
 * (ctypes in gdb, scripts): the option structures are allocated here, so
 * their layout is always the loaded library's, and new options are new
 * names rather than new fields a caller would have to know.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "mixstack/mixstack.h"

#define MAX_OPTION_THREADS 65536
#define MAX_OPTION_PATHS 1024

struct ms_options {
        struct ms_target_options target;
        struct ms_report_options report;
        struct ms_print_options print;
        struct ms_triage_options triage;
        /* What the structures above point to. */
        char *executable, *sysroot;
        char **library_paths;
        size_t n_library_paths, library_paths_capacity;
        pid_t *tids;
        size_t n_tids, tids_capacity;
};

struct ms_error *ms_options_create(struct ms_options **ret)
{
        if (!ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no options to return");
        *ret = calloc(1, sizeof(**ret));
        return *ret ? NULL : &ms_error_no_memory;
}

void ms_options_destroy(struct ms_options *options)
{
        if (!options)
                return;
        free(options->executable);
        free(options->sysroot);
        for (size_t i = 0; i < options->n_library_paths; i++)
                free(options->library_paths[i]);
        free(options->library_paths);
        free(options->tids);
        free(options);
}

static struct ms_error *parse_bool(const char *name, const char *value,
                                   bool *ret)
{
        if (!value || !strcmp(value, "1") || !strcmp(value, "true") ||
            !strcmp(value, "on")) {
                *ret = true;
                return NULL;
        }
        if (!strcmp(value, "0") || !strcmp(value, "false") ||
            !strcmp(value, "off")) {
                *ret = false;
                return NULL;
        }
        return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                               "option %s: not a boolean: %s", name, value);
}

static struct ms_error *parse_long(const char *name, const char *value,
                                   long max, long *ret)
{
        char *end;
        errno = 0;
        long v = value ? strtol(value, &end, 0) : -1;
        if (!value || errno || *end || v < 0 || v > max)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "option %s: not a number from 0 to "
                                       "%ld: %s",
                                       name, max, value ? value : "(none)");
        *ret = v;
        return NULL;
}

/* value among names[] (NULL-terminated): its index. */
static struct ms_error *parse_choice(const char *name, const char *value,
                                     const char *const *names, int *ret)
{
        for (int i = 0; value && names[i]; i++) {
                if (!strcmp(value, names[i])) {
                        *ret = i;
                        return NULL;
                }
        }
        return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                               "option %s: unknown value %s", name,
                               value ? value : "(none)");
}

static struct ms_error *set_string(char **field, const char **use,
                                   const char *value)
{
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy)
                return &ms_error_no_memory;
        free(*field);
        *field = copy;
        *use = copy;
        return NULL;
}

static struct ms_error *add_library_path(struct ms_options *o,
                                         const char *value)
{
        if (!value || o->n_library_paths >= MAX_OPTION_PATHS)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "option library-path: no path, or "
                                       "too many");
        if (!ms_grow((void **)&o->library_paths, &o->library_paths_capacity,
                     o->n_library_paths, sizeof(*o->library_paths)))
                return &ms_error_no_memory;
        char *copy = strdup(value);
        if (!copy)
                return &ms_error_no_memory;
        o->library_paths[o->n_library_paths++] = copy;
        o->target.library_paths = (const char *const *)o->library_paths;
        o->target.n_library_paths = o->n_library_paths;
        return NULL;
}

static struct ms_error *add_thread(struct ms_options *o, const char *value)
{
        long tid;
        struct ms_error *err = parse_long("thread", value, INT32_MAX, &tid);
        if (err)
                return err;
        if (o->n_tids >= MAX_OPTION_THREADS)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "option thread: too many threads");
        if (!ms_grow((void **)&o->tids, &o->tids_capacity, o->n_tids,
                     sizeof(*o->tids)))
                return &ms_error_no_memory;
        o->tids[o->n_tids++] = (pid_t)tid;
        o->print.tids = o->tids;
        o->print.n_tids = o->n_tids;
        return NULL;
}

/* The values of the enumerations, by name. */
static const char *const modes[] = {"mixed", "python-only", "native-only",
                                    NULL};
static const char *const formats[] = {"text", "json", NULL};
static const char *const sections[] = {
        "report", "stacks", "threads", "gil", "errors",
        "panic",  "phase",  "tasks",   NULL,
};

const char *ms_stack_mode_name(enum ms_stack_mode mode)
{
        return (unsigned)mode < sizeof(modes) / sizeof(*modes) - 1 ? modes[mode]
                                                                   : NULL;
}

const char *ms_section_name(enum ms_section section)
{
        return (unsigned)section < sizeof(sections) / sizeof(*sections) - 1
                       ? sections[section]
                       : NULL;
}

struct ms_error *ms_options_set(struct ms_options *o, const char *name,
                                const char *value)
{
        if (!o || !name)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no options or no name");
        struct ms_error *err = NULL;
        long n;
        int choice;
        if (!strcmp(name, "executable"))
                return set_string(&o->executable, &o->target.executable, value);
        if (!strcmp(name, "sysroot"))
                return set_string(&o->sysroot, &o->target.sysroot, value);
        if (!strcmp(name, "library-path"))
                return add_library_path(o, value);
        if (!strcmp(name, "no-debuginfod"))
                return parse_bool(name, value, &o->target.no_debuginfod);
        if (!strcmp(name, "max-frames")) {
                err = parse_long(name, value, 1 << 20, &n);
                if (!err)
                        o->report.max_frames = (unsigned)n;
                return err;
        }
        if (!strcmp(name, "mode")) {
                err = parse_choice(name, value, modes, &choice);
                if (!err)
                        o->report.mode = (enum ms_stack_mode)choice;
                return err;
        }
        if (!strcmp(name, "all-frames"))
                return parse_bool(name, value, &o->report.all_frames);
        if (!strcmp(name, "locals"))
                return parse_bool(name, value, &o->report.locals);
        if (!strcmp(name, "exhaustive"))
                return parse_bool(name, value, &o->report.exhaustive);
        if (!strcmp(name, "no-debug-files"))
                return parse_bool(name, value, &o->report.skip_debug_files);
        if (!strcmp(name, "format")) {
                err = parse_choice(name, value, formats, &choice);
                if (!err)
                        o->print.format = (enum ms_format)choice;
                return err;
        }
        if (!strcmp(name, "section")) {
                err = parse_choice(name, value, sections, &choice);
                if (!err)
                        o->print.section = (enum ms_section)choice;
                return err;
        }
        if (!strcmp(name, "thread"))
                return add_thread(o, value);
        if (!strcmp(name, "signature-frames") ||
            !strcmp(name, "stack-frames")) {
                err = parse_long(name, value, 10000, &n);
                if (!err && name[1] == 'i')
                        o->triage.signature_frames = (unsigned)n;
                else if (!err)
                        o->triage.stack_frames = (unsigned)n;
                return err;
        }
        if (!strcmp(name, "hang"))
                return parse_bool(name, value, &o->triage.hang);
        return ms_error_create(MS_ERROR_INVALID_ARGUMENT, "unknown option %s",
                               name);
}

const struct ms_target_options *ms_options_target(
        const struct ms_options *options)
{
        return options ? &options->target : NULL;
}

const struct ms_report_options *ms_options_report(
        const struct ms_options *options)
{
        return options ? &options->report : NULL;
}

const struct ms_print_options *ms_options_print(
        const struct ms_options *options)
{
        return options ? &options->print : NULL;
}

const struct ms_triage_options *ms_options_triage(
        const struct ms_options *options)
{
        return options ? &options->triage : NULL;
}

void ms_options_set_download(struct ms_options *options, ms_download_fn *fn,
                             void *arg)
{
        options->target.download = fn;
        options->target.download_arg = arg;
}
