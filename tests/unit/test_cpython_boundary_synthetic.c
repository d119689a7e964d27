/*
 * The CPython boundary state on synthetic memory images and synthetic
 * stacks:
 * - exceptions of 3.13, 3.14 and 3.15 images (cpython_image.h): a pending
 *   PyO3 PanicException (heap type, module in its dict) with a traceback
 *   whose lines come from the location table at tb_lasti, a
 *   __context__ / __cause__ chain that loops, handled exceptions on the
 *   exc_info stack with None items and a suppressed context; 3.15 takes
 *   ht_qualname from its debug offsets;
 * - the GIL of the same images: locked or not (last_holder alone is not a
 *   holder), the 3.13 _status bit and 3.14+ int, 3.15 gil_requested, a
 *   free-threaded 3.14t runtime whose GIL is disabled;
 * - a 3.11 image read through the tables: pending exceptions that were
 *   never normalised (a str, a tuple, nothing, KeyError's key);
 * - str()/repr() of ints, floats, bytes, str quoting, tuples, lists,
 *   classes and other objects;
 * - ms_py_thread_gil_state and ms_py_lifecycle_get on stacks classified
 *   by the real frame rules.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/cpython.h"
#include "cpython/internal.h"
#include "cpython_image.h"
#include "merge/rules.h"
#include "unit.h"

#define TP_HEAPTYPE (1UL << 9)
#define TP_LONG (1UL << 24)
#define TP_LIST (1UL << 25)
#define TP_TUPLE (1UL << 26)
#define TP_DICT (1UL << 29)
#define TP_BASE_EXC (1UL << 30)

/* ------------------------------------------------------------------------
 * Objects (GIL-build headers: ob_type at 8, ob_size at 16)
 * ------------------------------------------------------------------------ */

struct more_types {
        uint64_t tuple, list, dict, integer, boolean, flt, frame, traceback;
        uint64_t value_error, key_error, runtime_error, thing;
};

static uint64_t make_obj(struct image *img, uint64_t type, size_t size)
{
        uint64_t o = alloc(img, size);
        put64(img, o + 8, type);
        return o;
}

static uint64_t make_tuple(struct image *img, uint64_t type, int item_off,
                           const uint64_t *items, size_t n)
{
        uint64_t t = make_obj(img, type, (size_t)item_off + 8 * n + 8);
        put64(img, t + 16, n);
        for (size_t i = 0; i < n; i++)
                put64(img, t + (uint64_t)item_off + 8 * i, items[i]);
        return t;
}

static uint64_t make_list(struct image *img, uint64_t type,
                          const uint64_t *items, size_t n)
{
        uint64_t array = alloc(img, 8 * n + 8);
        for (size_t i = 0; i < n; i++)
                put64(img, array + 8 * i, items[i]);
        uint64_t l = make_obj(img, type, 40);
        put64(img, l + 16, n);
        put64(img, l + 24, array);
        return l;
}

/* An int of 30-bit digits: 3.12+ lv_tag (count << 3 | sign) when
 * tagged, else the signed count in ob_size. */
static uint64_t make_int(struct image *img, uint64_t type, bool tagged,
                         bool negative, const uint32_t *digits, size_t n)
{
        uint64_t o = make_obj(img, type, 24 + 4 * n + 8);
        uint64_t tag = tagged ? (n << 3) | (n == 0     ? 1
                                            : negative ? 2
                                                       : 0)
                              : (uint64_t)(negative ? -(int64_t)n : (int64_t)n);
        put64(img, o + 16, tag);
        for (size_t i = 0; i < n; i++)
                put32(img, o + 24 + 4 * i, digits[i]);
        return o;
}

static uint64_t make_small_int(struct image *img, uint64_t type, bool tagged,
                               int64_t v)
{
        uint32_t d[3];
        size_t n = 0;
        uint64_t a = v < 0 ? -(uint64_t)v : (uint64_t)v;
        while (a) {
                d[n++] = (uint32_t)(a & ((1u << 30) - 1));
                a >>= 30;
        }
        return make_int(img, type, tagged, v < 0, d, n);
}

static uint64_t make_float(struct image *img, uint64_t type, double v)
{
        uint64_t o = make_obj(img, type, 24);
        memcpy(img->mem + (o + 16 - BASE), &v, 8);
        return o;
}

/* A combined dict of 3.11+ with str keys (unicode entries). */
static uint64_t make_dict(struct image *img, uint64_t type,
                          const uint64_t *keys, const uint64_t *values,
                          size_t n)
{
        uint64_t k = alloc(img, 40 + 16 * n);
        put8(img, k + 8, 3);  /* dk_log2_size: 8 slots */
        put8(img, k + 9, 3);  /* dk_log2_index_bytes: 8 one-byte indices */
        put8(img, k + 10, 1); /* DICT_KEYS_UNICODE */
        put64(img, k + 24, n);
        for (size_t i = 0; i < n; i++) {
                put8(img, k + 32 + i, (uint8_t)i);
                put64(img, k + 40 + 16 * i, keys[i]);
                put64(img, k + 48 + 16 * i, values[i]);
        }
        uint64_t d = make_obj(img, type, 48);
        put64(img, d + 16, n);
        put64(img, d + 32, k);
        return d;
}

/* A class defined at run time: the name in tp_name, the qualified name in
 * ht_qualname, the module in its dict. */
static uint64_t make_heap_type(struct image *img, const struct types *ty,
                               const struct more_types *mt, const char *name,
                               const char *qualname, const char *module,
                               int ht_qualname)
{
        uint64_t t = alloc(img, 1024);
        uint64_t s = alloc(img, strlen(name) + 1);
        memcpy(img->mem + (s - BASE), name, strlen(name) + 1);
        put64(img, t + 8, ty->type);
        put64(img, t + 24, s);
        put64(img, t + 168, TP_HEAPTYPE | TP_BASE_EXC);
        uint64_t keys[] = {make_ascii(img, ty, "__doc__"),
                           make_ascii(img, ty, "__module__")};
        uint64_t values[] = {make_ascii(img, ty, "a doc"),
                             make_ascii(img, ty, module)};
        put64(img, t + 264, make_dict(img, mt->dict, keys, values, 2));
        put64(img, t + (uint64_t)ht_qualname, make_ascii(img, ty, qualname));
        return t;
}

