"""async-loop-blocked: the event loop thread blocks on a tokio task that needs the GIL.

User bug reproduced: a coroutine calls a synchronous Rust function, which
spawns work on tokio and blocks on it (Runtime::block_on) without
releasing the GIL; the tokio task calls into Python and waits for the GIL
the loop thread holds. Neither goes on, and no task of the loop can run.

Snapshot (gcore) once both threads are in futex waits; the truth is
recorded by the running task itself (Rust calls back right before both
block).

A debugger should show the loop's running task "blocker" in
mixsample::block_on_gil_task, the other tasks pending, the tokio worker
waiting for the GIL in mixsample::tokio_task_needs_gil, and "event loop
blocked in mixsample::..." naming the tasks that cannot progress.
"""
SCENARIO = {"kind": "snapshot"}

import asyncio
import sys
import threading

import _mixdriver as mx

ms = mx.load_ext()


def record(tokio_tid):
    loop = asyncio.get_running_loop()
    me = threading.get_native_id()
    truth = mx.asyncio_truth(loop, running="blocker")
    mx.add_thread(me, "asyncio-loop", mx.py_stack(sys._getframe(1)),
                  holds_gil=True, blocked_in="futex",
                  native_expect=mx.native("mixsample::block_on_gil_task"))
    mx.add_thread(tokio_tid, "tokio-worker", [], waits_gil=True,
                  blocked_in="futex",
                  native_expect=mx.native("mixsample::tokio_task_needs_gil"))
    mx.write_manifest("snapshot", asyncio=truth, gil_holder_tid=me,
                      expect_diagnoses=["loop-blocked"])
    mx.signal_ready()


async def sleeper():
    await asyncio.sleep(3600)


async def blocker():
    ms.loop_blocks_on_tokio(record)


async def main():
    asyncio.current_task().set_name("main")
    loop = asyncio.get_running_loop()
    for i in range(2):
        loop.create_task(sleeper()).set_name("sleeper-%d" % i)
    await asyncio.sleep(0.1)
    t = loop.create_task(blocker())
    t.set_name("blocker")
    await t


asyncio.run(main())
