/*
 * Python frames of a thread state, innermost first, and the code objects
 * they run. Two walks, chosen by the layout, not the version:
 * - frame objects (ts_frame >= 0; 3.8-3.10): tstate->frame, then f_back;
 * - interpreter frames (3.11+): the current frame (tstate->current_frame or
 *   tstate->cframe->current_frame), then previous, skipping shim frames
 *   (owner >= if_owner_shim, or tstate->base_frame) and incomplete ones.
 *
 * Each group of frames run by one _PyEval_EvalFrameDefault call gets a
 * stack anchor on its entry frame: an address the eval call keeps on the
 * C stack as a local, which merging finds inside one native frame's stack
 * whatever that frame is called (PGO+LTO builds run the loop in unnamed
 * split-out code). 3.12+: the shim frame below the group (owner CSTACK /
 * INTERPRETER: the eval call's entry_frame / entry.frame local). 3.10 and
 * 3.11: the eval call's _PyCFrame local, found through the thread's cframe
 * chain (tstate->cframe, then previous; the root one lives in the thread
 * state and has no previous); 3.11's cframe names the group's current
 * frame, 3.10's frames pair with the chain in order. 3.8-3.9 record
 * nothing on the C stack: merging falls back to names there.
 */
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"
#include "cpython/linetable.h"

/* Line tables longer than this are not believed. */
#define MAX_LINETABLE (1u << 20)

/* ------------------------------------------------------------------------
 * Code objects
 * ------------------------------------------------------------------------ */

/* Read a frame's fixed part; false (the error dropped) when it cannot be
 * read: a frame walk stops there and says so itself. */
static bool read_frame_blob(struct ms_target *target, uint64_t f, size_t size,
                            size_t min_size, struct ms_py_blob *blob)
{
        if (!ms_py_plausible_pointer(f))
                return false;
        struct ms_error *err = ms_py_blob_read(target, f, size, min_size, blob);
        ms_error_destroy(err);
        return !err;
}

static size_t code_hash(uint64_t a, size_t capacity)
{
        return (size_t)((a >> 3) * 0x9E3779B97F4A7C15ULL) & (capacity - 1);
}

static void code_deinit(struct ms_py_code *c)
{
        free(c->function);
        free(c->qualname);
        free(c->file);
        free(c->linetable);
        free(c->error);
}

void ms_py_code_cache_deinit(struct ms_py_code_cache *cache)
{
        for (size_t i = 0; i < cache->capacity; i++) {
                if (cache->slots[i].address)
                        code_deinit(&cache->slots[i]);
        }
        free(cache->slots);
        memset(cache, 0, sizeof(*cache));
}

static bool cache_grow(struct ms_py_code_cache *cache)
{
        size_t cap = cache->capacity ? 2 * cache->capacity : 256;
        struct ms_py_code *slots = calloc(cap, sizeof(*slots));
        if (!slots)
                return false;
        for (size_t i = 0; i < cache->capacity; i++) {
                struct ms_py_code *c = &cache->slots[i];
                if (!c->address)
                        continue;
                size_t h = code_hash(c->address, cap);
                while (slots[h].address)
                        h = (h + 1) & (cap - 1);
                slots[h] = *c;
        }
        free(cache->slots);
        cache->slots = slots;
        cache->capacity = cap;
        return true;
}

/* A str field of a code object; NULL (and no error) when unreadable,
 * since a frame with a missing file name is still worth showing. */
static struct ms_error *code_str(struct ms_target *target,
                                 const struct ms_py_layout *l,
                                 const struct ms_py_blob *co, int32_t off,
                                 char **ret)
{
        uint64_t p;
        *ret = NULL;
        if (!ms_py_blob_u64(co, off, &p) || !p)
                return NULL;
        struct ms_error *err = ms_py_read_str(target, l, p, ret);
        if (err && err->code != MS_ERROR_NO_MEMORY) {
                ms_error_destroy(err);
                err = NULL;
        }
        return err;
}

