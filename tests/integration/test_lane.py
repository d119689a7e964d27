"""The test lane (scripts/lane): every crash sample made on Debian unstable's
python3.13, 3.14 and 3.15 (stripped, PGO+LTO) and on 3.14/3.15 with the JIT
on (PYTHON_JIT=1), each process running chrooted in the lane's root, and
analysed from here -- the container case: its cores name files relative to
the root (--sysroot), a live process's /proc/PID/maps names them as this
machine sees them.

The facts checked are those of test_samples_report.py, test_boundary.py and
test_live_report.py (manifest_checks.py), per interpreter, scenario and
fact, on two views of the root:

  nodebug  the root without its /usr/lib/debug: what a user who did not
           install Debian's -dbg packages has (symbols from .dynsym only)
  dbg      the root as it is, with python3.X-dbg's separate debug files

and through the lane's own debuggers with the plugins (`mixstack report
--json`, the root being their filesystem): views gdb and lldb (gdb 18,
lldb-22) on the cores, gdb-live and lldb-live attached to the live samples
(the section at the end of this file).

Known failures are marked xfail(strict=False) with the issue they wait for
(KNOWN below), cell by cell; everything else must pass.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import debugger_batch
from clitool import MIXSTACK, REPO, run_mixstack
from interp_slots import LANE_SLOT_IDS, interp_or_skip
from manifest_checks import (PANICKING_SCENARIOS, check_asyncio, check_crash_frame_is_rust,
                             check_deep_interleave, check_gil_deadlock_diagnosed,
                             check_gil_hog_diagnosed, check_gil_holder_and_waiters,
                             check_handled_panic_traceback, check_native_expectations,
                             check_no_panic, check_panic_recovered,
                             check_pending_and_handled_exceptions, check_phase,
                             check_python_frames_placed, check_python_stacks,
                             check_python_threads_marked, check_schema,
                             check_signal_and_crashing_thread, check_stacks_present,
                             LACKS_STACK)
from samples_lib import elfcore
from samples_lib import harness as H
from test_live_report import LiveReports

pytestmark = [
    pytest.mark.skipif(not MIXSTACK.exists(), reason=f"{MIXSTACK} not built"),
    pytest.mark.skipif(H.lane_root() is None,
                       reason="no test lane (scripts/lane root; needs root)"),
]


# (view, scenario or "*", check name) -> reason: the cells known to fail.
# (Python frame placement without symbols, i13-place, now passes everywhere.)
# (The finalize step from the interpreter's records and the body Py_FinalizeEx
# jumps to named after it, i13-final, now pass too.)
KNOWN = {}

# The lane's debuggers, views of their own (at the end of this file).
DEBUGGERS = ("gdb", "lldb")

SCENARIOS = sorted(n for n, sc in H.scenarios().items()
                   if sc.meta.get("interpreters", "all") == "all")
# Scenarios of 3.14+ (concurrent.interpreters).
SINCE_314 = ["subinterpreters"]
SNAPSHOTS = [n for n in SCENARIOS if H.scenarios()[n].meta["kind"] == "snapshot"]


def check_python_stacks_present(m, doc):
    assert check_python_stacks(m, doc) > 0


FACTS = [check_signal_and_crashing_thread, check_python_stacks_present,
         check_python_threads_marked, check_native_expectations,
         check_python_frames_placed, check_crash_frame_is_rust,
         check_gil_holder_and_waiters, check_pending_and_handled_exceptions,
         check_phase, check_schema, check_stacks_present]
SCENARIO_FACTS = {
    "handled-panic": [check_handled_panic_traceback],
    "abort-in-callback": [check_panic_recovered],
    "gil-deadlock": [check_gil_deadlock_diagnosed],
    "gil-hog": [check_gil_hog_diagnosed],
    "deep-interleave": [check_deep_interleave],
}
# The asyncio hangs: tasks, awaits and diagnoses as the sample saw them.
SCENARIO_FACTS.update({n: [check_asyncio] for n in H.scenarios() if n.startswith("async-")})


# --- embedding: a Rust program with libpython (crash-samples/embed) ----------

EMBED = sorted(n for n, sc in H.scenarios().items() if sc.meta.get("runner") == "embed")


def check_runtime_in_libpython(m, doc):
    """The runtime is found in the shared libpython the program links, not
    in the executable (the Rust program)."""
    assert m["interpreter"]["embedded"] and m["interpreter"]["runtime_object"]
    # A live target's maps name it as this machine sees it, under the root.
    assert doc["python"]["runtime"]["module"].endswith(m["interpreter"]["runtime_object"]), (
        where_(m), doc["python"])
    assert doc["target"]["executable"].endswith(m["interpreter"]["realpath"]), doc["target"]


def check_panic_message_and_location(m, doc):
    """The panic under way: the message and location its hook saw."""
    panic = next(t for t in doc["threads"] if t["tid"] == m["panic"]["tid"])["panic"]
    assert panic and panic["panicking"], (where_(m), panic)
    assert panic["message"] == m["panic"]["message"], (where_(m), panic)
    loc = panic["location"]
    assert (loc["file"], loc["line"], loc["column"]) == (
        m["panic"]["file"], m["panic"]["line"], m["panic"]["col"]), (where_(m), loc)


def check_finalizing_in_atexit(m, doc):
    """Py_FinalizeEx called from Rust, stuck in an atexit handler."""
    phase = doc["phase"]
    assert (phase["phase"], phase["finalize_step"]) == ("finalizing", "atexit"), (
        where_(m), phase)
    assert phase["finalizing_tid"] == m["main_tid"], (where_(m), phase)


def where_(m):
    return f"{m['interpreter']['tag']}/{m['scenario']}"


EMBED_FACTS = {
    "embed-panic": [check_signal_and_crashing_thread, check_runtime_in_libpython,
                    check_python_stacks_present, check_python_threads_marked,
                    check_native_expectations, check_python_frames_placed,
                    check_crash_frame_is_rust, check_gil_holder_and_waiters,
                    check_pending_and_handled_exceptions, check_phase, check_schema,
                    check_panic_message_and_location],
    "embed-finalize-hang": [check_signal_and_crashing_thread, check_runtime_in_libpython,
                            check_python_stacks_present, check_python_threads_marked,
                            check_native_expectations, check_python_frames_placed,
                            check_gil_holder_and_waiters,
                            check_pending_and_handled_exceptions, check_no_panic,
                            check_finalizing_in_atexit, check_schema],
}


# --- subinterpreters (PEP 734 / PEP 684) -----------------------------------

def check_threads_by_interpreter(m, doc):
    """Each interpreter the sample made is reported with its own GIL holder
    (the spinning subinterpreter thread holds its interpreter's GIL, nobody
    the waiting one's), and each thread is in the interpreter it ran in,
    with its GIL state there."""
    got = {i["id"]: i for i in doc["interpreters"]}
    for want in m["interpreters"]:
        assert want["id"] in got, (where_(m), sorted(got))
        gil = got[want["id"]]["gil"]
        assert gil and gil["holder_tid"] == want["gil_holder_tid"], (where_(m), want, gil)
    for mt in m["threads"]:
        if "interpreter_id" not in mt:
            continue
        t = next(t for t in doc["threads"] if t["tid"] == mt["tid"])
        assert t["python"] and t["interpreter_id"] == mt["interpreter_id"], (
            where_(m), mt["tid"], t["interpreter_id"])
        assert t["gil"] == ("held" if mt["holds_gil"] else "released"), (
            where_(m), mt["tid"], t["gil"])


SUBINTERPRETER_FACTS = [check_signal_and_crashing_thread, check_python_stacks_present,
                        check_native_expectations, check_python_frames_placed,
                        check_pending_and_handled_exceptions, check_no_panic, check_phase,
                        check_schema, check_stacks_present, check_threads_by_interpreter]


def facts(scenario):
    if scenario == "subinterpreters":
        return SUBINTERPRETER_FACTS
    if scenario in EMBED_FACTS:
        return EMBED_FACTS[scenario]
    out = FACTS + SCENARIO_FACTS.get(scenario, [])
    if scenario not in PANICKING_SCENARIOS:
        out = out + [check_no_panic]
    return out


def cell(view, slot, scenario, check):
    name = check.__name__
    reason = KNOWN.get((view, scenario, name)) or KNOWN.get((view, "*", name))
    marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
    if view == "dbg" or view.split("-")[0] in DEBUGGERS:
        # (The debugger views load the lane's own build: the sanitizer
        # pass would repeat them as they are.)
        marks.append(pytest.mark.slow)
    short = name[len("check_"):].replace("_", "-")
    return pytest.param(view, slot, scenario, check, marks=marks,
                        id=f"{view}-{slot}-{scenario}-{short}")


def core_cells():
    for view in ("nodebug", "dbg"):
        for slot in LANE_SLOT_IDS:
            for sc in (SCENARIOS + (EMBED if not slot.endswith("-jit") else [])
                       + (SINCE_314 if "3.13" not in slot else [])):
                for check in facts(sc):
                    yield cell(view, slot, sc, check)


def artefact(lane_samples, slot, scenario):
    it = interp_or_skip(slot)
    err = lane_samples.errors.get((it.tag, scenario))
    if err:
        pytest.fail(f"{it.tag}/{scenario} was not produced: {err}")
    a = lane_samples.get(it.tag, scenario)
    if a is None:
        pytest.skip(f"{scenario} not produced for {it.tag}")
    return it, a


class CoreReports:
    """One `mixstack core --json --sysroot VIEW` per artefact and view."""

    def __init__(self, lane_samples):
        self.samples = lane_samples
        self.cache = {}

    def __call__(self, view, slot, scenario):
        it, a = artefact(self.samples, slot, scenario)
        key = (view, it.tag, scenario)
        if key not in self.cache:
            opts = H.analysis_options(a.dir, debug_files=(view == "dbg"))
            proc = run_mixstack("core", Path(a.dir) / "core", "--json", *opts,
                                timeout=120)
            assert proc.returncode in (0, 1), proc.stderr
            self.cache[key] = json.loads(proc.stdout)
        return a, self.cache[key]


@pytest.fixture(scope="module")
def core_reports(lane_samples):
    return CoreReports(lane_samples)


@pytest.mark.parametrize("view,slot,scenario,check", list(core_cells()))
def test_core_report_matches_manifest(core_reports, view, slot, scenario, check):
    a, doc = core_reports(view, slot, scenario)
    check(a.manifest, doc)


# --- a body without a symbol, named after the function that jumps to it -----

def jump_target(exe, name):
    """Where exported function `name` of exe goes when its code is only
    `[endbr64] jmp ADDR` (objdump's reading), else None."""
    dynsym = subprocess.run(["nm", "-D", "--defined-only", str(exe)], capture_output=True,
                            text=True).stdout
    addr = next(int(a, 16) for a, _, n in (l.split() for l in dynsym.splitlines()
                                          if len(l.split()) == 3) if n == name)
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={addr}",
                          f"--stop-address={addr + 9}", str(exe)],
                         capture_output=True, text=True).stdout
    insns = [l.split("\t")[1:] for l in dis.splitlines() if re.match(r"\s+[0-9a-f]+:\t", l)]
    insns = [i for i in insns if i and i[0].strip() != "endbr64"]
    if not insns or not insns[0][0].startswith("jmp"):
        return None
    return int(insns[0][0].split()[1], 16)


