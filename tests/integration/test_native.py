"""Native stacks of the native demo (C and Rust, legacy and v0 mangling)
against eu-stack: a core from a real crash, a gcore snapshot, and the live
process. Every thread's physical frames must have eu-stack's pcs and raw
symbols; names must be demangled; the demo's frames must carry the source
lines marked LINE: in its sources; inlined frames must be there."""
import contextlib
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitool import MIXSTACK, REPO, core_pattern, gcore, process_state, \
    report_json, which

pytestmark = [
    pytest.mark.skipif(not MIXSTACK.exists(), reason=f"{MIXSTACK} not built"),
    pytest.mark.skipif(not which("eu-stack"), reason="eu-stack not installed"),
]

SOURCES = REPO / "crash-samples" / "native-demo"
OUT = REPO / "build" / "native-demo"


@pytest.fixture(scope="module")
def demos():
    if not which("rustc") or not which("cc"):
        pytest.skip("rustc and cc are needed to build the native demo")
    subprocess.run([str(REPO / "scripts" / "build-native-demo")], check=True,
                   capture_output=True, timeout=600)
    return {"legacy": OUT / "native-demo", "v0": OUT / "native-demo-v0"}


def marker_lines():
    """{marker: (file name, line)} from the LINE: comments of the demo."""
    found = {}
    for name in ("native-demo.c", "rustlib.rs"):
        for number, text in enumerate((SOURCES / name).read_text().splitlines(), 1):
            for marker in re.findall(r"LINE:(\w+)", text):
                found[marker] = (name, number)
    return found


MARKERS = marker_lines()

# ---------------------------------------------------------------------------
# eu-stack as the reference


