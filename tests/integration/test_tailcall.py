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
from pathlib import Path

import pytest

from clitool import MIXSTACK, REPO, report_json
from samples_lib import harness as H
from test_native import compare_with_eu_stack, crash, eu_stack, waiting

LANE = H.lane_root()
SOURCE = REPO / "crash-samples" / "tailcall" / "tailcall.c"

pytestmark = [
    pytest.mark.skipif(not MIXSTACK.exists(), reason=f"{MIXSTACK} not built"),
    pytest.mark.skipif(LANE is None,
                       reason="no test lane (scripts/lane root; needs root)"),
    pytest.mark.skipif(not shutil.which("eu-stack"), reason="no eu-stack"),
]

# Innermost first: the frames the program runs through (facts of its
# source), and which file holds each when built as launcher + library.
CHAIN = [("callee", "lib"), ("T_CALL", "lib"), ("eval_frame_default", "lib"),
         ("main", "launcher")]
FLAGS = ["-O2", "-g", "-flto=thin", "-fuse-ld=lld", "-Wall", "-Werror"]


def clang(*args):
    subprocess.run([str(REPO / "scripts" / "lane"), "run", "clang-21", *FLAGS,
                    *map(str, args)], check=True, capture_output=True,
                   timeout=300)


def symbols(path):
    """{name: (start, end)} of the file's function symbols."""
    found = {}
    for line in subprocess.run(["nm", "-S", str(path)], check=True,
                               capture_output=True,
                               text=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) [tT] (\w+)$", line)
        if m:
            start = int(m.group(1), 16)
            found[m.group(3)] = (start, start + int(m.group(2), 16))
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{variant: {"exe", "lib", "launcher" paths, "symbols" of each role}}:
    static (one executable), and shared (python-build-standalone's layout:
    a small launcher and the interpreter in a library, both lld-linked),
    each also stripped."""
    if not (Path(LANE) / "usr/bin/clang-21").exists():
        pytest.skip("the lane root has no clang-21 (scripts/lane root)")
    out = tmp_path_factory.mktemp("tailcall", numbered=True)
    if not str(out).startswith("/tmp/"):
        pytest.skip(f"{out} is not under /tmp (bind-mounted in the lane)")
    (out / "stripped").mkdir()
    static = out / "tailcall"
    clang("-static", "-o", static, SOURCE)
    lib, launcher = out / "libtailcall.so", out / "tailcall-launcher"
    clang("-fPIC", "-shared", "-DTAILCALL_LIBRARY", "-o", lib, SOURCE)
    clang("-DTAILCALL_LAUNCHER", "-o", launcher, SOURCE, f"-L{out}",
          "-ltailcall", "-Wl,-rpath,$ORIGIN")
    for f in (static, lib, launcher):
        subprocess.run(["strip", "-o", str(out / "stripped" / f.name), str(f)],
                       check=True)
    # The shape under test: a handler ends in an indirect jump (a tail call
    # through the table), not a call.
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                          "--disassemble=T_LOAD", str(static)], check=True,
                         capture_output=True, text=True).stdout
    insns = re.findall(r"^\s*[0-9a-f]+:\s+(\w+)", dis, re.M)
    assert insns and insns.count("jmp") >= 1 and "call" not in insns, dis
    variants = {}
    for stripped in (False, True):
        d = out / "stripped" if stripped else out
        suffix = "-stripped" if stripped else ""
        variants["static" + suffix] = {
            "exe": d / static.name, "stripped": stripped,
            "files": {"lib": d / static.name, "launcher": d / static.name},
            "symbols": {"lib": symbols(static), "launcher": symbols(static)}}
        variants["shared" + suffix] = {
            "exe": d / launcher.name, "stripped": stripped,
            "files": {"lib": d / lib.name, "launcher": d / launcher.name},
            "symbols": {"lib": symbols(lib), "launcher": symbols(launcher)}}
    return variants


def crashed_thread(doc):
    return next(t for t in doc["threads"] if t["crashed"])


def exported(path):
    """Names the file's dynamic symbol table defines (what strip keeps)."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)],
                         capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def file_offset(frame, v):
    """The frame's address in its file's terms (the files are linked at 0,
    the static one at its own addresses): module + offset when unnamed,
    the symbol's address + offset when named."""
    role = "lib" if frame["module"] == str(v["files"]["lib"]) else "launcher"
    offset = int(frame["offset"], 16)
    if frame["function"] is None:
        return offset
    start = v["symbols"][role].get(frame["function"], (None,))[0]
    return -1 if start is None else start + offset


def check_chain(thread, v):
    """The native frames from callee out are the program's call chain, each
    in its file at an address of the expected function: named from the
    symbols (a stripped file keeps only its exported ones), else labelled
    with its file + offset."""
    native = [f for f in thread["frames"]
              if f["kind"] == "native" and not f["inlined"]]
    lo, hi = v["symbols"]["lib"]["callee"]
    top = next(i for i, f in enumerate(native)
               if f["module"] == str(v["files"]["lib"])
               and lo <= file_offset(f, v) < hi)
    for (name, role), frame in zip(CHAIN, native[top:top + len(CHAIN)]):
        assert frame["module"] == str(v["files"][role]), (name, frame)
        start, end = v["symbols"][role][name]
        assert start <= file_offset(frame, v) < end, (name, frame)
        named = not v["stripped"] or name in exported(v["files"][role])
        assert frame["function"] == (name if named else None), (name, frame)


VARIANTS = ["static", "static-stripped", "shared", "shared-stripped"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_tailcall_core(built, variant, tmp_path):
    v = built[variant]
    core, signo, _ = crash(v["exe"], "segv", tmp_path)
    assert signo == signal.SIGSEGV
    _, doc = report_json("core", core, v["exe"])
    compare_with_eu_stack(doc, eu_stack("--core", core, "-e", v["exe"]), names=False)
    check_chain(crashed_thread(doc), v)


@pytest.mark.parametrize("variant", ["static-stripped", "shared-stripped"])
def test_tailcall_live(built, variant):
    v = built[variant]
    with waiting([v["exe"]]) as proc:
        _, doc = report_json("pid", proc.pid)
        # Names are checked against the symbols by check_chain: a stripped
        # file has none.
        compare_with_eu_stack(doc, eu_stack("-p", proc.pid), names=False)
        check_chain(doc["threads"][0], v)
