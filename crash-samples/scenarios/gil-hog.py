"""gil-hog: Rust computes for a long time without releasing the GIL.

User bug reproduced: a #[pyfunction] runs a long CPU-bound loop without
Python::detach (allow_threads), so every other Python thread starves waiting
for the GIL (symptom: "my threads don't run while Rust works").

Three Python threads (py-gil-waiter-1..3) loop on time.sleep(); once the main
thread enters mixsample.gil_hog they all end up blocked in take_gil. Snapshot
(gcore) once the three are in futex waits.

A debugger should show: the main thread holding the GIL and running
mixsample::hog_spin under the PyO3 trampoline of gil_hog, Python frames
crunch_numbers <- main <- <module>; three waiter threads waiting for the GIL
(take_gil <- PyEval_RestoreThread after the sleep) with Python frames
waiter <- Thread.run <- Thread._bootstrap_inner <- Thread._bootstrap.
"""
SCENARIO = {"kind": "snapshot"}

import sys
import threading
import time

import _mixdriver as mx

ms = mx.load_ext()
N_WAITERS = 3


def waiter(i, started):
    mx.name_this_thread("py-gil-waiter-%d" % i)
    mx.add_current_thread("python-worker", marker="WAIT", holds_gil=False,
                          waits_gil=True, blocked_in="futex")
    started.release()
    while True: time.sleep(0.0005)  #@WAIT


def on_hog_start():
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, waits_gil=False, blocked_in=None,
                  native_expect=mx.native("mixsample::hog_spin"))
    mx.write_manifest("snapshot", gil_holder_tid=tid)


def crunch_numbers():
    return ms.gil_hog(on_hog_start, mx.READY_FD, 120.0)


def main():
    started = []
    for i in range(1, N_WAITERS + 1):
        lk = threading.Lock()
        lk.acquire()
        t = threading.Thread(target=waiter, args=(i, lk), name="py-gil-waiter-%d" % i, daemon=True)
        t.start()
        started.append(lk)
    for lk in started:
        lk.acquire()
    crunch_numbers()


main()
