/*
 * Synthetic memory images of CPython 3.13-3.15 for the reader's tests:
 * a debugger-fed target serves a byte buffer holding _PyRuntime with its
 * _Py_DebugOffsets, one interpreter, one thread state, a frame chain
 * (tagged f_executable pointers, shim frames, 3.15's base_frame), code
 * objects with location tables and str objects of each PEP 393 kind.
 * Tests add objects of their own with the make_* helpers.
 *
 * The debug offsets are written from this file's own copy of the
 * documented positions (/work/shared/reference/cpython-internals.md §1a,
 * §1b, §2, §3b, §7), so the parser is checked against the document, not
 * against itself. 3.14 uses 3.14.5 values (interpreter fields moved by 24
 * bytes from the 3.14.0 tables) to check that the target's description
 * wins over the tables.
 */
#ifndef MIXSTACK_TESTS_CPYTHON_IMAGE_H
#define MIXSTACK_TESTS_CPYTHON_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/cpython.h"

/* Helpers a test may not use. */
#define IMG_FN static __attribute__((unused))

#define BASE 0x7f0000000000ULL
#define IMAGE_SIZE (4u << 20)

struct image {
        uint8_t *mem;
        uint64_t next; /* bump allocator for objects */
};

IMG_FN int image_read(void *arg, uint64_t address, void *buf, size_t size)
{
        struct image *img = arg;
        if (address < BASE || address - BASE > IMAGE_SIZE ||
            size > IMAGE_SIZE - (address - BASE))
                return -1;
        memcpy(buf, img->mem + (address - BASE), size);
        return 0;
}

IMG_FN void put64(struct image *img, uint64_t address, uint64_t v)
{
        memcpy(img->mem + (address - BASE), &v, 8);
}

IMG_FN void put32(struct image *img, uint64_t address, uint32_t v)
{
        memcpy(img->mem + (address - BASE), &v, 4);
}

IMG_FN void put8(struct image *img, uint64_t address, uint8_t v)
{
        img->mem[address - BASE] = v;
}

IMG_FN uint64_t alloc(struct image *img, size_t size)
{
        uint64_t a = img->next;
        img->next += (size + 15) & ~15ULL;
        return a;
}

/* ------------------------------------------------------------------------
 * Version descriptions: (position in _Py_DebugOffsets, value) pairs, and
 * the struct offsets the image builder needs.
 * ------------------------------------------------------------------------ */

struct pv {
        uint16_t pos;
        uint64_t value;
};

struct version {
        const char *name;
        uint32_t hex;
        const struct pv *offsets;
        size_t n_offsets;
        /* Offsets used to build the image (same numbers as above). */
        int rt_head, rt_main;
        int is_next, is_id, is_threads, is_ceval_gil, is_gil, gil_locked,
                gil_holder;
        int ts_interp, ts_frame, ts_base_frame, ts_thread_id, ts_native,
                ts_holds_gil, ts_state, ts_size;
        int if_size;
        bool base_frame;
        /* Offsets the debug offsets do not give (before 3.15) or that
         * differ in 3.13: from the tables (cpython-internals.md §2c, §7). */
        int if_owner, co_size, co_adaptive, co_firsttraceable;
        /* f_executable is a tagged _PyStackRef (3.14+). */
        bool exec_tagged;
        /* holds_gil as a bit of _status (3.13; -1 else). */
        int ts_status, ts_holds_gil_bit, ts_gil_requested;
        int ts_current_exception, ts_exc_info, ts_exc_state;
        int tuple_item;
        int rt_initialized, rt_core_initialized, rt_py_initialized,
                rt_finalizing, is_finalizing;
};