static uint64_t make_exc(struct image *img, uint64_t type, uint64_t args,
                         uint64_t tb)
{
        uint64_t e = make_obj(img, type, 72);
        put64(img, e + 24, args);
        put64(img, e + 40, tb);
        return e;
}

static void exc_link(struct image *img, uint64_t exc, uint64_t context,
                     uint64_t cause, bool suppress)
{
        put64(img, exc + 48, context);
        put64(img, exc + 56, cause);
        put8(img, exc + 64, suppress);
}

/* A traceback entry over a frame object whose f_frame is iframe. */
static uint64_t make_tb(struct image *img, const struct more_types *mt,
                        uint64_t next, uint64_t iframe, int32_t lasti,
                        int32_t lineno)
{
        uint64_t f = make_obj(img, mt->frame, 80);
        put64(img, f + 24, iframe);
        uint64_t tb = make_obj(img, mt->traceback, 48);
        put64(img, tb + 16, next);
        put64(img, tb + 24, f);
        put32(img, tb + 32, (uint32_t)lasti);
        put32(img, tb + 36, (uint32_t)lineno);
        return tb;
}

static void make_more_types(struct image *img, const struct types *ty,
                            struct more_types *mt)
{
        mt->tuple = make_type(img, ty, "tuple", TP_TUPLE);
        mt->list = make_type(img, ty, "list", TP_LIST);
        mt->dict = make_type(img, ty, "dict", TP_DICT);
        mt->integer = make_type(img, ty, "int", TP_LONG);
        mt->boolean = make_type(img, ty, "bool", TP_LONG);
        mt->flt = make_type(img, ty, "float", 0);
        mt->frame = make_type(img, ty, "frame", 0);
        mt->traceback = make_type(img, ty, "traceback", 0);
        mt->value_error = make_type(img, ty, "ValueError", TP_BASE_EXC);
        mt->key_error = make_type(img, ty, "KeyError", TP_BASE_EXC);
        mt->runtime_error = make_type(img, ty, "RuntimeError", TP_BASE_EXC);
        mt->thing = make_type(img, ty, "mod.Thing", 0);
}

static struct ms_target *image_target(struct image *img)
{
        struct ms_target *target = NULL;
        struct ms_error *err =
                ms_target_create_debugger(image_read, img, NULL, &target);
        CHECK(err == NULL);
        ms_error_destroy(err);
        return target;
}

static bool read_one(struct ms_target *target, uint64_t runtime, int major,
                     int minor, struct ms_py_runtime **rts, size_t *n)
{
        const struct ms_py_find_options o = {
                .runtime_address = runtime, .major = major, .minor = minor};
        struct ms_error *err = ms_py_runtimes_find(target, NULL, &o, rts, n);
        CHECK(err == NULL);
        ms_error_destroy(err);
        CHECK(*n == 1);
        return !err && *n == 1 && (*rts)[0].n_threads >= 1;
}

/* ------------------------------------------------------------------------
 * Exceptions of 3.13-3.15 images
 * ------------------------------------------------------------------------ */

struct exc_image {
        uint64_t e1, e2, e3, e4;
        int ht_qualname;
};

/*
 * pending: E1 = PanicException("boom 1234") with traceback B (line from
 * tb_lasti 6: 102) -> A (tb_lasti 12: 52), __context__ E2 =
 * ValueError(42, 'x', 1.5, None, True, b"a'b", -7, [1]), whose __cause__
 * E3 = KeyError('k'), whose __context__ is E1 again (a loop).
 * handled: None item -> mymod.Outer.Inner() with a suppressed context ->
 * the empty base item.
 */
static void add_exceptions(struct image *img, const struct version *v,
                           const struct built *b, struct exc_image *x)
{
        struct more_types mt;
        const struct types *ty = &b->ty;
        make_more_types(img, ty, &mt);
        uint64_t panic =
                make_heap_type(img, ty, &mt, "PanicException", "PanicException",
                               "pyo3_runtime", x->ht_qualname);
        uint64_t tb_a = make_tb(img, &mt, 0, b->frames[0], 12, -1);
        uint64_t tb_b = make_tb(img, &mt, tb_a, b->frames[1], 6, -1);
        uint64_t a1[] = {make_ascii(img, ty, "boom 1234")};
        x->e1 = make_exc(img, panic,
                         make_tuple(img, mt.tuple, v->tuple_item, a1, 1), tb_b);
        uint64_t one[] = {make_small_int(img, mt.integer, true, 1)};
        uint64_t a2[] = {
                make_small_int(img, mt.integer, true, 42),
                make_ascii(img, ty, "x"),
                make_float(img, mt.flt, 1.5),
                b->none,
                make_small_int(img, mt.boolean, true, 1),
                make_bytes(img, ty, (const uint8_t *)"a'b", 3),
                make_small_int(img, mt.integer, true, -7),
                make_list(img, mt.list, one, 1),
        };
        x->e2 = make_exc(
                img, mt.value_error,
                make_tuple(img, mt.tuple, v->tuple_item, a2, MS_ARRAY_SIZE(a2)),
                0);
        uint64_t a3[] = {make_ascii(img, ty, "k")};
        x->e3 = make_exc(img, mt.key_error,
                         make_tuple(img, mt.tuple, v->tuple_item, a3, 1), 0);
        exc_link(img, x->e1, x->e2, 0, false);
        exc_link(img, x->e2, 0, x->e3, false);
        exc_link(img, x->e3, x->e1, 0, false);
        /* A nested class: its name alone would say "mymod.Inner". */
        uint64_t inner = make_heap_type(img, ty, &mt, "Inner", "Outer.Inner",
                                        "mymod", x->ht_qualname);
        x->e4 = make_exc(img, inner,
                         make_tuple(img, mt.tuple, v->tuple_item, NULL, 0), 0);
        exc_link(img, x->e4, x->e2, 0, true);

        put64(img, b->tstate + (uint64_t)v->ts_current_exception, x->e1);
        uint64_t base = b->tstate + (uint64_t)v->ts_exc_state;
        uint64_t item2 = alloc(img, 16), item1 = alloc(img, 16);
        put64(img, item1 + 0, b->none);
        put64(img, item1 + 8, item2);
        put64(img, item2 + 0, x->e4);
        put64(img, item2 + 8, base);
        put64(img, b->tstate + (uint64_t)v->ts_exc_info, item1);
}

