/* asyncio tasks of a runtime and their await graph (see asyncio.h). */
#include <stdlib.h>
#include <string.h>

#include "base/u64_table.h"
#include "cpython/asyncio.h"
#include "cpython/asyncio_layout.h"
#include "cpython/internal.h"

const struct ms_py_async_layout *ms_py_async_layout_find(int minor,
                                                         uint32_t version_hex)
{
        const struct ms_py_async_layout *oldest = NULL, *best = NULL;
        for (size_t i = 0; i < ms_py_n_async_layouts; i++) {
                const struct ms_py_async_layout *e = &ms_py_async_layouts[i];
                if (e->minor != minor)
                        continue;
                if (!oldest || e->version_hex < oldest->version_hex)
                        oldest = e;
                if (version_hex && e->version_hex <= version_hex &&
                    (!best || e->version_hex > best->version_hex))
                        best = e;
        }
        return best ? best : oldest;
}

const char *ms_py_await_kind_name(enum ms_py_await_kind kind)
{
        switch (kind) {
        case MS_PY_AWAIT_TASK:
                return "task";
        case MS_PY_AWAIT_FUTURE:
                return "future";
        case MS_PY_AWAIT_RUST_FUTURE:
                return "rust-future";
        case MS_PY_AWAIT_COROUTINE:
                return "coroutine";
        case MS_PY_AWAIT_OTHER:
                return "other";
        case MS_PY_AWAIT_NONE:
                break;
        }
        return NULL;
}

/* What an object is, by its type (cached per type address). */
enum kind {
        K_UNREADABLE = 1, /* no plausible type */
        K_OTHER,
        K_TASK,      /* _asyncio.Task or a subclass */
        K_FUTURE,    /* _asyncio.Future or a subclass */
        K_GEN,       /* coroutine or generator: has a frame */
        K_FUTITER,   /* _asyncio.FutureIter: await on a future */
        K_PYO3_CORO, /* PyO3's Coroutine (async fn) */
        K_PYO3_DONE, /* pyo3-async-runtimes' PyDoneCallback */
        K_METHOD,    /* bound method */
        K_FUNCTION,  /* Python function */
        K_TUPLE,
        K_LIST,
};

struct type_entry {
        struct ms_u64_entry h;
        uint8_t kind;
};

struct reader {
        struct ms_target *target;
        const struct ms_py_runtime *rt;
        const struct ms_py_layout *l;
        const struct ms_py_async_layout *al;
        struct ms_u64_table types;
        struct ms_py_code_cache codes;
        struct ms_py_asyncio *out;
        size_t tasks_capacity;
        /* Per task: the address of its outermost coroutine frame. */
        uint64_t *coro_frames;
};

static char *type_tp_name(struct reader *r, uint64_t type)
{
        uint64_t p;
        char *name = NULL;
        struct ms_error *err =
                ms_py_read_field(r->target, type, r->l->tp_name, &p);
        if (!err)
                err = ms_target_read_string(r->target, p, 127, &name, NULL);
        ms_error_destroy(err);
        return err ? NULL : name;
}

static uint8_t classify_type(struct reader *r, uint64_t type)
{
        char *name = type_tp_name(r, type);
        if (!name)
                return K_UNREADABLE;
        uint8_t kind = K_OTHER;
        /* PyO3 classes: "Name" or "module.Name". */
        const char *base = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
        if (!strcmp(name, "coroutine") || !strcmp(name, "generator"))
                kind = K_GEN;
        else if (!strcmp(name, "_asyncio.FutureIter"))
                kind = K_FUTITER;
        else if (!strcmp(name, "method"))
                kind = K_METHOD;
        else if (!strcmp(name, "function"))
                kind = K_FUNCTION;
        else if (!strcmp(name, "tuple"))
                kind = K_TUPLE;
        else if (!strcmp(name, "list"))
                kind = K_LIST;
        else if (!strcmp(base, "PyDoneCallback"))
                kind = K_PYO3_DONE;
        else if (!strcmp(base, "Coroutine"))
                kind = K_PYO3_CORO;
        free(name);
        /* Futures and tasks: the type or one of its bases. */
        uint64_t t = type;
        for (int depth = 0; kind == K_OTHER && t && depth < 8; depth++) {
                name = type_tp_name(r, t);
                if (!name)
                        break;
                if (!strcmp(name, "_asyncio.Task"))
                        kind = K_TASK;
                else if (!strcmp(name, "_asyncio.Future"))
                        kind = K_FUTURE;
                free(name);
                struct ms_error *err =
                        ms_py_read_field(r->target, t, r->al->tp_base, &t);
                ms_error_destroy(err);
                if (err || !ms_py_plausible_pointer(t))
                        break;
        }
        return kind;
}

static uint8_t type_kind(struct reader *r, uint64_t type)
{
        if (!ms_py_plausible_pointer(type))
                return K_UNREADABLE;
        struct type_entry *e = ms_u64_table_find(&r->types, type);
        if (e)
                return e->kind;
        uint8_t kind = classify_type(r, type);
        e = ms_u64_table_insert(&r->types, type);
        if (e)
                e->kind = kind;
        return kind;
}

