"""Benchmark target for scripts/bench (runs under the interpreter measured;
stdlib + the crash samples' `mixsample` extension; Python 3.8+).

    python -E -s -B bench_target.py --ext DIR --threads T --depth D
           [--every K] --ready-fd FD --block-fd FD [--gap-file PATH]

T threads (the main thread is the first) each recurse D Python frames deep:
level(n) calls level(n - 1), and every K-th level goes through Rust instead
(mixsample.descend -> mixsample::descend_level -> level(n - 1)), so the
native stack interleaves Rust (PyO3 trampolines, descend_level) with the
eval loop. At the bottom each thread blocks in Rust (mixsample.block_read,
read(2) on --block-fd with the GIL released) after writing one byte to
--ready-fd. The harness keeps the write end of the block pipe: when it goes
away every thread returns and the process exits.

With --gap-file the process also runs a heartbeat thread that measures how
long it was kept from running: the file holds 3 little-endian doubles
[generation, armed, max_gap_seconds] written by the harness (generation,
armed) and by the heartbeat (max gap, then its own generation in the 4th
double). While armed, the heartbeat spins reading the monotonic clock and
keeps the largest gap between two readings since the last generation change:
a ptrace stop of the process shows up as one gap as long as the stop.
"""
import argparse
import mmap
import os
import struct
import sys
import threading
import time

LAYOUT = struct.Struct("<4d")  # generation, armed, max_gap, seen_generation


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ext", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--ready-fd", type=int, required=True)
    ap.add_argument("--block-fd", type=int, required=True)
    ap.add_argument("--stack-kib", type=int, default=0)
    ap.add_argument("--gap-file")
    args = ap.parse_args()

    sys.path.insert(0, args.ext)
    import mixsample as ms
    ms.die_with_parent()

    depth, every = args.depth, max(1, args.every)
    sys.setrecursionlimit(depth * 3 + 1000)
    if args.stack_kib:
        threading.stack_size(args.stack_kib * 1024)

    def level(n):
        if n <= 0:
            return ms.block_read(args.block_fd, args.ready_fd, None, True)
        if n % every == 0:
            return ms.descend(n, level)
        return level(n - 1)

    # The bottom frame is level(0): with `depth` levels above it counted
    # from depth - 1, the thread has exactly `depth` level frames.
    def deep(i):
        if i:
            ms.set_thread_name("bench-%03d" % i)
        level(depth - 1)

    if args.gap_file:
        threading.Thread(target=heartbeat, args=(args.gap_file,), daemon=True,
                         name="heartbeat").start()
    for i in range(1, args.threads):
        threading.Thread(target=deep, args=(i,), daemon=True).start()
    deep(0)


def heartbeat(path):
    """Spin while armed, keeping the largest gap between clock readings."""
    try:
        import mixsample as ms
        ms.set_thread_name("heartbeat")
    except Exception:
        pass
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, LAYOUT.size)
    clock = time.perf_counter
    unpack, pack_into = LAYOUT.unpack_from, struct.pack_into
    gen = -1.0
    while True:
        g, armed, _, _ = unpack(mm, 0)
        if not armed:
            time.sleep(0.005)
            continue
        if g != gen:
            gen = g
            max_gap = 0.0
            pack_into("<2d", mm, 16, 0.0, gen)
        prev = clock()
        # Check the control words every 2000 iterations (~0.2 ms): cheap,
        # and a change of generation is noticed well before the harness
        # starts the tool it measures (it waits for seen_generation).
        while True:
            for _ in range(2000):
                now = clock()
                if now - prev > max_gap:
                    max_gap = now - prev
                prev = now
            pack_into("<d", mm, 16, max_gap)
            g, armed, _, _ = unpack(mm, 0)
            if g != gen or not armed:
                break


if __name__ == "__main__":
    main()
