"""Dump line tables and the interpreter's own line for every instruction.

Run by each interpreter under test (3.8+):

    python3.X dump_lines.py OUT

For every code object (recursively) of a few stdlib modules, writes

    C <format> <firstlineno> <hex of the raw line table> <name>
    L <byte offset> <line> <byte offset> <line> ...

format: 1 = co_lnotab (3.8-3.9), 2 = 3.10 co_linetable, 3 = location table
(3.11+), as in core/cpython/layout.h. Line -1 means "no line" (None).
The lines come from the interpreter itself: dis.findlinestarts semantics
for 3.8-3.9, co_lines() for 3.10, co_positions() for 3.11+.
"""
import dis
import importlib
import sys
import types

MODULES = ["json.decoder", "argparse", "collections", "asyncio.base_events",
           "email.message", "textwrap"]


def codes(co):
    yield co
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            yield from codes(c)


def lines_38(co):
    starts = list(dis.findlinestarts(co))
    out, j, line = [], 0, co.co_firstlineno
    for off in range(0, len(co.co_code), 2):
        while j < len(starts) and starts[j][0] <= off:
            line = starts[j][1]
            j += 1
        out.append((off, line))
    return 1, co.co_lnotab, out


def lines_310(co):
    out = {}
    for start, end, line in co.co_lines():
        for off in range(start, end, 2):
            out[off] = -1 if line is None else line
    return 2, co.co_linetable, sorted(out.items())


def lines_311(co):
    out = []
    for i, pos in enumerate(co.co_positions()):
        out.append((2 * i, -1 if pos[0] is None else pos[0]))
    return 3, co.co_linetable, out


def main():
    v = sys.version_info[:2]
    dump = lines_38 if v < (3, 10) else lines_310 if v < (3, 11) else lines_311
    with open(sys.argv[1], "w") as f:
        for name in MODULES:
            mod = importlib.import_module(name)
            src = mod.__file__
            with open(src, "rb") as sf:
                top = compile(sf.read(), src, "exec")
            for co in codes(top):
                fmt, table, lines = dump(co)
                f.write("C %d %d %s %s\n" % (fmt, co.co_firstlineno,
                                            table.hex() or "-", co.co_name))
                f.write("L " + " ".join("%d %d" % p for p in lines) + "\n")


main()
