"""scripts/bench's command line (the benchmark itself is not part of CI:
speed is measured there, not in timed tests). Under a second: no target
is started and nothing is built."""
import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench"


def bench(*args):
    return subprocess.run([sys.executable, str(BENCH)] + list(args), capture_output=True,
                          text=True, timeout=60)


def test_help_names_the_lane_targets():
    r = bench("--help")
    assert r.returncode == 0, r.stderr
    assert "debian-3.X[-jit]" in r.stdout and "--quick" in r.stdout


def test_unknown_tool_is_a_usage_error():
    r = bench("--tools", "mixstack core,no such tool")
    assert r.returncode == 2
    assert "unknown tools: no such tool" in r.stderr


def test_missing_lane_interpreter_is_named():
    """A lane interpreter the root does not hold (or no root at all) stops
    the run before anything is built or started."""
    r = bench("--interp", "debian-3.99", "--quick", "--no-peers")
    assert r.returncode != 0
    assert "debian-3.99" in r.stderr
    assert "Traceback" not in r.stderr


def test_doc_blocks_per_target(tmp_path):
    """Each target's tables go into its own marked block; the other blocks
    and the text around them stay."""
    loader = importlib.machinery.SourceFileLoader("mixstack_bench_cli", str(BENCH))
    spec = importlib.util.spec_from_loader("mixstack_bench_cli", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    doc = tmp_path / "b.md"
    doc.write_text("intro\n<!-- bench:begin -->\nold default\n<!-- bench:end -->\nmiddle\n")
    mod.write_doc(doc, "lane tables\n", "debian-3.14")
    mod.write_doc(doc, "jit tables\n", "debian-3.14-jit")
    mod.write_doc(doc, "lane tables 2\n", "debian-3.14")
    text = doc.read_text()
    assert "old default" in text and "intro" in text and "middle" in text
    assert text.count("<!-- bench:begin debian-3.14 -->\nlane tables 2\n"
                      "<!-- bench:end debian-3.14 -->") == 1
    assert "lane tables\n" not in text
    assert "<!-- bench:begin debian-3.14-jit -->\njit tables\n" in text


def test_lane_ratios_are_peer_over_mixstack(tmp_path):
    """A lane target's tables give peer time / mixstack time, a timed-out
    peer as a lower bound, and the frames each tool showed."""
    import json
    tool = {"runs": 1, "rc": ["0"], "level_frames": 50, "rust_frames": 4,
            "notices": {"merge": 0, "mismatch": 0}, "error": None}
    def t(median, **kw):
        return dict(tool, median_s=median, rss_kib=1024, **kw)
    report = {
        "facts": {"cpu": "x", "nproc": 2, "mem_gib": 1, "kernel": "k", "glibc": "g",
                  "loadavg_at_start": ["1", "1", "1"], "mixstack": "m", "mixstack_build": "b",
                  "pystack": "p", "py-spy": "s", "eu-stack": "e", "gdb": "g",
                  "target_python": "t", "date": "d"},
        "runs": 1, "timeout": 60.0, "every": 10, "problems": {}, "command": "c",
        "lane": True, "name": "debian-3.14",
        "sizes": [{"threads": 1, "depth": 50, "core_bytes": 1e6, "core_disk_bytes": 1e6,
                   "process_threads": 2, "idle_gap_ms": 0.1,
                   "core": {"mixstack core": t(0.5),
                            "pystack core --native": t(4.0, level_frames=50, rust_frames=0,
                                                       notices={"merge": 2, "mismatch": 0}),
                            "eu-stack --core": dict(tool, rc=["timeout"], timeout=True)},
                   "live": {"mixstack pid": t(0.1, stopped_ms=10.0),
                            "pystack remote --native": t(0.3, stopped_ms=40.0)}}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report))
    r = bench("--render", str(path))
    assert r.returncode == 0, r.stderr
    row = [line for line in r.stdout.split("### Peer ratios")[1].splitlines()
           if line.startswith("| 1 x 50")][0].split(" | ")
    assert row[1] == "8.00"   # pystack core --native / mixstack core
    assert row[6] == ">120"   # eu-stack timed out at 60 s: > 60 / 0.5
    assert row[9].startswith("3.00")  # pystack remote --native / mixstack pid
    assert '2 x "Unable to merge native stack"' in r.stdout