def eu_stack(*args):
    """{tid: [(pc, raw symbol)]} from eu-stack -r (no demangling)."""
    proc = subprocess.run(["eu-stack", "-r", "-n", "0", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    threads, current = {}, None
    for line in proc.stdout.splitlines():
        m = re.match(r"TID (\d+):", line)
        if m:
            current = threads.setdefault(int(m.group(1)), [])
            continue
        m = re.match(r"#\d+\s+0x([0-9a-f]+)\s*(\S*)", line)
        if m and current is not None:
            current.append((int(m.group(1), 16), m.group(2) or None))
    return threads


# Legacy Rust escapes, for an independent demangling of eu-stack's names.
ESCAPES = {"$LT$": "<", "$GT$": ">", "$u7b$": "{", "$u7d$": "}", "$C$": ",",
           "$RF$": "&", "$BP$": "*", "$u20$": " ", "$LP$": "(", "$RP$": ")",
           "$u5b$": "[", "$u5d$": "]", "$u27$": "'", "$SP$": "@"}


def legacy_demangle(raw):
    """_ZN<len><ident>...17h<hash>E -> a::b (None when not legacy Rust)."""
    m = re.fullmatch(r"_ZN(.*)17h[0-9a-f]{16}E", raw.split(".")[0])
    if not m:
        return None
    rest, parts = m.group(1), []
    while rest:
        n = re.match(r"\d+", rest)
        if not n:
            return None
        length = int(n.group())
        ident = rest[n.end():n.end() + length]
        rest = rest[n.end() + length:]
        if ident.startswith("_$"):
            ident = ident[1:]
        for esc, char in ESCAPES.items():
            ident = ident.replace(esc, char)
        parts.append(ident.replace("..", "::"))
    return "::".join(parts)


def check_function(frame):
    """mixstack's function name is the demangled raw symbol."""
    raw, function = frame["raw_symbol"], frame["function"]
    assert function, frame
    if frame["inlined"]:
        return
    expected = legacy_demangle(raw)
    if expected is not None:
        assert function == expected, frame
        assert frame["language"] == "rust", frame
    elif raw.startswith("_R"):
        assert not re.search(r"[\w]\[[0-9a-f]+\]", function), frame
        assert not function.startswith("_R"), frame
        assert frame["language"] == "rust", frame
    elif not raw.startswith("_Z"):
        assert function == raw.split("@")[0], frame


def compare_with_eu_stack(doc, ref, names=True):
    """Every thread unwound to the same pcs as eu-stack and, with names,
    the same raw symbols (a stripped file's names are checked elsewhere)."""
    threads = {t["tid"]: t for t in doc["threads"]}
    assert sorted(threads) == sorted(ref), (sorted(threads), sorted(ref))
    for tid, frames in ref.items():
        thread = threads[tid]
        assert thread["unwind_error"] is None, thread["unwind_error"]
        native = [f for f in thread["frames"] if f["kind"] == "native"]
        physical = [(int(f["pc"], 16), f["raw_symbol"] if names else None)
                    for f in native if not f["inlined"]]
        expected = frames if names else [(pc, None) for pc, _ in frames]
        assert physical == expected, f"tid {tid}"
        if names:
            for frame in native:
                check_function(frame)


@contextlib.contextmanager
def waiting(argv):
    """ARGV run with "wait": it prints "ready", then blocks reading stdin;
    yields the process once it sits in read(2), kills it afterwards."""
    proc = subprocess.Popen([str(a) for a in argv] + ["wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("ready")
        syscall = Path(f"/proc/{proc.pid}/syscall")
        for _ in range(500):
            if syscall.read_text().startswith("0 "):
                break
            time.sleep(0.01)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def find(thread, function):
    for frame in thread["frames"]:
        if frame["function"] == function:
            return frame
    raise AssertionError(f"no frame {function} in thread {thread['tid']}")


def check_line(frame, *markers, inlined=False, language=None):
    wanted = [MARKERS[m] for m in markers]
    assert frame["file"] and frame["line"], frame
    assert (Path(frame["file"]).name, frame["line"]) in wanted, (frame, wanted)
    assert frame["inlined"] == inlined, frame
    if language:
        assert frame["language"] == language, frame


def check_workers(doc, v0):
    """The four workers' C -> Rust -> C stacks, with inlined frames."""
    closure = ("demo::closure_level::{closure#0}" if v0
               else "demo::closure_level::{{closure}}")
    workers = [t for t in doc["threads"]
               if any(f["function"] == "worker_main" for f in t["frames"])]
    assert len(workers) == 4
    for t in workers:
        check_line(find(t, "worker_main"), "worker_main_call", language="c")
        check_line(find(t, "c_inlined"), "c_inlined_call", inlined=True)
        check_line(find(t, "c_worker_level"), "c_worker_level_call")
        check_line(find(t, "demo_rust_worker"), "rust_worker_call_i32",
                   "rust_worker_call_u8", language="rust")
        check_line(find(t, "demo::closure_level"), "rust_closure_level_call",
                   language="rust")
        check_line(find(t, closure), "rust_closure_call", language="rust")
        check_line(find(t, "demo::inlined_level"), "rust_inlined_call",
                   inlined=True, language="rust")
        # The innermost inlined level comes before the function it is in.
        names = [f["function"] for f in t["frames"]]
        assert names.index("demo::inlined_level") + 1 == names.index(closure)
        generic = [f for f in t["frames"]
                   if f["function"].startswith("demo::generic_level")]
        assert len(generic) == 1
        if v0:
            assert generic[0]["function"] in ("demo::generic_level::<i32>",
                                              "demo::generic_level::<u8>")


# ---------------------------------------------------------------------------
# Targets


def start_waiting(exe):
    proc = subprocess.Popen([str(exe), "wait"], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready"), line
    # Main prints "ready" just before it blocks in read (system call 0):
    # wait until it does, for stacks that stay put.
    syscall = Path(f"/proc/{proc.pid}/syscall")
    for _ in range(500):
        if syscall.read_text().startswith("0 "):
            break
        time.sleep(0.01)
    return proc


def crash(exe, mode, workdir):
    """Run exe in mode until it dumps core in workdir: (core, signal,
    stderr)."""
    pattern = core_pattern()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern sends cores elsewhere: {pattern}")

    def raise_limit():
        resource.setrlimit(resource.RLIMIT_CORE,
                           (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    proc = subprocess.Popen([str(exe), mode], cwd=workdir,
                            preexec_fn=raise_limit, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode < 0, (proc.returncode, stderr)
    workdir = Path(workdir)
    for name in (f"core.{proc.pid}", "core"):
        if (workdir / name).exists():
            return workdir / name, -proc.returncode, stderr
    pytest.skip(f"no core was written (core_pattern {pattern!r})")


@pytest.mark.parametrize("variant", ["legacy", "v0"])
def test_gcore(demos, variant, tmp_path):
    if not which("gcore"):
        pytest.skip("gcore (gdb) not installed")
    exe = demos[variant]
    proc = start_waiting(exe)
    try:
        core = gcore(proc.pid, tmp_path / "core")
    finally:
        proc.kill()
        proc.wait()
    start = time.monotonic()
    _, doc = report_json("core", core, exe)
    ours = time.monotonic() - start
    start = time.monotonic()
    ref = eu_stack("--core", core, "-e", exe)
    theirs = time.monotonic() - start
    print(f"mixstack {ours:.3f}s, eu-stack {theirs:.3f}s")
    assert doc["target"]["pid"] == proc.pid
    compare_with_eu_stack(doc, ref)
    check_workers(doc, variant == "v0")
    main = next(t for t in doc["threads"] if t["tid"] == proc.pid)
    check_line(find(main, "main"), "main_wait_call")


@pytest.mark.parametrize("variant,mode,signo,site", [
    ("legacy", "panic", signal.SIGABRT, "rust_panic"),
    ("v0", "panic", signal.SIGABRT, "rust_panic"),
    ("legacy", "segv", signal.SIGSEGV, "rust_segv"),
])
def test_crash(demos, variant, mode, signo, site, tmp_path):
    exe = demos[variant]
    core, got_signo, stderr = crash(exe, mode, tmp_path)
    assert got_signo == signo
    if mode == "panic":
        assert "native-demo panic" in stderr
    _, doc = report_json("core", core, exe)
    compare_with_eu_stack(doc, eu_stack("--core", core, "-e", exe))
    assert doc["target"]["signal"]["number"] == signo
    crashed = [t for t in doc["threads"] if t["crashed"]]
    assert len(crashed) == 1 and crashed[0]["tid"] == doc["target"]["crashed_tid"]
    thread = crashed[0]
    assert thread is doc["threads"][0]
    check_line(find(thread, "demo::do_crash"), site, language="rust")
    check_line(find(thread, "c_crash_level"), "c_crash_call", language="c")
    check_line(find(thread, "main"), "main_crash_call", language="c")
    names = [f["function"] for f in thread["frames"]]
    if mode == "panic":
        assert "__rustc::rust_begin_unwind" in names
        assert "abort" in names
    check_workers(doc, variant == "v0")


@pytest.mark.parametrize("variant", ["legacy", "v0"])
def test_live(demos, variant):
    exe = demos[variant]
    proc = start_waiting(exe)
    try:
        _, doc = report_json("pid", proc.pid)
        ref = eu_stack("-p", proc.pid)
        assert doc["target"]["pid"] == proc.pid
        compare_with_eu_stack(doc, ref)
        check_workers(doc, variant == "v0")
        # Left running, neither stopped nor traced.
        time.sleep(0.1)
        state, tracer = process_state(proc.pid)
        assert state == "S" and tracer == 0, (state, tracer)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------
# A small executable linked by lld: its segments are packed into the first
# file page (text at file offset 0x6xx, data at 0x7xx...), each on a virtual
# page of its own, so every mapping of it has file offset 0 -- as tiny
# launchers linked by clang -fuse-ld=lld (an interpreter's bin/python next
# to its libpython) have. mixstack must still see it as one loaded module.

LLD_SMALL = r"""
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) void lld_small_leaf(int crash)
{
        if (crash)
                raise(SIGSEGV);
        char c;
        puts("ready");
        fflush(stdout);
        (void)!read(0, &c, 1);
}
__attribute__((noinline)) void lld_small_mid(int crash)
{
        lld_small_leaf(crash);
        __asm__ volatile("");
}
int main(int argc, char **argv)
{
        lld_small_mid(argc > 1 && strcmp(argv[1], "segv") == 0);
        return 0;
}
"""


@pytest.fixture(scope="module")
def lld_small(tmp_path_factory):
    if not which("rustc") or not which("cc"):
        pytest.skip("rustc (its rust-lld) and cc are needed")
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], check=True,
                             capture_output=True, text=True).stdout.strip()
    gcc_ld = Path(sysroot) / "lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld"
    if not (gcc_ld / "ld.lld").exists():
        pytest.skip(f"no ld.lld in {gcc_ld}")
    out = tmp_path_factory.mktemp("lld")
    (out / "lld-small.c").write_text(LLD_SMALL)
    exe = out / "lld-small"
    subprocess.run(["cc", "-O1", "-g", f"-B{gcc_ld}", "-fuse-ld=lld", "-o",
                    str(exe), str(out / "lld-small.c")], check=True,
                   capture_output=True, timeout=120)
    # The layout under test: more than one PT_LOAD, all in the first page.
    loads = re.findall(r"^\s+LOAD\s+0x([0-9a-f]+)", subprocess.run(
        ["readelf", "-lW", str(exe)], check=True, capture_output=True,
        text=True).stdout, re.M)
    assert len(loads) > 1 and all(int(o, 16) < 4096 for o in loads), loads
    return exe


def check_lld_small(doc, exe, tid):
    thread = next(t for t in doc["threads"] if t["tid"] == tid)
    for name in ("lld_small_leaf", "lld_small_mid", "main"):
        assert find(thread, name)["module"] == str(exe), name


def test_lld_packed_segments_core(lld_small, tmp_path):
    core, signo, _ = crash(lld_small, "segv", tmp_path)
    assert signo == signal.SIGSEGV
    _, doc = report_json("core", core, lld_small)
    compare_with_eu_stack(doc, eu_stack("--core", core, "-e", lld_small))
    check_lld_small(doc, lld_small, doc["target"]["crashed_tid"])


def test_lld_packed_segments_live(lld_small):
    with waiting([lld_small]) as proc:
        _, doc = report_json("pid", proc.pid)
        compare_with_eu_stack(doc, eu_stack("-p", proc.pid))
        check_lld_small(doc, lld_small, proc.pid)