/* 3.13 positions (§1a) with the 3.13.0 values (§1b): 584 bytes. */
static const struct pv offsets_313[] = {
        {8, 0x030d00f0}, {16, 0},     {24, 283320}, {32, 608},  {40, 632},
        {48, 194968},    {56, 7272},  {64, 7264},   {72, 7344}, {80, 7400},
        {88, 7656},      {96, 7640},  {104, 7648},  {112, 16},  {120, 7752},
        {128, 0},        {136, 7768}, {144, 7760},  {152, 304}, {160, 0},
        {168, 8},        {176, 16},   {184, 72},    {192, 152}, {200, 160},
        {208, 232},      {216, 32},   {224, 80},    {232, 8},   {240, 0},
        {248, 56},       {256, 72},   {264, 70},    {272, 208}, {280, 112},
        {288, 120},      {296, 128},  {304, 136},   {312, 68},  {320, 52},
        {328, 96},       {336, 104},  {344, 200},   {352, 16},  {360, 8},
        {368, 416},      {376, 24},   {384, 88},    {392, 168}, {400, 32},
        {408, 24},       {416, 16},   {424, 40},    {432, 24},  {440, 16},
        {448, 48},       {456, 32},   {464, 40},    {472, 24},  {480, 16},
        {488, 32},       {496, 16},   {504, 24},    {512, 40},  {520, 16},
        {528, 32},       {536, 64},   {544, 32},    {552, 16},  {560, 40},
        {568, 240},      {576, 200},
};

/* 3.14 positions (§1a) with 3.14.5 values (§1b plus the +24 move of
 * the interpreter fields after gc). */
static const struct pv offsets_314[] = {
        {8, 0x030e05f0}, {16, 0},    {24, 316616}, {32, 784},   {40, 808},
        {48, 225864},    {56, 7280}, {64, 7272},   {72, 7344},  {80, 7360},
        {88, 7408},      {96, 7688}, {104, 7672},  {112, 7680}, {120, 16},
        {128, 7784},     {136, 0},   {144, 7800},  {152, 7792}, {160, 7992},
        {168, 0},        {176, 832}, {184, 0},     {192, 8},    {200, 16},
        {208, 72},       {216, 152}, {224, 160},   {232, 232},  {240, 32},
        {248, 88},       {256, 8},   {264, 0},     {272, 56},   {280, 80},
        {288, 74},       {296, 64},  {304, 0},     {312, 216},  {320, 112},
        {328, 120},      {336, 128}, {344, 136},   {352, 68},   {360, 52},
        {368, 96},       {376, 104}, {384, 208},   {392, 0},    {400, 16},
        {408, 8},        {416, 416}, {424, 24},    {432, 88},   {440, 168},
        {448, 40},       {456, 32},  {464, 16},    {472, 40},   {480, 24},
        {488, 16},       {528, 48},  {536, 32},    {544, 40},   {552, 24},
        {560, 16},       {568, 32},  {576, 16},    {584, 24},   {592, 40},
        {600, 16},       {608, 32},  {616, 64},    {624, 32},   {632, 16},
        {640, 40},       {648, 240}, {656, 192},
};

/* 3.15 (§1a 3.15* column, 888 bytes); seq = whether the pre-release has
 * last_profiled_frame_seq at 232 (later fields move down 8 without). */
#define OFFSETS_315(S)                                                        \
        {8, 0x030f00a2}, {16, 0}, {24, 350000}, {32, 912}, {40, 936},         \
                {48, 230000}, {56, 7272}, {64, 7264}, {72, 7336}, {80, 7352}, \
                {88, 7400}, {96, 7592}, {104, 7576}, {112, 7584}, {120, 16},  \
                {128, 7736}, {136, 0}, {144, 7752}, {152, 7744}, {160, 7960}, \
                {168, 0}, {176, 900}, {184, 0}, {192, 8}, {200, 16},          \
                {208, 72}, {216, 80}, {224, 88}, {240 - S, 176},              \
                {248 - S, 184}, {256 - S, 256}, {264 - S, 32}, {272 - S, 36}, \
                {280 - S, 40}, {288 - S, 136}, {296 - S, 288}, {304 - S, 0},  \
                {312 - S, 88}, {320 - S, 8}, {328 - S, 0}, {336 - S, 56},     \
                {344 - S, 80}, {352 - S, 74}, {360 - S, 64}, {368 - S, 0},    \
                {376 - S, 216}, {384 - S, 112}, {392 - S, 120},               \
                {400 - S, 128}, {408 - S, 136}, {416 - S, 68}, {424 - S, 52}, \
                {432 - S, 96}, {440 - S, 104}, {448 - S, 208}, {456 - S, 0},  \
                {464 - S, 16}, {472 - S, 8}, {480 - S, 416}, {488 - S, 24},   \
                {496 - S, 88}, {504 - S, 168}, {512 - S, 32}, {520 - S, 288}, \
                {544 - S, 40}, {552 - S, 32}, {560 - S, 16}, {568 - S, 40},   \
                {576 - S, 24}, {584 - S, 16}, {624 - S, 48}, {632 - S, 32},   \
                {640 - S, 40}, {648 - S, 24}, {656 - S, 16}, {664 - S, 32},   \
                {672 - S, 16}, {680 - S, 24}, {688 - S, 40}, {696 - S, 16},   \
                {704 - S, 32}, {712 - S, 64}, {720 - S, 32}, {728 - S, 16},   \
                {736 - S, 40}, {744 - S, 56}, {752 - S, 240},                 \
        {                                                                     \
                760 - S, 192                                                  \
        }

