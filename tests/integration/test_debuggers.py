"""One debugger test suite: the libpython.py parity commands (README's
table) and frame numbering, the same scenarios parametrised over the
debuggers found, on a core and on a live process:

  gdb       the host's gdb (13) with the gdb plugin
  lldb      the host's lldb (19) with the lldb plugin
  gdb-lane  the test lane's gdb (18, Debian unstable) with the gdb plugin
  lldb-lane the lane's lldb-22 with the lldb plugin built in the lane for
            LLDB 22 (scripts/lane build-lldb), and its own bt/frame
            select/up/down through the scripted frame provider

The target is tests/helpers/nav_target.py: it prints its own Python frames
(function, file, line, locals as repr() gives them) before blocking, and
every assertion compares with that, or with the debugger's own view of the
same frames (`frame N` after `mixstack bt`), never with mixstack's output.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from clitool import BUILD, REPO, gcore

TARGET = REPO / "tests" / "helpers" / "nav_target.py"
GDB_PLUGIN = BUILD.resolve() / "gdb-plugin" / "mixstack-gdb.py"
LLDB_PLUGIN = BUILD.resolve() / "lldb-plugin" / "libmixstack-lldb.so"
LANE = REPO / "scripts" / "lane"
LANE_ROOT = Path(os.environ.get("MIXSTACK_LANE_ROOT", "/var/cache/mixstack/sid-root"))
LANE_PYTHON = "/usr/bin/python3.13"
# libmixstack and the lldb plugin built in the lane for LLDB 22.
LANE_BUILD = Path(os.environ.get("MIXSTACK_LANE_BUILD_DIR",
                                 REPO / "build" / "lane-lldb22")).resolve()
LANE_LLDB_PLUGIN = LANE_BUILD / "lldb-plugin" / "libmixstack-lldb.so"
LANE_LLDB_FRAMES = LANE_BUILD / "lldb-plugin" / "mixstack_lldb_frames.py"
TIMEOUT = 180


def _lldb_host():
    for name in ("lldb-19", "lldb"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _lane_has(*paths):
    return LANE.exists() and all((LANE_ROOT / p.lstrip("/")).exists() for p in paths)


_SANITIZED = None


def _sanitized():
    """An ASan build of the library cannot be loaded into a debugger that
    was not started with its runtime (scripts/test's second pass)."""
    global _SANITIZED
    if _SANITIZED is None:
        try:
            out = subprocess.run(["ldd", str(BUILD / "libmixstack.so")], capture_output=True,
                                 text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _SANITIZED = "libasan" in out
    return _SANITIZED


# Debuggers ------------------------------------------------------------------

class Debugger:
    """Runs commands in one debugger session on a core or a pid; returns
    each command's output."""
    name = None
    full = True  # has the mixstack commands (not only its own bt)
    own_python_frames = False  # its own frames include Python frames

    def available(self):
        raise NotImplementedError

    def prefix(self):
        return []

    def run(self, commands, exe=None, core=None, pid=None, launch=None):
        argv = self.prefix() + self.argv(commands, exe, core, pid, launch)
        env = dict(os.environ)
        env.pop("MIXSTACK_LIB", None)
        if _sanitized():
            # The ASan library brings its runtime into the debugger (which
            # cannot be started with it preloaded); gdb's leaks are not ours.
            env["ASAN_OPTIONS"] = ":".join(x for x in (
                env.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0",
                "detect_leaks=0") if x)
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace", timeout=TIMEOUT,
                                  stdin=subprocess.DEVNULL, env=env)
        finally:
            for path in getattr(self, "_scripts", ()):
                os.unlink(path)
            self._scripts = []
        parts = re.split(r"^@@CMD (\d+|end)\n", proc.stdout, flags=re.M)
        got = {}
        for k in range(1, len(parts) - 1, 2):
            if parts[k] != "end":
                got[int(parts[k])] = self.clean(parts[k + 1])
        assert "@@CMD end" in proc.stdout and len(got) == len(commands), proc.stdout[-4000:]
        self.last_stdout = proc.stdout
        return [got[i] for i in range(len(commands))]

    def clean(self, text):
        return text


class Gdb(Debugger):
    name = "gdb"

    def __init__(self, lane=False):
        self.lane = lane
        if lane:
            self.name = "gdb-lane"

    def available(self):
        if not GDB_PLUGIN.exists():
            return "gdb plugin not built"
        if self.lane:
            return None if _lane_has("/usr/bin/gdb", LANE_PYTHON) else "no lane root with gdb"
        return None if shutil.which("gdb") else "gdb not installed"

    def prefix(self):
        return [str(LANE), "run", "env", "NAV_ABORT=1"] if self.lane else []

    def argv(self, commands, exe, core, pid, launch):
        argv = ["gdb", "-nx", "-batch", "-iex", "set auto-load python-scripts off",
                "-iex", "set debuginfod enabled off", "-iex", "set pagination off",
                "-iex", "set width 0", "-iex", "set confirm off",
                "-ex", f"source {GDB_PLUGIN}"]
        if launch:
            argv += ["-ex", "run"]
        for i, c in enumerate(commands):
            argv += ["-ex", f"echo @@CMD {i}\\n", "-ex", c]
        argv += ["-ex", "echo @@CMD end\\n"]
        if launch:
            return argv + ["--args"] + launch
        if pid:
            return argv + ["-p", str(pid)]
        return argv + [exe, str(core)]

    select = "frame %d"
    pc = "p/x $pc"

    def frame_pc(self, out):
        m = re.search(r"^\$\d+ = 0x([0-9a-f]+)", out, re.M)
        return int(m.group(1), 16) if m else None


class Lldb(Debugger):
    name = "lldb"

    def __init__(self, lane=False):
        self._scripts = []
        self.lane = lane
        if lane:
            self.name = "lldb-lane"
            self.own_python_frames = True  # the scripted frame provider

    def available(self):
        if self.lane:
            if not LANE_LLDB_PLUGIN.exists():
                return "lldb plugin not built in the lane (scripts/lane build-lldb)"
            return None if _lane_has("/usr/bin/lldb-22") else "no lane root with lldb-22"
        if not LLDB_PLUGIN.exists():
            return "lldb plugin not built"
        return None if _lldb_host() else "lldb not installed"

    def prefix(self):
        return [str(LANE), "run", "env", "NAV_ABORT=1"] if self.lane else []

    def argv(self, commands, exe, core, pid, launch):
        argv = ["lldb-22" if self.lane else _lldb_host(), "-b", "-x"]
        argv += ["-o", f"plugin load {LANE_LLDB_PLUGIN if self.lane else LLDB_PLUGIN}"]
        if launch:
            argv += ["-o", f"target create {launch[0]}"]
        elif pid:
            argv += ["-o", f"process attach -p {pid}"]
        else:
            argv += ["-o", f"target create {exe} --core {core}"]
        if self.lane:
            argv += ["-o", f"command script import {LANE_LLDB_FRAMES}"]
        if launch:
            argv += ["-o", "process launch -- " + " ".join(launch[1:])]
        # Sourced with -e false: a command's error does not end the batch.
        lines = []
        for i, c in enumerate(commands):
            lines += [f"script print('@@CMD {i}')", c]
        lines.append("script print('@@CMD end')")
        fd, path = tempfile.mkstemp(prefix="mixstack-lldb-", suffix=".cmds", dir="/tmp")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._scripts.append(path)
        # After a launch the process stops on its abort: a batch goes on
        # with the -k commands only.
        return argv + ["-k" if launch else "-o", f"command source -e false {path}"]

    def clean(self, text):
        # lldb echoes each command; the output follows it.
        return "\n".join(line for line in text.splitlines()
                         if not line.startswith("(lldb) "))

    select = "frame select %d"
    pc = "register read pc"

    def frame_pc(self, out):
        m = re.search(r"(?:pc|rip) = 0x([0-9a-f]+)", out)
        return int(m.group(1), 16) if m else None


DEBUGGERS = [Gdb(), Lldb(), Gdb(lane=True), Lldb(lane=True)]


# Targets ----------------------------------------------------------------------

class Target:
    def __init__(self, exe, facts, proc=None, launch=None):
        self.exe, self.facts, self.proc = exe, facts, proc
        self.pid = facts["pid"]
        self.core = None
        # Lane targets are launched by the debugger (in the same root: a
        # process of another `lane run` shows its files under the root's
        # host path).
        self.launch = launch

    @property
    def frames(self):
        return self.facts["frames"]


def _start(argv):
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait()
        pytest.fail("%s printed nothing" % argv)
    return proc, json.loads(line)


def _facts_in(text):
    for line in text.splitlines():
        if line.startswith('{"frames"'):
            return json.loads(line)
    return None


def _host_python(interpreters):
    """The newest interpreter with debug info (gdb names the eval loop)."""
    tagged = [i for i in interpreters if "pyenv" in i.tag] or list(interpreters)
    return sorted(tagged, key=lambda i: i.hexversion)[-1] if tagged else None


def _lane_target(tmp_path_factory):
    """nav_target run by the lane's gdb, which writes a core at its abort."""
    core = tmp_path_factory.mktemp("nav-lane") / "core"
    launch = [LANE_PYTHON, "-E", "-s", str(TARGET)]
    gdb = Gdb(lane=True)
    gdb.run([f"generate-core-file {core}"], launch=launch)
    facts = _facts_in(gdb.last_stdout)
    assert facts and core.exists(), gdb.last_stdout[-3000:]
    t = Target(LANE_PYTHON, facts, launch=launch)
    t.core = core
    return t


@pytest.fixture(scope="module")
def targets(interpreters, tmp_path_factory):
    """A blocked nav_target process on the host and a core of it; on the
    lane, a core and a command line to launch."""
    started = {}
    try:
        host = _host_python(interpreters)
        if host is not None:
            proc, facts = _start([host.path, "-E", "-s", str(TARGET)])
            started["host"] = Target(host.path, facts, proc)
            started["host"].core = gcore(facts["pid"], tmp_path_factory.mktemp("nav-host") / "core")
        if Gdb(lane=True).available() is None:
            started["lane"] = _lane_target(tmp_path_factory)
        yield started
    finally:
        for t in started.values():
            if t.proc is not None:
                t.proc.kill()
                t.proc.wait()


def _case(request, targets):
    debugger, kind = request.param
    why = debugger.available()
    if why:
        pytest.skip(why)
    if _sanitized() and debugger.lane:
        pytest.skip("a sanitizer build of the library is not loaded in the lane")
    target = targets.get("lane" if debugger.lane else "host")
    if target is None:
        pytest.skip("no target interpreter for %s" % debugger.name)
    return debugger, kind, target


@pytest.fixture(params=[(d, k) for d in DEBUGGERS for k in ("core", "live")],
                ids=lambda p: "%s-%s" % (p[0].name, p[1]))
def case(request, targets):
    return _case(request, targets)


@pytest.fixture(params=[(d, k) for d in DEBUGGERS if d.full for k in ("core", "live")],
                ids=lambda p: "%s-%s" % (p[0].name, p[1]))
def full_case(request, targets):
    return _case(request, targets)


def run(debugger, kind, target, commands):
    if kind == "core":
        return debugger.run(commands, exe=target.exe, core=target.core)
    if target.launch:
        return debugger.run(commands, launch=target.launch)
    return debugger.run(commands, pid=target.pid)


# What the commands print ------------------------------------------------------

_LISTED = re.compile(r"^(\*| ) #(\d+|\?)\s+(0x[0-9a-f]+|\[inlined\]|\[python\])\s+(\S+)(.*)$",
                     re.M)


def listed(text):
    """(marked, number or None, pc/kind, name, rest) of each frame line."""
    out = []
    for m in _LISTED.finditer(text):
        number = None if m.group(2) == "?" else int(m.group(2))
        out.append((m.group(1) == "*", number, m.group(3), m.group(4), m.group(5)))
    return out


def python_listed(text):
    return [f for f in listed(text) if f[2] == "[python]"]


def where(frame):
    return "%s:%d" % (frame["file"], frame["line"])


def source_line(frame):
    with open(frame["file"]) as f:
        return f.read().splitlines()[frame["line"] - 1].strip()


# The scenarios ------------------------------------------------------------------

def test_bt_numbers_are_the_debuggers(full_case):
    """`mixstack bt` lists the Python frames the process recorded, in order;
    `frame N` in the debugger selects the frame listed as #N (same pc for a
    native frame; the eval loop running it for a Python frame), and
    `mixstack frame N` selects the same."""
    debugger, kind, target = full_case
    bt, = run(debugger, kind, target, ["mixstack bt"])
    frames = listed(bt)
    py = [f for f in frames if f[2] == "[python]"]
    assert [f[3] for f in py] == [f["function"] for f in target.frames], bt
    for f, fact in zip(py, target.frames):
        assert where(fact) in f[4], (f, fact)
    native = [f for f in frames if f[2].startswith("0x") and f[1] is not None]
    assert native, bt
    checks = native[:6] + [f for f in py if f[1] is not None][:2]
    cmds = []
    for f in checks:
        cmds += [debugger.select % f[1], debugger.pc, "mixstack frame %d" % f[1], debugger.pc]
    outs = run(debugger, kind, target, cmds)
    for k, f in enumerate(checks):
        own, own_pc, ours, our_pc = outs[4 * k:4 * k + 4]
        if f[2].startswith("0x"):
            assert debugger.frame_pc(own_pc) == int(f[2], 16), (f, own, own_pc)
            assert debugger.frame_pc(our_pc) == int(f[2], 16), (f, ours, our_pc)
        else:
            # The eval-loop frame: the debugger names it (the interpreter
            # has symbols), and mixstack shows the innermost Python frame
            # it runs (3.11+ runs several in one eval-loop frame).
            first = next(p for p in py if p[1] == f[1])
            if debugger.own_python_frames:
                # LLDB 22's frame provider: the debugger's frame N is the
                # Python frame itself.
                assert "%s [python]" % first[3] in own, (f, own)
            else:
                assert "EvalFrame" in own, (f, own)
            assert "[python]" in ours and first[3] in ours, (f, ours)


def test_py_bt_with_source_lines(full_case):
    debugger, kind, target = full_case
    out, full = run(debugger, kind, target, ["mixstack py-bt", "mixstack py-bt-full"])
    assert [f[3] for f in python_listed(out)] == [f["function"] for f in target.frames], out
    assert not [f for f in listed(out) if f[2] != "[python]"], out
    for fact in target.frames:
        assert source_line(fact) in out, (fact, out)
    # py-bt-full: the same frames with their arguments and locals.
    assert [f[3] for f in python_listed(full)] == [f["function"] for f in target.frames]
    for fact in target.frames:
        for name, value in fact["locals"].items():
            assert re.search(r"(arg|local) +%s = %s$" % (re.escape(name), re.escape(value)),
                             full, re.M), (name, value, full)


def test_py_up_down_with_counts_and_locals(full_case):
    """py-up/py-down move through the Python frames by count; the current
    one is marked in `mixstack bt`, its locals are py-locals, py-print finds
    a local, py-list shows its line and continues when run again."""
    debugger, kind, target = full_case
    facts = target.frames
    cmds = ["mixstack py-up 2", "mixstack bt", "mixstack py-locals",
            "mixstack py-print middle_count", "mixstack py-down", "mixstack py-list",
            "mixstack py-list", "mixstack py-up 10", "mixstack py-up",
            "mixstack py-print no_such_name"]
    up2, bt, local_vars, printed, down, list1, list2, top, past, missing = run(
        debugger, kind, target, cmds)
    # From the innermost frame (native), the current Python frame is
    # facts[0]; two up is facts[2].
    assert python_listed(up2)[0][3] == facts[2]["function"], up2
    assert source_line(facts[2]) in up2
    marked = [f for f in python_listed(bt) if f[0]]
    assert [f[3] for f in marked] == [facts[2]["function"]], bt
    for name, value in facts[2]["locals"].items():
        assert "%s = %s" % (name, value) in local_vars, (name, local_vars)
    # middle_count is level2's, not level1's.
    assert "middle_count" not in facts[2]["locals"]
    assert "mixstack:" in printed and "middle_count" in printed, printed
    assert python_listed(down)[0][3] == facts[1]["function"], down
    line = facts[1]["line"]
    assert re.search(r"^>\s*%d\s" % line, list1, re.M), list1
    numbers1 = [int(n) for n in re.findall(r"^[ >]\s*(\d+)\s", list1, re.M)]
    numbers2 = [int(n) for n in re.findall(r"^[ >]\s*(\d+)\s", list2, re.M)]
    assert numbers1 and numbers2 and numbers2[0] == numbers1[-1] + 1, (list1, list2)
    assert python_listed(top)[0][3] == facts[-1]["function"], top
    assert "no older Python frame" in past, past
    assert "no_such_name" in missing and "mixstack:" in missing, missing


def test_py_print_locals_globals_builtins(full_case):
    """py-print NAME looks in the current Python frame's locals, then its
    module's globals, then the builtins, as libpython.py's does."""
    debugger, kind, target = full_case
    facts = target.frames
    out = run(debugger, kind, target, ["mixstack py-up 1", "mixstack py-print middle_count",
                                       "mixstack py-print depth",
                                       "mixstack py-print NAV_GLOBAL",
                                       "mixstack py-print len"])
    assert "local middle_count = %s" % facts[1]["locals"]["middle_count"] in out[1], out
    assert "local depth = %s" % facts[1]["locals"]["depth"] in out[2], out
    # The target's interpreters are 3.11+, whose frames record their
    # globals.
    assert "global NAV_GLOBAL = %s" % target.facts["global"] in out[3], out
    assert re.search(r"^builtin len = <built-?in", out[4], re.M), out


def test_debuggers_own_bt_shows_python_frames(case):
    """The debugger's own `bt` (gdb's frame filter, LLDB 22's frame
    provider) has the Python frames in order, and its frame selection
    reaches them."""
    debugger, kind, target = case
    if debugger.name == "lldb":
        pytest.skip("LLDB 19 has no scripted frame providers: `mixstack bt` only")
    bt, = run(debugger, kind, target, ["bt"])
    names = [f["function"] for f in target.frames]
    found = re.findall(r"(\S+) \[python\]", bt)
    assert found == names, bt
    for fact in target.frames:
        assert where(fact).split("/")[-1] in bt, (fact, bt)
    if debugger.name.startswith("lldb"):
        n = int(re.search(r"frame #(\d+): %s \[python\]" % re.escape(names[1]), bt).group(1))
        sel, up = run(debugger, kind, target, ["frame select %d" % n, "up"])
        assert "%s [python]" % names[1] in sel, sel
        assert "%s [python]" % names[2] in up, up


def test_thread_names_and_help(full_case):
    """The main thread is named as in the CLI (the process's comm on a core,
    where the core names no thread), and `mixstack` alone prints the
    commands."""
    debugger, kind, target = full_case
    bt, bare = run(debugger, kind, target, ["mixstack bt", "mixstack"])
    comm = Path(target.exe).name[:15]
    # (A lane target is launched again for each live session: another pid.)
    pid = r"\d+" if target.launch else str(target.pid)
    assert re.search(r'^Thread %s "%s"' % (pid, re.escape(comm)), bt, re.M), bt
    for command in ("py-bt", "py-list", "py-up", "py-down", "py-locals", "py-print",
                    "frame"):
        assert "mixstack " + command in bare, bare


def test_gdb_bt_keeps_unnamed_frames(targets):
    """Frames gdb cannot name stay `??` in its `bt` with the frame filter on
    (a Debian interpreter without its debug symbols has unnamed frames)."""
    if Gdb().available():
        pytest.skip(Gdb().available())
    exe = "/usr/bin/python3.11"
    if not os.path.exists(exe):
        pytest.skip("no Debian python3.11")
    proc, facts = _start([exe, "-E", "-s", str(TARGET)])
    try:
        raw, filtered = Gdb().run(["bt -no-filters", "bt"], pid=facts["pid"])
    finally:
        proc.kill()
        proc.wait()
    unnamed = re.findall(r"^#(\d+)\s+0x[0-9a-f]+ in \?\? \(\)", raw, re.M)
    if not unnamed:
        pytest.skip("gdb names every frame here")
    for n in unnamed:
        m = re.search(r"^#%s\s+.*$" % n, filtered, re.M)
        assert m is None or " in ?? (" in m.group(0), (n, m.group(0), filtered)
    assert " in  (" not in filtered, filtered
