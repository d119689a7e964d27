/*
 * Triage: what kind of failure a report shows, which threads tell it,
 * where it happened, and the signature.
 *
 * Crashes (a fatal signal) are told by the thread that got the signal; a
 * process without one (a live process past its time, a gcore snapshot) by
 * the deadlocked pair of a "deadlock" diagnosis, else the GIL holder, else
 * the main thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "symbols/symbols.h"
#include "triage/internal.h"
#include "triage/signature.h"

#define DEFAULT_SIGNATURE_FRAMES 5
#define DEFAULT_STACK_FRAMES 16
/* Each thread of a deadlocked pair gives this many frames. */
#define PAIR_SIGNATURE_FRAMES 3

bool ms_triage_category_is(const struct ms_frame *f, const char *category)
{
        return f->category && strcmp(f->category, category) == 0;
}

/* Frames between the fault and the signal: signal delivery, abort(),
 * Rust's panic runtime. Stacks are shown from the first frame after. */
static bool is_machinery(const struct ms_frame *f)
{
        return ms_triage_category_is(f, "signal") ||
               ms_triage_category_is(f, "rust-panic");
}

/* CPython's fatal error path (Py_FatalError and its helpers); not
 * faulthandler's handler, which catches signals. */
static bool is_fatal_error_function(const char *function)
{
        static const char *const names[] = {
                "Py_FatalError",
                "_Py_FatalErrorFunc",
                "_Py_FatalErrorFormat",
                "_Py_FatalError_TstateNULL",
                "fatal_error",
                "fatal_error_exit",
                "_Py_FatalRefcountErrorFunc",
        };
        if (!function)
                return false;
        size_t len = ms_symbol_base_length(function);
        for (size_t i = 0; i < MS_ARRAY_SIZE(names); i++) {
                if (strlen(names[i]) == len &&
                    memcmp(names[i], function, len) == 0)
                        return true;
        }
        return false;
}

static bool has_fatal_error(const struct ms_thread_report *t)
{
        for (size_t i = 0; i < t->n_frames; i++) {
                if (t->frames[i].kind == MS_FRAME_NATIVE &&
                    is_fatal_error_function(t->frames[i].function))
                        return true;
        }
        return false;
}

static const char *crash_kind(const struct ms_report *r,
                              const struct ms_thread_report *t)
{
        if (t->panic && t->panic->panicking)
                return "panic";
        if (has_fatal_error(t))
                return "fatal-error";
        if (r->signo == SIGABRT)
                return "abort";
        const char *name = ms_signal_name(r->signo);
        return name ? name : "signal";
}

int ms_triage_find_thread(const struct ms_report *r, pid_t tid)
{
        for (size_t i = 0; i < r->n_threads; i++) {
                if (r->threads[i].tid == tid)
                        return (int)i;
        }
        return -1;
}

static size_t crashed_thread(const struct ms_report *r)
{
        for (size_t i = 0; i < r->n_threads; i++) {
                if (r->threads[i].crashed)
                        return i;
        }
        int i = ms_triage_find_thread(r, r->crashed_tid);
        return i >= 0 ? (size_t)i : 0;
}

pid_t ms_triage_gil_holder(const struct ms_report *r)
{
        for (size_t i = 0; i < r->n_interpreters; i++) {
                if (r->interpreters[i].gil_holder_tid)
                        return r->interpreters[i].gil_holder_tid;
        }
        for (size_t i = 0; i < r->n_threads; i++) {
                if (r->threads[i].gil == MS_GIL_HELD)
                        return r->threads[i].tid;
        }
        return 0;
}

/* The thread that tells a process without a fatal signal: the GIL
 * holder (the only one that can run Python), else the main thread. */
static size_t idle_thread(const struct ms_report *r)
{
        int i = ms_triage_find_thread(r, ms_triage_gil_holder(r));
        if (i < 0)
                i = ms_triage_find_thread(r, r->pid);
        return i >= 0 ? (size_t)i : 0;
}

const struct ms_diagnosis *ms_triage_deadlock(const struct ms_report *r)
{
        for (size_t i = 0; i < r->n_diagnoses; i++) {
                if (strcmp(r->diagnoses[i].kind, "deadlock") == 0)
                        return &r->diagnoses[i];
        }
        return NULL;
}

/* Kind and threads of a triage. */
static void choose_threads(struct ms_triage *t,
                           const struct ms_triage_options *options)
{
        const struct ms_report *r = t->report;
        t->n_threads = 0;
        if (!r->n_threads) {
                t->kind = r->signo
                                  ? crash_kind(r, &(struct ms_thread_report){0})
                                  : (options->hang ? "hang" : "snapshot");
                return;
        }
        if (r->signo) {
                t->threads[t->n_threads++] = crashed_thread(r);
                t->kind = crash_kind(r, &r->threads[t->threads[0]]);
                return;
        }
        const struct ms_diagnosis *d = ms_triage_deadlock(r);
        for (size_t i = 0; d && i < d->n_tids && t->n_threads < 2; i++) {
                int index = ms_triage_find_thread(r, d->tids[i]);
                if (index >= 0)
                        t->threads[t->n_threads++] = (size_t)index;
        }
        if (t->n_threads) {
                t->kind = "deadlock";
                return;
        }
        t->threads[t->n_threads++] = idle_thread(r);
        t->kind = options->hang ? "hang" : "snapshot";
}