static const struct pv offsets_315[] = {{232, 96}, OFFSETS_315(0)};
static const struct pv offsets_315b1[] = {OFFSETS_315(8)};

static const struct version v313 = {
        .name = "3.13.0",
        .hex = 0x030d00f0,
        .offsets = offsets_313,
        .n_offsets = MS_ARRAY_SIZE(offsets_313),
        .rt_head = 632,
        .rt_main = 640,
        .is_next = 7264,
        .is_id = 7272,
        .is_threads = 7344,
        .is_ceval_gil = 16,
        .is_gil = 7752,
        .gil_locked = 7768,
        .gil_holder = 7760,
        .ts_interp = 16,
        .ts_frame = 72,
        .ts_base_frame = -1,
        .ts_thread_id = 152,
        .ts_native = 160,
        .ts_holds_gil = -1,
        .ts_state = 40,
        .ts_size = 304,
        .if_size = 80,
        .if_owner = 70,
        .co_size = 208,
        .co_adaptive = 200,
        .co_firsttraceable = 184,
        .ts_status = 32,
        .ts_holds_gil_bit = 5,
        .ts_gil_requested = -1,
        .ts_current_exception = 112,
        .ts_exc_info = 120,
        .ts_exc_state = 256,
        .tuple_item = 24,
        .rt_initialized = 584,
        .rt_core_initialized = 596,
        .rt_py_initialized = 600,
        .rt_finalizing = 608,
        .is_finalizing = 7320,
};

static const struct version v314 = {
        .name = "3.14.5",
        .hex = 0x030e05f0,
        .offsets = offsets_314,
        .n_offsets = MS_ARRAY_SIZE(offsets_314),
        .rt_head = 808,
        .rt_main = 816,
        .is_next = 7272,
        .is_id = 7280,
        .is_threads = 7344,
        .is_ceval_gil = 16,
        .is_gil = 7784,
        .gil_locked = 7800,
        .gil_holder = 7792,
        .ts_interp = 16,
        .ts_frame = 72,
        .ts_base_frame = -1,
        .ts_thread_id = 152,
        .ts_native = 160,
        .ts_holds_gil = 36,
        .ts_state = 44,
        .ts_size = 832,
        .if_size = 88,
        .if_owner = 74,
        .co_size = 216,
        .co_adaptive = 208,
        .co_firsttraceable = 192,
        .exec_tagged = true,
        .ts_status = 32,
        .ts_holds_gil_bit = -1,
        .ts_gil_requested = -1,
        .ts_current_exception = 112,
        .ts_exc_info = 120,
        .ts_exc_state = 256,
        .tuple_item = 32,
        .rt_initialized = 760,
        .rt_core_initialized = 772,
        .rt_py_initialized = 776,
        .rt_finalizing = 784,
        .is_finalizing = 7320,
};

