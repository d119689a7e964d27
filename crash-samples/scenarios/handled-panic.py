"""handled-panic: Rust blocks while a PanicException is being *handled*.

User bug reproduced: Python code catches the PanicException raised by a Rust
panic (it derives from BaseException, so `except BaseException`) and, inside
the except block, calls into Rust again (cleanup/retry), which blocks. The
PanicException is the thread's handled exception (sys.exc_info()), not a
pending one.

Snapshot (gcore) while the main thread sits in read(2) inside the except
block, GIL held.

A debugger should show: main thread, mixsample::block_on_pipe under the PyO3
trampoline of block_read, Python frames validate <- load <- <module> with
validate at the block_read line inside the except block; handled exception
pyo3_runtime.PanicException("handled-panic: invalid record 77"), no pending
exception; GIL held by the main thread.
"""
SCENARIO = {"kind": "snapshot"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()
PANIC_MSG = "handled-panic: invalid record 77"
state = {}


def on_block():
    # Called by Rust (block_read) right before it blocks.
    tid = threading.get_native_id()
    handled = sys.exc_info()[1]
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False, blocked_in="read",
                  native_expect=mx.native("mixsample::block_on_pipe"))
    mx.write_manifest(
        "snapshot",
        gil_holder_tid=tid,
        exception={"tid": tid, "pending": None, "handled": mx.exc_facts(handled)},
        panic=state.get("panic"),
    )


def validate(record):
    try:
        ms.panic_now(PANIC_MSG)
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        state["panic"] = ms.last_panic()
        ms.block_read(mx.BLOCK_FD, mx.READY_FD, on_block, False)


def load():
    validate({"id": 77})


load()
