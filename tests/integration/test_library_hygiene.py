"""libmixstack is loaded into gdb and lldb: it must export its public API
and nothing else, and must not touch process-wide state (signal handlers).
CPython's own gdb extension (libpython.py, python3.X-gdb.py from the
interpreter's installation) and mixstack must work in one gdb.

Facts come from the header (what it declares MS_PUBLIC), from nm, and from
the crash samples' manifests.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clitool import BUILD, REPO, report_json

HEADER = REPO / "core" / "include" / "mixstack" / "mixstack.h"
LIBRARY = BUILD / "libmixstack.so"
NM = shutil.which("nm")
CC = shutil.which("cc") or shutil.which("gcc")
GDB = shutil.which("gdb")
PLUGIN = BUILD / "gdb-plugin" / "mixstack-gdb.py"

# Process-wide state a library inside a debugger must leave alone.
FORBIDDEN_IMPORTS = {"sigaction", "signal", "sigprocmask", "pthread_sigmask",
                     "raise", "putenv", "unsetenv", "clearenv", "setenv"}
# None left (debuginfod: core/unwind/debuginfo.c reads DEBUGINFOD_URLS
# through libdw, never sets it).
PENDING_IMPORTS = set()


def _declarations(text):
    """Top-level declarations of the header: (text, is_public)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
    decls, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
        elif c == ";" and depth == 0:
            decls.append(" ".join(text[start:i].split()))
            start = i + 1
    return decls


def header_api():
    """(public names, functions declared without MS_PUBLIC)."""
    public, unmarked = set(), []
    text = HEADER.read_text()
    text = text.replace('extern "C" {', "").replace("#ifdef __cplusplus\n}", "")
    for d in _declarations(text):
        if d.startswith(("typedef", "struct", "enum", "union")) and "(" not in d.split("{")[0]:
            continue
        if d.startswith("typedef"):
            continue
        m = re.search(r"\b(ms_\w+)\s*\(", d) or re.search(r"\b(ms_\w+)\s*$", d)
        if not m:
            continue
        if d.startswith("MS_PUBLIC "):
            public.add(m.group(1))
        else:
            unmarked.append(m.group(1))
    return public, unmarked


