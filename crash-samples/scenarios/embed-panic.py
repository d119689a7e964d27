"""embed-panic: a Rust program that embeds Python panics between Python frames.

User bug reproduced: a Rust application embeds CPython with PyO3
(`auto-initialize`, linked against the shared libpython3.X); the Python code
it runs calls back into Rust (`mixembed.rust_step`), which calls Python
again, whose next call into Rust panics. The program is built with
`panic = "abort"`: the process aborts (SIGABRT).

Runs as `mixembed embed-panic.py`: scripts/samples builds crash-samples/embed
against each lane interpreter's libpython and runs it in the lane's root.

A debugger should show: the CPython runtime found in libpython3.X.so (the
executable is the Rust program), the main thread from the abort through
mixembed::panic_now <- mixembed::explode, Python frames detonate <- on_step,
Rust mixembed::rust_step, Python frames run_job <- <module>, then the
program's Rust main; the panic message and its location.
"""
SCENARIO = {"kind": "crash", "interpreters": {"lane": True, "jit": False},
            "runner": "embed"}

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mixdriver as mx  # noqa: E402

mixembed = mx.load_embedded()
MESSAGE = "embed-panic: boom 77"


def record_panic(message, file, line, col, tid):
    """Called by the program's panic hook, before the abort."""
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)), holds_gil=True,
                  native_expect=["mixembed::panic_now", "mixembed::rust_step",
                                 "mixembed::main"])
    mx.write_manifest("crash", interpreter=mx.embedded_interpreter_facts(),
                      signal=mx.signal_facts("SIGABRT"), crashed_tid=tid,
                      gil_holder_tid=tid,
                      panic={"message": message, "file": file, "line": line,
                             "col": col, "tid": tid},
                      expect_crash_frame="mixembed::panic_now",
                      expect_crash_object="mixembed")


def detonate():
    mixembed.explode(MESSAGE)


def on_step():
    detonate()


def run_job():
    mixembed.rust_step(on_step)


assert threading.get_native_id() == mixembed.gettid()
mixembed.set_panic_record(record_panic)
run_job()
