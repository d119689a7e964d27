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


def _found():
    sel = os.environ.get("MIXSTACK_SAMPLES_INTERPS", "").strip()
    if sel:
        return [H.find_interp(s.strip()) for s in sel.split(",") if s.strip()]
    return H.interpreters()


FOUND = _found()
SLOTS = [("debian", "3.11")] + [("pyenv", "3.%d" % m) for m in range(8, 14)]


def resolve(slot):
    """The Interp found for a slot id, or None."""
    for it in FOUND:
        if it.tag == slot:
            return it
    m = re.match(r"^cpython-(3\.\d+)-(\w+)$", slot)
    if m:
        for it in FOUND:
            if it.origin == m.group(2) and it.version.startswith(m.group(1) + "."):
                return it
    return None


def _slot_ids():
    ids = ["cpython-%s-%s" % (minor, origin) for origin, minor in SLOTS]
    covered = {resolve(i).tag for i in ids if resolve(i)}
    ids += [it.tag for it in FOUND if it.tag not in covered]
    return ids


SLOT_IDS = _slot_ids()


def interp_or_skip(slot):
    it = resolve(slot)
    if it is None:
        pytest.skip("interpreter %s not found on this machine" % slot)
    return it