static const struct version v315 = {
        .name = "3.15.0a2",
        .hex = 0x030f00a2,
        .offsets = offsets_315,
        .n_offsets = MS_ARRAY_SIZE(offsets_315),
        .rt_head = 936,
        .rt_main = 944,
        .is_next = 7264,
        .is_id = 7272,
        .is_threads = 7336,
        .is_ceval_gil = 16,
        .is_gil = 7736,
        .gil_locked = 7752,
        .gil_holder = 7744,
        .ts_interp = 16,
        .ts_frame = 72,
        .ts_base_frame = 80,
        .ts_thread_id = 176,
        .ts_native = 184,
        .ts_holds_gil = 36,
        .ts_state = 48,
        .ts_size = 900,
        .if_size = 88,
        .base_frame = true,
        .if_owner = 74,
        .co_size = 216,
        .co_adaptive = 208,
        .co_firsttraceable = 192,
        .exec_tagged = true,
        .ts_status = 32,
        .ts_holds_gil_bit = -1,
        .ts_gil_requested = 40,
        .ts_current_exception = 136,
        .ts_exc_info = 144,
        .ts_exc_state = 288,
        .tuple_item = 32,
        .rt_initialized = 888,
        .rt_core_initialized = 900,
        .rt_py_initialized = 904,
        .rt_finalizing = 912,
        .is_finalizing = 7312,
};

/* ------------------------------------------------------------------------
 * Objects (3.12+ GIL layouts: ob_type 8, str state 32, ascii data 40,
 * compact data 56, bytes ob_size 16 / ob_sval 32, tp_name 24, tp_flags 168)
 * ------------------------------------------------------------------------ */

struct types {
        /* type itself (the metatype: flag 1 << 31), then the others. */
        uint64_t type, code, str, bytes, none;
};

/* A static type (its type is ty->type; 0 while making that). */
IMG_FN uint64_t make_type(struct image *img, const struct types *ty,
                          const char *name, uint64_t flags)
{
        uint64_t t = alloc(img, 416);
        uint64_t s = alloc(img, strlen(name) + 1);
        memcpy(img->mem + (s - BASE), name, strlen(name) + 1);
        put64(img, t + 8, ty ? ty->type : 0);
        put64(img, t + 24, s);
        put64(img, t + 168, flags);
        return t;
}

/* A compact str of kind 1 (ASCII or Latin-1), 2 or 4 from code points. */
IMG_FN uint64_t make_str(struct image *img, const struct types *ty,
                         const uint32_t *cp, size_t n)
{
        uint32_t max = 0;
        for (size_t i = 0; i < n; i++)
                max = cp[i] > max ? cp[i] : max;
        unsigned kind = max < 256 ? 1 : max < 65536 ? 2 : 4;
        bool ascii = max < 128;
        size_t header = ascii ? 40 : 56;
        uint64_t o = alloc(img, header + (n + 1) * kind);
        put64(img, o + 8, ty->str);
        put64(img, o + 16, n);
        put32(img, o + 32, (kind << 2) | (1u << 5) | (ascii ? 1u << 6 : 0));
        for (size_t i = 0; i < n; i++) {
                uint64_t a = o + header + i * kind;
                if (kind == 1)
                        put8(img, a, (uint8_t)cp[i]);
                else if (kind == 2) {
                        uint16_t u = (uint16_t)cp[i];
                        memcpy(img->mem + (a - BASE), &u, 2);
                } else {
                        put32(img, a, cp[i]);
                }
        }
        return o;
}

IMG_FN uint64_t make_ascii(struct image *img, const struct types *ty,
                           const char *s)
{
        uint32_t cp[256];
        size_t n = strlen(s);
        for (size_t i = 0; i < n; i++)
                cp[i] = (uint8_t)s[i];
        return make_str(img, ty, cp, n);
}

IMG_FN uint64_t make_bytes(struct image *img, const struct types *ty,
                           const uint8_t *data, size_t n)
{
        uint64_t o = alloc(img, 33 + n);
        put64(img, o + 8, ty->bytes);
        put64(img, o + 16, n);
        memcpy(img->mem + (o + 32 - BASE), data, n);
        return o;
}

