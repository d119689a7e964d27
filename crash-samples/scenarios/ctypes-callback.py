"""ctypes-callback: a ctypes callback (a C function pointer made from a
Python function) calls the Rust extension, which dereferences a bad pointer.

User bug reproduced: a program hands C-ABI callbacks to native code with
ctypes (CFUNCTYPE) and calls through them; the Python handler behind one
calls an `unsafe` Rust function that reads 0x10. Real SIGSEGV core. Between
the two Python frames lie ctypes and libffi: _ctypes_callproc, ffi_call,
ffi_call_unix64 (Python calling the function pointer) and
ffi_closure_unix64, closure_fcn, _CallPythonObject (libffi's trampoline
calling back into Python). A stripped interpreter's _ctypes module and
Debian's libffi have no names for most of them.

A debugger should show: SIGSEGV on the main thread at
mixsample::segfault_now <- the segfault trampoline <- on_record <- the
ctypes and libffi frames <- dispatch <- run_handlers <- <module>. A crash
signature leaves out ctypes and libffi (named or not, whatever the libffi
version): the same on every interpreter build.
"""
SCENARIO = {"kind": "crash"}

import ctypes
import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()

HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)


def on_crash():
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False,
                  native_expect=mx.native("mixsample::segfault_now"))
    mx.write_manifest(
        "crash",
        signal=mx.signal_facts("SIGSEGV"),
        crashed_tid=tid,
        gil_holder_tid=tid,
        fault_address=0x10,
        expect_crash_frame="mixsample::segfault_now" if not mx.ext_stripped() else None,
        expect_crash_object=mx.os.path.basename(ms.__file__),
    )


def on_record(n):
    ms.segfault(on_crash)
    return n


def dispatch(handler, n):
    return handler(n)


def run_handlers():
    handler = HANDLER(on_record)
    return dispatch(handler, 7)


run_handlers()
