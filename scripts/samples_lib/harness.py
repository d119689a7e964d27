"""mixstack crash-samples harness (stdlib only; runs on Python 3.8+).

Builds the `mixsample` PyO3 extension (crash-samples/ext) and runs the
scenario drivers (crash-samples/scenarios/*.py) under every CPython
interpreter found, producing artefact directories

    <out>/artefacts/<interp-tag>/<scenario>/{core,manifest.json,stdout,stderr,
                                              ext/mixsample.abi3.so,stamp.json,run.json}

Public API (used by scripts/samples and tests/conftest.py):
    build(out=None) -> BuildInfo
    interpreters(extra=None) -> [Interp]
    scenarios() -> {name: Scenario}
    produce(scenario, interp, out=None) -> Path (artefact dir)
    run_matrix(interps=None, scenario_names=None, out=None, jobs=2) -> [Result]
    live(scenario, interp, out=None)  (context manager yielding (pid, manifest))
    index(out=None) -> [Artefact(interp_tag, scenario, dir, manifest)]
    find_interp(tag_or_path) -> Interp
    lane_interpreters() -> [Interp]   Debian unstable's interpreters in the
                                      test lane's root (scripts/lane)
    analysis_options(artefact_dir) -> [mixstack CLI options] (--sysroot for
                                      artefacts made inside the lane's root)
"""

import ast
import collections
import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES_SRC = REPO / "crash-samples"
SCENARIO_DIR = SAMPLES_SRC / "scenarios"
EXT_SRC = SAMPLES_SRC / "ext"
DRIVER_SUPPORT = SCENARIO_DIR / "_mixdriver.py"

# Bump when the artefact layout or the way scenarios are run changes:
# invalidates every cached artefact.
HARNESS_VERSION = "4"

READY_TIMEOUT = 30.0     # scenario must reach readiness (or crash) in this time
SETTLE_TIMEOUT = 15.0    # threads listed with blocked_in must get there
GCORE_TIMEOUT = 120.0
CARGO_TIMEOUT = 1200.0
MIN_VERSION = (3, 8)
MAX_VERSION = (3, 13)

SYSCALLS = {
    "x86_64": {"read": 0, "futex": 202, "clock_nanosleep": 230, "select": 23,
               "epoll_wait": 232},
    "aarch64": {"read": 63, "futex": 98, "clock_nanosleep": 115, "pselect6": 72,
                "epoll_wait": 22},
}


class HarnessError(Exception):
    """A scenario or the build failed; the message says why."""


class NotApplicable(HarnessError):
    pass


class CoreUnavailable(HarnessError):
    pass


def log(msg):
    sys.stderr.write("[samples] %s\n" % msg)
    sys.stderr.flush()


def out_dir(out=None):
    if out:
        return Path(out).resolve()
    env = os.environ.get("MIXSTACK_SAMPLES_DIR")
    if env:
        return Path(env).resolve()
    return REPO / "build" / "samples"


def sha256_file(path):
    h = hashlib.sha256()
    with open(str(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _atomic_write_json(path, data):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, str(path))


# ---------------------------------------------------------------------------
# interpreters
# ---------------------------------------------------------------------------

# root: the directory the interpreter runs chrooted in (the test lane), or
# None; path is then the path inside it. env: extra environment, as
# (name, value) pairs (PYTHON_JIT=1).
Interp = collections.namedtuple("Interp", "tag path version hexversion origin root env",
                                defaults=(None, ()))


def host_path(interp):
    """The interpreter's executable as seen from this machine."""
    return interp.root + interp.path if interp.root else interp.path

_PROBE = ("import json,sys,platform;j=getattr(sys,'_jit',None);"
          "print(json.dumps({'version':platform.python_version(),"
          "'hexversion':sys.hexversion,'impl':platform.python_implementation(),"
          "'executable':sys.executable,'jit':bool(j and j.is_enabled())}))")
_probe_cache = {}


def _py_flags(env=()):
    """Interpreter options of every scenario process: -E (ignore PYTHON*
    variables), except where the interpreter's own environment says what
    it needs (PYTHON_JIT=1 has no -X equivalent); the harness gives the
    scenario a minimal environment anyway."""
    return (["-s", "-B"] if env else ["-E", "-s", "-B"])
_probe_lock = threading.Lock()


def _probe(path, root=None, env=()):
    path = str(path)
    key = (path, root, env)
    with _probe_lock:
        if key in _probe_cache:
            return _probe_cache[key]
    cmd = [path] + _py_flags(env)[:-1] + ["-c", _PROBE]
    if root:
        cmd = ["chroot", root] + cmd
    penv = dict(os.environ)
    if env:  # no -E: nothing but env
        penv = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        penv.update(env)
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, env=penv,
                           stderr=subprocess.PIPE, timeout=30, stdin=subprocess.DEVNULL)
        info = json.loads(r.stdout.decode()) if r.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        info = None
    with _probe_lock:
        _probe_cache[key] = info
    return info


def _version_ok(version, origin="pyenv"):
    parts = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if origin in ("extra", "sid", "sid-jit"):  # explicitly requested: any GIL build the abi3 .so supports
        return MIN_VERSION <= parts
    return MIN_VERSION <= parts <= MAX_VERSION


