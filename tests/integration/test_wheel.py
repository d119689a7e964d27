"""The wheel (scripts/wheel: scikit-build-core + auditwheel), installed in the
Debian unstable root of scripts/lane and run there with the root's own
libdw, libelf and PCRE2 hidden (the root has them, and their -dev packages,
for gdb and for building the lldb plugin against LLDB 22), as on a machine
without them. There, in a clean virtual environment (pip) and with uvx, the
`mixstack` command reports a core of Debian's python3.13 crashing in the
crash-sample extension, and sid's gdb loads the plugin from the wheel with
the line `mixstack debugger-setup gdb` prints. On this machine, lldb-19
loads the wheel's lldb plugin; sid's lldb-22 cannot, and the wheel says how
to get one that can.

Facts come from the crashing program itself: it records its pid and its
Python stack (traceback) in the callback the extension calls just before
the invalid read. pip installs the wheel in the lane, uvx runs it there, and
pipx installs it on this machine.
"""
import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clitool import REPO, core_pattern
from manifest_checks import check_python_stacks, check_signal_and_crashing_thread

pytestmark = pytest.mark.slow

LANE = REPO / "scripts" / "lane"
TOOLS = REPO / "build" / "wheel-tools"
LLDB = shutil.which("lldb-19")

CRASH = '''\
import json, os, sys, traceback
sys.path.insert(0, sys.argv[1])
import mixsample


def record():
    stack = [{"function": f.name, "file": f.filename, "line": f.lineno}
             for f in reversed(traceback.extract_stack()[:-1])]
    with open("facts.json", "w") as f:
        json.dump({"pid": os.getpid(), "stack": stack}, f)


def parse_record():
    return mixsample.segfault(record)


def load():
    parse_record()


load()
'''


def lane_root():
    if os.geteuid() != 0:
        return None
    root = subprocess.run([str(LANE), "path"], capture_output=True, text=True).stdout.strip()
    if not root or not Path(root, "usr/bin/python3.13").exists():
        return None
    return Path(root)


