/*
 * The CPython boundary state (GIL, exceptions, lifecycle phase) on the
 * crash samples: real cores of CPython + PyO3 programs whose manifest.json
 * holds what the failing process itself recorded (crash-samples/README.md).
 *
 * For every artefact found (every interpreter x scenario):
 * - the main interpreter's GIL holder tid equals gil_holder_tid (null: no
 *   holder), and each thread the manifest says holds_gil / waits_gil gets
 *   MS_PY_GIL_HELD / MS_PY_GIL_WAITING from ms_py_thread_gil_state (with
 *   its native stack classified by the frame rules); rust-only threads get
 *   MS_PY_GIL_NONE; everybody else neither held nor waiting;
 * - the pending and handled exceptions of exception.tid have the
 *   manifest's type ("module.QualName") and message, and no other thread
 *   has a pending exception;
 * - ms_py_lifecycle_get gives phase and finalizing_step.
 *
 * Samples: $MIXSTACK_SAMPLES_DIR, else $MIXSTACK_SOURCE_DIR/build/samples
 * (scripts/samples run makes them). None there: the test is skipped.
 * MIXSTACK_BOUNDARY_ONLY=substring limits it to matching artefacts.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cpython/cpython.h"
#include "merge/rules.h"
#include "mini_json.h"
#include "target/target.h"
#include "unit.h"
#include "unwind/unwind.h"

#define MAX_NATIVE_FRAMES 512

/* Per interpreter tag: artefacts checked and failures seen. */
struct tally {
        char tag[96];
        int artefacts, failed_checks;
};

static struct tally tallies[32];
static size_t n_tallies;

static struct tally *tally_for(const char *tag)
{
        for (size_t i = 0; i < n_tallies; i++) {
                if (strcmp(tallies[i].tag, tag) == 0)
                        return &tallies[i];
        }
        if (n_tallies == MS_ARRAY_SIZE(tallies))
                return &tallies[n_tallies - 1];
        snprintf(tallies[n_tallies].tag, sizeof(tallies[0].tag), "%s", tag);
        return &tallies[n_tallies++];
}

/* Everything read from one core. */
struct sample {
        const char *name; /* "<tag>/<scenario>" */
        struct ms_target *target;
        struct ms_unwinder *unwinder;
        struct ms_native_stack *stacks; /* one per target thread */
        struct ms_py_runtime *rts;
        size_t n_rts;
};

static void sample_deinit(struct sample *s)
{
        for (size_t i = 0; s->stacks && s->target && i < s->target->n_threads;
             i++)
                ms_native_stack_deinit(&s->stacks[i]);
        free(s->stacks);
        ms_py_runtimes_destroy(s->rts, s->n_rts);
        ms_unwinder_destroy(s->unwinder);
        ms_target_destroy(s->target);
}

static bool sample_open(const char *dir, const char *core, struct sample *s)
{
        char *sysroot = unit_sample_sysroot(dir);
        struct ms_target_options options = {.sysroot = sysroot};
        struct ms_error *err = ms_target_open_core(core, &options, &s->target);
        free(sysroot);
        if (!err)
                err = ms_unwinder_create(s->target, &s->unwinder);
        if (!err) {
                s->stacks =
                        calloc(s->target->n_threads + 1, sizeof(*s->stacks));
                if (!s->stacks)
                        err = &ms_error_no_memory;
        }
        const struct ms_rules *rules = ms_frame_rules(NULL);
        for (size_t i = 0; !err && i < s->target->n_threads; i++) {
                err = ms_unwind_thread(s->unwinder, i, MAX_NATIVE_FRAMES,
                                       &s->stacks[i]);
                for (size_t k = 0; !err && k < s->stacks[i].n_frames; k++) {
                        struct ms_frame *f = &s->stacks[i].frames[k];
                        f->category = ms_rules_frame_category(rules, f);
                        f->native_index = (int)k;
                }
        }
        if (!err)
                err = ms_py_runtimes_find(s->target, s->unwinder, NULL, &s->rts,
                                          &s->n_rts);
        if (err) {
                fprintf(stderr, "%s: %s\n", s->name, err->message);
                ms_error_destroy(err);
                return false;
        }
        return true;
}

