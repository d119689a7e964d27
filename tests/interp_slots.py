"""Interpreter slots for tests parametrized by interpreter: a stable list
of expected interpreters (Debian's python3.11, pyenv's 3.8-3.13), each a
test id that is skipped by name when missing, plus whatever else is found
($MIXSTACK_EXTRA_PYTHONS). $MIXSTACK_SAMPLES_INTERPS restricts what is
found, as for the `interpreters` fixture."""
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))

from samples_lib import harness as H  # noqa: E402


def _found(lane):
    sel = os.environ.get("MIXSTACK_SAMPLES_INTERPS", "").strip()
    if not sel:
        return H.lane_interpreters() if lane else H.interpreters()
    its = [H.find_interp(s.strip()) for s in sel.split(",") if s.strip()]
    return [it for it in its if (it.root is not None) == lane]


# Found here (runnable by path), and in the lane's root.
FOUND = _found(lane=False)
LANE_FOUND = _found(lane=True)
SLOTS = [("debian", "3.11")] + [("pyenv", "3.%d" % m) for m in range(8, 14)]
# The test lane's interpreters (scripts/lane): Debian unstable's, run
# chrooted in its root; slots of their own (LANE_SLOT_IDS).
LANE_SLOTS = ([("sid", v) for v in H.LANE_VERSIONS]
              + [("sid-jit", v) for v in H.LANE_VERSIONS if v >= "3.14"])



def resolve(slot):
    """The Interp found for a slot id, or None."""
    for it in FOUND + LANE_FOUND:
        if it.tag == slot:
            return it
    m = re.match(r"^cpython-(3\.\d+)-([\w-]+)$", slot)
    if m:
        for it in FOUND + LANE_FOUND:
            if it.origin == m.group(2) and it.version.startswith(m.group(1) + "."):
                return it
    return None


def _slot_ids():
    ids = ["cpython-%s-%s" % (minor, origin) for origin, minor in SLOTS]
    lane = ["cpython-%s-%s" % (minor, origin) for origin, minor in LANE_SLOTS]
    covered = {resolve(i).tag for i in ids + lane if resolve(i)}
    ids += [it.tag for it in FOUND if it.tag not in covered]
    return ids


SLOT_IDS = _slot_ids()
LANE_SLOT_IDS = ["cpython-%s-%s" % (minor, origin) for origin, minor in LANE_SLOTS]


def interp_or_skip(slot):
    it = resolve(slot)
    if it is None:
        pytest.skip("interpreter %s not found on this machine" % slot)
    return it
