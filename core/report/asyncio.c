/*
 * asyncio in the report model: the tasks read by core/cpython/asyncio.c
 * grouped by event loop, and the diagnoses that join them with the
 * threads' stacks:
 *
 * - await-cycle: tasks that await each other in a ring (directly or
 *   through gather/TaskGroup/shield): none can finish, a deadlock;
 * - rust-future-stalled: tasks that wait for futures only Rust completes
 *   (pyo3-async-runtimes, PyO3 async fn), with the state of the tokio
 *   threads that should complete them (none left: the runtime is gone;
 *   all idle; waiting for the GIL);
 * - loop-blocked: a loop's thread is not in its selector but blocked in
 *   native or Rust code, so none of its tasks can progress.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/asyncio.h"
#include "report/boundary.h"

static const char *state_name(enum ms_py_task_state s)
{
        return s == MS_PY_TASK_DONE        ? "done"
               : s == MS_PY_TASK_CANCELLED ? "cancelled"
                                           : "pending";
}

static struct ms_error *ids_of(const struct ms_py_asyncio *a, const size_t *idx,
                               size_t n, uint64_t **ret)
{
        *ret = NULL;
        if (!n)
                return NULL;
        *ret = malloc(n * sizeof(**ret));
        if (!*ret)
                return &ms_error_no_memory;
        for (size_t i = 0; i < n; i++)
                (*ret)[i] = a->tasks[idx[i]].address;
        return NULL;
}

static struct ms_error *take_task(struct ms_py_asyncio *a, size_t i,
                                  struct ms_asyncio_task *out)
{
        struct ms_py_task *t = &a->tasks[i];
        *out = (struct ms_asyncio_task){
                .id = t->address,
                .name = t->name,
                .state = state_name(t->state),
                .n_frames = t->n_frames,
                .running = t->running,
                .awaiting_kind = ms_py_await_kind_name(t->await_kind),
                .awaiting_object = t->await_object,
                .awaiting_type = t->await_type,
                .awaiting_task = t->await_task != SIZE_MAX
                                         ? a->tasks[t->await_task].address
                                         : 0,
                .rust_detail = t->rust_detail,
                .n_children = t->n_children,
                .n_awaited_by = t->n_awaited_by,
        };
        t->name = NULL;
        t->await_type = NULL;
        if (t->n_frames) {
                out->frames = calloc(t->n_frames, sizeof(*out->frames));
                if (!out->frames)
                        return &ms_error_no_memory;
                for (size_t j = 0; j < t->n_frames; j++) {
                        out->frames[j] = (struct ms_task_frame){
                                .function = t->frames[j].function,
                                .qualname = t->frames[j].qualname,
                                .file = t->frames[j].file,
                                .line = t->frames[j].line,
                        };
                        memset(&t->frames[j], 0, sizeof(t->frames[j]));
                }
        }
        struct ms_error *err =
                ids_of(a, t->children, t->n_children, &out->children);
        if (!err)
                err = ids_of(a, t->awaited_by, t->n_awaited_by,
                             &out->awaited_by);
        return err;
}

static void task_free(struct ms_asyncio_task *t)
{
        free(t->name);
        for (size_t i = 0; i < t->n_frames; i++) {
                free(t->frames[i].function);
                free(t->frames[i].qualname);
                free(t->frames[i].file);
        }
        free(t->frames);
        free(t->awaiting_type);
        free(t->children);
        free(t->awaited_by);
}

const struct ms_asyncio_task *ms_asyncio_task_find(const struct ms_report *r,
                                                   uint64_t id)
{
        for (size_t i = 0; i < r->n_asyncio_loops; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                for (size_t j = 0; j < lp->n_tasks; j++) {
                        if (lp->tasks[j].id == id)
                                return &lp->tasks[j];
                }
        }
        return NULL;
}

void ms_asyncio_free(struct ms_report *report)
{
        for (size_t i = 0; i < report->n_asyncio_loops; i++) {
                struct ms_asyncio_loop *lp = &report->asyncio_loops[i];
                for (size_t j = 0; j < lp->n_tasks; j++)
                        task_free(&lp->tasks[j]);
                free(lp->tasks);
        }
        free(report->asyncio_loops);
        report->asyncio_loops = NULL;
        report->n_asyncio_loops = 0;
        free(report->async_threads);
        report->async_threads = NULL;
        report->n_async_threads = 0;
}

static struct ms_error *take_loop(struct ms_py_asyncio *a, size_t li,
                                  struct ms_asyncio_loop *out)
{
        const struct ms_py_event_loop *lp = &a->loops[li];
        *out = (struct ms_asyncio_loop){
                .address = lp->address,
                .tid = lp->tid,
                .interpreter_id = lp->interp_id,
                .running_task = lp->running_task != SIZE_MAX
                                        ? a->tasks[lp->running_task].address
                                        : 0,
                .n_done = lp->n_done,
                .n_cancelled = lp->n_cancelled,
        };
        if (!lp->n_pending)
                return NULL;
        out->tasks = calloc(lp->n_pending, sizeof(*out->tasks));
        if (!out->tasks)
                return &ms_error_no_memory;
        struct ms_error *err = NULL;
        for (size_t i = 0; i < a->n_tasks && !err; i++) {
                const struct ms_py_task *t = &a->tasks[i];
                if (t->loop != lp->address || t->state != MS_PY_TASK_PENDING ||
                    out->n_tasks >= lp->n_pending)
                        continue;
                err = take_task(a, i, &out->tasks[out->n_tasks++]);
        }
        return err;
}

struct ms_error *ms_report_asyncio_read(struct ms_target *target,
                                        const struct ms_py_runtime *rt,
                                        struct ms_report *report,
                                        struct ms_warnings *warnings)
{
        struct ms_py_asyncio a;
        struct ms_error *err = ms_py_asyncio_read(target, rt, &a);
        if (err)
                return err;
        ms_warnings_move(warnings, &a.warnings);
        report->asyncio_left_out += a.left_out;
        size_t n = report->n_asyncio_loops + a.n_loops;
        if (a.n_loops) {
                struct ms_asyncio_loop *loops =
                        realloc(report->asyncio_loops, n * sizeof(*loops));
                if (!loops)
                        err = &ms_error_no_memory;
                else
                        report->asyncio_loops = loops;
        }
        for (size_t i = 0; !err && i < a.n_loops; i++) {
                struct ms_asyncio_loop *out =
                        &report->asyncio_loops[report->n_asyncio_loops++];
                err = take_loop(&a, i, out);
        }
        ms_py_asyncio_deinit(&a);
        return err;
}

/* ------------------------------------------------------------------------
 * Diagnoses
 * ------------------------------------------------------------------------ */