static void check_exceptions(const char *label, const struct ms_py_thread *t,
                             const struct exc_image *x)
{
        const struct ms_py_exc_chain *p = &t->pending;
        CHECK(p->n == 3);
        CHECK(p->truncated);
        if (p->n != 3) {
                fprintf(stderr, "%s: %zu pending\n", label, p->n);
                return;
        }
        const struct ms_py_exc *e = &p->items[0];
        CHECK_STR(e->type, "pyo3_runtime.PanicException");
        CHECK_STR(e->message, "boom 1234");
        CHECK(e->is_panic_exception && e->normalized);
        CHECK(e->address == x->e1 && e->link == MS_PY_EXC_LINK_NONE);
        CHECK(e->error == NULL);
        if (e->error)
                fprintf(stderr, "%s: %s\n", label, e->error);
        CHECK(e->n_traceback == 2);
        if (e->n_traceback == 2) {
                /* Outermost first, lines from the table at tb_lasti. */
                CHECK_STR(e->traceback[0].file, "mod.py");
                CHECK(e->traceback[0].line == 102);
                CHECK_STR(e->traceback[1].function, "inner");
                CHECK_STR(e->traceback[1].qualname, "Klass.m\xc3\xa9thode");
                CHECK(e->traceback[1].line == 52);
        }
        e = &p->items[1];
        CHECK_STR(e->type, "builtins.ValueError");
        CHECK_STR(e->message, "(42, 'x', 1.5, None, True, b\"a'b\", -7, [1])");
        CHECK(e->link == MS_PY_EXC_LINK_CONTEXT && !e->is_panic_exception);
        e = &p->items[2];
        CHECK_STR(e->type, "builtins.KeyError");
        CHECK_STR(e->message, "'k'");
        CHECK(e->link == MS_PY_EXC_LINK_CAUSE);

        CHECK(t->n_handled == 1);
        if (t->n_handled != 1)
                return;
        const struct ms_py_exc_chain *h = &t->handled[0];
        CHECK(h->n == 1 && !h->truncated);
        if (h->n) {
                CHECK_STR(h->items[0].type, "mymod.Outer.Inner");
                CHECK_STR(h->items[0].message, "");
                CHECK(h->items[0].n_traceback == 0);
        }
}

static void test_exceptions(struct image *img, const struct version *v,
                            const char *label, int ht_qualname)
{
        struct built b;
        build(img, v, &b);
        struct exc_image x = {.ht_qualname = ht_qualname};
        if (ht_qualname != 872) {
                /* 3.15 describes PyHeapTypeObject: size, ht_cached_keys. */
                put64(img, b.runtime + 528, 944);
                put64(img, b.runtime + 536, (uint64_t)ht_qualname + 8);
        }
        add_exceptions(img, v, &b, &x);
        struct ms_target *target = image_target(img);
        struct ms_py_runtime *rts = NULL;
        size_t n = 0;
        if (target && read_one(target, b.runtime, 0, 0, &rts, &n)) {
                printf("%s: pending %zu, handled %zu\n", label,
                       rts[0].threads[0].pending.n,
                       rts[0].threads[0].n_handled);
                check_exceptions(label, &rts[0].threads[0], &x);
        }
        ms_py_runtimes_destroy(rts, n);
        ms_target_destroy(target);
}

/* ------------------------------------------------------------------------
 * The GIL of 3.13-3.15 images
 * ------------------------------------------------------------------------ */

static void read_gil_case(struct image *img, const struct built *b,
                          void (*check)(const struct built *,
                                        const struct ms_py_runtime *))
{
        struct ms_target *target = image_target(img);
        struct ms_py_runtime *rts = NULL;
        size_t n = 0;
        if (target && read_one(target, b->runtime, 0, 0, &rts, &n))
                check(b, &rts[0]);
        ms_py_runtimes_destroy(rts, n);
        ms_target_destroy(target);
}

static void check_held(const struct built *b, const struct ms_py_runtime *rt)
{
        const struct ms_py_interp *in = &rt->interps[0];
        CHECK(in->gil_known && in->gil_locked && !in->gil_disabled);
        CHECK(in->gil_holder == b->tstate && in->gil_holder_tid == 4242);
        CHECK(in->gil_address > b->interp);
        CHECK(ms_py_thread_gil_state(rt, &rt->threads[0], NULL, 0, NULL) ==
              MS_PY_GIL_HELD);
        CHECK(rt->warnings.n == 0);
}

static void check_released(const struct built *b,
                           const struct ms_py_runtime *rt)
{
        const struct ms_py_interp *in = &rt->interps[0];
        /* last_holder still names the thread: it is not a holder. */
        CHECK(in->gil_known && !in->gil_locked);
        CHECK(in->gil_last_holder == b->tstate);
        CHECK(in->gil_holder == 0 && in->gil_holder_tid == 0);
        CHECK(!rt->threads[0].holds_gil);
        CHECK(ms_py_thread_gil_state(rt, &rt->threads[0], NULL, 0, NULL) ==
              MS_PY_GIL_RELEASED);
}

/* 3.15 says a thread waits for the GIL without looking at its stack. */
static void check_requested(const struct built *b,
                            const struct ms_py_runtime *rt)
{
        CHECK(rt->interps[0].gil_holder == 0);
        CHECK(rt->threads[0].gil_requested == 1);
        CHECK(ms_py_thread_gil_state(rt, &rt->threads[0], NULL, 0, NULL) ==
              MS_PY_GIL_WAITING);
}

static void check_disagree(const struct built *b,
                           const struct ms_py_runtime *rt)
{
        /* The thread's flag says held, the GIL says free: warned. */
        CHECK(rt->interps[0].gil_holder == 0);
        CHECK(rt->threads[0].holds_gil);
        CHECK(rt->warnings.n >= 1);
}

static void check_no_gil(const struct built *b, const struct ms_py_runtime *rt)
{
        const struct ms_py_interp *in = &rt->interps[0];
        CHECK(rt->free_threaded);
        CHECK(in->gil_known && in->gil_disabled && in->gil_holder == 0);
        CHECK(ms_py_thread_gil_state(rt, &rt->threads[0], NULL, 0, NULL) ==
              MS_PY_GIL_RELEASED);
}

static void unlock(struct image *img, const struct version *v,
                   const struct built *b)
{
        put32(img, b->interp + (uint64_t)v->gil_locked, 0);
        if (v->ts_holds_gil >= 0)
                put32(img, b->tstate + (uint64_t)v->ts_holds_gil, 0);
        else
                put32(img, b->tstate + (uint64_t)v->ts_status, 0x1b);
}

