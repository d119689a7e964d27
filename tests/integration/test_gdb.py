"""The gdb plugin (gdb-plugin/): `gdb -batch` over real cores, a live process
attached by pid, and programs run under gdb.

Every fact asserted is known without mixstack: tids from /proc and from the
programs themselves, gdb's own frames (pcs), the Python stacks the programs
recorded with traceback before blocking, the crash-samples manifests. The
plugin must also say what the CLI says about the same core (same library,
same printer).
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from clitool import BUILD, MIXSTACK, REPO, gcore, process_state

GDB = shutil.which("gdb")
PLUGIN = BUILD / "gdb-plugin" / "mixstack-gdb.py"
SOURCE_PLUGIN = REPO / "gdb-plugin" / "mixstack-gdb.py"
LIBRARY = BUILD / "libmixstack.so"
CC = shutil.which("cc") or shutil.which("gcc")

pytestmark = [
    pytest.mark.skipif(GDB is None, reason="gdb not installed"),
    pytest.mark.skipif(not PLUGIN.exists(), reason=f"{PLUGIN} not built"),
]

NO_PYTHON = "mixstack: no Python interpreter found in this process"
INLINE_FRAME, TAILCALL_FRAME = 2, 3
GDB_TIMEOUT = 120

# A gdb command the tests use to read gdb's own view and the plugin's
# answers in one go, as one JSON line.
PROBE = r'''
import gdb, json

def _run(cmd):
    try:
        return {"out": gdb.execute(cmd, to_string=True)}
    except gdb.error as e:
        return {"error": str(e)}

class Probe(gdb.Command):
    def __init__(self):
        super().__init__("mstest-probe", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        # mstest-probe LABEL [TID,...]: gdb's filtered bt only for those
        # threads (all when none are given).
        words = arg.split()
        label = words[0] if words else ""
        bt_tids = {int(x) for x in words[1].split(",")} if len(words) > 1 else None
        res = {"label": label}
        for cmd in ("mixstack report --json", "mixstack threads",
                    "mixstack bt all --native-only", "mixstack gil",
                    "mixstack err", "mixstack panic", "mixstack phase"):
            res[cmd] = _run(cmd)
        threads = []
        sel = gdb.selected_thread()
        for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
            t.switch()
            frames = []
            f = gdb.newest_frame()
            while f is not None and len(frames) < 2000:
                frames.append({"level": f.level(), "pc": f.pc(), "type": f.type(),
                               "name": f.name()})
                f = f.older()
            want_bt = bt_tids is None or t.ptid[1] in bt_tids
            threads.append({"num": t.num, "tid": t.ptid[1], "name": t.name,
                            "frames": frames,
                            "bt": _run("bt -frame-arguments none") if want_bt else {}})
        if sel is not None:
            sel.switch()
        res["gdb_threads"] = threads
        gdb.write("@@PROBE " + json.dumps(res) + "\n")

Probe()
'''


@pytest.fixture(scope="session")
def probe_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("gdbprobe") / "probe.py"
    path.write_text(PROBE)
    return path


def gdb_argv(commands, target=(), plugin=PLUGIN, probe=None, pre=()):
    argv = [GDB, "-nx", "-batch", "-iex", "set auto-load python-scripts off",
            "-iex", "set debuginfod enabled off", "-iex", "set pagination off",
            "-iex", "set width 0", "-iex", "set confirm off",
            # gdb stops at main by default; mixstack shows the frames outside
            # it too (compared with gdb's own in check_native_pcs).
            "-iex", "set backtrace past-main on"]
    for c in pre:
        argv += ["-ex", c]
    if plugin is not None:
        argv += ["-ex", f"source {plugin}"]
    if probe is not None:
        argv += ["-ex", f"source {probe}"]
    for c in commands:
        argv += ["-ex", c]
    return argv + [str(t) for t in target]


def _sanitizer_env():
    """A library built with AddressSanitizer (scripts/test's second pass)
    wants its runtime loaded first, which gdb cannot have (gdb hangs with
    libasan preloaded): let the runtime come in with the library instead.
    gdb's own leaks are not the library's, so leak checking is off there."""
    try:
        out = subprocess.run(["ldd", str(LIBRARY)], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    if not re.search(r"^\s*libasan\.so", out, re.M):
        return {}
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": ":".join(x for x in (asan, "verify_asan_link_order=0",
                                                 "detect_leaks=0") if x)}


SANITIZER_ENV = _sanitizer_env()


def run_gdb(commands, target=(), timeout=GDB_TIMEOUT, env=None, **kw):
    """gdb -batch with the plugin; stdout and stderr merged, in order."""
    full_env = dict(os.environ)
    full_env.pop("MIXSTACK_LIB", None)
    full_env.update(SANITIZER_ENV)
    if env:
        full_env.update(env)
    proc = subprocess.run(gdb_argv(commands, target, **kw), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace",
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)
    return proc


def marked(commands):
    """Commands each preceded by a marker line, for split_marked()."""
    out = []
    for i, c in enumerate(commands):
        out += [f"echo @@CMD {i}\\n", c]
    return out + ["echo @@CMD end\\n"]


def split_marked(output, n):
    parts = re.split(r"^@@CMD (\d+|end)\n", output, flags=re.M)
    got = {}
    for k in range(1, len(parts) - 1, 2):
        if parts[k] != "end":
            got[int(parts[k])] = parts[k + 1]
    assert len(got) == n and "@@CMD end" in output, output[-3000:]
    return [got[i] for i in range(n)]


def probes(output):
    out = []
    for line in output.splitlines():
        if line.startswith("@@PROBE "):
            out.append(json.loads(line[len("@@PROBE "):]))
    return out


def assert_clean(output):
    """No Python traceback of the plugin, no Python error reported by gdb.
    (The library's `mixstack err` prints Python tracebacks of the target:
    those are fine.)"""
    for bad in ("mixstack_gdb/", "mixstack-gdb.py\", line", "Python Exception <",
                "Error occurred in Python"):
        assert bad not in output, output[max(0, output.find(bad) - 2000):][:4000]


def one_line_error(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("mixstack: ")


# Parsing what the plugin prints (the library's text printer) -----------------

_THREAD_RE = re.compile(r"^Thread (\d+)")
# Numbered as gdb numbers its frames ("?" when gdb has none), the current
# Python frame marked '*'.
_FRAME_RE = re.compile(r"^[ *] #(\d+|\?)\s+(0x[0-9a-f]+|\[inlined\]|\[python\])\s+(.*)$")


def parse_stacks(text):
    """{tid: [(index, pc or None, kind, rest)]} from the text of `mixstack bt`."""
    stacks, current = {}, None
    for line in text.splitlines():
        m = _THREAD_RE.match(line)
        if m:
            current = stacks.setdefault(int(m.group(1)), [])
            continue
        m = _FRAME_RE.match(line)
        if m and current is not None:
            what = m.group(2)
            pc = int(what, 16) if what.startswith("0x") else None
            kind = "python" if what == "[python]" else (
                "inlined" if what == "[inlined]" else "native")
            number = None if m.group(1) == "?" else int(m.group(1))
            current.append((number, pc, kind, m.group(3)))
    return stacks


def gdb_physical_pcs(thread):
    return [f["pc"] for f in thread["frames"]
            if f["type"] not in (INLINE_FRAME, TAILCALL_FRAME)]


def _first_difference(a, b):
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f"first difference at #{k}: mixstack {[hex(p) for p in a[k:k + 3]]} "
            f"gdb {[hex(p) for p in b[k:k + 3]]} ({len(a)} vs {len(b)} frames)")


def check_native_pcs(probe, where):
    """`mixstack bt all --native-only` has gdb's physical frames, same pcs,
    same order, for every thread. Where the library says its unwinding
    stopped early, its frames are the start of gdb's."""
    problems = []
    res = probe["mixstack bt all --native-only"]
    if "error" in res:
        return [f"{where}: mixstack bt all --native-only: {res['error']}"]
    stacks = parse_stacks(res["out"])
    stopped = {t["tid"]: t.get("unwind_error") for t in report_of(probe)["threads"]}
    for t in probe["gdb_threads"]:
        lib = stacks.get(t["tid"])
        if lib is None:
            problems.append(f"{where}: thread {t['tid']} missing from mixstack bt all")
            continue
        lib_pcs = [pc for _, pc, kind, _ in lib if kind == "native"]
        gdb_pcs = gdb_physical_pcs(t)
        if lib_pcs == gdb_pcs:
            continue
        if stopped.get(t["tid"]) and lib_pcs and lib_pcs == gdb_pcs[:len(lib_pcs)]:
            continue
        problems.append(f"{where}: thread {t['tid']}: pcs differ: "
                        + _first_difference(lib_pcs, gdb_pcs))
    return problems


def report_of(probe):
    res = probe["mixstack report --json"]
    assert "error" not in res, res
    # gdb's own warnings when the plugin first switches to a thread of a
    # core the kernel wrote short (".reg-xstate/N in core file too small").
    text = "\n".join(ln for ln in res["out"].splitlines()
                     if not ln.startswith("warning: "))
    return json.loads(text)


def python_frames(thread_doc):
    return [(f["function"], f["file"], f["line"]) for f in thread_doc["frames"]
            if f["kind"] == "python"]


def in_order(text, needles):
    """Whether the needles occur in text in this order."""
    pos = 0
    for n in needles:
        k = text.find(n, pos)
        if k < 0:
            return False
        pos = k + len(n)
    return True


# A multi-threaded C program -----------------------------------------------

C_PROGRAM = r'''
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fds[2];

__attribute__((noinline)) void mstest_leaf(void)
{
        char c;
        for (;;)
                if (read(fds[0], &c, 1) <= 0)
                        pause();
}

__attribute__((noinline)) void mstest_middle(void)
{
        mstest_leaf();
        __asm__ volatile("");
}

__attribute__((noinline)) void mstest_crash(void)
{
        *(volatile int *)16 = 1;
}

static void *worker(void *arg)
{
        char name[16];
        snprintf(name, sizeof(name), "mstest-w%ld", (long)arg);
        pthread_setname_np(pthread_self(), name);
        printf("tid %ld\n", (long)syscall(SYS_gettid));
        fflush(stdout);
        mstest_middle();
        return NULL;
}

int main(int argc, char **argv)
{
        pthread_t t[2];
        if (pipe(fds))
                return 1;
        for (long i = 0; i < 2; i++)
                pthread_create(&t[i], NULL, worker, (void *)i);
        usleep(100000);
        printf("tid %ld\nready\n", (long)syscall(SYS_gettid));
        fflush(stdout);
        if (argc > 1 && strcmp(argv[1], "crash") == 0)
                mstest_crash();
        mstest_middle();
        return 0;
}
'''


@pytest.fixture(scope="session")
def cprog(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("cprog")
    src = d / "mstest.c"
    src.write_text(C_PROGRAM)
    exe = d / "mstest"
    subprocess.run([CC, "-g", "-O1", "-pthread", "-o", str(exe), str(src)], check=True,
                   capture_output=True, timeout=120)
    return exe


class Running:
    """A started program that printed its thread ids and 'ready'."""

    def __init__(self, argv):
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.tids = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line or line.strip() == "ready":
                break
            if line.startswith("tid "):
                self.tids.append(int(line.split()[1]))
        self.pid = self.proc.pid
        wait_blocked(self.pid)

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=30)


def wait_blocked(pid, timeout=20):
    """Until every thread of pid sleeps in a system call."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            stat = (task / "stat").read_text()
            states.append(stat[stat.rindex(")") + 2])
        if states and all(s == "S" for s in states):
            return
        time.sleep(0.05)


def proc_tids(pid):
    return sorted(int(p.name) for p in Path(f"/proc/{pid}/task").iterdir())


def proc_comm(pid, tid):
    return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()


@pytest.fixture(scope="session")
def cprog_snapshot(cprog, tmp_path_factory):
    """A gcore snapshot of the C program with the facts /proc had."""
    run = Running([cprog])
    try:
        tids = proc_tids(run.pid)
        names = {t: proc_comm(run.pid, t) for t in tids}
        core = gcore(run.pid, tmp_path_factory.mktemp("csnap") / "core")
    finally:
        run.close()
    return {"core": core, "exe": cprog, "pid": run.pid, "tids": tids, "names": names,
            "printed_tids": run.tids}


# The plugin itself --------------------------------------------------------

def test_help_and_completion():
    proc = run_gdb(marked(["help mixstack", "help mixstack bt", "complete mixstack b",
                           "complete mixstack bt --n", "complete mixstack filter o",
                           "mixstack threads", "mixstack bogus"]))
    assert_clean(proc.stdout)
    out = split_marked(proc.stdout, 7)
    for sub in ("bt", "threads", "gil", "err", "panic", "phase", "report", "up", "down",
                "list", "filter"):
        assert f"mixstack {sub}" in out[0], out[0]
    assert "--native-only" in out[1]
    assert out[2].split() == ["mixstack", "bt"], out[2]
    assert "mixstack bt --native-only" in out[3]
    assert set(out[4].split("\n")) >= {"mixstack filter off", "mixstack filter on"}
    assert one_line_error(out[5]) and "no process" in out[5], out[5]
    assert "Undefined mixstack command" in out[6]


def test_library_not_found_is_one_line(tmp_path):
    proc = run_gdb(marked(["mixstack threads", "echo ALIVE\\n"]), plugin=SOURCE_PLUGIN,
                   env={"MIXSTACK_LIB": str(tmp_path / "nope.so")})
    assert_clean(proc.stdout)
    out = split_marked(proc.stdout, 2)
    assert one_line_error(out[0]) and "MIXSTACK_LIB" in out[0], out[0]
    assert "ALIVE" in out[1]


def test_source_tree_plugin_with_mixstack_lib(cprog_snapshot):
    """The plugin straight from the source tree, the library from $MIXSTACK_LIB."""
    s = cprog_snapshot
    proc = run_gdb(marked(["mixstack threads"]), target=[s["exe"], s["core"]],
                   plugin=SOURCE_PLUGIN, env={"MIXSTACK_LIB": str(LIBRARY)})
    assert_clean(proc.stdout)
    out = split_marked(proc.stdout, 1)[0]
    assert sorted(int(ln.split()[0]) for ln in out.splitlines() if ln.strip()) == s["tids"]


def test_installed_plugin_finds_the_installed_library(tmp_path):
    """`cmake --install` puts the plugin under share/mixstack/gdb with a
    loader that finds the installed library, even at another prefix."""
    cmake = shutil.which("cmake")
    if cmake is None or not (BUILD / "cmake_install.cmake").exists():
        pytest.skip("no cmake build tree")
    prefix = tmp_path / "prefix"
    subprocess.run([cmake, "--install", str(BUILD), "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=120)
    plugins = list(prefix.glob("share/mixstack/gdb/mixstack-gdb.py"))
    assert plugins, list(prefix.rglob("*"))
    assert (plugins[0].parent / "mixstack_gdb" / "_paths.py").exists()
    script = tmp_path / "which.py"
    script.write_text("import gdb\nfrom mixstack_gdb.session import SESSION\n"
                      "gdb.write('LIB ' + SESSION.library().path + '\\n')\n")
    proc = run_gdb([f"source {script}"], plugin=plugins[0])
    assert_clean(proc.stdout)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("LIB "))
    assert Path(line[4:]).resolve().is_relative_to(prefix.resolve()), line


# A C program: cores, attach, run under gdb -----------------------------------

def test_c_snapshot(cprog_snapshot, probe_script):
    s = cprog_snapshot
    proc = run_gdb(marked(["mstest-probe snap", "mixstack bt", "mixstack gil",
                           "mixstack err", "mixstack phase", "mixstack up", "mixstack list",
                           "bt", "echo ALIVE\\n", "mixstack bt --python-only",
                           "mixstack bt 999999", "mixstack bt --frobnicate",
                           "mixstack bt 2 3", "mixstack report --xml"]),
                   target=[s["exe"], s["core"]], probe=probe_script)
    assert_clean(proc.stdout)
    out = split_marked(proc.stdout, 14)
    probe = probes(out[0])[0]
    doc = report_of(probe)
    assert doc["python"] is None
    assert doc["target"]["signal"] is None and doc["target"]["pid"] == s["pid"]
    assert sorted(t["tid"] for t in doc["threads"]) == s["tids"]
    assert sorted(s["printed_tids"]) == s["tids"]
    problems = check_native_pcs(probe, "C snapshot")
    assert not problems, "\n".join(problems)
    # Every thread is in mstest_leaf <- mstest_middle.
    for t in doc["threads"]:
        names = [f["function"] for f in t["frames"]]
        assert "mstest_leaf" in names and "mstest_middle" in names, names
    threads_text = probe["mixstack threads"]["out"]
    assert sorted(int(ln.split()[0]) for ln in threads_text.splitlines() if ln.strip()) \
        == s["tids"]
    # The selected thread only, with the library's wording.
    stacks = parse_stacks(out[1])
    assert list(stacks) == [s["pid"]], out[1]
    for k in (2, 3, 4, 5, 6):
        assert out[k].strip() == NO_PYTHON, out[k]
    assert "mstest_leaf" in out[7]
    assert "ALIVE" in out[8]
    assert out[9].strip() == NO_PYTHON, out[9]
    for k in (10, 11, 13):
        assert one_line_error(out[k]), out[k]
    # gdb thread numbers 2 and 3 are the two workers.
    assert sorted(parse_stacks(out[12])) == sorted(t for t in s["tids"] if t != s["pid"])


def test_c_crash_core(cprog, tmp_path, probe_script):
    """A kernel core of a SIGSEGV: the crashed thread and the signal."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern sends cores elsewhere: {pattern}")
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)
    proc = subprocess.Popen([str(cprog), "crash"], cwd=tmp_path, preexec_fn=limit,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGSEGV
    tids = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("tid ")]
    cores = sorted(tmp_path.glob("core*"))
    if not cores:
        pytest.skip("no core written (core_pattern %r)" % pattern)
    g = run_gdb(marked(["mstest-probe crash", "mixstack report", "mixstack bt"]),
                target=[cprog, cores[0]], probe=probe_script)
    assert_clean(g.stdout)
    res = split_marked(g.stdout, 3)
    probe = probes(res[0])[0]
    doc = report_of(probe)
    assert doc["target"]["signal"] == {"number": 11, "name": "SIGSEGV"}
    assert doc["target"]["crashed_tid"] == proc.pid == tids[-1]
    assert doc["threads"][0]["tid"] == proc.pid and doc["threads"][0]["crashed"]
    assert sorted(t["tid"] for t in doc["threads"]) == sorted(tids)
    assert f"signal: SIGSEGV (11) in thread {proc.pid}" in res[1]
    assert "mstest_crash" in res[2]
    problems = check_native_pcs(probe, "C crash")
    assert not problems, "\n".join(problems)


