"""The boundary state in mixstack's report of every crash sample, against
the facts each sample recorded about itself (manifest.json): who holds the
GIL and who waits, pending and handled exceptions, Rust panics, the
lifecycle phase, and the diagnoses of hangs."""
import json
from pathlib import Path

import pytest

from clitool import MIXSTACK, run_mixstack
from manifest_checks import (PANICKING_SCENARIOS, check_gil_deadlock_diagnosed,
                             check_gil_hog_diagnosed, check_gil_holder_and_waiters,
                             check_handled_panic_traceback, check_no_panic,
                             check_panic_recovered, check_pending_and_handled_exceptions,
                             check_phase, check_schema)

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


def test_gil_holder_and_waiters(samples, reports):
    for a, m, doc in cells(samples, reports):
        check_gil_holder_and_waiters(m, doc)


def test_pending_and_handled_exceptions(samples, reports):
    for a, m, doc in cells(samples, reports):
        check_pending_and_handled_exceptions(m, doc)


def test_panic_exception_traceback_ends_in_python(samples, reports):
    for a, m, doc in cells(samples, reports, "handled-panic"):
        check_handled_panic_traceback(m, doc)


def test_abort_in_callback_panic_recovered(samples, reports):
    for a, m, doc in cells(samples, reports, "abort-in-callback"):
        check_panic_recovered(m, doc)


def test_no_panic_where_none_happened(samples, reports):
    for a, m, doc in cells(samples, reports):
        if a.scenario not in PANICKING_SCENARIOS:
            check_no_panic(m, doc)


def test_phase(samples, reports):
    for a, m, doc in cells(samples, reports):
        check_phase(m, doc)


def test_gil_deadlock_diagnosed(samples, reports):
    for a, m, doc in cells(samples, reports, "gil-deadlock"):
        check_gil_deadlock_diagnosed(m, doc)


def test_gil_hog_names_holder_and_waiters(samples, reports):
    for a, m, doc in cells(samples, reports, "gil-hog"):
        check_gil_hog_diagnosed(m, doc)


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
    for a, m, doc in cells(samples, reports):
        check_schema(m, doc)