@pytest.mark.parametrize("slot", LANE_SLOT_IDS)
def test_finalizer_body_named_without_debug_files(core_reports, slot):
    """exit-crash without -dbg: the frame that runs the atexit step shows as
    Py_FinalizeEx, and that is honest: with -dbg the frame at that pc is
    the internal _Py_Finalize (a compiler clone of it) starting at the same
    address, and objdump shows Debian's exported Py_FinalizeEx is only a
    jump there."""
    a, bare = core_reports("nodebug", slot, "exit-crash")
    _, dbg = core_reports("dbg", slot, "exit-crash")
    tid = a.manifest["crashed_tid"]
    frames = {(f["pc"], f["function"]): f
              for f in next(t for t in bare["threads"] if t["tid"] == tid)["frames"]
              if f["kind"] == "native"}
    named = [f for (pc, fn), f in frames.items() if fn == "Py_FinalizeEx"]
    assert len(named) == 1, sorted(frames)
    f = named[0]
    truth = [g for g in next(t for t in dbg["threads"] if t["tid"] == tid)["frames"]
             if g["kind"] == "native" and g["pc"] == f["pc"] and not g["inlined"]]
    assert truth and truth[0]["function"].split(".")[0] == "_Py_Finalize", truth
    assert truth[0]["offset"] == f["offset"], (truth[0], f)
    exe = Path(H.artefact_sysroot(a.dir) + a.manifest["interpreter"]["realpath"])
    start = int(f["pc"], 16) - int(f["offset"], 16)
    assert jump_target(exe, "Py_FinalizeEx") == start  # a non-PIE executable


