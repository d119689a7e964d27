/*
 * Make a fuzzing seed (tests/fuzz/image.h) from a real core: the core's
 * threads and file mappings, and the memory pages that a real analysis of
 * it reads. The analysis runs on a debugger-fed target whose reader serves
 * the core's own bytes (never the mapped files on this machine: those the
 * library reads itself) and notes every page it touches.
 *
 *   fuzz_seed CORE OUT [FLAGS]
 *
 * FLAGS is the image's flags byte (see image.h), 0 by default; the seed is
 * analysed with those options, so it holds what they read (locals: the
 * objects of every frame).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "mixstack/mixstack.h"
#include "target/target.h"

#define PAGE 4096ULL
#define BLOCK 64ULL

struct recorder {
        struct ms_target *core;
        uint64_t *pages;
        size_t n, capacity;
};

static int page_cmp(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static int core_bytes(struct ms_target *core, uint64_t address, void *buf,
                      size_t size)
{
        /* The backend alone: the core's bytes, no file fallback. */
        struct ms_error *err = core->ops->read(core, address, buf, size);
        if (err) {
                ms_error_destroy(err);
                return -1;
        }
        return 0;
}

static int record_read(void *arg, uint64_t address, void *buf, size_t size)
{
        struct recorder *r = arg;
        if (core_bytes(r->core, address, buf, size) != 0)
                return -1;
        for (uint64_t p = address & ~(PAGE - 1); p < address + size;
             p += PAGE) {
                if (r->n == r->capacity) {
                        size_t cap = r->capacity ? 2 * r->capacity : 1024;
                        uint64_t *pages =
                                realloc(r->pages, cap * sizeof(*pages));
                        if (!pages)
                                return -1;
                        r->pages = pages;
                        r->capacity = cap;
                }
                r->pages[r->n++] = p;
                if (p + PAGE < p)
                        break;
        }
        return 0;
}

static void put(FILE *f, uint64_t v, int n)
{
        for (int i = 0; i < n; i++)
                fputc((int)((v >> (8 * i)) & 0xff), f);
}

static void put_string(FILE *f, const char *s)
{
        size_t len = s ? strlen(s) : 0;
        if (len > IMAGE_MAX_PATH)
                len = IMAGE_MAX_PATH;
        put(f, len, 2);
        fwrite(s ? s : "", 1, len, f);
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: fuzz_seed CORE OUT [FLAGS]\n");
                return 2;
        }
        unsigned flags = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 0;
        struct ms_target *core;
        struct ms_error *err = ms_target_open_core(argv[1], NULL, &core);
        if (err) {
                fprintf(stderr, "fuzz_seed: %s\n", err->message);
                return 1;
        }
        struct recorder rec = {.core = core};
        struct ms_target *dbg;
        err = ms_target_create_debugger(record_read, &rec, NULL, &dbg);
        for (size_t i = 0; !err && i < core->n_mappings; i++)
                err = ms_target_add_mapping(
                        dbg, core->mappings[i].path, core->mappings[i].start,
                        core->mappings[i].end, core->mappings[i].file_offset);
        for (size_t i = 0; !err && i < core->n_threads; i++)
                if (core->threads[i].have_regs)
                        err = ms_target_add_thread(dbg, core->threads[i].tid,
                                                   core->threads[i].name,
                                                   core->threads[i].regs,
                                                   core->threads[i].fs_base);
        if (!err)
                err = ms_target_set_process(dbg, core->pid, core->executable,
                                            core->signo, core->signal_tid);
        struct ms_report *report = NULL;
        struct ms_options *options = NULL;
        if (!err)
                err = image_options(flags, true, &options);
        if (!err)
                err = ms_report_create(dbg, ms_options_report(options),
                                       &report);
        ms_options_destroy(options);
        if (err) {
                fprintf(stderr, "fuzz_seed: %s\n", err->message);
                return 1;
        }
        ms_report_destroy(report);

        FILE *f = fopen(argv[2], "wb");
        if (!f) {
                fprintf(stderr, "fuzz_seed: %s: %s\n", argv[2],
                        strerror(errno));
                return 1;
        }
        fwrite(IMAGE_MAGIC, 1, 4, f);
        put(f, IMAGE_VERSION, 1);
        put(f, flags, 1);
        put(f, (uint64_t)(uint32_t)core->pid, 4);
        put(f, (uint64_t)(uint32_t)core->signo, 4);
        put(f, (uint64_t)(uint32_t)core->signal_tid, 4);
        put_string(f, core->executable);
        size_t n_threads = 0;
        for (size_t i = 0; i < core->n_threads; i++)
                n_threads += core->threads[i].have_regs;
        put(f, n_threads, 4);
        for (size_t i = 0; i < core->n_threads; i++) {
                const struct ms_target_thread *t = &core->threads[i];
                if (!t->have_regs)
                        continue;
                put(f, (uint64_t)(uint32_t)t->tid, 4);
                for (int k = 0; k < MS_NUM_REGS; k++)
                        put(f, t->regs[k], 8);
                put(f, t->fs_base, 8);
        }
        put(f, core->n_mappings, 4);
        for (size_t i = 0; i < core->n_mappings; i++) {
                const struct ms_mapping *m = &core->mappings[i];
                put(f, m->start, 8);
                put(f, m->end, 8);
                put(f, m->file_offset, 8);
                put_string(f, m->path);
        }
        /* Pages, or the 64-byte blocks of a page that the core holds. */
        qsort(rec.pages, rec.n, sizeof(*rec.pages), page_cmp);
        size_t n_pages = 0;
        for (size_t i = 0; i < rec.n; i++)
                if (!n_pages || rec.pages[n_pages - 1] != rec.pages[i])
                        rec.pages[n_pages++] = rec.pages[i];
        static uint8_t buf[PAGE];
        long count_at = ftell(f);
        put(f, 0, 4);
        uint32_t n_chunks = 0;
        size_t bytes = 0;
        for (size_t i = 0; i < n_pages; i++) {
                uint64_t p = rec.pages[i];
                if (core_bytes(core, p, buf, PAGE) == 0) {
                        put(f, p, 8);
                        put(f, PAGE, 4);
                        fwrite(buf, 1, PAGE, f);
                        n_chunks++;
                        bytes += PAGE;
                        continue;
                }
                for (uint64_t b = p; b < p + PAGE; b += BLOCK) {
                        if (core_bytes(core, b, buf, BLOCK) != 0)
                                continue;
                        put(f, b, 8);
                        put(f, BLOCK, 4);
                        fwrite(buf, 1, BLOCK, f);
                        n_chunks++;
                        bytes += BLOCK;
                }
        }
        fseek(f, count_at, SEEK_SET);
        put(f, n_chunks, 4);
        if (fclose(f) != 0) {
                fprintf(stderr, "fuzz_seed: cannot write %s\n", argv[2]);
                return 1;
        }
        fprintf(stderr,
                "fuzz_seed: %s: %zu threads, %zu mappings, %u chunks (%zu "
                "bytes)\n",
                argv[2], n_threads, core->n_mappings, n_chunks, bytes);
        free(rec.pages);
        ms_target_destroy(dbg);
        ms_target_destroy(core);
        return 0;
}