static struct ms_error *code_read(struct ms_target *target,
                                  const struct ms_py_layout *l,
                                  struct ms_py_code *c)
{
        struct ms_error *err = ms_py_check_type(target, l, c->address, "code",
                                                "a code object");
        struct ms_py_blob *co = err ? NULL : malloc(sizeof(*co));
        if (!err && !co)
                return &ms_error_no_memory;
        if (!err)
                err = ms_py_blob_read(target, c->address,
                                      l->co_size > 0 ? (size_t)l->co_size : 256,
                                      (size_t)l->co_linetable + 8, co);
        if (!err)
                err = code_str(target, l, co, l->co_name, &c->function);
        if (!err)
                err = code_str(target, l, co, l->co_qualname, &c->qualname);
        if (!err)
                err = code_str(target, l, co, l->co_filename, &c->file);
        int32_t first = 0, traceable = 0;
        uint64_t table = 0;
        if (!err) {
                ms_py_blob_i32(co, l->co_firstlineno, &first);
                c->firstlineno = first;
                if (ms_py_blob_i32(co, l->co_firsttraceable, &traceable) &&
                    traceable >= 0)
                        c->first_traceable = 2 * (int64_t)traceable;
                if (l->co_code_adaptive >= 0)
                        c->code_start =
                                c->address + (uint64_t)l->co_code_adaptive;
                ms_py_blob_u64(co, l->co_linetable, &table);
        }
        free(co);
        if (!err && table) {
                err = ms_py_read_bytes(target, l, table, MAX_LINETABLE,
                                       &c->linetable, &c->linetable_len);
                if (err && err->code != MS_ERROR_NO_MEMORY) {
                        ms_error_destroy(err);
                        err = NULL;
                }
        }
        return err;
}

struct ms_error *ms_py_code_get(struct ms_py_code_cache *cache,
                                struct ms_target *target,
                                const struct ms_py_layout *l, uint64_t address,
                                struct ms_py_code **ret)
{
        /* Address 0 marks a free slot: a frame without a code object gets
         * a shared answer instead of a slot that would never be freed. */
        static struct ms_py_code no_code = {
                .error = "the frame has no code object",
                .first_traceable = -1,
        };
        if (!address) {
                *ret = &no_code;
                return NULL;
        }
        if (2 * (cache->n + 1) > cache->capacity && !cache_grow(cache))
                return &ms_error_no_memory;
        size_t h = code_hash(address, cache->capacity);
        while (cache->slots[h].address) {
                if (cache->slots[h].address == address) {
                        *ret = &cache->slots[h];
                        return NULL;
                }
                h = (h + 1) & (cache->capacity - 1);
        }
        struct ms_py_code *c = &cache->slots[h];
        c->address = address;
        c->first_traceable = -1;
        cache->n++;
        struct ms_error *err = code_read(target, l, c);
        if (err && err->code == MS_ERROR_NO_MEMORY)
                return err;
        if (err) {
                /* Keep the failure: every frame of this code shows it. */
                c->error = strdup(err->message);
                ms_error_destroy(err);
        }
        *ret = c;
        return NULL;
}

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------ */

struct frame_list {
        struct ms_py_thread *thread;
        size_t capacity;
};

/* The eval calls' _PyCFrames, innermost first, without the root one. */
struct cframes {
        uint64_t *address;
        /* Their current_frame (3.11), 0 when the layout has none. */
        uint64_t *current;
        size_t n;
};

static void cframes_deinit(struct cframes *c)
{
        free(c->address);
        free(c->current);
        memset(c, 0, sizeof(*c));
}

/* Read the cframe chain of a thread state when the layout has one and no
 * shim frames (which anchor the groups better, 3.12+). Stops quietly at
 * anything unreadable: anchors are a help, not a requirement. */
