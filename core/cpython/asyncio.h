/*
 * asyncio tasks of a CPython runtime and their await graph.
 *
 * Tasks are found where every version keeps them: the GC lists (each
 * _asyncio.Task is a tracked GC object), walked per interpreter, so
 * scheduled, eager and unregistered tasks are all seen with one walk and
 * no reading of WeakSets or module state. For each task: its name and
 * state, the suspended frames of its coroutine chain (the coroutine's
 * frame, then what it awaits: the value-stack top of a suspended frame,
 * followed while it is a coroutine or generator), the future it waits on
 * (task_fut_waiter), and what links it to the tasks that await it through
 * another object (its done callbacks: gather's and shield's closures over
 * the outer future, TaskGroup._on_task_done bound to the group; 3.14+
 * fut_awaited_by). The report derives awaited-by edges from those.
 *
 * Which thread runs which loop: the running loop recorded in each thread
 * state (3.13+ asyncio_running_loop, before in the thread's dict), and the
 * running task is the one whose coroutine frame is on that thread's Python
 * stack.
 *
 * Everything is bounded (objects walked, tasks kept, chain length,
 * callbacks per future); what was cut is counted in left_out and said in
 * a warning.
 */
#ifndef MIXSTACK_CPYTHON_ASYNCIO_H
#define MIXSTACK_CPYTHON_ASYNCIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/cpython.h"

/* GC objects looked at per interpreter, tasks kept per runtime, links of
 * a coroutine chain, callbacks looked at per future. */
#define MS_PY_MAX_GC_OBJECTS (32u << 20)
#define MS_PY_MAX_TASKS 100000
#define MS_PY_MAX_AWAIT_CHAIN 64
#define MS_PY_MAX_CALLBACKS 64
#define MS_PY_MAX_AWAITED_BY 64

enum ms_py_task_state {
        MS_PY_TASK_PENDING,
        MS_PY_TASK_CANCELLED,
        MS_PY_TASK_DONE,
};

/* What a task's coroutine chain ends in. */
enum ms_py_await_kind {
        MS_PY_AWAIT_NONE,        /* ready to run, running, or unknown */
        MS_PY_AWAIT_TASK,        /* another task */
        MS_PY_AWAIT_FUTURE,      /* an asyncio Future (gather's included) */
        MS_PY_AWAIT_RUST_FUTURE, /* a future completed from Rust */
        MS_PY_AWAIT_COROUTINE,   /* a coroutine with no frame to follow */
        MS_PY_AWAIT_OTHER,       /* another awaitable */
};

/* "task", "future", "rust-future", "coroutine", "other"; NULL for NONE. */
const char *ms_py_await_kind_name(enum ms_py_await_kind kind);

struct ms_py_task {
        uint64_t address;
        uint64_t loop;
        char *name;
        enum ms_py_task_state state;
        /* The coroutine chain's suspended frames, innermost first. */
        struct ms_py_tb_frame *frames;
        size_t n_frames;
        /* Its coroutine is executing now (on the loop's thread). */
        bool running;
        enum ms_py_await_kind await_kind;
        /* The object waited on (fut_waiter, or the end of the chain). */
        uint64_t await_object;
        /* "module.Type" of it, or NULL. */
        char *await_type;
        /* What is known of a Rust future: "pyo3-async-runtimes
         * future_into_py", "PyO3 async fn". */
        const char *rust_detail;
        /* Objects through which other tasks await this one: the outer
         * future of gather/shield, the TaskGroup, 3.14+ fut_awaited_by. */
        uint64_t *via;
        size_t n_via;
        /* The TaskGroup whose __aexit__ this task waits in, or 0. */
        uint64_t taskgroup;
        /* Derived: indices of the tasks that await this one. */
        size_t *awaited_by;
        size_t n_awaited_by;
        /* Derived: the index of the task awaited (await_kind TASK), or
         * SIZE_MAX; and of the tasks awaited through await_object (gather
         * children, TaskGroup members). */
        size_t await_task;
        size_t *children;
        size_t n_children;
        /* What could not be read, or NULL. */
        char *error;
};

struct ms_py_event_loop {
        uint64_t address;
        /* The thread running it (0: none or unknown) and its interpreter. */
        pid_t tid;
        int64_t interp_id;
        /* Index of the running task, SIZE_MAX when none. */
        size_t running_task;
        /* Pending tasks are listed; finished ones only counted. */
        size_t n_pending, n_done, n_cancelled;
};

struct ms_py_asyncio {
        struct ms_py_task *tasks;
        size_t n_tasks;
        struct ms_py_event_loop *loops;
        size_t n_loops;
        /* Tasks not listed (past MS_PY_MAX_TASKS) or lists cut short. */
        size_t left_out;
        struct ms_warnings warnings;
};

/*
 * Read the asyncio tasks of rt (its threads already read). A runtime
 * without the _asyncio module's tasks gives an empty result; only running
 * out of memory is an error, the rest are warnings.
 */
struct ms_error *ms_py_asyncio_read(struct ms_target *target,
                                    const struct ms_py_runtime *rt,
                                    struct ms_py_asyncio *ret);
void ms_py_asyncio_deinit(struct ms_py_asyncio *a);

#endif /* MIXSTACK_CPYTHON_ASYNCIO_H */
