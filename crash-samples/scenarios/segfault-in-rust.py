"""segfault-in-rust: unsafe Rust called from Python dereferences a bad pointer.

User bug reproduced: an `unsafe` block in an extension reads through a
dangling/garbage pointer (std::ptr::read_volatile(0x10 as *const u64)).
Real SIGSEGV core: the crashing frame is Rust, its callers are Python.

A debugger should show: SIGSEGV on the main thread at
mixsample::segfault_now (fault address 0x10) <- PyO3 trampoline of segfault
<- CPython eval; Python frames parse_record <- load_records <- <module>; the
GIL held by the crashing thread.
"""
SCENARIO = {"kind": "crash"}

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


def parse_record(buf):
    return ms.segfault(on_crash)


def load_records():
    return parse_record(b"\x00" * 16)


load_records()