static struct ms_error *read_cframes(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     const struct ms_py_blob *ts,
                                     unsigned max_frames, struct cframes *out)
{
        memset(out, 0, sizeof(*out));
        uint64_t c = 0;
        if (l->ts_cframe < 0 || l->cframe_previous < 0 ||
            l->if_owner_shim >= 0 || !ms_py_blob_u64(ts, l->ts_cframe, &c))
                return NULL;
        int32_t end = MS_MAX(l->cframe_previous, l->cframe_current_frame) + 8;
        uint64_t ts_size = l->ts_size > 0 ? (uint64_t)l->ts_size : 0;
        if (end > 64)
                return NULL;
        out->address = calloc(max_frames + 1, sizeof(*out->address));
        out->current = calloc(max_frames + 1, sizeof(*out->current));
        if (!out->address || !out->current) {
                cframes_deinit(out);
                return &ms_error_no_memory;
        }
        while (out->n <= max_frames && ms_py_plausible_pointer(c)) {
                uint8_t buf[64];
                uint64_t prev = 0, cur = 0;
                struct ms_error *err =
                        ms_target_read(target, c, buf, (size_t)end);
                if (err) {
                        ms_error_destroy(err);
                        break;
                }
                memcpy(&prev, buf + l->cframe_previous, 8);
                if (l->cframe_current_frame >= 0)
                        memcpy(&cur, buf + l->cframe_current_frame, 8);
                /* The root cframe lives in the thread state, not in an eval
                 * call (3.10 leaves its previous uninitialised). */
                if (c >= ts->address && c - ts->address < ts_size)
                        break;
                if (prev == c)
                        break;
                out->address[out->n] = c;
                out->current[out->n] = cur;
                out->n++;
                c = prev;
        }
        return NULL;
}

static struct ms_error *push_frame(struct frame_list *fl,
                                   const struct ms_py_code *c, uint64_t address,
                                   int64_t offset, int line, bool is_entry,
                                   bool is_generator)
{
        struct ms_py_thread *t = fl->thread;
        if (!ms_grow((void **)&t->frames, &fl->capacity, t->n_frames,
                     sizeof(*t->frames)))
                return &ms_error_no_memory;
        struct ms_py_frame *f = &t->frames[t->n_frames];
        bool ok = true;
        *f = (struct ms_py_frame){
                .function = ms_strdup_or_null(c->function, &ok),
                .qualname = ms_strdup_or_null(c->qualname, &ok),
                .file = ms_strdup_or_null(c->file, &ok),
                .line = line > 0 ? line : 0,
                .is_entry = is_entry,
                .is_generator = is_generator,
                .address = address,
                .code_address = c->address,
                .instruction_offset = offset,
        };
        if (!ok) {
                free(f->function);
                free(f->qualname);
                free(f->file);
                return &ms_error_no_memory;
        }
        t->n_frames++;
        return NULL;
}

int ms_py_code_line(const struct ms_py_layout *l, struct ms_py_code *c,
                    int64_t offset)
{
        if (!c->linetable)
                return offset < 0 ? c->firstlineno : -1;
        unsigned n = MS_MIN(c->memo_n, MS_PY_LINE_MEMO);
        for (unsigned i = 0; i < n; i++) {
                if (c->memo_offset[i] == offset)
                        return c->memo_line[i];
        }
        int line =
                ms_py_linetable_line(l->co_linetable_format, c->linetable,
                                     c->linetable_len, c->firstlineno, offset);
        unsigned slot = c->memo_n++ % MS_PY_LINE_MEMO;
        c->memo_offset[slot] = offset;
        c->memo_line[slot] = line;
        return line;
}

static void stop(struct ms_py_thread *t, const char *fmt, uint64_t address)
{
        char buf[160];
        snprintf(buf, sizeof(buf), fmt, address);
        free(t->error);
        t->error = strdup(buf);
}

/* 3.8-3.10: PyFrameObject chain. Each frame has its own
 * _PyEval_EvalFrameDefault call, so each is an entry frame. */
