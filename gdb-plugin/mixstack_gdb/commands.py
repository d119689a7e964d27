"""The `mixstack` commands. Each prints what the library's printer prints
(the same text as the CLI); every failure is a one-line gdb error."""
import functools
import os
import shlex

import gdb

from . import frames as F
from . import lib as L
from . import framefilter
from .gdbtarget import select_level
from .session import SESSION, Error


def _one_line_errors(invoke):
    """No Python traceback reaches the user: gdb errors pass, Ctrl-C and
    anything unexpected become one line."""
    @functools.wraps(invoke)
    def wrapper(self, arg, from_tty):
        try:
            return invoke(self, arg, from_tty)
        except gdb.GdbError:
            raise
        except KeyboardInterrupt:
            raise Error("interrupted")
        except gdb.error as e:
            raise Error(str(e) or "gdb error")
        except Exception as e:  # noqa: BLE001
            if os.environ.get("MIXSTACK_GDB_DEBUG"):
                import traceback
                traceback.print_exc()
            raise Error("internal error: %s: %s" % (type(e).__name__, e))
    return wrapper


def _complete(options, text, word):
    """Completions of the last word of text among options. gdb breaks words
    at '-', so word may be only the end of the option being typed."""
    last = "" if not text or text[-1:].isspace() else text.split()[-1]
    cut = len(last) - len(word or "")
    return [o[cut:] for o in options if o.startswith(last)]


def _split(arg):
    try:
        return shlex.split(arg or "")
    except ValueError as e:
        raise Error(str(e))


def _write(text):
    if text and not text.endswith("\n"):
        text += "\n"
    gdb.write(text)


class Prefix(gdb.Command):
    """mixstack: mixed CPython / Rust / C stacks of this process.

mixstack bt [all | THREAD...] [--locals] [--all-frames] [--native-only | --python-only]
mixstack threads          one line per thread
mixstack gil              who holds the GIL, who waits for it
mixstack err              pending and handled Python exceptions
mixstack panic            Rust panic state
mixstack phase            the interpreter's lifecycle phase
mixstack tasks            asyncio tasks: what each awaits, who awaits it
mixstack report [--json]  the whole report, as the mixstack CLI prints it
mixstack up / down        select the eval-loop frame of the next older / newer Python frame
mixstack list [N | A,B]   Python source around the current Python frame's line
mixstack filter on|off    Python frames in gdb's own `bt` (on by default)

THREAD is a thread id (LWP) or a gdb thread number."""

    def __init__(self):
        super().__init__("mixstack", gdb.COMMAND_STACK, gdb.COMPLETE_COMMAND, True)


_BT_OPTIONS = ("--locals", "--all-frames", "--native-only", "--python-only", "all")


def resolve_threads(words):
    """tids for the words of `mixstack bt`: tids, or gdb thread numbers."""
    inferior = gdb.selected_inferior()
    threads = inferior.threads()
    by_tid = {t.ptid[1]: t for t in threads}
    by_num = {t.num: t for t in threads}
    tids = []
    for w in words:
        try:
            n = int(w, 0)
        except ValueError:
            raise Error("bad thread %r: give a thread id, a gdb thread number or `all`" % w)
        if n in by_tid:
            tids.append(n)
        elif n in by_num:
            tids.append(by_num[n].ptid[1])
        else:
            raise Error("no thread %d in this process" % n)
    return tids


