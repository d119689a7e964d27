"""CI crash triage: `mixstack run -- CMD` on the crash-sample drivers (crashes,
hangs, exit statuses, untouched output, process trees), `mixstack triage` of
several cores (and of cores it cannot read), and crash signatures: stable
across runs and interpreters, different between scenarios.

Every test is bounded: the commands run under `mixstack run --timeout` or a
subprocess timeout."""
import itertools
import json
import re
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from clitool import MIXSTACK, REPO, core_pattern

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

SCENARIOS = REPO / "crash-samples" / "scenarios"
# A command that should finish in a second gets this long before the test
# gives up on mixstack itself.
LIMIT = 60


def cores_land_in_cwd():
    pattern = core_pattern()
    return not pattern.startswith("|") and "/" not in pattern


needs_file_cores = pytest.mark.skipif(
    not cores_land_in_cwd(),
    reason="kernel.core_pattern does not put cores in the working directory")


@pytest.fixture(scope="module")
def interp(interpreters):
    """One interpreter for the drivers: a pyenv 3.12 when there is one."""
    if not interpreters:
        pytest.skip("no CPython interpreter found")
    for it in interpreters:
        if it.version.startswith("3.12") and it.origin == "pyenv":
            return it
    return interpreters[0]


def driver_env(ext, workdir, scenario):
    """The environment the sample harness gives a driver, minus its pipes:
    a driver run alone writes its manifest and crashes or blocks."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "RUST_BACKTRACE": "0",
        "MIXSTACK_EXT": str(ext),
        "MIXSTACK_MANIFEST": str(Path(workdir) / "manifest.json"),
        "MIXSTACK_SCENARIO": scenario,
    }


def run(args, cwd, env=None, timeout=LIMIT, preexec_fn=None):
    """mixstack ARGS in cwd; bytes out."""
    return subprocess.run([str(MIXSTACK), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout,
                          preexec_fn=preexec_fn)


def run_driver(scenario, interp, ext, workdir, *options, python_options=(),
               wrap=None):
    """mixstack run OPTIONS -- python DRIVER, in workdir; returns
    (CompletedProcess, manifest or None)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [interp.path, "-E", "-s", "-B", *python_options,
           str(SCENARIOS / f"{scenario}.py")]
    if wrap:
        cmd = wrap(cmd)
    proc = run(["run", *options, "--", *cmd], workdir,
               env=driver_env(ext, workdir, scenario))
    manifest = workdir / "manifest.json"
    return proc, (json.loads(manifest.read_text()) if manifest.exists() else None)


def triage_doc(out_dir):
    doc = json.loads((Path(out_dir) / "triage.json").read_text())
    assert doc["schema"] == "mixstack-triage/1"
    return doc


