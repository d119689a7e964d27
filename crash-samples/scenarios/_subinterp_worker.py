"""Code the subinterpreters scenario runs inside its subinterpreters
(stdlib only: PyO3 modules cannot be imported there). Each worker sends
its own facts -- tid, interpreter id, Python frames -- to the main
interpreter through a concurrent.interpreters queue, then spins (holding
its interpreter's own GIL) or blocks in read(2) (GIL released)."""
import json
import linecache
import os
import sys
import threading


def _stack(frame, marker):
    out = []
    first = True
    while frame is not None:
        line = frame.f_lineno
        if first:  # the caller's line marked #@MARKER, at or after this one
            for n in range(line, line + 20):
                if "#@" + marker in linecache.getline(frame.f_code.co_filename, n):
                    line = n
                    break
        out.append({"function": frame.f_code.co_name, "file": frame.f_code.co_filename,
                    "line": line})
        frame = frame.f_back
        first = False
    return out


def _report(q, role, marker, **extra):
    import concurrent.interpreters as ci
    facts = {"tid": threading.get_native_id(), "interpreter_id": ci.get_current().id,
             "role": role, "python_stack": _stack(sys._getframe(1), marker)}
    facts.update(extra)
    q.put(json.dumps(facts))


def spin(q):
    """Runs Python for ever: the thread holds its interpreter's GIL."""
    _report(q, "subinterpreter-spin", "SPIN", holds_gil=True, blocked_in=None)
    while True: pass  #@SPIN


def wait(q, fd):
    """Blocks in read(2) on fd with its interpreter's GIL released."""
    _report(q, "subinterpreter-wait", "WAIT", holds_gil=False, blocked_in="read")
    os.read(fd, 1)  #@WAIT