class Bt(gdb.Command):
    """Print the mixed Python / native stack of the selected thread.

Usage: mixstack bt [all | THREAD...] [--locals] [--all-frames] [--native-only | --python-only]

all            every thread
THREAD         a thread id (LWP) or gdb thread number; several may be given
--all-frames   keep the CPython-internal frames between Python frames
--native-only  native frames only, as the unwinder found them (gdb's frame
               numbers: `frame N` selects frame #N)
--python-only  Python frames only
--locals       the arguments and locals of Python frames"""

    def __init__(self):
        super().__init__("mixstack bt", gdb.COMMAND_STACK)

    def complete(self, text, word):
        return _complete(_BT_OPTIONS, text, word)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        words = _split(arg)
        opts = {"mode": L.MS_STACK_MIXED, "all_frames": False, "locals": False}
        which = []
        every = False
        modes = set()
        for w in words:
            if w == "--locals":
                opts["locals"] = True
            elif w == "--all-frames":
                opts["all_frames"] = True
            elif w == "--native-only":
                modes.add(L.MS_STACK_NATIVE_ONLY)
            elif w == "--python-only":
                modes.add(L.MS_STACK_PYTHON_ONLY)
            elif w == "all":
                every = True
            elif w.startswith("-"):
                raise Error("unknown option %s (see `help mixstack bt`)" % w)
            else:
                which.append(w)
        if len(modes) > 1:
            raise Error("--native-only and --python-only exclude each other")
        if modes:
            opts["mode"] = modes.pop()
        if every and which:
            raise Error("give `all` or thread ids, not both")
        SESSION.inferior()
        if opts["mode"] == L.MS_STACK_PYTHON_ONLY:
            SESSION.require_python()
        if every:
            tids = ()
        elif which:
            tids = resolve_threads(which)
        else:
            tid = F.selected_tid()
            if tid is None:
                raise Error("no thread selected")
            tids = (tid,)
        _write(SESSION.format(L.MS_SECTION_STACKS, tids=tids, **opts))