static struct ms_error *walk_frame_objects(struct ms_target *target,
                                           const struct ms_py_layout *l,
                                           struct ms_py_code_cache *cache,
                                           uint64_t f, unsigned max_frames,
                                           struct frame_list *fl)
{
        struct ms_py_blob *fo = malloc(sizeof(*fo));
        if (!fo)
                return &ms_error_no_memory;
        struct ms_error *err = NULL;
        size_t size = l->fo_size > 0 ? (size_t)l->fo_size : 512;
        for (unsigned i = 0; f && !err; i++) {
                if (i >= max_frames) {
                        stop(fl->thread,
                             "more than the frame limit; stopped at 0x%" PRIx64,
                             f);
                        break;
                }
                if (!read_frame_blob(target, f, size, (size_t)l->fo_lineno + 4,
                                     fo)) {
                        stop(fl->thread, "unreadable frame 0x%" PRIx64, f);
                        break;
                }
                uint64_t code = 0, back = 0, trace = 0;
                int32_t lasti = -1, lineno = 0;
                ms_py_blob_u64(fo, l->fo_code, &code);
                ms_py_blob_u64(fo, l->fo_back, &back);
                ms_py_blob_u64(fo, l->fo_trace, &trace);
                ms_py_blob_i32(fo, l->fo_lasti, &lasti);
                ms_py_blob_i32(fo, l->fo_lineno, &lineno);
                struct ms_py_code *c;
                err = ms_py_code_get(cache, target, l, code, &c);
                if (err)
                        break;
                int64_t off =
                        lasti < 0 ? -1 : (int64_t)lasti * l->fo_lasti_unit;
                /* f_lineno is only kept up to date while tracing. */
                int line = trace && lineno > 0 ? lineno
                                               : ms_py_code_line(l, c, off);
                err = push_frame(fl, c, f, off, line, true, false);
                if (back == f) {
                        stop(fl->thread,
                             "frame 0x%" PRIx64 " is its own caller", f);
                        break;
                }
                f = back;
        }
        free(fo);
        return err;
}

/* 3.10: one eval call, and one cframe, per frame; paired from the
 * outermost end, which is stable while a call pushes its cframe before
 * its frame. */
static void anchor_frame_objects(struct ms_py_thread *t,
                                 const struct cframes *c)
{
        /* A cut walk no longer reaches the outermost end. */
        if (t->error)
                return;
        for (size_t k = 0; k < t->n_frames && k < c->n; k++)
                t->frames[t->n_frames - 1 - k].stack_anchor =
                        c->address[c->n - 1 - k];
}

/* The innermost _PyInterpreterFrame of a thread state. */
static uint64_t top_interpreter_frame(struct ms_target *target,
                                      const struct ms_py_layout *l,
                                      const struct ms_py_blob *ts)
{
        uint64_t f = 0, cframe = 0;
        if (ms_py_blob_u64(ts, l->ts_current_frame, &f))
                return f;
        if (!ms_py_blob_u64(ts, l->ts_cframe, &cframe) || !cframe)
                return 0;
        struct ms_error *err =
                ms_py_read_field(target, cframe, l->cframe_current_frame, &f);
        ms_error_destroy(err);
        return err ? 0 : f;
}

struct iframe {
        uint64_t code, instr, previous;
        uint8_t owner, is_entry;
};

static bool read_iframe(struct ms_target *target, const struct ms_py_layout *l,
                        uint64_t f, struct ms_py_blob *blob, struct iframe *out)
{
        /* Only the fixed part, not localsplus. */
        size_t size = l->if_localsplus > 0 ? (size_t)l->if_localsplus : 128;
        if (!read_frame_blob(target, f, size, size, blob))
                return false;
        memset(out, 0, sizeof(*out));
        ms_py_blob_u64(blob, l->if_executable, &out->code);
        if (l->if_executable_tag_mask > 0)
                out->code &= ~(uint64_t)l->if_executable_tag_mask;
        ms_py_blob_u64(blob, l->if_instr_ptr, &out->instr);
        ms_py_blob_u64(blob, l->if_previous, &out->previous);
        ms_py_blob_u8(blob, l->if_owner, &out->owner);
        ms_py_blob_u8(blob, l->if_is_entry, &out->is_entry);
        return true;
}

static bool is_shim(const struct ms_py_layout *l, const struct iframe *fr,
                    uint64_t f, uint64_t base_frame)
{
        return (l->if_owner_shim >= 0 && fr->owner >= l->if_owner_shim) ||
               (base_frame && f == base_frame);
}

