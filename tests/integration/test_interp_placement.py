"""Python frames placed on the native frames that run them, from what the
interpreter records on the C stack (entry frames, _PyCFrames), on Debian
unstable's stripped PGO+LTO python3.13/3.14/3.15, where nothing on the
native stack is named like the eval loop. The target (tests/helpers/
placement_target.py) runs inside the lane's root (scripts/lane); mixstack
analyses it from the host, live and from a kernel core (--sysroot).

Facts come from the target: its threads' native ids (printed by it) and
the Python stacks its code builds; nothing is taken from mixstack's output.
About 3 s per interpreter.
"""
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitool import REPO, report_json

LANE = REPO / "scripts" / "lane"
TARGET = REPO / "tests" / "helpers" / "placement_target.py"

# Innermost first: the target's own frames (threading's below them vary).
EXPECT = {
    "main": ["leaf", "middle", "middle", "middle", "main", "<module>"],
    "reenter": ["leaf", "middle", "middle", "__repr__", "reenter"],
    "spin": ["spin"],
}
EXPECT_HOT = ["hot_get", "hot_loop", "main", "<module>"]


def lane_root():
    if not os.access(LANE, os.X_OK):
        return None
    root = subprocess.run([str(LANE), "path"], capture_output=True,
                          text=True).stdout.strip()
    return Path(root) if root else None


def interpreter(name):
    root = lane_root()
    if root is None or not (root / "usr" / "bin" / name).exists():
        pytest.skip(f"no {name} in the lane's root (scripts/lane root)")
    return root


def _core_limit():
    resource.setrlimit(resource.RLIMIT_CORE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


class Target:
    """The placement target running in the lane's root."""

    def __init__(self, python, workdir, hot=False, jit=False, host=None):
        env = dict(os.environ, PYTHON_JIT="1" if jit else "0")
        # chroot(8) changes to /: back to workdir, where the core goes.
        argv = [str(LANE), "run", "/bin/sh", "-c",
                'cd "$1" && shift && exec /usr/bin/env "$@"', "sh",
                str(workdir), f"PYTHON_JIT={env['PYTHON_JIT']}", python,
                str(TARGET)] + (["--hot"] if hot else [])
        if host:  # an interpreter of this machine, with its options
            argv = host + [str(TARGET)]
        self.proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.PIPE,
                                     text=True, env=env, preexec_fn=_core_limit)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            pytest.fail(f"{python} target printed nothing")
        self.tids = json.loads(line)
        self.workdir = Path(workdir)
        self.pid = self.tids["main"]
        wait_syscall(self.pid, self.tids["reenter"], (CLOCK_NANOSLEEP,))
        # The main thread blocks in time.sleep, or in the queue's get once
        # the hot loop ran it dry.
        wait_syscall(self.pid, self.pid, (FUTEX,) if hot else (CLOCK_NANOSLEEP,))

    def kill_for_core(self):
        os.kill(self.pid, signal.SIGABRT)
        self.proc.wait(timeout=60)
        for name in (f"core.{self.pid}", "core"):
            if (self.workdir / name).exists():
                return self.workdir / name
        return None

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        # -X perf's map of its trampolines.
        Path(f"/tmp/perf-{self.pid}.map").unlink(missing_ok=True)


def wait_syscall(pid, tid, numbers, timeout=30):
    """Wait until thread tid of pid sleeps in one of the system calls."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            nr = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0]
        except (OSError, IndexError):
            nr = ""
        if nr in numbers:
            return
        time.sleep(0.05)
    pytest.fail(f"thread {tid} not in a system call {numbers}")


CLOCK_NANOSLEEP, FUTEX = "230", "202"


def thread_by_tid(doc, tid):
    for t in doc["threads"]:
        if t["tid"] == tid:
            return t
    raise AssertionError(f"no thread {tid} in the report")


def check_thread(doc, tid, expect, reentered=None):
    warnings = [w for w in doc.get("warnings", [])
                if f"thread {tid}:" in w and "do not match" in w]
    assert not warnings, warnings
    frames = thread_by_tid(doc, tid)["frames"]
    python = [(i, f) for i, f in enumerate(frames) if f["kind"] == "python"]
    names = [f["function"] for _, f in python]
    assert names[:len(expect)] == expect, names
    # Every Python frame is run by a native frame, outer ones by outer ones.
    indexes = [f["native_index"] for _, f in python]
    assert None not in indexes, names
    assert indexes == sorted(indexes), indexes
    # Placed, not appended: native frames (the thread's start) lie below.
    last_python = python[-1][0]
    assert any(f["kind"] == "native" for f in frames[last_python + 1:]), names
    if reentered:
        inner, outer = reentered
        by_name = {f["function"]: f["native_index"] for _, f in python}
        assert by_name[inner] < by_name[outer]


def check_report(doc, tids, hot=False):
    check_thread(doc, tids["main"], EXPECT_HOT if hot else EXPECT["main"])
    check_thread(doc, tids["reenter"], EXPECT["reenter"],
                 reentered=("__repr__", "reenter"))
    check_thread(doc, tids["spin"], EXPECT["spin"])


def live_then_core(python, workdir, check, hot=False, jit=False):
    """Check a live report of the target, then one of its kernel core."""
    root = interpreter(python)
    target = Target(python, workdir, hot=hot, jit=jit)
    try:
        _, doc = report_json("pid", target.pid, "--all-frames")
        check(doc, target)
        core = target.kill_for_core()
    finally:
        target.close()
    if core is None:
        pytest.skip("no kernel core (core_pattern)")
    _, doc = report_json("core", core, "--sysroot", root, "--all-frames")
    check(doc, target)


@pytest.mark.parametrize("python", ["python3.13", "python3.14", "python3.15"])
def test_placed_live_and_core(python, tmp_path):
    live_then_core(python, tmp_path,
                   lambda doc, target: check_report(doc, target.tids))


def jit_frames(doc, tid):
    return [f for f in thread_by_tid(doc, tid)["frames"]
            if f["kind"] == "native" and f.get("module") == "[jit]"]


def check_jit(doc, target):
    check_report(doc, target.tids, hot=True)
    assert jit_frames(doc, target.pid)


@pytest.mark.parametrize("python", ["python3.14", "python3.15"])
def test_jit(python, tmp_path):
    """PYTHON_JIT=1, the main thread blocked in a C call made from a hot
    loop's JIT-compiled trace: the stack goes on through the JIT code
    (shown as [jit] frames) to the eval loop and the process's start, and
    the Python frames stay exact and placed."""
    live_then_core(python, tmp_path, check_jit, hot=True, jit=True)


def pyenv_python(minor):
    found = sorted(Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/python3.{minor}"))
    return found[-1] if found else None


@pytest.mark.parametrize("minor", [12, 13])
def test_perf_trampolines(minor, tmp_path):
    """-X perf (3.12+) puts a generated trampoline between eval calls:
    anonymous code without CFI, unwound like JIT code, the Python frames
    placed around it."""
    python = pyenv_python(minor)
    if python is None:
        pytest.skip(f"no pyenv 3.{minor}")
    target = Target(None, tmp_path, host=[str(python), "-X", "perf"])
    try:
        _, doc = report_json("pid", target.pid, "--all-frames")
        check_report(doc, target.tids)
        assert jit_frames(doc, target.pid)
    finally:
        target.close()