# --- the artefacts themselves -----------------------------------------------

@pytest.mark.parametrize("slot", LANE_SLOT_IDS)
def test_lane_artefacts(lane_samples, slot):
    """Each lane core is the core of the chrooted process: its threads are
    the manifest's, and it names files relative to the root (kernel cores
    and the lane gdb's gcore alike), which hold the interpreter the manifest
    names; the JIT is on exactly for the -jit interpreters."""
    it = interp_or_skip(slot)
    cells = lane_samples.for_interp(it.tag)
    embed = set(EMBED) if not it.env else set()
    subs = set(SINCE_314) if it.version >= "3.14" else set()
    assert {a.scenario for a in cells} == set(SCENARIOS) | embed | subs, lane_samples.errors
    for a in cells:
        m = a.manifest
        assert m["interpreter"]["version"] == it.version
        if a.scenario in embed:
            assert m["interpreter"]["path"] == m["extension"]["path"]
            assert Path(it.root + m["interpreter"]["runtime_object"]).is_file()
        else:
            assert m["interpreter"]["path"] == it.path
        assert m["interpreter"]["jit"] == (("PYTHON_JIT", "1") in it.env), a.dir
        root = H.artefact_sysroot(a.dir)
        assert root == it.root
        info = elfcore.core_info(str(Path(a.dir) / "core"))
        assert sorted(info["tids"]) == sorted(t["tid"] for t in m["threads"])
        files = {f["path"] for f in info["files"]}
        assert m["extension"]["path"] in files
        assert m["interpreter"]["realpath"] in files
        assert not any(p.startswith(root) for p in files), a.dir
        assert Path(root + m["interpreter"]["realpath"]).is_file()
        assert Path(root + m["extension"]["path"]).is_file()


