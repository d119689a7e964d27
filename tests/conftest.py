"""Shared pytest fixtures for mixstack's tests.

Crash samples (see crash-samples/README.md):

  interpreters     session: [Interp(tag, path, version, hexversion, origin)]
                   every CPython 3.8-3.13 found (Debian, pyenv, $MIXSTACK_EXTRA_PYTHONS)
                   on this machine (runnable here by path)
  lane_interpreters session: [Interp] Debian unstable's 3.13-3.15 (and -jit) in the
                   test lane's root (scripts/lane); they run chrooted there
                   (Interp.root), their cores need harness.analysis_options()
  samples_build    session: BuildInfo(ext, ext_stripped, ..., pyo3_version)
  samples          session: the scenario x interpreter matrix (interpreters), produced once per
                   session (and reused across sessions through the artefact cache):
                   a SampleIndex, i.e. a list of Artefact(interp_tag, scenario, dir,
                   manifest) with helpers .get(interp_tag, scenario),
                   .for_scenario(name), .for_interp(tag) and .errors
                   ({(interp_tag, scenario): message} for cells that failed).
  lane_samples     session: the same for lane_interpreters
  samples_harness  session: the scripts/samples_lib/harness module (build, produce,
                   live(scenario, interp) context manager, ...)

Environment: MIXSTACK_SAMPLES_DIR (artefact root, default build/samples),
MIXSTACK_SAMPLES_INTERPS (comma-separated tags/paths to restrict the matrix),
MIXSTACK_EXTRA_PYTHONS (extra interpreters).
"""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))

from samples_lib import harness as _harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (deselect with -m 'not slow')")


class SampleIndex(list):
    """List of harness.Artefact with lookup helpers."""

    def __init__(self, items, errors):
        super().__init__(items)
        self.errors = errors
        self._by = {(a.interp_tag, a.scenario): a for a in items}

    def get(self, interp_tag, scenario):
        return self._by.get((interp_tag, scenario))

    def for_scenario(self, name):
        return [a for a in self if a.scenario == name]

    def for_interp(self, tag):
        return [a for a in self if a.interp_tag == tag]


def _selected(lane):
    sel = os.environ.get("MIXSTACK_SAMPLES_INTERPS", "").strip()
    if not sel:
        return _harness.lane_interpreters() if lane else _harness.interpreters()
    its = [_harness.find_interp(s.strip()) for s in sel.split(",") if s.strip()]
    return [it for it in its if (it.root is not None) == lane]


def _selected_interpreters():
    return _selected(lane=False)


@pytest.fixture(scope="session")
def samples_harness():
    return _harness


@pytest.fixture(scope="session")
def interpreters():
    return _selected_interpreters()


@pytest.fixture(scope="session")
def lane_interpreters():
    return _selected(lane=True)


@pytest.fixture(scope="session")
def samples_build():
    try:
        return _harness.build()
    except _harness.HarnessError as e:
        pytest.fail("building the crash-samples extension failed: %s" % e)


@pytest.fixture(scope="session")
def samples(interpreters, samples_build):
    return _matrix(interpreters)


@pytest.fixture(scope="session")
def lane_samples(lane_interpreters, samples_build):
    """The matrix of the lane's interpreters (their cores need
    harness.analysis_options(dir): --sysroot)."""
    return _matrix(lane_interpreters)


def _matrix(its):
    if not its:
        return SampleIndex([], {})
    results = _harness.run_matrix([i.tag for i in its], out=None, jobs=2,
                                  verbose=False)
    errors = {(r.interp_tag, r.scenario): r.error for r in results if r.status == "error"}
    ok = {(r.interp_tag, r.scenario) for r in results if r.status != "error"}
    items = [a for a in _harness.index(interps=its) if (a.interp_tag, a.scenario) in ok]
    return SampleIndex(items, errors)
