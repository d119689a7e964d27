"""The CLI's contract: help, version, exit status, clean one-line errors on
bad input, partial reports with warnings, JSON that validates."""
import json
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