/* Where the stack is shown from, and the frame at fault (crashes only). */
static void find_crash_frame(struct ms_triage *t)
{
        t->crash_frame = -1;
        t->machinery_frames = 0;
        if (!t->n_threads || !t->report->signo)
                return;
        const struct ms_thread_report *th = &t->report->threads[t->threads[0]];
        size_t i = 0;
        while (i < th->n_frames && is_machinery(&th->frames[i]))
                i++;
        t->machinery_frames = i;
        for (; i < th->n_frames; i++) {
                if (!th->frames[i].inlined) {
                        t->crash_frame = (int)i;
                        break;
                }
        }
        if (t->crash_frame < 0)
                t->machinery_frames = 0;
}

static struct ms_error *set_crash_module(struct ms_triage *t)
{
        if (t->crash_frame < 0)
                return NULL;
        const struct ms_frame *f =
                &t->report->threads[t->threads[0]].frames[t->crash_frame];
        if (!f->module)
                return NULL;
        const char *slash = strrchr(f->module, '/');
        t->crash_module = strdup(slash ? slash + 1 : f->module);
        return t->crash_module ? NULL : &ms_error_no_memory;
}

static struct ms_error *compute_signature(
        struct ms_triage *t, const struct ms_signature_rules *rules,
        unsigned max_frames)
{
        size_t capacity = 0;
        bool done = false;
        if (t->n_threads == 2)
                max_frames = PAIR_SIGNATURE_FRAMES;
        if (!t->report->signo) {
                struct ms_error *err = ms_triage_asyncio_signature(t, &done);
                if (err)
                        return err;
        }
        for (size_t i = 0; i < t->n_threads && !done; i++) {
                struct ms_error *err = ms_signature_thread(
                        rules, &t->report->threads[t->threads[i]],
                        t->threads[i], max_frames, &t->signature_frames,
                        &t->n_signature_frames, &capacity);
                if (err)
                        return err;
        }
        t->signature = ms_signature_join(t->kind, t->signature_frames,
                                         t->n_signature_frames);
        if (!t->signature)
                return &ms_error_no_memory;
        ms_signature_id(t->signature, t->signature_id);
        return NULL;
}

static struct ms_error *add_warning(struct ms_triage *t, const char *fmt,
                                    const char *arg)
{
        char *w;
        if (asprintf(&w, fmt, arg) < 0)
                return &ms_error_no_memory;
        if (!ms_grow((void **)&t->warnings, &(size_t){t->n_warnings},
                     t->n_warnings, sizeof(*t->warnings))) {
                free(w);
                return &ms_error_no_memory;
        }
        t->warnings[t->n_warnings++] = w;
        return NULL;
}

static const struct ms_signature_rules *rules_for(struct ms_triage *t,
                                                  struct ms_error **err)
{
        const struct ms_error *warning = NULL;
        const struct ms_signature_rules *rules =
                ms_signature_rules_default(&warning);
        *err = NULL;
        if (warning)
                *err = add_warning(t,
                                   "signature rules: %s (the built-in lists "
                                   "are used)",
                                   warning->message);
        if (!rules && !*err)
                *err = ms_error_create(MS_ERROR_LIBRARY,
                                       "cannot load the built-in signature "
                                       "rules");
        return rules;
}

struct ms_error *ms_triage_create(const struct ms_report *report,
                                  const struct ms_triage_options *options,
                                  struct ms_triage **ret)
{
        if (!report || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_triage_create: no report");
        struct ms_triage_options opts =
                options ? *options : (struct ms_triage_options){0};
        if (!opts.signature_frames)
                opts.signature_frames = DEFAULT_SIGNATURE_FRAMES;
        if (!opts.stack_frames)
                opts.stack_frames = DEFAULT_STACK_FRAMES;
        struct ms_triage *t = calloc(1, sizeof(*t));
        if (!t)
                return &ms_error_no_memory;
        t->report = report;
        t->stack_frames = opts.stack_frames;
        choose_threads(t, &opts);
        find_crash_frame(t);
        struct ms_error *err;
        const struct ms_signature_rules *rules = rules_for(t, &err);
        if (!err)
                err = compute_signature(t, rules, opts.signature_frames);
        if (!err)
                err = set_crash_module(t);
        if (!err)
                err = ms_triage_build_reason(t);
        if (err) {
                ms_triage_destroy(t);
                return err;
        }
        *ret = t;
        return NULL;
}

void ms_triage_destroy(struct ms_triage *t)
{
        if (!t)
                return;
        free(t->reason);
        free(t->signature);
        for (size_t i = 0; i < t->n_signature_frames; i++)
                free(t->signature_frames[i].text);
        free(t->signature_frames);
        free(t->crash_module);
        for (size_t i = 0; i < t->n_warnings; i++)
                free(t->warnings[i]);
        free(t->warnings);
        free(t);
}

const char *ms_triage_kind(const struct ms_triage *triage)
{
        return triage->kind;
}

const char *ms_triage_reason(const struct ms_triage *triage)
{
        return triage->reason;
}

const char *ms_triage_signature(const struct ms_triage *triage)
{
        return triage->signature;
}

const char *ms_triage_signature_id(const struct ms_triage *triage)
{
        return triage->signature_id;
}
