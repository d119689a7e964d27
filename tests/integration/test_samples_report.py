"""mixstack's report of every crash sample against the facts the sample
recorded about itself (manifest.json): signal, crashing thread and frame,
Rust names demangled, and every thread's Python stack, interleaved with the
native frames where the sample crossed into Rust."""
import json
from pathlib import Path

import pytest

from clitool import MIXSTACK, run_mixstack
from manifest_checks import (check_crash_frame_is_rust, check_deep_interleave,
                             check_native_expectations, check_python_frames_placed,
                             check_python_stacks, check_python_threads_marked,
                             check_signal_and_crashing_thread, expected_python,
                             python_frames, thread_by_tid)

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")


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


def test_signal_and_crashing_thread(samples, reports):
    for a, doc in each_artefact(samples, reports):
        check_signal_and_crashing_thread(a.manifest, doc)


def test_crash_frame_is_rust_and_demangled(samples, reports):
    for a, doc in each_artefact(samples, reports):
        check_crash_frame_is_rust(a.manifest, doc)


def test_native_expectations(samples, reports):
    """Rust functions each thread was known to be in appear on its stack."""
    for a, doc in each_artefact(samples, reports):
        check_native_expectations(a.manifest, doc)


def test_python_stacks_equal_manifest(samples, reports):
    """Function, file, line and order of every Python frame of every thread."""
    checked = sum(check_python_stacks(a.manifest, doc)
                  for a, doc in each_artefact(samples, reports))
    assert checked > 0


def test_python_frames_placed(samples, reports):
    for a, doc in each_artefact(samples, reports):
        check_python_frames_placed(a.manifest, doc)


def test_python_threads_are_marked(samples, reports):
    for a, doc in each_artefact(samples, reports):
        check_python_threads_marked(a.manifest, doc)


def test_deep_interleave_alternates(samples, reports):
    """Python level_N, then Rust, then level_N+1 ... every level in order."""
    for a in samples.for_scenario("deep-interleave"):
        check_deep_interleave(a.manifest, reports[(a.interp_tag, a.scenario)])


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
