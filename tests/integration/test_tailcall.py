"""The native shape of CPython 3.14's tail-call interpreter (what
python-build-standalone ships on 3.14+), built by the test lane's clang 21
with thin LTO and lld, linked statically and stripped:
crash-samples/tailcall/tailcall.c. Every opcode is its own preserve_none
function that musttail-jumps to the next one, so one handler frame lies
between the eval function and what the handler calls. No CPython source can
be fetched on these machines, so no real tail-call CPython is built here;
this checks the native part such a build needs: unwinding through the
handler frames (core and live, against eu-stack), and the stripped frames'
module + offset labels (against the unstripped file's symbols)."""
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitool import MIXSTACK, REPO, report_json
from samples_lib import harness as H
from test_native import crash, eu_stack

LANE = H.lane_root()
SOURCE = REPO / "crash-samples" / "tailcall" / "tailcall.c"

pytestmark = [
    pytest.mark.skipif(not MIXSTACK.exists(), reason=f"{MIXSTACK} not built"),
    pytest.mark.skipif(LANE is None,
                       reason="no test lane (scripts/lane root; needs root)"),
    pytest.mark.skipif(not shutil.which("eu-stack"), reason="no eu-stack"),
]

# Innermost first: the frames the program runs through (facts of its source).
CHAIN = ["callee", "T_CALL", "eval_frame_default", "main"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (Path(LANE) / "usr/bin/clang-21").exists():
        pytest.skip("the lane root has no clang-21 (scripts/lane root)")
    out = tmp_path_factory.mktemp("tailcall", numbered=True)
    if not str(out).startswith("/tmp/"):
        pytest.skip(f"{out} is not under /tmp (bind-mounted in the lane)")
    exe = out / "tailcall"
    subprocess.run([str(REPO / "scripts" / "lane"), "run", "clang-21", "-O2",
                    "-g", "-flto=thin", "-fuse-ld=lld", "-static", "-Wall",
                    "-Werror", "-o", str(exe), str(SOURCE)], check=True,
                   capture_output=True, timeout=300)
    stripped = out / "tailcall.stripped"
    subprocess.run(["strip", "-o", str(stripped), str(exe)], check=True)
    # {name: (start, end)} of the handlers and their neighbours.
    symbols = {}
    for line in subprocess.run(["nm", "-S", str(exe)], check=True,
                               capture_output=True, text=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) [tT] (\w+)$", line)
        if m:
            start = int(m.group(1), 16)
            symbols[m.group(3)] = (start, start + int(m.group(2), 16))
    # The shape under test: a handler ends in an indirect jump (a tail call
    # through the table), not a call.
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                          "--disassemble=T_LOAD", str(exe)], check=True,
                         capture_output=True, text=True).stdout
    insns = re.findall(r"^\s*[0-9a-f]+:\s+(\w+)", dis, re.M)
    assert insns and insns.count("jmp") >= 1 and "call" not in insns, dis
    return {"exe": exe, "stripped": stripped, "symbols": symbols}


def same_as_eu_stack(doc, ref):
    """Every thread unwound to the same pcs as eu-stack (names are checked
    against the symbols by check_chain: a stripped file has none)."""
    threads = {t["tid"]: t for t in doc["threads"]}
    assert sorted(threads) == sorted(ref)
    for tid, frames in ref.items():
        assert threads[tid]["unwind_error"] is None, threads[tid]["unwind_error"]
        pcs = [int(f["pc"], 16) for f in threads[tid]["frames"]
               if f["kind"] == "native" and not f["inlined"]]
        assert pcs == [pc for pc, _ in frames], f"tid {tid}"


def crashed_thread(doc):
    return next(t for t in doc["threads"] if t["crashed"])


def check_chain(thread, built, exe):
    """The innermost native frames are the program's call chain, named from
    the symbols, or labelled module + offset when stripped."""
    native = [f for f in thread["frames"]
              if f["kind"] == "native" and not f["inlined"]]
    top = next(i for i, f in enumerate(native)
               if built["symbols"]["callee"][0] <= int(f["pc"], 16)
               < built["symbols"]["callee"][1])
    frames = native[top:top + len(CHAIN)]
    for name, frame in zip(CHAIN, frames):
        start, end = built["symbols"][name]
        pc = int(frame["pc"], 16)
        assert start <= pc < end, (name, frame)
        assert frame["module"] == str(exe), frame
        if exe == built["exe"]:
            assert frame["function"] == name, frame
        else:
            assert frame["function"] is None, frame
            assert int(frame["offset"], 16) == pc, frame  # non-PIE: base 0


@pytest.mark.parametrize("variant", ["exe", "stripped"])
def test_tailcall_core(built, variant, tmp_path):
    exe = built[variant]
    core, signo, _ = crash(exe, "segv", tmp_path)
    assert signo == signal.SIGSEGV
    _, doc = report_json("core", core, exe)
    same_as_eu_stack(doc, eu_stack("--core", core, "-e", exe))
    check_chain(crashed_thread(doc), built, exe)


def test_tailcall_live(built):
    exe = built["stripped"]
    proc = subprocess.Popen([str(exe), "wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("ready")
        syscall = Path(f"/proc/{proc.pid}/syscall")
        for _ in range(500):
            if syscall.read_text().startswith("0 "):
                break
            time.sleep(0.01)
        _, doc = report_json("pid", proc.pid)
        same_as_eu_stack(doc, eu_stack("-p", proc.pid))
        check_chain(doc["threads"][0], built, exe)
    finally:
        proc.kill()
        proc.wait()