def test_c_attach_by_pid(cprog, probe_script):
    run = Running([cprog])
    try:
        tids = proc_tids(run.pid)
        names = {t: proc_comm(run.pid, t) for t in tids}
        g = run_gdb(marked(["mstest-probe live", "mixstack threads", "mixstack gil"]),
                    target=["-p", run.pid], probe=probe_script)
        assert_clean(g.stdout)
        out = split_marked(g.stdout, 3)
        probe = probes(out[0])[0]
        doc = report_of(probe)
        assert doc["target"]["pid"] == run.pid and doc["target"]["signal"] is None
        assert sorted(t["tid"] for t in doc["threads"]) == tids
        for t in doc["threads"]:
            assert t["name"] == names[t["tid"]], (t["name"], names)
        for tid in tids:
            assert re.search(rf"^{tid}\s+{re.escape(names[tid])}\s", out[1], re.M), out[1]
        assert out[2].strip() == NO_PYTHON
        problems = check_native_pcs(probe, "C live")
        assert not problems, "\n".join(problems)
        # gdb detached when it quit: the process runs on, untraced.
        time.sleep(0.2)
        state, tracer = process_state(run.pid)
        assert tracer == 0 and state in "SR", (state, tracer)
        assert run.proc.poll() is None
    finally:
        run.close()


