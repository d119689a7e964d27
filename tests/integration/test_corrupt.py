"""mixstack on corrupted cores: a bounded, deterministic subset of the corpus
of scripts/corrupt-cores (see docs/robustness.md for the long run).

Every variant must give exit 0/1 with a report (valid JSON with --json) or
exit 2 with a one-line error, never a signal, a sanitizer report or a hang
(--json for each, the text report for every fourth, --exhaustive --json for
every fifth, gdb with the plugin for every tenth).
With MIXSTACK_BUILD_DIR pointing at the ASan + UBSan build, sanitizer
reports (leaks included) are failures too. A failure names the variant;
reproduce it with

    scripts/corrupt-cores generate --out /tmp/v --interp TAG --scenario NAME \\
        --per-source N --seed 0      # then look for the id in /tmp/v/index.json
"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import corrupt_lib as cl  # noqa: E402
from clitool import BUILD, MIXSTACK  # noqa: E402

SANITIZED = cl.is_sanitized(BUILD)
# Whole CI budget: ~300 variants (--json each, the text report for every
# fourth), two at a time.
SOURCES = [
    ("cpython-3.12", "deep-interleave", 70),
    ("cpython-3.8", "gil-deadlock", 60),
    ("cpython-3.11.2-debian", "stripped", 50),
    ("cpython-3.13", "abort-in-callback", 60),
    ("cpython-3.10", "pending-panic", 40),
]
NATIVE_VARIANTS = 30
TIMEOUT = 60.0 if SANITIZED else 10.0
JOBS = 2


def _artefact(samples, interp_part, scenario):
    for a in samples.for_scenario(scenario):
        if interp_part in a.interp_tag:
            return a
    return None


def _check(source, variants, tmp_path, text_every=4, exhaustive_every=5, gdb_every=0,
           gdb_problem=None):
    failures = []

    def one(job):
        n, v = job
        path = v.materialize(source, tmp_path / ("v%d.core" % n))
        try:
            res = {"json": cl.run_cli(str(MIXSTACK), path, True, TIMEOUT)}
            if n % text_every == 0:
                res["text"] = cl.run_cli(str(MIXSTACK), path, False, TIMEOUT)
            if n % exhaustive_every == 0:
                res["exhaustive"] = cl.run_cli(str(MIXSTACK), path, True, TIMEOUT,
                                               ["--exhaustive"])
            if gdb_every and not gdb_problem and n % gdb_every == 0:
                res["gdb"] = cl.run_gdb(BUILD, source.executable, path, 3 * TIMEOUT)
        finally:
            os.unlink(path)
        bad = ["%s: %s" % (k, r["problem"][:1500]) for k, r in res.items() if r.get("problem")]
        if bad:
            failures.append("%s (%s):\n    %s" % (v.id, v.what, "\n    ".join(bad)))
        return res

    with ThreadPoolExecutor(max_workers=JOBS) as ex:
        results = list(ex.map(one, enumerate(variants)))
    assert not failures, "%d of %d variants failed:\n%s" % (
        len(failures), len(variants), "\n".join(sorted(failures)))
    return results


@pytest.fixture(scope="module")
def gdb_problem():
    if SANITIZED:
        return "gdb cannot load the ASan-instrumented libmixstack.so"
    return cl.gdb_plugin_problem(BUILD)


@pytest.mark.parametrize("interp,scenario,count", SOURCES,
                         ids=["%s-%s" % (i, s) for i, s, _ in SOURCES])
def test_corrupted_sample_cores(samples, interp, scenario, count, tmp_path, gdb_problem):
    if not MIXSTACK.exists():
        pytest.skip("%s not built" % MIXSTACK)
    a = _artefact(samples, interp, scenario)
    if a is None:
        pytest.skip("no %s artefact for %s" % (scenario, interp))
    source = cl.Source("%s:%s" % (a.interp_tag, scenario), Path(a.dir) / "core",
                       a.manifest["interpreter"]["path"])
    assert "stack" in source.regions
    if scenario != "stripped":
        # The interpreter's data is what the variants aim at: it must be found.
        assert "runtime" in source.regions and "heap1.0" in source.regions, source.describe()
    variants = cl.variants(source, seed=0, per_source=count)
    assert len({v.kind for v in variants}) == len(cl.KINDS)
    results = _check(source, variants, tmp_path, gdb_every=10, gdb_problem=gdb_problem)
    # The corpus is not all rejected outright: most variants still give a report.
    reports = sum(1 for r in results if r["json"]["rc"] in (0, 1))
    assert reports >= len(results) // 2, "only %d of %d variants gave a report" % (
        reports, len(results))


def test_corrupted_native_demo_core(tmp_path, gdb_problem):
    if not MIXSTACK.exists():
        pytest.skip("%s not built" % MIXSTACK)
    try:
        sid, core, exe = cl.native_demo_source(REPO / "build" / "corrupt")
    except Exception as e:
        pytest.skip("no native demo core: %s" % e)
    source = cl.Source(sid, core, executable=exe)
    variants = cl.variants(source, seed=0, per_source=NATIVE_VARIANTS)
    _check(source, variants, tmp_path, gdb_every=5, gdb_problem=gdb_problem)


def test_variants_are_deterministic(samples):
    a = _artefact(samples, "cpython-3.12", "deep-interleave") or (samples[0] if samples else None)
    if a is None:
        pytest.skip("no crash samples")
    make = lambda: cl.Source("x:y", Path(a.dir) / "core", a.manifest["interpreter"]["path"])  # noqa: E731
    one = [(v.id, v.patches, v.truncate) for v in cl.variants(make(), seed=3, per_source=40)]
    two = [(v.id, v.patches, v.truncate) for v in cl.variants(make(), seed=3, per_source=40)]
    assert one == two
    other = [(v.id, v.patches, v.truncate) for v in cl.variants(make(), seed=4, per_source=40)]
    assert one != other
    # Every variant changes the core.
    with open(Path(a.dir) / "core", "rb") as f:
        for vid, patches, truncate in one:
            if truncate is not None:
                continue
            changed = False
            for off, data in patches:
                f.seek(off)
                if f.read(len(data)) != data:
                    changed = True
                    break
            assert changed or not patches, vid


def test_run_command_summary(samples, tmp_path):
    """The CLI's `run` on a handful of variants: a summary with no failure."""
    if not MIXSTACK.exists():
        pytest.skip("%s not built" % MIXSTACK)
    a = _artefact(samples, "cpython-3.12", "deep-interleave")
    if a is None:
        pytest.skip("no 3.12 deep-interleave artefact")
    import subprocess
    out = tmp_path / "results.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "corrupt-cores"), "run",
                        "--interp", a.interp_tag, "--scenario", "deep-interleave",
                        "--no-native", "--per-source", "8", "--gdb-every", "0",
                        "--jobs", "2", "--results", str(out)],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, MIXSTACK_BUILD_DIR=str(BUILD)))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(out.read_text())["summary"]
    assert summary["variants"] == 8 and summary["failed"] == 0
