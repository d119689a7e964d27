"""mixstack's report of live crash samples (`mixstack pid PID --json`)
against the facts each sample process recorded about itself (manifest.json),
the same facts test_samples_report.py and test_boundary.py check in the
reports of the samples' cores: every thread's Python stack (function, file,
line, order) and the Rust functions it is in, the GIL holder and waiters,
pending and handled exceptions, no panic under way, the lifecycle phase and
the diagnoses of hangs.

Every snapshot scenario runs live once per interpreter (the harness's live
mode starts it and waits until it is blocked in its known state), and
mixstack reports on it once. mixstack must leave the process as it found
it: alive, TracerPid 0, no thread in a tracing stop.

While it runs, this machine's gdb and lldb (19) with the plugins attach to
it too, one after the other, and their `mixstack report --json` is checked
for the same facts (views gdb-live and lldb-live; the target is then what
the debugger attached to), and the process left running and untraced after
each detached: every snapshot scenario on every interpreter.
test_lane.py does the same with the lane's gdb 18 and lldb-22.
"""
import collections
import json
import os
from pathlib import Path

import pytest

import debugger_batch
from clitool import MIXSTACK, run_mixstack, task_states
from interp_slots import SLOT_IDS, interp_or_skip, resolve
from manifest_checks import (PANICKING_SCENARIOS, check_asyncio,
                             check_gil_deadlock_diagnosed,
                             check_gil_hog_diagnosed, check_gil_holder_and_waiters,
                             check_handled_panic_traceback, check_native_expectations,
                             check_no_panic, check_pending_and_handled_exceptions,
                             check_phase, check_python_frames_placed,
                             check_python_stacks,
                             check_python_threads_marked, check_schema,
                             check_signal_and_crashing_thread)
from samples_lib import harness as H

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

SNAPSHOTS = sorted(name for name, sc in H.scenarios().items()
                   if sc.meta["kind"] == "snapshot")

# manifest, the parsed report (None when mixstack failed), why it failed,
# and the state of the process right after mixstack ended.
Cell = collections.namedtuple("Cell", "manifest doc error after")


def check_live_target(m, doc):
    assert doc["target"]["kind"] == "pid", doc["target"]
    check_signal_and_crashing_thread(m, doc)


def check_python_stacks_present(m, doc):
    assert check_python_stacks(m, doc) > 0


# The facts of every snapshot sample, as the core tests check them ...
FACTS = [check_live_target, check_python_stacks_present, check_python_frames_placed,
         check_python_threads_marked,
         check_native_expectations, check_gil_holder_and_waiters,
         check_pending_and_handled_exceptions, check_no_panic, check_phase,
         check_schema, check_asyncio]
# The same when a debugger reports: its target is what it attached to.
DEBUGGER_FACTS = [check_signal_and_crashing_thread if c is check_live_target else c
                  for c in FACTS]
# ... and those of one scenario.
SCENARIO_FACTS = {
    "handled-panic": [check_handled_panic_traceback],
    "gil-deadlock": [check_gil_deadlock_diagnosed],
    "gil-hog": [check_gil_hog_diagnosed],
}


def marks(scenario):
    """The async samples live are left to the plain pass: the sanitizer
    pass checks the asyncio reader on their cores (test_asyncio.py)."""
    return [pytest.mark.slow] if scenario.startswith("async-") else []


def fact_cells():
    for slot in SLOT_IDS:
        for sc in SNAPSHOTS:
            for check in FACTS + SCENARIO_FACTS.get(sc, []):
                if check is check_no_panic and sc in PANICKING_SCENARIOS:
                    continue
                name = check.__name__[len("check_"):].replace("_", "-")
                yield pytest.param(slot, sc, check, id=f"{slot}-{sc}-{name}",
                                   marks=marks(sc))


