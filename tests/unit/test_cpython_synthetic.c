/*
 * The CPython reader on synthetic memory images of versions that are not
 * installed here (3.14, 3.15 and a 3.15 pre-release; 3.13 too, to check
 * its debug offsets and _status bits without a process), built from the
 * documented layouts (/work/shared/reference/cpython-internals.md §1a,
 * §1b, §2, §3b). A debugger-fed target serves a byte buffer holding:
 * _PyRuntime starting with its _Py_DebugOffsets, one interpreter, one
 * thread state, and a frame chain with tagged f_executable pointers, shim
 * frames (owner 3) and, for 3.15, the base_frame sentinel; code objects
 * with location tables and str objects of each PEP 393 kind.
 *
 * The images (tests/unit/cpython_image.h) carry debug offsets written from
 * the test's own copy of the documented positions, so the parser is
 * checked against the document, not against itself. 3.14 uses 3.14.5
 * values (interpreter fields moved by 24 bytes from the 3.14.0 tables) to
 * check that the target's description wins over the tables.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/cpython.h"
#include "cpython_image.h"
#include "target/backend.h"
#include "unit.h"

static void check_runtime(const struct version *v, const struct built *b,
                          const struct ms_py_runtime *rt)
{
        CHECK(rt->address == b->runtime);
        CHECK(rt->has_debug_offsets);
        CHECK_STR(rt->version_string, v->name);
        CHECK(rt->version_hex == v->hex);
        CHECK(!rt->free_threaded);
        CHECK(rt->n_interps == 1);
        if (rt->n_interps == 1) {
                /* Only right when the 3.14.5 GIL offsets replaced the
                 * 3.14.0 table's. */
                CHECK(rt->interps[0].gil_locked);
                CHECK(rt->interps[0].gil_last_holder == b->tstate);
                CHECK(rt->interps[0].is_main && rt->interps[0].id == 0);
        }
        CHECK(rt->n_threads == 1);
        if (rt->n_threads != 1)
                return;
        const struct ms_py_thread *t = &rt->threads[0];
        CHECK(t->tstate == b->tstate);
        CHECK(t->native_tid == 4242);
        CHECK(t->pthread_id == 0x7f00deadb000ULL);
        CHECK(t->holds_gil);
        CHECK(t->state == 1);
        if (t->error)
                fprintf(stderr, "%s: %s\n", v->name, t->error);
        CHECK(t->error == NULL);
        CHECK(t->n_shim_frames == (v->base_frame ? 3u : 2u));
        CHECK(t->n_frames == 3);
        if (t->n_frames != 3)
                return;
        const struct ms_py_frame *f = t->frames;
        CHECK_STR(f[0].function, "inner");
        CHECK_STR(f[0].qualname, "Klass.m\xc3\xa9thode");
        CHECK_STR(f[0].file, "/src/\xf0\x9f\x90\x8d/app.py");
        CHECK(f[0].line == 52);
        CHECK(!f[0].is_entry);
        CHECK(f[0].address == b->frames[0]);
        CHECK_STR(f[1].function, "r\xc3\xa9sum\xc3\xa9_\xce\xbb");
        CHECK_STR(f[1].file, "mod.py");
        CHECK(f[1].line == 102);
        CHECK(f[1].is_entry);
        CHECK_STR(f[2].function, "<module>");
        CHECK(f[2].line == 1);
        CHECK(f[2].is_entry);
        CHECK(f[2].address == b->frames[2]);
}

static void test_version(struct image *img, const struct version *v,
                         const char *label)
{
        struct built b;
        build(img, v, &b);
        struct ms_target *target = NULL;
        struct ms_error *err =
                ms_target_create_debugger(image_read, img, NULL, &target);
        CHECK(err == NULL);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        /* The image as libpython's data mapping, for the scan. */
        err = ms_target_add_mapping(target, "/nonexistent/libpython3.x.so.1.0",
                                    BASE, BASE + IMAGE_SIZE, 0x200000);
        CHECK(err == NULL);
        ms_error_destroy(err);

        const struct ms_py_find_options by_address = {.runtime_address =
                                                              b.runtime};
        const struct ms_py_find_options by_scan = {.exhaustive = true,
                                                   .skip_modules = true};
        const struct ms_py_find_options *opts[] = {&by_address, &by_scan};
        for (size_t i = 0; i < MS_ARRAY_SIZE(opts); i++) {
                struct ms_py_runtime *rts = NULL;
                size_t n = 0;
                err = ms_py_runtimes_find(target, NULL, opts[i], &rts, &n);
                CHECK(err == NULL);
                ms_error_destroy(err);
                CHECK(n == 1);
                if (n == 1) {
                        printf("%s (%s): %s found by %s, %zu frames\n", label,
                               i ? "scan" : "address", rts[0].version_string,
                               rts[0].found_by,
                               rts[0].n_threads ? rts[0].threads[0].n_frames
                                                : 0);
                        check_runtime(v, &b, &rts[0]);
                        for (size_t j = 0; j < rts[0].warnings.n; j++)
                                fprintf(stderr, "%s: warning: %s\n", label,
                                        rts[0].warnings.items[j]);
                }
                ms_py_runtimes_destroy(rts, n);
        }
        ms_target_destroy(target);
}