static void test_gil(struct image *img, const struct version *v)
{
        struct built b;
        build(img, v, &b);
        read_gil_case(img, &b, check_held);
        build(img, v, &b);
        unlock(img, v, &b);
        read_gil_case(img, &b, check_released);
        build(img, v, &b);
        put32(img, b.interp + (uint64_t)v->gil_locked, 0);
        read_gil_case(img, &b, check_disagree);
        if (v->ts_gil_requested >= 0) {
                build(img, v, &b);
                unlock(img, v, &b);
                put32(img, b.tstate + (uint64_t)v->ts_gil_requested, 1);
                read_gil_case(img, &b, check_requested);
        }
}

/* 3.14t: free_threaded 1, enabled at +0 of the GIL, last_holder +16,
 * locked +24, a 32-byte object header (ob_type 24, tuple ob_size 32). No
 * frames: objects of the image have GIL-build headers. */
static void test_free_threaded(struct image *img)
{
        struct built b;
        build(img, &v314, &b);
        uint64_t gil = b.interp + 7784;
        put64(img, b.runtime + 16, 1);
        put64(img, b.runtime + 136, 0);
        put64(img, b.runtime + 144, 7784 + 24);
        put64(img, b.runtime + 152, 7784 + 16);
        put64(img, b.runtime + 400, 32);
        put64(img, b.runtime + 408, 24);
        put64(img, b.runtime + 464, 32);
        put64(img, b.tstate + 72, 0);
        put32(img, gil + 0, 0);
        put64(img, gil + 16, b.tstate);
        put32(img, gil + 24, 1);
        read_gil_case(img, &b, check_no_gil);
}

/* ------------------------------------------------------------------------
 * 3.11 (tables, no debug offsets): pending exceptions never normalised
 * ------------------------------------------------------------------------ */

/* Offsets of the 3.11 tables (cpython-internals.md §2, §7). */
enum {
        R311_HEAD = 40,
        R311_MAIN = 48,
        R311_GIL = 360,
        R311_CURRENT = 576,
        I311_THREADS = 16,
        I311_ID = 48,
        T311_INTERP = 16,
        T311_NEXT = 8,
        T311_THREAD_ID = 152,
        T311_NATIVE = 160,
        T311_CUREXC = 96,
        T311_EXC_INFO = 120,
        T311_SIZE = 360,
};

/* A 3.8-3.11 compact ASCII str: data at 48, the ready bit set. */
static uint64_t make_str311(struct image *img, uint64_t str_type, const char *s)
{
        size_t n = strlen(s);
        uint64_t o = make_obj(img, str_type, 48 + n + 1);
        put64(img, o + 16, n);
        put32(img, o + 32, (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7));
        memcpy(img->mem + (o + 48 - BASE), s, n);
        return o;
}

static void test_unnormalized_311(struct image *img)
{
        memset(img->mem, 0, IMAGE_SIZE);
        img->next = BASE + 0x100000;
        uint64_t rt = BASE + 0x1000, interp = BASE + 0x80000;
        struct types ty;
        ty.type = make_type(img, NULL, "type", 1UL << 31);
        put64(img, ty.type + 8, ty.type);
        ty.str = make_type(img, &ty, "str", 1UL << 28);
        struct more_types mt;
        make_more_types(img, &ty, &mt);

        uint64_t two[] = {make_str311(img, ty.str, "a"),
                          make_small_int(img, mt.integer, false, 2)};
        static const uint32_t big_digits[] = {0, 0, 0, 1u << 10}; /* 2**100 */
        struct {
                uint64_t type, value;
                const char *type_name, *message;
        } cases[] = {
                {mt.value_error, make_str311(img, ty.str, "bad value"),
                 "builtins.ValueError", "bad value"},
                {mt.value_error, make_tuple(img, mt.tuple, 24, two, 2),
                 "builtins.ValueError", "('a', 2)"},
                {mt.runtime_error, 0, "builtins.RuntimeError", ""},
                {mt.key_error, make_str311(img, ty.str, "k"),
                 "builtins.KeyError", "'k'"},
                {mt.value_error,
                 make_int(img, mt.integer, false, true, big_digits, 4),
                 "builtins.ValueError", "-1267650600228229401496703205376"},
        };
        size_t n = MS_ARRAY_SIZE(cases);
        uint64_t next = 0;
        for (size_t i = n; i-- > 0;) {
                uint64_t ts = alloc(img, T311_SIZE);
                put64(img, ts + T311_INTERP, interp);
                put64(img, ts + T311_NEXT, next);
                put64(img, ts + T311_THREAD_ID, 0x7f0000001000ULL + i);
                put64(img, ts + T311_NATIVE, 100 + i);
                put64(img, ts + T311_CUREXC, cases[i].type);
                put64(img, ts + T311_CUREXC + 8, cases[i].value);
                next = ts;
        }
        put64(img, rt + R311_HEAD, interp);
        put64(img, rt + R311_MAIN, interp);
        put32(img, rt + 16, 1); /* initialized */
        put64(img, interp + I311_THREADS, next);
        put64(img, interp + I311_ID, 0);
        /* The GIL locked by the first thread, also tstate_current. */
        put64(img, rt + R311_GIL + 8, next);
        put32(img, rt + R311_GIL + 16, 1);
        put64(img, rt + R311_CURRENT, next);

        struct ms_target *target = image_target(img);
        struct ms_py_runtime *rts = NULL;
        size_t nrt = 0;
        if (target && read_one(target, rt, 3, 11, &rts, &nrt)) {
                const struct ms_py_runtime *r = &rts[0];
                CHECK(r->n_threads == n);
                CHECK(r->interps[0].gil_holder_tid == 100);
                CHECK(r->tstate_current == next && r->warnings.n == 0);
                for (size_t i = 0; i < r->n_threads && i < n; i++) {
                        const struct ms_py_exc_chain *p =
                                &r->threads[i].pending;
                        CHECK(p->n == 1);
                        if (!p->n)
                                continue;
                        CHECK(!p->items[0].normalized);
                        CHECK_STR(p->items[0].type, cases[i].type_name);
                        CHECK_STR(p->items[0].message, cases[i].message);
                }
        }
        ms_py_runtimes_destroy(rts, nrt);
        ms_target_destroy(target);
}