def test_lane_interpreters_are_debian_builds(lane_interpreters):
    """What the lane stands for: Debian's stripped interpreters of 3.13-3.15,
    built with PGO and LTO (their -dbg files' DW_AT_producer), the JIT
    built in on 3.14+."""
    if not lane_interpreters:
        pytest.skip("no lane interpreters")
    versions = {it.version.rsplit(".", 1)[0] for it in lane_interpreters}
    assert versions == set(H.LANE_VERSIONS)
    for it in lane_interpreters:
        exe = Path(it.root + it.path).resolve()
        sections = subprocess.run(["readelf", "-S", "-W", str(exe)], capture_output=True,
                                  text=True).stdout
        assert ".symtab" not in sections, exe  # stripped
        notes = subprocess.run(["readelf", "-n", str(exe)], capture_output=True,
                               text=True).stdout
        build_id = re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
        debug = Path(it.root, "usr/lib/debug/.build-id", build_id[:2], build_id[2:] + ".debug")
        info = subprocess.run(["readelf", "--debug-dump=info", "--dwarf-depth=1", str(debug)],
                              capture_output=True, text=True).stdout
        producers = set(re.findall(r"DW_AT_producer\s*:.*?: (.*)", info))
        assert any("-fprofile-use" in p for p in producers), (it.tag, list(producers)[:2])
        assert any("GNU GIMPLE" in p for p in producers), it.tag  # LTO
        jit = subprocess.run(["chroot", it.root, it.path, "-c",
                              "import sys; print(sys._jit.is_available())"],
                             capture_output=True, text=True).stdout.strip()
        assert jit == ("True" if it.version >= "3.14" else ""), (it.tag, jit)


