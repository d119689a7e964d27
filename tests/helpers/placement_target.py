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
import mmap
import os
import queue
import struct
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


def build_id(path):
    """The GNU build-id of an ELF file, as hex, or None."""
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset = struct.unpack_from("<IIQ", data, phoff + i * phentsize)
        p_filesz, = struct.unpack_from("<Q", data, phoff + i * phentsize + 32)
        pos, end = p_offset, p_offset + p_filesz
        while p_type == 4 and pos + 12 <= min(end, len(data)):
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            desc = pos + 12 + ((namesz + 3) & ~3)
            if ntype == 3 and data[pos + 12:pos + 15] == b"GNU":
                return data[desc:desc + descsz].hex()
            pos = desc + ((descsz + 3) & ~3)
    return None


def map_debug_file():
    """Map the interpreter's debug file whole, as Rust's panic backtrace
    does (a non-PIE executable's debug file then sits in the address space
    away from the addresses it describes)."""
    bid = build_id(os.path.realpath(sys.executable))
    path = bid and f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"
    if not path or not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)


def main():
    mapped = map_debug_file()  # noqa: F841 (kept mapped)
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