@pytest.fixture(scope="module")
def wheel():
    proc = subprocess.run([str(REPO / "scripts" / "wheel")], capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.exists(), proc.stdout
    return path


def pip_dir():
    found = glob.glob(str(TOOLS / "lib" / "python3*" / "site-packages" / "pip"))
    assert found, "scripts/wheel installs pip in build/wheel-tools"
    return found[0]


def crash(python, workdir, ext_dir, runner=()):
    """Run CRASH with python (through runner); returns (core, facts)."""
    (workdir / "crash.py").write_text(CRASH)
    script = (f"cd {workdir} && ulimit -c unlimited && "
              f"exec {python} crash.py {ext_dir}")
    proc = subprocess.run([*runner, "bash", "-c", script], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    facts = json.loads((workdir / "facts.json").read_text())
    cores = [p for p in workdir.glob("core*") if p.is_file()]
    assert cores, f"no core in {workdir}"
    return cores[0], facts


def python_stack(doc, tid):
    thread = next(t for t in doc["threads"] if t["tid"] == tid)
    return [{"function": f["function"], "file": f["file"], "line": f["line"]}
            for f in thread["frames"] if f["kind"] == "python"]


def json_in(output):
    return json.loads(output[output.index("\n{") + 1:output.rindex("\n}") + 2])


@pytest.fixture(scope="module")
def work(tmp_path_factory, samples_build):
    """A directory under /tmp (visible in the lane) with the extension."""
    if core_pattern().startswith("|") or "/" in core_pattern():
        pytest.skip(f"core_pattern sends cores elsewhere: {core_pattern()}")
    base = tmp_path_factory.mktemp("wheel")
    (base / "ext").mkdir()
    shutil.copy(samples_build.ext, base / "ext" / "mixsample.abi3.so")
    return base


def in_lane(script, check=True):
    proc = subprocess.run([str(LANE), "run", "bash", "-c", script], capture_output=True,
                          text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    return proc


# The root's copies of the libraries the wheel vendors, hidden (an empty file
# bind-mounted over each, in a mount namespace of the command's own inside
# the lane's private one): the wheel's `mixstack` can only run with its own
# copies.
VENDORED = ("libdw.so.1", "libelf.so.1", "libpcre2-8.so.0")
HIDE = ("cd /usr/lib/x86_64-linux-gnu && for f in " + " ".join(VENDORED) +
        "; do mount --bind /dev/null \"$(readlink -f $f)\" || exit 97; done; cd /")


def in_bare_lane(script, check=True):
    """SCRIPT in the lane without the root's libdw, libelf and PCRE2."""
    assert "'" not in script
    return in_lane(f"unshare --mount --propagation unchanged sh -c '{HIDE} && {script}'", check)


@pytest.fixture(scope="module")
def sid(wheel, work):
    """(lane root, venv, the wheel's package dir): the wheel pip-installed
    into a clean virtual environment of the lane's python3.13."""
    root = lane_root()
    if root is None:
        pytest.skip("no Debian unstable lane root (scripts/lane root, as root)")
    # The hiding works: the root's copies cannot be loaded any more.
    for lib in VENDORED:
        probe = in_bare_lane(f"python3.13 -c \"import ctypes, sys; ctypes.CDLL(sys.argv[1])\" "
                             f"{lib}", check=False)
        assert probe.returncode != 0 and "OSError" in probe.stderr, (lib, probe)
    venv = work / "sid-venv"
    in_lane(f"python3.13 -m venv --without-pip {venv} && "
            f"{venv}/bin/python {pip_dir()} install -q --no-index "
            f"--disable-pip-version-check {wheel}")
    site = glob.glob(f"{venv}/lib/python3*/site-packages/mixstack")[0]
    return root, venv, site


def test_wheel_in_debian_unstable_without_its_libraries(wheel, work, sid):
    root, venv, site = sid
    ldd = in_bare_lane(f"ldd {site}/lib/libmixstack.so").stdout
    for lib in ("libdw", "libelf", "libpcre2-8"):
        line = next(x for x in ldd.splitlines() if x.strip().startswith(lib))
        assert "/mixstack.libs/" in line, ldd

    case = work / "sid"
    case.mkdir()
    core, facts = crash("python3.13", case, work / "ext", runner=[str(LANE), "run"])

    # mixstack core
    proc = in_bare_lane(f"{venv}/bin/mixstack core {core} --json; test $? -le 1")
    doc = json.loads(proc.stdout)
    assert doc["target"]["signal"]["name"] == "SIGSEGV"
    assert doc["target"]["crashed_tid"] == facts["pid"]
    assert python_stack(doc, facts["pid"]) == facts["stack"]
    top = doc["threads"][0]["frames"][0]
    assert top["module"].endswith("mixsample.abi3.so") and top["language"] == "rust"

    # gdb (sid's) with the plugin from the wheel, loaded by the printed line.
    line = in_lane(f"{venv}/bin/mixstack debugger-setup gdb").stdout.strip()
    assert line == f"source {site}/share/mixstack/gdb/mixstack-gdb.py"
    gdb = in_lane(f"gdb -nx -batch -iex 'set debuginfod enabled off' -ex '{line}' "
                  f"-ex 'mixstack report --json' /usr/bin/python3.13 {core} 2>&1")
    assert "cannot load" not in gdb.stdout, gdb.stdout
    assert python_stack(json_in(gdb.stdout), facts["pid"]) == facts["stack"]

    # uvx: a throwaway environment of its own.
    uvx = in_bare_lane(f"cd {case} && UV_CACHE_DIR={case}/uv UV_PYTHON_DOWNLOADS=never "
                  f"{TOOLS}/bin/uvx --offline --no-config --python /usr/bin/python3.13 "
                  f"--from {wheel} mixstack threads {core}")
    top_py = facts["stack"][0]
    assert f"{top_py['function']} ({top_py['file']}:{top_py['line']})" in uvx.stdout

    # sid's lldb is lldb-22: the wheel's plugin (for lldb 19) is not offered.
    if Path(root, "usr/bin/lldb-22").exists():
        proc = in_lane(f"{venv}/bin/mixstack debugger-setup lldb --lldb lldb-22",
                       check=False)
        assert proc.returncode == 1 and not proc.stdout
        assert "lldb-19" in proc.stderr and "MIXSTACK_LLDB_ROOT" in proc.stderr


def test_wheel_reports_lane_sample_cores(sid, samples_harness, tmp_path):
    """The crash samples of the lane's interpreters (scripts/samples, when
    it made them), reported by the wheel's mixstack inside the lane, against
    their manifests."""
    root, venv, site = sid
    arts = sorted(Path(samples_harness.out_dir()).glob(
        "artefacts/*-debian-sid*/segfault-in-rust/manifest.json"))
    if not arts:
        pytest.skip("no crash samples of the lane's interpreters")
    for manifest_path in arts:
        m = json.loads(manifest_path.read_text())
        core = manifest_path.parent / "core"
        if not str(core).startswith((str(REPO) + "/", "/tmp/")):
            shutil.copy(core, tmp_path / "core")  # make it visible in the lane
            core = tmp_path / "core"
        proc = in_bare_lane(f"{venv}/bin/mixstack core {core} --json; test $? -le 1")
        doc = json.loads(proc.stdout)
        check_signal_and_crashing_thread(m, doc)
        assert check_python_stacks(m, doc) > 0, m["interpreter"]["tag"]


@pytest.mark.skipif(LLDB is None, reason="lldb-19 not installed")
def test_wheel_pipx_and_lldb_plugin_in_lldb19(wheel, work):
    """pipx installs the wheel here; its lldb plugin loads into the lldb it
    is built for (lldb-19)."""
    case = work / "host"
    case.mkdir()
    core, facts = crash("/usr/bin/python3.11", case, work / "ext")
    env = dict(os.environ, PIPX_HOME=str(case / "pipx"), PIPX_BIN_DIR=str(case / "bin"),
               PIPX_MAN_DIR=str(case / "man"))
    subprocess.run([str(TOOLS / "bin" / "pipx"), "install", "--python", "/usr/bin/python3",
                    "--pip-args=--no-index", str(wheel)], check=True, env=env,
                   capture_output=True, timeout=300)
    mixstack = case / "bin" / "mixstack"
    proc = subprocess.run([str(mixstack), "threads", str(core)], capture_output=True,
                          text=True, timeout=120)
    top_py = facts["stack"][0]
    assert f"{top_py['function']} ({top_py['file']}:{top_py['line']})" in proc.stdout
    line = subprocess.run([str(mixstack), "debugger-setup", "lldb", "--lldb", LLDB],
                          capture_output=True, text=True, check=True)
    assert line.stdout.startswith("plugin load ") and "/site-packages/mixstack/" in line.stdout
    proc = subprocess.run([LLDB, "--batch", "--no-lldbinit", "--core", str(core),
                           "/usr/bin/python3.11", "-o", line.stdout.strip(),
                           "-o", "mixstack report --json"],
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert python_stack(json_in(proc.stdout), facts["pid"]) == facts["stack"], proc.stderr
