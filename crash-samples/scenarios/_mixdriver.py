"""Run-time support shared by the scenario drivers (stdlib only, Python 3.8+).

A driver is started by scripts/samples (crash-samples harness) with:

  MIXSTACK_EXT         path of the mixsample extension (.abi3.so) to import
  MIXSTACK_MANIFEST    where to write manifest.json
  MIXSTACK_READY_FD    write end of the readiness pipe (one byte "R" once the
                       process is in the state to snapshot)
  MIXSTACK_BLOCK_FD    read end of a pipe the harness never writes to: reading
                       it blocks until the harness goes away (EOF)
  MIXSTACK_PARENT_PID  the harness pid (the driver dies with its parent)
  MIXSTACK_SCENARIO, MIXSTACK_INTERP_TAG, MIXSTACK_PYO3_VERSION  (informational)

Everything in the manifest is a fact observed by the scenario process itself
(the Rust side reports tids and panic locations, the Python side its own
frames) and is written, fsynced, *before* the process blocks or crashes.

Python stacks are innermost first. Each entry is the frame's code name, its
co_filename and the line currently executing in that frame, i.e. the line of
the call into Rust (or into the blocking C function) for the innermost frame,
and the line of the call to the next frame for the others; the frames of the
recording helpers themselves are never included.
"""

import json
import linecache
import os
import platform
import signal
import struct
import sys
import threading

ENV = os.environ
EXT_PATH = ENV.get("MIXSTACK_EXT", "")
MANIFEST_PATH = ENV.get("MIXSTACK_MANIFEST", "manifest.json")
READY_FD = int(ENV.get("MIXSTACK_READY_FD", "-1"))
BLOCK_FD = int(ENV.get("MIXSTACK_BLOCK_FD", "-1"))
SCENARIO = ENV.get("MIXSTACK_SCENARIO", "")

_lock = threading.Lock()
_threads = {}  # tid -> entry
ms = None  # the imported mixsample module


# --------------------------------------------------------------------------
# ELF helpers (section names only; enough to tell stripped / debug info)
# --------------------------------------------------------------------------

def elf_sections(path):
    """Return the set of section names of an ELF64 little-endian file."""
    try:
        with open(path, "rb") as f:
            hdr = f.read(64)
            if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
                return set()
            shoff = struct.unpack_from("<Q", hdr, 0x28)[0]
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", hdr, 0x3A)
            if not shoff or not shnum:
                return set()
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            def sh(i):
                return struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize)
            strtab = sh(shstrndx)
            f.seek(strtab[4])
            names = f.read(strtab[5])
            out = set()
            for i in range(shnum):
                off = sh(i)[0]
                end = names.find(b"\0", off)
                out.add(names[off:end].decode("ascii", "replace"))
            return out
    except OSError:
        return set()


def elf_facts(path):
    secs = elf_sections(path)
    return {"path": path, "symtab": ".symtab" in secs, "debug_info": ".debug_info" in secs}


def mapped_objects():
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                p = parts[5].strip()
                if p not in paths:
                    paths.append(p)
    return paths


def interpreter_facts():
    exe = os.path.realpath(sys.executable)
    bins = [exe] + [p for p in mapped_objects()
                    if os.path.basename(p).startswith("libpython3") and p != exe]
    facts = [elf_facts(p) for p in bins]
    # The object that holds the interpreter proper: libpython when the build
    # is shared, else the executable.
    core = facts[-1] if len(facts) > 1 else facts[0]
    return {
        "path": sys.executable,
        "realpath": exe,
        "version": platform.python_version(),
        "hexversion": sys.hexversion,
        "implementation": platform.python_implementation(),
        "tag": ENV.get("MIXSTACK_INTERP_TAG"),
        "debug_info": any(f["debug_info"] for f in facts),
        "stripped": not core["symtab"],
        "binaries": facts,
        "jit": bool(getattr(sys, "_jit", None) and sys._jit.is_enabled()),
    }


def embedded_interpreter_facts():
    """interpreter_facts() of a program that embeds CPython (mixembed): the
    executable is the program, the runtime is in the shared libpython it
    links (sys.executable names a python3 it never ran)."""
    exe = os.path.realpath("/proc/self/exe")
    libs = [p for p in mapped_objects() if os.path.basename(p).startswith("libpython3")]
    facts = [elf_facts(p) for p in [exe] + libs]
    return {
        "path": exe,
        "realpath": exe,
        "version": platform.python_version(),
        "hexversion": sys.hexversion,
        "implementation": platform.python_implementation(),
        "tag": ENV.get("MIXSTACK_INTERP_TAG"),
        "debug_info": any(f["debug_info"] for f in facts),
        "stripped": not facts[-1]["symtab"],
        "binaries": facts,
        "jit": bool(getattr(sys, "_jit", None) and sys._jit.is_enabled()),
        "embedded": True,
        "runtime_object": libs[0] if libs else None,
    }