struct task_ref {
        const struct ms_asyncio_loop *loop;
        const struct ms_asyncio_task *task;
};

/* Tasks sorted by id, for lookups (built once per diagnosis pass). */
struct task_index {
        struct task_ref *refs;
        size_t n;
};

static int ref_cmp(const void *a, const void *b)
{
        uint64_t x = ((const struct task_ref *)a)->task->id;
        uint64_t y = ((const struct task_ref *)b)->task->id;
        return x < y ? -1 : x > y;
}

static struct ms_error *index_build(const struct ms_report *r,
                                    struct task_index *ix)
{
        size_t n = 0;
        for (size_t i = 0; i < r->n_asyncio_loops; i++)
                n += r->asyncio_loops[i].n_tasks;
        ix->n = 0;
        ix->refs = malloc((n ? n : 1) * sizeof(*ix->refs));
        if (!ix->refs)
                return &ms_error_no_memory;
        for (size_t i = 0; i < r->n_asyncio_loops; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                for (size_t j = 0; j < lp->n_tasks; j++)
                        ix->refs[ix->n++] = (struct task_ref){
                                .loop = lp, .task = &lp->tasks[j]};
        }
        qsort(ix->refs, ix->n, sizeof(*ix->refs), ref_cmp);
        return NULL;
}