/* ------------------------------------------------------------------------
 * str() and repr()
 * ------------------------------------------------------------------------ */

static void check_repr(struct ms_target *target, const struct ms_py_layout *l,
                       uint64_t obj, bool repr, const char *want)
{
        struct ms_py_sbuf sb = {.limit = 256};
        struct ms_error *err = repr ? ms_py_append_repr(target, l, obj, &sb)
                                    : ms_py_append_str(target, l, obj, &sb);
        CHECK(err == NULL);
        if (err)
                fprintf(stderr, "repr: %s\n", err->message);
        ms_error_destroy(err);
        char *s = ms_py_sbuf_take(&sb);
        CHECK_STR(s, want);
        free(s);
}

static void test_repr(struct image *img)
{
        struct built b;
        build(img, &v314, &b);
        struct more_types mt;
        const struct types *ty = &b.ty;
        make_more_types(img, ty, &mt);
        static const uint32_t big_digits[] = {0, 0, 0, 1u << 10};
        uint64_t zero = make_int(img, mt.integer, true, false, NULL, 0);
        uint64_t nested1[] = {zero};
        uint64_t nested2[] = {make_tuple(img, mt.tuple, 32, nested1, 1)};
        uint64_t nested3[] = {make_tuple(img, mt.tuple, 32, nested2, 1)};
        uint64_t nested4[] = {make_tuple(img, mt.tuple, 32, nested3, 1)};
        uint64_t thing = make_obj(img, mt.thing, 16);
        static const uint32_t c1[] = {'a', 0x85, '\n', '\'', 0xe9};
        uint64_t args[] = {make_ascii(img, ty, "x")};
        uint64_t exc = make_exc(img, mt.value_error,
                                make_tuple(img, mt.tuple, 32, args, 1), 0);
        /* e.args == (e,): str(e) must end. */
        uint64_t selfref = make_exc(img, mt.value_error, 0, 0);
        uint64_t self_args[] = {selfref};
        put64(img, selfref + 24, make_tuple(img, mt.tuple, 32, self_args, 1));
        char self_str[64];
        snprintf(self_str, sizeof(self_str),
                 "<ValueError object at 0x%" PRIx64 ">", selfref);
        char thing_repr[64];
        snprintf(thing_repr, sizeof(thing_repr),
                 "<mod.Thing object at 0x%" PRIx64 ">", thing);
        struct {
                uint64_t obj;
                bool repr;
                const char *want;
        } cases[] = {
                {make_ascii(img, ty, "it's"), true, "\"it's\""},
                {make_ascii(img, ty, "say \"it's\""), true, "'say \"it\\'s\"'"},
                {make_str(img, ty, c1, MS_ARRAY_SIZE(c1)), true,
                 "\"a\\x85\\n'\xc3\xa9\""},
                {make_ascii(img, ty, "plain"), false, "plain"},
                {zero, false, "0"},
                {make_int(img, mt.integer, true, false, big_digits, 4), false,
                 "1267650600228229401496703205376"},
                {make_small_int(img, mt.integer, true, -1000000000), false,
                 "-1000000000"},
                {make_small_int(img, mt.boolean, true, 0), true, "False"},
                {make_float(img, mt.flt, 0.1), true, "0.1"},
                {make_float(img, mt.flt, 1e16), true, "1e+16"},
                {make_float(img, mt.flt, -2.0), true, "-2.0"},
                {make_float(img, mt.flt, 1.0 / 0.0), true, "inf"},
                {make_bytes(img, ty, (const uint8_t *)"\x00\xff\\", 3), true,
                 "b'\\x00\\xff\\\\'"},
                {nested4[0], true, "(((0,),),)"},
                {make_tuple(img, mt.tuple, 32, nested4, 1), true,
                 "((((...),),),)"},
                {make_list(img, mt.list, NULL, 0), true, "[]"},
                {thing, true, thing_repr},
                {mt.value_error, true, "<class 'ValueError'>"},
                {exc, true, "ValueError('x')"},
                {exc, false, "x"},
                {selfref, false, self_str},
        };
        struct ms_target *target = image_target(img);
        struct ms_py_runtime *rts = NULL;
        size_t n = 0;
        if (target && read_one(target, b.runtime, 0, 0, &rts, &n)) {
                for (size_t i = 0; i < MS_ARRAY_SIZE(cases); i++)
                        check_repr(target, &rts[0].layout, cases[i].obj,
                                   cases[i].repr, cases[i].want);
                /* A bounded buffer cuts at a character boundary. */
                struct ms_py_sbuf sb = {.limit = 4};
                ms_py_sbuf_puts(&sb, "ab\xc3\xa9\xc3\xa9");
                CHECK(sb.truncated && sb.len == 4);
                char *s = ms_py_sbuf_take(&sb);
                CHECK_STR(s, "ab\xc3\xa9");
                free(s);
                /* Garbage is an error, not a crash. */
                sb = (struct ms_py_sbuf){.limit = 64};
                struct ms_error *err = ms_py_append_repr(target, &rts[0].layout,
                                                         BASE + 8, &sb);
                CHECK(err != NULL);
                ms_error_destroy(err);
                ms_py_sbuf_deinit(&sb);
        }
        ms_py_runtimes_destroy(rts, n);
        ms_target_destroy(target);
}

/* ------------------------------------------------------------------------
 * Stacks: GIL waits and lifecycle
 * ------------------------------------------------------------------------ */

/* Frames from "kind:function[:file]" names, classified by the real
 * rules ("py:" makes a Python frame). */
struct fake_stack {
        struct ms_frame frames[16];
        size_t n;
};

static void fake_stack(struct fake_stack *s, const char *const *names)
{
        const struct ms_rules *rules = ms_frame_rules(NULL);
        memset(s, 0, sizeof(*s));
        for (; *names && s->n < MS_ARRAY_SIZE(s->frames); names++) {
                struct ms_frame *f = &s->frames[s->n++];
                const char *name = *names;
                f->kind = MS_FRAME_NATIVE;
                if (strncmp(name, "py:", 3) == 0) {
                        f->kind = MS_FRAME_PYTHON;
                        f->language = MS_LANGUAGE_PYTHON;
                        name += 3;
                        const char *colon = strchr(name, ':');
                        f->file = colon ? (char *)colon + 1 : NULL;
                        f->function =
                                colon ? strndup(name, (size_t)(colon - name))
                                      : strdup(name);
                } else {
                        f->function = *name ? strdup(name) : NULL;
                }
                f->category = ms_rules_frame_category(rules, f);
        }
}

