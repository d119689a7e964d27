"""The CLI's contract: help, version, exit status, clean one-line errors on
bad input, partial reports with warnings, JSON that validates."""
import json
import re
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitool import (MIXSTACK, REPO, NT_FILE, crash_core, gcore, process_state,
                     report_json, rewrite_note_type, run_mixstack)

pytestmark = pytest.mark.skipif(not MIXSTACK.exists(),
                                reason=f"{MIXSTACK} not built")

SCHEMA = json.loads((REPO / "docs" / "mixstack-1.schema.json").read_text())


def validate(doc):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, SCHEMA)


def assert_one_line_error(proc, *words):
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixstack: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def sleeper_core(tmp_path_factory):
    """A real SIGSEGV core of /bin/sleep (a C program with no debug info)."""
    work = tmp_path_factory.mktemp("sleeper")
    core = crash_core(["/bin/sleep", "1000"], work)
    if core is None:
        pytest.skip("core_pattern sends cores elsewhere: "
                    + Path("/proc/sys/kernel/core_pattern").read_text())
    return core


@pytest.fixture()
def sleeper():
    proc = subprocess.Popen(["/bin/sleep", "1000"])
    time.sleep(0.2)
    yield proc
    proc.kill()
    proc.wait()


def test_help_and_version():
    proc = run_mixstack("--help")
    assert proc.returncode == 0 and "Usage: mixstack core" in proc.stdout
    assert "--json" in proc.stdout and "--sysroot" in proc.stdout
    proc = run_mixstack("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("mixstack ")
    # The library the CLI was built with says the same at run time (what
    # the ctypes-based gdb plugin can check). In a child: an ASan build's
    # library cannot be loaded into this process.
    import sys
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
            "lib.ms_version.restype = ctypes.c_char_p; "
            "print(lib.ms_version().decode())")
    env = dict(os.environ, ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0")
    child = subprocess.run([sys.executable, "-c", code,
                            str(MIXSTACK.parent / "libmixstack.so")],
                           capture_output=True, text=True, env=env, timeout=60)
    assert child.returncode == 0, child.stderr
    assert proc.stdout.split()[1] == child.stdout.strip()


def test_usage_errors():
    assert run_mixstack().returncode == 2
    assert run_mixstack("frobnicate").returncode == 2
    assert run_mixstack("core").returncode == 2
    assert run_mixstack("pid", "notanumber").returncode == 2
    assert run_mixstack("core", "x", "--no-such-option").returncode == 2


def test_not_an_elf_file(tmp_path):
    path = tmp_path / "text"
    path.write_text("hello\n" * 100)
    assert_one_line_error(run_mixstack("core", path), "not an ELF")


def test_missing_file(tmp_path):
    assert_one_line_error(run_mixstack("core", tmp_path / "nope"))


def test_elf_but_not_core():
    assert_one_line_error(run_mixstack("core", "/bin/true"), "not a core")


def test_crash_core_report(sleeper_core):
    status, doc = report_json("core", sleeper_core)
    validate(doc)
    target = doc["target"]
    assert target["kind"] == "core"
    assert target["signal"] == {"number": 11, "name": "SIGSEGV"}
    assert target["executable"].endswith("sleep")
    assert len(doc["threads"]) == 1
    thread = doc["threads"][0]
    assert thread["crashed"] and thread["tid"] == target["crashed_tid"]
    names = [f["function"] or "" for f in thread["frames"]]
    assert any("nanosleep" in n for n in names), names
    assert any(n == "__libc_start_main" or n.startswith("__libc_start_call_main")
               for n in names), names
    text = run_mixstack("core", sleeper_core)
    assert text.returncode == status
    assert "signal: SIGSEGV (11)" in text.stdout


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.1, 0.5, 0.9, 0.999])
def test_truncated_core(sleeper_core, tmp_path, fraction):
    data = sleeper_core.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[: max(64, int(len(data) * fraction))])
    proc = run_mixstack("core", cut, "--json", timeout=60)
    assert proc.returncode in (1, 2), proc
    if proc.returncode == 2:
        assert_one_line_error(proc)
    else:
        doc = json.loads(proc.stdout)
        validate(doc)
        assert any("truncated" in w for w in doc["warnings"]), doc["warnings"]


def test_executable_that_does_not_match(sleeper_core):
    status, doc = report_json("core", sleeper_core, "/bin/true")
    assert status == 1
    assert any("does not match" in w for w in doc["warnings"]), doc["warnings"]