def tree_processes(token):
    """Pids whose command line holds token."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if token.encode() in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except OSError:
            pass
    return found


def pid_gone(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


# ---------------------------------------------------------------------------
# mixstack run: crashes
# ---------------------------------------------------------------------------

@needs_file_cores
@pytest.mark.parametrize("scenario,kind,status", [
    ("segfault-in-rust", "SIGSEGV", 128 + signal.SIGSEGV),
    ("abort-in-callback", "panic", 128 + signal.SIGABRT),
])
def test_run_triages_a_crash(scenario, kind, status, interp, samples_build,
                             tmp_path):
    out = tmp_path / "out"
    proc, m = run_driver(scenario, interp, samples_build.ext, tmp_path / "cwd",
                         "--out", out)
    assert proc.returncode == status, proc.stderr.decode(errors="replace")
    stderr = proc.stderr.decode(errors="replace")
    assert f"==== mixstack triage: {kind}" in stderr
    doc = triage_doc(out)
    assert doc["run"]["exit_status"] == status
    assert doc["run"]["signal"] == m["signal"]["name"]
    [res] = doc["results"]
    assert res["kind"] == kind
    assert res["target"]["pid"] == m["pid"]
    # The frame the manifest names is where the crash is, and leads the
    # signature.
    assert res["crash"]["function"] == m["expect_crash_frame"]
    assert res["crash"]["module"] == Path(m["extension"]["path"]).name
    assert res["signature"].startswith(f"{kind} | {m['expect_crash_frame']} | ")
    crashed = next(t for t in m["threads"] if t["tid"] == m["crashed_tid"])
    first_py = crashed["python_stack"][0]
    assert f"{Path(first_py['file']).name}:{first_py['function']}" in res["signature"]
    if m["panic"]:
        assert res["panic"]["message"] == m["panic"]["message"]
        assert f'"{m["panic"]["message"]}"' in res["reason"]
        assert f'{m["panic"]["file"]}:{m["panic"]["line"]}' in res["reason"]
    # The core was moved out of the command's working directory into --out.
    assert not list((tmp_path / "cwd").glob("core*"))
    assert Path(res["target"]["core"]).parent == out
    assert (out / "triage.md").read_text().startswith("## mixstack crash triage")


@needs_file_cores
def test_run_crash_of_descendants(interp, samples_build, tmp_path):
    """A crash in a process reaped by its own parent (a test's subprocess)
    and in an orphan (reparented to mixstack) are both triaged; the command's
    status is its own."""
    py = f"{interp.path} -E -s -B"
    seg = SCENARIOS / "segfault-in-rust.py"
    abort = SCENARIOS / "abort-in-callback.py"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    # The orphan waits a little before it starts Python, so that mixstack
    # sees the directory it crashes (and leaves its core) in.
    script = (f"{py} {seg}; echo child=$?; "
              f"(cd sub && sleep 0.5 && exec {py} {abort} &) ; sleep 2; exit 5")
    (workdir / "sub").mkdir()
    env = driver_env(samples_build.ext, workdir, "descendants")
    proc = run(["run", "--out", tmp_path / "out", "--", "sh", "-c", script],
               workdir, env=env)
    assert proc.returncode == 5, proc.stderr.decode(errors="replace")
    assert b"child=139" in proc.stdout
    kinds = sorted(r["kind"] for r in triage_doc(tmp_path / "out")["results"])
    assert kinds == ["SIGSEGV", "panic"]


# ---------------------------------------------------------------------------
# mixstack run: hangs, statuses, output
# ---------------------------------------------------------------------------

def test_run_snapshots_a_hang(interp, samples_build, tmp_path):
    """gil-deadlock under a shell, past --timeout: the live Python process is
    triaged (deadlock naming both threads), then the whole tree is ended."""
    token = f"mixstack-test-{uuid.uuid4().hex}"
    out = tmp_path / "out"

    def wrap(cmd):
        return ["sh", "-c", " ".join(cmd) + "; echo unreachable", token]

    t0 = time.monotonic()
    proc, m = run_driver("gil-deadlock", interp, samples_build.ext,
                         tmp_path / "cwd", "--timeout", "5", "--grace", "2",
                         "--out", out, wrap=wrap)
    assert proc.returncode == 124, proc.stderr.decode(errors="replace")
    assert time.monotonic() - t0 < 30
    assert b"unreachable" not in proc.stdout
    doc = triage_doc(out)
    assert doc["run"]["timed_out"]
    [res] = doc["results"]
    assert res["kind"] == "deadlock"
    assert res["target"]["kind"] == "pid" and res["target"]["pid"] == m["pid"]
    pair = [m["deadlock"]["gil_holder"], m["deadlock"]["mutex_holder"]]
    [diag] = [d for d in res["diagnoses"] if d["kind"] == "deadlock"]
    assert diag["tids"] == pair
    assert [s["tid"] for s in res["stacks"]] == pair
    assert res["signature"].startswith(
        "deadlock | mixsample::lock_shared_mutex | ")
    assert " || mixsample::attach_while_holding_mutex | " in res["signature"]
    # Nothing of the tree is left.
    assert pid_gone(m["pid"])
    assert tree_processes(token) == []


def test_run_exit_status(tmp_path):
    assert run(["run", "--", "sh", "-c", "exit 3"], tmp_path).returncode == 3
    killed = run(["run", "--", "sh", "-c", "kill -TERM $$"], tmp_path)
    assert killed.returncode == 128 + signal.SIGTERM
    assert killed.stderr == b""
    t0 = time.monotonic()
    slow = run(["run", "--timeout", "0.5", "--", "sleep", "30"], tmp_path)
    assert slow.returncode == 124
    assert time.monotonic() - t0 < 10
    assert b"no Python process was running at the timeout" in slow.stderr
    assert run(["run", "--", "no-such-command-mixstack"], tmp_path).returncode == 127
    assert run(["run"], tmp_path).returncode == 125


@needs_file_cores
def test_run_segfault_status_and_core_limit(tmp_path):
    seg = run(["run", "--", "sh", "-c", "kill -SEGV $$"], tmp_path)
    assert seg.returncode == 139
    assert b"==== mixstack triage: SIGSEGV" in seg.stderr

    # A hard core limit of 0 cannot be raised: mixstack says so, and how.
    def no_cores():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    nocore = run(["run", "--", "sh", "-c", "kill -SEGV $$"], tmp_path,
                 preexec_fn=no_cores)
    assert nocore.returncode == 139
    assert b"hard limit is 0" in nocore.stderr
    assert b"ulimit -c unlimited" in nocore.stderr


@needs_file_cores
def test_run_keeps_every_core(tmp_path):
    """Two crashes in one directory, where the kernel names both cores
    "core" (or core.PID): each is kept under a name of its own and triaged,
    with or without --out; --fail-on-crash fails a run whose command
    succeeded, with its status."""
    crash = (f"{sys.executable} -c 'import os, time; time.sleep(0.3); "
             "os.kill(os.getpid(), 11)'")
    script = f"{crash}; {crash}; exit 0"
    for out in (None, tmp_path / "out"):
        cwd = tmp_path / ("cwd-out" if out else "cwd")
        cwd.mkdir()
        opts = ["--json"] + (["--out", out] if out else [])
        proc = run(["run", *opts, "--", "sh", "-c", script], cwd)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        # The document ends stderr, after what the shell said.
        err = proc.stderr.decode(errors="replace")
        doc = json.loads(err[err.index("{") if err.startswith("{")
                             else err.index("\n{") + 1:])
        cores = [r["target"]["core"] for r in doc["results"]]
        pids = [r["target"]["pid"] for r in doc["results"]]
        assert len(cores) == 2 and len(set(cores)) == 2 and len(set(pids)) == 2
        for core, pid in zip(cores, pids):
            assert Path(core).exists() and f"core.{pid}." in Path(core).name
            assert Path(core).parent == (out if out else cwd)
        assert not (cwd / "core").exists()
    proc = run(["run", "--fail-on-crash", "--", "sh", "-c", f"{crash}; exit 0"],
               tmp_path / "cwd")
    assert proc.returncode == 1
    assert b"1 process of the command crashed: exit 1 (--fail-on-crash)" in proc.stderr
    proc = run(["run", "--fail-on-crash=7", "--", "sh", "-c", f"{crash}; exit 0"],
               tmp_path / "cwd")
    assert proc.returncode == 7
    # A failing command keeps its own status; nothing crashed, nothing changes.
    proc = run(["run", "--fail-on-crash", "--", "sh", "-c", f"{crash}; exit 3"],
               tmp_path / "cwd")
    assert proc.returncode == 3
    assert run(["run", "--fail-on-crash", "--", "true"], tmp_path).returncode == 0
    bad = run(["run", "--fail-on-crash=0", "--", "true"], tmp_path)
    assert bad.returncode == 125 and b"bad --fail-on-crash" in bad.stderr


def test_run_passes_output_through(tmp_path):
    """Bytes on stdout and stderr, binary and without a final newline, are
    the same through mixstack run; it adds nothing when nothing crashed."""
    out_bytes = bytes(range(256)) + b"\r\n\x1b[31mred\x00tail"
    err_bytes = b"err\xff\xfe\n" * 1000 + b"no newline"
    code = ("import sys\n"
            f"sys.stdout.buffer.write({out_bytes!r})\n"
            "sys.stdout.flush()\n"
            f"sys.stderr.buffer.write({err_bytes!r})\n"
            "sys.exit(7)\n")
    direct = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            timeout=LIMIT)
    via = run(["run", "--out", tmp_path / "out", "--", sys.executable, "-c",
               code], tmp_path)
    assert (direct.stdout, direct.stderr) == (out_bytes, err_bytes)
    assert (via.stdout, via.stderr, via.returncode) == (out_bytes, err_bytes, 7)
    # A quiet run leaves a CI summary untouched.
    assert (tmp_path / "out" / "triage.md").read_text() == ""
    assert triage_doc(tmp_path / "out")["results"] == []
    # stdin goes through too.
    cat = subprocess.run([str(MIXSTACK), "run", "--", "cat"], input=out_bytes,
                         capture_output=True, timeout=LIMIT)
    assert cat.stdout == out_bytes


# ---------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------

@needs_file_cores
def test_signature_same_across_runs(interp, samples_build, samples, tmp_path):
    """The same bug run twice (and once under faulthandler, whose handler
    re-raises the signal) gives one signature, which is also the signature of
    the harness's core of it."""
    sigs = []
    for i, opts in enumerate([(), (), ("-X", "faulthandler")]):
        out = tmp_path / f"out{i}"
        proc, _ = run_driver("segfault-in-rust", interp, samples_build.ext,
                             tmp_path / f"cwd{i}", "--out", out,
                             python_options=opts)
        assert proc.returncode == 139
        [res] = triage_doc(out)["results"]
        sigs.append((res["signature"], res["signature_id"]))
    art = samples.get(interp.tag, "segfault-in-rust")
    if art is not None:
        proc = run(["triage", "--json", Path(art.dir) / "core"], REPO)
        sigs.append(tuple(json.loads(proc.stdout)["results"][0][k]
                          for k in ("signature", "signature_id")))
    assert len(set(sigs)) == 1, sigs


def python_frames(manifest):
    """What a signature keeps of the recorded Python stacks: the threads'
    and the suspended asyncio tasks' (an asyncio hang's signature names
    the stuck awaits)."""
    stacks = [t["python_stack"] for t in manifest["threads"]]
    stacks += [t["frames"] for t in (manifest.get("asyncio") or {}).get("tasks", ())]
    return tuple((Path(f["file"]).name, f["function"])
                 for stack in stacks for f in stack)


@pytest.fixture(scope="module")
def sample_signatures(samples):
    """{(interp_tag, scenario): triage result} of every sample core, triaged
    by one `mixstack triage --json` of all of them."""
    cells = [a for a in samples if (Path(a.dir) / "core").exists()]
    if not cells:
        pytest.skip("no crash samples")
    proc = run(["triage", "--json", *[Path(a.dir) / "core" for a in cells]],
               REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    results = json.loads(proc.stdout)["results"]
    assert len(results) == len(cells)
    return {(a.interp_tag, a.scenario): (a, r) for a, r in zip(cells, results)}


def test_signature_same_across_interpreters(sample_signatures):
    """One signature per scenario on every interpreter found: Debian's
    stripped build and pyenv's with symbols, 3.8 to 3.13 (and more with
    $MIXSTACK_EXTRA_PYTHONS). Interpreter machinery, ctypes and libffi are
    left out, named or not; modules are named without versions or ABI
    tags."""
    by_scenario = {}
    for (tag, scenario), (a, res) in sample_signatures.items():
        by_scenario.setdefault(scenario, {})[tag] = res["signature"]
        # The recorded Python stacks are what the signature keeps.
        sig_frames = [f["text"] for f in res["signature_frames"]]
        kept = [f"{name}:{func}" for name, func in python_frames(a.manifest)]
        assert all(t in kept for t in sig_frames if ".py:" in t), (tag, scenario, res["signature"])
    compared = 0
    for scenario, sigs in by_scenario.items():
        assert len(set(sigs.values())) == 1, (scenario, sigs)
        compared += len(sigs) > 1
    assert compared or len(sample_signatures) < 2
    cells = by_scenario.get("ctypes-callback", {})
    if len(cells) > 1:
        [sig] = set(cells.values())
        assert "ctypes-callback.py:on_record | ctypes-callback.py:dispatch" in sig, sig


def test_signature_names_no_versions_or_bridges(sample_signatures):
    for (tag, scenario), (a, res) in sample_signatures.items():
        for f in res["signature_frames"]:
            text = f["text"]
            assert not re.search(r"\.so\.\d|\.cpython-\d|\.abi3\.so", text), (tag, text)
            assert not re.search(r"ffi_|libffi|_ctypes|ctypes/", text), (tag, text)


def test_signature_differs_between_scenarios(sample_signatures):
    per_scenario = {}
    for (tag, scenario), (a, res) in sample_signatures.items():
        per_scenario.setdefault(scenario, set()).add(res["signature"])
    for s1, s2 in itertools.combinations(per_scenario, 2):
        assert not per_scenario[s1] & per_scenario[s2], (s1, s2)
    # Signatures carry no address, Rust hash, clone suffix or line number.
    for (tag, scenario), (a, res) in sample_signatures.items():
        sig = res["signature"]
        assert "0x" not in sig and ".llvm." not in sig and ".cold" not in sig
        assert not any(part.rsplit(":", 1)[-1].isdigit()
                       for part in sig.split(" | ")), sig


def test_kinds_of_samples(sample_signatures):
    want = {"segfault-in-rust": "SIGSEGV", "deep-interleave": "SIGSEGV",
            "stripped": "SIGSEGV", "abort-in-callback": "panic",
            "ctypes-callback": "SIGSEGV",
            "exit-crash": "abort", "gil-deadlock": "deadlock",
            "pending-panic": "snapshot"}
    for (tag, scenario), (a, res) in sample_signatures.items():
        if scenario in want:
            assert res["kind"] == want[scenario], (tag, scenario)
        if scenario == "exit-crash":
            assert "finalizing (atexit)" in res["reason"]
        if scenario == "pending-panic":
            assert "PanicException" in res["reason"]
            assert a.manifest["exception"]["pending"]["message"] in res["reason"]


# ---------------------------------------------------------------------------
# mixstack triage of several cores, and of cores it cannot read
# ---------------------------------------------------------------------------

CRASHER = r"""
#include <stdio.h>
int main(void) { fputs("about to crash\n", stderr); *(volatile int *)16 = 1; return 0; }
"""


@needs_file_cores
@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
def test_triage_missing_executable(tmp_path, samples):
    """A core whose executable was deleted gets a one-line error; the other
    cores are triaged; the status says some failed."""
    src = tmp_path / "crasher.c"
    src.write_text(CRASHER)
    exe = tmp_path / "crasher"
    subprocess.run(["cc", "-g", "-o", exe, src], check=True, timeout=LIMIT)
    proc = run(["run", "--out", tmp_path / "out", "--", exe], tmp_path)
    assert proc.returncode == 139
    [res] = triage_doc(tmp_path / "out")["results"]
    assert res["kind"] == "SIGSEGV" and res["crash"]["function"] == "main"
    c_core = res["target"]["core"]

    crash = next((a for a in samples if a.manifest.get("signal")), None)
    others = [Path(crash.dir) / "core"] if crash else []
    ok = run(["triage", c_core, *others], tmp_path)
    assert ok.returncode == 0, ok.stderr

    exe.unlink()
    proc = run(["triage", c_core, *others], tmp_path)
    stderr = proc.stderr.decode()
    assert proc.returncode == (1 if others else 2)
    assert f"cannot triage {c_core}: executable {exe} not found" in stderr
    assert len(stderr.strip().splitlines()) == 1
    if others:
        assert b"==== mixstack triage: " in proc.stdout
    doc = json.loads(run(["triage", "--json", c_core, *others], tmp_path).stdout)
    assert "not found" in doc["results"][0]["error"]
    assert [("error" in r) for r in doc["results"]] == [True] + [False] * len(others)

    # A core from "another machine": nothing under the sysroot.
    if others:
        empty = tmp_path / "empty"
        empty.mkdir()
        proc = run(["triage", "--sysroot", empty, others[0]], tmp_path)
        assert proc.returncode == 2
        assert b"not found" in proc.stderr
    # Not a core at all.
    proc = run(["triage", src, *others], tmp_path)
    assert proc.returncode == (1 if others else 2)
    assert f"cannot triage {src}: ".encode() in proc.stderr


def test_triage_markdown_and_json(samples):
    cells = [a for a in samples
             if a.scenario in ("abort-in-callback", "gil-deadlock")][:2]
    if not cells:
        pytest.skip("no crash samples")
    cores = [Path(a.dir) / "core" for a in cells]
    md = run(["triage", "--markdown", *cores], REPO)
    assert md.returncode == 0
    text = md.stdout.decode()
    assert text.startswith("## mixstack crash triage\n")
    assert text.count("\n### ") == len(cores)
    assert "```text\n" in text
    doc = json.loads(run(["triage", "--json", *cores], REPO).stdout)
    assert doc["run"] is None and doc["notes"] == []
    for res in doc["results"]:
        assert len(res["signature_id"]) == 16
        assert res["signature_frames"]
        assert all(f["text"] in res["signature"] for f in res["signature_frames"])
        assert any(t["in_signature"] for t in res["threads"])


def test_triage_live_pid(samples_harness, interp):
    """mixstack triage PID: a live deadlock, left running and untraced."""
    with samples_harness.live("gil-deadlock", interp) as (pid, m):
        proc = run(["triage", "--json", pid], REPO)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        [res] = json.loads(proc.stdout)["results"]
        assert res["source"] == f"pid {pid}"
        assert res["kind"] == "deadlock"
        assert [s["tid"] for s in res["stacks"]] == [
            m["deadlock"]["gil_holder"], m["deadlock"]["mutex_holder"]]
        assert not pid_gone(pid)
        status = Path(f"/proc/{pid}/status").read_text()
        assert "TracerPid:\t0" in status