def load_embedded():
    """The mixembed built-in module of the embedding program, standing in
    for the extension; tie our lifetime to the harness."""
    global ms
    import types
    import mixembed
    ms = types.SimpleNamespace(__file__=os.path.realpath("/proc/self/exe"),
                               __name__="mixembed")
    ppid = ENV.get("MIXSTACK_PARENT_PID")
    if ppid:
        mixembed.die_with_parent()
        if os.getppid() != int(ppid):
            os._exit(3)
    return mixembed


def extension_facts():
    path = os.path.realpath(ms.__file__)
    f = elf_facts(path)
    return {"path": path, "stripped": not f["symtab"], "debug_info": f["debug_info"],
            "module": ms.__name__, "pyo3": ENV.get("MIXSTACK_PYO3_VERSION")}


# --------------------------------------------------------------------------
# extension loading
# --------------------------------------------------------------------------

def load_ext():
    """Import mixsample from MIXSTACK_EXT; tie our lifetime to the harness."""
    global ms
    d = os.path.dirname(os.path.abspath(EXT_PATH)) if EXT_PATH else ""
    if d:
        sys.path.insert(0, d)
    import mixsample
    ms = mixsample
    ppid = ENV.get("MIXSTACK_PARENT_PID")
    if ppid:
        ms.die_with_parent()
        if os.getppid() != int(ppid):  # parent already gone
            os._exit(3)
    if EXT_PATH and os.path.realpath(ms.__file__) != os.path.realpath(EXT_PATH):
        raise SystemExit("mixsample imported from %s, expected %s" % (ms.__file__, EXT_PATH))
    return ms


def ext_stripped():
    return not elf_facts(os.path.realpath(ms.__file__))["symtab"]


def native(*names):
    """native_expect list: Rust names (mixsample::, core::, std::) are dropped
    when the extension has no symbol table; exported CPython API names are
    kept (they are in .dynsym even in stripped interpreters)."""
    if ext_stripped():
        return [n for n in names if "::" not in n]
    return list(names)


# --------------------------------------------------------------------------
# stacks and thread records
# --------------------------------------------------------------------------

def py_stack(frame, innermost_line=None):
    out = []
    first = True
    while frame is not None:
        code = frame.f_code
        line = frame.f_lineno
        if first and innermost_line is not None:
            line = innermost_line
        out.append({"function": code.co_name, "file": code.co_filename, "line": line})
        frame = frame.f_back
        first = False
    return out


def marker_line(frame, marker):
    """First line at or after frame's current line containing '#@<marker>'."""
    fn = frame.f_code.co_filename
    n = frame.f_lineno
    while True:
        text = linecache.getline(fn, n)
        if not text:
            raise RuntimeError("marker #@%s not found after %s:%d" % (marker, fn, frame.f_lineno))
        if ("#@" + marker) in text:
            return n
        n += 1


def thread_comm(tid):
    try:
        with open("/proc/self/task/%d/comm" % tid) as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


def add_thread(tid, role, python_stack, holds_gil=False, waits_gil=False,
               native_expect=None, blocked_in=None, **extra):
    """Record one thread. blocked_in: the syscall ("read", "futex") the thread
    is blocked in at snapshot time (the harness waits for it), or None."""
    entry = {
        "tid": int(tid),
        "name": None,  # filled from /proc at write time
        "role": role,
        "python_stack": python_stack,
        "holds_gil": bool(holds_gil),
        "waits_gil": bool(waits_gil),
        "native_expect": list(native_expect or []),
        "blocked_in": blocked_in,
    }
    entry.update(extra)
    with _lock:
        _threads[int(tid)] = entry
    return entry


def add_current_thread(role, marker=None, depth=1, **kw):
    """Record the calling thread; its innermost Python frame is the caller
    (depth 1) with the line of the '#@marker' line that follows, if given."""
    frame = sys._getframe(depth)
    line = marker_line(frame, marker) if marker else None
    t = threading.current_thread()
    kw.setdefault("python_thread_name", t.name)
    return add_thread(threading.get_native_id(), role, py_stack(frame, line), **kw)


def exc_facts(exc):
    if exc is None:
        return None
    t = type(exc)
    args = getattr(exc, "args", ())
    msg = args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)
    return {"type": "%s.%s" % (t.__module__, t.__qualname__), "message": msg,
            "base": [b.__name__ for b in t.__mro__[1:]]}


def signal_facts(signame):
    num = int(getattr(signal, signame))
    return {"number": num, "name": signame}


