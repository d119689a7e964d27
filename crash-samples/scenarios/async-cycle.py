"""async-cycle: two asyncio tasks await each other, beside a tree of 50 tasks.

User bug reproduced: task "cycle-a" awaits task "cycle-b" while "cycle-b"
awaits "cycle-a" (each was handed the other's Task): neither can ever
finish, and the event loop sits idle in its selector, so the process looks
like one thread parked in epoll_wait. Beside them a task group three
levels deep (a root task, 5 children, 9 grandchildren each: 50 tasks in
groups, asyncio.TaskGroup on 3.11+, gather before) waits on an Event that
is never set.

Snapshot (gcore) once the loop is idle in epoll_wait; the truth (every
pending task, its suspended frames from walking cr_await, who awaits whom)
is recorded from a loop callback, when no task runs.

A debugger should show every task with its await frames, the tree's edges
(children awaited by their parent), and "await cycle: cycle-a awaits
cycle-b awaits cycle-a" as a deadlock.
"""
SCENARIO = {"kind": "snapshot"}

import asyncio

import _mixdriver as mx

ms = mx.load_ext()
HAS_TASKGROUP = hasattr(asyncio, "TaskGroup")
tasks = {}
parents = {}
never = None


async def cycle_a():
    await asyncio.sleep(0)
    await tasks["cycle-b"]


async def cycle_b():
    await asyncio.sleep(0)
    await tasks["cycle-a"]


async def leaf():
    await never.wait()


async def group(level, name):
    me = asyncio.current_task()
    n = 5 if level == 0 else 9
    names = ["%s.%d" % (name, i) for i in range(n)]
    for c in names:
        parents[c] = [me.get_name()]
    if level == 1:
        coros = [leaf() for _ in names]
    else:
        coros = [group(level + 1, c) for c in names]
    if HAS_TASKGROUP:
        async with asyncio.TaskGroup() as tg:
            for c, coro in zip(names, coros):
                tg.create_task(coro, name=c)
    else:
        loop = asyncio.get_running_loop()
        children = []
        for c, coro in zip(names, coros):
            children.append(loop.create_task(coro))
            children[-1].set_name(c)
        await asyncio.gather(*children)


async def main():
    global never
    never = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks["cycle-a"] = loop.create_task(cycle_a())
    tasks["cycle-b"] = loop.create_task(cycle_b())
    tasks["cycle-a"].set_name("cycle-a")
    tasks["cycle-b"].set_name("cycle-b")
    asyncio.current_task().set_name("main")
    root = loop.create_task(group(0, "tree"))
    root.set_name("tree")
    await asyncio.sleep(0.2)
    loop.call_soon(lambda: mx.record_idle_loop(
        loop, awaited_by=parents, expect_diagnoses=["await-cycle"],
        cycle=["cycle-a", "cycle-b"]))
    await never.wait()


asyncio.run(main())
