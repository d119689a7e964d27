"""asyncio tasks in reports of the async crash samples' cores
(async-rust-never, async-loop-blocked, async-cycle, async-runtime-gone)
against what each sample recorded about its own tasks (manifest.json:
names, suspended frames from walking cr_await, who awaits whom, which
await a Rust future, the running task, the diagnoses expected). The same
facts are checked in the live reports by test_live_report.py."""
import json
from pathlib import Path

import pytest

from clitool import MIXSTACK, run_mixstack
from manifest_checks import check_asyncio, check_schema

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

ASYNC = ("async-rust-never", "async-loop-blocked", "async-cycle",
         "async-runtime-gone")


def async_artefacts(samples):
    cells = [a for sc in ASYNC for a in samples.for_scenario(sc)]
    assert cells, "no async sample was produced"
    return cells


def core_report(artefact, command="core"):
    proc = run_mixstack(command, Path(artefact.dir) / "core", "--json",
                        timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_tasks_of_cores_match_manifests(samples):
    """Every async sample on every interpreter (the sanitizer pass runs
    the one-interpreter test below instead)."""
    for a in async_artefacts(samples):
        doc = core_report(a)
        check_asyncio(a.manifest, doc)
        check_schema(a.manifest, doc)


def test_tasks_of_one_interpreter_match_manifests(samples):
    """Each async sample on one interpreter, the newest found."""
    for sc in ASYNC:
        cells = samples.for_scenario(sc)
        if not cells:
            continue
        a = max(cells, key=lambda c: c.manifest["interpreter"]["hexversion"])
        doc = core_report(a)
        check_asyncio(a.manifest, doc)
        check_schema(a.manifest, doc)


def test_tasks_command_text(samples):
    """`mixstack tasks CORE` names every task, what it awaits and where it
    is suspended, for people."""
    for a in samples.for_scenario("async-rust-never"):
        proc = run_mixstack("tasks", Path(a.dir) / "core", timeout=120)
        assert proc.returncode in (0, 1), proc.stderr
        out = proc.stdout
        for t in a.manifest["asyncio"]["tasks"]:
            assert f"'{t['name']}'" in out, out
        assert "awaits a Rust future (pyo3-async-runtimes" in out, out
        assert "wait_for_rust (" in out, out


def test_tasks_command_json_is_the_document(samples):
    a = samples.for_scenario("async-cycle")[0]
    doc = core_report(a, "tasks")
    check_asyncio(a.manifest, doc)


def _cycle_sample(samples):
    cells = samples.for_scenario("async-cycle")
    if not cells:
        pytest.skip("no async-cycle sample")
    return cells[0]


def _check_tasks_text(a, out):
    for t in a.manifest["asyncio"]["tasks"]:
        assert f"'{t['name']}'" in out, out[-3000:]
    assert "await cycle" in out and "'cycle-a'" in out, out[-3000:]


def test_gdb_tasks(samples):
    """`mixstack tasks` in gdb on a core: the library's tasks section."""
    from test_debuggers import Gdb
    gdb = Gdb()
    if gdb.available():
        pytest.skip(gdb.available())
    a = _cycle_sample(samples)
    exe = a.manifest["interpreter"]["realpath"]
    out, = gdb.run(["mixstack tasks"], exe=exe, core=Path(a.dir) / "core")
    _check_tasks_text(a, out)


def test_lldb_tasks(samples):
    """`mixstack tasks` in lldb on a core."""
    from test_debuggers import Lldb
    lldb = Lldb()
    if lldb.available():
        pytest.skip(lldb.available())
    a = _cycle_sample(samples)
    exe = a.manifest["interpreter"]["realpath"]
    out, = lldb.run(["mixstack tasks"], exe=exe, core=Path(a.dir) / "core")
    _check_tasks_text(a, out)


def _patched_core(a, tmp_path, name, address, value):
    """A copy of a's core with the 8 bytes at address set to value."""
    import shutil
    import struct
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import corrupt_lib as cl
    src = Path(a.dir) / "core"
    off = cl.Core(str(src)).vaddr_to_offset(address, 8)
    assert off is not None, hex(address)
    out = tmp_path / name
    shutil.copyfile(src, out)
    with open(out, "r+b") as f:
        f.seek(off)
        f.write(struct.pack("<Q", value))
    return out


@pytest.mark.parametrize("damage", ["self-loop", "unmapped"])
def test_damaged_task_list_gives_a_bounded_answer(samples, tmp_path, damage):
    """A GC list that loops back on a task, or leads to unmapped memory:
    the task walk ends, says so in a warning, lists no task twice, and
    keeps the tasks found before the damage."""
    a = _cycle_sample(samples)
    full = core_report(a, "tasks")
    tasks = [t for lp in full["asyncio"] for t in lp["tasks"]]
    victim = next(t for t in tasks if t["name"] == "tree.2")
    # Every tracked object is preceded by its PyGC_Head, whose first word
    # is the next object's header (16 bytes, GIL builds 3.8-3.15).
    head = int(victim["id"], 16) - 16
    value = head if damage == "self-loop" else 0x7ff0deadbee0
    core = _patched_core(a, tmp_path, damage, head, value)
    proc = run_mixstack("tasks", core, "--json", timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    names = [t["name"] for lp in doc["asyncio"] for t in lp["tasks"]]
    assert len(names) == len(set(names)), names
    assert "tree.2" in names and len(names) <= len(tasks)
    word = "loops" if damage == "self-loop" else "is broken"
    assert any(f"GC list {word}" in w for w in doc["warnings"]), doc["warnings"]
