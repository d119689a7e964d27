"""Checks of one mixstack JSON report against the facts a crash sample
recorded about itself (its manifest.json), whether the report is of the
sample's core (test_samples_report.py, test_boundary.py) or of the live
process (test_live_report.py).

Every check_* function takes (manifest, report document) and asserts; the
messages name the cell as <interpreter tag>/<scenario>."""
import functools
import json
import re
from pathlib import Path

import pytest

RUST_HASH = re.compile(r"::h[0-9a-f]{16}\b")

# Scenarios in which a thread is panicking when the report is made.
PANICKING_SCENARIOS = ("abort-in-callback", "exit-crash")

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "mixstack-1.schema.json"


def where(m):
    return f"{m['interpreter']['tag']}/{m['scenario']}"


def thread_by_tid(doc, tid):
    for t in doc["threads"]:
        if t["tid"] == tid:
            return t
    raise AssertionError(f"thread {tid} missing from the report")


def python_frames(thread):
    return [(f["function"], f["file"], f["line"])
            for f in thread["frames"] if f["kind"] == "python"]


def expected_python(manifest_thread):
    return [(f["function"], f["file"], f["line"])
            for f in manifest_thread.get("python_stack") or []]


def exception_fact(e):
    return None if e is None else {"type": e["type"], "message": e["message"]}


# --- target and threads ------------------------------------------------------

def check_signal_and_crashing_thread(m, doc):
    w = where(m)
    if m["kind"] == "crash":
        assert doc["target"]["signal"] == m["signal"], w
        assert doc["target"]["crashed_tid"] == m["crashed_tid"], w
        assert doc["threads"][0]["tid"] == m["crashed_tid"], w
        assert doc["threads"][0]["crashed"], w
    else:
        assert doc["target"]["signal"] is None, w
    assert doc["target"]["pid"] == m["pid"], w
    assert {t["tid"] for t in doc["threads"]} >= {
        t["tid"] for t in m["threads"]}, w


def check_native_expectations(m, doc):
    """Rust functions each thread was known to be in appear on its stack."""
    if m["extension"]["stripped"]:
        return
    for mt in m["threads"]:
        names = [f["function"] or "" for f in thread_by_tid(doc, mt["tid"])["frames"]]
        for want in mt.get("native_expect") or []:
            assert any(want in n for n in names), (
                f"{where(m)} thread {mt['tid']}", want, names)


def check_python_stacks(m, doc):
    """Function, file, line and order of every Python frame of every
    thread; returns how many threads had a Python stack."""
    w = where(m)
    assert doc["python"] is not None, w
    assert doc["python"]["version"] == m["interpreter"]["version"], w
    checked = 0
    for mt in m["threads"]:
        want = expected_python(mt)
        got = python_frames(thread_by_tid(doc, mt["tid"]))
        assert got == want, (f"{w} thread {mt['tid']}", got, want)
        checked += bool(want)
    return checked


def check_python_frames_placed(m, doc):
    """Every Python frame sits on the native frame that runs it: no thread
    warns that the stacks do not match, no Python frame is left without
    its eval-loop frame, and outer frames run in outer native frames."""
    mismatch = [w for w in doc["warnings"] if "do not match" in w]
    assert not mismatch, (where(m), mismatch)
    for t in doc["threads"]:
        indexes = [f["native_index"] for f in t["frames"] if f["kind"] == "python"]
        assert None not in indexes, (where(m), t["tid"])
        assert indexes == sorted(indexes), (where(m), t["tid"], indexes)


def check_python_threads_marked(m, doc):
    for mt in m["threads"]:
        t = thread_by_tid(doc, mt["tid"])
        w = (where(m), mt["tid"], mt.get("role"))
        if mt.get("python_stack"):
            assert t["python"] and t["interpreter_id"] == 0, w
        if mt.get("role") == "rust-only":
            assert not t["python"], w


# --- boundary state ----------------------------------------------------------

def check_gil_holder_and_waiters(m, doc):
    w = where(m)
    holders = [i["gil"]["holder_tid"] for i in doc["interpreters"]
               if i["gil"] is not None]
    assert holders and holders[0] == m["gil_holder_tid"], (w, holders)
    for mt in m["threads"]:
        state = thread_by_tid(doc, mt["tid"])["gil"]
        if mt.get("holds_gil"):
            assert state == "held", (w, mt["tid"], state)
        elif mt.get("waits_gil"):
            assert state == "waiting", (w, mt["tid"], state)
        else:
            assert state in ("released", "none"), (w, mt["tid"], state)
        if mt.get("role") == "rust-only":
            assert state == "none", (w, mt["tid"])