def test_c_run_to_breakpoint_and_to_crash(cprog, probe_script):
    """A program started under gdb: at a breakpoint (no signal) and after
    SIGSEGV (the crashing thread), with the cache dropped on each stop."""
    g = run_gdb(marked(["break mstest_crash", "run crash > /dev/null", "mixstack report",
                        "mixstack bt", "continue", "mixstack report", "mixstack bt",
                        "mstest-probe crashed"]),
                target=[cprog], probe=probe_script)
    assert_clean(g.stdout)
    out = split_marked(g.stdout, 8)
    assert "signal:" not in out[2], out[2]
    assert "mstest_crash" in out[3]
    assert "SIGSEGV" in out[4]
    m = re.search(r"signal: SIGSEGV \(11\) in thread (\d+)", out[5])
    assert m, out[5]
    probe = probes(out[7])[0]
    doc = report_of(probe)
    assert doc["target"]["crashed_tid"] == int(m.group(1)) == doc["target"]["pid"]
    assert "mstest_crash" in out[6]
    problems = check_native_pcs(probe, "C run")
    assert not problems, "\n".join(problems)


def test_objfile_mappings_fallback(cprog_snapshot):
    """Without `info proc mappings` the mappings come from gdb's objfiles
    and the stacks are the same."""
    s = cprog_snapshot
    cmds = marked(["mixstack bt all --native-only"])
    a = run_gdb(cmds, target=[s["exe"], s["core"]])
    b = run_gdb(cmds, target=[s["exe"], s["core"]],
                env={"MIXSTACK_GDB_MAPPINGS": "objfiles"})
    assert_clean(a.stdout + b.stdout)
    sa, sb = split_marked(a.stdout, 1)[0], split_marked(b.stdout, 1)[0]
    assert parse_stacks(sa) and parse_stacks(sa) == parse_stacks(sb), (sa, sb)