static const struct ms_native_stack *stack_of(const struct sample *s, pid_t tid)
{
        for (size_t i = 0; i < s->target->n_threads; i++) {
                if (s->target->threads[i].tid == tid)
                        return &s->stacks[i];
        }
        return NULL;
}

static const struct ms_py_thread *py_thread_of(const struct ms_py_runtime *rt,
                                               pid_t tid)
{
        for (size_t i = 0; tid && i < rt->n_threads; i++) {
                if (rt->threads[i].native_tid == tid)
                        return &rt->threads[i];
        }
        return NULL;
}

static const struct ms_py_interp *main_interp(const struct ms_py_runtime *rt)
{
        for (size_t i = 0; i < rt->n_interps; i++) {
                if (rt->interps[i].is_main)
                        return &rt->interps[i];
        }
        return NULL;
}

/* A check that names the artefact when it fails. */
#define EXPECT(s, cond, ...)                                  \
        do {                                                  \
                bool ok_ = (cond);                            \
                CHECK(ok_);                                   \
                if (!ok_) {                                   \
                        fprintf(stderr, "  %s: ", (s)->name); \
                        fprintf(stderr, __VA_ARGS__);         \
                        fprintf(stderr, "\n");                \
                }                                             \
        } while (0)

static const char *or_null(const char *s)
{
        return s ? s : "(null)";
}

static bool same(const char *a, const char *b)
{
        return a && b && strcmp(a, b) == 0;
}

/* ------------------------------------------------------------------------
 * GIL
 * ------------------------------------------------------------------------ */

static void check_gil(const struct sample *s, const struct ms_py_runtime *rt,
                      const struct json *m)
{
        const struct ms_py_interp *in = main_interp(rt);
        long long want = json_int(m, "gil_holder_tid", 0);
        EXPECT(s, in != NULL, "no main interpreter");
        if (!in)
                return;
        EXPECT(s, in->gil_known, "GIL not read");
        EXPECT(s, in->gil_holder_tid == want,
               "GIL holder tid %d (locked %d, last holder 0x%" PRIx64
               "), manifest %lld",
               (int)in->gil_holder_tid, in->gil_locked, in->gil_last_holder,
               want);

        const struct json *threads = json_get(m, "threads");
        for (size_t i = 0; threads && i < threads->n; i++) {
                const struct json *t = threads->items[i];
                pid_t tid = (pid_t)json_int(t, "tid", 0);
                const struct ms_native_stack *st = stack_of(s, tid);
                const struct ms_py_thread *py = py_thread_of(rt, tid);
                size_t wait_frame;
                enum ms_py_gil_state state = ms_py_thread_gil_state(
                        rt, py, st ? st->frames : NULL, st ? st->n_frames : 0,
                        &wait_frame);
                const char *role = json_str(t, "role");
                enum ms_py_gil_state want_state =
                        json_bool(t, "holds_gil")   ? MS_PY_GIL_HELD
                        : json_bool(t, "waits_gil") ? MS_PY_GIL_WAITING
                        : same(role, "rust-only")   ? MS_PY_GIL_NONE
                                                    : MS_PY_GIL_RELEASED;
                /* Threads the manifest says nothing about may be either
                 * released or never attached (helper threads). */
                bool ok = state == want_state ||
                          (want_state == MS_PY_GIL_RELEASED &&
                           state == MS_PY_GIL_NONE &&
                           !same(role, "python-main") &&
                           !same(role, "python-worker"));
                EXPECT(s, ok, "thread %d (%s, %s): GIL %s, manifest %s",
                       (int)tid, or_null(json_str(t, "name")), or_null(role),
                       ms_py_gil_state_name(state),
                       ms_py_gil_state_name(want_state));
                if (state == MS_PY_GIL_WAITING && wait_frame != SIZE_MAX && st)
                        EXPECT(s, wait_frame < st->n_frames, "bad wait frame");
        }
}

/* ------------------------------------------------------------------------
 * Exceptions
 * ------------------------------------------------------------------------ */