# --- live processes ---------------------------------------------------------

def live_cells(view="live"):
    from test_live_report import FACTS as LIVE_FACTS, SCENARIO_FACTS as LIVE_SCENARIO
    from test_live_report import DEBUGGER_FACTS
    if view != "live":  # a debugger's target: what it attached to
        LIVE_FACTS = DEBUGGER_FACTS
    for slot in LANE_SLOT_IDS:
        embed = [] if slot.endswith("-jit") else ["embed-finalize-hang"]
        subs = [] if "3.13" in slot else SINCE_314
        for sc in SNAPSHOTS + embed + subs:
            checks = LIVE_FACTS + LIVE_SCENARIO.get(sc, []) + [check_python_frames_placed]
            if sc in EMBED_FACTS or sc in SINCE_314:
                checks = [c for c in facts(sc)
                          if c not in (check_signal_and_crashing_thread, check_stacks_present)]
            if sc in EMBED_FACTS:
                checks = [c for c in EMBED_FACTS[sc]
                          if c is not check_signal_and_crashing_thread]
            for check in checks:
                if check is check_no_panic and sc in PANICKING_SCENARIOS:
                    continue
                yield cell(view, slot, sc, check)


@pytest.fixture(scope="module")
def live_reports(samples_build):
    return LaneLiveReports(samples_build)


@pytest.mark.parametrize("view,slot,scenario,check", list(live_cells()))
def test_live_report_matches_manifest(live_reports, view, slot, scenario, check):
    """`mixstack pid` from this machine on the chrooted process: its maps
    name the root's files by their path here, no --sysroot needed."""
    cell = live_reports(slot, scenario)
    check(cell.manifest, cell.doc)


@pytest.mark.parametrize("slot", LANE_SLOT_IDS)
def test_live_target_left_running(live_reports, slot):
    cell = live_reports(slot, "gil-deadlock", need_report=False)
    after = cell.after
    assert after["alive"] and after["tracer_line"] == "TracerPid:\t0", after
    assert not {t: s for t, s in after["tasks"].items() if s[0] in "tT" or s[1]}


# --- triage -----------------------------------------------------------------

