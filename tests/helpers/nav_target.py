"""A Python process whose stack the debugger tests know: four nested
functions with known arguments and locals, a module global, blocked in
the innermost one reading stdin.

Writes, as JSON on stdout, its Python frames innermost first (function,
file, line, locals as repr() gives them) and the global's repr, then blocks
until stdin ends; with NAV_ABORT=1 in its environment it aborts instead
(for debuggers that launch it and stop at the signal).
"""
import json
import os
import sys

NAV_GLOBAL = "global-4711"


def frames_here():
    out = []
    frame = sys._getframe(1)
    while frame is not None:
        out.append({"function": frame.f_code.co_name,
                    "file": frame.f_code.co_filename,
                    "line": frame.f_lineno,
                    "locals": {} if frame.f_code.co_name == "<module>" else
                    {k: repr(v) for k, v in frame.f_locals.items()
                     if isinstance(v, (int, str))}})
        frame = frame.f_back
    return out


def level3(depth):
    leaf_label = "leaf-%d" % depth
    facts = frames_here()
    # The innermost frame blocks in the read below, not in frames_here().
    stop = "# aborts here" if os.environ.get("NAV_ABORT") else "# blocks here"
    with open(__file__) as f:
        facts[0]["line"] = next(n for n, text in enumerate(f, 1)
                                if text.rstrip().endswith(stop))
    sys.stdout.write(json.dumps({"frames": facts, "pid": os.getpid(),
                                 "global": repr(NAV_GLOBAL)}) + "\n")
    sys.stdout.flush()
    if os.environ.get("NAV_ABORT"):
        os.abort()  # aborts here
    sys.stdin.read()  # blocks here
    return leaf_label


def level2(depth):
    middle_count = depth * 10
    return level3(depth + 1)


def level1(depth):
    outer_name = "outer"
    return level2(depth + 1)


level1(1)