def _make_interp(path, origin):
    info = _probe(path)
    if not info or info.get("impl") != "CPython" or not _version_ok(info["version"], origin):
        return None
    tag = "cpython-%s-%s" % (info["version"], origin)
    if origin == "extra":
        tag += "-" + hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:6]
    return Interp(tag, str(path), info["version"], info["hexversion"], origin)


def _candidates():
    out = []
    for p in sorted(glob.glob("/usr/bin/python3.*")):
        if re.match(r"^python3\.\d+$", os.path.basename(p)):
            out.append((p, "debian" if os.path.exists("/etc/debian_version") else "system"))
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(os.environ["PYENV_ROOT"])
    roots.append("/root/.pyenv")
    roots.append(os.path.expanduser("~/.pyenv"))
    seen_roots = set()
    for root in roots:
        vdir = os.path.join(root, "versions")
        if os.path.realpath(vdir) in seen_roots or not os.path.isdir(vdir):
            continue
        seen_roots.add(os.path.realpath(vdir))
        def vkey(v):
            return tuple(int(x) for x in re.findall(r"\d+", v))
        for v in sorted(os.listdir(vdir), key=vkey):
            m = re.match(r"^3\.(\d+)\.\d+$", v)
            if not m:
                continue
            exe = os.path.join(vdir, v, "bin", "python3.%s" % m.group(1))
            if os.access(exe, os.X_OK):
                out.append((exe, "pyenv"))
    for p in os.environ.get("MIXSTACK_EXTRA_PYTHONS", "").split(":"):
        if p.strip():
            out.append((p.strip(), "extra"))
    return out


_interp_cache = None


def interpreters(refresh=False):
    """Every usable CPython 3.8-3.13 found: Debian's /usr/bin/python3.X, pyenv
    versions, and MIXSTACK_EXTRA_PYTHONS (colon-separated paths)."""
    global _interp_cache
    if _interp_cache is not None and not refresh:
        return list(_interp_cache)
    found = []
    seen = set()
    for path, origin in _candidates():
        rp = os.path.realpath(path)
        if rp in seen or not os.path.exists(path):
            continue
        it = _make_interp(path, origin)
        if it is None:
            if origin == "extra":
                log("ignoring MIXSTACK_EXTRA_PYTHONS entry %s (not CPython >= 3.8)" % path)
            continue
        seen.add(rp)
        found.append(it)
    _interp_cache = found
    return list(found)


LANE_VERSIONS = ("3.13", "3.14", "3.15")
_lane_cache = None


def lane_root():
    """The test lane's Debian unstable root (scripts/lane root), or None when
    it has not been made, cannot be entered (chroot needs root), or
    MIXSTACK_LANE=0."""
    if os.environ.get("MIXSTACK_LANE", "1") == "0":
        return None
    root = os.environ.get("MIXSTACK_LANE_ROOT", "/var/cache/mixstack/sid-root")
    root = os.path.realpath(root)
    if not os.path.exists(os.path.join(root, ".mixstack-lane")):
        return None
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("chroot"):
        return None
    return root


def lane_interpreters(refresh=False):
    """Debian unstable's python3.13/3.14/3.15 in the lane's root, tagged
    cpython-<version>-debian-sid, and 3.14+ again with the JIT turned on
    (PYTHON_JIT=1), tagged ...-debian-sid-jit. They run chrooted in the
    root; their cores name files relative to it (analysis_options)."""
    global _lane_cache
    if _lane_cache is not None and not refresh:
        return list(_lane_cache)
    found = []
    root = lane_root()
    for minor in LANE_VERSIONS if root else ():
        path = "/usr/bin/python" + minor
        if not os.access(root + path, os.X_OK):
            continue
        variants = [("sid", ())]
        if tuple(int(x) for x in minor.split(".")) >= (3, 14):
            variants.append(("sid-jit", (("PYTHON_JIT", "1"),)))
        for origin, env in variants:
            info = _probe(path, root, env)
            if not info or info.get("impl") != "CPython":
                continue
            if env and not info.get("jit"):
                log("lane: %s has no JIT to turn on; no -jit interpreter" % path)
                continue
            tag = "cpython-%s-debian-%s" % (info["version"], origin)
            found.append(Interp(tag, path, info["version"], info["hexversion"], origin,
                                root, env))
    _lane_cache = found
    return list(found)


def all_interpreters():
    """interpreters() and lane_interpreters(): every sample matrix column."""
    return interpreters() + lane_interpreters()


def find_interp(spec):
    """An Interp by tag (exact or unique prefix/substring), version, or path."""
    if isinstance(spec, Interp):
        return spec
    spec = str(spec)
    its = all_interpreters()
    for it in its:
        if spec == it.tag:
            return it
    if os.path.sep in spec:
        rp = os.path.realpath(spec)
        for it in its:
            if os.path.realpath(it.path) == rp:
                return it
        it = _make_interp(spec, "extra")
        if it is None:
            raise HarnessError("%s is not a usable CPython 3.8-3.13 interpreter" % spec)
        return it
    matches = [it for it in its if spec in it.tag]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise HarnessError("no interpreter matches %r; found: %s"
                           % (spec, ", ".join(i.tag for i in its)))
    raise HarnessError("%r is ambiguous: %s" % (spec, ", ".join(i.tag for i in matches)))


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

Scenario = collections.namedtuple("Scenario", "name path doc meta")


