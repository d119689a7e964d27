"""The `mixstack` commands. Each prints what the library's printer prints
(the same text as the CLI); every failure is a one-line gdb error."""
import functools
import os
import shlex

import gdb

from . import frames as F
from . import lib as L
from . import framefilter
from .gdbtarget import select_level  # noqa: F401 (frames too)
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
                          the mixed stack, numbered as gdb numbers its frames
mixstack frame [N]        select frame #N of `mixstack bt` (gdb's `frame N`)
mixstack py-bt            Python frames with their source lines
mixstack py-bt-full       the same with arguments and locals
mixstack py-list [N|A,B]  source of the current Python frame (again: the next lines)
mixstack py-up [N]        select the Nth older Python frame (also: mixstack up)
mixstack py-down [N]      select the Nth newer Python frame (also: mixstack down)
mixstack py-locals        arguments and locals of the current Python frame
mixstack py-print NAME    NAME in the current Python frame (locals, globals, builtins)
mixstack threads          one line per thread
mixstack gil              who holds the GIL, who waits for it
mixstack err              pending and handled Python exceptions
mixstack panic            Rust panic state
mixstack phase            the interpreter's lifecycle phase
mixstack tasks            asyncio tasks: what each awaits, who awaits it
mixstack report [--json]  the whole report, as the mixstack CLI prints it
mixstack filter on|off    Python frames in gdb's own `bt` (on by default)

