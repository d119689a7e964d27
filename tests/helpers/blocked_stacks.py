"""A Python process with known stacks, for reading from a core dump.

    python3.X blocked_stacks.py EXPECTED

The main thread runs <module> -> f1 (called from C, through map()) ->
C.f2 -> f3, which blocks reading stdin; a worker thread runs w1 -> w2,
which blocks reading a pipe. Right before the main thread blocks, the
script writes what a reader must find to EXPECTED and prints READY:

    version <sys.version split at the first space> <hex of sys.hexversion>
    thread <native tid> <pthread ident> <main|worker> <n frames>
    frame <E|N|?> <line> <function> <qualname or -> <file>

Frames are innermost first. E/N: the frame must / must not be an entry
frame (the first frame of a _PyEval_EvalFrameDefault call); ?: not
checked. When stdin closes, the script releases the worker and exits.
"""
import os
import sys
import threading
import time
import traceback

EXPECTED = sys.argv[1]
V311 = sys.version_info >= (3, 11)
worker_r, worker_w = os.pipe()
worker_tid = [None]


def marker_line(marker):
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if line.rstrip().endswith("# " + marker):
                return i
    raise SystemExit("no marker " + marker)


def w2():
    worker_tid[0] = threading.get_native_id()
    os.read(worker_r, 1)  # BLOCK-WORKER


def w1():
    w2()


def entry_flags(names, main):
    """Which frames start a new eval call (innermost first)."""
    if not V311:
        return ["E"] * len(names)
    if not main:
        # The thread's first frame is run from C (thread_run/t_bootstrap).
        return ["?"] * (len(names) - 1) + ["E"]
    known = {"f3": "N", "f2": "N", "f1": "E", "<module>": "E"}
    return [known.get(n, "?") for n in names]


def describe(frame, top_line, main):
    stack = traceback.extract_stack(frame)[::-1]
    codes = []
    f = frame
    while f is not None:
        codes.append(f.f_code)
        f = f.f_back
    lines = []
    names = [s.name for s in stack]
    for i, (s, co, e) in enumerate(zip(stack, codes, entry_flags(names, main))):
        line = top_line if i == 0 else s.lineno
        qual = co.co_qualname if V311 else "-"
        lines.append("frame %s %d %s %s %s" % (e, line, s.name, qual, s.filename))
    return lines


def write_expected(main_line):
    worker_line = marker_line("BLOCK-WORKER")
    frames = sys._current_frames()
    out = ["version %s %x" % (sys.version.split()[0], sys.hexversion)]
    me = threading.get_ident()
    for t in threading.enumerate():
        main = t.ident == me
        # For this thread, start at f3 (the caller), not in here.
        frame = sys._getframe(1) if main else frames[t.ident]
        lines = describe(frame, main_line if main else worker_line, main)
        tid = threading.get_native_id() if main else worker_tid[0]
        out.append("thread %d %d %s %d" % (tid, t.ident, "main" if main else "worker",
                                          len(lines)))
        out += lines
    with open(EXPECTED + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.rename(EXPECTED + ".tmp", EXPECTED)


def wait_for_worker(t):
    # The worker must be inside its blocking read (its frame on that line)
    # before its stack is recorded.
    line = marker_line("BLOCK-WORKER")
    for _ in range(1000):
        f = sys._current_frames().get(t.ident)
        if worker_tid[0] and f is not None and f.f_lineno == line:
            return
        time.sleep(0.01)
    raise SystemExit("worker did not block")


def f3():
    write_expected(marker_line("BLOCK-MAIN"))
    print("READY", flush=True)
    os.read(0, 1)  # BLOCK-MAIN


class C:
    def f2(self):
        f3()


def f1(_):
    C().f2()


worker = threading.Thread(target=w1, daemon=True)
worker.start()
wait_for_worker(worker)
list(map(f1, [0]))
os.write(worker_w, b"x")
worker.join()