def test_frame_filter_failure_leaves_bt_alone(cprog_snapshot, tmp_path):
    """Whatever goes wrong inside the frame filter, `bt` prints gdb's own
    frames, with one line saying why."""
    s = cprog_snapshot
    breaker = tmp_path / "break.py"
    breaker.write_text("from mixstack_gdb import frames\n"
                       "def _boom():\n    raise RuntimeError('synthetic failure')\n"
                       "frames.FrameMap.shows = lambda *a: _boom()\n")
    g = run_gdb(marked(["bt -no-filters", f"source {breaker}", "bt", "bt",
                        "echo ALIVE\\n"]), target=[s["exe"], s["core"]])
    assert_clean(g.stdout)
    out = split_marked(g.stdout, 5)
    frames = [ln for ln in out[0].splitlines() if ln.startswith("#")]
    assert frames and all(f in out[2] for f in frames), (out[0], out[2])
    assert "mixstack: frame filter: synthetic failure" in out[2], out[2]
    assert "synthetic failure" not in out[3]  # said once per stop
    assert all(f in out[3] for f in frames)
    assert "ALIVE" in out[4]


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_truncated_core_leaves_gdb_usable(cprog_snapshot, tmp_path, fraction):
    s = cprog_snapshot
    data = s["core"].read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:int(len(data) * fraction)])
    g = run_gdb(marked(["mixstack bt", "echo ALIVE\\n", "mixstack threads", "bt 1"]),
                target=[s["exe"], cut], timeout=60)
    assert g.returncode == 0, g.stdout[-3000:]
    assert_clean(g.stdout)
    out = split_marked(g.stdout, 4)
    assert "ALIVE" in out[1]
    # An error in one line, or what could still be read.
    for text in (out[0], out[2]):
        assert one_line_error(text) or parse_stacks(text) or re.search(r"^\d+ ", text, re.M), text