def scenarios():
    """{name: Scenario} from crash-samples/scenarios/*.py (the module
    docstring is the documentation; SCENARIO = {...} the metadata)."""
    out = {}
    for p in sorted(SCENARIO_DIR.glob("*.py")):
        if p.name.startswith("_"):
            continue
        tree = ast.parse(p.read_text(), str(p))
        meta = None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "SCENARIO" for t in node.targets):
                meta = ast.literal_eval(node.value)
        if meta is None:
            continue
        meta.setdefault("interpreters", "all")
        meta.setdefault("extension", "normal")
        out[p.stem] = Scenario(p.stem, p, ast.get_docstring(tree) or "", meta)
    return out


def applicable(sc, interp):
    which = sc.meta.get("interpreters", "all")
    if which == "all":
        return True
    if which == "debian":
        return interp.origin == "debian"
    if which == "lane":
        return interp.root is not None
    if isinstance(which, dict):  # {"min_version": "3.14", "lane": True, "jit": False}
        want = tuple(int(x) for x in which.get("min_version", "3.8").split("."))
        have = tuple(int(x) for x in interp.version.split(".")[:2])
        if have < want:
            return False
        if which.get("jit") is False and interp.env:
            return False
        return not which.get("lane") or interp.root is not None
    return interp.tag in which


# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------

BuildInfo = collections.namedtuple("BuildInfo", "ext ext_stripped ext_sha256 ext_stripped_sha256 pyo3_version")


def _pyo3_version():
    lock = EXT_SRC / "Cargo.lock"
    if lock.exists():
        m = re.search(r'name = "pyo3"\nversion = "([^"]+)"', lock.read_text())
        if m:
            return m.group(1)
    m = re.search(r'pyo3\s*=\s*\{\s*version\s*=\s*"=?([^"]+)"', (EXT_SRC / "Cargo.toml").read_text())
    return m.group(1) if m else None


def _install_file(src, dest, transform=None):
    """Copy src to dest atomically (new inode: hard links to the old file,
    e.g. in artefact dirs, keep the old contents)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(str(src), str(tmp))
    if transform:
        transform(tmp)
    os.chmod(str(tmp), 0o755)
    os.replace(str(tmp), str(dest))


def build(out=None, quiet=False):
    """cargo build --release (cached by cargo) and install
    <out>/ext/mixsample.abi3.so and <out>/ext-stripped/mixsample.abi3.so."""
    out = out_dir(out)
    with file_lock(out / ".build.lock"):
        target = out / "cargo-target"
        env = dict(os.environ)
        env["CARGO_TARGET_DIR"] = str(target)
        env["RUST_BACKTRACE"] = "0"
        env["PYO3_BUILD_EXTENSION_MODULE"] = "1"
        its = interpreters()
        pyo3_python = its[0].path if its else sys.executable
        # prefer the oldest pyenv interpreter for configuration (abi3-py38
        # makes the result independent of it anyway)
        pyenv = [i for i in its if i.origin == "pyenv"]
        if pyenv:
            pyo3_python = pyenv[0].path
        env["PYO3_PYTHON"] = pyo3_python
        cmd = ["cargo", "build", "--release"]
        if (EXT_SRC / "Cargo.lock").exists():
            cmd.append("--locked")
        t0 = time.time()
        r = subprocess.run(cmd, cwd=str(EXT_SRC), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=CARGO_TIMEOUT)
        output = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0:
            raise HarnessError("cargo build failed (PYO3_PYTHON=%s):\n%s" % (pyo3_python, output[-6000:]))
        if not quiet and "Compiling" in output:
            log("cargo build --release: %.1fs" % (time.time() - t0))
        built = target / "release" / "libmixsample.so"
        if not built.exists():
            raise HarnessError("cargo did not produce %s" % built)
        sha = sha256_file(built)
        ext = out / "ext" / "mixsample.abi3.so"
        if not ext.exists() or sha256_file(ext) != sha:
            _install_file(built, ext)
        ext_sha = sha256_file(ext)
        stripped = out / "ext-stripped" / "mixsample.abi3.so"
        marker = stripped.with_name(".source-sha256")
        if not stripped.exists() or not marker.exists() or marker.read_text().strip() != ext_sha:
            def do_strip(p):
                subprocess.run(["strip", "--strip-all", str(p)], check=True, timeout=120)
            _install_file(ext, stripped, do_strip)
            marker.write_text(ext_sha + "\n")
        return BuildInfo(str(ext), str(stripped), ext_sha, sha256_file(stripped), _pyo3_version())


EMBED_SRC = SAMPLES_SRC / "embed"
_embed_cache = {}
_LIBDIR_PROBE = ("import sysconfig as s;print(s.get_config_var('LIBDIR'));"
                 "print(s.get_config_var('LDLIBRARY'))")


def build_embed(interp, out=None):
    """cargo build --release of crash-samples/embed (a Rust program that
    embeds CPython with PyO3) against interp's shared libpython, which for a
    lane interpreter is the root's: built here, run in the root. Returns
    (path of the program, sha256)."""
    key = (interp.version, interp.root, str(out_dir(out)))
    if key in _embed_cache:
        return _embed_cache[key]
    if not interp.root:
        raise NotApplicable("embedding samples are built for the lane's interpreters")
    minor = ".".join(interp.version.split(".")[:2])
    r = subprocess.run(["chroot", interp.root, interp.path, "-E", "-c", _LIBDIR_PROBE],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    lines = r.stdout.decode().split()
    if r.returncode != 0 or len(lines) != 2 or not lines[1].endswith(".so"):
        raise HarnessError("%s has no shared libpython: %s" % (interp.tag, r.stdout.decode()))
    libdir = interp.root + lines[0]
    lib_name = re.sub(r"^lib|\.so$", "", lines[1])
    base = out_dir(out) / "embed" / minor
    with file_lock(out_dir(out) / (".embed-%s.lock" % minor)):
        base.mkdir(parents=True, exist_ok=True)
        config = base / "pyo3-config.txt"
        text = ("implementation=CPython\nversion=%s\nshared=true\nabi3=false\n"
                "lib_name=%s\nlib_dir=%s\nexecutable=%s\npointer_width=64\n"
                "build_flags=\nsuppress_build_script_link_lines=false\n"
                % (minor, lib_name, libdir, interp.path))
        # Rewritten only when it changes: cargo rebuilds PyO3 when it does.
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
        env = dict(os.environ)
        env.update({
            "CARGO_TARGET_DIR": str(out_dir(out) / "cargo-embed" / minor),
            "PYO3_CONFIG_FILE": str(config),
            "RUST_BACKTRACE": "0",
            # libpython and its libraries are the root's, made for a newer
            # glibc than this machine's: resolved at run time, in the root.
            "RUSTFLAGS": "-C link-arg=-Wl,--allow-shlib-undefined "
                         "-C link-arg=-Wl,-rpath-link,%s" % libdir,
        })
        env.pop("PYO3_PYTHON", None)
        r = subprocess.run(["cargo", "build", "--release", "--locked"], cwd=str(EMBED_SRC),
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=CARGO_TIMEOUT)
        if r.returncode != 0:
            raise HarnessError("cargo build of crash-samples/embed for %s failed:\n%s"
                               % (interp.tag, r.stdout.decode("utf-8", "replace")[-6000:]))
        built = out_dir(out) / "cargo-embed" / minor / "release" / "mixembed"
        dest = base / "mixembed"
        sha = sha256_file(built)
        if not dest.exists() or sha256_file(dest) != sha:
            _install_file(built, dest)
    _embed_cache[key] = (str(dest), sha)
    return _embed_cache[key]


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

def raise_core_limit():
    """Raise RLIMIT_CORE (inherited by the scenario processes)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    want = resource.RLIM_INFINITY
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (want, want))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_CORE)[0]


