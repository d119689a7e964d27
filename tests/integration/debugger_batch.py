"""Batch sessions of gdb or lldb with the mixstack plugin printing
`mixstack report --json` for several targets, each after a marker line
naming it; which gdb/lldb binary and plugin is the caller's (test_lane.py:
the lane's gdb 18 and lldb-22; test_live_report.py: this machine's gdb and
lldb-19).

An item is (key, exe, core) for a core or (key, pid) for a live process,
which the session attaches, reports on and detaches.
"""
import json
import os
import re
import subprocess
import tempfile

MARK = "@@MS "

GDB_FLAGS = ["-nx", "-batch", "-iex", "set auto-load python-scripts off",
             "-iex", "set debuginfod enabled off", "-iex", "set pagination off",
             "-iex", "set width 0", "-iex", "set confirm off"]


def debugger_argv(name, tool, plugin, items, gdb_pre=()):
    """argv of one batch session of debugger `name` ("gdb" or "lldb", the
    binary `tool`, the plugin file `plugin`), and the command file to
    remove afterwards (lldb sources its commands: an error does not end its
    batch). gdb_pre: more gdb arguments before the plugin is sourced."""
    if name == "gdb":
        argv = [tool, *GDB_FLAGS, *gdb_pre, "-ex", f"source {plugin}"]
        for item in items:
            if len(item) == 3:
                argv += ["-ex", f"file {item[1]}", "-ex", f"core-file {item[2]}"]
            else:
                argv += ["-ex", f"attach {item[1]}"]
            argv += ["-ex", f"echo {MARK}{item[0]}\\n", "-ex", "mixstack report --json"]
            if len(item) == 2:
                argv += ["-ex", "detach"]
        return argv, None
    lines = []
    for item in items:
        if len(item) == 3:
            lines.append(f"target create {item[1]} --core {item[2]}")
        else:
            lines.append(f"process attach -p {item[1]}")
        lines += [f"script print('{MARK}{item[0]}')", "mixstack report --json"]
        if len(item) == 2:
            lines.append("process detach")
        lines.append("target delete")
    fd, path = tempfile.mkstemp(prefix="mixstack-batch-lldb-", suffix=".cmds", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return [tool, "-b", "-x", "-o", f"plugin load {plugin}",
            "-o", f"command source -e false {path}"], path


def parse_reports(stdout, keys):
    """{key: (document or None, error)} from a session's output."""
    out = {}
    parts = re.split(r"^%s(.*)\n" % re.escape(MARK), stdout, flags=re.M)
    got = {parts[k]: parts[k + 1] for k in range(1, len(parts) - 1, 2)}
    for key in keys:
        text = got.get(key)
        if text is None:
            out[key] = (None, "the session ended before this report")
            continue
        start = text.find("{")
        try:
            doc, _ = json.JSONDecoder().raw_decode(text[start:]) if start >= 0 else (None, 0)
        except ValueError as e:
            doc, text = None, f"no JSON ({e}): {text[:1500]}"
        out[key] = (doc, None if doc is not None else text[:1500])
    return out


def run_debugger(name, tool, plugin, items, prefix=(), timeout=600, gdb_pre=(), env=None):
    """Run one batch session (argv after prefix, environment env or
    ours); returns parse_reports' dict."""
    argv, cmds = debugger_argv(name, tool, plugin, items, gdb_pre)
    try:
        proc = subprocess.run([*prefix, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, errors="replace", timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as e:
        return {item[0]: (None, f"{name} timed out: {e}") for item in items}
    finally:
        if cmds:
            os.unlink(cmds)
    res = parse_reports(proc.stdout, [item[0] for item in items])
    return {k: (d, e if e is None else f"{e}\nstderr: {proc.stderr[-1500:]}")
            for k, (d, e) in res.items()}
