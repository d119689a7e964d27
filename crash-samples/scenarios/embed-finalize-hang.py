"""embed-finalize-hang: a Rust program hangs finalizing the Python it embeds.

User bug reproduced: a Rust application embeds CPython with PyO3 and, on its
way out, calls Py_FinalizeEx from Rust; an atexit handler the Python side
registered calls back into Rust, which waits forever (here: read(2) on a pipe
nobody writes to) with the GIL held. The program never exits.

Runs as `mixembed embed-finalize-hang.py` (scripts/samples: the program built
against each lane interpreter's libpython, in the lane's root). Snapshot
(gcore) once the main thread sits in read(2).

A debugger should show: the runtime found in libpython3.X.so, the lifecycle
phase "finalizing" in its atexit step, the main thread holding the GIL in
mixembed::block_on_pipe <- mixembed::block_read under the Python frame
flush_and_close, below it Py_FinalizeEx and the program's Rust main.
"""
SCENARIO = {"kind": "snapshot", "interpreters": {"lane": True, "jit": False},
            "runner": "embed"}

import atexit
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mixdriver as mx  # noqa: E402

mixembed = mx.load_embedded()


def record():
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)), holds_gil=True,
                  blocked_in="read",
                  native_expect=["mixembed::block_on_pipe", "mixembed::block_read",
                                 "mixembed::main"])
    mx.write_manifest("snapshot", interpreter=mx.embedded_interpreter_facts(),
                      gil_holder_tid=tid, phase="finalizing", finalizing_step="atexit",
                      sys_is_finalizing=sys.is_finalizing())


def flush_and_close():
    mixembed.block_read(record, mx.BLOCK_FD, mx.READY_FD)


def start():
    atexit.register(flush_and_close)


start()