/* A location-table entry without columns (code 13): n units, line delta. */
IMG_FN size_t loc_entry(uint8_t *out, unsigned units, int delta)
{
        uint32_t v =
                delta < 0 ? ((uint32_t)-delta << 1) | 1 : (uint32_t)delta << 1;
        size_t k = 0;
        out[k++] = (uint8_t)(0x80 | (13 << 3) | (units - 1));
        do {
                uint8_t b = v & 63;
                v >>= 6;
                out[k++] = (uint8_t)(b | (v ? 64 : 0));
        } while (v);
        return k;
}

/* A code object: units 0-1 on firstlineno, 2-4 on +2, 5-12 on +40 (a
 * delta needing two varint bytes). */
IMG_FN uint64_t make_code(struct image *img, const struct version *v,
                          const struct types *ty, uint64_t name,
                          uint64_t qualname, uint64_t file, int firstlineno)
{
        uint8_t table[32];
        size_t n = 0;
        n += loc_entry(table + n, 2, 0);
        n += loc_entry(table + n, 3, 2);
        n += loc_entry(table + n, 8, 40);
        uint64_t lt = make_bytes(img, ty, table, n);
        uint64_t co = alloc(img, (size_t)v->co_size + 13 * 2);
        put64(img, co + 8, ty->code);
        put32(img, co + 68, (uint32_t)firstlineno);
        put64(img, co + 112, file);
        put64(img, co + 120, name);
        put64(img, co + 128, qualname);
        put64(img, co + 136, lt);
        put32(img, co + (uint64_t)v->co_firsttraceable, 0);
        return co;
}

/* An interpreter frame: executable (tagged), previous, instr_ptr, owner. */
IMG_FN uint64_t make_frame(struct image *img, const struct version *v,
                           uint64_t executable, uint64_t previous,
                           uint64_t instr, uint8_t owner)
{
        uint64_t f = alloc(img, (size_t)v->if_size);
        put64(img, f + 0, executable);
        put64(img, f + 8, previous);
        put64(img, f + 56, instr);
        put8(img, f + (uint64_t)v->if_owner, owner);
        return f;
}

struct built {
        uint64_t runtime, interp, tstate;
        /* Interpreter frames, innermost first, and their code objects. */
        uint64_t frames[3];
        uint64_t codes[3];
        struct types ty;
        uint64_t none;
};