def test_missing_libraries_under_sysroot(sleeper_core, tmp_path):
    status, doc = report_json("core", sleeper_core, "--sysroot", tmp_path)
    assert status == 1
    missing = [w for w in doc["warnings"] if "missing file" in w]
    assert any("libc.so.6" in w for w in missing), doc["warnings"]
    assert len(doc["threads"]) == 1


def test_library_path_finds_moved_files(sleeper_core, tmp_path):
    """Files found by name in --lib-path when absent under --sysroot."""
    status, doc = report_json("core", sleeper_core, "--sysroot", tmp_path / "none",
                              "--lib-path", "/usr/lib/x86_64-linux-gnu",
                              "--lib-path", "/usr/bin", "--lib-path", "/lib64")
    assert not any("libc.so.6" in w for w in doc["warnings"]), doc["warnings"]
    names = [f["function"] or "" for f in doc["threads"][0]["frames"]]
    assert any("nanosleep" in n for n in names), names


def test_core_without_nt_file(sleeper_core, tmp_path):
    stripped = rewrite_note_type(sleeper_core, tmp_path / "nofile", NT_FILE)
    proc = run_mixstack("core", stripped, "--json")
    assert proc.returncode in (1, 2)
    if proc.returncode == 1:
        doc = json.loads(proc.stdout)
        validate(doc)
        assert any("NT_FILE" in w for w in doc["warnings"]), doc["warnings"]
    else:
        assert_one_line_error(proc, "NT_FILE")


def test_gcore_snapshot_has_no_signal(sleeper, tmp_path):
    core = gcore(sleeper.pid, tmp_path / "snap")
    status, doc = report_json("core", core)
    validate(doc)
    assert doc["target"]["signal"] is None
    assert doc["target"]["pid"] == sleeper.pid


def test_pid_that_does_not_exist():
    assert_one_line_error(run_mixstack("pid", "999999999"))
    # A pid number that is free right now.
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    assert_one_line_error(run_mixstack("pid", pid), "no process")


def test_live_process(sleeper):
    status, doc = report_json("pid", sleeper.pid)
    validate(doc)
    assert doc["target"]["kind"] == "pid" and doc["target"]["pid"] == sleeper.pid
    names = [f["function"] or "" for f in doc["threads"][0]["frames"]]
    assert any("nanosleep" in n for n in names), names
    state, tracer = process_state(sleeper.pid)
    assert tracer == 0 and state in "SR", (state, tracer)
    assert sleeper.poll() is None



# ---------------------------------------------------------------------------
# Saying what went wrong (issue 16): per-command help, unexpected words,
# executables that are not the core's, the warnings and JSON of a section,
# the wording of the GIL diagnosis and of panic counts. Sample cores and
# their manifests (what the processes recorded themselves).
# ---------------------------------------------------------------------------

SECTIONS = ("gil", "err", "panic", "phase", "threads")


def sample(samples, scenario, origin=None):
    cells = [a for a in samples.for_scenario(scenario)
             if origin is None or a.interp_tag.endswith(origin)]
    if not cells:
        pytest.skip(f"no {scenario} sample")
    return cells[0]


def other_interpreter(samples, artefact):
    """An interpreter binary that is not the one of artefact's core."""
    mine = os.path.realpath(artefact.manifest["interpreter"]["path"])
    for a in samples:
        path = a.manifest["interpreter"]["path"]
        if os.path.realpath(path) != mine and os.path.exists(path):
            return path
    pytest.skip("a single interpreter")


