"""A deadlock whose lock records its owner (a pthread mutex): the owner
chain GIL holder -> mutex owner -> GIL holder is followed and reported as a
deadlock naming both threads, from a core and from the live process."""
import json
import subprocess
import time

import pytest

from clitool import MIXSTACK, REPO, gcore, process_state, run_mixstack

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

SCRIPT = REPO / "tests" / "helpers" / "mutex_deadlock.py"


@pytest.fixture(params=["core", "pid"])
def deadlocked(request, interpreters, tmp_path):
    interp = interpreters[0]
    proc = subprocess.Popen([interp.path, "-E", "-s", str(SCRIPT)],
                            stdout=subprocess.PIPE, text=True)
    try:
        tids = json.loads(proc.stdout.readline())
        time.sleep(1.5)  # past the owner's sleep: it waits for the GIL now
        if request.param == "core":
            target = gcore(proc.pid, tmp_path / "core")
        else:
            target = proc.pid
        yield request.param, target, tids, proc
    finally:
        proc.kill()
        proc.wait()


def test_owner_chain_is_a_deadlock(deadlocked):
    kind, target, tids, proc = deadlocked
    out = run_mixstack(kind, target, "--json")
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)
    threads = {t["tid"]: t for t in doc["threads"]}
    assert threads[tids["holder"]]["gil"] == "held"
    assert threads[tids["owner"]]["gil"] == "waiting"
    assert threads[tids["holder"]]["lock_owner_tid"] == tids["owner"]
    dead = [d for d in doc["diagnoses"] if d["kind"] == "deadlock"]
    assert dead and set(dead[0]["tids"]) == {tids["holder"], tids["owner"]}
    assert "owned by thread %d" % tids["owner"] in dead[0]["message"]
    if kind == "pid":
        state, tracer = process_state(proc.pid)
        assert tracer == 0 and state not in "tT"
