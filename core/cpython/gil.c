/*
 * The GIL: which struct an interpreter uses, who holds it, and each
 * thread's relation to it (cpython-internals.md §6, §9).
 *
 * In memory: struct _gil_runtime_state's locked and last_holder. The GIL
 * is held by last_holder only while locked == 1: last_holder is not
 * cleared on release, so with locked == 0 nobody holds it whatever
 * last_holder says. 3.13+ also flag the holder in its thread state (a
 * _status bit in 3.13, an int from 3.14), 3.15 the threads asking for it
 * (gil_requested). A free-threaded build whose GIL is disabled
 * (enabled == 0) has no holder at all.
 *
 * On the stack: a thread blocked taking the GIL sits in the gil-acquire
 * category (take_gil, PyEval_RestoreThread, _PyThreadState_Attach,
 * PyGILState_Ensure, PyO3's attach), under nothing but libc waits and
 * interpreter internals.
 *
 * In registers, when names are missing (stripped builds, whose take_gil
 * is static and unnamed): take_gil sleeps in pthread_cond_timedwait on
 * gil->cond, or in pthread_mutex_lock on gil->mutex, both ending in the
 * futex system call whose first argument, kept in the saved rdi, points
 * into that pthread object (glibc's condvar waits on its __g_signals
 * word, inside the 48-byte pthread_cond_t; a mutex on its __lock word).
 * The thread's syscall number (orig_rax) says it is in futex().
 */
#include <string.h>

#include "cpython/internal.h"

/* Categories a waiting thread may have above its gil-acquire frame: the
 * condition-variable wait itself and the interpreter's glue (inlined
 * PyCOND_TIMEDWAIT, clones). NULL (unclassified) counts as native. */
static const char *const transparent_categories[] = {
        "libc-wait",
        "native",
        "cpython-internal",
};

#define GIL_ACQUIRE_CATEGORY "gil-acquire"

void ms_py_gil_read(struct ms_target *target, struct ms_py_runtime *rt,
                    struct ms_py_interp *in)
{
        const struct ms_py_layout *l = &rt->layout;
        uint64_t gil = 0;
        struct ms_error *err = NULL;
        /* 3.12+: a pointer per interpreter (maybe to the main one's GIL);
         * before, one GIL inside the runtime. */
        if (l->is_ceval_gil >= 0)
                err = ms_py_read_field(target, in->address, l->is_ceval_gil,
                                       &gil);
        else if (l->rt_gil >= 0)
                gil = rt->address + (uint64_t)l->rt_gil;
        ms_error_destroy(err);
        if (!ms_py_plausible_pointer(gil))
                return;
        in->gil_address = gil;
        int32_t locked = 0, enabled = 1;
        err = ms_py_read_field_i32(target, gil, l->gil_locked, &locked);
        if (!err)
                err = ms_py_read_field(target, gil, l->gil_last_holder,
                                       &in->gil_last_holder);
        if (!err && l->gil_enabled >= 0)
                err = ms_py_read_field_i32(target, gil, l->gil_enabled,
                                           &enabled);
        if (err) {
                ms_warnings_add(&rt->warnings,
                                "interpreter %" PRId64 ": GIL at 0x%" PRIx64
                                ": %s",
                                in->id, gil, err->message);
                ms_error_destroy(err);
                return;
        }
        if (l->gil_switch_number >= 0)
                ms_error_destroy(ms_py_read_field(target, gil,
                                                  l->gil_switch_number,
                                                  &in->gil_switch_number));
        in->gil_known = true;
        /* locked is -1 before the GIL is created. */
        in->gil_locked = locked == 1;
        in->gil_disabled = enabled == 0;
        in->gil_holder =
                in->gil_locked && !in->gil_disabled ? in->gil_last_holder : 0;
}

static const struct ms_py_interp *interp_of(const struct ms_py_runtime *rt,
                                            int64_t id)
{
        for (size_t i = 0; rt && i < rt->n_interps; i++) {
                if (rt->interps[i].id == id)
                        return &rt->interps[i];
        }
        return NULL;
}

static const struct ms_py_thread *thread_of(const struct ms_py_runtime *rt,
                                            uint64_t tstate)
{
        for (size_t i = 0; tstate && i < rt->n_threads; i++) {
                if (rt->threads[i].tstate == tstate)
                        return &rt->threads[i];
        }
        return NULL;
}

/* The per-thread flag (3.13+) and the GIL struct should name the same
 * holder; they can differ for an instant during a hand-off, or after
 * corruption. The flag wins for the thread's state, so say so. */
static void check_thread_flags(struct ms_py_runtime *rt)
{
        if (rt->layout.ts_holds_gil < 0 &&
            rt->layout.ts_status_holds_gil_bit < 0)
                return;
        for (size_t i = 0; i < rt->n_threads; i++) {
                const struct ms_py_thread *t = &rt->threads[i];
                const struct ms_py_interp *in = interp_of(rt, t->interp_id);
                if (!in || !in->gil_known || in->gil_disabled ||
                    (in->gil_holder == t->tstate) == t->holds_gil)
                        continue;
                ms_warnings_add(
                        &rt->warnings,
                        "thread %d: its thread state says it %s the GIL, "
                        "the GIL says %s",
                        (int)t->native_tid,
                        t->holds_gil ? "holds" : "does not hold",
                        in->gil_holder ? "another thread holds it"
                                       : "nobody holds it");
        }
}