def test_interrupt_leaves_gdb_usable(cprog_snapshot, tmp_path):
    """Ctrl-C during a long command: a one-line message, and the next
    commands work (the reads are slowed down by the test to make it long)."""
    s = cprog_snapshot
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time, gdb\nfrom mixstack_gdb import gdbtarget\n"
        "_orig = gdbtarget.MemoryReader.read\n"
        "_said = []\n"
        "def _slow(self, a, n):\n"
        "    if not _said:\n"
        "        _said.append(1)\n"
        "        gdb.write('SLOW-READS\\n')\n"
        "        gdb.flush()\n"
        "    time.sleep(0.25)\n"
        "    return _orig(self, a, n)\n"
        "gdbtarget.MemoryReader.read = _slow\n"
        "def fast():\n    gdbtarget.MemoryReader.read = _orig\n")
    argv = [GDB, "-nx", "-q", "-iex", "set pagination off", "-iex", "set confirm off",
            "-ex", f"source {PLUGIN}", "-ex", f"source {slow}", str(s["exe"]), str(s["core"])]
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(GDB, argv, {**os.environ, **SANITIZER_ENV})
    buf = b""

    def read_until(token, timeout):
        nonlocal buf
        deadline = time.time() + timeout
        while token not in buf and time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    buf += os.read(fd, 65536)
                except OSError:
                    break
        return token in buf

    try:
        assert read_until(b"(gdb) ", 60), buf
        os.write(fd, b"mixstack bt all\n")
        assert read_until(b"SLOW-READS", 60), buf.decode(errors="replace")
        time.sleep(0.5)
        os.write(fd, b"\x03")
        assert read_until(b"mixstack: interrupted", 30), buf.decode(errors="replace")
        os.write(fd, b"python fast()\nmixstack threads\necho AL\\IVE\\n\nquit\n")
        assert read_until(b"ALIVE", 60), buf.decode(errors="replace")
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", buf.decode(errors="replace"))
        after = text[text.index("mixstack: interrupted"):]
        for tid in s["tids"]:
            assert re.search(rf"^{tid}\s", after, re.M), after
        assert_clean(text)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


# A Python script: nested functions blocked on a pipe --------------------------

PY_SCRIPT = r'''
import json, os, sys, threading, traceback
r, w = os.pipe()
out = sys.argv[1]
stacks = {}
lock = threading.Lock()

def record():
    frames = traceback.extract_stack(sys._getframe(1))
    with lock:
        stacks[str(threading.get_native_id())] = [
            {"function": f.name, "file": f.filename, "line": f.lineno}
            for f in reversed(frames)]
        done = len(stacks) == 2
    if done:
        with open(out + ".tmp", "w") as fh:
            json.dump({"pid": os.getpid(), "main": threading.get_native_id()
                       if threading.current_thread() is threading.main_thread() else None,
                       "stacks": stacks}, fh)
        os.rename(out + ".tmp", out)

def mstest_block():
    record(); os.read(r, 1)

def mstest_worker_inner():
    mstest_block()

def mstest_worker_outer():
    mstest_worker_inner()

def mstest_main_inner(depth):
    label = "main-%d" % depth
    mstest_block()

def mstest_main_outer():
    t = threading.Thread(target=mstest_worker_outer, name="mstest-worker", daemon=True)
    t.start()
    mstest_main_inner(7)

mstest_main_outer()
'''


def _pythons():
    found = []
    if os.path.exists("/usr/bin/python3.11"):
        found.append(pytest.param("/usr/bin/python3.11", id="debian-3.11"))
    root = Path.home() / ".pyenv" / "versions"
    for d in sorted(root.glob("3.*")) if root.exists() else ():
        minor = d.name.split(".")[1]
        exe = d / "bin" / f"python3.{minor}"
        if exe.exists() and minor.isdigit() and int(minor) >= 8:
            marks = () if minor in ("12",) else (pytest.mark.slow,)
            found.append(pytest.param(str(exe), id=f"pyenv-{d.name}", marks=marks))
    return found


