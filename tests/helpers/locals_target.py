"""A Python process that blocks with known arguments and locals.

Writes, as JSON on stdout, the innermost frame's locals as repr() gives
them (for the types whose repr mixstack reproduces) and the names of the
others, then blocks reading stdin until its end.
"""
import json
import os
import sys


class Opaque:
    pass


def inner(count, label, *rest, **options):
    none = None
    flag = True
    big = 2 ** 100
    neg = -12345
    ratio = 0.1
    text = "h\u00e9llo 'q'"
    raw = b"\x00ab\xff"
    pair = (1, "two")
    items = [None, False, 3]
    table = {"k": 1}
    obj = Opaque()
    expected = {name: repr(value) for name, value in locals().items()
                if name != "obj"}
    expected_args = ["count", "label"]
    sys.stdout.write(json.dumps({
        "locals": expected,
        "opaque": ["obj"],
        "args": expected_args,
        "pid": os.getpid(),
        "line": sys._getframe().f_lineno + 3,
    }) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    return obj


inner(7, "seven", 8, 9, key="v")
