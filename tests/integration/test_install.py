"""Relocatable installs: `cmake --install` into a temporary prefix, the
prefix moved elsewhere, then the CLI, the gdb plugin and the lldb plugin run
from the new place over a crash sample's core.

Nothing points them at the build tree (no MIXSTACK_LIB, no
LD_LIBRARY_PATH): each finds libmixstack relative to itself. Facts come from
the sample's manifest (its Python stacks, recorded by the sample itself).
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clitool import BUILD, run_mixstack
from manifest_checks import check_python_stacks, check_signal_and_crashing_thread
from test_debuggers import gdb_argv, sanitizer_env

LLDB = shutil.which(os.environ.get("MIXSTACK_LLDB", "lldb-19"))
CMAKE = shutil.which("cmake")

pytestmark = pytest.mark.skipif(
    CMAKE is None or not (BUILD / "cmake_install.cmake").exists(),
    reason=f"no configured CMake build at {BUILD}")


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("MIXSTACK_LIB", "LD_LIBRARY_PATH", "DEBUGINFOD_URLS")}
    env.update(sanitizer_env())
    return env


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """The install tree, installed at one prefix and moved to another (the
    first no longer exists)."""
    base = tmp_path_factory.mktemp("install")
    first, second = base / "staging" / "usr", base / "moved" / "opt"
    subprocess.run([CMAKE, "--install", str(BUILD), "--prefix", str(first)],
                   check=True, capture_output=True, timeout=120)
    second.parent.mkdir(parents=True)
    first.rename(second)
    shutil.rmtree(base / "staging")
    return second


@pytest.fixture(scope="module")
def sample(samples):
    for a in samples.for_scenario("segfault-in-rust"):
        if not a.manifest["interpreter"]["stripped"]:
            return a
    pytest.skip("no segfault-in-rust sample of an unstripped interpreter")


def json_doc(output):
    """The JSON document in a debugger's output (other lines around it)."""
    start = output.index("\n{") + 1 if not output.startswith("{") else 0
    end = output.rindex("\n}") + 2
    return json.loads(output[start:end])


def test_moved_cli(moved, sample):
    cli = moved / "bin" / "mixstack"
    proc = subprocess.run([str(cli), "core", str(Path(sample.dir) / "core"), "--json"],
                          capture_output=True, text=True, timeout=120, env=clean_env())
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    check_signal_and_crashing_thread(sample.manifest, doc)
    assert check_python_stacks(sample.manifest, doc) > 0


def setup_line(moved, *args):
    """What the moved CLI's `debugger-setup` prints."""
    proc = subprocess.run([str(moved / "bin" / "mixstack"), "debugger-setup", *args],
                          capture_output=True, text=True, timeout=60, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_moved_gdb_plugin(moved, sample):
    if shutil.which("gdb") is None:
        pytest.skip("gdb not installed")
    plugin = moved / "share" / "mixstack" / "gdb" / "mixstack-gdb.py"
    assert setup_line(moved, "gdb") == f"source {plugin}"
    m = sample.manifest
    argv = gdb_argv(["mixstack report --json"],
                    [m["interpreter"]["realpath"], str(Path(sample.dir) / "core")],
                    plugin=plugin)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120, env=clean_env(),
                          stdin=subprocess.DEVNULL)
    assert "cannot load" not in proc.stdout, proc.stdout
    doc = json_doc(proc.stdout)
    assert check_python_stacks(m, doc) > 0


def test_moved_lldb_plugin(moved, sample):
    plugin = moved / "lib" / "mixstack" / "libmixstack-lldb.so"
    if not plugin.exists():
        pytest.skip("the lldb plugin is not part of this build")
    if LLDB is None:
        pytest.skip("lldb-19 not installed")
    assert setup_line(moved, "lldb", "--lldb", LLDB) == f"plugin load {plugin}"
    m = sample.manifest
    argv = [LLDB, "--batch", "--no-lldbinit", "--core", str(Path(sample.dir) / "core"),
            m["interpreter"]["realpath"], "-o", f"plugin load {plugin}",
            "-o", "mixstack report --json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env=clean_env(), stdin=subprocess.DEVNULL)
    assert "error" not in proc.stderr.lower(), proc.stderr
    doc = json_doc(proc.stdout)
    assert check_python_stacks(m, doc) > 0


@pytest.mark.parametrize("args", [[], ["foo"], ["gdb", "extra"], ["lldb", "--lldb"]])
def test_debugger_setup_usage_errors(args):
    """A wrong debugger-setup is a usage error (exit 2): one line saying
    what is wrong, where to look, and nothing on stdout to append to an
    init file."""
    proc = run_mixstack("debugger-setup", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("mixstack: "), proc.stderr
    assert lines[1] == "Try 'mixstack debugger-setup --help'."