IMG_FN void build(struct image *img, const struct version *v, struct built *b)
{
        memset(img->mem, 0, IMAGE_SIZE);
        /* _PyRuntime at the start, the interpreter after it, objects after
         * that: the same order as in libpython's data. */
        b->runtime = BASE + 0x1000;
        b->interp = BASE + 0x80000;
        img->next = BASE + 0x100000;
        memcpy(img->mem + (b->runtime - BASE), "xdebugpy", 8);
        for (size_t i = 0; i < v->n_offsets; i++)
                put64(img, b->runtime + v->offsets[i].pos, v->offsets[i].value);

        struct types ty;
        ty.type = make_type(img, NULL, "type", 1UL << 31);
        put64(img, ty.type + 8, ty.type);
        ty.code = make_type(img, &ty, "code", 0);
        ty.str = make_type(img, &ty, "str", 1UL << 28);
        ty.bytes = make_type(img, &ty, "bytes", 1UL << 27);
        ty.none = make_type(img, &ty, "NoneType", 0);
        uint64_t none = alloc(img, 16);
        put64(img, none + 8, ty.none);

        /* "mod.py" (ASCII), "Klass.méthode" (Latin-1), "résumé_λ" (UCS2),
         * "/src/🐍/app.py" (UCS4). */
        static const uint32_t latin1[] = {'K',  'l', 'a', 's', 's', '.', 'm',
                                          0xe9, 't', 'h', 'o', 'd', 'e'};
        static const uint32_t ucs2[] = {'r', 0xe9, 's', 'u',
                                        'm', 0xe9, '_', 0x3bb};
        static const uint32_t ucs4[] = {'/', 's', 'r', 'c', '/', 0x1f40d, '/',
                                        'a', 'p', 'p', '.', 'p', 'y'};
        uint64_t file_a = make_str(img, &ty, ucs4, MS_ARRAY_SIZE(ucs4));
        uint64_t file_b = make_ascii(img, &ty, "mod.py");
        uint64_t co_a = make_code(
                img, v, &ty, make_ascii(img, &ty, "inner"),
                make_str(img, &ty, latin1, MS_ARRAY_SIZE(latin1)), file_a, 10);
        uint64_t co_b = make_code(
                img, v, &ty, make_str(img, &ty, ucs2, MS_ARRAY_SIZE(ucs2)),
                make_str(img, &ty, ucs2, MS_ARRAY_SIZE(ucs2)), file_b, 100);
        uint64_t co_c = make_code(img, v, &ty, make_ascii(img, &ty, "<module>"),
                                  make_ascii(img, &ty, "<module>"), file_b, 1);

        /* Innermost first: A (unit 6: line 10+2+40) -> B (unit 3: line 102)
         * -> shim -> C (unit 0: line 1) -> shim [-> base_frame]. Tags: A
         * with Py_TAG_REFCNT, B plain, C with both low bits (3.14+; 3.13
         * has plain pointers). */
        uint64_t t1 = v->exec_tagged ? 1 : 0, t3 = v->exec_tagged ? 3 : 0;
        uint64_t base = v->base_frame ? make_frame(img, v, 0, 0, 0, 3) : 0;
        uint64_t shim2 = make_frame(img, v, none | t1, base, 0, 3);
        uint64_t code = (uint64_t)v->co_adaptive;
        uint64_t fc = make_frame(img, v, co_c | t3, shim2, co_c + code, 0);
        uint64_t shim1 = make_frame(img, v, none | t1, fc, 0, 3);
        uint64_t fb = make_frame(img, v, co_b, shim1, co_b + code + 6, 0);
        uint64_t fa = make_frame(img, v, co_a | t1, fb, co_a + code + 12, 0);
        b->frames[0] = fa;
        b->frames[1] = fb;
        b->frames[2] = fc;
        b->codes[0] = co_a;
        b->codes[1] = co_b;
        b->codes[2] = co_c;
        b->ty = ty;
        b->none = none;

        b->tstate = alloc(img, (size_t)v->ts_size);
        put64(img, b->tstate + (uint64_t)v->ts_interp, b->interp);
        put64(img, b->tstate + (uint64_t)v->ts_frame, fa);
        if (v->ts_base_frame >= 0)
                put64(img, b->tstate + (uint64_t)v->ts_base_frame, base);
        put64(img, b->tstate + (uint64_t)v->ts_thread_id, 0x7f00deadb000ULL);
        put64(img, b->tstate + (uint64_t)v->ts_native, 4242);
        if (v->ts_holds_gil >= 0)
                put32(img, b->tstate + (uint64_t)v->ts_holds_gil, 1);
        else
                put32(img, b->tstate + (uint64_t)v->ts_status,
                      0x1b | 1u << v->ts_holds_gil_bit);
        put32(img, b->tstate + (uint64_t)v->ts_state, 1);

        put64(img, b->runtime + (uint64_t)v->rt_head, b->interp);
        put64(img, b->runtime + (uint64_t)v->rt_main, b->interp);
        put64(img, b->interp + (uint64_t)v->is_next, 0);
        put64(img, b->interp + (uint64_t)v->is_id, 0);
        put64(img, b->interp + (uint64_t)v->is_threads, b->tstate);
        put64(img, b->interp + (uint64_t)v->is_ceval_gil,
              b->interp + (uint64_t)v->is_gil);
        put32(img, b->interp + (uint64_t)v->gil_locked, 1);
        put64(img, b->interp + (uint64_t)v->gil_holder, b->tstate);
        /* Running: _initialized, core_initialized, initialized. */
        put32(img, b->runtime + (uint64_t)v->rt_initialized, 1);
        put32(img, b->runtime + (uint64_t)v->rt_core_initialized, 1);
        put32(img, b->runtime + (uint64_t)v->rt_py_initialized, 1);
}

#endif