@pytest.mark.parametrize("python", _pythons())
def test_python_script_snapshot(python, tmp_path, probe_script):
    script = tmp_path / "mstest_script.py"
    script.write_text(PY_SCRIPT)
    facts = tmp_path / "facts.json"
    proc = subprocess.Popen([python, str(script), str(facts)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not facts.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert facts.exists(), proc.stderr.read() if proc.poll() is not None else "timeout"
        wait_blocked(proc.pid)
        tids = proc_tids(proc.pid)
        core = gcore(proc.pid, tmp_path / "core")
    finally:
        proc.kill()
        proc.wait()
    recorded = json.loads(facts.read_text())
    g = run_gdb(marked(["mstest-probe py", "mixstack bt", "mixstack up", "mixstack list",
                        "mixstack up", "mixstack down", "mixstack gil",
                        "bt full", "mixstack bt --locals", "mixstack filter off", "bt",
                        "mixstack filter on", "bt"]),
                target=[python, core], probe=probe_script)
    assert_clean(g.stdout)
    out = split_marked(g.stdout, 13)
    probe = probes(out[0])[0]
    doc = report_of(probe)
    assert sorted(t["tid"] for t in doc["threads"]) == tids
    problems = check_native_pcs(probe, python)
    assert not problems, "\n".join(problems)
    if doc["python"] is None:
        pytest.skip(f"libmixstack found no Python runtime in the {python} core "
                    "(report 'python': null): the Python frames are not checked")
    by_tid = {t["tid"]: t for t in doc["threads"]}
    for tid, stack in recorded["stacks"].items():
        want = [(f["function"], f["file"], f["line"]) for f in stack]
        assert python_frames(by_tid[int(tid)]) == want
    # gdb's own bt shows the same Python frames, in order.
    for t in probe["gdb_threads"]:
        stack = recorded["stacks"].get(str(t["tid"]))
        if not stack:
            continue
        bt = t["bt"]["out"]
        needles = [f"{f['function']} [python] () at {f['file']}:{f['line']}" for f in stack]
        assert in_order(bt, needles), bt
    # Navigation from frame 0, where the innermost Python frame is the
    # current one: up selects the next older one, up again the one after,
    # down comes back; list shows the source around the line.
    # (tests/integration/test_debuggers.py checks more on every debugger.)
    main = recorded["stacks"][str(proc.pid)]

    def shown(f):
        return f"[python]           {f['function']} ({f['file']}:{f['line']})"
    assert shown(main[1]) in out[2], out[2]
    assert re.search(rf"^>\s*{main[1]['line']}\s", out[3], re.M), out[3]
    assert shown(main[2]) in out[4], out[4]
    assert shown(main[1]) in out[5], out[5]
    # The GIL: both threads blocked in os.read released it.
    assert out[6].startswith("GIL: free") or one_line_error(out[6]), out[6]
    # Locals: in gdb's `bt full` under the Python frame, and in --locals.
    full = out[7]
    k = full.find("mstest_main_inner [python]")
    assert k >= 0, full
    assert re.search(r"^\s+depth = 7$", full[k:], re.M), full[k:k + 2000]
    assert re.search(r"^\s+label = .*main-7", full[k:], re.M), full[k:k + 2000]
    assert "depth" in out[8] and "main-7" in out[8], out[8]
    # The filter toggled off and on again.
    assert "[python]" not in out[10] and "mstest_block [python]" in out[12], out[10:13]
    # The source gone: `mixstack list` says so in one line.
    script.unlink()
    g = run_gdb(marked(["mixstack up", "mixstack list", "echo ALIVE\\n"]),
                target=[python, core])
    assert_clean(g.stdout)
    out = split_marked(g.stdout, 3)
    assert one_line_error(out[1]) and "cannot read" in out[1], out[1]
    assert "ALIVE" in out[2]


# The crash samples ---------------------------------------------------------

def _probe_interp(tag, arts, probe_script):
    exe = arts[0].manifest["interpreter"]["path"]
    cmds = []
    for a in arts:
        tids = ",".join(str(t["tid"]) for t in a.manifest["threads"]
                        if t.get("python_stack")) or "0"
        cmds += [f"core-file {a.dir}/core", f"mstest-probe {a.scenario} {tids}",
                 "echo @@STACK\\n", "mixstack bt", "echo @@ENDSTACK\\n"]
    g = run_gdb(cmds, target=[exe], probe=probe_script, timeout=600)
    found = {p["label"]: p for p in probes(g.stdout)}
    sel = re.findall(r"^@@STACK\n(.*?)^@@ENDSTACK$", g.stdout, re.M | re.S)
    for a, text in zip(arts, sel):
        if a.scenario in found:
            found[a.scenario]["selected_bt"] = text
    return tag, found, g.stdout


@pytest.fixture(scope="module")
def sample_probes(samples, probe_script):
    """Every artefact probed: one gdb per interpreter, cores opened one
    after the other, two gdbs at a time."""
    if not len(samples):
        pytest.skip("no crash samples produced: %s" % samples.errors)
    groups = {}
    for a in samples:
        groups.setdefault(a.interp_tag, []).append(a)
    with ThreadPoolExecutor(max_workers=2) as ex:
        results = list(ex.map(lambda kv: _probe_interp(kv[0], kv[1], probe_script),
                              groups.items()))
    out = {}
    for tag, found, stdout in results:
        assert_clean(stdout)
        for a in groups[tag]:
            assert a.scenario in found, f"{tag}/{a.scenario}: no probe output\n{stdout[-3000:]}"
            out[(tag, a.scenario)] = (a, found[a.scenario])
    return out


def _cli_json(core):
    proc = subprocess.run([str(MIXSTACK), "core", str(core), "--json"], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode not in (0, 1):
        return None
    return json.loads(proc.stdout)


def test_samples_threads_and_signal(sample_probes):
    problems = []
    for (tag, sc), (a, probe) in sorted(sample_probes.items()):
        m, doc = a.manifest, report_of(probe)
        where = f"{tag}/{sc}"
        tids = sorted(t["tid"] for t in doc["threads"])
        want = sorted(t["tid"] for t in m["threads"])
        if m.get("thread_count") == len(m["threads"]):
            ok = tids == want
        else:
            ok = set(want) <= set(tids)
        if not ok:
            problems.append(f"{where}: tids {tids} != manifest {want}")
        gdb_tids = sorted(t["tid"] for t in probe["gdb_threads"])
        if gdb_tids != tids:
            problems.append(f"{where}: tids {tids} != gdb's {gdb_tids}")
        sig = doc["target"]["signal"]
        if (sig and sig["name"]) != (m["signal"] and m["signal"]["name"]):
            problems.append(f"{where}: signal {sig} != manifest {m['signal']}")
        if m["signal"] and doc["target"]["crashed_tid"] != m["crashed_tid"]:
            problems.append(f"{where}: crashed tid {doc['target']['crashed_tid']} != "
                            f"{m['crashed_tid']}")
        text = probe["mixstack threads"].get("out", "")
        listed = sorted(int(ln.split()[0]) for ln in text.splitlines() if ln.strip())
        if listed != tids:
            problems.append(f"{where}: mixstack threads lists {listed}")
    assert not problems, "\n".join(problems)


def test_samples_native_pcs_agree_with_gdb(sample_probes):
    problems = []
    for (tag, sc), (a, probe) in sorted(sample_probes.items()):
        problems += check_native_pcs(probe, f"{tag}/{sc}")
    assert not problems, "\n".join(problems)


def _manifest_still(a):
    """Whether the artefact on disk is still the one probed (another run of
    the samples harness may have produced it again meanwhile)."""
    try:
        return json.loads((Path(a.dir) / "manifest.json").read_text())["pid"] \
            == a.manifest["pid"]
    except (OSError, ValueError, KeyError):
        return False


def test_samples_python_frames(sample_probes):
    """The report (`mixstack bt all`) has the manifest's Python frames, in
    order, for every thread; gdb's filtered `bt` shows the Python frames of
    the report, in order. Where the report lacks frames the manifest has and
    the CLI (the same library on the same core) lacks them too, that is the
    library's gap, reported as such (xfail), not the plugin's."""
    problems, no_python, library_gaps = [], [], []
    for (tag, sc), (a, probe) in sorted(sample_probes.items()):
        m, doc = a.manifest, report_of(probe)
        where = f"{tag}/{sc}"
        if doc["python"] is None:
            no_python.append(where)
            continue
        by_tid = {t["tid"]: t for t in doc["threads"]}
        gdb_by_tid = {t["tid"]: t for t in probe["gdb_threads"]}
        cli = None
        for mt in m["threads"]:
            t = by_tid.get(mt["tid"])
            if t is None:
                continue
            want = [(f["function"], f["file"], f["line"]) for f in mt["python_stack"]]
            got = python_frames(t)
            if got != want:
                if cli is None and MIXSTACK.exists() and _manifest_still(a):
                    cli = _cli_json(Path(a.dir) / "core") or {}
                cli_t = next((x for x in (cli or {}).get("threads", ())
                              if x["tid"] == mt["tid"]), None)
                if cli_t is not None and python_frames(cli_t) == got:
                    library_gaps.append(f"{where} thread {mt['tid']}: {len(got)} of "
                                        f"{len(want)} Python frames ({t.get('python_error') or 'no error'})")
                else:
                    problems.append(f"{where}: thread {mt['tid']}: Python frames\n  got  {got}"
                                    f"\n  want {want}")
            bt = gdb_by_tid[mt["tid"]]["bt"].get("out", "")
            needles = [f"{f} [python] () at {p}:{ln}" for f, p, ln in got]
            if not in_order(bt, needles):
                problems.append(f"{where}: thread {mt['tid']}: gdb bt lacks some of {needles}"
                                f"\n{bt[:3000]}")
    assert not problems, "\n".join(problems)
    if library_gaps:
        pytest.xfail("libmixstack (the CLI too) misses Python frames the manifests have: "
                     + "; ".join(library_gaps))
    if no_python:
        pytest.skip("libmixstack found no Python runtime (report 'python': null) in: "
                    + ", ".join(no_python))


def test_samples_same_as_cli(sample_probes):
    """The plugin's report is the CLI's: same threads, same frames (the
    header says "debugger target" instead of the core's path)."""
    if not MIXSTACK.exists():
        pytest.skip("CLI not built")
    problems = []
    for (tag, sc), (a, probe) in sorted(sample_probes.items()):
        if sc not in ("deep-interleave", "gil-deadlock", "stripped", "many-threads"):
            continue
        if not _manifest_still(a):
            continue
        cli = _cli_json(Path(a.dir) / "core")
        if cli is None or not _manifest_still(a):
            problems.append(f"{tag}/{sc}: the CLI failed")
            continue
        doc = report_of(probe)
        for key in ("python",):
            if doc[key] != cli[key]:
                problems.append(f"{tag}/{sc}: {key} {doc[key]} vs CLI {cli[key]}")
        for k in ("signal", "crashed_tid", "pid"):
            if doc["target"][k] != cli["target"][k]:
                problems.append(f"{tag}/{sc}: {k} {doc['target'][k]} vs CLI {cli['target'][k]}")
        mine = {t["tid"]: t for t in doc["threads"]}
        theirs = {t["tid"]: t for t in cli["threads"]}
        if list(mine) != list(theirs):
            problems.append(f"{tag}/{sc}: threads {list(mine)} vs CLI {list(theirs)}")
            continue
        fields = ("kind", "pc", "function", "file", "line", "inlined", "category",
                  "native_index")
        for tid, t in mine.items():
            a_frames = [tuple(f.get(x) for x in fields) for f in t["frames"]]
            b_frames = [tuple(f.get(x) for x in fields) for f in theirs[tid]["frames"]]
            if a_frames != b_frames:
                k = next((i for i, (x, y) in enumerate(zip(a_frames, b_frames)) if x != y),
                         min(len(a_frames), len(b_frames)))
                problems.append(f"{tag}/{sc}: thread {tid}: frame #{k} differs from the "
                                f"CLI's:\n  {a_frames[k:k + 1]}\n  {b_frames[k:k + 1]}")
    assert not problems, "\n".join(problems)


def test_samples_sections(sample_probes):
    """gil / err / panic / phase answer in the library's words, or in one
    line when the library cannot say yet; the GIL holder is named."""
    problems = []
    for (tag, sc), (a, probe) in sorted(sample_probes.items()):
        m, doc = a.manifest, report_of(probe)
        for cmd in ("mixstack gil", "mixstack err", "mixstack panic", "mixstack phase"):
            res = probe[cmd]
            if "error" in res:
                if not res["error"].startswith("mixstack: ") or "\n" in res["error"].strip():
                    problems.append(f"{tag}/{sc}: {cmd}: {res['error']!r}")
                continue
            text = res["out"]
            if cmd == "mixstack gil" and m.get("gil_holder_tid") and \
                    str(m["gil_holder_tid"]) not in text:
                problems.append(f"{tag}/{sc}: {cmd} does not name the holder "
                                f"{m['gil_holder_tid']}:\n{text}")
            if cmd == "mixstack phase" and m.get("phase") and m["phase"] not in text:
                problems.append(f"{tag}/{sc}: {cmd} does not say {m['phase']}:\n{text}")
        if doc["python"] is None and "error" not in probe["mixstack gil"]:
            problems.append(f"{tag}/{sc}: gil answered without Python")
    assert not problems, "\n".join(problems)


def test_samples_selected_thread_bt(sample_probes):
    """`mixstack bt` shows only gdb's selected thread: the crashing one for
    crash cores."""
    problems = []
    for (tag, sc), (a, probe) in sorted(sample_probes.items()):
        stacks = parse_stacks(probe.get("selected_bt", ""))
        want = a.manifest["crashed_tid"] or a.manifest["pid"]
        if list(stacks) != [want]:
            problems.append(f"{tag}/{sc}: mixstack bt showed {list(stacks)}, not [{want}]")
    assert not problems, "\n".join(problems)


def test_samples_stripped_python(sample_probes):
    """Debian's stripped python3.11 with a stripped extension."""
    cells = [(k, v) for k, v in sample_probes.items() if k[1] == "stripped"]
    if not cells:
        pytest.skip("no stripped sample (needs Debian's /usr/bin/python3.11)")
    for (tag, sc), (a, probe) in cells:
        doc = report_of(probe)
        m = a.manifest
        assert doc["target"]["crashed_tid"] == m["crashed_tid"]
        crashed = next(t for t in doc["threads"] if t["tid"] == m["crashed_tid"])
        assert crashed["frames"], crashed
        assert not check_native_pcs(probe, f"{tag}/{sc}")


@pytest.fixture()
def live_sample(samples_harness, interpreters):
    prefer = [i for i in interpreters if i.tag.endswith("-debian")] + list(interpreters)
    if not prefer:
        pytest.skip("no interpreter for the live sample")
    try:
        with samples_harness.live("gil-deadlock", prefer[0].tag) as lv:
            yield lv
    except samples_harness.HarnessError as e:
        pytest.skip(f"live sample unavailable: {e}")


def test_live_sample_attached_by_pid(live_sample, probe_script):
    pid, manifest = live_sample.pid, live_sample.manifest
    tids = proc_tids(pid)
    g = run_gdb(marked(["mstest-probe live", "mixstack bt all", "bt"]), target=["-p", pid],
                probe=probe_script)
    assert_clean(g.stdout)
    out = split_marked(g.stdout, 3)
    probe = probes(out[0])[0]
    doc = report_of(probe)
    assert doc["target"]["pid"] == pid and doc["target"]["signal"] is None
    assert sorted(t["tid"] for t in doc["threads"]) == tids
    assert set(parse_stacks(out[1])) == set(tids)
    problems = check_native_pcs(probe, "live gil-deadlock")
    assert not problems, "\n".join(problems)
    if doc["python"] is not None:
        by_tid = {t["tid"]: t for t in doc["threads"]}
        for mt in manifest["threads"]:
            want = [(f["function"], f["file"], f["line"]) for f in mt["python_stack"]]
            assert python_frames(by_tid[mt["tid"]]) == want
    time.sleep(0.2)
    state, tracer = process_state(pid)
    assert tracer == 0 and state in "SR", (state, tracer)
    assert live_sample.child.popen.poll() is None
