"""lldb's own view for tests/integration/test_debuggers.py: `mstest-facts
[TID,...]` prints every thread's frames as lldb has them, `mstest-select
TID` selects a thread by its kernel id, `mstest-selected` prints the
selected thread and frame. One line each, after "@@FACTS " /
"@@SELECTED "."""
import json

import lldb


def _frames(thread):
    out = []
    for j in range(min(thread.GetNumFrames(), 4000)):
        f = thread.GetFrameAtIndex(j)
        out.append({"level": j, "pc": f.GetPC(), "cfa": f.GetCFA(),
                    "artificial": f.IsArtificial(), "function": f.GetFunctionName() or ""})
    # A physical frame: a run of frames with one CFA (a function and those
    # inlined into it), at the first one's pc (lldb shows the call site for
    # the outer frames of an inlined chain). Artificial frames (tail calls
    # lldb infers from call-site debug info) have no stack frame.
    home = None
    for k, f in enumerate(out):
        if f["artificial"]:
            f["physical"], f["physical_pc"] = False, None
            continue
        if home is not None and f["cfa"] == home["cfa"]:
            f["physical"], f["physical_pc"] = False, home["pc"]
        else:
            home = f
            f["physical"], f["physical_pc"] = True, f["pc"]
    return out


def facts(debugger, command, result, internal_dict):
    process = debugger.GetSelectedTarget().GetProcess()
    threads = []
    for i in range(process.GetNumThreads()):
        t = process.GetThreadAtIndex(i)
        threads.append({"tid": t.GetThreadID(), "num": t.GetIndexID(), "name": t.GetName(),
                        "frames": _frames(t)})
    result.PutCString("@@FACTS " + json.dumps({"threads": threads}))


def select(debugger, command, result, internal_dict):
    process = debugger.GetSelectedTarget().GetProcess()
    if not process.SetSelectedThreadByID(int(command)):
        result.SetError("no thread %s" % command)


def selected(debugger, command, result, internal_dict):
    t = debugger.GetSelectedTarget().GetProcess().GetSelectedThread()
    f = t.GetSelectedFrame()
    result.PutCString("@@SELECTED " + json.dumps({
        "tid": t.GetThreadID(), "frame": f.GetFrameID(), "pc": f.GetPC(),
        "function": f.GetFunctionName() or ""}))


def __lldb_init_module(debugger, internal_dict):
    for name, fn in (("mstest-facts", "facts"), ("mstest-select", "select"),
                     ("mstest-selected", "selected")):
        debugger.HandleCommand("command script add -o -f %s.%s %s" % (__name__, fn, name))
