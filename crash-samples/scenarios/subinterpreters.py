"""subinterpreters: threads running Python in subinterpreters with their own GIL.

User bug reproduced: a program spreads work over subinterpreters
(concurrent.interpreters, PEP 734; each with its own GIL, PEP 684) next to
a PyO3 extension used from the main interpreter (PyO3 modules cannot be
imported in subinterpreters). One subinterpreter's thread runs Python for
ever (holding that interpreter's GIL), another subinterpreter's thread waits
in read(2), and the main thread blocks in Rust holding the main GIL: the
program hangs, and which interpreter each thread is in decides what is
going on.

Snapshot (gcore) once the waiting thread and the main thread sit in read(2).

A debugger should show: the threads grouped by interpreter (0, and the two
subinterpreters' ids), each interpreter's own GIL holder -- the main thread
for interpreter 0, the spinning thread for its subinterpreter, nobody for
the waiting one's --, and the Python frames of the threads running in the
subinterpreters (spin / wait in _subinterp_worker.py under the <script>
that started them), the main thread in mixsample::block_on_pipe under its
Python frames.
"""
SCENARIO = {"kind": "snapshot", "interpreters": {"min_version": "3.14", "lane": True}}

import json
import os
import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()

import concurrent.interpreters as ci  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CODE = ("import sys; sys.path.insert(0, %r)\n"
        "import _subinterp_worker as w\n"
        "w.%s\n")


def start(interp, call):
    t = threading.Thread(target=interp.exec, args=(CODE % (HERE, call),), daemon=True)
    t.start()
    return t


def record():
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)), holds_gil=True,
                  blocked_in="read", interpreter_id=0,
                  native_expect=mx.native("mixsample::block_on_pipe"))
    interps = [{"id": 0, "gil_holder_tid": tid}]
    for sub, facts in SUBS:
        interps.append({"id": sub.id, "gil_holder_tid":
                        facts["tid"] if facts["holds_gil"] else None})
    mx.write_manifest("snapshot", gil_holder_tid=tid, interpreters=interps)


def serve():
    ms.block_read(mx.BLOCK_FD, mx.READY_FD, record)


SUBS = []


def main():
    q = ci.create_queue()
    busy, idle = ci.create(), ci.create()
    for sub in (busy, idle):
        sub.prepare_main(q=q)
    start(busy, "spin(q)")
    start(idle, "wait(q, %d)" % mx.BLOCK_FD)
    for _ in range(2):
        facts = json.loads(q.get(timeout=20))
        sub = busy if facts["interpreter_id"] == busy.id else idle
        SUBS.append((sub, dict(facts)))
        mx.add_thread(facts.pop("tid"), facts.pop("role"), facts.pop("python_stack"),
                      waits_gil=False, **facts)
    serve()


main()