static uint8_t object_kind(struct reader *r, uint64_t object, uint64_t *type)
{
        uint64_t t = 0;
        struct ms_error *err = ms_py_object_type(r->target, r->l, object, &t);
        ms_error_destroy(err);
        if (type)
                *type = t;
        return err ? K_UNREADABLE : type_kind(r, t);
}

static uint64_t read_ptr(struct reader *r, uint64_t address, int32_t off)
{
        uint64_t v = 0;
        if (off < 0 || !address)
                return 0;
        struct ms_error *err =
                ms_target_read_u64(r->target, address + (uint64_t)off, &v);
        ms_error_destroy(err);
        return err ? 0 : v;
}

static char *type_fullname(struct reader *r, uint64_t object)
{
        uint64_t type;
        char *name = NULL;
        struct ms_error *err =
                ms_py_object_type(r->target, r->l, object, &type);
        if (!err)
                err = ms_py_type_fullname(r->target, r->l, type, &name);
        ms_error_destroy(err);
        return err ? NULL : name;
}

/* ------------------------------------------------------------------------
 * Finding the tasks: the GC lists
 * ------------------------------------------------------------------------ */

static struct ms_error *add_task(struct reader *r, uint64_t address)
{
        struct ms_py_asyncio *a = r->out;
        if (a->n_tasks >= MS_PY_MAX_TASKS) {
                a->left_out++;
                return NULL;
        }
        if (!ms_grow((void **)&a->tasks, &r->tasks_capacity, a->n_tasks,
                     sizeof(*a->tasks)))
                return &ms_error_no_memory;
        a->tasks[a->n_tasks++] = (struct ms_py_task){
                .address = address,
                .await_task = SIZE_MAX,
        };
        return NULL;
}

/* Walk one circular GC list from its head; *budget bounds the objects
 * looked at over all lists of an interpreter. */
static struct ms_error *walk_gc_list(struct reader *r, uint64_t head,
                                     size_t *budget, struct ms_u64_table *seen)
{
        const struct ms_py_async_layout *al = r->al;
        uint64_t p = read_ptr(r, head, 0) & ~(uint64_t)3;
        size_t hs = (size_t)al->gc_head_size;
        size_t n = hs + (size_t)r->l->ob_type + 8;
        uint8_t buf[64];
        uint64_t saved = 0;
        size_t steps = 0, power = 1;
        if (n > sizeof(buf))
                return NULL;
        while (p && p != head) {
                if (!*budget) {
                        ms_warnings_add(&r->out->warnings,
                                        "asyncio: more than %u GC objects; "
                                        "the rest were not looked at",
                                        MS_PY_MAX_GC_OBJECTS);
                        r->out->left_out++;
                        return NULL;
                }
                (*budget)--;
                struct ms_error *err =
                        ms_py_plausible_pointer(p)
                                ? ms_target_read(r->target, p, buf, n)
                                : ms_error_create(MS_ERROR_BAD_INPUT, "bad");
                if (err) {
                        ms_error_destroy(err);
                        ms_warnings_add(&r->out->warnings,
                                        "asyncio: a GC list is broken at "
                                        "0x%" PRIx64 "; tasks after it are "
                                        "not shown",
                                        p);
                        return NULL;
                }
                /* A list that loops without coming back to its head:
                 * Brent's cycle finding, a saved node moved at every
                 * power of two steps, finds any loop in a bounded walk. */
                if (p == saved) {
                        ms_warnings_add(&r->out->warnings,
                                        "asyncio: a GC list loops at "
                                        "0x%" PRIx64 "; tasks after it are "
                                        "not shown",
                                        p);
                        r->out->left_out++;
                        return NULL;
                }
                if (++steps == power) {
                        saved = p;
                        power *= 2;
                        steps = 0;
                }
                uint64_t next, type;
                memcpy(&next, buf, 8);
                memcpy(&type, buf + hs + (size_t)r->l->ob_type, 8);
                /* A task seen before (a loop not found yet) is not
                 * listed twice. */
                if (type_kind(r, type) == K_TASK &&
                    !ms_u64_table_find(seen, p)) {
                        if (!ms_u64_table_insert(seen, p))
                                return &ms_error_no_memory;
                        err = add_task(r, p + hs);
                        if (err)
                                return err;
                }
                p = next & ~(uint64_t)3;
        }
        return NULL;
}

static struct ms_error *find_tasks(struct reader *r)
{
        const struct ms_py_async_layout *al = r->al;
        struct ms_error *err = NULL;
        for (size_t i = 0; i < r->rt->n_interps && !err; i++) {
                uint64_t gc;
                if (al->rt_gc >= 0) {
                        if (i > 0)
                                break; /* one runtime-wide GC (3.8) */
                        gc = r->rt->address + (uint64_t)al->rt_gc;
                } else if (r->l->is_gc >= 0) {
                        gc = r->rt->interps[i].address + (uint64_t)r->l->is_gc;
                } else {
                        break;
                }
                size_t budget = MS_PY_MAX_GC_OBJECTS;
                struct ms_u64_table seen;
                ms_u64_table_init(&seen, sizeof(struct ms_u64_entry));
                for (int32_t g = 0; g < al->gc_n_lists && !err; g++) {
                        uint64_t head = gc + (uint64_t)al->gc_lists +
                                        (uint64_t)(g * al->gc_list_stride);
                        err = walk_gc_list(r, head, &budget, &seen);
                }
                if (!err && al->gc_permanent >= 0)
                        err = walk_gc_list(r, gc + (uint64_t)al->gc_permanent,
                                           &budget, &seen);
                ms_u64_table_deinit(&seen);
        }
        return err;
}