static void check_one_exception(const struct sample *s, const char *what,
                                const struct ms_py_exc_chain *got,
                                const struct json *want)
{
        if (json_is_null(want)) {
                EXPECT(s, got->n == 0, "%s exception %s \"%s\", manifest none",
                       what, got->n ? or_null(got->items[0].type) : "",
                       got->n ? or_null(got->items[0].message) : "");
                return;
        }
        EXPECT(s, got->n > 0, "no %s exception, manifest %s", what,
               or_null(json_str(want, "type")));
        if (!got->n)
                return;
        const struct ms_py_exc *e = &got->items[0];
        EXPECT(s, same(e->type, json_str(want, "type")),
               "%s exception type %s, manifest %s (%s)", what, or_null(e->type),
               or_null(json_str(want, "type")), or_null(e->error));
        EXPECT(s, same(e->message, json_str(want, "message")),
               "%s exception message \"%s\", manifest \"%s\" (%s)", what,
               or_null(e->message), or_null(json_str(want, "message")),
               or_null(e->error));
        bool panic =
                same(json_str(want, "type"), "pyo3_runtime.PanicException");
        EXPECT(s, e->is_panic_exception == panic, "%s is_panic_exception %d",
               what, e->is_panic_exception);
}

static void check_exceptions(const struct sample *s,
                             const struct ms_py_runtime *rt,
                             const struct json *m)
{
        const struct json *exc = json_get(m, "exception");
        pid_t tid = json_is_null(exc) ? 0 : (pid_t)json_int(exc, "tid", 0);
        for (size_t i = 0; i < rt->n_threads; i++) {
                const struct ms_py_thread *t = &rt->threads[i];
                if (tid && t->native_tid == tid)
                        continue;
                EXPECT(s, t->pending.n == 0,
                       "thread %d has a pending %s \"%s\"", (int)t->native_tid,
                       t->pending.n ? or_null(t->pending.items[0].type) : "",
                       t->pending.n ? or_null(t->pending.items[0].message)
                                    : "");
        }
        if (!tid)
                return;
        const struct ms_py_thread *t = py_thread_of(rt, tid);
        EXPECT(s, t != NULL, "no Python thread %d", (int)tid);
        if (!t)
                return;
        check_one_exception(s, "pending", &t->pending,
                            json_get(exc, "pending"));
        struct ms_py_exc_chain none = {0};
        check_one_exception(s, "handled", t->n_handled ? &t->handled[0] : &none,
                            json_get(exc, "handled"));
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------ */

static void check_phase(const struct sample *s, const struct ms_py_runtime *rt,
                        const struct json *m, struct ms_py_lifecycle *lc)
{
        size_t n = s->target->n_threads;
        struct ms_py_stack_ref *refs = calloc(n + 1, sizeof(*refs));
        for (size_t i = 0; refs && i < n; i++) {
                refs[i].tid = s->target->threads[i].tid;
                refs[i].frames = s->stacks[i].frames;
                refs[i].n_frames = s->stacks[i].n_frames;
        }
        ms_py_lifecycle_get(rt, refs, refs ? n : 0, lc);
        free(refs);
        EXPECT(s, same(ms_py_phase_name(lc->phase), json_str(m, "phase")),
               "phase %s (%s), manifest %s", ms_py_phase_name(lc->phase),
               lc->reason, or_null(json_str(m, "phase")));
        const char *step = json_str(m, "finalizing_step");
        const char *got = ms_py_finalize_step_id(lc->step);
        EXPECT(s, step ? same(got, step) : got == NULL,
               "finalizing step %s, manifest %s", or_null(got), or_null(step));
        if (lc->phase == MS_PY_PHASE_FINALIZING) {
                long long main_tid = json_int(m, "main_tid", 0);
                EXPECT(s, lc->finalizing_tid == main_tid,
                       "finalizing tid %d, main thread %lld",
                       (int)lc->finalizing_tid, main_tid);
        }
}

/* ------------------------------------------------------------------------
 * Driver
 * ------------------------------------------------------------------------ */

/* The one runtime of the process. Finding more is a bug of the finder
 * (say so), but the boundary checks still run on the one that has
 * interpreters. */
static const struct ms_py_runtime *the_runtime(const struct sample *s)
{
        const struct ms_py_runtime *rt = NULL;
        for (size_t i = 0; i < s->n_rts; i++) {
                if (s->rts[i].n_interps && !rt)
                        rt = &s->rts[i];
        }
        EXPECT(s, s->n_rts == 1, "%zu runtimes found, expected 1", s->n_rts);
        for (size_t i = 0; s->n_rts > 1 && i < s->n_rts; i++)
                fprintf(stderr,
                        "    runtime 0x%" PRIx64 " (%s), %zu interpreters\n",
                        s->rts[i].address, s->rts[i].found_by,
                        s->rts[i].n_interps);
        return rt;
}

/* A malloc'd "a/b"; exits when out of memory (a test). */
static char *path_join(const char *a, const char *b)
{
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                exit(1);
        return p;
}

static void check_sample(const char *dir, const char *tag, const char *scenario)
{
        char *core = path_join(dir, "core");
        char *manifest = path_join(dir, "manifest.json");
        char *name = path_join(tag, scenario);
        struct stat st;
        if (stat(core, &st) != 0 || stat(manifest, &st) != 0) {
                free(core);
                free(manifest);
                free(name);
                return;
        }
        struct tally *ty = tally_for(tag);
        int failed_before = unit_failed;
        struct json *m = json_parse_file(manifest);
        struct sample s = {.name = name};
        CHECK(m != NULL);
        bool ok = m && sample_open(dir, core, &s);
        CHECK(ok);
        const struct ms_py_runtime *rt = ok ? the_runtime(&s) : NULL;
        EXPECT(&s, !ok || rt, "no runtime with an interpreter");
        if (rt) {
                struct ms_py_lifecycle lc;
                check_gil(&s, rt, m);
                check_exceptions(&s, rt, m);
                check_phase(&s, rt, m, &lc);
                const struct ms_py_interp *in = main_interp(rt);
                printf("%-40s GIL holder %-7d phase %s%s%s\n", name,
                       in ? (int)in->gil_holder_tid : -1,
                       ms_py_phase_name(lc.phase), lc.step ? " / " : "",
                       lc.step ? ms_py_finalize_step_text(lc.step) : "");
        }
        sample_deinit(&s);
        json_free(m);
        ty->artefacts++;
        ty->failed_checks += unit_failed - failed_before;
        free(core);
        free(manifest);
        free(name);
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a directory, sorted (so output is stable). */
static size_t list_dir(const char *path, char ***ret)
{
        DIR *d = opendir(path);
        size_t n = 0, cap = 0;
        char **names = NULL;
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        char **grown = realloc(names, cap * sizeof(*names));
                        if (!grown)
                                break;
                        names = grown;
                }
                names[n++] = strdup(e->d_name);
        }
        if (d)
                closedir(d);
        if (n)
                qsort(names, n, sizeof(*names), compare_names);
        *ret = names;
        return n;
}

