/*
 * A process image for fuzzing: what a debugger hands to libmixstack
 * (process facts, threads with registers, file mappings) plus chunks of
 * memory, in one flat little-endian byte string ("MSFZ" format, version 1):
 *
 *   "MSFZ" u8 version(1) u8 flags
 *   i32 pid, i32 signo, i32 signal_tid
 *   u16 len, executable path (len bytes, no NUL)
 *   u32 n_threads,  n * { i32 tid, u64 regs[17], u64 fs_base }
 *   u32 n_mappings, n * { u64 start, u64 end, u64 file_offset,
 *                         u16 len, path }
 *   u32 n_chunks,   n * { u64 address, u32 len, len bytes }
 *
 * flags: bits 0-1 stack mode (0 mixed, 1 python-only, 2 native-only, 3
 * mixed), bit 2 locals, bit 3 all frames, bit 4 exhaustive, bit 5 JSON.
 *
 * Parsing never fails: counts and lengths are cut to what the input holds
 * (and to fixed maxima), so every mutation of a seed is a usable image.
 */
#ifndef MIXSTACK_FUZZ_IMAGE_H
#define MIXSTACK_FUZZ_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixstack/mixstack.h"

#define IMAGE_MAGIC "MSFZ"
#define IMAGE_VERSION 1
#define IMAGE_MAX_THREADS 256
#define IMAGE_MAX_MAPPINGS 1024
#define IMAGE_MAX_CHUNKS 65536
#define IMAGE_MAX_PATH 4096

struct image_thread {
        int32_t tid;
        uint64_t regs[MS_NUM_REGS];
        uint64_t fs_base;
};

struct image_mapping {
        uint64_t start, end, offset;
        char path[IMAGE_MAX_PATH + 1];
};

struct image_chunk {
        uint64_t address;
        const uint8_t *data;
        uint32_t len;
};

struct image {
        uint8_t flags;
        int32_t pid, signo, signal_tid;
        char executable[IMAGE_MAX_PATH + 1];
        struct image_thread *threads;
        size_t n_threads;
        struct image_mapping *mappings;
        size_t n_mappings;
        struct image_chunk *chunks; /* sorted by address */
        size_t n_chunks;
};

struct image_reader {
        const uint8_t *p;
        size_t left;
};

static inline uint64_t image_take(struct image_reader *r, size_t n)
{
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
                uint8_t b = 0;
                if (r->left) {
                        b = *r->p++;
                        r->left--;
                }
                v |= (uint64_t)b << (8 * i);
        }
        return v;
}

static inline void image_take_string(struct image_reader *r, char *out)
{
        size_t len = (size_t)image_take(r, 2);
        if (len > r->left)
                len = r->left;
        if (len > IMAGE_MAX_PATH)
                len = IMAGE_MAX_PATH;
        memcpy(out, r->p, len);
        out[len] = '\0';
        /* A NUL inside ends the string, as C sees it. */
        r->p += len;
        r->left -= len;
}

static int image_chunk_cmp(const void *a, const void *b)
{
        const struct image_chunk *x = a, *y = b;
        return x->address < y->address ? -1 : x->address > y->address;
}

static inline void image_free(struct image *im)
{
        free(im->threads);
        free(im->mappings);
        free(im->chunks);
        memset(im, 0, sizeof(*im));
}

/* Parse data into im (which points into data for chunk bytes). Returns
 * false only when memory runs out or the magic is wrong. */
static inline bool image_parse(const uint8_t *data, size_t size,
                               struct image *im)
{
        memset(im, 0, sizeof(*im));
        if (size < 6 || memcmp(data, IMAGE_MAGIC, 4) != 0)
                return false;
        struct image_reader r = {data + 5, size - 5};
        im->flags = (uint8_t)image_take(&r, 1);
        im->pid = (int32_t)image_take(&r, 4);
        im->signo = (int32_t)image_take(&r, 4);
        im->signal_tid = (int32_t)image_take(&r, 4);
        image_take_string(&r, im->executable);

        size_t n = (size_t)image_take(&r, 4);
        size_t per = 4 + 8 * (MS_NUM_REGS + 1);
        if (n > r.left / per)
                n = r.left / per;
        if (n > IMAGE_MAX_THREADS)
                n = IMAGE_MAX_THREADS;
        im->threads = calloc(n ? n : 1, sizeof(*im->threads));
        if (!im->threads)
                return false;
        for (size_t i = 0; i < n; i++) {
                struct image_thread *t = &im->threads[im->n_threads++];
                t->tid = (int32_t)image_take(&r, 4);
                for (int k = 0; k < MS_NUM_REGS; k++)
                        t->regs[k] = image_take(&r, 8);
                t->fs_base = image_take(&r, 8);
        }