static const struct ms_asyncio_task *find_task(
        const struct task_index *ix, uint64_t id,
        const struct ms_asyncio_loop **loop)
{
        size_t lo = 0, hi = ix->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint64_t v = ix->refs[mid].task->id;
                if (v == id) {
                        if (loop)
                                *loop = ix->refs[mid].loop;
                        return ix->refs[mid].task;
                }
                if (v < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static void describe_await(FILE *out, const struct ms_asyncio_task *t)
{
        fprintf(out, "task '%s'", t->name ? t->name : "?");
        if (t->n_frames) {
                const struct ms_task_frame *f = &t->frames[0];
                fprintf(out, " (at %s (%s:%d))",
                        f->qualname ? f->qualname
                                    : (f->function ? f->function : "?"),
                        f->file ? f->file : "?", f->line);
        }
}

static struct ms_error *add_diag(struct ms_report *r, const char *kind,
                                 char *message, pid_t tid)
{
        struct ms_diagnosis *d =
                realloc(r->diagnoses, (r->n_diagnoses + 1) * sizeof(*d));
        if (!d) {
                free(message);
                return &ms_error_no_memory;
        }
        r->diagnoses = d;
        d = &r->diagnoses[r->n_diagnoses++];
        *d = (struct ms_diagnosis){.kind = kind, .message = message};
        if (tid) {
                d->tids = malloc(sizeof(*d->tids));
                if (!d->tids)
                        return &ms_error_no_memory;
                d->tids[0] = tid;
                d->n_tids = 1;
        }
        return NULL;
}

/* The successors of a task in the await graph. */
static size_t successors(const struct ms_asyncio_task *t, const uint64_t **ids,
                         uint64_t *one)
{
        if (t->awaiting_task) {
                *one = t->awaiting_task;
                *ids = one;
                return 1;
        }
        *ids = t->children;
        return t->n_children;
}

#define MAX_CYCLES 8
#define MAX_CYCLE_LEN 64

/* Follow the awaited tasks from start; report a ring that comes back to
 * start. Each task starts one walk, so a ring is found from its lowest
 * id only (reported once). Depth-bounded. */
static struct ms_error *cycle_from(struct ms_report *r,
                                   const struct task_index *ix,
                                   const struct ms_asyncio_task *start,
                                   bool *found)
{
        /* Await graphs are trees but for the rings: a budget keeps a
         * graph with many shared paths (garbage) from costing more. */
        size_t budget = 4096;
        const struct ms_asyncio_task *path[MAX_CYCLE_LEN];
        size_t next_child[MAX_CYCLE_LEN];
        size_t depth = 0;
        path[0] = start;
        next_child[0] = 0;
        *found = false;
        while (!*found) {
                const struct ms_asyncio_task *t = path[depth];
                const uint64_t *ids;
                uint64_t one;
                size_t n = successors(t, &ids, &one);
                if (!budget--)
                        return NULL;
                if (next_child[depth] >= n || depth + 1 >= MAX_CYCLE_LEN) {
                        if (!depth)
                                return NULL;
                        depth--;
                        continue;
                }
                uint64_t id = ids[next_child[depth]++];
                if (id == start->id) {
                        *found = true;
                        break;
                }
                /* Rings not through start are found from their own
                 * lowest id; do not enter them here. */
                bool on_path = id < start->id;
                for (size_t i = 0; i <= depth && !on_path; i++)
                        on_path = path[i]->id == id;
                const struct ms_asyncio_task *c =
                        on_path ? NULL : find_task(ix, id, NULL);
                if (!c)
                        continue;
                path[++depth] = c;
                next_child[depth] = 0;
        }
        char *msg = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&msg, &len);
        if (!out)
                return &ms_error_no_memory;
        fprintf(out, "deadlock: await cycle: ");
        for (size_t i = 0; i <= depth; i++) {
                describe_await(out, path[i]);
                const struct ms_asyncio_task *to =
                        i < depth ? path[i + 1] : start;
                fprintf(out, " awaits task '%s'%s", to->name ? to->name : "?",
                        i < depth ? ", " : "");
        }
        fprintf(out, "; none of them can finish");
        fclose(out);
        const struct ms_asyncio_loop *lp = NULL;
        find_task(ix, start->id, &lp);
        return add_diag(r, "await-cycle", msg, lp ? lp->tid : 0);
}

static struct ms_error *diagnose_cycles(struct ms_report *r,
                                        const struct task_index *ix)
{
        size_t n = 0;
        struct ms_error *err = NULL;
        for (size_t i = 0; i < r->n_asyncio_loops && !err; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                for (size_t j = 0; j < lp->n_tasks && !err && n < MAX_CYCLES;
                     j++) {
                        bool found;
                        err = cycle_from(r, ix, &lp->tasks[j], &found);
                        n += found;
                }
        }
        return err;
}

static bool category_is(const struct ms_frame *f, const char *c)
{
        return f->category && !strcmp(f->category, c);
}

/* A thread of a tokio runtime: named so (tokio's default names), or
 * running its scheduler or blocking pool. A thread that only waits in a
 * runtime's block_on (the caller's) is not one. */
static bool is_tokio_thread(const struct ms_thread_report *t)
{
        if (t->name && !strncmp(t->name, "tokio-", 6))
                return true;
        for (size_t i = 0; i < t->n_frames; i++) {
                const char *fn = t->frames[i].function;
                if (fn && (strstr(fn, "tokio::runtime::scheduler::"
                                      "multi_thread::worker") ||
                           strstr(fn, "tokio::runtime::blocking::pool")))
                        return true;
        }
        return false;
}

/* Blocked in a wait: the innermost frames are a libc or Rust wait or the
 * GIL machinery. */
static bool thread_waits(const struct ms_thread_report *t)
{
        return t->gil == MS_GIL_WAITING ||
               (t->n_frames && (category_is(&t->frames[0], "libc-wait") ||
                                category_is(&t->frames[0], "rust-wait")));
}

static bool has_frame(const struct ms_thread_report *t, const char *part)
{
        for (size_t i = 0; i < t->n_frames; i++) {
                const char *fn = t->frames[i].function;
                if (fn && strstr(fn, part))
                        return true;
        }
        return false;
}

/* What a tokio thread is: a worker of the multi-thread scheduler (which
 * runs inside a blocking-pool thread), a blocking-pool thread, or some
 * other thread of the runtime (a current-thread block_on, the name only). */
static const char *tokio_role(const struct ms_thread_report *t)
{
        if (has_frame(t, "scheduler::multi_thread::worker"))
                return "tokio-worker";
        if (has_frame(t, "tokio::runtime::blocking::pool"))
                return "tokio-blocking";
        return "tokio";
}

static const char *tokio_state(const struct ms_thread_report *t)
{
        if (t->gil == MS_GIL_WAITING)
                return "waiting-for-gil";
        if (!thread_waits(t))
                return "running";
        return has_frame(t, "::park") ? "idle" : "blocked";
}

static struct ms_error *find_async_threads(struct ms_report *r)
{
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *t = &r->threads[i];
                if (!is_tokio_thread(t))
                        continue;
                struct ms_async_thread *a =
                        realloc(r->async_threads,
                                (r->n_async_threads + 1) * sizeof(*a));
                if (!a)
                        return &ms_error_no_memory;
                r->async_threads = a;
                r->async_threads[r->n_async_threads++] =
                        (struct ms_async_thread){
                                .tid = t->tid,
                                .role = tokio_role(t),
                                .state = tokio_state(t),
                        };
        }
        return NULL;
}