def check_pending_and_handled_exceptions(m, doc):
    w = where(m)
    want = m.get("exception")
    for t in doc["threads"]:
        got = t["exception"]
        if want and t["tid"] == want["tid"]:
            for kind in ("pending", "handled"):
                wk = want[kind] and exception_fact(want[kind])
                assert exception_fact(got[kind]) == wk, (w, kind, got[kind])
                if wk and wk["type"] == "pyo3_runtime.PanicException":
                    assert got[kind]["panic_exception"], (w, kind)
        else:
            assert got["pending"] is None, (w, t["tid"], got)


def check_handled_panic_traceback(m, doc):
    """The handled PanicException's traceback passes through the Python
    frame that called into Rust."""
    handled = thread_by_tid(doc, m["exception"]["tid"])["exception"]["handled"]
    files = {tb["file"] for tb in handled["traceback"]}
    assert any(f.endswith("handled-panic.py") for f in files), (where(m), handled)


def check_no_panic(m, doc):
    """No thread panicking, no panic counted, where none is under way."""
    for t in doc["threads"]:
        assert t["panic"] is None, (where(m), t["tid"], t["panic"])
    for mod in doc["rust"]["modules"]:
        if m["extension"]["stripped"] and mod["path"].endswith(".abi3.so"):
            assert mod["global_panic_count"] is None, (where(m), mod)
            assert mod["count_unknown_reason"], (where(m), mod)
        else:
            assert mod["global_panic_count"] in (0, None), (where(m), mod)


def check_panic_recovered(m, doc):
    """The panic under way (abort-in-callback): message, location, site
    and the extension's global panic count."""
    w = where(m)
    panic = thread_by_tid(doc, m["panic"]["tid"])["panic"]
    assert panic and panic["panicking"], w
    assert panic["kind"] == "cannot-unwind", w
    assert panic["message"] == m["panic"]["message"], (w, panic)
    assert panic["message_recovered_by"], w
    loc = panic["location"]
    assert loc and loc["file"] == m["panic"]["file"], (w, loc)
    assert (loc["line"], loc["column"]) == (m["panic"]["line"], m["panic"]["col"]), w
    assert panic["site"]["function"].endswith("boom_callback"), w
    mods = [mod for mod in doc["rust"]["modules"]
            if mod["path"].endswith("mixsample.abi3.so")]
    assert mods and mods[0]["global_panic_count"] >= 1, w


def check_phase(m, doc):
    w = where(m)
    assert doc["phase"]["phase"] == m["phase"], (w, doc["phase"])
    if m.get("finalizing_step"):
        assert doc["phase"]["finalize_step"] == m["finalizing_step"], w
        assert doc["phase"]["finalizing_tid"] == m["crashed_tid"], w


# --- diagnoses ---------------------------------------------------------------

def check_gil_deadlock_diagnosed(m, doc):
    dead = [d for d in doc["diagnoses"] if d["kind"] == "deadlock"]
    assert dead, (where(m), doc["diagnoses"])
    want = {m["deadlock"]["gil_holder"], m["deadlock"]["mutex_holder"]}
    assert set(dead[0]["tids"]) == want, (where(m), dead)


def check_gil_hog_diagnosed(m, doc):
    waiters = {t["tid"] for t in m["threads"] if t.get("waits_gil")}
    found = [d for d in doc["diagnoses"] if d["kind"] == "gil-contention"]
    assert found, (where(m), doc["diagnoses"])
    assert found[0]["tids"][0] == m["gil_holder_tid"], (where(m), found)
    assert set(found[0]["tids"][1:]) == waiters, (where(m), found)
    assert "hog_spin" in found[0]["message"], (where(m), found)


# --- the document ------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _schema():
    return json.loads(SCHEMA.read_text())