        n = (size_t)image_take(&r, 4);
        if (n > r.left / 26)
                n = r.left / 26;
        if (n > IMAGE_MAX_MAPPINGS)
                n = IMAGE_MAX_MAPPINGS;
        im->mappings = calloc(n ? n : 1, sizeof(*im->mappings));
        if (!im->mappings)
                return false;
        for (size_t i = 0; i < n; i++) {
                struct image_mapping *m = &im->mappings[im->n_mappings++];
                m->start = image_take(&r, 8);
                m->end = image_take(&r, 8);
                m->offset = image_take(&r, 8);
                image_take_string(&r, m->path);
        }

        n = (size_t)image_take(&r, 4);
        if (n > r.left / 12)
                n = r.left / 12;
        if (n > IMAGE_MAX_CHUNKS)
                n = IMAGE_MAX_CHUNKS;
        im->chunks = calloc(n ? n : 1, sizeof(*im->chunks));
        if (!im->chunks)
                return false;
        for (size_t i = 0; i < n && r.left >= 12; i++) {
                struct image_chunk *c = &im->chunks[im->n_chunks++];
                c->address = image_take(&r, 8);
                size_t len = (size_t)image_take(&r, 4);
                if (len > r.left)
                        len = r.left;
                c->data = r.p;
                c->len = (uint32_t)len;
                r.p += len;
                r.left -= len;
        }
        qsort(im->chunks, im->n_chunks, sizeof(*im->chunks), image_chunk_cmp);
        return true;
}

/* The chunk holding address (the first one by address when several do). */
static inline const struct image_chunk *image_find(const struct image *im,
                                                   uint64_t address)
{
        size_t lo = 0, hi = im->n_chunks;
        while (lo < hi) { /* first chunk with start > address */
                size_t mid = lo + (hi - lo) / 2;
                if (im->chunks[mid].address <= address)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        /* Chunks are short (pages): look back a few for one that covers. */
        for (size_t i = lo, k = 0; i > 0 && k < 8; i--, k++) {
                const struct image_chunk *c = &im->chunks[i - 1];
                if (address - c->address < c->len)
                        return c;
        }
        return NULL;
}

/* ms_read_memory_fn over the chunks: every byte must be in one. */
static inline int image_read(void *arg, uint64_t address, void *buf,
                             size_t size)
{
        const struct image *im = arg;
        uint8_t *out = buf;
        while (size) {
                const struct image_chunk *c = image_find(im, address);
                if (!c)
                        return -1;
                size_t at = (size_t)(address - c->address);
                size_t n = c->len - at;
                if (n > size)
                        n = size;
                memcpy(out, c->data + at, n);
                out += n;
                size -= n;
                address += n;
                if (size && address == 0)
                        return -1; /* wrapped */
        }
        return 0;
}

/* The report options of the flags (exhaustive only when allowed), at most
 * 512 frames a thread: deep enough for the seeds, small enough to stay
 * fast. Free *ret with ms_options_destroy(). */
static inline struct ms_error *image_options(unsigned flags, bool exhaustive,
                                             struct ms_options **ret)
{
        enum ms_stack_mode mode = (flags & 3) == 3
                                          ? MS_STACK_MIXED
                                          : (enum ms_stack_mode)(flags & 3);
        struct ms_error *err = ms_options_create(ret);
        if (!err)
                err = ms_options_set(*ret, "mode", ms_stack_mode_name(mode));
        if (!err)
                err = ms_options_set(*ret, "locals", flags & 4 ? "1" : "0");
        if (!err)
                err = ms_options_set(*ret, "all-frames", flags & 8 ? "1" : "0");
        if (!err)
                err = ms_options_set(*ret, "exhaustive",
                                     exhaustive && (flags & 16) ? "1" : "0");
        if (!err)
                err = ms_options_set(*ret, "max-frames", "512");
        if (err) {
                ms_options_destroy(*ret);
                *ret = NULL;
        }
        return err;
}

#endif /* MIXSTACK_FUZZ_IMAGE_H */