@pytest.fixture(scope="module")
def triage_results(lane_samples, samples):
    """{scenario: (host result, [(lane artefact, result)])}: `mixstack triage
    --sysroot ROOT` of every lane core, and of one host core per scenario."""
    host = {}
    for a in samples:
        host.setdefault(a.scenario, a)
    cells = [a for a in lane_samples if a.scenario in host]
    if not cells:
        pytest.skip("no lane and host samples to compare")
    proc = subprocess.run([str(MIXSTACK), "triage", "--json", "--sysroot",
                           H.artefact_sysroot(cells[0].dir),
                           *[Path(a.dir) / "core" for a in cells]],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lane = json.loads(proc.stdout)["results"]
    names = sorted({a.scenario for a in cells})
    proc = subprocess.run([str(MIXSTACK), "triage", "--json",
                           *[Path(host[s].dir) / "core" for s in names]],
                          capture_output=True, text=True, timeout=300)
    out = {s: (r, []) for s, r in zip(names, json.loads(proc.stdout)["results"])}
    for a, r in zip(cells, lane):
        out[a.scenario][1].append((a, r))
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_triage_signature_same_as_on_host_interpreters(triage_results, scenario):
    """The same bug gets the same kind and signature from the lane's cores
    (--sysroot) as from an interpreter here, whatever the build."""
    if scenario not in triage_results:
        pytest.skip(f"no {scenario} samples")
    want, got = triage_results[scenario]
    assert got
    for a, res in got:
        assert (res["kind"], res["signature"]) == (want["kind"], want["signature"]), (
            a.interp_tag, res["signature"], want["signature"])


# --- bad input: a wrong --sysroot -------------------------------------------

def test_wrong_sysroot_warns_per_missing_file(lane_samples, tmp_path):
    """A lane core analysed with a wrong --sysroot (an empty directory), and
    with none (this machine's own, different libc): one warning for each
    file the core maps, naming it -- missing, or not the file the core
    had --, the crashed thread still reported; no crash."""
    cells = lane_samples.for_scenario("segfault-in-rust")
    if not cells:
        pytest.skip("no lane segfault-in-rust sample")
    a = cells[0]
    core = Path(a.dir) / "core"
    mapped = {f["path"] for f in elfcore.core_info(str(core))["files"]}
    for opts in (["--sysroot", str(tmp_path)], []):
        proc = run_mixstack("core", core, "--json", *opts)
        assert proc.returncode in (0, 1), proc.stderr
        doc = json.loads(proc.stdout)
        named = set()
        counted = 0
        for w in doc["warnings"]:
            m = (re.match(r"missing file: (\S+) \(mapped at", w)
                 or re.match(r"(\S+) on this machine does not match the core", w))
            if m:
                named.add(m.group(1))
            m = re.match(r"(\d+) more files are missing", w)
            if m:
                counted += int(m.group(1))
        assert named <= mapped, named - mapped
        if opts:
            assert len(named) + counted == len(mapped), (opts, doc["warnings"])
        else:
            assert {a.manifest["interpreter"]["realpath"],
                    a.manifest["extension"]["path"]} <= named, doc["warnings"]
            assert any("libc.so.6" in n for n in named), doc["warnings"]
        crashed = doc["threads"][0]
        assert crashed["tid"] == a.manifest["crashed_tid"] and crashed["crashed"]
        assert doc["target"]["signal"] == a.manifest["signal"]


# --- bad input: a core without the threads' stacks ---------------------------

def core_stack_bytes(core, tid, size=256):
    """The bytes at thread tid's stack pointer in core (NT_PRSTATUS pr_reg
    rsp, then the PT_LOAD holding it), read here without mixstack; None when
    the core holds none."""
    import struct
    data = Path(core).read_bytes()
    rsp = None
    for name, ntype, desc in elfcore.iter_notes(str(core)):
        if name == "CORE" and ntype == elfcore.NT_PRSTATUS:
            if struct.unpack_from("<i", desc, 32)[0] == tid:
                rsp = struct.unpack_from("<Q", desc, 112 + 19 * 8)[0]
    assert rsp is not None, tid
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_vaddr <= rsp < p_vaddr + p_filesz:
            off = p_offset + rsp - p_vaddr
            return data[off:off + size]
    return None


@pytest.mark.skipif(not H.shutil.which("gcore"), reason="no gcore here")
def test_core_lacking_thread_stacks_says_so(samples_build, tmp_path):
    """This machine's gcore (gdb 13) of a process on Debian unstable's
    glibc writes zeros for every thread stack but the main thread's. The
    report says so for exactly the threads whose stack the core lacks
    (checked in the core itself), and not for the others."""
    it = interp_or_skip(LANE_SLOT_IDS[1])
    with H.live("gil-hog", it, build_info=samples_build) as live:
        proc = subprocess.run(["gcore", "-o", str(tmp_path / "core"), str(live.pid)],
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        manifest = live.manifest
    core = tmp_path / f"core.{manifest['pid']}"
    lacking = set()
    for t in manifest["threads"]:
        data = core_stack_bytes(core, t["tid"])
        if data is None or not any(data):
            lacking.add(t["tid"])
    if not lacking:
        pytest.skip("this gcore wrote every thread's stack")
    proc = run_mixstack("core", core, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    said = {t["tid"] for t in doc["threads"] if LACKS_STACK in (t["unwind_error"] or "")}
    assert said == lacking, (said, lacking)
    assert manifest["main_tid"] not in said
    text = run_mixstack("core", core).stdout
    assert text.count(LACKS_STACK) == len(lacking)


# --- the gdb plugin on a lane core (set sysroot) ------------------------------

@pytest.mark.parametrize("slot", LANE_SLOT_IDS)
def test_gdb_plugin_with_sysroot(lane_samples, slot):
    """This machine's gdb with `set sysroot ROOT` and the plugin on a lane
    core: `mixstack bt` shows the crashing thread's Python frames (the
    manifest's, in order) around the Rust frame that crashed. The plugin
    hands gdb's sysroot to the library."""
    from test_debuggers import Gdb
    gdb = Gdb()
    if gdb.available():
        pytest.skip(gdb.available())
    it = interp_or_skip(slot)
    a = lane_samples.get(it.tag, "segfault-in-rust")
    if a is None:
        pytest.skip(f"no segfault-in-rust sample for {it.tag}")
    m = a.manifest
    gdb.run([f"set sysroot {it.root}", f"file {it.root}{m['interpreter']['realpath']}",
             f"core-file {a.dir}/core", "mixstack bt"])
    out = gdb.last_stdout
    assert m["expect_crash_frame"] in out, out[-3000:]
    want = [f"[python]           {f['function']} ({f['file']}:{f['line']})"
            for f in m["threads"][0]["python_stack"]]
    pos = [out.find(w) for w in want]
    assert -1 not in pos and pos == sorted(pos), (want, out[-3000:])
    assert "no module holds" not in out, out[-3000:]


# --- the lane's debuggers: gdb 18 and lldb-22 with the plugins ----------------
#
# The same facts from `mixstack report --json` typed in the lane's own gdb
# (18) and lldb (lldb-22, the plugin built in the lane for LLDB 22), with
# libmixstack built in the lane (scripts/lane build-lldb): the debuggers run
# inside the root, which is their filesystem (what the CLI reaches with
# --sysroot ROOT), on every lane core, and attached to every live sample
# from inside its own mount namespace and root (nsenter), as a user in the
# container would. One debugger session per interpreter for its cores (the
# gdb and lldb sessions run side by side); a live sample is attached by gdb,
# then by lldb, while it runs for the CLI's live view.

LANE_BUILD = Path(os.environ.get("MIXSTACK_LANE_BUILD_DIR",
                                 REPO / "build" / "lane-lldb22")).resolve()
LANE_GDB_PLUGIN = LANE_BUILD / "gdb-plugin" / "mixstack-gdb.py"
LANE_LLDB_PLUGIN = LANE_BUILD / "lldb-plugin" / "libmixstack-lldb.so"


def lane_debugger_missing(name):
    """Why the lane's debugger `name` cannot run here, or None."""
    root = H.lane_root()
    plugin = LANE_GDB_PLUGIN if name == "gdb" else LANE_LLDB_PLUGIN
    tool = "/usr/bin/gdb" if name == "gdb" else "/usr/bin/lldb-22"
    if root is None or not os.path.exists(root + tool):
        return f"no {tool} in the lane's root"
    if not plugin.exists():
        return f"{plugin} not built (scripts/lane build-lldb {LANE_BUILD})"
    return None


def run_debugger(name, items, prefix, timeout=600):
    """One batch session of the lane's debugger `name` (debugger_batch.py)
    printing `mixstack report --json` for each (key, exe, core) or (key,
    pid) of items; returns {key: (document or None, error)}."""
    if name == "gdb":
        # The -dbg files' DWARF indexed once, not by every session.
        pre = ["-iex", f"set index-cache directory {LANE_BUILD / 'gdb-index-cache'}",
               "-iex", "set index-cache enabled on"]
        return debugger_batch.run_debugger("gdb", "gdb", LANE_GDB_PLUGIN, items, prefix,
                                           timeout, gdb_pre=pre)
    return debugger_batch.run_debugger("lldb", "lldb-22", LANE_LLDB_PLUGIN, items, prefix,
                                       timeout)


class DebuggerCoreReports:
    """`mixstack report --json` in the lane's gdb and lldb on every lane
    core: one session per (debugger, interpreter), made for all
    interpreters on first use, two at a time."""

    def __init__(self, lane_samples):
        self.samples = lane_samples
        self.docs = None

    def _make(self):
        root = H.lane_root()
        jobs = []
        for it in H.lane_interpreters():
            items = [(a.scenario, a.manifest["interpreter"]["path"], str(Path(a.dir) / "core"))
                     for a in self.samples.for_interp(it.tag)]
            dirs = {str(Path(a.dir).parent.parent) for a in self.samples.for_interp(it.tag)}
            prefix = H.lane_argv(root, [], [REPO, *dirs], REPO)
            for name in DEBUGGERS:
                if items and not lane_debugger_missing(name):
                    jobs.append((name, it.tag, items, prefix))
        self.docs = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = {pool.submit(run_debugger, name, items, prefix): (name, tag)
                       for name, tag, items, prefix in jobs}
            for fut, (name, tag) in futures.items():
                for scenario, res in fut.result().items():
                    self.docs[(name, tag, scenario)] = res

    def __call__(self, name, slot, scenario):
        why = lane_debugger_missing(name)
        if why:
            pytest.skip(why)
        it, a = artefact(self.samples, slot, scenario)
        if self.docs is None:
            self._make()
        doc, error = self.docs.get((name, it.tag, scenario), (None, "no session ran"))
        if doc is None:
            pytest.fail(f"{name} on {it.tag}/{scenario}: {error}")
        assert doc["target"]["kind"] == "debugger", doc["target"]
        return a, doc


@pytest.fixture(scope="module")
def debugger_core_reports(lane_samples):
    return DebuggerCoreReports(lane_samples)


def debugger_core_cells():
    for view in DEBUGGERS:
        for slot in LANE_SLOT_IDS:
            for sc in (SCENARIOS + (EMBED if not slot.endswith("-jit") else [])
                       + (SINCE_314 if "3.13" not in slot else [])):
                for check in facts(sc):
                    yield cell(view, slot, sc, check)


@pytest.mark.parametrize("view,slot,scenario,check", list(debugger_core_cells()))
def test_debugger_core_report_matches_manifest(debugger_core_reports, view, slot, scenario,
                                               check):
    """`mixstack report --json` in the lane's gdb 18 / lldb-22 on the core,
    the root being the debugger's filesystem."""
    a, doc = debugger_core_reports(view, slot, scenario)
    check(a.manifest, doc)


class LaneLiveReports(LiveReports):
    """The CLI's live reports (view "live"), and while each sample runs,
    the lane's gdb and then lldb attached to it from inside its mount
    namespace and root (LiveReports.debugger gives what they reported)."""

    def wants_debuggers(self, it, scenario):
        return True

    def debugger_missing(self, name):
        return lane_debugger_missing(name) or (not shutil.which("nsenter") and "no nsenter")

    def attach(self, name, live):
        prefix = ["nsenter", "--target", str(live.pid), "--mount", "--root",
                  "/usr/bin/env", "-C", "/"]
        return run_debugger(name, [("live", live.pid)], prefix, timeout=180)["live"]


@pytest.mark.parametrize("view,slot,scenario,check",
                         [c for d in DEBUGGERS for c in live_cells(d + "-live")])
def test_debugger_live_report_matches_manifest(live_reports, view, slot, scenario, check):
    """`mixstack report --json` in the lane's gdb 18 / lldb-22 attached to
    the running sample, inside its mount namespace and root."""
    m, doc, _ = live_reports.debugger(view.split("-")[0], slot, scenario)
    check(m, doc)


@pytest.mark.slow
@pytest.mark.parametrize("debugger", DEBUGGERS)
@pytest.mark.parametrize("slot", LANE_SLOT_IDS)
def test_debugger_left_target_running(live_reports, debugger, slot):
    """After the lane's debugger detached: alive, untraced, no thread
    stopped."""
    _, _, after = live_reports.debugger(debugger, slot, "gil-deadlock")
    assert after["alive"] and after["tracer_line"] == "TracerPid:\t0", after
    assert not {t: s for t, s in after["tasks"].items() if s[0] in "tT" or s[1]}
