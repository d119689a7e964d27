"""many-threads: 64 threads of every kind, all blocked, nobody holds the GIL.

User situation reproduced: a real service with a thread pool in Python, Rust
worker pools (some attached to the interpreter, some pure Rust) and the main
thread parked in Rust with the GIL released. Checks that a debugger
enumerates every thread, tells Python threads from Rust ones, shows thread
names (Linux comm, 15 chars max) and attaches Python stacks to the right
native threads.

Threads (64 in total):
  1  main          python-main    in mixsample.block_read(detach=True): read(2), GIL released
  14 py-lock-NN    python-worker  threading.Thread blocked in lock.acquire() (futex)
  12 py-rust-NN    python-worker  threading.Thread in mixsample.block_read(detach=True): read(2)
  12 rs-att-py-NN  rust-attached  Rust thread, Python::attach, calls Python attached_block
                                  which blocks in lock.acquire() (futex)
  12 rs-att-det-NN rust-attached  Rust thread, Python::attach, registered, then py.detach
                                  and parks on a condvar (has a tstate, no Python frames)
  13 rs-only-NN    rust-only      Rust thread that never touches Python, parked on a condvar
Snapshot (gcore) once every thread is in its blocking syscall.

A debugger should show: 64 threads with their names; GIL held by nobody;
Python stacks for the 39 threads that have Python frames (main, py-*,
rs-att-py-*) and none for rs-att-det-* / rs-only-*; native frames
mixsample::block_on_pipe, mixsample::attached_call_python,
mixsample::attached_then_detached, mixsample::rust_only_thread /
mixsample::park_forever where listed.
"""
SCENARIO = {"kind": "snapshot"}

import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()

N_PY_LOCK = 14
N_PY_RUST = 12
N_RS_ATT_PY = 12
N_RS_ATT_DET = 12
N_RS_ONLY = 13

BLOCK_LOCK = threading.Lock()
BLOCK_LOCK.acquire()  # never released: everybody who acquires it blocks
registered = threading.Condition()
count = [0]


def _registered():
    with registered:
        count[0] += 1
        registered.notify_all()


def py_lock_worker(name):
    mx.name_this_thread(name)
    mx.add_current_thread("python-worker", marker="BLOCK", blocked_in="futex")
    _registered()
    BLOCK_LOCK.acquire()  #@BLOCK


def py_rust_worker(name):
    mx.name_this_thread(name)

    def on_block():
        mx.add_thread(threading.get_native_id(), "python-worker",
                      mx.py_stack(sys._getframe(1)), blocked_in="read",
                      native_expect=mx.native("mixsample::block_on_pipe"),
                      python_thread_name=name)
        _registered()

    ms.block_read(mx.BLOCK_FD, -1, on_block, True)


def attached_block(tid, name):
    # Runs on a Rust thread that attached with Python::attach.
    assert tid == threading.get_native_id()
    mx.add_current_thread("rust-attached", marker="BLOCK", depth=1, blocked_in="futex",
                          native_expect=mx.native("mixsample::attached_call_python"),
                          rust_thread_name=name)
    _registered()
    BLOCK_LOCK.acquire()  #@BLOCK


def attached_register(tid, name):
    # Runs on a Rust thread that attached; it detaches and parks afterwards,
    # so at snapshot time it has no Python frames.
    assert tid == threading.get_native_id()
    mx.add_thread(tid, "rust-attached", [], blocked_in="futex",
                  native_expect=mx.native("mixsample::attached_then_detached",
                                          "mixsample::park_forever"),
                  rust_thread_name=name, python_thread_name=threading.current_thread().name)
    _registered()


def on_main_block():
    tid = threading.get_native_id()
    mx.add_thread(tid, "python-main", mx.py_stack(sys._getframe(1)),
                  blocked_in="read", native_expect=mx.native("mixsample::block_on_pipe"))
    mx.write_manifest("snapshot", gil_holder_tid=None,
                      expected_thread_count=1 + N_PY_LOCK + N_PY_RUST + N_RS_ATT_PY
                      + N_RS_ATT_DET + N_RS_ONLY)


def wait_registered(n):
    with registered:
        ok = registered.wait_for(lambda: count[0] >= n, timeout=20)
    if not ok:
        raise SystemExit("only %d of %d threads registered" % (count[0], n))


def serve_forever():
    ms.block_read(mx.BLOCK_FD, mx.READY_FD, on_main_block, True)


def start_pools():
    for i in range(N_PY_LOCK):
        name = "py-lock-%02d" % i
        threading.Thread(target=py_lock_worker, args=(name,), name=name, daemon=True).start()
    for i in range(N_PY_RUST):
        name = "py-rust-%02d" % i
        threading.Thread(target=py_rust_worker, args=(name,), name=name, daemon=True).start()
    ms.spawn_attached(N_RS_ATT_PY, "rs-att-py-", attached_block, False)
    ms.spawn_attached(N_RS_ATT_DET, "rs-att-det-", attached_register, True)
    for tid, name in ms.spawn_rust_only(N_RS_ONLY, "rs-only-"):
        mx.add_thread(tid, "rust-only", [], blocked_in="futex",
                      native_expect=mx.native("mixsample::rust_only_thread",
                                              "mixsample::park_forever"),
                      rust_thread_name=name)
    wait_registered(N_PY_LOCK + N_PY_RUST + N_RS_ATT_PY + N_RS_ATT_DET)


def main():
    start_pools()
    serve_forever()


main()
