"""The crash-samples harness (scripts/samples) and the artefacts it produces.

Everything asserted here is known independently of mixstack: the scenario
table below, the ELF notes of the cores, /proc of live processes, the Rust
and Python sources the manifests point into.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from samples_lib import elfcore  # noqa: E402
from samples_lib import harness as H  # noqa: E402
from interp_slots import FOUND, SLOT_IDS, interp_or_skip  # noqa: E402

RUST_SRC = REPO / "crash-samples" / "ext" / "src" / "lib.rs"

# What each scenario must produce, stated independently of the drivers.
EXPECTED = {
    "pending-panic": {"kind": "snapshot", "signal": None},
    "handled-panic": {"kind": "snapshot", "signal": None},
    "abort-in-callback": {"kind": "crash", "signal": "SIGABRT"},
    "segfault-in-rust": {"kind": "crash", "signal": "SIGSEGV"},
    "gil-deadlock": {"kind": "snapshot", "signal": None},
    "gil-hog": {"kind": "snapshot", "signal": None},
    "exit-crash": {"kind": "crash", "signal": "SIGABRT"},
    "deep-interleave": {"kind": "crash", "signal": "SIGSEGV"},
    "many-threads": {"kind": "snapshot", "signal": None},
    "stripped": {"kind": "crash", "signal": "SIGSEGV"},
    "ctypes-callback": {"kind": "crash", "signal": "SIGSEGV"},
    # Only on the lane's interpreters (tests/integration/test_lane.py).
    "embed-panic": {"kind": "crash", "signal": "SIGABRT"},
    "embed-finalize-hang": {"kind": "snapshot", "signal": None},
    "subinterpreters": {"kind": "snapshot", "signal": None},
    # asyncio hangs: their manifests are checked by tests/integration/test_asyncio.py.
    "async-rust-never": {"kind": "snapshot", "signal": None},
    "async-loop-blocked": {"kind": "snapshot", "signal": None},
    "async-cycle": {"kind": "snapshot", "signal": None},
    "async-runtime-gone": {"kind": "snapshot", "signal": None},
}
ASYNC = {name for name in EXPECTED if name.startswith("async-")}
DEBIAN_ONLY = {"stripped"}

REQUIRED_KEYS = {"scenario", "kind", "interpreter", "extension", "pid", "signal",
                 "crashed_tid", "threads", "gil_holder_tid", "exception", "panic",
                 "phase", "finalizing_step", "expect_crash_frame"}
THREAD_KEYS = {"tid", "name", "role", "python_stack", "holds_gil", "waits_gil"}
PY_ROLES = {"python-main", "python-worker"}


def cells():
    for slot in SLOT_IDS:
        for sc in EXPECTED:
            if sc in ASYNC:
                continue
            if sc in DEBIAN_ONLY and not slot.endswith("-debian"):
                continue
            if H.scenarios()[sc].meta.get("interpreters", "all") != "all" \
                    and sc not in DEBIAN_ONLY:
                continue
            yield pytest.param(slot, sc, id="%s-%s" % (slot, sc))


def artefact(samples, slot, scenario):
    it = interp_or_skip(slot)
    err = samples.errors.get((it.tag, scenario))
    if err:
        pytest.fail("%s on %s failed: %s" % (scenario, it.tag, err))
    a = samples.get(it.tag, scenario)
    assert a is not None, "no artefact for %s on %s" % (scenario, it.tag)
    return it, a


def source_line(path, line):
    with open(path) as f:
        lines = f.read().splitlines()
    assert 1 <= line <= len(lines), "%s has no line %d" % (path, line)
    return lines[line - 1]


def thread_by_role(m, role):
    return [t for t in m["threads"] if t["role"] == role]


def main_thread(m):
    ts = thread_by_role(m, "python-main")
    assert len(ts) == 1, m["threads"]
    return ts[0]


# ---------------------------------------------------------------------------
# scenarios and build
# ---------------------------------------------------------------------------

def test_scenarios_listed_and_documented():
    scs = H.scenarios()
    assert set(scs) == set(EXPECTED)
    for name, sc in scs.items():
        assert sc.meta["kind"] == EXPECTED[name]["kind"], name
        assert "debugger should show" in sc.doc, name
        assert sc.doc.startswith(name + ":"), name
    out = subprocess.run([str(REPO / "scripts" / "samples"), "list"], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True, timeout=60).stdout
    for name in EXPECTED:
        assert re.search(r"^%s\s" % re.escape(name), out, re.M), out


def test_build_outputs(samples_build):
    ext, stripped = Path(samples_build.ext), Path(samples_build.ext_stripped)
    assert ext.name == stripped.name == "mixsample.abi3.so"
    secs = elfcore.section_names(str(ext))
    assert ".symtab" in secs and ".debug_line" in secs, sorted(secs)
    assert ".symtab" not in elfcore.section_names(str(stripped))
    dyn = subprocess.run(["readelf", "--dyn-syms", "-W", str(stripped)], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert "PyInit_mixsample" in dyn
    # no libpython dependency (extension module), abi3
    needed = subprocess.run(["readelf", "-d", str(ext)], stdout=subprocess.PIPE,
                            universal_newlines=True, check=True).stdout
    assert "libpython" not in needed
    major, minor = (int(x) for x in samples_build.pyo3_version.split(".")[:2])
    assert (major, minor) >= (0, 27), samples_build.pyo3_version
    assert "abi3-py38" in (REPO / "crash-samples" / "ext" / "Cargo.toml").read_text()


def test_build_is_cached(samples_build):
    t0 = time.time()
    again = H.build()
    assert again.ext_sha256 == samples_build.ext_sha256
    assert time.time() - t0 < 30


# ---------------------------------------------------------------------------
# the matrix: every scenario x every interpreter
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("slot,scenario", list(cells()))
def test_artefact(samples, slot, scenario):
    it, a = artefact(samples, slot, scenario)
    d = Path(a.dir)
    for f in ("core", "manifest.json", "stdout", "stderr"):
        assert (d / f).is_file(), f
    assert d == H.out_dir() / "artefacts" / it.tag / scenario
    m = a.manifest
    exp = EXPECTED[scenario]

    assert REQUIRED_KEYS <= set(m), REQUIRED_KEYS - set(m)
    assert m["scenario"] == scenario and m["kind"] == exp["kind"]
    assert m["interpreter"]["version"] == it.version
    assert m["interpreter"]["hexversion"] == it.hexversion
    assert os.path.samefile(m["interpreter"]["path"], it.path)
    assert isinstance(m["interpreter"]["debug_info"], bool)
    assert isinstance(m["interpreter"]["stripped"], bool)
    assert Path(m["extension"]["path"]).is_file()
    assert m["extension"]["stripped"] == (scenario == "stripped")
    assert isinstance(m["pid"], int) and m["pid"] > 0

    # threads
    tids = [t["tid"] for t in m["threads"]]
    assert tids and len(set(tids)) == len(tids)
    assert m["pid"] in tids
    for t in m["threads"]:
        assert THREAD_KEYS <= set(t), t
        assert isinstance(t["tid"], int) and t["tid"] > 0
        assert t["name"], t
        if t["role"] in PY_ROLES:
            assert t["python_stack"], t
        for i, fr in enumerate(t["python_stack"]):
            assert set(fr) >= {"function", "file", "line"}
            assert os.path.isabs(fr["file"]) and os.path.isfile(fr["file"]), fr
            text = source_line(fr["file"], fr["line"])
            # every recorded line is a line executing a call
            assert "(" in text, (fr, text)
    main = main_thread(m)
    inner = main["python_stack"][0]
    # the innermost Python frame of the main thread is at its call into Rust
    assert "ms." in source_line(inner["file"], inner["line"]), inner
    assert inner["file"].endswith("/%s.py" % scenario)
    holders = [t["tid"] for t in m["threads"] if t["holds_gil"]]
    assert holders == ([m["gil_holder_tid"]] if m["gil_holder_tid"] else [])

    # the core
    info = elfcore.core_info(str(d / "core"))
    assert info["is_core"], "e_type %s" % info["e_type"]
    assert sorted(info["tids"]) == sorted(tids), "core threads != manifest threads"
    mapped = {f["path"] for f in info["files"]}
    assert m["extension"]["path"] in mapped
    assert os.path.realpath(m["interpreter"]["path"]) in mapped or any(
        "libpython" in p for p in mapped)

    if exp["kind"] == "crash":
        signum = int(getattr(signal, exp["signal"]))
        assert m["signal"] == {"number": signum, "name": exp["signal"]}
        assert info["signal"] == signum, info["threads"][:1]
        # a kernel core lists the thread that took the signal first
        assert info["tids"][0] == m["crashed_tid"]
        assert m["crashed_tid"] == main["tid"]
        assert m["expect_crash_object"] == "mixsample.abi3.so"
        run = json.loads((d / "run.json").read_text())
        assert run["returncode"] == -signum
    else:
        assert m["signal"] is None and m["crashed_tid"] is None


# ---------------------------------------------------------------------------
# scenario facts
# ---------------------------------------------------------------------------

def check_panic_location(panic, message):
    assert panic["message"] == message
    assert panic["file"] == "src/lib.rs"
    text = source_line(RUST_SRC, panic["line"])
    assert text[panic["col"] - 1:].startswith("panic!("), text


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_pending_panic(samples, slot):
    _, a = artefact(samples, slot, "pending-panic")
    m = a.manifest
    main = main_thread(m)
    assert m["exception"]["tid"] == main["tid"] == m["gil_holder_tid"]
    assert m["exception"]["handled"] is None
    assert m["exception"]["pending"]["type"] == "pyo3_runtime.PanicException"
    assert m["exception"]["pending"]["message"] == "pending-panic: boom 1234 in transform"
    assert m["exception"]["pending"]["base"][0] == "BaseException"
    check_panic_location(m["panic"], "pending-panic: boom 1234 in transform")
    assert m["panic"]["tid"] == main["tid"]
    assert [f["function"] for f in main["python_stack"]] == ["transform", "process_batch", "<module>"]
    assert "mixsample::block_on_pipe" in main["native_expect"]


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_handled_panic(samples, slot):
    _, a = artefact(samples, slot, "handled-panic")
    m = a.manifest
    main = main_thread(m)
    assert m["exception"]["pending"] is None
    assert m["exception"]["handled"]["type"] == "pyo3_runtime.PanicException"
    assert m["exception"]["handled"]["message"] == "handled-panic: invalid record 77"
    check_panic_location(m["panic"], "handled-panic: invalid record 77")
    assert [f["function"] for f in main["python_stack"]] == ["validate", "load", "<module>"]
    # the blocking call is inside the except block
    src = Path(main["python_stack"][0]["file"]).read_text().splitlines()
    before = src[:main["python_stack"][0]["line"]]
    assert any(l.strip().startswith("except BaseException") for l in before[-6:])
    assert "handled-panic: invalid record 77" in (Path(a.dir) / "stderr").read_text()


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_abort_in_callback(samples, slot):
    _, a = artefact(samples, slot, "abort-in-callback")
    m = a.manifest
    check_panic_location(m["panic"], "abort-in-callback: boom 4242")
    assert m["panic"]["tid"] == m["crashed_tid"]
    assert m["expect_crash_frame"] == "mixsample::boom_callback"
    assert 'panic!("abort-in-callback' in source_line(RUST_SRC, m["panic"]["line"])
    err = (Path(a.dir) / "stderr").read_text()
    assert "abort-in-callback: boom 4242" in err
    assert "panic in a function that cannot unwind" in err


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_segfault_in_rust(samples, slot):
    _, a = artefact(samples, slot, "segfault-in-rust")
    m = a.manifest
    assert m["expect_crash_frame"] == "mixsample::segfault_now"
    assert [f["function"] for f in main_thread(m)["python_stack"]] == \
        ["parse_record", "load_records", "<module>"]
    info = elfcore.core_info(str(Path(a.dir) / "core"))
    assert info["siginfo"]["si_signo"] == signal.SIGSEGV
    assert info["siginfo"]["si_addr"] == 0x10 == m["fault_address"]


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_gil_deadlock(samples, slot):
    _, a = artefact(samples, slot, "gil-deadlock")
    m = a.manifest
    main = main_thread(m)
    assert m["gil_holder_tid"] == main["tid"] and main["holds_gil"]
    b = [t for t in m["threads"] if t["tid"] != main["tid"]]
    assert len(b) == 1
    b = b[0]
    assert b["name"] == "mix-deadlock-b" and b["waits_gil"] and not b["holds_gil"]
    assert b["python_stack"] == []
    assert m["deadlock"] == {"gil_holder": main["tid"], "mutex_holder": b["tid"]}
    assert [f["function"] for f in main["python_stack"]] == ["refresh_cache", "serve", "<module>"]


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_gil_hog(samples, slot):
    _, a = artefact(samples, slot, "gil-hog")
    m = a.manifest
    main = main_thread(m)
    assert m["gil_holder_tid"] == main["tid"]
    waiters = thread_by_role(m, "python-worker")
    assert len(waiters) == 3
    assert sorted(t["name"] for t in waiters) == ["py-gil-waiter-1", "py-gil-waiter-2",
                                                  "py-gil-waiter-3"]
    for t in waiters:
        assert t["waits_gil"] and not t["holds_gil"]
        assert t["python_stack"][0]["function"] == "waiter"
        assert "time.sleep(" in source_line(t["python_stack"][0]["file"], t["python_stack"][0]["line"])
        assert [f["function"] for f in t["python_stack"][1:]] == ["run", "_bootstrap_inner", "_bootstrap"]


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_exit_crash(samples, slot):
    _, a = artefact(samples, slot, "exit-crash")
    m = a.manifest
    assert m["phase"] == "finalizing" and m["finalizing_step"] == "atexit"
    main = main_thread(m)
    # called by the atexit machinery from C: no <module> frame below
    assert [f["function"] for f in main["python_stack"]] == ["flush_native_cache"]
    assert m["expect_crash_frame"] == "mixsample::abort_now"
    assert m["abort_message"] in (Path(a.dir) / "stderr").read_text()


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_deep_interleave(samples, slot):
    _, a = artefact(samples, slot, "deep-interleave")
    m = a.manifest
    names = [f["function"] for f in main_thread(m)["python_stack"]]
    assert names[:25] == ["level_%d" % i for i in range(25)]
    assert names[25:] == ["run", "<module>"]
    assert m["depth"] == 24


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_many_threads(samples, slot):
    _, a = artefact(samples, slot, "many-threads")
    m = a.manifest
    assert len(m["threads"]) == 64
    info = elfcore.core_info(str(Path(a.dir) / "core"))
    assert len(info["tids"]) == 64
    assert m["gil_holder_tid"] is None
    roles = {}
    for t in m["threads"]:
        roles[t["role"]] = roles.get(t["role"], 0) + 1
        assert not t["holds_gil"] and not t["waits_gil"]
    assert roles == {"python-main": 1, "python-worker": 26, "rust-attached": 24, "rust-only": 13}
    prefixes = {"py-lock-": 14, "py-rust-": 12, "rs-att-py-": 12, "rs-att-det-": 12, "rs-only-": 13}
    for p, n in prefixes.items():
        assert len([t for t in m["threads"] if t["name"].startswith(p)]) == n, p
    for t in m["threads"]:
        if t["name"].startswith(("rs-only-", "rs-att-det-")):
            assert t["python_stack"] == []
        elif t["name"].startswith("rs-att-py-"):
            assert [f["function"] for f in t["python_stack"]] == ["attached_block"]
        else:
            assert t["python_stack"]


def test_stripped(samples):
    deb = [it for it in FOUND if it.origin == "debian"]
    if not deb:
        pytest.skip("Debian /usr/bin/python3.X not found")
    _, a = artefact(samples, "cpython-3.11-debian" if deb[0].version.startswith("3.11.") else deb[0].tag,
                    "stripped")
    m = a.manifest
    assert m["extension"]["stripped"] is True
    assert ".symtab" not in elfcore.section_names(m["extension"]["path"])
    assert m["interpreter"]["stripped"] is True and m["interpreter"]["debug_info"] is False
    assert m["expect_crash_frame"] is None
    assert all(not any("::" in n for n in t["native_expect"]) for t in m["threads"])


def test_interpreter_facts(samples):
    for a in samples:
        it = H.find_interp(a.interp_tag)
        if it.origin == "pyenv":
            assert a.manifest["interpreter"]["debug_info"] is True, a.dir


# ---------------------------------------------------------------------------
# cache, processes, live mode
# ---------------------------------------------------------------------------

def test_matrix_is_cached(samples, interpreters):
    t0 = time.time()
    results = H.run_matrix([i.tag for i in interpreters], verbose=False)
    assert all(r.status == "cached" for r in results if (r.interp_tag, r.scenario) not in samples.errors)
    assert time.time() - t0 < 20


@pytest.mark.parametrize("scenario", ["gil-deadlock", "segfault-in-rust"])
def test_produce_leaves_no_process(tmp_path, samples_build, scenario):
    it = FOUND[-1]
    d = H.produce(scenario, it, out=str(tmp_path), build_info=samples_build, force=True)
    m = json.loads((d / "manifest.json").read_text())
    assert not H.pid_alive(m["pid"])
    assert H.processes_in_group(m["pid"]) == []
    assert elfcore.core_info(str(d / "core"))["is_core"]


@pytest.mark.parametrize("slot", SLOT_IDS)
def test_live(samples_build, slot):
    it = interp_or_skip(slot)
    with H.live("gil-deadlock", it, build_info=samples_build) as (pid, m):
        assert H.pid_alive(pid) and m["pid"] == pid
        tasks = sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
        assert tasks == sorted(t["tid"] for t in m["threads"])
        futex = str(H.SYSCALLS["x86_64"]["futex"])
        for t in m["threads"]:
            # B waits for the GIL with 5 ms timed waits: mostly in futex
            seen = [Path("/proc/%d/task/%d/syscall" % (pid, t["tid"])).read_text().split()[0]
                    for _ in range(50) if time.sleep(0.002) is None]
            assert seen.count(futex) >= 40, (t["name"], seen)
        time.sleep(0.3)
        assert H.pid_alive(pid)  # a real deadlock: still there
    assert not H.pid_alive(pid)
    assert H.processes_in_group(pid) == []


def test_live_kills_on_error(samples_build):
    it = FOUND[-1]
    with pytest.raises(RuntimeError):
        with H.live("pending-panic", it, build_info=samples_build) as (pid, m):
            raise RuntimeError("boom")
    assert not H.pid_alive(pid)


def test_live_rejects_crash_scenario():
    with pytest.raises(H.HarnessError):
        with H.live("segfault-in-rust", FOUND[-1]):
            pass


def test_cli_live(samples_build):
    it = FOUND[-1]
    p = subprocess.Popen([str(REPO / "scripts" / "samples"), "live", "pending-panic",
                          "--interp", it.tag], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        line = p.stdout.readline()
        info = json.loads(line)
        m = json.loads(Path(info["manifest"]).read_text())
        assert m["pid"] == info["pid"] and H.pid_alive(info["pid"])
        assert m["exception"]["pending"]["type"] == "pyo3_runtime.PanicException"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not H.pid_alive(info["pid"])


def test_core_pattern_glob():
    g = H._pattern_glob("core.%e.%p.%t", 1234, 11, "/tmp/x")
    assert g == "/tmp/x/core.*.1234.*"
    assert H._pattern_glob("/var/crash/%s-%p", 7, 6, "/w") == "/var/crash/6-7"


def test_core_pattern_pipe_message(monkeypatch):
    monkeypatch.setattr(H, "_read", lambda p, d="": "|/usr/bin/some-handler %p" if "core_pattern" in p else d)
    msg = H.core_setup_problem()
    assert msg and "core_pattern" in msg and "sysctl" in msg


# ---------------------------------------------------------------------------
# cross-checks with gdb (an independent debugger) on the cores
# ---------------------------------------------------------------------------

def _gdb(exe, core, *commands, timeout=300):
    cmd = ["gdb", "-nx", "-batch", "-iex", "set auto-load off",
           "-iex", "set debuginfod enabled off", "-ex", "set pagination off"]
    for c in commands:
        cmd += ["-ex", c]
    cmd += [exe, core]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout).stdout


def _gdb_threads(exe, core):
    out = _gdb(exe, core, "thread apply all bt")
    threads, cur = {}, None
    for line in out.splitlines():
        mm = re.match(r"^Thread \d+ \(.*?LWP (\d+)\)", line)
        if mm:
            cur = int(mm.group(1))
            threads[cur] = []
        elif cur is not None and line.startswith("#"):
            threads[cur].append(line)
    return threads


def _has_frame(frames, name):
    text = "\n".join(frames)
    short = name.split("::")[-1]
    return name in text or re.search(r"(^|[\s:])%s\b" % re.escape(short), text, re.M) is not None


@pytest.mark.slow
@pytest.mark.skipif(not H.shutil.which("gdb"), reason="gdb not installed")
@pytest.mark.parametrize("slot", SLOT_IDS)
def test_native_expect_matches_gdb(samples, slot):
    """Every native_expect / expect_crash_frame name shows up in gdb's
    backtrace of that thread in the core."""
    from concurrent.futures import ThreadPoolExecutor
    it = interp_or_skip(slot)
    arts = samples.for_interp(it.tag)
    assert arts

    def check(a):
        m = a.manifest
        threads = _gdb_threads(os.path.realpath(m["interpreter"]["path"]), str(Path(a.dir) / "core"))
        problems = []
        if sorted(threads) != sorted(t["tid"] for t in m["threads"]):
            problems.append("%s: gdb threads %s" % (a.scenario, sorted(threads)))
        for t in m["threads"]:
            for n in t.get("native_expect") or []:
                if not _has_frame(threads.get(t["tid"], []), n):
                    problems.append("%s: %s (%s) lacks %s" % (a.scenario, t["name"], t["tid"], n))
        if m.get("expect_crash_frame"):
            if not _has_frame(threads.get(m["crashed_tid"], []), m["expect_crash_frame"]):
                problems.append("%s: crash frame %s missing" % (a.scenario, m["expect_crash_frame"]))
        return problems

    with ThreadPoolExecutor(max_workers=2) as ex:
        problems = [p for ps in ex.map(check, arts) for p in ps]
    assert not problems, "\n".join(problems)


def _tstate_exprs(version):
    minor = int(version.split(".")[1])
    ts = ("_PyRuntime.interpreters.main->tstate_head" if minor <= 10
          else "_PyRuntime.interpreters.main->threads.head")
    pending = ("((PyTypeObject*)%s->curexc_type)->tp_name" % ts if minor <= 11
               else "%s->current_exception->ob_type->tp_name" % ts)
    handled = ("((PyTypeObject*)%s->exc_info->exc_type)->tp_name" % ts if minor <= 10
               else "%s->exc_info->exc_value->ob_type->tp_name" % ts)
    return pending, handled


@pytest.mark.slow
@pytest.mark.skipif(not H.shutil.which("gdb"), reason="gdb not installed")
@pytest.mark.parametrize("slot", [s for s in SLOT_IDS if "pyenv" in s])
def test_exception_state_matches_gdb(samples, slot):
    """The thread state in the core really holds the PanicException as
    pending (pending-panic) or handled (handled-panic); read with gdb and
    the interpreter's DWARF."""
    it = interp_or_skip(slot)
    pending, handled = _tstate_exprs(it.version)
    exe = os.path.realpath(it.path)
    for scenario, expr, other in (("pending-panic", pending, handled),
                                  ("handled-panic", handled, pending)):
        _, a = artefact(samples, slot, scenario)
        core = str(Path(a.dir) / "core")
        out = _gdb(exe, core, "p %s" % expr)
        assert '"PanicException"' in out, (scenario, expr, out[-500:])
        out = _gdb(exe, core, "p %s" % other)
        assert '"PanicException"' not in out, (scenario, other, out[-500:])


