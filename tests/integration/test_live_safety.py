"""mixstack interrupted while it holds a live process: the process runs on.

`mixstack pid` stops every thread of the target with ptrace. Killed with
SIGTERM, SIGINT, SIGHUP or SIGQUIT at any moment (before, during or after
the attach), it must leave the target running and untraced: no thread in
a stop (state t or T), TracerPid 0, and the process still makes progress.
SIGKILL cannot be caught; the kernel detaches the tracees of a dying
tracer itself, which is checked too.

The targets: the crash samples' `many-threads` scenario (64 threads of
Python, Rust attached and Rust-only code) and the benchmark target
(scripts/bench_target.py, 64 threads 50 frames deep) whose heartbeat
thread proves that the process runs after the kill.
"""
import importlib.machinery
import importlib.util
import os
import resource
import shutil
import signal
import subprocess
import time

import pytest

from clitool import MIXSTACK, REPO, task_states

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT]
# Delays after mixstack starts (it attaches after ~10-30 ms of start-up and
# holds a 64-thread process for ~100 ms and more) ...
BLIND_DELAYS = [0.0, 0.005, 0.02, 0.05, 0.1]
# ... and after the first thread is seen traced.
ATTACHED_DELAYS = [0.0, 0.002, 0.01, 0.03]


def _no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _traced(pid):
    try:
        return any(tracer for _, tracer in task_states(pid).values())
    except OSError:
        return False


def assert_running_untraced(pid, what, grace=2.0):
    """Every thread of pid is untraced and not stopped (allowing the kernel
    a moment to finish detaching)."""
    deadline = time.monotonic() + grace
    while True:
        tasks = task_states(pid)
        bad = {tid: st for tid, st in tasks.items() if st[0] in "tT" or st[1] != 0}
        if tasks and not bad:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: target %d left stopped or traced: %s (of %d threads)"
                                 % (what, pid, sorted(bad.items())[:8], len(tasks)))
        time.sleep(0.01)


def interrupt(pid, sig, delay, after_attach=False):
    """Start `mixstack pid`, send sig after delay (counted from the first
    traced thread when after_attach), wait; returns (exit status, whether
    mixstack was attached when the signal went)."""
    proc = subprocess.Popen([str(MIXSTACK), "pid", str(pid)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_no_core)
    attached = False
    if after_attach:
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if _traced(pid):
                attached = True
                break
        if not attached:
            proc.wait(timeout=60)
            return proc.returncode, False
    time.sleep(delay)
    attached = attached or _traced(pid)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("mixstack did not end within 60 s of %s" % sig.name)
    return proc.returncode, attached


@pytest.fixture(scope="module")
def many_threads(samples_harness, interpreters):
    if not MIXSTACK.exists():
        pytest.skip("%s not built" % MIXSTACK)
    tags = [i.tag for i in interpreters]
    interp = next((t for t in tags if "3.12" in t), tags[0] if tags else None)
    if interp is None:
        pytest.skip("no interpreter")
    with samples_harness.live("many-threads", interp) as live:
        yield live.pid


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_interrupted_mixstack_leaves_target_running(many_threads, sig):
    pid = many_threads
    attached_hits = 0
    for after_attach, delays in ((False, BLIND_DELAYS), (True, ATTACHED_DELAYS)):
        for delay in delays:
            rc, attached = interrupt(pid, sig, delay, after_attach)
            attached_hits += attached
            what = "%s %.0f ms after %s" % (sig.name, delay * 1000,
                                           "the attach" if after_attach else "the start")
            # Killed by the signal (re-raised after the detach), or done
            # before it came.
            assert rc in (-sig, 0, 1), "%s: mixstack exit status %s" % (what, rc)
            assert_running_untraced(pid, what)
            os.kill(pid, 0)  # still there
    # The signal did land while threads were held, more than once.
    assert attached_hits >= 3, "only %d interruptions while attached" % attached_hits


def test_sigkill_leaves_target_running(many_threads):
    """SIGKILL: the kernel, not mixstack, detaches; the target runs on."""
    pid = many_threads
    attached_hits = 0
    for delay in ATTACHED_DELAYS:
        rc, attached = interrupt(pid, signal.SIGKILL, delay, after_attach=True)
        attached_hits += attached
        assert rc in (-signal.SIGKILL, 0, 1)
        assert_running_untraced(pid, "SIGKILL %.0f ms after the attach" % (delay * 1000))
    assert attached_hits >= 1


def _bench_module():
    loader = importlib.machinery.SourceFileLoader("mixstack_bench", str(REPO / "scripts" / "bench"))
    spec = importlib.util.spec_from_loader("mixstack_bench", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def heartbeat_target(samples_build, interpreters, tmp_path_factory):
    """scripts/bench_target.py: 64 threads, and a heartbeat thread whose
    clock readings show whether the process runs."""
    if not MIXSTACK.exists():
        pytest.skip("%s not built" % MIXSTACK)
    bench = _bench_module()
    tags = [i for i in interpreters if "3.12" in i.tag] or list(interpreters)
    if not tags:
        pytest.skip("no interpreter")
    work = tmp_path_factory.mktemp("heartbeat")
    ext = work / "ext"
    ext.mkdir()
    shutil.copy2(samples_build.ext, ext / "mixsample.abi3.so")
    target = bench.Target(tags[0].path, ext, 64, 50, 10, work)
    try:
        target.wait_ready()
        yield target
    finally:
        target.stop()


def _makes_progress(target):
    """The heartbeat thread answers a new generation: the process runs."""
    target.arm()  # raises when the heartbeat does not answer in 10 s
    target.disarm()
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_target_makes_progress_after_interrupt(heartbeat_target, sig):
    t = heartbeat_target
    for delay in (0.0, 0.005, 0.02):
        rc, _ = interrupt(t.pid, sig, delay, after_attach=True)
        assert rc in (-sig, 0, 1)
        assert_running_untraced(t.pid, "%s %.0f ms after the attach" % (sig.name, delay * 1000))
        assert _makes_progress(t)


def test_completed_run_leaves_target_running(heartbeat_target):
    """The ordinary case: a full `mixstack pid` detaches and the process
    runs on."""
    t = heartbeat_target
    r = subprocess.run([str(MIXSTACK), "pid", str(t.pid)], capture_output=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert b"level" in r.stdout
    assert_running_untraced(t.pid, "after a complete run")
    assert _makes_progress(t)
