"""deep-interleave: 25 levels of Python -> Rust -> Python, then a crash.

User bug reproduced: recursive callbacks across the language boundary (a Rust
tree walker calling Python visitors that call back into Rust ...). Each
level is a Python function level_N that calls mixsample.descend(N, level_{N-1});
Rust (mixsample::descend_level) calls back into Python. At the bottom,
level_0 calls mixsample.crash_at_bottom which reads address 0x10: real
SIGSEGV core with 25 alternations on one thread.

The level_N functions are made from one template (code.replace(co_name=...)),
so all of them share the same file/lines but have distinct names.

A debugger should show: SIGSEGV at mixsample::segfault_now <-
mixsample::bottom_crash <- crash_at_bottom trampoline <- level_0 <-
mixsample::descend_level <- descend trampoline <- level_1 <- ... <- level_24
<- run <- <module>, with Python and native frames correctly interleaved.
"""
SCENARIO = {"kind": "crash"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()
DEPTH = 24  # levels level_24 .. level_0: 25 Python functions, 24 Rust descents


def on_bottom():
    tid = threading.get_native_id()
    stack = mx.py_stack(sys._getframe(1))
    mx.add_thread(tid, "python-main", stack, holds_gil=True, waits_gil=False,
                  native_expect=mx.native("mixsample::segfault_now",
                                          "mixsample::bottom_crash",
                                          "mixsample::descend_level"))
    mx.write_manifest(
        "crash",
        signal=mx.signal_facts("SIGSEGV"),
        crashed_tid=tid,
        gil_holder_tid=tid,
        fault_address=0x10,
        depth=DEPTH,
        rust_descents=DEPTH,
        expect_crash_frame="mixsample::segfault_now" if not mx.ext_stripped() else None,
        expect_crash_object=mx.os.path.basename(ms.__file__),
    )


def level_template(n):
    if n == 0:
        return ms.crash_at_bottom(on_bottom)
    return ms.descend(n, LEVELS[n - 1])


def _make_level(n):
    code = level_template.__code__
    name = "level_%d" % n
    if sys.version_info >= (3, 11):
        code = code.replace(co_name=name, co_qualname=name)
    else:
        code = code.replace(co_name=name)
    f = type(level_template)(code, level_template.__globals__, name)
    f.__qualname__ = name
    return f


LEVELS = [_make_level(n) for n in range(DEPTH + 1)]


def run():
    return LEVELS[DEPTH](DEPTH)


run()
