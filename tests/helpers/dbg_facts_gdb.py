"""gdb's own view for tests/integration/test_debuggers.py: `mstest-facts
[TID,...]` prints every thread's frames as gdb has them (and gdb's `bt`
of the threads listed), `mstest-select TID` selects a thread by its kernel
id, `mstest-selected` prints the selected thread and frame. One line each,
after "@@FACTS " / "@@SELECTED "."""
import json

import gdb

INLINE = getattr(gdb, "INLINE_FRAME", 2)
TAILCALL = getattr(gdb, "TAILCALL_FRAME", 3)


def _tid(t):
    return t.ptid[1] or t.ptid[0]


def _frames():
    out = []
    f = gdb.newest_frame()
    while f is not None and len(out) < 4000:
        try:
            name = f.name()
        except gdb.error:
            name = None
        out.append({"level": f.level(), "pc": f.pc(), "function": name or "",
                    "physical": f.type() not in (INLINE, TAILCALL)})
        try:
            f = f.older()
        except gdb.error:
            break
    # An inlined frame lives in the next physical frame older than it.
    for k, fr in enumerate(out):
        home = next((g for g in out[k:] if g["physical"]), None)
        fr["physical_pc"] = home["pc"] if home else None
    return out


class Facts(gdb.Command):
    def __init__(self):
        super().__init__("mstest-facts", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        want_bt = {int(x) for x in arg.replace(",", " ").split()}
        sel = gdb.selected_thread()
        level = gdb.selected_frame().level() if sel is not None else 0
        threads = []
        for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
            t.switch()
            rec = {"tid": _tid(t), "num": t.num, "name": t.name, "frames": _frames()}
            if rec["tid"] in want_bt:
                try:
                    rec["bt"] = gdb.execute("bt -frame-arguments none", to_string=True)
                except gdb.error as e:
                    rec["bt"] = "error: %s" % e
            threads.append(rec)
        if sel is not None:
            sel.switch()
            gdb.execute("frame %d" % level, to_string=True)
        gdb.write("@@FACTS " + json.dumps({"threads": threads}) + "\n")


class Select(gdb.Command):
    def __init__(self):
        super().__init__("mstest-select", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        for t in gdb.selected_inferior().threads():
            if _tid(t) == int(arg):
                t.switch()
                return
        raise gdb.GdbError("no thread %s" % arg)


class Selected(gdb.Command):
    def __init__(self):
        super().__init__("mstest-selected", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        f = gdb.selected_frame()
        gdb.write("@@SELECTED " + json.dumps({
            "tid": _tid(gdb.selected_thread()), "frame": f.level(), "pc": f.pc(),
            "function": f.name() or ""}) + "\n")


Facts()
Select()
Selected()