/* ------------------------------------------------------------------------
 * One task: state, name, coroutine chain
 * ------------------------------------------------------------------------ */

static struct ms_error *push_frame(struct ms_py_task *t, size_t *capacity,
                                   const struct ms_py_code *c, int line)
{
        if (!ms_grow((void **)&t->frames, capacity, t->n_frames,
                     sizeof(*t->frames)))
                return &ms_error_no_memory;
        bool ok = true;
        struct ms_py_tb_frame *f = &t->frames[t->n_frames];
        *f = (struct ms_py_tb_frame){
                .function = ms_strdup_or_null(c->function, &ok),
                .qualname = ms_strdup_or_null(c->qualname, &ok),
                .file = ms_strdup_or_null(c->file, &ok),
                .line = line > 0 ? line : 0,
        };
        t->n_frames++;
        return ok ? NULL : &ms_error_no_memory;
}

/* What a generator's frame shows. */
struct gen_frame {
        uint64_t frame, code;
        int64_t offset;
        /* Suspended (not created, running or finished). */
        bool suspended, running, finished;
        /* The top of its value stack (what a suspended await waits on),
         * and its first local (self of a method), 0 when unknown. */
        uint64_t top, local0;
};

/* 3.8-3.10: the frame object a generator points to. */
static void read_gen_frame_object(struct reader *r, uint64_t gen,
                                  struct gen_frame *g)
{
        const struct ms_py_layout *l = r->l;
        const struct ms_py_async_layout *al = r->al;
        g->frame = read_ptr(r, gen, al->gen_frame);
        if (!ms_py_plausible_pointer(g->frame)) {
                g->finished = true;
                return;
        }
        struct ms_py_blob *fo = malloc(sizeof(*fo));
        if (!fo)
                return;
        size_t size = l->fo_size > 0 ? (size_t)l->fo_size : 512;
        struct ms_error *err =
                ms_py_blob_read(r->target, g->frame, size, size, fo);
        if (err) {
                ms_error_destroy(err);
                free(fo);
                g->finished = true;
                return;
        }
        int32_t lasti = -1;
        ms_py_blob_u64(fo, l->fo_code, &g->code);
        ms_py_blob_i32(fo, l->fo_lasti, &lasti);
        g->offset = lasti < 0 ? -1 : (int64_t)lasti * l->fo_lasti_unit;
        uint64_t sp = 0, stack = 0;
        if (al->fo_stacktop >= 0) {
                /* 3.8-3.9: f_stacktop is NULL while running. */
                uint8_t running = 0;
                ms_py_blob_u64(fo, al->fo_stacktop, &sp);
                ms_py_blob_u64(fo, al->fo_valuestack, &stack);
                if (al->gen_running >= 0) {
                        struct ms_error *e2 = ms_target_read(
                                r->target, gen + (uint64_t)al->gen_running,
                                &running, 1);
                        ms_error_destroy(e2);
                }
                g->running = running || !sp;
                g->suspended = !g->running && lasti >= 0;
        } else {
                int8_t state = 0;
                int32_t depth = 0;
                ms_py_blob_u8(fo, al->fo_state, (uint8_t *)&state);
                ms_py_blob_i32(fo, al->fo_stackdepth, &depth);
                ms_py_blob_u64(fo, al->fo_valuestack, &stack);
                g->running = state == al->gen_state_executing;
                g->suspended = state > al->gen_state_created &&
                               state < al->gen_state_executing;
                g->finished = state > al->gen_state_executing;
                sp = depth > 0 && depth < 65536 ? stack + 8 * (uint64_t)depth
                                                : 0;
        }
        if (g->suspended && sp > stack && stack && sp - stack < (1u << 20))
                g->top = read_ptr(r, sp - 8, 0);
        free(fo);
}