# ---------------------------------------------------------------------------
# failure modes of the harness: clear errors, nothing left running
# ---------------------------------------------------------------------------

def _fake_scenario(tmp_path, name, body, kind="snapshot"):
    p = tmp_path / ("%s.py" % name)
    p.write_text('"""%s: test driver."""\nSCENARIO = {"kind": "%s"}\n%s\n' % (name, kind, body))
    return H.Scenario(name, p, "", {"kind": kind, "interpreters": "all", "extension": "normal"})


def test_readiness_timeout_is_clear_and_kills(tmp_path, monkeypatch, samples_build):
    monkeypatch.setattr(H, "READY_TIMEOUT", 2.0)
    sc = _fake_scenario(tmp_path, "hang", "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(600)")
    t0 = time.time()
    with pytest.raises(H.HarnessError, match="did not signal readiness within 2s"):
        with H.live(sc, FOUND[-1], out=str(tmp_path / "out"), build_info=samples_build, keep=True):
            pass
    assert time.time() - t0 < 15
    pid = int(next((tmp_path / "out" / "live").rglob("pid")).read_text())
    assert not H.pid_alive(pid) and H.processes_in_group(pid) == []


def test_early_exit_reports_stderr(tmp_path, samples_build):
    sc = _fake_scenario(tmp_path, "broken", "raise SystemExit('driver exploded')")
    with pytest.raises(H.HarnessError, match="driver exploded"):
        with H.live(sc, FOUND[-1], out=str(tmp_path / "out"), build_info=samples_build):
            pass


def test_crash_scenario_that_does_not_crash(tmp_path, samples_build):
    sc = _fake_scenario(tmp_path, "nocrash", "pass", kind="crash")
    with pytest.raises(H.HarnessError, match="without a manifest"):
        H.produce(sc, FOUND[-1], out=str(tmp_path / "out"), build_info=samples_build)
