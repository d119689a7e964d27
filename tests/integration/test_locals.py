"""--locals: arguments and locals of Python frames, against what the
process itself printed with repr() before blocking, on every interpreter."""
import json
import subprocess
from pathlib import Path

import pytest

from clitool import MIXSTACK, REPO, gcore, run_mixstack

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

SCRIPT = REPO / "tests" / "helpers" / "locals_target.py"


@pytest.fixture(scope="module", params=None)
def snapshots(interpreters, tmp_path_factory):
    out = []
    for interp in interpreters:
        proc = subprocess.Popen([interp.path, "-E", "-s", str(SCRIPT)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        try:
            facts = json.loads(proc.stdout.readline())
            core = gcore(proc.pid, tmp_path_factory.mktemp(interp.tag) / "core")
            out.append((interp, facts, core, proc.pid))
        finally:
            proc.kill()
            proc.wait()
    return out


def frame_locals(doc, pid):
    thread = doc["threads"][0]
    frames = [f for f in thread["frames"] if f["kind"] == "python"]
    assert frames[0]["function"] == "inner", frames[0]
    return frames[0]["locals"]


def test_locals_equal_repr(snapshots):
    assert snapshots
    for interp, facts, core, pid in snapshots:
        proc = run_mixstack("core", core, "--json", "--locals")
        assert proc.returncode in (0, 1), proc.stderr
        got = {l["name"]: l for l in frame_locals(json.loads(proc.stdout), pid)}
        for name, want in facts["locals"].items():
            assert name in got, (interp.tag, name, sorted(got))
            assert got[name]["value"] == want, (interp.tag, name, got[name], want)
        for name in facts["opaque"]:
            assert got[name]["value"].startswith("<__main__.Opaque object at 0x"), got[name]
        args = [n for n, l in got.items() if l["argument"]]
        assert args == facts["args"], (interp.tag, args)


def test_locals_in_text_and_absent_by_default(snapshots):
    interp, facts, core, pid = snapshots[0]
    text = run_mixstack("core", core, "--locals").stdout
    assert "arg   count = 7" in text and "local pair = (1, 'two')" in text
    doc = json.loads(run_mixstack("core", core, "--json").stdout)
    assert all("locals" not in f for t in doc["threads"] for f in t["frames"])