/* Crates whose frames are machinery, not what the program asked for. */
static bool is_library_frame(const struct ms_frame *f)
{
        static const char *const prefixes[] = {
                "std::",       "<std::",       "core::",  "<core::",
                "alloc::",     "<alloc::",     "tokio::", "<tokio::",
                "parking_lot", "<parking_lot", "futures", "<futures",
        };
        if (!f->function || f->kind != MS_FRAME_NATIVE)
                return false;
        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
                if (!strncmp(f->function, prefixes[i], strlen(prefixes[i])))
                        return true;
        }
        return false;
}

/* The first frame from the innermost that is code of the program (Rust,
 * C, Python, a PyO3 trampoline), not libc, the interpreter, Rust's std or
 * the async runtime; failing that, the first Rust or C frame. */
static const struct ms_frame *own_frame(const struct ms_thread_report *t)
{
        const struct ms_frame *fallback = NULL;
        for (size_t i = 0; i < t->n_frames; i++) {
                const struct ms_frame *f = &t->frames[i];
                if (f->inlined && f->kind == MS_FRAME_NATIVE)
                        continue;
                if (!(category_is(f, "rust") || category_is(f, "native") ||
                      category_is(f, "python") ||
                      category_is(f, "pyo3-trampoline")))
                        continue;
                if (!is_library_frame(f))
                        return f;
                if (!fallback)
                        fallback = f;
        }
        return fallback;
}

static const char *frame_label(const struct ms_frame *f)
{
        if (!f)
                return "??";
        if (f->qualname)
                return f->qualname;
        return f->function ? f->function : "??";
}

