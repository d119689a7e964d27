/*
 * Diagnoses: sentences that join facts from several threads. They read
 * the threads' GIL states and native stacks (categories from the frame
 * rules), so they work the same for every CPython version.
 *
 * - gil-holder-blocked: the GIL holder waits outside Python (a futex, a
 *   Rust Mutex, a condition variable, a read) while others wait for the
 *   GIL: nobody can run Python until that wait ends.
 * - deadlock, for certain: following who waits for whom (the GIL's holder,
 *   a pthread mutex's recorded owner) comes back to where it started.
 * - deadlock, inferred: the holder's wait is for a lock that does not
 *   record its owner, and a thread waiting for the GIL
 *   came to it from Rust or C code (Python::attach, PyGILState_Ensure),
 *   where it can hold the lock: each waits for the other. Rust's futex
 *   Mutex does not record its owner, so the lock's side of the cycle is
 *   inferred, and the sentence says so.
 * - gil-contention: the holder is running (not waiting) while others wait.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/boundary.h"

static bool category_is(const struct ms_frame *f, const char *category)
{
        return f->category && strcmp(f->category, category) == 0;
}

static bool is_wait(const struct ms_frame *f)
{
        return category_is(f, "libc-wait") || category_is(f, "rust-wait");
}

static const char *frame_name(const struct ms_frame *f)
{
        if (f->qualname)
                return f->qualname;
        return f->function ? f->function : "??";
}

/* The first frame from index i outwards that is the program's own code:
 * not inlined into another (line-tables-only DWARF names those briefly),
 * not the standard library, PyO3, the interpreter or the GIL machinery. */
static const struct ms_frame *user_frame(const struct ms_thread_report *t,
                                         size_t i)
{
        for (; i < t->n_frames; i++) {
                const struct ms_frame *f = &t->frames[i];
                if (f->inlined && f->kind == MS_FRAME_NATIVE)
                        continue;
                if (category_is(f, "rust") || category_is(f, "native") ||
                    category_is(f, "python") ||
                    category_is(f, "pyo3-trampoline"))
                        return f;
        }
        return NULL;
}

/* The innermost Python frame of the thread at index i, or NULL. Before
 * merging, the report's frames are native: the Python frames are the
 * Python thread's. */
static const struct ms_py_frame *python_frame(struct ms_py_thread *const *py,
                                              size_t i)
{
        if (!py || !py[i] || !py[i]->n_frames)
                return NULL;
        return &py[i]->frames[0];
}

/* The program's own native code innermost on a thread's stack, when it
 * runs inward of the eval loop (what the Python code called); never the
 * thread's start (start_thread, __libc_start_call_main and clone3 are
 * "thread-start" frames). */
static const struct ms_frame *native_frame(const struct ms_thread_report *t)
{
        const struct ms_frame *f = user_frame(t, 0);
        for (size_t i = 0; f && t->frames + i < f; i++) {
                if (category_is(&t->frames[i], "eval-loop") ||
                    category_is(&t->frames[i], "eval-loop-tail"))
                        return NULL;
        }
        return f;
}

/* What a thread is running, for a sentence: "native (called from python
 * at file:line)", "python (file:line)", "native" or "??". */
static char *describe_running(const struct ms_report *r,
                              const struct ms_thread_report *t,
                              struct ms_py_thread *const *py)
{
        const struct ms_py_frame *p =
                python_frame(py, (size_t)(t - r->threads));
        const struct ms_frame *native = native_frame(t);
        const char *py_name = NULL;
        if (p)
                py_name = p->qualname   ? p->qualname
                          : p->function ? p->function
                                        : "??";
        char *s = NULL;
        int n;
        if (p && native)
                n = asprintf(&s, "%s (called from %s at %s:%d)",
                             frame_name(native), py_name,
                             p->file ? p->file : "?", p->line);
        else if (p)
                n = asprintf(&s, "%s (%s:%d)", py_name, p->file ? p->file : "?",
                             p->line);
        else
                n = asprintf(&s, "%s", native ? frame_name(native) : "??");
        return n < 0 ? NULL : s;
}

/* The frame a blocked thread waits in: the outermost of the run of wait
 * frames at the top of its stack (std::sync::Mutex::lock rather than
 * futex_wait), or NULL when its innermost frame is not a wait. Frames of
 * the C library without a category (syscall stubs) may sit in the run. */
static const struct ms_frame *blocking_frame(const struct ms_thread_report *t)
{
        const struct ms_frame *found = NULL;
        for (size_t i = 0; i < t->n_frames; i++) {
                const struct ms_frame *f = &t->frames[i];
                if (is_wait(f)) {
                        found = f;
                        continue;
                }
                if (!found &&
                    (category_is(f, "native") || category_is(f, "rust-std")) &&
                    i < 2)
                        continue;
                break;
        }
        return found;
}

