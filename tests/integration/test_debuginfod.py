"""Debug info fetched by build-id from a debuginfod server.

A local `debuginfod` (Debian's package) serves the split debug info
(objcopy --only-keep-debug) of the crash-sample extension; the `stripped`
sample crashed in the stripped build of that same extension (same
build-id). The crash is known from the sample of the same bug in the
unstripped build (segfault-in-rust's manifest: the Rust function it crashed
in). Its symbols and lines appear only when DEBUGINFOD_URLS names the
server; without it, or with --no-debuginfod, the server is not asked.
"""
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from clitool import BUILD, MIXSTACK, report_json, run_mixstack
from manifest_checks import thread_by_tid

DEBUGINFOD = shutil.which("debuginfod")
INTERP = "cpython-3.11.2-debian"
EXT = "mixsample.abi3.so"

pytestmark = [
    pytest.mark.skipif(DEBUGINFOD is None, reason="debuginfod not installed "
                       "(apt-get install debuginfod)"),
    pytest.mark.skipif(not MIXSTACK.exists(), reason=f"{MIXSTACK} not built"),
]


def build_id(path):
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


@pytest.fixture(scope="module")
def stripped(samples):
    art = samples.get(INTERP, "stripped")
    bug = samples.get(INTERP, "segfault-in-rust")
    if art is None or bug is None:
        pytest.skip(f"no {INTERP} stripped/segfault-in-rust samples")
    assert art.manifest["extension"]["stripped"]
    return art, bug.manifest["expect_crash_frame"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, samples_build, stripped):
    """(url, log path): a debuginfod serving the extension's debug file."""
    art, _ = stripped
    ext = Path(art.manifest["extension"]["path"])
    bid = build_id(samples_build.ext)
    assert build_id(ext) == bid  # the core's extension is that build
    base = tmp_path_factory.mktemp("debuginfod")
    (base / "debug").mkdir()
    subprocess.run(["objcopy", "--only-keep-debug", samples_build.ext,
                    str(base / "debug" / "mixsample.debug")], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = base / "log"
    proc = subprocess.Popen([DEBUGINFOD, "-v", "-p", str(port), "-d",
                             str(base / "db.sqlite"), "-F", str(base / "debug")],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:  # until the file is indexed
            try:
                with urllib.request.urlopen(f"{url}/buildid/{bid}/debuginfo",
                                            timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.time() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def requests(log):
    return log.read_text().count("GET /buildid/")


def env(tmp_path, url=None):
    e = {"DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")}
    if url:
        e["DEBUGINFOD_URLS"] = url
    return e


def crashed_ext_frames(art, doc):
    t = thread_by_tid(doc, art.manifest["crashed_tid"])
    return [f for f in t["frames"] if f["kind"] == "native"
            and (f["module"] or "").endswith(EXT)]


def run(art, tmp_path, url=None, *options):
    # No servers: an empty DEBUGINFOD_URLS is none (as unset).
    e = dict(env(tmp_path, url), DEBUGINFOD_URLS=url or "")
    code, doc = report_json("core", Path(art.dir) / "core", *options, env=e)
    return doc


def assert_no_symbols(art, doc):
    frames = crashed_ext_frames(art, doc)
    assert frames
    assert all(not f["file"] and not f["line"] for f in frames), frames
    assert all("mixsample::" not in (f["function"] or "") for f in frames), frames


def test_symbols_and_lines_from_server(stripped, server, tmp_path):
    art, crash_function = stripped
    url, log = server
    doc = run(art, tmp_path, url)
    frames = crashed_ext_frames(art, doc)
    top = frames[0]
    assert (top["function"] or "").endswith(crash_function), frames
    assert top["language"] == "rust"
    assert top["file"].endswith("lib.rs") and top["line"] > 0, top
    # Fetched into the client's cache, by build-id.
    bid = build_id(art.manifest["extension"]["path"])
    assert (tmp_path / "cache" / bid / "debuginfo").exists()


def test_without_server_nothing_is_fetched(stripped, server, tmp_path):
    art, _ = stripped
    url, log = server
    before = requests(log)
    assert_no_symbols(art, run(art, tmp_path))
    assert requests(log) == before
    assert not (tmp_path / "cache").exists()


def test_no_debuginfod_option(stripped, server, tmp_path):
    art, _ = stripped
    url, log = server
    before = requests(log)
    assert_no_symbols(art, run(art, tmp_path, url, "--no-debuginfod"))
    assert requests(log) == before
    assert not (tmp_path / "cache").exists()


def test_one_progress_line_per_download_on_a_terminal(stripped, server, tmp_path):
    """stderr a terminal: the download is shown on one line, rewritten in
    place; a second run finds the file in the cache and shows nothing."""
    art, _ = stripped
    url, _ = server

    def stderr_on_pty():
        master, slave = pty.openpty()
        full = dict(os.environ, **env(tmp_path, url))
        proc = subprocess.Popen([str(MIXSTACK), "core", str(Path(art.dir) / "core")],
                                stdout=subprocess.DEVNULL, stderr=slave, env=full)
        os.close(slave)
        out = b""
        deadline = time.time() + 120
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=60)
        os.close(master)
        return out.decode(errors="replace")

    first = stderr_on_pty()
    assert first.count("downloaded debug info of " + EXT + " (") == 1, first
    # Every update of that download rewrote the same line (\r, no \n).
    start = first.index("downloading debug info of " + EXT)
    end = first.index("downloaded debug info of " + EXT)
    assert "\n" not in first[start:end], first
    assert url in first[end:].split("\n")[0]
    assert "downloaded" not in stderr_on_pty()


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed")
@pytest.mark.parametrize("enabled", ["on", "off"])
def test_gdb_plugin_follows_gdb_setting(stripped, server, tmp_path, enabled):
    """In gdb, the library fetches only when gdb does (`set debuginfod
    enabled`): with it on, the plugin's stack has the extension's symbols
    and lines; off, the server is not asked."""
    from test_debuggers import gdb_argv, sanitizer_env
    art, crash_function = stripped
    url, log = server
    before = requests(log)
    argv = gdb_argv(["mixstack bt"], ["/usr/bin/python3.11", Path(art.dir) / "core"],
                    plugin=BUILD / "gdb-plugin" / "mixstack-gdb.py",
                    pre=[f"set debuginfod enabled {enabled}"])
    full = dict(os.environ, **env(tmp_path, url), **sanitizer_env())
    full.pop("MIXSTACK_LIB", None)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120, env=full, stdin=subprocess.DEVNULL)
    # mixstack's frame #0 (gdb's own, printed on loading the core, says
    # "in ... from").
    frame = re.search(r"^ *#0 +0x[0-9a-f]+ (?!in ).*\(" + re.escape(EXT)
                      + r"(\+0x[0-9a-f]+)?\).*$",
                      proc.stdout, re.M)
    assert frame, proc.stdout
    if enabled == "on":
        assert crash_function in frame.group(0) and "src/lib.rs:" in frame.group(0), proc.stdout
    else:
        assert "mixsample::" not in frame.group(0), proc.stdout
        assert requests(log) == before


def test_triage_fetches_unless_told_not_to(stripped, server, tmp_path):
    """mixstack triage: the crashing stack has the Rust function from the
    server's debug info; with --no-debuginfod the server is not asked."""
    art, crash_function = stripped
    url, log = server
    core = Path(art.dir) / "core"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    proc = run_mixstack("triage", core, "--json", env=env(tmp_path / "a", url))
    assert proc.returncode == 0, proc.stderr
    assert crash_function in proc.stdout
    before = requests(log)
    proc = run_mixstack("triage", core, "--json", "--no-debuginfod",
                        env=env(tmp_path / "b", url))
    assert proc.returncode == 0, proc.stderr
    assert "mixsample::" not in proc.stdout
    assert requests(log) == before