/* 3.11+: the interpreter frame inside the generator. */
static void read_gen_iframe(struct reader *r, uint64_t gen, struct gen_frame *g)
{
        const struct ms_py_layout *l = r->l;
        const struct ms_py_async_layout *al = r->al;
        int8_t state = 0;
        int32_t state_off = l->gen_frame_state >= 0 ? l->gen_frame_state
                                                    : al->gi_frame_state;
        int32_t iframe_off = l->gen_iframe >= 0 ? l->gen_iframe : al->gi_iframe;
        struct ms_error *err =
                ms_target_read(r->target, gen + (uint64_t)state_off, &state, 1);
        if (err) {
                ms_error_destroy(err);
                g->finished = true;
                return;
        }
        g->running = state == al->gen_state_executing;
        g->suspended = state > al->gen_state_created &&
                       state < al->gen_state_executing;
        g->finished = state > al->gen_state_executing;
        if (g->finished)
                return;
        g->frame = gen + (uint64_t)iframe_off;
        struct ms_py_blob *b = malloc(sizeof(*b));
        if (!b)
                return;
        size_t size = l->if_localsplus > 0 ? (size_t)l->if_localsplus : 128;
        err = ms_py_blob_read(r->target, g->frame, size, size, b);
        if (err) {
                ms_error_destroy(err);
                free(b);
                g->finished = true;
                return;
        }
        uint64_t instr = 0;
        ms_py_blob_u64(b, l->if_executable, &g->code);
        if (l->if_executable_tag_mask > 0)
                g->code &= ~(uint64_t)l->if_executable_tag_mask;
        ms_py_blob_u64(b, l->if_instr_ptr, &instr);
        g->offset = instr ? (int64_t)instr : -1; /* made relative later */
        uint64_t locals = g->frame + (uint64_t)l->if_localsplus;
        /* Stack references carry tag bits in 3.14+. */
        uint64_t untag = l->if_stackpointer >= 0 ? ~(uint64_t)7 : ~0ull;
        g->local0 = read_ptr(r, locals, 0) & untag;
        uint64_t sp = 0;
        int32_t stacktop = -1;
        if (ms_py_blob_u64(b, l->if_stackpointer, &sp)) {
                if (sp <= locals || sp - locals > (1u << 20))
                        sp = 0;
        } else if (ms_py_blob_i32(b, l->if_stacktop, &stacktop) &&
                   stacktop > 0 && stacktop < 65536) {
                sp = locals + 8 * (uint64_t)stacktop;
        }
        if (g->suspended && sp)
                g->top = read_ptr(r, sp - 8, 0) & untag;
        /* 3.15 keeps a NULL reference above the awaited object while
         * suspended in an await. */
        if (g->suspended && sp && !g->top && sp - 16 >= locals)
                g->top = read_ptr(r, sp - 16, 0) & untag;
        free(b);
}

/* The frame of generator gen, pushed on t; *next is what it awaits. */
static struct ms_error *chain_gen(struct reader *r, struct ms_py_task *t,
                                  size_t *capacity, uint64_t gen,
                                  uint64_t *next, bool outermost)
{
        struct gen_frame g = {.offset = -1};
        bool iframes = r->l->gen_iframe >= 0 || r->al->gi_iframe >= 0;
        if (iframes)
                read_gen_iframe(r, gen, &g);
        else
                read_gen_frame_object(r, gen, &g);
        *next = 0;
        if (g.finished || !g.frame)
                return NULL;
        if (outermost)
                r->coro_frames[t - r->out->tasks] = g.frame;
        if (g.running)
                t->running = true;
        struct ms_py_code *c;
        struct ms_error *err =
                ms_py_code_get(&r->codes, r->target, r->l, g.code, &c);
        if (err)
                return err;
        int64_t off = g.offset;
        if (iframes)
                off = c->code_start && g.offset > 0
                              ? g.offset - (int64_t)c->code_start
                              : -1;
        err = push_frame(t, capacity, c, ms_py_code_line(r->l, c, off));
        if (err)
                return err;
        if (c->qualname && !strcmp(c->qualname, "TaskGroup.__aexit__"))
                t->taskgroup = g.local0;
        *next = g.top;
        return NULL;
}

/* The done callbacks of a future: callback0 and the (callback, context)
 * tuples of fut_callbacks. At most MS_PY_MAX_CALLBACKS. */
static size_t future_callbacks(struct reader *r, uint64_t fut,
                               uint64_t cbs[MS_PY_MAX_CALLBACKS])
{
        const struct ms_py_async_layout *al = r->al;
        size_t n = 0;
        uint64_t c0 = read_ptr(r, fut, al->fut_callback0);
        if (ms_py_plausible_pointer(c0))
                cbs[n++] = c0;
        uint64_t list = read_ptr(r, fut, al->fut_callbacks);
        if (!ms_py_plausible_pointer(list) ||
            object_kind(r, list, NULL) != K_LIST)
                return n;
        uint64_t size = read_ptr(r, list, r->l->ob_size);
        uint64_t items = read_ptr(r, list, r->l->list_item);
        for (uint64_t i = 0; i < size && n < MS_PY_MAX_CALLBACKS; i++) {
                uint64_t item = read_ptr(r, items + 8 * i, 0);
                if (object_kind(r, item, NULL) == K_TUPLE)
                        item = read_ptr(r, item, r->l->tuple_item);
                if (ms_py_plausible_pointer(item))
                        cbs[n++] = item;
        }
        return n;
}

static struct ms_error *add_via(struct ms_py_task *t, uint64_t object)
{
        for (size_t i = 0; i < t->n_via; i++) {
                if (t->via[i] == object)
                        return NULL;
        }
        uint64_t *v = realloc(t->via, (t->n_via + 1) * sizeof(*v));
        if (!v)
                return &ms_error_no_memory;
        t->via = v;
        t->via[t->n_via++] = object;
        return NULL;
}

