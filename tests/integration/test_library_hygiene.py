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
from pathlib import Path

import pytest

from clitool import BUILD, REPO

HEADER = REPO / "core" / "include" / "mixstack" / "mixstack.h"
LIBRARY = BUILD / "libmixstack.so"
NM = shutil.which("nm")
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