def nm(*flags):
    out = subprocess.run([NM, "-D", *flags, str(LIBRARY)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


pytestmark = pytest.mark.skipif(not LIBRARY.exists(), reason=f"{LIBRARY} not built")
needs_nm = pytest.mark.skipif(NM is None, reason="nm not installed")


@needs_nm
def test_exports_only_the_public_header():
    public, unmarked = header_api()
    assert not unmarked, ("declared in mixstack.h without MS_PUBLIC (not exported): %s"
                          % unmarked)
    assert {"ms_report_create", "ms_target_open_core", "ms_error_no_memory"} <= public
    # An AddressSanitizer build adds an ODR indicator for each exported
    # variable (__odr_asan.ms_error_no_memory): instrumentation, not API.
    exported = {s for s in nm("--defined-only") if not s.startswith("__odr_asan.")}
    assert exported == public, (
        "exported but not in the header: %s; in the header but not exported: %s"
        % (sorted(exported - public), sorted(public - exported)))


@needs_nm
def test_no_libiberty_and_no_process_wide_state():
    exported = nm("--defined-only")
    for name in ("xmalloc", "xstrdup", "cplus_demangle", "rust_demangle"):
        assert name not in exported
    imported = nm("--undefined-only")
    bad = (imported & FORBIDDEN_IMPORTS) - PENDING_IMPORTS
    assert not bad, "libmixstack calls %s" % sorted(bad)


# The public API: opaque report model, accessors, version check --------------

def _asan_env():
    """Run a program linked with an AddressSanitizer build of the library
    (scripts/test's second pass) without the runtime preloaded."""
    env = dict(os.environ)
    ldd = subprocess.run(["ldd", str(LIBRARY)], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        env["ASAN_OPTIONS"] = ":".join(x for x in (
            env.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0", "detect_leaks=0") if x)
    return env


def test_abi_version_is_checked_by_the_frontends():
    """The header's MS_ABI_VERSION is what the library reports and what the
    gdb binding (which mirrors no structure of the library) checks."""
    m = re.search(r"^#define MS_ABI_VERSION (\d+)$", HEADER.read_text(), re.M)
    assert m
    binding = (REPO / "gdb-plugin" / "mixstack_gdb" / "lib.py").read_text()
    assert re.search(r"^MS_ABI_VERSION = %s$" % m.group(1), binding, re.M)
    assert "ctypes.Structure" not in binding and "_padding" not in binding
    lldb = (REPO / "lldb-plugin" / "mixstack_lldb.cpp").read_text()
    assert "ms_abi_version() != MS_ABI_VERSION" in lldb
    public, _ = header_api()
    assert "ms_abi_version" in public


def test_gdb_binding_refuses_another_abi(tmp_path):
    """A libmixstack of another binary interface is refused at load by the
    gdb binding, with a message saying so (a stand-in library whose
    ms_abi_version() is not MS_ABI_VERSION)."""
    if CC is None:
        pytest.skip("no C compiler")
    src = tmp_path / "other.c"
    src.write_text("unsigned ms_abi_version(void) { return 999; }\n"
                   "const char *ms_version(void) { return \"9.9.9\"; }\n")
    other = tmp_path / "libother.so"
    subprocess.run([CC, "-shared", "-fPIC", "-o", str(other), str(src)], check=True,
                   capture_output=True, timeout=60)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from mixstack_gdb import lib\n"
             "try:\n    lib.Library(lib.ctypes.CDLL(sys.argv[2]), sys.argv[2])\n"
             "except lib.LoadError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", probe, str(REPO / "gdb-plugin"), str(other)],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("refused:") and "binary interface 999" in out.stdout, (
        out.stdout, out.stderr)


# Structures the public header still defines, with the reason given there:
# the library fills them and the caller only reads them, so they may grow
# at their end.
PUBLIC_STRUCTS = {"ms_error", "ms_download"}


def test_report_model_is_opaque():
    """The report model, the triage and the options are declared, not
    defined, by the public header: users read them through accessors and
    set options by name."""
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    defined = set(re.findall(r"^struct (ms_\w+) \{", text, re.M))
    assert defined == PUBLIC_STRUCTS, sorted(defined)
    declared = set(re.findall(r"^struct (ms_\w+);", text, re.M))
    assert {"ms_report", "ms_thread_report", "ms_frame", "ms_triage", "ms_target",
            "ms_options", "ms_frame_map", "ms_target_options", "ms_report_options",
            "ms_print_options", "ms_triage_options", "ms_triage_run"} <= declared, sorted(
                declared)


@pytest.fixture(scope="module")
def walk_report(tmp_path_factory):
    """tests/integration/api/walk_report.c, a user of the public header
    only, built against the library."""
    if CC is None:
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("api") / "walk_report"
    subprocess.run([CC, "-std=c11", "-Wall", "-Werror", "-I", str(REPO / "core" / "include"),
                    "-o", str(exe), str(Path(__file__).parent / "api" / "walk_report.c"),
                    "-L", str(BUILD), "-Wl,-rpath," + str(BUILD), "-lmixstack"],
                   check=True, capture_output=True, timeout=120)
    return exe


def _walk(exe, core):
    out = subprocess.run([str(exe), str(core)], capture_output=True, text=True,
                         errors="replace", timeout=180, env=_asan_env())
    assert out.returncode == 0, out.stderr
    report, threads, warnings, triage = None, [], [], None
    for line in out.stdout.splitlines():
        tag, *f = line.split("\t")
        assert tag != "X", line
        if tag == "R":
            report = {"pid": int(f[0]), "signal": int(f[1]), "crashed_tid": int(f[2]),
                      "executable": f[3], "python": f[4]}
        elif tag == "T":
            threads.append({"tid": int(f[0]), "name": f[1], "crashed": f[2] == "1",
                            "python": f[3] == "1", "gil": f[4], "n": int(f[5]),
                            "frames": []})
        elif tag == "F":
            threads[-1]["frames"].append({
                "kind": f[0], "language": f[1], "pc": int(f[2], 16), "inlined": f[3] == "1",
                "function": f[4], "module": f[5], "file": f[6], "line": int(f[7]),
                "category": f[8]})
        elif tag == "W":
            warnings.append(f[1])
        elif tag == "G":
            triage = dict(zip(("kind", "signature", "signature_id", "reason"), f))
        elif tag == "H":
            triage["short"] = f[0]
    return report, threads, warnings, triage


def _dash(v):
    return "-" if v is None else v


@pytest.mark.parametrize("scenario", ["abort-in-callback", "gil-hog"])
def test_report_accessors(samples, walk_report, scenario):
    """Read through the accessors, a sample's report has the threads, Python
    stacks and GIL states the sample recorded, and is the model the JSON
    document prints."""
    arts = [a for a in samples.for_scenario(scenario)
            if a.manifest["interpreter"].get("debug_info")
            and not a.manifest["interpreter"].get("jit")
            and (Path(a.dir) / "core").exists()]
    if not arts:
        pytest.skip(f"no {scenario} core with debug info")
    a = sorted(arts, key=lambda a: a.manifest["interpreter"]["hexversion"])[-1]
    m, core = a.manifest, Path(a.dir) / "core"
    report, threads, warnings, triage = _walk(walk_report, core)
    assert report["pid"] == m["pid"]
    assert report["python"] == m["interpreter"]["version"]
    assert report["signal"] == ((m.get("signal") or {}).get("number") or 0)
    if m["kind"] == "crash":
        assert report["crashed_tid"] == m["crashed_tid"]
        assert threads[0]["tid"] == m["crashed_tid"] and threads[0]["crashed"]
    assert {t["tid"] for t in threads} == {t["tid"] for t in m["threads"]}
    by_tid = {t["tid"]: t for t in threads}
    for mt in m["threads"]:
        t = by_tid[mt["tid"]]
        assert t["n"] == len(t["frames"])
        # A core has the process's name (NT_PRPSINFO), not its threads'.
        assert t["name"] == mt["name"] if mt["tid"] == m["pid"] else t["name"] in (
            mt["name"], "-")
        py = [f["function"] for f in t["frames"] if f["kind"] == "python"]
        assert py == [f["function"] for f in mt.get("python_stack") or ()], (mt["name"], py)
        native = [f["function"] for f in t["frames"] if f["kind"] == "native"]
        for name in () if m["extension"]["stripped"] else mt.get("native_expect") or ():
            assert any(name in fn for fn in native), (name, native)
        if mt.get("holds_gil"):
            assert t["gil"] == "held"
        if mt.get("waits_gil"):
            assert t["gil"] == "waiting"
    # The triage: what `mixstack triage` finds.
    if m["kind"] == "crash":
        assert triage["kind"] in ("panic", "abort", m["signal"]["name"])
    else:
        assert triage["kind"] in ("snapshot", "deadlock")
    assert triage["signature"].startswith(triage["kind"] + " | ")
    assert re.fullmatch(r"[0-9a-f]{16}", triage["signature_id"])
    # Triage options set by name: a signature of two frames, the start of
    # the default one of five.
    short = triage.pop("short")
    assert len(short.split(" | ")) <= 3 < len(triage["signature"].split(" | "))
    assert triage["signature"].startswith(short + " | ")
    _, tdoc = report_json("triage", core)
    assert triage == {k: tdoc["results"][0][k] for k in triage}
    # The same model as the JSON document.
    _, doc = report_json("core", core)
    assert report["executable"] == _dash(doc["target"]["executable"])
    assert warnings == doc["warnings"]
    assert [t["tid"] for t in threads] == [t["tid"] for t in doc["threads"]]
    for t, jt in zip(threads, doc["threads"]):
        assert (t["name"], t["crashed"], t["python"], t["gil"]) == (
            _dash(jt["name"]), jt["crashed"], jt["python"], jt["gil"])
        assert len(t["frames"]) == len(jt["frames"])
        for f, jf in zip(t["frames"], jt["frames"]):
            assert f["kind"] == jf["kind"]
            assert f["function"] == _dash(jf.get("function"))
            assert f["file"] == _dash(jf.get("file"))
            assert f["line"] == (jf.get("line") or 0)
            assert f["pc"] == int(jf["pc"], 16)
            assert (f["module"], f["inlined"], f["language"], f["category"]) == (
                _dash(jf["module"]), jf["inlined"], jf["language"], _dash(jf["category"]))


# libpython.py and mixstack in one gdb ---------------------------------------

def _gdb_env():
    """An AddressSanitizer build of the library (scripts/test's second pass)
    brings its runtime into gdb, which cannot be started with it preloaded;
    gdb's own leaks are not the library's."""
    env = dict(os.environ)
    env.pop("MIXSTACK_LIB", None)
    ldd = subprocess.run(["ldd", str(LIBRARY)], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        env["ASAN_OPTIONS"] = ":".join(x for x in (
            env.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0", "detect_leaks=0") if x)
    return env


def _libpython_for(interp_path):
    """CPython's gdb extension installed with this interpreter (pyenv and
    `make install` put python3.X-gdb.py next to the binary; Debian's -dbg
    packages under gdb's auto-load directory)."""
    exe = Path(interp_path)
    name = exe.name
    for cand in (exe.parent / f"{name}-gdb.py",
                 Path("/usr/share/gdb/auto-load") / str(exe).lstrip("/") / ".." / f"{name}-gdb.py",
                 Path("/usr/share/gdb/auto-load/usr/bin") / f"{name}-gdb.py"):
        cand = Path(str(cand))
        if cand.is_file():
            return cand.resolve()
    return None


@pytest.mark.skipif(GDB is None, reason="gdb not installed")
@pytest.mark.skipif(not PLUGIN.exists(), reason="gdb plugin not built")
def test_libpython_and_mixstack_in_one_gdb(samples):
    """py-bt (CPython's) and mixstack bt (ours) in one gdb, both loaded in
    either order, on a core whose Python stack the sample recorded."""
    arts = [a for a in samples.for_scenario("abort-in-callback")
            if a.manifest["interpreter"].get("debug_info")
            and _libpython_for(a.manifest["interpreter"]["path"])]
    if not arts:
        pytest.skip("no sample interpreter with debug info and its python3.X-gdb.py")
    a = sorted(arts, key=lambda a: a.manifest["interpreter"]["hexversion"])[-1]
    exe = a.manifest["interpreter"]["path"]
    libpython = _libpython_for(exe)
    expected = [f["function"] for t in a.manifest["threads"]
                for f in t.get("python_stack") or ()]
    assert expected
    for order in ((libpython, PLUGIN), (PLUGIN, libpython)):
        argv = [GDB, "-nx", "-batch", "-iex", "set auto-load python-scripts off",
                "-iex", "set debuginfod enabled off", "-iex", "set pagination off"]
        for script in order:
            argv += ["-ex", f"source {script}"]
        argv += ["-ex", "echo @@PYBT\\n", "-ex", "py-bt", "-ex", "echo @@MSBT\\n",
                 "-ex", "mixstack bt", "-ex", "echo @@BT\\n", "-ex", "bt",
                 "-ex", "echo @@END\\n", exe, str(Path(a.dir) / "core")]
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace", timeout=180,
                             stdin=subprocess.DEVNULL, env=_gdb_env()).stdout
        m = re.search(r"^@@PYBT\n(.*)^@@MSBT\n(.*)^@@BT\n(.*)^@@END", out, re.S | re.M)
        assert m, out[-3000:]
        pybt, msbt, bt = m.groups()
        for fn in expected:
            # libpython's py-bt: 'File "...", line N, in FUNCTION'
            assert re.search(r", in %s(?!\w)" % re.escape(fn), pybt), (order, pybt)
            assert re.search(r"\[python\]\s+%s(?!\w)" % re.escape(fn), msbt), (order, msbt)
            # gdb's own bt through mixstack's frame filter.
            assert f"{fn} [python]" in bt, (order, bt)
        for bad in ("Python Exception <", "Error occurred in Python", "mixstack: "):
            assert bad not in out, (order, out)