def write_manifest(kind, **fields):
    """Write manifest.json atomically and fsync it (before blocking/crashing)."""
    tids = sorted(int(t) for t in os.listdir("/proc/self/task"))
    with _lock:
        threads = dict(_threads)
    out_threads = []
    for tid in tids:
        e = threads.get(tid)
        if e is None:
            e = {"tid": tid, "name": None, "role": "other", "python_stack": [],
                 "holds_gil": False, "waits_gil": False, "native_expect": [],
                 "blocked_in": None}
        e = dict(e)
        e["name"] = thread_comm(tid)
        out_threads.append(e)
    for tid, e in threads.items():  # recorded but no longer alive: keep, flag
        if tid not in tids:
            e = dict(e)
            e["alive"] = False
            out_threads.append(e)
    m = {
        "scenario": SCENARIO,
        "kind": kind,
        "interpreter": interpreter_facts(),
        "extension": extension_facts(),
        "pid": os.getpid(),
        "signal": None,
        "crashed_tid": None,
        "threads": out_threads,
        "gil_holder_tid": None,
        "exception": None,
        "panic": None,
        "phase": "running",
        "finalizing_step": None,
        "expect_crash_frame": None,
        "expect_crash_object": None,
        "main_tid": threading.main_thread().native_id,
        "thread_count": len(tids),
    }
    m.update(fields)
    tmp = MANIFEST_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(m, f, indent=1, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, MANIFEST_PATH)
    dfd = os.open(os.path.dirname(os.path.abspath(MANIFEST_PATH)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return m


def signal_ready():
    if READY_FD >= 0:
        os.write(READY_FD, b"R")


def name_this_thread(name):
    """Python < 3.14 does not set the OS thread name; do it like a careful
    application would (prctl PR_SET_NAME, 15 bytes)."""
    ms.set_thread_name(name)


# --------------------------------------------------------------------------
# asyncio: the tasks as the program itself sees them
# --------------------------------------------------------------------------

def coro_frames(coro):
    """Suspended frames of a coroutine chain, innermost first, by walking
    cr_await / gi_yieldfrom: function, file and the line of each await."""
    out = []
    c = coro
    for _ in range(64):
        f = getattr(c, "cr_frame", None) or getattr(c, "gi_frame", None)
        if f is None:
            break
        out.append({"function": f.f_code.co_name,
                    "qualname": getattr(f.f_code, "co_qualname", f.f_code.co_name),
                    "file": f.f_code.co_filename, "line": f.f_lineno})
        nxt = getattr(c, "cr_await", None)
        if nxt is None:
            nxt = getattr(c, "gi_yieldfrom", None)
        if nxt is None or not (hasattr(nxt, "cr_frame") or hasattr(nxt, "gi_frame")):
            break
        c = nxt
    out.reverse()
    return out


def asyncio_truth(loop, awaited_by=None, rust_futures=(), running=None):
    """Every pending task of loop: name, state, suspended frames (walking
    cr_await), the task it awaits (its _fut_waiter when that is a task), and
    who awaits it: awaited_by maps a task name to the names of the tasks the
    program made await it through gather/TaskGroup; direct awaits are added
    from _fut_waiter. rust_futures: names of tasks the program made await a
    Rust future. Call from a loop callback (no task running) or from the
    running task itself (running=its name)."""
    import asyncio
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    by_task = {id(t): t.get_name() for t in tasks}
    out = {}
    for t in tasks:
        name = t.get_name()
        waiter = getattr(t, "_fut_waiter", None)
        awaits = by_task.get(id(waiter)) if waiter is not None else None
        out[name] = {"name": name, "state": "pending",
                     "frames": coro_frames(t.get_coro()),
                     "awaits_task": awaits, "awaited_by": [],
                     "rust_future": name in rust_futures,
                     "running": name == running}
    for name, e in out.items():
        if e["awaits_task"] in out:
            out[e["awaits_task"]]["awaited_by"].append(name)
    for child, parents in (awaited_by or {}).items():
        for p in parents:
            if child in out and p not in out[child]["awaited_by"]:
                out[child]["awaited_by"].append(p)
    tokio = [int(t) for t in os.listdir("/proc/self/task")
             if (thread_comm(int(t)) or "").startswith("tokio-")]
    return {"loop_tid": threading.get_native_id(), "running_task": running,
            "tasks": sorted(out.values(), key=lambda e: e["name"]),
            "tokio_tids": sorted(tokio)}


def _line_containing(code, needle):
    """First line of code's source at or after its first line holding
    needle (the program's own source says where a call is)."""
    n = code.co_firstlineno
    for _ in range(400):
        text = linecache.getline(code.co_filename, n)
        if not text:
            break
        if needle in text:
            return n
        n += 1
    raise RuntimeError("%r not found in %s" % (needle, code.co_name))


def idle_loop_stack(loop):
    """The Python stack of the thread running loop once it is back in its
    selector: called from a loop callback, it is the callback's callers
    from BaseEventLoop._run_once outwards, _run_once at its select() call,
    under the selector's select() at its poll() call."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name != "_run_once":
        frame = frame.f_back
    if frame is None:
        raise RuntimeError("not called from a loop callback")
    stack = py_stack(frame, _line_containing(frame.f_code, "self._selector.select("))
    sel = type(loop._selector).select.__code__
    top = {"function": sel.co_name, "file": sel.co_filename,
           "line": _line_containing(sel, "self._selector.poll(")}
    return [top] + stack


def record_idle_loop(loop, awaited_by=None, rust_futures=(), **fields):
    """From a loop callback: record the tasks (asyncio_truth) and the loop
    thread, which is back in its selector's epoll_wait at snapshot time,
    write the manifest and signal readiness."""
    truth = asyncio_truth(loop, awaited_by=awaited_by, rust_futures=rust_futures)
    add_thread(threading.get_native_id(), "asyncio-loop", idle_loop_stack(loop),
               blocked_in="epoll_wait")
    write_manifest("snapshot", asyncio=truth, **fields)
    signal_ready()