static void fake_stack_deinit(struct fake_stack *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->frames[i].function);
}

static enum ms_py_gil_state state_of(const struct ms_py_runtime *rt,
                                     const struct ms_py_thread *t,
                                     const char *const *names, size_t *wait)
{
        struct fake_stack s;
        fake_stack(&s, names);
        enum ms_py_gil_state st =
                ms_py_thread_gil_state(rt, t, s.frames, s.n, wait);
        fake_stack_deinit(&s);
        return st;
}

static void test_gil_stacks(void)
{
        struct ms_py_interp in = {.id = 0, .gil_known = true};
        struct ms_py_thread t = {
                .tstate = 0x1000, .interp_id = 0, .gil_requested = -1};
        struct ms_py_runtime rt = {
                .interps = &in, .n_interps = 1, .threads = &t, .n_threads = 1};
        static const char *const waiting[] = {
                "__futex_abstimed_wait_common",
                "__pthread_cond_wait_common",
                "pthread_cond_timedwait",
                "PyCOND_TIMEDWAIT",
                "take_gil.lto_priv.0",
                "PyEval_RestoreThread",
                "time_sleep",
                "py:sleeper:/app.py",
                NULL,
        };
        static const char *const attach[] = {
                "syscall",
                "take_gil",
                "PyEval_RestoreThread",
                "PyGILState_Ensure",
                "pyo3::gil::GILGuard::acquire_unchecked",
                "mixsample::deadlock_thread_b",
                NULL,
        };
        static const char *const rust_in_python[] = {
                "__lll_lock_wait",
                "PyThread_acquire_lock_timed",
                "acquire_timed",
                "_PyEval_EvalFrameDefault",
                "pyo3::marker::Python::attach",
                NULL,
        };
        static const char *const dropping[] = {
                "pthread_cond_wait",
                "drop_gil",
                "take_gil",
                NULL,
        };
        static const char *const mutex[] = {
                "syscall",
                "std::sys::sync::mutex::futex::Mutex::lock_contended",
                "pyo3::marker::Python::attach",
                NULL,
        };
        size_t w;
        CHECK(state_of(&rt, &t, waiting, &w) == MS_PY_GIL_WAITING && w == 4);
        CHECK(state_of(&rt, NULL, attach, &w) == MS_PY_GIL_WAITING && w == 1);
        CHECK(state_of(&rt, &t, rust_in_python, &w) == MS_PY_GIL_RELEASED &&
              w == SIZE_MAX);
        CHECK(state_of(&rt, &t, dropping, NULL) == MS_PY_GIL_RELEASED);
        CHECK(state_of(&rt, NULL, mutex, NULL) == MS_PY_GIL_NONE);
        t.holds_gil = true;
        CHECK(state_of(&rt, &t, waiting, NULL) == MS_PY_GIL_HELD);
        in.gil_disabled = true;
        CHECK(state_of(&rt, &t, mutex, NULL) == MS_PY_GIL_RELEASED);
        CHECK(strcmp(ms_py_gil_state_name(MS_PY_GIL_WAITING), "waiting") == 0);
}

struct lc_case {
        const char *label;
        /* Runtime facts. */
        int initialized, core_initialized;
        bool finalizing_tstate, main_finalizing, no_interpreters;
        /* Thread 10's stack and Python frames (bottom last), thread 11's
         * stack. */
        const char *const *stack10, *const *stack11;
        const char *python_bottom;
        enum ms_py_phase phase;
        enum ms_py_finalize_step step;
        bool inferred, exiting;
        pid_t finalizing_tid;
        /* Thread 10's outermost Python frame runs a function registered
         * with atexit (its code object is in the interpreter's list). */
        bool atexit_registered;
};

static void run_lc_case(const struct lc_case *c)
{
        uint64_t atexit_code[] = {0x7000, 0xc0de};
        struct ms_py_interp in = {
                .id = 0,
                .is_main = true,
                .finalizing = c->main_finalizing,
                .atexit_code = atexit_code,
                .n_atexit_code = MS_ARRAY_SIZE(atexit_code),
                .atexit_known = true,
        };
        struct ms_py_frame pyf[2] = {
                {.function = "flush",
                 .file = "/app.py",
                 .code_address = 0xc0de},
                {.function = (char *)c->python_bottom,
                 .file = "/usr/lib/python3.11/threading.py",
                 .code_address = c->atexit_registered ? 0xc0de : 0xbad},
        };
        struct ms_py_thread threads[2] = {
                {.tstate = 0x1000,
                 .native_tid = 10,
                 .frames = pyf,
                 .n_frames = c->python_bottom ? 2 : 0},
                {.tstate = 0x2000, .native_tid = 11},
        };
        struct ms_py_runtime rt = {
                .initialized = c->initialized,
                .core_initialized = c->core_initialized,
                .finalizing_tstate = c->finalizing_tstate ? 0x1000 : 0,
                .interpreters_head = c->no_interpreters ? 0 : 0x5000,
                .interps = &in,
                .n_interps = 1,
                .threads = threads,
                .n_threads = 2,
        };
        static const char *const none[] = {NULL};
        struct fake_stack s10, s11;
        fake_stack(&s10, c->stack10 ? c->stack10 : none);
        fake_stack(&s11, c->stack11 ? c->stack11 : none);
        struct ms_py_stack_ref refs[] = {
                {10, s10.frames, s10.n},
                {11, s11.frames, s11.n},
        };
        struct ms_py_lifecycle lc;
        ms_py_lifecycle_get(&rt, refs, 2, &lc);
        bool ok = lc.phase == c->phase && lc.step == c->step &&
                  lc.step_inferred == c->inferred &&
                  lc.process_exiting == c->exiting &&
                  lc.finalizing_tid == c->finalizing_tid;
        CHECK(ok);
        if (!ok)
                fprintf(stderr,
                        "%s: phase %s step %s inferred %d exiting %d "
                        "tid %d (%s)\n",
                        c->label, ms_py_phase_name(lc.phase),
                        ms_py_finalize_step_text(lc.step), lc.step_inferred,
                        lc.process_exiting, (int)lc.finalizing_tid, lc.reason);
        fake_stack_deinit(&s10);
        fake_stack_deinit(&s11);
}