class Child(object):
    def __init__(self, popen, ready_r, block_w, workdir, manifest_path):
        self.popen = popen
        self.pid = popen.pid
        self.ready_r = ready_r
        self.block_w = block_w
        self.workdir = Path(workdir)
        self.manifest_path = Path(manifest_path)
        self._closed = False

    def stderr_tail(self, n=3000):
        p = self.workdir / "stderr"
        try:
            return p.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self):
        """SIGKILL the whole process group and reap. Idempotent."""
        if self._closed:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            pass
        try:
            self.popen.kill()
        except OSError:
            pass
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log("warning: pid %d did not die after SIGKILL" % self.pid)
        for fd in (self.ready_r, self.block_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._closed = True


def _child_env(sc, interp, ext, manifest_path, ready_fd, block_fd, build):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "RUST_BACKTRACE": "0",
        "MIXSTACK_EXT": str(ext),
        "MIXSTACK_MANIFEST": str(manifest_path),
        "MIXSTACK_READY_FD": str(ready_fd),
        "MIXSTACK_BLOCK_FD": str(block_fd),
        "MIXSTACK_PARENT_PID": str(os.getpid()),
        "MIXSTACK_SCENARIO": sc.name,
        "MIXSTACK_INTERP_TAG": interp.tag,
        "MIXSTACK_PYO3_VERSION": build.pyo3_version or "",
    }
    return env


# ---------------------------------------------------------------------------
# the test lane: targets chrooted in Debian unstable's root
# ---------------------------------------------------------------------------

# Runs "$@" chrooted in $root with cwd $cwd, in a mount namespace of its own
# (the bind mounts vanish with the process): /proc, /dev, /sys and /tmp of
# this machine, and each directory before "--" at its own path, so that the
# scenario scripts are found and manifests and cores land here. unshare, sh,
# chroot and env all exec: the process keeps the pid the harness started.
_LANE_SH = r"""set -e
root=$1; cwd=$2; shift 2
for d in proc dev sys tmp; do mount --rbind "/$d" "$root/$d"; done
while [ "$1" != "--" ]; do mkdir -p "$root$1"; mount --bind "$1" "$root$1"; shift; done
shift
exec chroot "$root" /usr/bin/env -C "$cwd" "$@"
"""


def lane_argv(root, argv, binds, cwd):
    """argv run inside the lane's root, with binds visible at their paths."""
    keep = []
    for b in sorted(set(os.path.realpath(str(b)) for b in binds)):
        if b == "/tmp" or b.startswith("/tmp/"):
            continue
        if any(b == k or b.startswith(k + "/") for k in keep):
            continue
        keep.append(b)
    return (["unshare", "--mount", "--propagation", "private", "sh", "-c", _LANE_SH,
             "lane", root, str(cwd)] + keep + ["--"] + [str(a) for a in argv])