/* The objects through which other tasks await task t: what its done
 * callbacks are bound to or close over, and 3.14+ fut_awaited_by. */
static struct ms_error *task_links(struct reader *r, struct ms_py_task *t)
{
        const struct ms_py_async_layout *al = r->al;
        uint64_t cbs[MS_PY_MAX_CALLBACKS];
        size_t n = future_callbacks(r, t->address, cbs);
        struct ms_error *err = NULL;
        for (size_t i = 0; i < n && !err; i++) {
                uint8_t k = object_kind(r, cbs[i], NULL);
                if (k == K_METHOD) {
                        uint64_t self = read_ptr(r, cbs[i], al->meth_self);
                        if (ms_py_plausible_pointer(self) && self != t->address)
                                err = add_via(t, self);
                        continue;
                }
                if (k != K_FUNCTION)
                        continue;
                uint64_t closure = read_ptr(r, cbs[i], al->func_closure);
                if (object_kind(r, closure, NULL) != K_TUPLE)
                        continue;
                uint64_t size = read_ptr(r, closure, r->l->ob_size);
                for (uint64_t j = 0; j < size && j < 16 && !err; j++) {
                        uint64_t cell = read_ptr(
                                r, closure + (uint64_t)r->l->tuple_item + 8 * j,
                                0);
                        uint64_t v = read_ptr(r, cell, al->cell_ref);
                        uint8_t vk = object_kind(r, v, NULL);
                        if ((vk == K_FUTURE || vk == K_TASK) && v != t->address)
                                err = add_via(t, v);
                }
        }
        uint64_t by = read_ptr(r, t->address, al->fut_awaited_by);
        uint8_t is_set = 0;
        if (al->fut_awaited_by_is_set >= 0 && by) {
                struct ms_error *e2 = ms_target_read(
                        r->target,
                        t->address + (uint64_t)al->fut_awaited_by_is_set,
                        &is_set, 1);
                ms_error_destroy(e2);
        }
        if (!err && ms_py_plausible_pointer(by) && !is_set)
                err = add_via(t, by);
        return err;
}

/* Whether the future at fut is completed from Rust: pyo3-async-runtimes
 * puts a PyDoneCallback on each future it makes (future_into_py). */
static bool is_rust_future(struct reader *r, uint64_t fut)
{
        uint64_t cbs[MS_PY_MAX_CALLBACKS];
        size_t n = future_callbacks(r, fut, cbs);
        for (size_t i = 0; i < n; i++) {
                if (object_kind(r, cbs[i], NULL) == K_PYO3_DONE)
                        return true;
        }
        return false;
}

/* Label what a task waits on: fut_waiter when set (the future its last
 * step yielded), else what the chain ended in. */
static struct ms_error *classify_await(struct reader *r, struct ms_py_task *t,
                                       uint64_t end, uint8_t end_kind)
{
        uint64_t waiter = read_ptr(r, t->address, r->al->task_fut_waiter);
        uint8_t wk = ms_py_plausible_pointer(waiter)
                             ? object_kind(r, waiter, NULL)
                             : 0;
        if (end_kind == K_PYO3_CORO) {
                t->await_kind = MS_PY_AWAIT_RUST_FUTURE;
                t->rust_detail = "PyO3 async fn";
                t->await_object = end;
        } else if (wk == K_TASK || wk == K_FUTURE) {
                t->await_object = waiter;
                t->await_kind =
                        wk == K_TASK ? MS_PY_AWAIT_TASK : MS_PY_AWAIT_FUTURE;
                if (wk == K_FUTURE && is_rust_future(r, waiter)) {
                        t->await_kind = MS_PY_AWAIT_RUST_FUTURE;
                        t->rust_detail = "pyo3-async-runtimes future_into_py";
                }
        } else if (wk) {
                t->await_object = waiter;
                t->await_kind = MS_PY_AWAIT_OTHER;
        } else if (end_kind == K_TASK || end_kind == K_FUTURE) {
                t->await_object = end;
                t->await_kind = end_kind == K_TASK ? MS_PY_AWAIT_TASK
                                                   : MS_PY_AWAIT_FUTURE;
        } else if (end_kind == K_GEN && end) {
                t->await_object = end;
                t->await_kind = MS_PY_AWAIT_COROUTINE;
        } else if (end && end_kind != K_UNREADABLE) {
                t->await_object = end;
                t->await_kind = MS_PY_AWAIT_OTHER;
        }
        if (t->await_object) {
                t->await_type = type_fullname(r, t->await_object);
                if (!t->await_type && t->await_kind != MS_PY_AWAIT_NONE) {
                        /* Keep going: the type is a detail. */
                }
        }
        return NULL;
}

/* Walk the coroutine chain of t from its coroutine, outermost first, then
 * reverse the frames (innermost first). */