static void test_lifecycle(void)
{
        static const char *const atexit38[] = {
                "raise",
                "abort",
                "mixsample::abort_now",
                "pyo3::impl_::trampoline::trampoline",
                "_PyEval_EvalFrameDefault",
                "function_code_fastcall",
                "atexit_callfuncs",
                "call_py_exitfuncs",
                "Py_FinalizeEx",
                "Py_RunMain",
                NULL,
        };
        static const char *const atexit313[] = {
                "abort",
                "_PyEval_EvalFrameDefault",
                "atexit_callfuncs",
                "_Py_Finalize.part.0.constprop.0",
                "Py_RunMain",
                NULL,
        };
        static const char *const stripped[] = {
                "abort",
                "",
                "_PyEval_EvalFrameDefault",
                "",
                "Py_FinalizeEx",
                "Py_RunMain",
                NULL,
        };
        static const char *const joining[] = {
                "__futex_abstimed_wait_common",
                "",
                "py:_shutdown:/usr/lib/python3.11/threading.py",
                "wait_for_thread_shutdown",
                "Py_FinalizeEx",
                NULL,
        };
        static const char *const joining_stripped[] = {
                "__futex_abstimed_wait_common",
                "",
                "Py_FinalizeEx",
                NULL,
        };
        static const char *const gc_in_teardown[] = {
                "subtract_refs",    "gc_collect_main", "_PyGC_CollectNoFail",
                "finalize_modules", "Py_FinalizeEx",   NULL,
        };
        static const char *const teardown[] = {
                "PyDict_Clear",
                "finalize_clear_modules_dict",
                "finalize_modules",
                "Py_FinalizeEx",
                NULL,
        };
        static const char *const interp_clear[] = {
                "free",
                "PyInterpreterState_Clear",
                "finalize_interp_clear",
                "Py_FinalizeEx",
                NULL,
        };
        static const char *const runtime_clear[] = {
                "free",
                "_PyRuntime_Finalize",
                "Py_FinalizeEx",
                NULL,
        };
        static const char *const exiting[] = {
                "abort",
                "my_destructor",
                "__cxa_finalize",
                "_dl_fini",
                "__run_exit_handlers",
                "exit",
                "__libc_start_call_main",
                NULL,
        };
        static const char *const sleeping[] = {
                "clock_nanosleep",
                "time_sleep",
                "_PyEval_EvalFrameDefault",
                NULL,
        };
        static const char *const sleeping_unnamed[] = {
                "read", "", "", "", "main", NULL,
        };
        static const char *const initializing[] = {
                "PyImport_ImportModule",
                "init_interp_main",
                "pyinit_main",
                "Py_InitializeFromConfig",
                NULL,
        };
        const struct lc_case cases[] = {
                {"running", 1, 1, false, false, false, sleeping, NULL, NULL,
                 MS_PY_PHASE_RUNNING, MS_PY_STEP_NONE, false, false, 0},
                {"atexit 3.8", 1, 1, false, false, false, sleeping, atexit38,
                 NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_ATEXIT, false, false,
                 11},
                {"atexit 3.13 clone", 1, 1, false, true, false, atexit313, NULL,
                 NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_ATEXIT, false, false,
                 10},
                {"atexit stripped", 1, 1, false, false, false, stripped, NULL,
                 NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_ATEXIT, true, false,
                 10},
                {"joining", 1, 1, false, false, false, joining, NULL, NULL,
                 MS_PY_PHASE_FINALIZING, MS_PY_STEP_WAITING_FOR_THREADS, false,
                 false, 10},
                {"joining stripped", 1, 1, false, false, false,
                 joining_stripped, NULL, "_shutdown", MS_PY_PHASE_FINALIZING,
                 MS_PY_STEP_WAITING_FOR_THREADS, false, false, 10},
                /* 3.12+ stripped: no frame names a finalizer or a step;
                 * the interpreter's records do. */
                {"atexit callback, no names", 1, 1, false, true, false,
                 sleeping_unnamed, NULL, "flush_native_cache",
                 MS_PY_PHASE_FINALIZING, MS_PY_STEP_ATEXIT, false, false, 10,
                 true},
                {"Python code, not a callback", 1, 1, false, true, false,
                 sleeping_unnamed, NULL, "worker", MS_PY_PHASE_FINALIZING,
                 MS_PY_STEP_NONE, false, false, 0},
                /* Before 3.12 nothing in memory says finalizing: a
                 * registered callback running alone does not. */
                {"callback called while running", 1, 1, false, false, false,
                 sleeping_unnamed, NULL, "flush_native_cache",
                 MS_PY_PHASE_RUNNING, MS_PY_STEP_NONE, false, false, 0, true},
                {"3.12 early, no stack", 1, 1, false, true, false, NULL, NULL,
                 NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_NONE, false, false,
                 0},
                {"gc in teardown", 0, 0, true, true, false, gc_in_teardown,
                 NULL, NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_GC, false,
                 false, 10},
                {"teardown", 0, 0, true, true, false, teardown, NULL, NULL,
                 MS_PY_PHASE_FINALIZING, MS_PY_STEP_MODULE_TEARDOWN, false,
                 false, 10},
                {"interp clear", 0, 0, true, true, false, interp_clear, NULL,
                 NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_INTERPRETER_CLEAR,
                 false, false, 10},
                {"runtime clear", 0, 0, true, true, true, runtime_clear, NULL,
                 NULL, MS_PY_PHASE_FINALIZING, MS_PY_STEP_RUNTIME_CLEAR, false,
                 false, 10},
                {"finalized, exiting", 0, 0, true, false, true, exiting, NULL,
                 NULL, MS_PY_PHASE_FINALIZED, MS_PY_STEP_PROCESS_EXIT, false,
                 true, 0},
                {"exit while running", 1, 1, false, false, false, sleeping,
                 exiting, NULL, MS_PY_PHASE_RUNNING, MS_PY_STEP_NONE, false,
                 true, 0},
                {"initializing", 0, 1, false, false, false, initializing, NULL,
                 NULL, MS_PY_PHASE_INITIALIZING, MS_PY_STEP_NONE, false, false,
                 0},
                {"not initialized", 0, 0, false, false, true, NULL, NULL, NULL,
                 MS_PY_PHASE_NOT_INITIALIZED, MS_PY_STEP_NONE, false, false, 0},
                {"unknown", -1, -1, false, false, false, NULL, NULL, NULL,
                 MS_PY_PHASE_UNKNOWN, MS_PY_STEP_NONE, false, false, 0},
        };
        for (size_t i = 0; i < MS_ARRAY_SIZE(cases); i++)
                run_lc_case(&cases[i]);
        CHECK(strcmp(ms_py_finalize_step_id(MS_PY_STEP_ATEXIT), "atexit") == 0);
        CHECK(ms_py_finalize_step_id(MS_PY_STEP_NONE) == NULL);
        CHECK(strcmp(ms_py_phase_name(MS_PY_PHASE_NOT_INITIALIZED),
                     "not initialized") == 0);
}

