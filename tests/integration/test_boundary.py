"""The boundary state in mixstack's report of every crash sample, against
the facts each sample recorded about itself (manifest.json): who holds the
GIL and who waits, pending and handled exceptions, Rust panics, the
lifecycle phase, and the diagnoses of hangs."""
import json
from pathlib import Path

import pytest

from clitool import MIXSTACK, run_mixstack

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")


def report(core, *options):
    proc = run_mixstack("core", core, "--json", *options, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def reports(samples):
    return {(a.interp_tag, a.scenario): report(Path(a.dir) / "core")
            for a in samples}


def cells(samples, reports, scenario=None):
    for a in samples:
        if scenario is None or a.scenario == scenario:
            yield a, a.manifest, reports[(a.interp_tag, a.scenario)]


def thread(doc, tid):
    return next(t for t in doc["threads"] if t["tid"] == tid)


def test_gil_holder_and_waiters(samples, reports):
    for a, m, doc in cells(samples, reports):
        where = f"{a.interp_tag}/{a.scenario}"
        holders = [i["gil"]["holder_tid"] for i in doc["interpreters"]
                   if i["gil"] is not None]
        assert holders and holders[0] == m["gil_holder_tid"], (where, holders)
        for mt in m["threads"]:
            state = thread(doc, mt["tid"])["gil"]
            if mt.get("holds_gil"):
                assert state == "held", (where, mt["tid"], state)
            elif mt.get("waits_gil"):
                assert state == "waiting", (where, mt["tid"], state)
            else:
                assert state in ("released", "none"), (where, mt["tid"], state)
            if mt.get("role") == "rust-only":
                assert state == "none", (where, mt["tid"])


def exception_fact(e):
    return None if e is None else {"type": e["type"], "message": e["message"]}


def test_pending_and_handled_exceptions(samples, reports):
    for a, m, doc in cells(samples, reports):
        where = f"{a.interp_tag}/{a.scenario}"
        want = m.get("exception")
        for t in doc["threads"]:
            got = t["exception"]
            if want and t["tid"] == want["tid"]:
                for kind in ("pending", "handled"):
                    w = want[kind] and {"type": want[kind]["type"],
                                        "message": want[kind]["message"]}
                    assert exception_fact(got[kind]) == w, (where, kind, got[kind])
                    if w and w["type"] == "pyo3_runtime.PanicException":
                        assert got[kind]["panic_exception"]
            else:
                assert got["pending"] is None, (where, t["tid"], got)


def test_panic_exception_traceback_ends_in_python(samples, reports):
    """The handled PanicException's traceback passes through the Python
    frame that called into Rust."""
    for a, m, doc in cells(samples, reports, "handled-panic"):
        handled = thread(doc, m["exception"]["tid"])["exception"]["handled"]
        files = {tb["file"] for tb in handled["traceback"]}
        assert any(f.endswith("handled-panic.py") for f in files), handled


def test_abort_in_callback_panic_recovered(samples, reports):
    for a, m, doc in cells(samples, reports, "abort-in-callback"):
        where = f"{a.interp_tag}/{a.scenario}"
        panic = thread(doc, m["panic"]["tid"])["panic"]
        assert panic and panic["panicking"], where
        assert panic["kind"] == "cannot-unwind", where
        assert panic["message"] == m["panic"]["message"], (where, panic)
        assert panic["message_recovered_by"]
        loc = panic["location"]
        assert loc and loc["file"] == m["panic"]["file"], (where, loc)
        assert (loc["line"], loc["column"]) == (m["panic"]["line"],
                                                m["panic"]["col"]), where
        assert panic["site"]["function"].endswith("boom_callback"), where
        mods = [mod for mod in doc["rust"]["modules"]
                if mod["path"].endswith("mixsample.abi3.so")]
        assert mods and mods[0]["global_panic_count"] >= 1, where


def test_no_panic_where_none_happened(samples, reports):
    for a, m, doc in cells(samples, reports):
        if a.scenario in ("abort-in-callback", "exit-crash"):
            continue
        for t in doc["threads"]:
            assert t["panic"] is None, (a.interp_tag, a.scenario, t["tid"])
        for mod in doc["rust"]["modules"]:
            if a.manifest["extension"]["stripped"] and mod["path"].endswith(".abi3.so"):
                assert mod["global_panic_count"] is None
                assert mod["count_unknown_reason"]
            else:
                assert mod["global_panic_count"] in (0, None), (a.scenario, mod)


def test_phase(samples, reports):
    for a, m, doc in cells(samples, reports):
        where = f"{a.interp_tag}/{a.scenario}"
        assert doc["phase"]["phase"] == m["phase"], (where, doc["phase"])
        if m.get("finalizing_step"):
            assert doc["phase"]["finalize_step"] == m["finalizing_step"], where
            assert doc["phase"]["finalizing_tid"] == m["crashed_tid"], where


def test_gil_deadlock_diagnosed(samples, reports):
    for a, m, doc in cells(samples, reports, "gil-deadlock"):
        dead = [d for d in doc["diagnoses"] if d["kind"] == "deadlock"]
        assert dead, (a.interp_tag, doc["diagnoses"])
        want = {m["deadlock"]["gil_holder"], m["deadlock"]["mutex_holder"]}
        assert set(dead[0]["tids"]) == want, (a.interp_tag, dead)


def test_gil_hog_names_holder_and_waiters(samples, reports):
    for a, m, doc in cells(samples, reports, "gil-hog"):
        waiters = {t["tid"] for t in m["threads"] if t.get("waits_gil")}
        found = [d for d in doc["diagnoses"] if d["kind"] == "gil-contention"]
        assert found, (a.interp_tag, doc["diagnoses"])
        assert found[0]["tids"][0] == m["gil_holder_tid"]
        assert set(found[0]["tids"][1:]) == waiters
        assert "hog_spin" in found[0]["message"]


def test_sections(samples):
    a = samples.for_scenario("gil-deadlock")[0]
    core = Path(a.dir) / "core"
    for section, word in (("gil", "GIL"), ("err", "exceptions"),
                          ("panic", "panic"), ("phase", "phase: running"),
                          ("threads", "waiting")):
        proc = run_mixstack(section, core)
        assert proc.returncode in (0, 1), (section, proc.stderr)
        assert word in proc.stdout, (section, proc.stdout)
    proc = run_mixstack("gil", core)
    assert "deadlock" in proc.stdout


def test_reports_follow_the_schema(samples, reports):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" /
                         "mixstack-1.schema.json").read_text())
    for a, m, doc in cells(samples, reports):
        jsonschema.validate(doc, schema)
