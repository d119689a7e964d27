/*
 * The option structures behind struct ms_options (options.c): internal to
 * the library and its unit tests. Frontends make them with
 * ms_options_create() and set them by name, so they can grow.
 */
#ifndef MIXSTACK_BASE_OPTIONS_H
#define MIXSTACK_BASE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mixstack/mixstack.h"

/* Options for opening targets. Everything may be NULL / zero. */
struct ms_target_options {
        /* The executable; found from the core (NT_FILE / NT_PRPSINFO) when
         * NULL. */
        const char *executable;
        /* A root directory prepended to every file name found in the target
         * (for cores from another machine or a container). */
        const char *sysroot;
        /* Directories searched, by file name, for files that are not found
         * at their recorded path (nor under sysroot). */
        const char *const *library_paths;
        size_t n_library_paths;
        /* Debug info missing from this machine is fetched by build-id from
         * the debuginfod servers named by $DEBUGINFOD_URLS (libdw's client
         * and its cache), unless no_debuginfod is set. Without servers
         * nothing is fetched. download, when set, hears of each download. */
        bool no_debuginfod;
        ms_download_fn *download;
        void *download_arg;
};

/* What a report should hold. Zero-initialised options are the defaults. */
struct ms_report_options {
        /* Maximum number of native frames unwound per thread (0: 1024). */
        unsigned max_frames;
        enum ms_stack_mode mode;
        /* Keep the CPython-internal frames between Python frames. */
        bool all_frames;
        /* Read the arguments and locals of Python frames. */
        bool locals;
        /* When no runtime is found by symbol, section or debug offsets,
         * scan writable memory for one. */
        bool exhaustive;
        /* Do not read DWARF (source positions, inlined frames) from
         * separate debug files (/usr/lib/debug, .gnu_debuglink); their
         * symbol tables are still used. Decompressing a distribution's
         * libc debug file is most of the start-up time on small targets. */
        bool skip_debug_files;
};

/* What to print and of which threads. */
struct ms_print_options {
        enum ms_format format;
        enum ms_section section;
        /* Only these threads (by tid) in MS_SECTION_STACKS; all when
         * n_tids is 0. */
        const pid_t *tids;
        size_t n_tids;
};

/* What to triage and how much to show. Zero-initialised options are the
 * defaults. */
struct ms_triage_options {
        /* Frames in a signature, prefix frames not counted (0: 5). */
        unsigned signature_frames;
        /* Frames of the stack shown (0: 16). */
        unsigned stack_frames;
        /* The target is a live process that did not finish in time: it is a
         * "hang" rather than a "snapshot". */
        bool hang;
};

#endif /* MIXSTACK_BASE_OPTIONS_H */
