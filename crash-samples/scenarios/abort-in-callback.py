"""abort-in-callback: a panic inside an `extern "C"` callback aborts the process.

User bug reproduced: Rust code hands an `extern "C" fn` to a C-style API
(here: called through a function pointer by mixsample::call_extern_callback);
the callback panics; a panic cannot unwind out of an extern "C" function, so
Rust aborts (core::panicking::panic_cannot_unwind -> "panic in a function
that cannot unwind" -> std::process::abort). Real SIGABRT core. The panic
message lives only in memory (and on stderr, which test runners often drop).

A debugger should show: SIGABRT on the main thread; native frames abort <-
std::process::abort ... <- core::panicking::panic_cannot_unwind <-
mixsample::boom_callback <- mixsample::call_extern_callback <- PyO3
trampoline of abort_in_callback <- CPython eval; Python frames
run_callbacks <- main <- <module>; the panic message
"abort-in-callback: boom 4242" and its location src/lib.rs:line:col.
"""
SCENARIO = {"kind": "crash"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()


def on_panic(panic):
    # Called from the Rust panic hook, before the unwind hits the extern "C"
    # boundary and the process aborts.
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False,
                  native_expect=mx.native("panic_cannot_unwind",
                                          "mixsample::boom_callback",
                                          "mixsample::call_extern_callback"))
    mx.write_manifest(
        "crash",
        signal=mx.signal_facts("SIGABRT"),
        crashed_tid=tid,
        gil_holder_tid=tid,
        panic=dict(panic),
        expect_crash_frame="mixsample::boom_callback" if not mx.ext_stripped() else None,
        expect_crash_object=mx.os.path.basename(ms.__file__),
    )


def run_callbacks(x):
    return ms.abort_in_callback(x, on_panic)


def main():
    run_callbacks(4242)


main()