THREAD is a thread id (LWP) or a gdb thread number. The current Python
frame (marked '*' by `mixstack bt`) is the one py-up/py-down/frame
selected, else the innermost one at or above gdb's selected frame."""

    def __init__(self):
        super().__init__("mixstack", gdb.COMMAND_STACK, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        if arg and arg.strip():
            raise gdb.GdbError('Undefined mixstack command: "%s".  Try "help mixstack".'
                               % arg.strip().split()[0])
        gdb.write(self.__doc__ + "\n")


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
            tids = [t["tid"] for t in SESSION.report_json(**opts).get("threads", ())]
        elif which:
            tids = resolve_threads(which)
        else:
            tid = F.selected_tid()
            if tid is None:
                raise Error("no thread selected")
            tids = (tid,)
        # Numbered as gdb numbers the frames: `frame N` selects #N. Python
        # frames only are the mixed stack's, printed alone.
        flags = 0
        if opts["mode"] == L.MS_STACK_PYTHON_ONLY:
            opts["mode"] = L.MS_STACK_MIXED
            flags = L.MS_FRAME_MAP_PYTHON_ONLY
        _write("".join(SESSION.frame_map(tid, **opts).format_stack(flags)
                       for tid in tids))


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


# Navigation: the library's frame map of the selected thread -----------------

def _nav_map(**report_options):
    SESSION.inferior()
    SESSION.require_python()
    return SESSION.frame_map(**report_options)


def _count(arg, name):
    words = _split(arg)
    if not words:
        return 1
    if len(words) == 1:
        try:
            n = int(words[0], 0)
            if n > 0:
                return n
        except ValueError:
            pass
    raise Error("usage: mixstack %s [COUNT]" % name)


def _select_current(fmap):
    """Select the gdb frame of the current Python frame (the eval-loop
    frame running it), when gdb has one."""
    level = fmap.current_debugger_frame()
    if level is not None:
        select_level(level)
        fmap.sync()
    return level


def _move(fmap, count):
    try:
        fmap.move(count)
    except L.LibraryError as e:
        raise Error(e.message)
    level = _select_current(fmap)
    text = fmap.format_current()
    if level is None:
        text += "mixstack: gdb has no frame running this Python frame (its unwinder stopped earlier)\n"
    _write(text)


class PyUp(gdb.Command):
    """Select the COUNTth older Python frame (1 by default): gdb selects
the eval-loop frame running it. libpython.py's py-up."""

    def __init__(self, name="py-up"):
        super().__init__("mixstack " + name, gdb.COMMAND_STACK)
        self._name = name

    @_one_line_errors
    def invoke(self, arg, from_tty):
        _move(_nav_map(), _count(arg, self._name))


class PyDown(gdb.Command):
    """Select the COUNTth newer Python frame (1 by default): gdb selects
the eval-loop frame running it. libpython.py's py-down."""

    def __init__(self, name="py-down"):
        super().__init__("mixstack " + name, gdb.COMMAND_STACK)
        self._name = name

    @_one_line_errors
    def invoke(self, arg, from_tty):
        _move(_nav_map(), -_count(arg, self._name))


class Frame(gdb.Command):
    """Select frame N as `mixstack bt` numbers it (gdb's own numbers: the
same as gdb's `frame N`), and mark the Python frame it runs as current.

Usage: mixstack frame [N]"""

    def __init__(self):
        super().__init__("mixstack frame", gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        words = _split(arg)
        SESSION.inferior()
        if len(words) > 1:
            raise Error("usage: mixstack frame [N]")
        if words:
            try:
                level = int(words[0], 0)
            except ValueError:
                raise Error("usage: mixstack frame [N]")
            frame = select_level(level)
            if frame.level() != level:
                raise Error("no frame %d (the outermost is #%d)" % (level, frame.level()))
        fmap = SESSION.frame_map()
        current = fmap.current_debugger_frame()
        if current is not None and current == F.selected_level():
            _write(fmap.format_current())
        else:
            _write(gdb.execute("frame", to_string=True))


class PyBt(gdb.Command):
    """The Python frames of the selected thread, each with its source line,
innermost first, numbered as gdb numbers the eval-loop frames running
them; the current Python frame is marked '*'. libpython.py's py-bt."""

    def __init__(self):
        super().__init__("mixstack py-bt", gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        if _split(arg):
            raise Error("`mixstack py-bt` takes no arguments")
        _write(_nav_map().format_stack(L.MS_FRAME_MAP_PYTHON_ONLY | L.MS_FRAME_MAP_SOURCE))


class PyBtFull(gdb.Command):
    """py-bt with the arguments and locals of every Python frame.
libpython.py's py-bt-full."""

    def __init__(self):
        super().__init__("mixstack py-bt-full", gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        if _split(arg):
            raise Error("`mixstack py-bt-full` takes no arguments")
        _write(_nav_map(locals=True).format_stack(
            L.MS_FRAME_MAP_PYTHON_ONLY | L.MS_FRAME_MAP_SOURCE))


class PyList(gdb.Command):
    """Show the Python source around the current Python frame's line; run
again (or press Enter), the next lines. libpython.py's py-list.

Usage: mixstack py-list [START | START,END]
The current Python frame is the one `mixstack py-up/py-down/frame`
selected, else the innermost Python frame at or above gdb's selected
frame."""

    def __init__(self, name="py-list"):
        super().__init__("mixstack " + name, gdb.COMMAND_STACK)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        fmap = _nav_map()
        first = last = 0
        words = (arg or "").strip()
        if words:
            try:
                if "," in words:
                    a, b = words.split(",", 1)
                    first, last = int(a), int(b)
                else:
                    first = int(words)
            except ValueError:
                raise Error("usage: mixstack py-list [START | START,END]")
            if first <= 0:
                raise Error("usage: mixstack py-list [START | START,END]")
        try:
            _write(fmap.format_list(first, last))
        except L.LibraryError as e:
            raise Error(e.message)


class PyLocals(gdb.Command):
    """The arguments and locals of the current Python frame.
libpython.py's py-locals."""

    def __init__(self):
        super().__init__("mixstack py-locals", gdb.COMMAND_DATA)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        if _split(arg):
            raise Error("`mixstack py-locals` takes no arguments")
        try:
            _write(_nav_map(locals=True).format_locals())
        except L.LibraryError as e:
            raise Error(e.message)


class PyPrint(gdb.Command):
    """Print a Python name as the current Python frame sees it: its locals,
then its module's globals, then the builtins. libpython.py's py-print.

Usage: mixstack py-print NAME"""

    def __init__(self):
        super().__init__("mixstack py-print", gdb.COMMAND_DATA)

    @_one_line_errors
    def invoke(self, arg, from_tty):
        words = _split(arg)
        if len(words) != 1:
            raise Error("usage: mixstack py-print NAME")
        try:
            _write(_nav_map(locals=True).lookup(words[0]))
        except L.LibraryError as e:
            raise Error(e.message)


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
    PyBt()
    PyBtFull()
    PyList()
    PyList("list")
    PyUp()
    PyUp("up")
    PyDown()
    PyDown("down")
    PyLocals()
    PyPrint()
    Frame()
    Bt()
    Threads()
    Gil()
    Err()
    Panic()
    Phase()
    Tasks()
    Report()
    Filter()