static void free_list(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

int main(void)
{
        const char *dir = getenv("MIXSTACK_SAMPLES_DIR");
        const char *src = getenv("MIXSTACK_SOURCE_DIR");
        const char *only = getenv("MIXSTACK_BOUNDARY_ONLY");
        char *build = path_join(src ? src : ".", "build/samples");
        char *artefacts = path_join(dir && *dir ? dir : build, "artefacts");
        free(build);
        char **tags;
        size_t n_tags = list_dir(artefacts, &tags);
        if (!n_tags) {
                char *why;
                if (asprintf(&why,
                             "no crash samples in %s (make them with "
                             "scripts/samples run)",
                             artefacts) < 0)
                        why = NULL;
                free(tags);
                unit_skip(why ? why : "no crash samples");
        }
        for (size_t i = 0; i < n_tags; i++) {
                char *tag_dir = path_join(artefacts, tags[i]);
                char **scenarios;
                size_t n_sc = list_dir(tag_dir, &scenarios);
                for (size_t j = 0; j < n_sc; j++) {
                        char *sdir = path_join(tag_dir, scenarios[j]);
                        char *name = path_join(tags[i], scenarios[j]);
                        if (!only || strstr(name, only))
                                check_sample(sdir, tags[i], scenarios[j]);
                        free(sdir);
                        free(name);
                }
                free_list(scenarios, n_sc);
                free(tag_dir);
        }
        free_list(tags, n_tags);
        free(artefacts);
        printf("\nper interpreter:\n");
        for (size_t i = 0; i < n_tallies; i++)
                printf("  %-28s %2d artefacts, %s\n", tallies[i].tag,
                       tallies[i].artefacts,
                       tallies[i].failed_checks ? "FAILED checks"
                                                : "all checks passed");
        return unit_finish();
}
