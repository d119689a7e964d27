"""pending-panic: a Rust panic converted to a *pending* PanicException.

User bug reproduced: a #[pyfunction] wraps fallible Rust code in
std::panic::catch_unwind, turns the panic into pyo3_runtime.PanicException and
stores it as the thread's pending error (PyErr::restore), then does more work
(here: a blocking read of a pipe, with the GIL held) before returning to
Python. A hang/crash at that moment leaves a thread whose exception state says
"PanicException pending" although no Python code is running.

Snapshot (gcore) while the main thread sits in read(2), GIL held.

A debugger should show: main thread, native frames
mixsample::block_on_pipe <- mixsample::hold_pending_panic <- the PyO3
trampoline of pending_panic <- CPython eval, interleaved with the Python
frames transform <- process_batch <- <module>; the pending exception
pyo3_runtime.PanicException("pending-panic: boom 1234 in transform") on that
thread; the GIL held by that thread; the original panic location
(src/lib.rs line/col of raise_rust_panic) if it can be found in memory.
"""
SCENARIO = {"kind": "snapshot"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()
PANIC_MSG = "pending-panic: boom 1234 in transform"


def on_panic_caught(exc, panic):
    # Called by Rust right before PyErr::restore + the blocking read.
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False, blocked_in="read",
                  native_expect=mx.native("mixsample::hold_pending_panic",
                                          "mixsample::block_on_pipe"))
    mx.write_manifest(
        "snapshot",
        gil_holder_tid=tid,
        exception={"tid": tid, "pending": mx.exc_facts(exc), "handled": None},
        panic=dict(panic) if panic else None,
    )


def transform(values):
    return ms.pending_panic(PANIC_MSG, mx.BLOCK_FD, mx.READY_FD, on_panic_caught)


def process_batch():
    return transform([1, 2, 3])


process_batch()