class _Section(gdb.Command):
    section = None
    python_only = False

    def __init__(self, name):
        super().__init__("mixstack " + name, gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        if _split(arg):
            raise Error("`mixstack %s` takes no arguments" % self._name())
        SESSION.inferior()
        if self.python_only:
            SESSION.require_python()
        _write(SESSION.format(self.section))

    def _name(self):
        return type(self).__name__.lower()


class Threads(_Section):
    """One line per thread: tid, name, Python or native, where it is."""
    section = L.MS_SECTION_THREADS

    def __init__(self):
        super().__init__("threads")


class Gil(_Section):
    """Who holds the GIL, who waits for it, and what that means."""
    section = L.MS_SECTION_GIL
    python_only = True

    def __init__(self):
        super().__init__("gil")


class Err(_Section):
    """Pending and handled Python exceptions, per thread."""
    section = L.MS_SECTION_ERRORS
    python_only = True

    def __init__(self):
        super().__init__("err")


class Panic(_Section):
    """Rust panic state: panicking threads and their messages."""
    section = L.MS_SECTION_PANIC

    def __init__(self):
        super().__init__("panic")


class Phase(_Section):
    """The interpreter's lifecycle phase (initializing, running, finalizing)."""
    section = L.MS_SECTION_PHASE
    python_only = True

    def __init__(self):
        super().__init__("phase")


class Tasks(_Section):
    """asyncio tasks per event loop: each pending task's suspended frames,
what it awaits (a task, a future, a Rust future), who awaits it, and the
diagnoses (await cycles, futures only Rust completes, a blocked loop)."""
    section = L.MS_SECTION_TASKS
    python_only = True

    def __init__(self):
        super().__init__("tasks")


class Report(gdb.Command):
    """Print the whole report, as the mixstack CLI does.

Usage: mixstack report [--json]"""

    def __init__(self):
        super().__init__("mixstack report", gdb.COMMAND_STACK)

    def complete(self, text, word):
        return _complete(("--json",), text, word)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        words = _split(arg)
        fmt = L.MS_FORMAT_TEXT
        for w in words:
            if w == "--json":
                fmt = L.MS_FORMAT_JSON
            else:
                raise Error("unknown option %s (usage: mixstack report [--json])" % w)
        SESSION.inferior()
        _write(SESSION.format(L.MS_SECTION_REPORT, fmt=fmt))


# Navigation -----------------------------------------------------------------

def _python_position(model):
    """(index in model.python, gdb level) of the current Python frame: the
    one `mixstack up/down` last selected when the selected gdb frame is still
    its eval-loop frame, else None."""
    nav = SESSION.nav
    try:
        level = gdb.selected_frame().level()
    except gdb.error:
        level = 0
    if nav and nav[0] == SESSION.generation and nav[1] == model.tid \
            and nav[3] == level and nav[2] < len(model.python):
        return nav[2], level
    return None, level


def _describe(model, index):
    py, native_index = model.python[index]
    level = model.level_of(native_index)
    name = py.get("qualname") or py.get("function") or "??"
    where = ""
    if py.get("file"):
        where = " (%s%s)" % (py["file"], ":%d" % py["line"] if py.get("line") else "")
    prefix = "#%-3d" % level if level is not None else "#?  "
    return "%s [python] %s%s" % (prefix, name, where), level


def _nav_model():
    SESSION.inferior()
    SESSION.require_python()
    model, _ = F.current_model()
    if model is None or not model.python:
        raise Error("no Python frames in this thread")
    return model


def _move(direction):
    model = _nav_model()
    current, level = _python_position(model)
    n = len(model.python)
    if current is not None:
        target = current + direction
    else:
        levels = [model.level_of(ni) for _, ni in model.python]
        here = [i for i, lv in enumerate(levels) if lv == level]
        if here:
            # The selected frame is an eval-loop frame: its innermost Python
            # frame is the current one.
            target = here[0] + direction
        elif direction > 0:
            target = next((i for i, lv in enumerate(levels)
                           if lv is not None and lv > level), n)
        else:
            target = next((i for i in range(n - 1, -1, -1)
                           if levels[i] is not None and levels[i] < level), -1)
    if target >= n:
        raise Error("no older Python frame (the outermost is selected)")
    if target < 0:
        raise Error("no newer Python frame (the innermost is selected)")
    text, target_level = _describe(model, target)
    if target_level is not None:
        select_level(target_level)
    SESSION.nav = (SESSION.generation, model.tid, target,
                   target_level if target_level is not None else level)
    _write(text)


class Up(gdb.Command):
    """Select the eval-loop frame running the next older Python frame."""

    def __init__(self):
        super().__init__("mixstack up", gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        if _split(arg):
            raise Error("`mixstack up` takes no arguments")
        _move(+1)


class Down(gdb.Command):
    """Select the eval-loop frame running the next newer Python frame."""

    def __init__(self):
        super().__init__("mixstack down", gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        if _split(arg):
            raise Error("`mixstack down` takes no arguments")
        _move(-1)


def current_python_frame(model):
    """The Python frame `mixstack list` shows: the one navigation selected,
    else the innermost one at or above the selected gdb frame."""
    current, level = _python_position(model)
    if current is None:
        levels = [model.level_of(ni) for _, ni in model.python]
        current = next((i for i, lv in enumerate(levels)
                        if lv is not None and lv >= level), 0)
    return current


class List(gdb.Command):
    """Show the Python source around the current Python frame's line.

Usage: mixstack list [START | START,END]
The current Python frame is the one `mixstack up/down` selected, else the
innermost Python frame at or above the selected gdb frame."""

    def __init__(self):
        super().__init__("mixstack list", gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        model = _nav_model()
        index = current_python_frame(model)
        py, _ = model.python[index]
        path, line = py.get("file"), py.get("line")
        if not path:
            raise Error("the current Python frame has no file name")
        if not line:
            raise Error("the current Python frame's line is unknown")
        start, end = line - 5, line + 5
        words = arg.strip()
        if words:
            try:
                if "," in words:
                    a, b = words.split(",", 1)
                    start, end = int(a), int(b)
                else:
                    start = int(words)
                    end = start + 10
            except ValueError:
                raise Error("usage: mixstack list [START | START,END]")
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            raise Error("cannot read %s: %s" % (path, e.strerror or e))
        start = max(start, 1)
        end = min(end, len(lines))
        if start > end:
            raise Error("line %d is past the end of %s (%d lines)" % (start, path, len(lines)))
        out = []
        for n in range(start, end + 1):
            mark = ">" if n == line else " "
            out.append("%s%4d    %s" % (mark, n, lines[n - 1]))
        _write("\n".join(out))


class Filter(gdb.Command):
    """Show Python frames in gdb's own `bt` (on) or gdb's frames only (off).

Usage: mixstack filter [on | off]"""

    def __init__(self):
        super().__init__("mixstack filter", gdb.COMMAND_STACK)

    def complete(self, text, word):
        return _complete(("on", "off"), text, word)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        words = _split(arg)
        flt = framefilter.install()
        if not words:
            _write("mixstack frame filter is %s" % ("on" if flt.enabled else "off"))
            return
        if len(words) != 1 or words[0] not in ("on", "off"):
            raise Error("usage: mixstack filter on|off")
        flt.enabled = words[0] == "on"
        _write("mixstack frame filter is %s" % words[0])


def register():
    Prefix()
    Bt()
    Threads()
    Gil()
    Err()
    Panic()
    Phase()
    Tasks()
    Report()
    Up()
    Down()
    List()
    Filter()
