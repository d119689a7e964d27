"""A target for the frame-placement tests: threads blocked at known Python
stacks, one of them with Python code re-entered from C (repr() calling
__repr__), one spinning in pure Python. Prints its facts as one JSON line
once every thread is in place, then waits to be analysed or killed.

Usage: placement_target.py [--hot]
  --hot: the main thread blocks inside a hot loop (a call to a C function
         that blocks once a pre-filled queue runs dry), so that with
         PYTHON_JIT=1 the blocking call is made from JIT-compiled code;
         the spinner then sleeps in spin() instead of spinning.
"""
import json
import queue
import sys
import threading
import time

started = threading.Barrier(3)


def leaf(worker):
    if worker:
        started.wait()
    time.sleep(3600)


def middle(n, worker=False):
    if n:
        return middle(n - 1, worker)
    return leaf(worker)


class Reentrant:
    def __repr__(self):
        return middle(1, True)


def reenter():
    repr(Reentrant())


progress = [0]
HOT = "--hot" in sys.argv


def spin():
    started.wait()
    while True:
        progress[0] += 1
        if HOT:
            # Left alone, the hot loop owns the GIL: its thread blocks in
            # the queue's get only, never in taking the GIL back.
            time.sleep(3600)


def hot_get(q, i):
    return q.get() + i


def hot_loop(q):
    x = 0
    while True:
        x = hot_get(q, x & 7)


def main():
    tids = {}
    threads = [threading.Thread(target=reenter, name="reenter", daemon=True),
               threading.Thread(target=spin, name="spin", daemon=True)]
    for t in threads:
        t.start()
    started.wait()
    # The spinner is in its loop once it counts; the test waits for the
    # sleepers to be in their system calls.
    while not progress[0]:
        time.sleep(0.01)
    for t in threads:
        tids[t.name] = t.native_id
    tids["main"] = threading.get_native_id()
    print(json.dumps(tids), flush=True)
    if HOT:
        q = queue.SimpleQueue()
        for i in range(300000):
            q.put(i)
        hot_loop(q)
    else:
        middle(2)


main()