/* 3.11+: one C-level eval call runs many frames. 3.11 flags the first
 * frame of each call with is_entry; 3.12+ push a shim frame below it,
 * which marks the Python frame just above as the entry. */
static struct ms_error *walk_interpreter_frames(
        struct ms_target *target, const struct ms_py_layout *l,
        struct ms_py_code_cache *cache, uint64_t f, uint64_t base_frame,
        unsigned max_frames, const struct cframes *cf, struct frame_list *fl)
{
        /* 3.11: the cframe of the eval call whose group is being walked,
         * found by its current frame; it anchors the group's entry. */
        uint64_t pending_anchor = 0;
        size_t next_cframe = 0;
        struct ms_py_blob *blob = malloc(sizeof(*blob));
        if (!blob)
                return &ms_error_no_memory;
        struct ms_error *err = NULL;
        struct ms_py_thread *t = fl->thread;
        bool last_was_python = false;
        /* Shims count against the limit too: a cycle of shims must end. */
        for (unsigned i = 0; f && !err; i++) {
                struct iframe fr;
                if (i >= 2 * max_frames || t->n_frames >= max_frames) {
                        stop(t,
                             "more than the frame limit; stopped at 0x%" PRIx64,
                             f);
                        break;
                }
                if (!read_iframe(target, l, f, blob, &fr)) {
                        stop(t, "unreadable interpreter frame 0x%" PRIx64, f);
                        break;
                }
                if (fr.previous == f) {
                        stop(t, "frame 0x%" PRIx64 " is its own caller", f);
                        break;
                }
                if (next_cframe < cf->n && cf->current[next_cframe] == f) {
                        pending_anchor = cf->address[next_cframe++];
                }
                if (is_shim(l, &fr, f, base_frame)) {
                        if (last_was_python) {
                                struct ms_py_frame *entry =
                                        &t->frames[t->n_frames - 1];
                                entry->is_entry = true;
                                /* The shim is the eval call's local; the
                                 * base frame lives in the thread state. */
                                if (f != base_frame)
                                        entry->stack_anchor = f;
                        }
                        t->n_shim_frames++;
                        last_was_python = false;
                        f = fr.previous;
                        continue;
                }
                struct ms_py_code *c;
                err = ms_py_code_get(cache, target, l, fr.code, &c);
                if (err)
                        break;
                bool generator = fr.owner == l->if_owner_generator;
                int64_t off = c->code_start && fr.instr
                                      ? (int64_t)(fr.instr - c->code_start)
                                      : -1;
                /* A frame still being set up is not traceable yet. */
                if (!generator && c->first_traceable >= 0 &&
                    off < c->first_traceable && !c->error) {
                        f = fr.previous;
                        continue;
                }
                err = push_frame(fl, c, f, off, ms_py_code_line(l, c, off),
                                 fr.is_entry != 0, generator);
                if (!err && fr.is_entry) {
                        t->frames[t->n_frames - 1].stack_anchor =
                                pending_anchor;
                        pending_anchor = 0;
                }
                last_was_python = true;
                f = fr.previous;
        }
        free(blob);
        return err;
}

struct ms_error *ms_py_read_frames(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   struct ms_py_code_cache *cache,
                                   const struct ms_py_blob *ts,
                                   unsigned max_frames,
                                   struct ms_py_thread *thread)
{
        struct frame_list fl = {.thread = thread};
        uint64_t f = 0, base = 0;
        struct cframes cf;
        struct ms_error *err = read_cframes(target, l, ts, max_frames, &cf);
        if (err)
                return err;
        if (l->ts_frame >= 0) {
                ms_py_blob_u64(ts, l->ts_frame, &f);
                err = walk_frame_objects(target, l, cache, f, max_frames, &fl);
                if (!err)
                        anchor_frame_objects(thread, &cf);
        } else {
                f = top_interpreter_frame(target, l, ts);
                ms_py_blob_u64(ts, l->ts_base_frame, &base);
                err = walk_interpreter_frames(target, l, cache, f, base,
                                              max_frames, &cf, &fl);
        }
        cframes_deinit(&cf);
        return err;
}