@pytest.mark.parametrize("command", ("core", "pid", "triage", "run", "tasks") + SECTIONS)
def test_command_help(command):
    glob = run_mixstack("--help").stdout
    proc = run_mixstack(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: mixstack {command} "), proc.stdout
    assert proc.stdout != glob
    # Every command is in the global help, which points to this one.
    assert f"\n  {command} " in glob
    if command in SECTIONS + ("tasks",):
        assert "--json" in proc.stdout and "--locals" not in proc.stdout


def test_unexpected_arguments(samples):
    a = sample(samples, "gil-hog")
    core = Path(a.dir) / "core"
    exe = a.manifest["interpreter"]["path"]
    for args, word in [(("gil", core, exe, "extra"), "unexpected argument: extra"),
                       (("core", core, exe, "extra"), "unexpected argument: extra"),
                       (("pid", "1", "extra"), "unexpected argument: extra"),
                       (("threads", "--bogus", core), "--bogus"),
                       (("gil",), "missing operand")]:
        proc = run_mixstack(*args)
        assert proc.returncode == 2, (args, proc)
        first = proc.stderr.splitlines()[0]
        assert first.startswith("mixstack: ") and word in first, (args, proc.stderr)
        assert proc.stdout == ""
    # A word where the EXECUTABLE goes must be one: not taken for a
    # missing file (the core's own executable is there).
    for section in ("gil", "core"):
        proc = run_mixstack(section, core, "extra")
        assert_one_line_error(proc, "executable extra", "No such file")
        assert "missing file" not in proc.stderr
    proc = run_mixstack("gil", core, REPO / "README.md")
    assert_one_line_error(proc, "not an ELF file")
    # triage and run: their own usage errors, said the same way.
    for args, status in [(("triage", "--bogus", core), 2),
                         (("run", "--bogus", "--", "true"), 125)]:
        proc = run_mixstack(*args)
        assert proc.returncode == status, (args, proc)
        first, *rest = proc.stderr.splitlines()
        assert first == "mixstack: unknown option or missing argument: --bogus", proc.stderr
        assert rest == [f"Try 'mixstack {args[0]} --help'."], proc.stderr


def test_executable_of_another_build_is_named(samples):
    a = sample(samples, "gil-hog")
    other = other_interpreter(samples, a)
    for section in SECTIONS:
        proc = run_mixstack(section, Path(a.dir) / "core", other)
        assert proc.returncode == 1, (section, proc)
        warnings = [l for l in proc.stderr.splitlines()
                    if l.startswith("mixstack: warning: ")]
        assert any(f"{other} on this machine does not match the core" in w
                   for w in warnings), (section, proc.stderr)
        assert not any("missing file" in w for w in warnings), warnings


def test_section_warnings_concern_the_section(samples):
    """The Python reader's complaints about a runtime it cannot read (the
    wrong interpreter binary) are for the Python sections, not panic's."""
    a = sample(samples, "gil-hog", "pyenv")
    other = other_interpreter(samples, a)
    core = Path(a.dir) / "core"
    full = json.loads(run_mixstack("core", core, other, "--json").stdout)
    mismatch = [w for w in full["warnings"] if "does not match" in w]
    assert mismatch and len(full["warnings"]) > len(mismatch), full["warnings"]
    for section in SECTIONS:
        doc = json.loads(run_mixstack(section, core, other, "--json").stdout)
        assert set(mismatch) <= set(doc["warnings"]) <= set(full["warnings"])
        text = run_mixstack(section, core, other).stderr
        assert all(f"mixstack: warning: {w}" in text for w in doc["warnings"])
        if section == "panic":
            assert doc["warnings"] == mismatch, doc["warnings"]
        else:
            assert doc["warnings"] == full["warnings"], (section, doc["warnings"])
    # Nothing wrong: nothing on stderr, exit 0.
    for section in SECTIONS:
        proc = run_mixstack(section, core)
        assert (proc.returncode, proc.stderr) == (0, ""), (section, proc)


def test_section_json_is_the_section(samples):
    """mixstack SECTION --json: that section's members only, and the facts
    the sample recorded."""
    cores = {s: sample(samples, s) for s in
             ("gil-deadlock", "pending-panic", "abort-in-callback", "many-threads")}
    full_keys = {"python", "interpreters", "phase", "rust", "diagnoses"}
    want = {"gil": {"python", "interpreters", "diagnoses", "threads"},
            "err": {"python", "threads"},
            "panic": {"python", "rust", "threads"},
            "phase": {"python", "interpreters", "phase"},
            "threads": {"threads"}}
    # Each section on the samples that have facts for it.
    cells = {"gil": ("gil-deadlock", "many-threads"), "err": ("pending-panic",),
             "panic": ("abort-in-callback", "pending-panic"), "phase": ("many-threads",),
             "threads": ("many-threads", "pending-panic")}
    for section in SECTIONS:
        for scenario in cells[section]:
            a = cores[scenario]
            m = a.manifest
            proc = run_mixstack(section, Path(a.dir) / "core", "--json")
            assert proc.returncode == 0, (section, scenario, proc.stderr)
            doc = json.loads(proc.stdout)
            validate(doc)
            assert doc["section"] == section
            assert set(doc) & (full_keys | {"threads"}) == want[section], (section, set(doc))
            assert doc["target"]["pid"] == m["pid"]
            for t in doc.get("threads", ()):
                assert "frames" not in t
            tids = [t["tid"] for t in doc.get("threads", ())]
            if section == "threads":
                assert sorted(tids) == sorted(t["tid"] for t in m["threads"])
                assert all(t["frame"] for t in doc["threads"])
            if section == "gil":
                assert doc["interpreters"][0]["gil"]["holder_tid"] == m["gil_holder_tid"]
                held = [t["tid"] for t in doc["threads"] if t["gil"] == "held"]
                assert held == ([m["gil_holder_tid"]] if m["gil_holder_tid"] else [])
                if scenario == "gil-deadlock":
                    [d] = [d for d in doc["diagnoses"] if d["kind"] == "deadlock"]
                    assert set(d["tids"]) == {m["deadlock"]["gil_holder"],
                                              m["deadlock"]["mutex_holder"]}
            if section == "err":
                pending = m["exception"] and m["exception"].get("pending")
                got = [t for t in doc["threads"] if t["exception"]["pending"]]
                assert len(got) == (1 if pending else 0), (scenario, doc["threads"])
                if pending:
                    assert got[0]["exception"]["pending"]["message"] == pending["message"]
            if section == "panic" and m["panic"] and scenario == "abort-in-callback":
                assert tids == [m["panic"]["tid"]]
                assert doc["threads"][0]["panic"]["message"] == m["panic"]["message"]
            if section == "phase":
                assert doc["phase"]["phase"] == m["phase"]


def test_gil_diagnosis_names_the_python_frame(samples):
    """The GIL holder of gil-hog spins in Rust called from Python: the
    diagnosis names the Rust function and the innermost Python frame with
    its file:line, never where the thread started."""
    cells = samples.for_scenario("gil-hog")
    if not cells:
        pytest.skip("no gil-hog sample")
    for a in cells:
        m = a.manifest
        holder = next(t for t in m["threads"] if t["tid"] == m["gil_holder_tid"])
        top = holder["python_stack"][0]
        doc = json.loads(run_mixstack("gil", Path(a.dir) / "core", "--json").stdout)
        [d] = [d for d in doc["diagnoses"] if d["kind"] == "gil-contention"]
        msg = d["message"]
        assert f"{top['function']} at {top['file']}:{top['line']}" in msg, (a.interp_tag, msg)
        for native in holder["native_expect"]:
            assert native in msg, (a.interp_tag, msg)
        for start in ("start_thread", "__libc_start", "clone", "_start"):
            assert start not in msg, (a.interp_tag, msg)


def test_panic_count_counts_threads(samples):
    """abort-in-callback: one thread panics, and panics again inside the
    panic (cannot unwind): two panics under way, in one thread."""
    for a in samples.for_scenario("abort-in-callback"):
        m = a.manifest
        text = run_mixstack("panic", Path(a.dir) / "core").stdout
        assert "2 threads panicking" not in text and "threads panicking" not in text
        [line] = [l for l in text.splitlines() if l.startswith("rust module ")]
        assert f"in 1 thread: {m['panic']['tid']}" in line, line
        assert m["thread_count"] == 1


def _spinner_interpreters():
    from interp_slots import FOUND
    out = [it.path for it in FOUND if it.origin == "debian"][:1]
    out += [it.path for it in FOUND if it.origin == "pyenv"][-1:]
    return out or [None]


@pytest.mark.parametrize("python", _spinner_interpreters())
def test_gil_diagnosis_of_pure_python_holder(python):
    """Threads spinning in pure Python contend for the GIL: the holder is
    running its Python function (spin, file:line of its loop), not where
    its thread started (start_thread, __libc_start_call_main)."""
    if python is None:
        pytest.skip("no interpreter")
    import ast
    helper = REPO / "tests" / "helpers" / "gil_spinners.py"
    spin = next(n for n in ast.parse(helper.read_text()).body
                if isinstance(n, ast.FunctionDef) and n.name == "spin")
    loop_lines = set(range(spin.lineno + 1, spin.end_lineno + 1))
    proc = subprocess.Popen([python, str(helper)], stdout=subprocess.PIPE, text=True)
    try:
        tids = json.loads(proc.stdout.readline())
        time.sleep(0.5)
        found = None
        for _ in range(5):  # a snapshot may catch the GIL being handed over
            status, doc = report_json("gil", tids[0])
            found = [d for d in doc["diagnoses"] if d["kind"] == "gil-contention"]
            if found:
                break
        assert found, doc["diagnoses"]
        msg = found[0]["message"]
        holder = found[0]["tids"][0]
        assert holder in tids, (tids, found)
        # The snapshot may catch the holder inside a native helper its
        # Python code called (e.g. __tls_get_addr), and a waiter between
        # two waits: then the message names the helper "called from" spin.
        m = re.search(rf"thread {holder} holds the GIL and is running "
                      rf"(?:spin \(|\S+ \(called from spin at )"
                      rf"(\S*gil_spinners\.py):(\d+)\) while [123] threads? wait", msg)
        assert m and int(m.group(2)) in loop_lines, msg
        for start in ("start_thread", "__libc_start", "clone", "_start"):
            assert start not in msg, msg
    finally:
        proc.kill()
        proc.wait(timeout=30)