/* Garbage must give warnings, not crashes or endless loops: a frame that
 * is its own caller, a thread list that cycles, pointers into nowhere. */
static void test_garbage(struct image *img)
{
        struct built b;
        build(img, &v314, &b);
        put64(img, b.frames[1] + 8, b.frames[0]); /* B -> A -> B ... */
        put64(img, b.tstate + 8, b.tstate);       /* tstate->next = itself */
        struct ms_target *target = NULL;
        struct ms_error *err =
                ms_target_create_debugger(image_read, img, NULL, &target);
        CHECK(err == NULL);
        const struct ms_py_find_options o = {.runtime_address = b.runtime,
                                             .max_frames = 50};
        struct ms_py_runtime *rts = NULL;
        size_t n = 0;
        err = ms_py_runtimes_find(target, NULL, &o, &rts, &n);
        CHECK(err == NULL);
        CHECK(n == 1);
        if (n == 1) {
                CHECK(rts[0].n_threads == 1);
                CHECK(rts[0].warnings.n >= 1); /* the cycling thread list */
                if (rts[0].n_threads == 1) {
                        CHECK(rts[0].threads[0].n_frames == 50);
                        CHECK(rts[0].threads[0].error != NULL);
                }
        }
        ms_py_runtimes_destroy(rts, n);

        /* A cookie with a version nobody knows and junk after it (another
         * process image: the target's page cache starts afresh). */
        build(img, &v314, &b);
        put64(img, b.runtime + 8, 0x03630000);
        ms_target_cache_pages(target);
        rts = NULL;
        n = 0;
        err = ms_py_runtimes_find(target, NULL, &o, &rts, &n);
        CHECK(err == NULL);
        CHECK(n == 0);
        CHECK(target->warnings.n >= 1);
        ms_py_runtimes_destroy(rts, n);
        ms_target_destroy(target);
}

static void test_debug_offsets_parse(struct image *img)
{
        /* Validation rejects a table whose ob_type is not 8 or 24. */
        struct built b;
        build(img, &v314, &b);
        put64(img, b.runtime + 408, 12);
        struct ms_py_layout l = *ms_py_layout_find(3, 14);
        uint32_t hex;
        bool ft;
        struct ms_error *err = ms_py_debug_offsets_parse(
                img->mem + (b.runtime - BASE), 760, &l, &hex, &ft);
        CHECK(err && err->code == MS_ERROR_BAD_INPUT);
        ms_error_destroy(err);
        /* And a valid one replaces table values. */
        build(img, &v314, &b);
        l = *ms_py_layout_find(3, 14);
        CHECK(l.is_gil == 7760);
        err = ms_py_debug_offsets_parse(img->mem + (b.runtime - BASE), 760, &l,
                                        &hex, &ft);
        CHECK(err == NULL);
        ms_error_destroy(err);
        CHECK(l.is_gil == 7784 && l.gil_locked == 16 && l.gil_last_holder == 8);
        CHECK(hex == 0x030e05f0 && !ft);
}

static void test_tables(void)
{
        /* Every version 3.8-3.15 has a table; 3.14/3.15 are marked derived. */
        for (int minor = 8; minor <= 15; minor++) {
                const struct ms_py_layout *l = ms_py_layout_find(3, minor);
                CHECK(l != NULL);
                if (!l)
                        continue;
                bool derived = strstr(l->source, "derived") != NULL;
                CHECK(derived == (minor >= 14));
                /* One frame model or the other. */
                CHECK((l->ts_frame >= 0) != (l->if_previous >= 0));
                CHECK(l->co_linetable_format >= 1 &&
                      l->co_linetable_format <= 3);
        }
        const struct ms_py_layout *l = ms_py_layout_find(3, 12);
        int32_t v;
        const char *name = ms_py_layout_field(l, 0, &v);
        CHECK(name && strcmp(name, "rt_size") == 0 && v == 459944);
}

int main(void)
{
        struct image img = {.mem = calloc(1, IMAGE_SIZE)};
        if (!img.mem)
                return 1;
        test_tables();
        test_debug_offsets_parse(&img);
        test_version(&img, &v313, "3.13.0");
        test_version(&img, &v314, "3.14.5");
        test_version(&img, &v315, "3.15");
        struct version v315b1 = v315;
        v315b1.offsets = offsets_315b1;
        v315b1.n_offsets = MS_ARRAY_SIZE(offsets_315b1);
        test_version(&img, &v315b1, "3.15b1 layout");
        test_garbage(&img);
        free(img.mem);
        return unit_finish();
}