static struct ms_error *read_chain(struct reader *r, struct ms_py_task *t)
{
        uint64_t obj = read_ptr(r, t->address, r->al->task_coro);
        size_t capacity = 0;
        uint8_t kind = 0;
        struct ms_error *err = NULL;
        for (unsigned depth = 0; obj && !err; depth++) {
                if (depth >= MS_PY_MAX_AWAIT_CHAIN) {
                        ms_warnings_add(&r->out->warnings,
                                        "asyncio: an await chain longer than "
                                        "%d was cut",
                                        MS_PY_MAX_AWAIT_CHAIN);
                        obj = 0;
                        break;
                }
                kind = object_kind(r, obj, NULL);
                if (kind == K_GEN) {
                        uint64_t next;
                        err = chain_gen(r, t, &capacity, obj, &next,
                                        depth == 0);
                        if (!next || next == obj)
                                break;
                        obj = next;
                        continue;
                }
                if (kind == K_FUTITER) {
                        obj = read_ptr(r, obj, r->al->fi_future);
                        kind = object_kind(r, obj, NULL);
                }
                break;
        }
        if (err)
                return err;
        if (kind == K_GEN)
                obj = 0; /* ended in a frame: a bare yield or running */
        for (size_t i = 0; i < t->n_frames / 2; i++) {
                struct ms_py_tb_frame tmp = t->frames[i];
                t->frames[i] = t->frames[t->n_frames - 1 - i];
                t->frames[t->n_frames - 1 - i] = tmp;
        }
        return classify_await(r, t, obj, kind);
}

static struct ms_error *task_name(struct reader *r, struct ms_py_task *t)
{
        uint64_t name = read_ptr(r, t->address, r->al->task_name);
        if (!ms_py_plausible_pointer(name))
                return NULL;
        struct ms_py_sbuf sb = {.limit = 200};
        struct ms_error *err = ms_py_append_str(r->target, r->l, name, &sb);
        char type[16] = "";
        struct ms_error *e2 =
                ms_py_type_name(r->target, r->l, name, type, sizeof(type));
        ms_error_destroy(e2);
        if (err) {
                ms_py_sbuf_deinit(&sb);
                bool oom = err->code == MS_ERROR_NO_MEMORY;
                ms_error_destroy(err);
                return oom ? &ms_error_no_memory : NULL;
        }
        /* 3.13+ keep a number until the name is asked for. */
        if (!strcmp(type, "int")) {
                char *n = ms_py_sbuf_take(&sb);
                if (!n)
                        return &ms_error_no_memory;
                if (asprintf(&t->name, "Task-%s", n) < 0)
                        t->name = NULL;
                free(n);
                return t->name ? NULL : &ms_error_no_memory;
        }
        t->name = ms_py_sbuf_take(&sb);
        return t->name || !sb.no_memory ? NULL : &ms_error_no_memory;
}

static struct ms_error *read_task(struct reader *r, struct ms_py_task *t)
{
        const struct ms_py_async_layout *al = r->al;
        int32_t state = 0;
        struct ms_error *err = ms_py_read_field_i32(r->target, t->address,
                                                    al->fut_state, &state);
        if (err) {
                ms_error_destroy(err);
                t->error = strdup("unreadable task");
                return t->error ? NULL : &ms_error_no_memory;
        }
        t->state = state == al->fut_state_cancelled  ? MS_PY_TASK_CANCELLED
                   : state == al->fut_state_finished ? MS_PY_TASK_DONE
                                                     : MS_PY_TASK_PENDING;
        t->loop = read_ptr(r, t->address, al->fut_loop);
        err = task_name(r, t);
        if (!err && t->state == MS_PY_TASK_PENDING)
                err = read_chain(r, t);
        if (!err && t->state == MS_PY_TASK_PENDING)
                err = task_links(r, t);
        return err;
}

/* ------------------------------------------------------------------------
 * Loops and threads
 * ------------------------------------------------------------------------ */

static struct ms_py_event_loop *loop_get(struct reader *r, uint64_t address,
                                         size_t *capacity)
{
        struct ms_py_asyncio *a = r->out;
        for (size_t i = 0; i < a->n_loops; i++) {
                if (a->loops[i].address == address)
                        return &a->loops[i];
        }
        if (!ms_grow((void **)&a->loops, capacity, a->n_loops,
                     sizeof(*a->loops)))
                return NULL;
        struct ms_py_event_loop *lp = &a->loops[a->n_loops++];
        *lp = (struct ms_py_event_loop){
                .address = address,
                .interp_id = -1,
                .running_task = SIZE_MAX,
        };
        return lp;
}

/* The loop a thread runs (asyncio._get_running_loop()), 0 when none. */
static uint64_t thread_running_loop(struct reader *r,
                                    const struct ms_py_thread *th)
{
        const struct ms_py_async_layout *al = r->al;
        if (al->ts_asyncio_running_loop >= 0)
                return read_ptr(r, th->tstate, al->ts_asyncio_running_loop);
        uint64_t dict = read_ptr(r, th->tstate, al->ts_dict), v = 0;
        if (!ms_py_plausible_pointer(dict))
                return 0;
        struct ms_error *err = ms_py_dict_get(
                r->target, r->l, dict, "__asyncio_running_event_loop__", &v);
        ms_error_destroy(err);
        if (err)
                return 0;
        /* 3.8-3.11 keep a holder object with the loop in it. */
        return al->rlh_loop >= 0 ? read_ptr(r, v, al->rlh_loop) : v;
}

