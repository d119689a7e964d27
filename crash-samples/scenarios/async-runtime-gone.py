"""async-runtime-gone: a task awaits a Rust future whose runtime was shut down.

User bug reproduced: a library made its own tokio runtime, returned a
pyo3-async-runtimes awaitable (generic future_into_py on that runtime) and
then shut the runtime down (dropped with the library's handle): the task
that completes the Python future is gone with it, so `await` never
returns. No tokio thread is left in the process.

Snapshot (gcore) once the loop is idle; the truth is recorded from a loop
callback after the runtime's shutdown returned.

A debugger should show task "orphan" awaiting a Rust future and say that
no tokio runtime thread is left to complete it.
"""
SCENARIO = {"kind": "snapshot"}

import asyncio

import _mixdriver as mx

ms = mx.load_ext()
never = None


async def wait_for_rust():
    return await ms.doomed_future()


async def main():
    global never
    never = asyncio.Event()
    asyncio.current_task().set_name("main")
    loop = asyncio.get_running_loop()
    loop.create_task(wait_for_rust()).set_name("orphan")
    await asyncio.sleep(0.2)
    ms.shutdown_doomed_runtime()
    await asyncio.sleep(0.05)
    loop.call_soon(lambda: mx.record_idle_loop(
        loop, rust_futures=("orphan",),
        expect_diagnoses=["rust-future-stalled"], tokio_threads_left=0))
    await never.wait()


asyncio.run(main())
