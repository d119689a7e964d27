"""Python frames in gdb's own `bt`: a frame filter that puts the Python
frames an eval-loop frame runs in its place, drops the interpreter frames
the library's mixed stack hides, labels PyO3 trampolines and gives Rust
frames the library's demangled names. On any error it hands gdb its frames
undecorated: it must never break `bt`.
"""
import itertools
import os

import gdb
from gdb.FrameDecorator import FrameDecorator

from .session import SESSION

PYO3_LABEL = " [pyo3 trampoline]"
PYTHON_LABEL = " [python]"


def _debug():
    return bool(os.environ.get("MIXSTACK_GDB_DEBUG"))


class _Value:
    """A name and a value for frame_args / frame_locals."""

    def __init__(self, name, value):
        self._name, self._value = name, value

    def symbol(self):
        return self._name

    def value(self):
        return self._value


class PythonFrameDecorator(FrameDecorator):
    """One Python frame, shown at the eval-loop frame that runs it. Its
    locals (`bt full`) come from a report made with locals, asked for only
    then."""

    def __init__(self, base, pyframe, show_address, elided=None, tid=None,
                 position=None):
        super().__init__(base)
        self._py = pyframe
        self._show_address = show_address
        self._elided = elided
        self._tid = tid
        self._position = position  # index among the thread's Python frames

    def elided(self):
        return iter(self._elided) if self._elided else None

    def function(self):
        name = self._py.get("qualname") or self._py.get("function") or "??"
        return name + PYTHON_LABEL

    def filename(self):
        return self._py.get("file")

    def line(self):
        return self._py.get("line")

    def address(self):
        return super().address() if self._show_address else None

    def frame_args(self):
        # gdb shows non-scalar arguments as "..." in `bt`: the reprs would
        # all be "...", so Python frames show theirs with their locals.
        return None

    def frame_locals(self):
        try:
            return _values(_python_locals(self._tid, self._position))
        except Exception:  # noqa: BLE001 -- never break `bt full`
            return None


def _python_locals(tid, position):
    """The locals of the position-th Python frame of thread tid."""
    if tid is None or position is None:
        return None
    doc = SESSION.report_json(locals=True)
    thread = next((t for t in doc.get("threads", ()) if t.get("tid") == tid), None)
    if thread is None:
        return None
    pyframes = [f for f in thread.get("frames", ()) if f.get("kind") == "python"]
    if position >= len(pyframes):
        return None
    return pyframes[position].get("locals")


def _literal(text):
    """Numbers as numbers (gdb prints them bare); anything else as the
    repr string."""
    for conv in (int, float):
        try:
            return conv(text)
        except (TypeError, ValueError):
            pass
    return text


def _values(items):
    """Arguments and locals from the library's JSON: [{"name", "value",
    "argument"}], value a short repr."""
    if not items:
        return None
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("name") is not None:
            out.append(_Value(str(item["name"]), _literal(item.get("value") or "?")))
    return out or None


class NativeFrameDecorator(FrameDecorator):
    """A native frame with the library's name and label, and the Python
    frames the library could not place at an eval-loop frame (unwinding
    stopped before reaching one) following it."""

    def __init__(self, base, name, elided=None):
        super().__init__(base)
        self._name = name
        self._elided = elided

    def function(self):
        return self._name if self._name else super().function()

    def elided(self):
        return iter(self._elided) if self._elided else None


def _native_name(gname, libframe):
    """The name to show for a native frame, or None to keep gdb's (and its
    `??` when it has none)."""
    lname = libframe.get("function")
    name = None
    if lname and (libframe.get("language") == "rust" or not gname):
        # The library's demangled, qualified path (gdb may show the bare
        # DWARF name, or a mangled one).
        name = lname
    if libframe.get("category") == "pyo3-trampoline":
        name = (name or gname or lname or "??") + PYO3_LABEL
    return name or None


def decorate(frame_iter):
    """The decorated frames of the selected thread (a generator): what the
    library's frame map says each gdb frame shows."""
    fmap = SESSION.frame_map()
    for item in frame_iter:
        frame = item.inferior_frame()
        known, first, shown = fmap.shows(frame.level())
        if not known:
            yield _unnamed(item, frame)
            continue
        if not shown:
            continue  # interpreter machinery the library hides
        position = fmap.python_position(first)
        if shown[0].get("kind") == "python":
            # The innermost Python frame stands for the eval-loop frame; the
            # others it runs (3.11+ runs nested Python calls in one C call)
            # follow it, indented, as gdb prints elided frames.
            outer = [PythonFrameDecorator(item, py, show_address=False,
                                          tid=fmap.tid, position=position + 1 + k)
                     for k, py in enumerate(shown[1:])]
            yield PythonFrameDecorator(item, shown[0], show_address=True,
                                       elided=outer, tid=fmap.tid, position=position)
            continue
        name = _native_name(_frame_name(frame), shown[0])
        tail = [PythonFrameDecorator(item, py, show_address=False, tid=fmap.tid,
                                     position=position + k)
                for k, py in enumerate(shown[1:])] or None
        if name or tail:
            yield NativeFrameDecorator(item, name, tail)
        else:
            yield _unnamed(item, frame)


def _unnamed(item, frame):
    """gdb prints a frame without any symbol as `??`, but as an empty name
    when a frame filter hands it back undecorated (gdb's FrameDecorator
    returns the pc for gdb to look up, which finds nothing): say `??`."""
    if _frame_name(frame) is None and frame.type() == gdb.NORMAL_FRAME:
        return NativeFrameDecorator(item, "??")
    return item


def _frame_name(frame):
    try:
        return frame.name()
    except gdb.error:
        return None


class MixstackFrameFilter:
    def __init__(self):
        self.name = "mixstack"
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    def filter(self, frame_iter):
        if SESSION.library_or_none() is None:
            return frame_iter
        # gdb hands an iterator it has not consumed: keep a copy so the
        # frames can be given back undecorated whatever happens.
        frame_iter, backup = itertools.tee(frame_iter)
        try:
            return iter(list(decorate(frame_iter)))
        except (Exception, KeyboardInterrupt) as e:  # never break `bt`
            if _debug():
                import traceback
                traceback.print_exc()
            else:
                _note_failure(e)
            return backup


_reported = set()


def _note_failure(e):
    """Say once per stop why `bt` shows no Python frames."""
    key = (SESSION.generation, str(e))
    if key in _reported:
        return
    _reported.add(key)
    message = str(e)
    if not message.startswith("mixstack: "):
        message = "mixstack: frame filter: %s" % (message or type(e).__name__)
    gdb.write(message + " (bt shows gdb's own frames)\n", gdb.STDERR)


FILTER = None


def install():
    global FILTER
    if FILTER is None or gdb.frame_filters.get("mixstack") is not FILTER:
        FILTER = MixstackFrameFilter()
    return FILTER
