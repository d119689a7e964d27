"""exit-crash: a Rust abort during interpreter finalization (atexit).

User bug reproduced: an atexit handler (or a Drop at teardown) calls into an
extension that aborts: "my program crashes at exit". The handler calls
mixsample.exit_abort, which prints a message and calls
std::process::abort(). Real SIGABRT core, taken inside Py_FinalizeEx while it
runs the atexit callbacks (after wait_for_thread_shutdown, before the runtime
"finalizing" tstate is set).

A debugger should show: SIGABRT on the main thread; abort <-
mixsample::abort_now <- PyO3 trampoline of exit_abort <- CPython eval <-
atexit_callfuncs / _PyAtExit_Call <- Py_FinalizeEx (3.13: _Py_Finalize,
Py_FinalizeEx tail-calls it); the single Python frame
flush_native_cache (called from C, no <module> frame below it); phase
"finalizing (atexit)" (3.12+: interp->finalizing == 1, runtime finalizing
tstate still NULL).
"""
SCENARIO = {"kind": "crash"}

import atexit
import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()
MSG = "exit-crash: aborting in atexit handler flush_native_cache"


def on_abort():
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False,
                  native_expect=mx.native("mixsample::abort_now", "Py_Finalize"))
    mx.write_manifest(
        "crash",
        signal=mx.signal_facts("SIGABRT"),
        crashed_tid=tid,
        gil_holder_tid=tid,
        phase="finalizing",
        finalizing_step="atexit",
        sys_is_finalizing=sys.is_finalizing(),
        abort_message=MSG,
        expect_crash_frame="mixsample::abort_now" if not mx.ext_stripped() else None,
        expect_crash_object=mx.os.path.basename(ms.__file__),
    )


def flush_native_cache():
    ms.exit_abort(MSG, on_abort)


def main():
    atexit.register(flush_native_cache)
    return 0


main()
