/*
 * ms_rust_analyse: modules and counters first (exact, from symbols), then
 * each thread's frames, then, only for threads that are panicking, the
 * memory heuristics in decreasing order of reliability: exception objects
 * (the original payload, checked against the module's canary), the hook's
 * text (std's own rendering), the stack scan (validated structures).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rust/internal.h"

/* The Rust module of the innermost machinery frame, else of the site. */
static const struct ms_rust_module *frames_module(
        struct ms_target *target, const struct ms_rust_state *state,
        const struct ms_rust_thread_input *in, const struct ms_rust_thread *t)
{
        for (size_t i = 0; in->frames && i < in->n_frames; i++) {
                const struct ms_frame *f = &in->frames[i];
                if (f->kind != MS_FRAME_NATIVE || !f->category ||
                    strcmp(f->category, "rust-panic") != 0)
                        continue;
                const struct ms_rust_module *m =
                        ms_rust_module_at(state, target, f->pc);
                if (m)
                        return m;
        }
        if (t->site_index >= 0)
                return ms_rust_module_at(state, target,
                                         in->frames[t->site_index].pc);
        return NULL;
}

static bool local_count(struct ms_target *target,
                        const struct ms_rust_state *state,
                        const struct ms_target_thread *thread,
                        const struct ms_rust_module *m,
                        struct ms_rust_thread *t)
{
        uint64_t count;
        bool in_hook;
        struct ms_error *err =
                ms_rust_local_count(target, state, m, thread, &count, &in_hook);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        t->local_count_known = true;
        t->local_panic_count = count;
        t->in_panic_hook = in_hook;
        return true;
}

/* The local count of the panic's module; without one, of the first module
 * where it is not 0 (0 with no module when it is 0 in all). */
static void read_local_counts(struct ms_target *target,
                              const struct ms_rust_state *state,
                              const struct ms_target_thread *thread,
                              const struct ms_rust_module *panic_module,
                              struct ms_rust_thread *t)
{
        if (panic_module) {
                local_count(target, state, thread, panic_module, t);
                return;
        }
        struct ms_rust_thread zero = {0};
        for (size_t i = 0; i < state->n_modules; i++) {
                const struct ms_rust_module *m = &state->modules[i];
                if (!local_count(target, state, thread, m, &zero))
                        continue;
                t->local_count_known = true;
                if (zero.local_panic_count || zero.in_panic_hook) {
                        t->panic_module = m->path;
                        t->local_panic_count = zero.local_panic_count;
                        t->in_panic_hook = zero.in_panic_hook;
                        return;
                }
        }
}