def target_state(pid):
    """Whether pid is alive, its TracerPid line and {tid: (state, TracerPid)}."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        tasks = task_states(pid)
    except OSError:
        return {"alive": False, "tracer_line": None, "tasks": {}}
    tracer = next((line for line in status.splitlines()
                   if line.startswith("TracerPid:")), None)
    return {"alive": H.pid_alive(pid), "tracer_line": tracer, "tasks": tasks}


class LiveReports:
    """One `mixstack pid --json` per (interpreter, scenario), made on first
    use, while the sample runs."""

    def __init__(self, build_info, debuggers=()):
        self.build_info = build_info
        self.cache = {}
        # {(interp tag, scenario)} to attach the debuggers to, and what
        # they reported: {(debugger, tag, scenario): (document or None,
        # error, the target's state after the debugger detached)}.
        self.debuggers = set(debuggers)
        self.debugger_docs = {}

    def __call__(self, slot, scenario, need_report=True):
        it = interp_or_skip(slot)
        if not H.applicable(H.scenarios()[scenario], it):
            pytest.skip(f"{scenario} does not run on {it.tag}")
        key = (it.tag, scenario)
        if key not in self.cache:
            self.cache[key] = self._run(it, scenario)
        cell = self.cache[key]
        if cell.manifest is None or (need_report and cell.doc is None):
            pytest.fail(cell.error)
        return cell

    def while_live(self, it, scenario, live):
        """The debuggers attach to the running sample, one after the
        other."""
        if not self.wants_debuggers(it, scenario):
            return
        for name in DEBUGGERS:
            if self.debugger_missing(name):
                continue
            doc, error = self.attach(name, live)
            self.debugger_docs[(name, it.tag, scenario)] = (doc, error, target_state(live.pid))

    def wants_debuggers(self, it, scenario):
        return (it.tag, scenario) in self.debuggers

    def debugger_missing(self, name):
        """Why debugger `name` cannot run here, or None."""
        from test_debuggers import Gdb, Lldb
        return (Gdb() if name == "gdb" else Lldb()).available()

    def attach(self, name, live):
        """(document or None, error) of `mixstack report --json` in
        debugger `name` attached to the live sample."""
        from test_debuggers import GDB_PLUGIN, LLDB_PLUGIN, _lldb_host, sanitizer_env
        env = {k: v for k, v in os.environ.items() if k != "MIXSTACK_LIB"}
        env.update(sanitizer_env())
        tool, plugin = ("gdb", GDB_PLUGIN) if name == "gdb" else (_lldb_host(), LLDB_PLUGIN)
        return debugger_batch.run_debugger(name, tool, plugin, [("live", live.pid)],
                                           timeout=180, env=env)["live"]

    def debugger(self, name, slot, scenario):
        """The manifest, debugger name's report of the live sample and the
        sample's state after the debugger detached."""
        why = self.debugger_missing(name)
        if why:
            pytest.skip(why)
        cell = self(slot, scenario, need_report=False)
        it = interp_or_skip(slot)
        got = self.debugger_docs.get((name, it.tag, scenario))
        if got is None:
            pytest.fail(f"{name} did not attach to {it.tag}/{scenario}: {cell.error}")
        doc, error, after = got
        if doc is None:
            pytest.fail(f"{name} on live {it.tag}/{scenario}: {error}")
        assert doc["target"]["kind"] == "debugger", doc["target"]
        return cell.manifest, doc, after

    def _run(self, it, scenario):
        where = f"{it.tag}/{scenario}"
        try:
            with H.live(scenario, it, build_info=self.build_info) as live:
                proc = run_mixstack("pid", live.pid, "--json", timeout=120)
                after = target_state(live.pid)
                self.while_live(it, scenario, live)
        except H.HarnessError as e:
            return Cell(None, None, f"{where}: the sample did not start: {e}", None)
        if proc.returncode not in (0, 1):
            return Cell(live.manifest, None,
                        f"{where}: mixstack pid exit {proc.returncode}: "
                        f"{proc.stderr[-2000:]}", after)
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            return Cell(live.manifest, None,
                        f"{where}: mixstack pid --json printed no JSON ({e}): "
                        f"{proc.stdout[:500]!r} {proc.stderr[-2000:]}", after)
        return Cell(live.manifest, doc, None, after)


