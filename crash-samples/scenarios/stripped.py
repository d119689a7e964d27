"""stripped: segfault-in-rust with no symbols anywhere.

Same bug as segfault-in-rust (unsafe Rust reads address 0x10), but run by
Debian's stripped /usr/bin/python3.11 with the *stripped* extension
(strip --strip-all: only .dynsym with PyInit_mixsample remains). Real SIGSEGV
core. The harness runs this scenario only on the Debian interpreter.

A debugger should show: SIGSEGV on the main thread at an address inside
mixsample.abi3.so (no symbol; an offset into the object is the best it can
do), CPython frames reached through exported API names only, and the Python
frames decode_block <- read_archive <- <module> recovered from interpreter
memory (via _PyRuntime in .dynsym), GIL held by the crashing thread.
"""
SCENARIO = {"kind": "crash", "interpreters": "debian", "extension": "stripped"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()


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


def decode_block(data):
    return ms.segfault(on_crash)


def read_archive():
    return decode_block(b"\xff" * 8)


read_archive()