static struct ms_error *diagnose_rust_futures(struct ms_report *r,
                                              const struct task_index *ix)
{
        size_t n_waiting = 0;
        const struct ms_asyncio_task *first = NULL;
        for (size_t i = 0; i < r->n_asyncio_loops; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                for (size_t j = 0; j < lp->n_tasks; j++) {
                        const struct ms_asyncio_task *t = &lp->tasks[j];
                        if (t->awaiting_kind &&
                            !strcmp(t->awaiting_kind, "rust-future")) {
                                n_waiting++;
                                if (!first)
                                        first = t;
                        }
                }
        }
        if (!first)
                return NULL;
        size_t n_tokio = 0, n_idle = 0, n_gil = 0;
        pid_t gil_tid = 0;
        for (size_t i = 0; i < r->n_threads; i++) {
                const struct ms_thread_report *t = &r->threads[i];
                if (!is_tokio_thread(t))
                        continue;
                n_tokio++;
                if (t->gil == MS_GIL_WAITING) {
                        n_gil++;
                        gil_tid = t->tid;
                } else if (thread_waits(t)) {
                        n_idle++;
                }
        }
        char *msg = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&msg, &len);
        if (!out)
                return &ms_error_no_memory;
        describe_await(out, first);
        fprintf(out, " waits for a Rust future (%s)",
                first->rust_detail ? first->rust_detail : "PyO3");
        if (n_waiting == 2)
                fprintf(out, ", and 1 more task does");
        else if (n_waiting > 2)
                fprintf(out, ", and %zu more tasks do", n_waiting - 1);
        fprintf(out, "; only Rust code can complete %s",
                n_waiting > 1 ? "them" : "it");
        if (!n_tokio)
                fprintf(out, ", and no tokio runtime thread is left in the "
                             "process: if its runtime was shut down, "
                             "nothing will");
        else if (n_gil)
                fprintf(out,
                        "; %zu of %zu tokio threads wait for the GIL "
                        "(thread %d)",
                        n_gil, n_tokio, (int)gil_tid);
        else if (n_idle == n_tokio)
                fprintf(out,
                        "; all %zu tokio threads are idle: no Rust "
                        "task is running toward it",
                        n_tokio);
        fclose(out);
        const struct ms_asyncio_loop *lp = NULL;
        find_task(ix, first->id, &lp);
        return add_diag(r, "rust-future-stalled", msg, lp ? lp->tid : 0);
}

static struct ms_error *diagnose_blocked_loops(struct ms_report *r,
                                               const struct task_index *ix)
{
        struct ms_error *err = NULL;
        for (size_t i = 0; i < r->n_asyncio_loops && !err; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                const struct ms_thread_report *t =
                        ms_report_find_thread(r, lp->tid);
                /* A loop waiting in its selector is idle, not blocked: it
                 * runs no task then. */
                if (!t || !lp->running_task || !thread_waits(t))
                        continue;
                const struct ms_asyncio_task *run =
                        find_task(ix, lp->running_task, NULL);
                const struct ms_frame *f = own_frame(t);
                char *msg = NULL;
                size_t len = 0;
                FILE *out = open_memstream(&msg, &len);
                if (!out)
                        return &ms_error_no_memory;
                fprintf(out,
                        "event loop blocked in %s: thread %d runs the "
                        "loop and ",
                        frame_label(f), (int)t->tid);
                fprintf(out, "%s",
                        t->gil == MS_GIL_WAITING ? "waits for the GIL"
                                                 : "is blocked outside its "
                                                   "selector");
                if (run) {
                        fprintf(out, " while running ");
                        describe_await(out, run);
                }
                size_t others = lp->n_tasks ? lp->n_tasks - 1 : 0;
                fprintf(out,
                        "; %zu other task%s of the loop cannot "
                        "progress",
                        others, others == 1 ? "" : "s");
                for (size_t k = 0; k < r->n_threads; k++) {
                        const struct ms_thread_report *o = &r->threads[k];
                        if (o != t && o->gil == MS_GIL_WAITING &&
                            t->gil == MS_GIL_HELD && is_tokio_thread(o)) {
                                fprintf(out,
                                        "; tokio thread %d waits for "
                                        "the GIL this thread holds",
                                        (int)o->tid);
                                break;
                        }
                }
                fclose(out);
                err = add_diag(r, "loop-blocked", msg, t->tid);
        }
        return err;
}

struct ms_error *ms_report_diagnose_asyncio(struct ms_report *r)
{
        struct ms_error *e0 = find_async_threads(r);
        if (e0 || !r->n_asyncio_loops)
                return e0;
        struct task_index ix;
        struct ms_error *err = index_build(r, &ix);
        if (!err)
                err = diagnose_cycles(r, &ix);
        if (!err)
                err = diagnose_rust_futures(r, &ix);
        if (!err)
                err = diagnose_blocked_loops(r, &ix);
        free(ix.refs);
        return err;
}
