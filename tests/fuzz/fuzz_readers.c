/*
 * libFuzzer harness over libmixstack's readers: an input is a process image
 * (tests/fuzz/image.h: threads with registers, file mappings, chunks of
 * memory), handed to the library as a debugger-fed target; the whole
 * analysis runs on it (ms_report_create: runtime discovery, threads,
 * frames, line tables, objects, exceptions, GIL, lifecycle, Rust panics,
 * native unwinding through the chunks, merging) and the report is
 * printed as text and JSON.
 *
 * Seeds are images dumped from real cores by fuzz_seed (the pages a real
 * analysis reads), so mutations land on interpreter state, thread states,
 * frames and code objects rather than on nothing.
 *
 *   fuzz_readers -max_total_time=30 CORPUS_DIR SEED_DIR
 *   fuzz_readers INPUT          (replay one input)
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <elfutils/libdwfl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "image.h"
#include "mixstack/mixstack.h"

/*
 * Separate debug files are not what is fuzzed, and opening libc6-dbg's
 * costs ~50 ms of decompression per input (10x the rest): libdw's standard
 * lookup, which the library calls, finds none here. This definition in the
 * executable takes the place of libdw's for the statically linked library.
 * FUZZ_SEPARATE_DEBUGINFO=1 restores the real lookup.
 */
int dwfl_standard_find_debuginfo(Dwfl_Module *mod, void **userdata,
                                 const char *modname, Dwarf_Addr base,
                                 const char *file_name,
                                 const char *debuglink_file,
                                 GElf_Word debuglink_crc,
                                 char **debuginfo_file_name)
{
        static int (*real)(Dwfl_Module *, void **, const char *, Dwarf_Addr,
                           const char *, const char *, GElf_Word, char **);
        static int use_real = -1;
        if (use_real < 0) {
                const char *env = getenv("FUZZ_SEPARATE_DEBUGINFO");
                use_real = env && *env == '1';
                if (use_real)
                        *(void **)&real = dlsym(RTLD_NEXT,
                                                "dwfl_standard_find_debuginfo");
        }
        if (!use_real || !real)
                return -1;
        return real(mod, userdata, modname, base, file_name, debuglink_file,
                    debuglink_crc, debuginfo_file_name);
}

/* FUZZ_AVOID_KNOWN_HANGS=1: leave out what reaches the known hangs of the
 * runtime scan (core/cpython/runtime.c: scan_range() wraps past 2^64, and
 * the exhaustive scan has no bound on its total work), so that a long run
 * explores past them. Off by default: CI must see them. */
static bool avoid_known_hangs(void)
{
        static int avoid = -1;
        if (avoid < 0) {
                const char *env = getenv("FUZZ_AVOID_KNOWN_HANGS");
                avoid = env && *env == '1';
        }
        return avoid;
}

static void run(const struct image *im)
{
        bool avoid = avoid_known_hangs();
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_create_debugger(image_read, (void *)im,
                                                         NULL, &target);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        for (size_t i = 0; i < im->n_mappings; i++) {
                const struct image_mapping *m = &im->mappings[i];
                if (avoid && m->end > UINT64_MAX - (1u << 20))
                        continue;
                ms_error_destroy(ms_target_add_mapping(
                        target, m->path, m->start, m->end, m->offset));
        }
        for (size_t i = 0; i < im->n_threads; i++) {
                const struct image_thread *t = &im->threads[i];
                ms_error_destroy(ms_target_add_thread(target, t->tid, NULL,
                                                      t->regs, t->fs_base));
        }
        ms_error_destroy(ms_target_set_process(
                target, im->pid, im->executable[0] ? im->executable : NULL,
                im->signo, im->signal_tid));

        struct ms_options *options = NULL;
        struct ms_report *report = NULL;
        err = image_options(im->flags, !avoid, &options);
        if (!err)
                err = ms_report_create(target, ms_options_report(options),
                                       &report);
        ms_options_destroy(options);
        ms_target_destroy(target);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        char *text = NULL;
        err = ms_report_format(
                report, (im->flags >> 5) & 1 ? MS_FORMAT_JSON : MS_FORMAT_TEXT,
                &text);
        ms_error_destroy(err);
        free(text);
        ms_report_destroy(report);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct image im;
        if (image_parse(data, size, &im))
                run(&im);
        image_free(&im);
        return 0;
}