void ms_py_gil_resolve(struct ms_py_runtime *rt)
{
        for (size_t i = 0; i < rt->n_interps; i++) {
                struct ms_py_interp *in = &rt->interps[i];
                if (!in->gil_holder)
                        continue;
                const struct ms_py_thread *t = thread_of(rt, in->gil_holder);
                if (t)
                        in->gil_holder_tid = t->native_tid;
                else
                        ms_warnings_add(
                                &rt->warnings,
                                "interpreter %" PRId64 ": the GIL holder "
                                "0x%" PRIx64 " is not among its thread states",
                                in->id, in->gil_holder);
        }
        check_thread_flags(rt);
        /* 3.8-3.11: tstate_current is the thread state swapped in after
         * take_gil; NULL while the GIL changes hands, never another
         * thread's unless something swapped thread states under it. */
        const struct ms_py_interp *main =
                rt->n_interps ? &rt->interps[0] : NULL;
        for (size_t i = 0; i < rt->n_interps; i++)
                main = rt->interps[i].is_main ? &rt->interps[i] : main;
        if (main && rt->tstate_current && main->gil_holder &&
            rt->tstate_current != main->gil_holder)
                ms_warnings_add(&rt->warnings,
                                "the GIL was taken by thread state 0x%" PRIx64
                                " but the current thread state is 0x%" PRIx64,
                                main->gil_holder, rt->tstate_current);
}

/* ------------------------------------------------------------------------
 * Per-thread state
 * ------------------------------------------------------------------------ */

const char *ms_py_gil_state_name(enum ms_py_gil_state state)
{
        static const char *const names[] = {
                [MS_PY_GIL_NONE] = "none",
                [MS_PY_GIL_HELD] = "held",
                [MS_PY_GIL_WAITING] = "waiting",
                [MS_PY_GIL_RELEASED] = "released",
        };
        return (size_t)state < MS_ARRAY_SIZE(names) ? names[state] : "none";
}

bool ms_py_gil_futex_wait(const struct ms_py_runtime *rt,
                          const struct ms_py_thread *thread, uint64_t futex)
{
        const struct ms_py_layout *l = &rt->layout;
        if (!futex || l->gil_cond < 0 || l->gil_mutex <= l->gil_cond ||
            l->gil_switch_cond <= l->gil_mutex)
                return false;
        for (size_t i = 0; i < rt->n_interps; i++) {
                const struct ms_py_interp *in = &rt->interps[i];
                if (!in->gil_address || in->gil_disabled ||
                    (thread && in->id != thread->interp_id))
                        continue;
                /* cond and mutex are adjacent: [cond, switch_cond). */
                uint64_t lo = in->gil_address + (uint64_t)l->gil_cond;
                uint64_t hi = in->gil_address + (uint64_t)l->gil_switch_cond;
                if (futex >= lo && futex < hi)
                        return true;
        }
        return false;
}

static bool transparent(const char *category)
{
        if (!category)
                return true;
        for (size_t i = 0; i < MS_ARRAY_SIZE(transparent_categories); i++) {
                if (strcmp(category, transparent_categories[i]) == 0)
                        return true;
        }
        return false;
}

/* The gil-acquire frame a thread is blocked in, or SIZE_MAX. */
static size_t acquire_frame(const struct ms_frame *frames, size_t n)
{
        for (size_t i = 0; frames && i < n; i++) {
                const struct ms_frame *f = &frames[i];
                /* Python code above it: the thread runs, it does not wait. */
                if (f->kind == MS_FRAME_PYTHON)
                        return SIZE_MAX;
                if (f->category &&
                    strcmp(f->category, GIL_ACQUIRE_CATEGORY) == 0)
                        return i;
                if (!transparent(f->category))
                        return SIZE_MAX;
        }
        return SIZE_MAX;
}

enum ms_py_gil_state ms_py_thread_gil_state(const struct ms_py_runtime *rt,
                                            const struct ms_py_thread *thread,
                                            const struct ms_frame *frames,
                                            size_t n_frames, size_t *wait_frame)
{
        size_t waiting = acquire_frame(frames, n_frames);
        if (wait_frame)
                *wait_frame = waiting;
        if (!thread)
                return waiting != SIZE_MAX ? MS_PY_GIL_WAITING : MS_PY_GIL_NONE;
        const struct ms_py_interp *in = interp_of(rt, thread->interp_id);
        /* Without a GIL nobody holds it; attaching can still wait (for a
         * stop-the-world pause). */
        bool no_gil = in && in->gil_disabled;
        if (thread->holds_gil && !no_gil)
                return MS_PY_GIL_HELD;
        if (waiting != SIZE_MAX || thread->gil_requested > 0)
                return MS_PY_GIL_WAITING;
        return MS_PY_GIL_RELEASED;
}