static bool is_lock_wait(const struct ms_thread_report *t)
{
        for (size_t i = 0; i < t->n_frames; i++) {
                const struct ms_frame *f = &t->frames[i];
                if (!is_wait(f) && !category_is(f, "native") &&
                    !category_is(f, "rust-std"))
                        break;
                const char *name = f->function ? f->function : "";
                if (strstr(name, "Mutex") || strstr(name, "mutex_lock") ||
                    strstr(name, "lock_contended") || strstr(name, "RwLock") ||
                    strstr(name, "lll_lock"))
                        return true;
        }
        return false;
}

/* For a thread waiting for the GIL: the first frame outside the GIL
 * machinery and the interpreter, outer of the wait. A Python frame there
 * means Python code asked for the GIL back (after a blocking call); Rust
 * or C code means it attached from outside, perhaps holding locks. */
static const struct ms_frame *attach_caller(const struct ms_thread_report *t)
{
        if (t->gil_wait_frame < 0)
                return NULL;
        return user_frame(t, (size_t)t->gil_wait_frame);
}

static struct ms_error *add(struct ms_report *r, const char *kind,
                            char *message, const pid_t *tids, size_t n_tids)
{
        if (!message)
                return &ms_error_no_memory;
        struct ms_diagnosis *d =
                realloc(r->diagnoses, (r->n_diagnoses + 1) * sizeof(*d));
        if (!d) {
                free(message);
                return &ms_error_no_memory;
        }
        r->diagnoses = d;
        d = &r->diagnoses[r->n_diagnoses];
        d->kind = kind;
        d->message = message;
        d->tids = malloc((n_tids ? n_tids : 1) * sizeof(*d->tids));
        if (!d->tids) {
                free(message);
                return &ms_error_no_memory;
        }
        memcpy(d->tids, tids, n_tids * sizeof(*tids));
        d->n_tids = n_tids;
        r->n_diagnoses++;
        return NULL;
}

/* "123 (name), 124 (name)" for the listed threads. */
static char *thread_list(const struct ms_report *r, const pid_t *tids, size_t n)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const char *name = NULL;
                for (size_t j = 0; j < r->n_threads; j++) {
                        if (r->threads[j].tid == tids[i])
                                name = r->threads[j].name;
                }
                fprintf(out, "%s%d", i ? ", " : "", (int)tids[i]);
                if (name)
                        fprintf(out, " (%s)", name);
        }
        fclose(out);
        return buf;
}

static struct ms_error *diagnose_holder(struct ms_report *r,
                                        const struct ms_thread_report *holder,
                                        struct ms_py_thread *const *py,
                                        pid_t *waiters, size_t n_waiters)
{
        pid_t *tids = malloc((n_waiters + 1) * sizeof(*tids));
        if (!tids)
                return &ms_error_no_memory;
        tids[0] = holder->tid;
        memcpy(tids + 1, waiters, n_waiters * sizeof(*waiters));
        char *who = thread_list(r, waiters, n_waiters);
        char *message = NULL;
        struct ms_error *err = NULL;
        const struct ms_frame *block = blocking_frame(holder);

        /* A lock wait in the holder and an attach from native code in a
         * waiter: the classic PyO3 deadlock. */
        const struct ms_thread_report *attacher = NULL;
        const struct ms_frame *caller = NULL;
        for (size_t i = 0; block && is_lock_wait(holder) && i < r->n_threads;
             i++) {
                const struct ms_thread_report *t = &r->threads[i];
                if (t->gil != MS_GIL_WAITING)
                        continue;
                const struct ms_frame *c = attach_caller(t);
                if (c && c->kind == MS_FRAME_NATIVE) {
                        attacher = t;
                        caller = c;
                        break;
                }
        }
        const struct ms_frame *locker =
                block ? user_frame(holder, (size_t)(block - holder->frames))
                      : NULL;
        if (attacher) {
                pid_t pair[2] = {holder->tid, attacher->tid};
                if (asprintf(&message,
                             "deadlock: thread %d holds the GIL and waits for "
                             "a lock in %s (called from %s), while thread %d "
                             "waits for the GIL, attaching from %s; unless "
                             "another thread holds that lock, thread %d does "
                             "(the lock does not record its owner), and "
                             "neither can go on",
                             (int)holder->tid, frame_name(block),
                             locker ? frame_name(locker) : "??",
                             (int)attacher->tid, frame_name(caller),
                             (int)attacher->tid) < 0)
                        message = NULL;
                err = add(r, "deadlock", message, pair, 2);
        } else if (block) {
                if (asprintf(&message,
                             "thread %d holds the GIL and is blocked in %s, "
                             "outside Python, while %zu thread%s wait%s for "
                             "the GIL: %s",
                             (int)holder->tid, frame_name(block), n_waiters,
                             n_waiters == 1 ? "" : "s",
                             n_waiters == 1 ? "s" : "", who ? who : "?") < 0)
                        message = NULL;
                err = add(r, "gil-holder-blocked", message, tids,
                          n_waiters + 1);
        } else {
                char *running = describe_running(r, holder, py);
                if (asprintf(&message,
                             "thread %d holds the GIL and is running %s while "
                             "%zu thread%s wait%s for the GIL: %s",
                             (int)holder->tid, running ? running : "??",
                             n_waiters, n_waiters == 1 ? "" : "s",
                             n_waiters == 1 ? "s" : "", who ? who : "?") < 0)
                        message = NULL;
                free(running);
                err = add(r, "gil-contention", message, tids, n_waiters + 1);
        }
        free(who);
        free(tids);
        return err;
}

