"""async-rust-never: a task awaits a Rust future that never completes.

User bug reproduced: `await rust_call()` never returns. The Rust function
turns a Rust future into a Python awaitable with pyo3-async-runtimes
(future_into_py on its tokio runtime); the future waits on a channel whose
sender is kept but never used; a second task awaits a PyO3 `async fn`
waiting on such a channel too. The event loop is idle in its selector, the
tokio workers idle in their parkers: the process looks like threads parked
in epoll_wait and futex. A second task awaits the first.

Snapshot (gcore) once the loop is idle; the truth (every pending task, its
suspended frames from walking cr_await, who awaits whom, which task awaits
a Rust future) is recorded from a loop callback.

A debugger should show task "rust-waiter" suspended in wait_for_rust,
awaiting a Rust future (pyo3-async-runtimes), awaited by "outer", task
"pyo3-waiter" awaiting a PyO3 async fn (a pyo3 Coroutine), and say that
only Rust code can complete them while every tokio thread is idle.
"""
SCENARIO = {"kind": "snapshot"}

import asyncio

import _mixdriver as mx

ms = mx.load_ext()
never = None


async def wait_for_rust():
    return await ms.never_completes()


async def wait_for_pyo3():
    return await ms.never_async()


async def outer(task):
    return await task


async def main():
    global never
    never = asyncio.Event()
    asyncio.current_task().set_name("main")
    loop = asyncio.get_running_loop()
    waiter = loop.create_task(wait_for_rust())
    waiter.set_name("rust-waiter")
    loop.create_task(outer(waiter)).set_name("outer")
    loop.create_task(wait_for_pyo3()).set_name("pyo3-waiter")
    await asyncio.sleep(0.2)
    loop.call_soon(lambda: mx.record_idle_loop(
        loop, rust_futures=("rust-waiter", "pyo3-waiter"),
        expect_diagnoses=["rust-future-stalled"]))
    await never.wait()


asyncio.run(main())
