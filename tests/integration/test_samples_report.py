"""mixstack's report of every crash sample against the facts the sample
recorded about itself (manifest.json): signal, crashing thread and frame,
Rust names demangled, and every thread's Python stack, interleaved with the
native frames where the sample crossed into Rust."""
import json
import re
from pathlib import Path

import pytest

from clitool import MIXSTACK, run_mixstack

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

RUST_HASH = re.compile(r"::h[0-9a-f]{16}\b")


def report(artefact, *options):
    proc = run_mixstack("core", Path(artefact.dir) / "core", "--json", *options,
                        timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def reports(samples):
    """One mixed report per artefact, made once."""
    return {(a.interp_tag, a.scenario): report(a) for a in samples}


def artefact_ids(samples):
    return [f"{a.interp_tag}/{a.scenario}" for a in samples]


def each_artefact(samples, reports):
    for a in samples:
        yield a, reports[(a.interp_tag, a.scenario)]


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


def test_signal_and_crashing_thread(samples, reports):
    for a, doc in each_artefact(samples, reports):
        m = a.manifest
        where = f"{a.interp_tag}/{a.scenario}"
        if m["kind"] == "crash":
            assert doc["target"]["signal"] == m["signal"], where
            assert doc["target"]["crashed_tid"] == m["crashed_tid"], where
            assert doc["threads"][0]["tid"] == m["crashed_tid"], where
            assert doc["threads"][0]["crashed"], where
        else:
            assert doc["target"]["signal"] is None, where
        assert doc["target"]["pid"] == m["pid"], where
        assert {t["tid"] for t in doc["threads"]} >= {
            t["tid"] for t in m["threads"]}, where


def test_crash_frame_is_rust_and_demangled(samples, reports):
    for a, doc in each_artefact(samples, reports):
        m = a.manifest
        if not m.get("expect_crash_frame") or a.manifest["extension"]["stripped"]:
            continue
        where = f"{a.interp_tag}/{a.scenario}"
        crashed = thread_by_tid(doc, m["crashed_tid"])
        names = [f["function"] or "" for f in crashed["frames"]]
        hits = [f for f in crashed["frames"]
                if (f["function"] or "").endswith(m["expect_crash_frame"])]
        assert hits, (where, names)
        assert hits[0]["language"] == "rust", where
        assert hits[0]["raw_symbol"] and hits[0]["raw_symbol"] != hits[0]["function"]
        assert not any(RUST_HASH.search(n) for n in names), (where, names)


def test_native_expectations(samples, reports):
    """Rust functions each thread was known to be in appear on its stack."""
    for a, doc in each_artefact(samples, reports):
        if a.manifest["extension"]["stripped"]:
            continue
        for mt in a.manifest["threads"]:
            names = [f["function"] or "" for f in
                     thread_by_tid(doc, mt["tid"])["frames"]]
            for want in mt.get("native_expect") or []:
                assert any(want in n for n in names), (
                    f"{a.interp_tag}/{a.scenario} thread {mt['tid']}", want, names)


def test_python_stacks_equal_manifest(samples, reports):
    """Function, file, line and order of every Python frame of every thread."""
    checked = 0
    for a, doc in each_artefact(samples, reports):
        assert doc["python"] is not None, f"{a.interp_tag}/{a.scenario}"
        assert doc["python"]["version"] == a.manifest["interpreter"]["version"]
        for mt in a.manifest["threads"]:
            want = expected_python(mt)
            got = python_frames(thread_by_tid(doc, mt["tid"]))
            assert got == want, (f"{a.interp_tag}/{a.scenario} thread {mt['tid']}",
                                 got, want)
            checked += bool(want)
    assert checked > 0


def test_python_threads_are_marked(samples, reports):
    for a, doc in each_artefact(samples, reports):
        for mt in a.manifest["threads"]:
            t = thread_by_tid(doc, mt["tid"])
            where = (a.interp_tag, a.scenario, mt["tid"], mt.get("role"))
            if mt.get("python_stack"):
                assert t["python"] and t["interpreter_id"] == 0, where
            if mt.get("role") == "rust-only":
                assert not t["python"], where


def test_deep_interleave_alternates(samples, reports):
    """Python level_N, then Rust, then level_N+1 ... every level in order."""
    for a in samples.for_scenario("deep-interleave"):
        doc = reports[(a.interp_tag, a.scenario)]
        thread = thread_by_tid(doc, a.manifest["crashed_tid"])
        kinds = []
        for f in thread["frames"]:
            if f["kind"] == "python" and f["function"].startswith("level_"):
                kinds.append(f["function"])
            elif f["language"] == "rust" and "descend" in (f["function"] or ""):
                if kinds and kinds[-1] != "rust":
                    kinds.append("rust")
        levels = [k for k in kinds if k != "rust"]
        want = [f["function"] for f in a.manifest["threads"][0]["python_stack"]
                if f["function"].startswith("level_")]
        assert len(want) == a.manifest["depth"] + 1
        assert levels == want, levels
        # A Rust descent between every two Python levels.
        for i, k in enumerate(kinds[:-1]):
            if k.startswith("level_") and kinds[i + 1].startswith("level_"):
                raise AssertionError(f"no Rust frame between {k} and {kinds[i+1]}")


def test_python_only_and_native_only(samples):
    a = samples.for_scenario("deep-interleave")[0]
    doc = report(a, "--python-only")
    frames = doc["threads"][0]["frames"]
    assert frames and all(f["kind"] == "python" for f in frames)
    doc = report(a, "--native-only")
    frames = doc["threads"][0]["frames"]
    assert frames and all(f["kind"] == "native" for f in frames)
    assert any(f["category"] == "eval-loop" for f in frames)


def test_all_frames_keeps_interpreter_frames(samples, reports):
    a = samples.for_scenario("deep-interleave")[0]
    hidden = reports[(a.interp_tag, a.scenario)]
    shown = report(a, "--all-frames")
    def internal(doc):
        return sum(f["category"] == "cpython-internal"
                   for f in doc["threads"][0]["frames"])
    assert internal(shown) > internal(hidden)
    assert python_frames(shown["threads"][0]) == python_frames(hidden["threads"][0])


def test_stripped_interpreter_and_extension(samples, reports):
    """Debian's stripped python3.11 with the stripped extension: full Python
    stacks, from no debug info at all."""
    cells = samples.for_scenario("stripped")
    if not cells:
        pytest.skip("no stripped artefact (needs /usr/bin/python3.11)")
    for a in cells:
        doc = reports[(a.interp_tag, a.scenario)]
        assert a.manifest["interpreter"]["stripped"]
        for mt in a.manifest["threads"]:
            assert python_frames(thread_by_tid(doc, mt["tid"])) == expected_python(mt)


def test_text_report_shows_python_and_rust(samples):
    a = samples.for_scenario("segfault-in-rust")[0]
    proc = run_mixstack("core", Path(a.dir) / "core")
    assert proc.returncode in (0, 1)
    mt = a.manifest["threads"][0]
    for frame in mt["python_stack"]:
        assert f"{frame['function']} ({frame['file']}:{frame['line']})" in proc.stdout
    assert a.manifest["expect_crash_frame"] in proc.stdout
