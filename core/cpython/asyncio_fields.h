/*
 * The fields of struct ms_py_async_layout, as an X-macro list:
 *
 *     MS_PY_ASYNC_FIELD(name, "what it is")
 *
 * Offsets (bytes) in the structs the asyncio task reader needs beyond the
 * main layout (layout_fields.h): the _asyncio module's C Future, Task and
 * FutureIter (Modules/_asynciomodule.c, in no installed header), the GC
 * lists the tasks are found in, and generator frames' value stacks.
 * scripts/gen-asyncio-layouts measures them from DWARF. -1: absent.
 *
 * No include guard: it is meant to be included more than once.
 */

/* The GC lists (every Task is a tracked GC object) */
MS_PY_ASYNC_FIELD(rt_gc, "_PyRuntime.gc (3.8; the interpreter's after)")
MS_PY_ASYNC_FIELD(gc_lists,
                  "first gc_generation list in struct _gc_runtime_state")
MS_PY_ASYNC_FIELD(gc_n_lists, "fact: contiguous generation lists there")
MS_PY_ASYNC_FIELD(gc_list_stride, "sizeof(struct gc_generation)")
MS_PY_ASYNC_FIELD(gc_permanent, "permanent_generation")
MS_PY_ASYNC_FIELD(gc_head_size, "sizeof(PyGC_Head), before each object")

/* Generators and coroutines */
MS_PY_ASYNC_FIELD(gen_frame, "PyGenObject.gi_frame (3.8-3.10)")
MS_PY_ASYNC_FIELD(gi_iframe, "PyGenObject.gi_iframe (3.11+; the main layout's "
                             "gen_iframe when it has one)")
MS_PY_ASYNC_FIELD(gi_frame_state, "PyGenObject.gi_frame_state (3.11+)")
MS_PY_ASYNC_FIELD(fo_stacktop, "PyFrameObject.f_stacktop (3.8-3.9)")
MS_PY_ASYNC_FIELD(fo_stackdepth, "PyFrameObject.f_stackdepth (3.10)")
MS_PY_ASYNC_FIELD(fo_valuestack, "PyFrameObject.f_valuestack (3.10)")
MS_PY_ASYNC_FIELD(gen_state_created, "fact: gi_frame_state FRAME_CREATED")
MS_PY_ASYNC_FIELD(gen_state_executing,
                  "fact: gi_frame_state FRAME_EXECUTING (suspended below)")
MS_PY_ASYNC_FIELD(mod_md_dict, "PyModuleObject.md_dict")
MS_PY_ASYNC_FIELD(tp_base, "PyTypeObject.tp_base")
MS_PY_ASYNC_FIELD(func_code, "PyFunctionObject.func_code")
MS_PY_ASYNC_FIELD(func_closure, "PyFunctionObject.func_closure")
MS_PY_ASYNC_FIELD(meth_func, "PyMethodObject.im_func")
MS_PY_ASYNC_FIELD(meth_self, "PyMethodObject.im_self")
MS_PY_ASYNC_FIELD(cell_ref, "PyCellObject.ob_ref")
MS_PY_ASYNC_FIELD(gen_running, "PyGenObject.gi_running (char; 3.8-3.9)")
MS_PY_ASYNC_FIELD(fo_state, "PyFrameObject.f_state (char; 3.10)")

/* The running loop and task of a thread */
MS_PY_ASYNC_FIELD(ts_dict, "PyThreadState.dict (3.8-3.11: holds the "
                           "running loop holder)")
MS_PY_ASYNC_FIELD(ts_asyncio_running_loop,
                  "asyncio_running_loop of the thread state (3.12+)")
MS_PY_ASYNC_FIELD(ts_asyncio_running_task,
                  "asyncio_running_task of the thread state (3.14+)")
MS_PY_ASYNC_FIELD(rlh_loop, "PyRunningLoopHolder.rl_loop (3.8-3.11)")

/* _asyncio.Future / _asyncio.Task */
MS_PY_ASYNC_FIELD(fut_size, "sizeof(FutureObj)")
MS_PY_ASYNC_FIELD(task_size, "sizeof(TaskObj)")
MS_PY_ASYNC_FIELD(fut_loop, "fut_loop")
MS_PY_ASYNC_FIELD(fut_callback0, "fut_callback0: the first done callback")
MS_PY_ASYNC_FIELD(fut_callbacks, "fut_callbacks: list of the others")
MS_PY_ASYNC_FIELD(fut_exception, "fut_exception")
MS_PY_ASYNC_FIELD(fut_result, "fut_result")
MS_PY_ASYNC_FIELD(fut_state, "fut_state (enum, int)")
MS_PY_ASYNC_FIELD(fut_dict, "dict: instance __dict__ (3.8-3.13)")
MS_PY_ASYNC_FIELD(fut_awaited_by, "fut_awaited_by (3.14+)")
MS_PY_ASYNC_FIELD(fut_awaited_by_is_set,
                  "fut_awaited_by_is_set (char; 3.14+): a set, not one")
MS_PY_ASYNC_FIELD(fut_state_cancelled, "fact: STATE_CANCELLED")
MS_PY_ASYNC_FIELD(fut_state_finished, "fact: STATE_FINISHED")
MS_PY_ASYNC_FIELD(task_fut_waiter, "task_fut_waiter: the future it awaits")
MS_PY_ASYNC_FIELD(task_coro, "task_coro")
MS_PY_ASYNC_FIELD(task_name, "task_name (str, or an int before named)")
MS_PY_ASYNC_FIELD(task_node, "task_node: per-thread task list link (3.14+)")
MS_PY_ASYNC_FIELD(fi_future, "futureiterobject.future")
