/* Interpreters and thread states of one runtime. */
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"

/* A set of addresses, to stop at the first repeat of a cyclic list. */
struct addr_set {
        uint64_t *slots;
        size_t capacity; /* a power of two */
        size_t n;
};

static size_t addr_hash(uint64_t a, size_t capacity)
{
        return (size_t)((a >> 3) * 0x9E3779B97F4A7C15ULL) & (capacity - 1);
}

/* Insert a; *seen is set when it was already there. false: no memory. */
static bool addr_set_add(struct addr_set *s, uint64_t a, bool *seen)
{
        if (2 * (s->n + 1) > s->capacity) {
                size_t cap = s->capacity ? 2 * s->capacity : 64;
                uint64_t *slots = calloc(cap, sizeof(*slots));
                if (!slots)
                        return false;
                for (size_t i = 0; i < s->capacity; i++) {
                        uint64_t v = s->slots[i];
                        if (!v)
                                continue;
                        size_t h = addr_hash(v, cap);
                        while (slots[h])
                                h = (h + 1) & (cap - 1);
                        slots[h] = v;
                }
                free(s->slots);
                s->slots = slots;
                s->capacity = cap;
        }
        size_t h = addr_hash(a, s->capacity);
        while (s->slots[h]) {
                if (s->slots[h] == a) {
                        *seen = true;
                        return true;
                }
                h = (h + 1) & (s->capacity - 1);
        }
        s->slots[h] = a;
        s->n++;
        *seen = false;
        return true;
}

/* The kernel tid of the target thread whose thread pointer is pthread_id:
 * on x86-64 glibc, pthread_self() is the fs base. */
static pid_t tid_from_fs_base(const struct ms_target *target,
                              uint64_t pthread_id)
{
        for (size_t i = 0; pthread_id && i < target->n_threads; i++) {
                if (target->threads[i].fs_base == pthread_id)
                        return target->threads[i].tid;
        }
        return 0;
}

static bool holds_gil(const struct ms_py_layout *l, const struct ms_py_blob *ts,
                      const struct ms_py_interp *in)
{
        int32_t v;
        if (ms_py_blob_i32(ts, l->ts_holds_gil, &v))
                return v != 0;
        if (l->ts_status_holds_gil_bit >= 0 &&
            ms_py_blob_i32(ts, l->ts_status, &v))
                return (v >> l->ts_status_holds_gil_bit) & 1;
        return in->gil_locked && in->gil_last_holder == ts->address;
}

static struct ms_error *append_thread(struct ms_py_runtime *rt,
                                      size_t *capacity,
                                      struct ms_py_thread **ret)
{
        if (!ms_grow((void **)&rt->threads, capacity, rt->n_threads,
                     sizeof(*rt->threads)))
                return &ms_error_no_memory;
        *ret = &rt->threads[rt->n_threads++];
        memset(*ret, 0, sizeof(**ret));
        return NULL;
}

static struct ms_error *read_thread(struct ms_target *target,
                                    struct ms_py_runtime *rt,
                                    const struct ms_py_interp *in,
                                    struct ms_py_code_cache *cache,
                                    const struct ms_py_blob *ts,
                                    unsigned max_frames, size_t *capacity)
{
        const struct ms_py_layout *l = &rt->layout;
        struct ms_py_thread *t;
        struct ms_error *err = append_thread(rt, capacity, &t);
        if (err)
                return err;
        t->tstate = ts->address;
        t->interp_id = in->id;
        t->state = -1;
        int32_t state;
        if (ms_py_blob_i32(ts, l->ts_state, &state))
                t->state = state;
        ms_py_blob_u64(ts, l->ts_thread_id, &t->pthread_id);
        uint64_t native;
        if (ms_py_blob_u64(ts, l->ts_native_thread_id, &native))
                t->native_tid = (pid_t)native;
        else
                t->native_tid = tid_from_fs_base(target, t->pthread_id);
        t->holds_gil = holds_gil(l, ts, in);
        t->gil_requested = -1;
        int32_t requested;
        if (ms_py_blob_i32(ts, l->ts_gil_requested, &requested))
                t->gil_requested = requested;
        err = ms_py_read_frames(target, l, cache, ts, max_frames, t);
        if (!err)
                err = ms_py_read_exceptions(target, l, cache, ts, t);
        return err;
}