def lane_ext(root, ext_src, sha):
    """The extension inside the lane's root, at a path named by its hash
    (never replaced): returns (path inside the root, path here). Cores of
    lane targets then name only files under the root (--sysroot), and live
    lane targets map files this machine can open by the path it sees."""
    inside = "/var/lib/mixstack-samples/%s/%s" % (sha[:16], os.path.basename(str(ext_src)))
    here = Path(root + inside)
    with file_lock(here.parent / ".lock"):
        if not here.exists():
            _install_file(ext_src, here)
    return inside, str(here)


def artefact_sysroot(artefact_dir):
    """The root an artefact's process ran in (lane artefacts), or None."""
    try:
        run = json.loads((Path(artefact_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return run.get("sysroot")


def lane_view_without_debug_files(root, out=None):
    """A sysroot that is the lane's root without its /usr/lib/debug (the
    -dbg packages): a tree of symlinks into the root. Analysed through it,
    a lane core looks like the core of a user who did not install -dbg
    packages: symbols from .dynsym only, as on Debian by default."""
    view = out_dir(out) / "lane-sysroot-nodebug"
    stamp = Path(root) / ".mixstack-lane"
    want = stamp.read_text() if stamp.exists() else ""
    mark = view / ".mixstack-lane"
    with file_lock(out_dir(out) / ".lane-view.lock"):
        if mark.exists() and mark.read_text() == want:
            return str(view)
        tmp = Path(str(view) + ".tmp")
        shutil.rmtree(str(tmp), ignore_errors=True)
        skip = {"usr", "usr/lib", "usr/lib/debug"}
        def link(rel):
            for e in sorted(os.listdir(os.path.join(root, rel))):
                r = os.path.join(rel, e) if rel else e
                if r in skip:
                    if r != "usr/lib/debug":
                        (tmp / r).mkdir(parents=True)
                        link(r)
                    continue
                os.symlink(os.path.join(root, r), str(tmp / r))
        tmp.mkdir(parents=True)
        link("")
        (tmp / ".mixstack-lane").write_text(want)
        shutil.rmtree(str(view), ignore_errors=True)
        os.replace(str(tmp), str(view))
    return str(view)


def analysis_options(artefact_dir, debug_files=True, out=None):
    """mixstack options to analyse an artefact's core here: --sysroot ROOT
    for artefacts made inside the lane's root, else none. debug_files=False:
    the root without its separate debug files (lane_view_without_debug_files)."""
    root = artefact_sysroot(artefact_dir)
    if not root:
        return []
    if not debug_files:
        root = lane_view_without_debug_files(root, out)
    return ["--sysroot", root]


def _spawn(sc, interp, workdir, ext, build):
    workdir = Path(workdir)
    manifest_path = workdir / "manifest.json"
    ready_r, ready_w = os.pipe()
    block_r, block_w = os.pipe()
    env = _child_env(sc, interp, ext, manifest_path, ready_w, block_r, build)
    env.update(interp.env)
    cmd = [interp.path] + _py_flags(interp.env) + [str(sc.path)]
    if sc.meta.get("runner") == "embed":  # the program embeds the interpreter
        cmd = [str(ext), str(sc.path)]
    if interp.root:
        cmd = lane_argv(interp.root, cmd, [REPO, Path(sc.path).parent, workdir], workdir)
    try:
        with open(str(workdir / "stdout"), "wb") as so, open(str(workdir / "stderr"), "wb") as se:
            p = subprocess.Popen(cmd, cwd=str(workdir), env=env, stdin=subprocess.DEVNULL,
                                 stdout=so, stderr=se, pass_fds=(ready_w, block_r),
                                 close_fds=True, start_new_session=True)
    except BaseException:
        for fd in (ready_r, ready_w, block_r, block_w):
            os.close(fd)
        raise
    os.close(ready_w)
    os.close(block_r)
    return Child(p, ready_r, block_w, workdir, manifest_path)


def _wait_ready(child, timeout=None):
    timeout = READY_TIMEOUT if timeout is None else timeout
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise HarnessError("scenario pid %d did not signal readiness within %.0fs\nstderr:\n%s"
                               % (child.pid, timeout, child.stderr_tail()))
        r, _, _ = select.select([child.ready_r], [], [], min(left, 0.5))
        if r:
            data = os.read(child.ready_r, 1)
            if data == b"R":
                return
            if data == b"":
                rc = child.popen.poll()
                if rc is None:
                    try:
                        rc = child.popen.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        rc = "still running"
                raise HarnessError("scenario exited before readiness (status %s)\nstderr:\n%s"
                                   % (rc, child.stderr_tail()))
        elif child.popen.poll() is not None:
            raise HarnessError("scenario exited before readiness (status %s)\nstderr:\n%s"
                               % (child.popen.returncode, child.stderr_tail()))


def _load_manifest(path):
    with open(str(path)) as f:
        return json.load(f)


def _thread_syscall(pid, tid):
    try:
        with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
            s = f.read().split()
    except OSError:
        return None
    if not s or s[0] == "running":
        return "running"
    try:
        return int(s[0])
    except ValueError:
        return None


def _settle(child, manifest, timeout=None):
    """Wait until every thread listed with blocked_in sits in that syscall
    (seen twice in a row, 20 ms apart)."""
    timeout = SETTLE_TIMEOUT if timeout is None else timeout
    table = SYSCALLS.get(platform.machine())
    if table is None:
        time.sleep(0.5)
        return
    want = {}
    for t in manifest.get("threads", []):
        b = t.get("blocked_in")
        if b:
            want[int(t["tid"])] = table[b]
    if not want:
        return
    deadline = time.time() + timeout
    good_rounds = 0
    while True:
        bad = {}
        for tid, nr in want.items():
            s = _thread_syscall(child.pid, tid)
            if s != nr:
                bad[tid] = s
        if not bad:
            good_rounds += 1
            if good_rounds >= 2:
                return
        else:
            good_rounds = 0
        if child.popen.poll() is not None:
            raise HarnessError("scenario died while settling\nstderr:\n%s" % child.stderr_tail())
        if time.time() > deadline:
            raise HarnessError("threads did not reach their blocking syscall within %.0fs: %s"
                               % (timeout, ", ".join("%d: want %s, is %s" % (t, want[t], s)
                                                     for t, s in sorted(bad.items()))))
        time.sleep(0.02)


def _gcore(pid, dest, interp=None):
    """gcore of pid into dest. Lane targets get the lane's gdb: gdb 13's
    gcore of a process on Debian unstable's glibc writes zeros for every
    thread stack but the main thread's."""
    dest = Path(dest)
    prefix = str(dest)
    cmd = ["gcore", "-o", prefix, str(pid)]
    if interp is not None and interp.root:
        # In the target's mount namespace and root, like a gcore run in
        # its container: the core names files as the target sees them
        # (relative to the root), and the artefact dir is bound there.
        cmd = ["nsenter", "-t", str(pid), "-m", "-r", "-w"] + cmd
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=GCORE_TIMEOUT)
    produced = Path("%s.%d" % (prefix, pid))
    if r.returncode != 0 or not produced.exists():
        raise HarnessError("gcore failed (rc %s): %s" % (r.returncode, r.stdout.decode(errors="replace")[-2000:]))
    os.replace(str(produced), str(dest))
    _dig_holes(dest)


def _dig_holes(path):
    """gcore writes every mapping in full, including glibc's 64 MiB PROT_NONE
    arena reservations and untouched thread stacks (a 64-thread core is
    ~1.3 GB of mostly zeros). Punch holes so it costs little disk; readers
    still see zeros."""
    if shutil.which("fallocate"):
        subprocess.run(["fallocate", "--dig-holes", str(path)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


# ---------------------------------------------------------------------------
# kernel cores
# ---------------------------------------------------------------------------

def _read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def core_setup_problem():
    """None if crash cores can be collected, else an explanation."""
    pattern = _read("/proc/sys/kernel/core_pattern")
    soft = raise_core_limit()
    if soft == 0:
        return ("RLIMIT_CORE hard limit is 0 and cannot be raised: run `ulimit -c unlimited` "
                "(as root, or raise the hard limit in limits.conf) before scripts/samples")
    if pattern.startswith("|"):
        if "systemd-coredump" in pattern:
            if not shutil.which("coredumpctl"):
                return ("kernel.core_pattern pipes to systemd-coredump but coredumpctl is not "
                        "installed (apt-get install systemd-coredump)")
            return None
        return ("kernel.core_pattern is %r: cores are piped to a handler this harness cannot "
                "read. Run `sysctl -w kernel.core_pattern=core` (cores land in the crashing "
                "process's cwd) or use systemd-coredump." % pattern)
    if not pattern:
        return "cannot read /proc/sys/kernel/core_pattern"
    return None


def _pattern_glob(pattern, pid, signum, cwd):
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%" and i + 1 < len(pattern):
            s = pattern[i + 1]
            if s == "p":
                out.append(str(pid))
            elif s == "%":
                out.append("%")
            elif s == "s":
                out.append(str(signum))
            else:
                out.append("*")
            i += 2
            continue
        out.append(glob.escape(c))
        i += 1
    g = "".join(out)
    if "%p" not in pattern and _read("/proc/sys/kernel/core_uses_pid", "0") == "1":
        g += "." + str(pid)
    if not g.startswith("/"):
        g = os.path.join(glob.escape(str(cwd)), g)
    return g


def collect_kernel_core(pid, signum, cwd, dest, started):
    """Move the kernel core of `pid` to `dest`; returns a description."""
    pattern = _read("/proc/sys/kernel/core_pattern")
    problem = core_setup_problem()
    if problem:
        raise CoreUnavailable(problem)
    dest = Path(dest)
    if pattern.startswith("|"):
        deadline = time.time() + 30
        last = ""
        while time.time() < deadline:
            r = subprocess.run(["coredumpctl", "--no-pager", "dump", str(pid), "-o", str(dest)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            if r.returncode == 0 and dest.exists() and dest.stat().st_size > 0:
                return "coredumpctl dump %d" % pid
            last = r.stdout.decode(errors="replace")
            time.sleep(0.5)
        raise CoreUnavailable("coredumpctl could not dump pid %d: %s (check Storage= in "
                              "/etc/systemd/coredump.conf and ProcessSizeMax)" % (pid, last[-800:]))
    g = _pattern_glob(pattern, pid, signum, cwd)
    cands = []
    for p in glob.glob(g):
        try:
            st = os.stat(p)
        except OSError:
            continue
        if st.st_mtime >= started - 2:
            cands.append((st.st_mtime, p))
    if not cands:
        raise CoreUnavailable(
            "no core file for pid %d (signal %d): looked for %s (kernel.core_pattern=%r, "
            "RLIMIT_CORE soft=%s). Enable cores with `ulimit -c unlimited` and "
            "`sysctl -w kernel.core_pattern=core` (or install systemd-coredump)."
            % (pid, signum, g, pattern, resource.getrlimit(resource.RLIMIT_CORE)[0]))
    src = max(cands)[1]
    if os.path.realpath(src) != os.path.realpath(str(dest)):
        shutil.move(src, str(dest))
    return "kernel core_pattern %r -> %s" % (pattern, src)


# ---------------------------------------------------------------------------
# produce
# ---------------------------------------------------------------------------

def _stamp(sc, interp, ext_sha):
    rp = os.path.realpath(host_path(interp))
    st = os.stat(rp)
    out = {
        "harness": HARNESS_VERSION,
        "scenario": sc.name,
        "driver_sha256": sha256_file(sc.path),
        "support_sha256": sha256_file(DRIVER_SUPPORT),
        "ext_sha256": ext_sha,
        "interp": {"tag": interp.tag, "path": interp.path, "realpath": rp,
                   "version": interp.version, "size": st.st_size, "mtime": int(st.st_mtime)},
    }
    if interp.root:
        out["interp"]["root"] = interp.root
        out["interp"]["env"] = dict(interp.env)
    return out


def artefact_dir(scenario, interp, out=None):
    return out_dir(out) / "artefacts" / interp.tag / scenario


def _ext_for(sc, build_info, interp=None, out=None):
    if sc.meta.get("runner") == "embed":
        return build_embed(find_interp(interp), out)
    if sc.meta.get("extension") == "stripped":
        return build_info.ext_stripped, build_info.ext_stripped_sha256
    return build_info.ext, build_info.ext_sha256


def is_cached(sc, interp, art, ext_sha):
    stamp = art / "stamp.json"
    if not (stamp.exists() and (art / "core").exists() and (art / "manifest.json").exists()):
        return False
    try:
        return json.loads(stamp.read_text()) == _stamp(sc, interp, ext_sha)
    except (OSError, ValueError):
        return False


def produce(scenario, interp, out=None, build_info=None, force=False):
    """Produce (or reuse) the artefact for scenario x interp; returns its dir."""
    sc = scenarios()[scenario] if not isinstance(scenario, Scenario) else scenario
    interp = find_interp(interp)
    if not applicable(sc, interp):
        raise NotApplicable("%s does not run on %s" % (sc.name, interp.tag))
    build_info = build_info or build(out)
    ext_src, ext_sha = _ext_for(sc, build_info, interp, out)
    art = artefact_dir(sc.name, interp, out)
    with file_lock(art.parent / (".%s.lock" % sc.name)):
        if not force and is_cached(sc, interp, art, ext_sha):
            return art
        if art.exists():
            shutil.rmtree(str(art))
        art.mkdir(parents=True)
        ext = art / "ext" / os.path.basename(ext_src)
        ext.parent.mkdir()
        child_ext = ext
        if interp.root:
            child_ext, ext_src = lane_ext(interp.root, ext_src, ext_sha)
        try:
            os.link(ext_src, str(ext))
        except OSError:
            shutil.copy2(ext_src, str(ext))
        run = _run_to_artefact(sc, interp, art, child_ext, build_info)
        _atomic_write_json(art / "run.json", run)
        _atomic_write_json(art / "stamp.json", _stamp(sc, interp, ext_sha))
        return art


def _run_to_artefact(sc, interp, art, ext, build_info):
    kind = sc.meta["kind"]
    if kind == "crash":
        problem = core_setup_problem()
        if problem:
            raise CoreUnavailable(problem)
    t0 = time.time()
    child = _spawn(sc, interp, art, ext, build_info)
    info = {"cmd": [interp.path] + _py_flags(interp.env) + [str(sc.path)], "pid": child.pid,
            "kind": kind}
    if interp.root:
        info["sysroot"] = interp.root
        info["env"] = dict(interp.env)
    try:
        if kind == "snapshot":
            _wait_ready(child)
            manifest = _load_manifest(child.manifest_path)
            _settle(child, manifest)
            _gcore(child.pid, art / "core", interp)
            info["core_source"] = "gcore (lane gdb)" if interp.root else "gcore"
        else:
            try:
                rc = child.popen.wait(timeout=READY_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise HarnessError("crash scenario pid %d did not crash within %.0fs\nstderr:\n%s"
                                   % (child.pid, READY_TIMEOUT, child.stderr_tail()))
            if not child.manifest_path.exists():
                raise HarnessError("crash scenario exited (status %s) without a manifest\nstderr:\n%s"
                                   % (rc, child.stderr_tail()))
            manifest = _load_manifest(child.manifest_path)
            want = (manifest.get("signal") or {}).get("number")
            if rc >= 0 or (want and -rc != want):
                raise HarnessError("crash scenario exited with status %s, expected signal %s\nstderr:\n%s"
                                   % (rc, want, child.stderr_tail()))
            info["returncode"] = rc
            info["core_source"] = collect_kernel_core(child.pid, -rc, art, art / "core", t0)
    finally:
        child.kill()
    info["seconds"] = round(time.time() - t0, 3)
    info["core_size"] = (art / "core").stat().st_size
    return info


# ---------------------------------------------------------------------------
# live
# ---------------------------------------------------------------------------

class Live(tuple):
    """(pid, manifest) plus .manifest_path, .workdir, .child."""

    def __new__(cls, pid, manifest, manifest_path, workdir, child):
        self = tuple.__new__(cls, (pid, manifest))
        self.manifest_path = manifest_path
        self.workdir = workdir
        self.child = child
        return self

    @property
    def pid(self):
        return self[0]

    @property
    def manifest(self):
        return self[1]


@contextlib.contextmanager
def live(scenario, interp, out=None, build_info=None, keep=False):
    """Start a snapshot scenario, wait until it is blocked, yield
    (pid, manifest). The process group is killed on exit, whatever happens."""
    sc = scenarios()[scenario] if not isinstance(scenario, Scenario) else scenario
    interp = find_interp(interp)
    if sc.meta["kind"] != "snapshot":
        raise HarnessError("%s is a crash scenario; live mode needs a snapshot scenario (%s)"
                           % (sc.name, ", ".join(n for n, s in scenarios().items()
                                                 if s.meta["kind"] == "snapshot")))
    if not applicable(sc, interp):
        raise NotApplicable("%s does not run on %s" % (sc.name, interp.tag))
    build_info = build_info or build(out)
    ext, ext_sha = _ext_for(sc, build_info, interp, out)
    if interp.root:
        ext = lane_ext(interp.root, ext, ext_sha)[0]
    base = out_dir(out) / "live" / interp.tag
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=sc.name + "-", dir=str(base)))
    child = None
    try:
        child = _spawn(sc, interp, workdir, ext, build_info)
        _wait_ready(child)
        manifest = _load_manifest(child.manifest_path)
        _settle(child, manifest)
        yield Live(child.pid, manifest, str(child.manifest_path), str(workdir), child)
    finally:
        if child is not None:
            child.kill()
        if not keep:
            shutil.rmtree(str(workdir), ignore_errors=True)


# ---------------------------------------------------------------------------
# matrix and index
# ---------------------------------------------------------------------------

Result = collections.namedtuple("Result", "interp_tag scenario dir status seconds error")
Artefact = collections.namedtuple("Artefact", "interp_tag scenario dir manifest")


def run_matrix(interps=None, scenario_names=None, out=None, jobs=2, force=False, verbose=True):
    """Produce every applicable scenario x interpreter; returns [Result]."""
    raise_core_limit()
    build_info = build(out)
    its = [find_interp(i) for i in interps] if interps else all_interpreters()
    all_sc = scenarios()
    names = list(scenario_names) if scenario_names else list(all_sc)
    for n in names:
        if n not in all_sc:
            raise HarnessError("unknown scenario %r (known: %s)" % (n, ", ".join(all_sc)))
    tasks = [(all_sc[n], it) for it in its for n in names if applicable(all_sc[n], it)]

    def one(task):
        sc, it = task
        art = artefact_dir(sc.name, it, out)
        try:
            ext_sha = _ext_for(sc, build_info, it, out)[1]
        except HarnessError as e:
            return Result(it.tag, sc.name, str(art), "error", 0.0, str(e))
        t0 = time.time()
        if not force and is_cached(sc, it, art, ext_sha):
            return Result(it.tag, sc.name, str(art), "cached", 0.0, None)
        try:
            produce(sc, it, out=out, build_info=build_info, force=force)
            return Result(it.tag, sc.name, str(art), "ok", round(time.time() - t0, 2), None)
        except HarnessError as e:
            return Result(it.tag, sc.name, str(art), "error", round(time.time() - t0, 2), str(e))
        except Exception as e:  # keep the matrix going; report it
            return Result(it.tag, sc.name, str(art), "error", round(time.time() - t0, 2),
                          "%s: %s" % (type(e).__name__, e))

    results = []
    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as ex:
        for r in ex.map(one, tasks):
            results.append(r)
            if verbose:
                log("%-7s %-28s %-18s %5.1fs%s" % (r.status, r.interp_tag, r.scenario, r.seconds,
                                                  ("\n        " + r.error.replace("\n", "\n        "))
                                                  if r.error else ""))
    return results


def index(out=None, interps=None, scenario_names=None):
    """[Artefact] for every complete artefact under <out>/artefacts."""
    root = out_dir(out) / "artefacts"
    tags = set(i.tag for i in interps) if interps else None
    res = []
    if not root.exists():
        return res
    for tagdir in sorted(root.iterdir()):
        if not tagdir.is_dir() or (tags is not None and tagdir.name not in tags):
            continue
        for d in sorted(tagdir.iterdir()):
            if not d.is_dir() or (scenario_names and d.name not in scenario_names):
                continue
            if not ((d / "stamp.json").exists() and (d / "core").exists()
                    and (d / "manifest.json").exists()):
                continue
            res.append(Artefact(tagdir.name, d.name, str(d), _load_manifest(d / "manifest.json")))
    return res


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = _read("/proc/%d/stat" % pid, "")
    if not st:
        return False
    state = st.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def processes_in_group(pgid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _read("/proc/%s/stat" % d, "")
        if not st:
            continue
        fields = st.rsplit(")", 1)[-1].split()
        try:
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(d))
        except (IndexError, ValueError):
            pass
    return out