def check_schema(m, doc):
    """The report follows docs/mixstack-1.schema.json (skips without
    jsonschema)."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, _schema())


# --- asyncio -----------------------------------------------------------------

def check_asyncio(m, doc):
    """The asyncio tasks the sample saw in itself (asyncio_truth in
    _mixdriver: pending tasks, their suspended frames from walking cr_await,
    the task each awaits, who awaits it through gather/TaskGroup, which
    await a Rust future, the running task) are the report's, and the
    diagnoses the scenario expects are made. A sample without asyncio has
    no loop in the report."""
    w = where(m)
    truth = m.get("asyncio")
    loops = doc["asyncio"]
    if truth is None:
        assert loops == [], (w, loops)
        return
    names = {t["id"]: t["name"] for lp in loops for t in lp["tasks"]}
    got = {t["name"]: (lp, t) for lp in loops for t in lp["tasks"]}
    assert set(got) == {t["name"] for t in truth["tasks"]}, (w, sorted(got))
    for want in truth["tasks"]:
        lp, t = got[want["name"]]
        tw = (w, want["name"])
        assert lp["tid"] == truth["loop_tid"], tw
        assert t["state"] == "pending", tw
        frames = [(f["function"], f["file"], f["line"]) for f in t["frames"]]
        assert frames == [(f["function"], f["file"], f["line"])
                          for f in want["frames"]], (tw, frames)
        awaiting = t["awaiting"] or {}
        assert names.get(awaiting.get("task")) == want["awaits_task"], (tw, awaiting)
        assert sorted(names[i] for i in t["awaited_by"]) == sorted(
            want["awaited_by"]), (tw, t["awaited_by"])
        assert (awaiting.get("kind") == "rust-future") == want["rust_future"], (
            tw, awaiting)
        assert t["running"] == want["running"], tw
    running = [names[lp["running_task"]] for lp in loops if lp["running_task"]]
    assert running == ([truth["running_task"]] if truth["running_task"] else []), (
        w, running)
    # The tokio threads the sample saw (by name) are the report's Rust
    # async threads; the worker that waits for the GIL says so.
    if "tokio_tids" in truth:
        threads = {a["tid"]: a for a in doc["async_threads"]}
        # A worker spawned right before the record may not be named yet:
        # it is one of the threads the sample did not describe.
        others = {t["tid"] for t in m["threads"] if t.get("role") == "other"}
        assert set(truth["tokio_tids"]) <= set(threads), (w, threads)
        assert set(threads) <= set(truth["tokio_tids"]) | others, (w, threads)
        for mt in m["threads"]:
            if mt.get("role") == "tokio-worker":
                a = threads[mt["tid"]]
                # Named by its name alone when its stack was cut short.
                cut = thread_by_tid(doc, mt["tid"]).get("unwind_error")
                assert a["role"] == "tokio-worker" or (cut and a["role"] == "tokio"), (
                    w, a, cut)
                assert a["state"] == ("waiting-for-gil" if mt["waits_gil"]
                                      else a["state"]), (w, a)
    kinds = [d["kind"] for d in doc["diagnoses"]]
    for kind in m.get("expect_diagnoses", []):
        assert kind in kinds, (w, kind, doc["diagnoses"])
    for d in doc["diagnoses"]:
        if d["kind"] == "await-cycle":
            assert all(f"'{n}'" in d["message"] for n in m["cycle"]), (w, d)
            assert d["tids"] == [truth["loop_tid"]], (w, d)


# --- the crash frame (also test_lane.py) ---------------------------------------

def check_crash_frame_is_rust(m, doc):
    """The crashing thread's expected native frame: Rust, demangled."""
    if not m.get("expect_crash_frame") or m["extension"]["stripped"]:
        return
    crashed = thread_by_tid(doc, m["crashed_tid"])
    names = [f["function"] or "" for f in crashed["frames"]]
    hits = [f for f in crashed["frames"]
            if (f["function"] or "").endswith(m["expect_crash_frame"])]
    assert hits, (where(m), names)
    assert hits[0]["language"] == "rust", where(m)
    assert hits[0]["raw_symbol"] and hits[0]["raw_symbol"] != hits[0]["function"]
    assert not any(RUST_HASH.search(n) for n in names), (where(m), names)


def check_deep_interleave(m, doc):
    """deep-interleave: Python level_N, then Rust, then level_N+1 ... every
    level in order, a Rust descent between every two."""
    thread = thread_by_tid(doc, m["crashed_tid"])
    kinds = []
    for f in thread["frames"]:
        if f["kind"] == "python" and f["function"].startswith("level_"):
            kinds.append(f["function"])
        elif f["language"] == "rust" and "descend" in (f["function"] or ""):
            if kinds and kinds[-1] != "rust":
                kinds.append("rust")
    want = [f["function"] for f in m["threads"][0]["python_stack"]
            if f["function"].startswith("level_")]
    assert len(want) == m["depth"] + 1, where(m)
    assert [k for k in kinds if k != "rust"] == want, (where(m), kinds)
    for i, k in enumerate(kinds[:-1]):
        assert not (k.startswith("level_") and kinds[i + 1].startswith("level_")), (
            where(m), f"no Rust frame between {k} and {kinds[i + 1]}")


LACKS_STACK = "the core lacks this thread's stack"


def check_stacks_present(m, doc):
    """No thread of a core written in full is said to lack its stack."""
    bad = [t["tid"] for t in doc["threads"] if LACKS_STACK in (t["unwind_error"] or "")]
    assert not bad, (where(m), bad)