/* The thread states of one interpreter, newest first. */
static struct ms_error *read_interp_threads(struct ms_target *target,
                                            struct ms_py_runtime *rt,
                                            const struct ms_py_interp *in,
                                            struct ms_py_code_cache *cache,
                                            unsigned max_frames,
                                            size_t *capacity)
{
        const struct ms_py_layout *l = &rt->layout;
        uint64_t p;
        struct ms_error *err =
                ms_py_read_field(target, in->address, l->is_threads_head, &p);
        if (err)
                return ms_error_wrap(err, "interpreter %" PRId64 " threads",
                                     in->id);
        struct addr_set seen = {0};
        struct ms_py_blob *ts = malloc(sizeof(*ts));
        if (!ts)
                return &ms_error_no_memory;
        size_t size = l->ts_size > 0 ? (size_t)l->ts_size : 512;
        for (size_t i = 0; p && !err; i++) {
                bool again;
                if (i >= MS_PY_MAX_THREADS || !ms_py_plausible_pointer(p)) {
                        ms_warnings_add(&rt->warnings,
                                        "interpreter %" PRId64
                                        ": bad thread list at 0x%" PRIx64,
                                        in->id, p);
                        break;
                }
                if (!addr_set_add(&seen, p, &again)) {
                        err = &ms_error_no_memory;
                        break;
                }
                if (again) {
                        ms_warnings_add(&rt->warnings,
                                        "interpreter %" PRId64
                                        ": thread list cycles",
                                        in->id);
                        break;
                }
                struct ms_error *rerr = ms_py_blob_read(
                        target, p, size, (size_t)l->ts_next + 8, ts);
                uint64_t interp = 0;
                if (!rerr && ms_py_blob_u64(ts, l->ts_interp, &interp) &&
                    interp != in->address)
                        rerr = ms_error_create(MS_ERROR_BAD_INPUT,
                                               "thread state 0x%" PRIx64
                                               " belongs to "
                                               "interpreter 0x%" PRIx64,
                                               p, interp);
                if (rerr) {
                        ms_warnings_add(&rt->warnings, "%s", rerr->message);
                        ms_error_destroy(rerr);
                        break;
                }
                err = read_thread(target, rt, in, cache, ts, max_frames,
                                  capacity);
                if (!err && !ms_py_blob_u64(ts, l->ts_next, &p))
                        p = 0;
        }
        free(ts);
        free(seen.slots);
        return err;
}

static struct ms_error *append_interp(struct ms_py_runtime *rt,
                                      size_t *capacity, uint64_t address,
                                      struct ms_py_interp **ret)
{
        if (!ms_grow((void **)&rt->interps, capacity, rt->n_interps,
                     sizeof(*rt->interps)))
                return &ms_error_no_memory;
        *ret = &rt->interps[rt->n_interps++];
        memset(*ret, 0, sizeof(**ret));
        (*ret)->address = address;
        return NULL;
}

/* Read one interpreter's own fields; false when it is not readable. */
static bool read_interp(struct ms_target *target, struct ms_py_runtime *rt,
                        struct ms_py_interp *in, uint64_t main, uint64_t *next)
{
        const struct ms_py_layout *l = &rt->layout;
        uint64_t id = 0;
        int32_t finalizing = 0;
        struct ms_error *err =
                ms_py_read_field(target, in->address, l->is_id, &id);
        if (!err)
                err = ms_py_read_field(target, in->address, l->is_next, next);
        if (err) {
                ms_warnings_add(&rt->warnings, "interpreter 0x%" PRIx64 ": %s",
                                in->address, err->message);
                ms_error_destroy(err);
                return false;
        }
        in->id = (int64_t)id;
        in->is_main = in->address == main;
        err = ms_py_read_field_i32(target, in->address, l->is_finalizing,
                                   &finalizing);
        in->finalizing = !err && finalizing;
        ms_error_destroy(err);
        if (l->is_finalizing_tstate >= 0)
                ms_error_destroy(ms_py_read_field(target, in->address,
                                                  l->is_finalizing_tstate,
                                                  &in->finalizing_tstate));
        ms_py_gil_read(target, rt, in);
        ms_py_atexit_read(target, l, in);
        return true;
}

struct ms_error *ms_py_read_threads(struct ms_target *target,
                                    struct ms_py_runtime *rt,
                                    unsigned max_frames)
{
        const struct ms_py_layout *l = &rt->layout;
        uint64_t p, main = 0;
        struct ms_error *err = ms_py_read_field(target, rt->address,
                                                l->rt_interpreters_head, &p);
        if (!err)
                err = ms_py_read_field(target, rt->address,
                                       l->rt_interpreters_main, &main);
        if (err)
                return ms_error_wrap(err, "runtime 0x%" PRIx64, rt->address);
        if (!p)
                ms_warnings_add(&rt->warnings,
                                "runtime 0x%" PRIx64 " has no interpreter "
                                "(not initialized or finalized)",
                                rt->address);
        struct ms_py_code_cache cache = {0};
        size_t interp_cap = 0, thread_cap = 0;
        for (size_t i = 0; p && !err; i++) {
                if (i >= MS_PY_MAX_INTERPRETERS ||
                    !ms_py_plausible_pointer(p)) {
                        ms_warnings_add(&rt->warnings,
                                        "bad interpreter list at 0x%" PRIx64,
                                        p);
                        break;
                }
                bool cycle = false;
                for (size_t j = 0; j < rt->n_interps; j++)
                        cycle |= rt->interps[j].address == p;
                if (cycle) {
                        ms_warnings_add(&rt->warnings,
                                        "interpreter list cycles");
                        break;
                }
                struct ms_py_interp *in;
                uint64_t next = 0;
                err = append_interp(rt, &interp_cap, p, &in);
                if (err)
                        break;
                if (!read_interp(target, rt, in, main, &next)) {
                        rt->n_interps--;
                        break;
                }
                err = read_interp_threads(target, rt, in, &cache, max_frames,
                                          &thread_cap);
                if (err && err->code != MS_ERROR_NO_MEMORY) {
                        ms_warnings_add(&rt->warnings, "%s", err->message);
                        ms_error_destroy(err);
                        err = NULL;
                }
                p = next;
        }
        ms_py_code_cache_deinit(&cache);
        if (!err)
                ms_py_gil_resolve(rt);
        return err;
}