/* The thread t waits for: the GIL's holder when it waits for the GIL, the
 * owner of its lock when the lock records one, else NULL. */
static const struct ms_thread_report *waits_for(
        const struct ms_report *r, const struct ms_thread_report *t,
        const struct ms_thread_report *holder)
{
        if (t->gil == MS_GIL_WAITING)
                return holder;
        return ms_report_find_thread(r, t->lock_owner_tid);
}

/* One step of a cycle, for the sentence. */
static void describe_edge(FILE *out, const struct ms_thread_report *t,
                          const struct ms_thread_report *next)
{
        if (t->gil == MS_GIL_WAITING) {
                fprintf(out, "thread %d waits for the GIL held by thread %d",
                        (int)t->tid, (int)next->tid);
                return;
        }
        const struct ms_frame *block = blocking_frame(t);
        fprintf(out, "thread %d%s waits for the mutex owned by thread %d",
                (int)t->tid, t->gil == MS_GIL_HELD ? " holds the GIL and" : "",
                (int)next->tid);
        if (block)
                fprintf(out, " (in %s)", frame_name(block));
}

/*
 * Follow owner chains (who waits for whom, where the lock says) from
 * every thread; a chain that comes back to its start is a deadlock for
 * certain. Returns true when one was reported.
 */
static struct ms_error *diagnose_cycle(struct ms_report *r,
                                       const struct ms_thread_report *holder,
                                       bool *found)
{
        *found = false;
        size_t n = r->n_threads;
        const struct ms_thread_report **path = malloc((n + 1) * sizeof(*path));
        pid_t *tids = malloc((n + 1) * sizeof(*tids));
        struct ms_error *err = NULL;
        if (!path || !tids) {
                err = &ms_error_no_memory;
                goto out;
        }
        for (size_t s = 0; s < n && !*found; s++) {
                const struct ms_thread_report *t = &r->threads[s];
                size_t len = 0;
                /* At most n steps: a longer chain repeats a thread. */
                while (t && len <= n) {
                        path[len++] = t;
                        t = waits_for(r, t, holder);
                        if (t == &r->threads[s])
                                break;
                }
                if (t != &r->threads[s] || len < 2)
                        continue;
                char *buf = NULL;
                size_t size = 0;
                FILE *out = open_memstream(&buf, &size);
                if (!out) {
                        err = &ms_error_no_memory;
                        goto out;
                }
                fputs("deadlock: ", out);
                for (size_t i = 0; i < len; i++) {
                        if (i)
                                fputs("; ", out);
                        describe_edge(out, path[i], path[(i + 1) % len]);
                        tids[i] = path[i]->tid;
                }
                fputs(": none of them can go on", out);
                fclose(out);
                err = add(r, "deadlock", buf, tids, len);
                *found = true;
        }
out:
        free(path);
        free(tids);
        return err;
}

struct ms_error *ms_report_diagnose(struct ms_report *r,
                                    struct ms_py_thread *const *py)
{
        pid_t *waiters =
                malloc((r->n_threads ? r->n_threads : 1) * sizeof(*waiters));
        if (!waiters)
                return &ms_error_no_memory;
        size_t n_waiters = 0;
        const struct ms_thread_report *holder = NULL;
        for (size_t i = 0; i < r->n_threads; i++) {
                if (r->threads[i].gil == MS_GIL_WAITING)
                        waiters[n_waiters++] = r->threads[i].tid;
                else if (r->threads[i].gil == MS_GIL_HELD)
                        holder = &r->threads[i];
        }
        bool found = false;
        struct ms_error *err = diagnose_cycle(r, holder, &found);
        if (!err && !found && holder && n_waiters)
                err = diagnose_holder(r, holder, py, waiters, n_waiters);
        free(waiters);
        return err;
}

void ms_diagnoses_free(struct ms_report *r)
{
        for (size_t i = 0; i < r->n_diagnoses; i++) {
                free(r->diagnoses[i].message);
                free(r->diagnoses[i].tids);
        }
        free(r->diagnoses);
        r->diagnoses = NULL;
        r->n_diagnoses = 0;
}
