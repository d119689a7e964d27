"""gil-deadlock: lock-order inversion between the GIL and a Rust Mutex.

User bug reproduced (PyO3 #973 / #4771 family): thread A (the Python main
thread) holds the GIL and calls a Rust function that locks a
`static std::sync::Mutex`; Rust thread B, spawned by Rust, holds that mutex
and calls Python::attach (PyGILState_Ensure -> take_gil). Neither can
proceed: a real hang.

Snapshot (gcore) once both threads are in futex waits.

A debugger should show: thread A (python-main) holding the GIL, native
mixsample::lock_shared_mutex (std Mutex lock_contended / futex wait) under the
PyO3 trampoline of gil_deadlock, Python frames refresh_cache <- serve <-
<module>; thread B "mix-deadlock-b" (Rust, no Python frames) waiting for the
GIL: take_gil <- ... PyGILState_Ensure <- pyo3 attach <-
mixsample::attach_while_holding_mutex <- mixsample::deadlock_thread_b; and
ideally "A holds the GIL, waits for a lock held by B; B waits for the GIL".
"""
SCENARIO = {"kind": "snapshot"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()


def on_b_locked(b_tid, b_name):
    # Called by Rust on thread A after B has locked the mutex, right before
    # A locks it (and B asks for the GIL).
    a_tid = threading.get_native_id()
    mx.add_thread(a_tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False, blocked_in="futex",
                  native_expect=mx.native("mixsample::lock_shared_mutex"),
                  waits_for_lock_held_by=b_tid)
    mx.add_thread(b_tid, "rust-attached", [],
                  holds_gil=False, waits_gil=True, blocked_in="futex",
                  native_expect=mx.native("PyGILState_Ensure",
                                          "mixsample::attach_while_holding_mutex",
                                          "mixsample::deadlock_thread_b"),
                  holds_lock="mixsample::SHARED", rust_thread_name=b_name)
    mx.write_manifest("snapshot", gil_holder_tid=a_tid,
                      deadlock={"gil_holder": a_tid, "mutex_holder": b_tid})


def refresh_cache():
    return ms.gil_deadlock(on_b_locked, mx.READY_FD)


def serve():
    refresh_cache()


serve()