DEBUGGERS = ("gdb", "lldb")
# The debuggers see every snapshot scenario on every interpreter found
# (about 15 s per interpreter on 2 cores).
def debugger_scenarios(slot):
    return SNAPSHOTS


def debugger_cells():
    """The debugger views: slow (the sanitizer pass checks the library
    live through the CLI, and gdb on a live sample in test_debuggers.py;
    lldb cannot load its build)."""
    for name in DEBUGGERS:
        for slot in SLOT_IDS:
            for sc in debugger_scenarios(slot):
                for check in DEBUGGER_FACTS + SCENARIO_FACTS.get(sc, []):
                    if check is check_no_panic and sc in PANICKING_SCENARIOS:
                        continue
                    short = check.__name__[len("check_"):].replace("_", "-")
                    yield pytest.param(f"{name}-live", slot, sc, check, marks=pytest.mark.slow,
                                       id=f"{name}-live-{slot}-{sc}-{short}")


@pytest.fixture(scope="module")
def live_reports(request, samples_build):
    # The debuggers attach only when a test of theirs was selected.
    mine = [i for i in request.session.items if Path(str(i.fspath)) == Path(__file__)
            and getattr(i, "originalname", "").startswith("test_debugger_")]
    wanted = set()
    if mine:
        for slot in SLOT_IDS:
            it = resolve(slot)
            if it is not None:
                wanted |= {(it.tag, sc) for sc in debugger_scenarios(slot)}
    return LiveReports(samples_build, debuggers=wanted)


@pytest.mark.parametrize("slot,scenario", [
    pytest.param(slot, sc, id=f"{slot}-{sc}", marks=marks(sc))
    for slot in SLOT_IDS for sc in SNAPSHOTS])
def test_target_left_running(live_reports, slot, scenario):
    """After `mixstack pid`: alive, untraced, no thread stopped, every
    thread the sample listed still there."""
    cell = live_reports(slot, scenario, need_report=False)
    after = cell.after
    assert after["alive"], "the target died under mixstack"
    assert after["tracer_line"] == "TracerPid:\t0", after["tracer_line"]
    held = {tid: st for tid, st in after["tasks"].items()
            if st[0] in "tT" or st[1] != 0}
    assert not held, f"threads left stopped or traced: {sorted(held.items())[:8]}"
    assert set(after["tasks"]) >= {t["tid"] for t in cell.manifest["threads"]}


@pytest.mark.parametrize("slot,scenario,check", list(fact_cells()))
def test_report_matches_manifest(live_reports, slot, scenario, check):
    cell = live_reports(slot, scenario)
    check(cell.manifest, cell.doc)


@pytest.mark.parametrize("view,slot,scenario,check", list(debugger_cells()))
def test_debugger_live_report_matches_manifest(live_reports, view, slot, scenario, check):
    """`mixstack report --json` in this machine's gdb / lldb-19 attached
    to the running sample."""
    m, doc, _ = live_reports.debugger(view.split("-")[0], slot, scenario)
    check(m, doc)


@pytest.mark.slow
@pytest.mark.parametrize("debugger,slot,scenario", [
    pytest.param(d, slot, sc, id=f"{d}-{slot}-{sc}")
    for d in DEBUGGERS for slot in SLOT_IDS for sc in debugger_scenarios(slot)])
def test_debugger_left_target_running(live_reports, debugger, slot, scenario):
    """After the debugger detached: alive, untraced, no thread stopped,
    every thread the sample listed still there."""
    m, _, after = live_reports.debugger(debugger, slot, scenario)
    assert after["alive"] and after["tracer_line"] == "TracerPid:\t0", after
    assert not {t: s for t, s in after["tasks"].items() if s[0] in "tT" or s[1]}
    assert set(after["tasks"]) >= {t["tid"] for t in m["threads"]}
