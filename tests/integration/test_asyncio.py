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


def test_tasks_of_cores_match_manifests(samples):
    for a in async_artefacts(samples):
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