static struct ms_error *assign_loops(struct reader *r)
{
        struct ms_py_asyncio *a = r->out;
        size_t capacity = 0;
        for (size_t i = 0; i < a->n_tasks; i++) {
                struct ms_py_task *t = &a->tasks[i];
                struct ms_py_event_loop *lp = loop_get(r, t->loop, &capacity);
                if (!lp)
                        return &ms_error_no_memory;
                if (t->state == MS_PY_TASK_DONE)
                        lp->n_done++;
                else if (t->state == MS_PY_TASK_CANCELLED)
                        lp->n_cancelled++;
                else
                        lp->n_pending++;
        }
        for (size_t i = 0; i < r->rt->n_threads; i++) {
                const struct ms_py_thread *th = &r->rt->threads[i];
                uint64_t loop = thread_running_loop(r, th);
                if (!ms_py_plausible_pointer(loop))
                        continue;
                struct ms_py_event_loop *lp = loop_get(r, loop, &capacity);
                if (!lp)
                        return &ms_error_no_memory;
                lp->tid = th->native_tid;
                lp->interp_id = th->interp_id;
                /* The running task: its coroutine frame is on this
                 * thread's stack. */
                for (size_t j = 0; j < a->n_tasks; j++) {
                        struct ms_py_task *t = &a->tasks[j];
                        if (t->loop != loop || !r->coro_frames[j])
                                continue;
                        for (size_t k = 0; k < th->n_frames; k++) {
                                if (th->frames[k].address ==
                                    r->coro_frames[j]) {
                                        lp->running_task = j;
                                        t->running = true;
                                }
                        }
                }
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * The await graph
 * ------------------------------------------------------------------------ */

static struct ms_error *add_index(size_t **items, size_t *n, size_t v)
{
        for (size_t i = 0; i < *n; i++) {
                if ((*items)[i] == v)
                        return NULL;
        }
        size_t *p = realloc(*items, (*n + 1) * sizeof(*p));
        if (!p)
                return &ms_error_no_memory;
        *items = p;
        p[(*n)++] = v;
        return NULL;
}

/* parent awaits child (directly or through the object parent waits on). */
static struct ms_error *add_edge(struct ms_py_asyncio *a, size_t parent,
                                 size_t child, bool direct)
{
        if (parent == child)
                return NULL;
        struct ms_py_task *p = &a->tasks[parent], *c = &a->tasks[child];
        struct ms_error *err =
                add_index(&c->awaited_by, &c->n_awaited_by, parent);
        if (!err && direct)
                p->await_task = child;
        if (!err && !direct)
                err = add_index(&p->children, &p->n_children, child);
        return err;
}

struct waiter_entry {
        struct ms_u64_entry h;
        /* First task waiting on the key object; others chained. */
        size_t first;
};

static struct ms_error *derive_edges(struct reader *r)
{
        struct ms_py_asyncio *a = r->out;
        struct ms_u64_table by_address, waiting_on;
        ms_u64_table_init(&by_address, sizeof(struct waiter_entry));
        ms_u64_table_init(&waiting_on, sizeof(struct waiter_entry));
        size_t *next = malloc((a->n_tasks + 1) * sizeof(*next));
        struct ms_error *err = next ? NULL : &ms_error_no_memory;
        for (size_t i = 0; i < a->n_tasks && !err; i++) {
                struct ms_py_task *t = &a->tasks[i];
                struct waiter_entry *e =
                        ms_u64_table_insert(&by_address, t->address);
                if (!e) {
                        err = &ms_error_no_memory;
                        break;
                }
                e->first = i;
                next[i] = SIZE_MAX;
                if (t->state != MS_PY_TASK_PENDING)
                        continue;
                /* Index waiters by what they wait on: the awaited object
                 * and the TaskGroup they wait in. */
                uint64_t keys[2] = {t->await_object, t->taskgroup};
                for (int k = 0; k < 2; k++) {
                        if (!keys[k] || (k == 1 && keys[1] == keys[0]))
                                continue;
                        struct waiter_entry *w =
                                ms_u64_table_find(&waiting_on, keys[k]);
                        if (!w) {
                                w = ms_u64_table_insert(&waiting_on, keys[k]);
                                if (!w) {
                                        err = &ms_error_no_memory;
                                        break;
                                }
                                w->first = SIZE_MAX;
                        }
                        /* Chain through next[]: one list per task is
                         * enough since keys[1] lists are rare. */
                        if (k == 0) {
                                next[i] = w->first;
                                w->first = i;
                        } else if (w->first == SIZE_MAX) {
                                w->first = i;
                        }
                }
        }
        for (size_t i = 0; i < a->n_tasks && !err; i++) {
                struct ms_py_task *t = &a->tasks[i];
                if (t->state != MS_PY_TASK_PENDING)
                        continue;
                if (t->await_kind == MS_PY_AWAIT_TASK) {
                        struct waiter_entry *e =
                                ms_u64_table_find(&by_address, t->await_object);
                        if (e)
                                err = add_edge(a, i, e->first, true);
                }
                for (size_t v = 0; v < t->n_via && !err; v++) {
                        /* A task awaiting this one directly (3.14+). */
                        struct waiter_entry *e =
                                ms_u64_table_find(&by_address, t->via[v]);
                        if (e && a->tasks[e->first].await_object != t->address)
                                err = add_edge(a, e->first, i, false);
                        struct waiter_entry *w =
                                ms_u64_table_find(&waiting_on, t->via[v]);
                        unsigned guard = 0;
                        for (size_t p = w ? w->first : SIZE_MAX;
                             p != SIZE_MAX && !err && guard++ < a->n_tasks;
                             p = next[p]) {
                                if (a->tasks[p].await_object != t->via[v] &&
                                    a->tasks[p].taskgroup != t->via[v])
                                        break;
                                err = add_edge(a, p, i, false);
                        }
                }
        }
        free(next);
        ms_u64_table_deinit(&by_address);
        ms_u64_table_deinit(&waiting_on);
        return err;
}

/* ------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------ */

static void task_deinit(struct ms_py_task *t)
{
        free(t->name);
        for (size_t i = 0; i < t->n_frames; i++)
                ms_py_tb_frame_deinit(&t->frames[i]);
        free(t->frames);
        free(t->await_type);
        free(t->via);
        free(t->awaited_by);
        free(t->children);
        free(t->error);
}

void ms_py_asyncio_deinit(struct ms_py_asyncio *a)
{
        for (size_t i = 0; i < a->n_tasks; i++)
                task_deinit(&a->tasks[i]);
        free(a->tasks);
        free(a->loops);
        ms_warnings_deinit(&a->warnings);
        memset(a, 0, sizeof(*a));
}

/* Believe the target's own _Py_AsyncioModuleDebugOffsets (3.14+) over the
 * table: task_object {size, task_name, task_awaited_by, task_is_task,
 * task_awaited_by_is_set, task_coro, task_node}, interpreter_state {size,
 * asyncio_tasks_head}, thread_state {size, asyncio_running_loop,
 * asyncio_running_task, asyncio_tasks_head}, all uint64. Each value is
 * checked to lie inside its struct before any is used. */
static void apply_debug_offsets(struct ms_target *target, uint64_t address,
                                struct ms_py_async_layout *al)
{
        uint64_t v[13];
        struct ms_error *err = ms_target_read(target, address, v, sizeof(v));
        if (err) {
                ms_error_destroy(err);
                return;
        }
        uint64_t task = v[0], ts = v[9];
        if (task < 64 || task > 4096 || ts < 64 || ts > (1u << 16))
                return;
        for (int i = 1; i <= 6; i++) {
                if (v[i] >= task)
                        return;
        }
        if (v[10] + 8 > ts || v[11] + 8 > ts)
                return;
        al->task_size = (int32_t)task;
        al->task_name = (int32_t)v[1];
        al->fut_awaited_by = (int32_t)v[2];
        al->fut_awaited_by_is_set = (int32_t)v[4];
        al->task_coro = (int32_t)v[5];
        al->task_node = (int32_t)v[6];
        al->ts_asyncio_running_loop = (int32_t)v[10];
        al->ts_asyncio_running_task = (int32_t)v[11];
}

struct ms_error *ms_py_asyncio_read(struct ms_target *target,
                                    const struct ms_py_runtime *rt,
                                    struct ms_py_asyncio *ret)
{
        memset(ret, 0, sizeof(*ret));
        const struct ms_py_async_layout *table =
                ms_py_async_layout_find(rt->minor, rt->version_hex);
        struct ms_py_async_layout al;
        if (table) {
                al = *table;
                if (rt->asyncio_debug)
                        apply_debug_offsets(target, rt->asyncio_debug, &al);
        }
        struct reader r = {
                .target = target,
                .rt = rt,
                .l = &rt->layout,
                .al = table ? &al : NULL,
                .out = ret,
        };
        if (!r.al || rt->free_threaded || r.al->task_coro < 0 ||
            r.al->gc_head_size <= 0) {
                /* No tasks can be looked for; say so only when asked. */
                return NULL;
        }
        ms_u64_table_init(&r.types, sizeof(struct type_entry));
        struct ms_error *err = find_tasks(&r);
        if (!err && ret->n_tasks) {
                r.coro_frames = calloc(ret->n_tasks, sizeof(*r.coro_frames));
                if (!r.coro_frames)
                        err = &ms_error_no_memory;
        }
        for (size_t i = 0; i < ret->n_tasks && !err; i++)
                err = read_task(&r, &ret->tasks[i]);
        if (!err && ret->n_tasks)
                err = assign_loops(&r);
        if (!err)
                err = derive_edges(&r);
        if (!err && ret->left_out)
                ms_warnings_add(&ret->warnings,
                                "asyncio: %zu tasks or lists left out "
                                "(bounds of the walk)",
                                ret->left_out);
        free(r.coro_frames);
        ms_py_code_cache_deinit(&r.codes);
        ms_u64_table_deinit(&r.types);
        if (err)
                ms_py_asyncio_deinit(ret);
        return err;
}