/* ------------------------------------------------------------------------
 * The atexit step from interp->atexit (3.13-3.15 images)
 * ------------------------------------------------------------------------ */

/* What the callbacks hold. */
enum atexit_shape {
        ATEXIT_OUTERMOST,  /* a function running the outermost frame */
        ATEXIT_METHOD,     /* a method bound to that function */
        ATEXIT_OTHER,      /* a function running another frame */
        ATEXIT_BAD_LENGTH, /* a list claiming 2^40 items */
};

/* A function object (func_code at 48, every version since 3.10) and a
 * bound method (im_func at 16). */
static uint64_t make_function(struct image *img, const struct built *b,
                              uint64_t code, bool method)
{
        uint64_t fn_type = make_type(img, &b->ty, "function", 0);
        uint64_t fn = alloc(img, 64);
        put64(img, fn + 8, fn_type);
        put64(img, fn + 48, code);
        if (!method)
                return fn;
        uint64_t m = alloc(img, 48);
        put64(img, m + 8, make_type(img, &b->ty, "method", 0));
        put64(img, m + 16, fn);
        return m;
}

/* interp->atexit.callbacks at atexit (offsetof in each version's headers:
 * 3.13.0 10712, 3.14.5+ 10792, 3.15 10768): 3.13's array of
 * atexit_py_callback pointers and its count, 3.14+'s list of (func, args,
 * kwargs) tuples. */
static void put_atexit(struct image *img, const struct version *v,
                       const struct built *b, int atexit,
                       enum atexit_shape shape)
{
        uint64_t code = shape == ATEXIT_OTHER ? b->codes[0] : b->codes[2];
        uint64_t fn = make_function(img, b, code, shape == ATEXIT_METHOD);
        uint64_t at = b->interp + (uint64_t)atexit;
        if (v->hex < 0x030e0000) {
                uint64_t cb = alloc(img, 24), array = alloc(img, 8);
                put64(img, cb, fn);
                put64(img, array, cb);
                put64(img, at, array);
                put32(img, at + 8, 1);
                return;
        }
        uint64_t tuple = alloc(img, (size_t)v->tuple_item + 24);
        put64(img, tuple + 8, make_type(img, &b->ty, "tuple", 1UL << 26));
        put64(img, tuple + 16, 3);
        put64(img, tuple + (uint64_t)v->tuple_item, fn);
        uint64_t items = alloc(img, 8), list = alloc(img, 40);
        put64(img, items, tuple);
        put64(img, list + 8, make_type(img, &b->ty, "list", 1UL << 25));
        put64(img, list + 16, shape == ATEXIT_BAD_LENGTH ? 1ULL << 40 : 1);
        put64(img, list + 24, items);
        put64(img, at, list);
}

/* The main interpreter is finalizing (3.12+ sets its flag first thing)
 * and the thread's outermost frame (code C) is or is not the registered
 * callback: the step and the finalizing thread come from memory alone,
 * without any stack. */
static void test_atexit_step(struct image *img, const struct version *v,
                             int atexit)
{
        static const enum atexit_shape shapes[] = {ATEXIT_OUTERMOST,
                                                   ATEXIT_METHOD, ATEXIT_OTHER,
                                                   ATEXIT_BAD_LENGTH};
        for (size_t i = 0; i < MS_ARRAY_SIZE(shapes); i++) {
                if (shapes[i] == ATEXIT_BAD_LENGTH && v->hex < 0x030e0000)
                        continue;
                struct built b;
                build(img, v, &b);
                put32(img, b.interp + (uint64_t)v->is_finalizing, 1);
                put_atexit(img, v, &b, atexit, shapes[i]);
                struct ms_target *target = image_target(img);
                struct ms_py_runtime *rts = NULL;
                size_t n = 0;
                if (target && read_one(target, b.runtime, 0, 0, &rts, &n)) {
                        struct ms_py_lifecycle lc;
                        ms_py_lifecycle_get(&rts[0], NULL, 0, &lc);
                        bool in_atexit = shapes[i] == ATEXIT_OUTERMOST ||
                                         shapes[i] == ATEXIT_METHOD;
                        bool ok = lc.phase == MS_PY_PHASE_FINALIZING &&
                                  lc.step == (in_atexit ? MS_PY_STEP_ATEXIT
                                                        : MS_PY_STEP_NONE) &&
                                  !lc.step_inferred &&
                                  lc.finalizing_tid == (in_atexit ? 4242 : 0) &&
                                  rts[0].interps[0].atexit_known ==
                                          (shapes[i] != ATEXIT_BAD_LENGTH);
                        CHECK(ok);
                        if (!ok)
                                fprintf(stderr,
                                        "%s atexit shape %zu: step %d tid %d "
                                        "known %d (%s)\n",
                                        v->name, i, (int)lc.step,
                                        (int)lc.finalizing_tid,
                                        rts[0].interps[0].atexit_known,
                                        lc.reason);
                }
                ms_py_runtimes_destroy(rts, n);
                ms_target_destroy(target);
        }
}

int main(void)
{
        struct image img = {.mem = calloc(1, IMAGE_SIZE)};
        if (!img.mem)
                return 1;
        test_exceptions(&img, &v313, "3.13.0", 872);
        test_exceptions(&img, &v314, "3.14.5", 872);
        test_exceptions(&img, &v315, "3.15", 880);
        test_gil(&img, &v313);
        test_gil(&img, &v314);
        test_gil(&img, &v315);
        test_free_threaded(&img);
        test_unnormalized_311(&img);
        test_repr(&img);
        test_gil_stacks();
        test_lifecycle();
        test_atexit_step(&img, &v313, 10712);
        test_atexit_step(&img, &v314, 10792);
        test_atexit_step(&img, &v315, 10768);
        free(img.mem);
        return unit_finish();
}