static struct ms_error *analyse_frames(struct ms_target *target,
                                       const struct ms_rust_state *state,
                                       const struct ms_rust_thread_input *in,
                                       struct ms_rust_thread *t)
{
        t->tid = in->tid;
        if (!ms_rust_frames_classify(in->frames, in->n_frames, t))
                return &ms_error_no_memory;
        const struct ms_target_thread *thread =
                ms_target_find_thread(target, in->tid);
        if (!thread)
                return NULL;
        const struct ms_rust_module *m = frames_module(target, state, in, t);
        if (m)
                t->panic_module = m->path;
        read_local_counts(target, state, thread, m, t);
        /* A thread running destructors while it unwinds shows no panic
         * frame: its own count says it panics. */
        if (t->local_count_known && t->local_panic_count) {
                t->panicking = true;
                if (t->kind == MS_RUST_PANIC_NONE)
                        t->kind = MS_RUST_PANIC_IN_PROGRESS;
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * Exception objects
 * ------------------------------------------------------------------------ */

static size_t count_panicking(const struct ms_rust_state *state, size_t *which)
{
        size_t n = 0;
        for (size_t i = 0; i < state->n_threads; i++) {
                if (state->threads[i].panicking) {
                        *which = i;
                        n++;
                }
        }
        return n;
}

static uint64_t scan_start(struct ms_target *target,
                           const struct ms_rust_thread_input *in)
{
        const struct ms_target_thread *thread =
                ms_target_find_thread(target, in->tid);
        if (!thread || !thread->have_regs)
                return 0;
        return ms_rust_scan_start(target, thread, in->frames, in->n_frames);
}

/* An object belongs to the thread whose stack holds its address; if no
 * stack does and one thread alone panics, to that one. */
static struct ms_error *assign_exceptions(struct ms_target *target,
                                          struct ms_rust_state *state,
                                          const struct ms_rust_thread_input *in)
{
        size_t n = state->n_exceptions;
        uint64_t *addresses = calloc(n ? n : 1, sizeof(*addresses));
        bool *found = calloc(n ? n : 1, sizeof(*found));
        struct ms_error *err = addresses && found ? NULL : &ms_error_no_memory;
        for (size_t e = 0; e < n && !err; e++)
                addresses[e] = state->exceptions[e].address;
        for (size_t i = 0; i < state->n_threads && !err; i++) {
                uint64_t sp = state->threads[i].panicking
                                      ? scan_start(target, &in[i])
                                      : 0;
                if (!sp)
                        continue;
                err = ms_rust_stack_refers(target, sp, addresses, n, found);
                for (size_t e = 0; !err && e < n; e++) {
                        if (found[e] && !state->exceptions[e].tid)
                                state->exceptions[e].tid =
                                        state->threads[i].tid;
                }
        }
        size_t only;
        if (!err && count_panicking(state, &only) == 1) {
                for (size_t e = 0; e < n; e++) {
                        if (!state->exceptions[e].tid)
                                state->exceptions[e].tid =
                                        state->threads[only].tid;
                }
        }
        free(addresses);
        free(found);
        return err;
}

static struct ms_error *search_exceptions(struct ms_target *target,
                                          struct ms_rust_state *state,
                                          const struct ms_rust_thread_input *in)
{
        struct ms_rust_region *regions;
        size_t n;
        struct ms_error *err = ms_rust_writable_regions(target, &regions, &n);
        if (err) {
                if (err->code == MS_ERROR_NO_MEMORY)
                        return err;
                ms_warnings_add(&state->warnings,
                                "no search for Rust exception objects: %s",
                                err->message);
                ms_error_destroy(err);
                return NULL;
        }
        err = ms_rust_find_exceptions(target, state, regions, n,
                                      MS_RUST_EXCEPTION_SCAN_BUDGET);
        free(regions);
        state->exceptions_searched = !err;
        if (!err)
                err = assign_exceptions(target, state, in);
        return err;
}

/* The thread's first object with a message of the user's panic. */
static struct ms_error *take_exception(const struct ms_rust_state *state,
                                       struct ms_rust_thread *t)
{
        for (size_t e = 0; e < state->n_exceptions; e++) {
                const struct ms_rust_exception *x = &state->exceptions[e];
                if (x->tid != t->tid || !x->message ||
                    ms_rust_is_runtime_message(x->message))
                        continue;
                t->message = strdup(x->message);
                if (!t->message)
                        return &ms_error_no_memory;
                t->message_recovered_by = MS_RUST_BY_EXCEPTION_OBJECT;
                return NULL;
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------ */

static bool any_global_count(const struct ms_rust_state *state)
{
        for (size_t i = 0; i < state->n_modules; i++) {
                if (state->modules[i].count_known &&
                    state->modules[i].global_panic_count)
                        return true;
        }
        return false;
}

/* Memory is searched only when something says a panic is under way: a
 * thread's frames or local count, or a module's global count (whose
 * panicking thread the frames may not show). */
static struct ms_error *recover(struct ms_target *target,
                                struct ms_rust_state *state,
                                const struct ms_rust_thread_input *in)
{
        size_t only;
        if (!count_panicking(state, &only) && !any_global_count(state))
                return NULL;
        struct ms_error *err = search_exceptions(target, state, in);
        for (size_t i = 0; i < state->n_threads && !err; i++) {
                struct ms_rust_thread *t = &state->threads[i];
                if (!t->panicking)
                        continue;
                err = take_exception(state, t);
                uint64_t sp = err ? 0 : scan_start(target, &in[i]);
                if (sp)
                        err = ms_rust_scan_stack(target, state, sp, t);
        }
        return err;
}

struct ms_error *ms_rust_analyse(struct ms_target *target,
                                 const struct ms_rust_thread_input *threads,
                                 size_t n_threads, struct ms_rust_state *ret)
{
        if (!ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no state to return");
        memset(ret, 0, sizeof(*ret));
        if (!target || (n_threads && !threads))
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no target or no threads");
        struct ms_error *err = ms_rust_modules_read(target, ret);
        if (!err)
                err = ms_rust_tls_resolve(target, ret);
        if (!err) {
                ret->threads = calloc(n_threads ? n_threads : 1,
                                      sizeof(*ret->threads));
                if (!ret->threads)
                        err = &ms_error_no_memory;
        }
        for (size_t i = 0; i < n_threads && !err; i++) {
                ret->n_threads++;
                err = analyse_frames(target, ret, &threads[i],
                                     &ret->threads[i]);
        }
        if (!err)
                err = recover(target, ret, threads);
        if (err)
                ms_rust_state_deinit(ret);
        return err;
}

static void thread_deinit(struct ms_rust_thread *t)
{
        free(t->site_function);
        free(t->site_module);
        free(t->site_file);
        free(t->message);
        free(t->file);
        free(t->hook_thread_name);
}

void ms_rust_state_deinit(struct ms_rust_state *state)
{
        if (!state)
                return;
        for (size_t i = 0; i < state->n_modules; i++) {
                free(state->modules[i].path);
                free(state->modules[i].rustc_version);
                free(state->modules[i].count_unknown_reason);
        }
        free(state->modules);
        for (size_t i = 0; i < state->n_threads; i++)
                thread_deinit(&state->threads[i]);
        free(state->threads);
        for (size_t i = 0; i < state->n_exceptions; i++)
                free(state->exceptions[i].message);
        free(state->exceptions);
        free(state->tls);
        ms_warnings_deinit(&state->warnings);
        memset(state, 0, sizeof(*state));
}
