"""Python frames in gdb's own `bt`: a frame filter that puts the Python
frames an eval-loop frame runs in its place, drops the interpreter frames
the library's mixed stack hides, labels PyO3 trampolines and gives Rust
frames the library's demangled names. On any error it hands gdb its frames
undecorated: it must never break `bt`.
"""
import itertools
import os
import re

import gdb
from gdb.FrameDecorator import FrameDecorator

from . import frames as F
from .session import SESSION

PYO3_LABEL = " [pyo3 trampoline]"
PYTHON_LABEL = " [python]"

_MANGLED = re.compile(r"^(_ZN|_R[A-Z_]|__ZN)|::h[0-9a-f]{16}(\b|$)|\$LT\$|\$u7b\$")


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
    thread = F.thread_doc(doc, tid)
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


def _native_name(gframe, libframe):
    """The name to show for a native frame, or None to keep gdb's."""
    if libframe is None:
        return None
    gname = gframe.name
    lname = libframe.get("function")
    name = None
    if lname and libframe.get("language") == "rust":
        if not gname or _MANGLED.search(gname):
            name = lname
        elif F.same_name(lname, gname):
            name = lname  # the qualified path, as the library prints it
    elif lname and not gname:
        name = lname
    if libframe.get("category") == "pyo3-trampoline":
        name = (name or gname or lname or "??") + PYO3_LABEL
    return name


def decorate(frame_iter):
    """The decorated frames of the selected thread (a generator)."""
    model, doc = F.current_model()
    if model is None or not doc:
        yield from frame_iter
        return
    items = list(frame_iter)
    by_level = {g.level: g for g in model.gframes}
    positions = {id(py): k for k, (py, _) in enumerate(model.python)}
    # Which gdb frames are shown: groups the library hides vanish, and so do
    # tail-call frames between hidden groups.
    def visible_level(level):
        g = by_level.get(level)
        if g is None:
            return True
        if g.group is None:
            return None  # decided by its neighbours
        if not model.group_known(g.group):
            return True
        if g.physical and model.eval_python(g) is not None:
            return True
        lib = model.lib_frame_for(g)
        if lib is not None:
            return lib.get("index") in model.shown_native
        return model.group_shown(g.group)

    decisions = [visible_level(item.inferior_frame().level()) for item in items]
    for k, d in enumerate(decisions):
        if d is None:
            inner = next((decisions[x] for x in range(k - 1, -1, -1)
                          if decisions[x] is not None), True)
            outer = next((decisions[x] for x in range(k + 1, len(decisions))
                          if decisions[x] is not None), True)
            decisions[k] = inner and outer
    for item, shown in zip(items, decisions):
        if not shown:
            continue
        level = item.inferior_frame().level()
        g = by_level.get(level)
        if g is None:
            yield item
            continue
        pyframes = model.eval_python(g)
        if pyframes:
            # The innermost Python frame stands for the eval-loop frame; the
            # others it runs (3.11+ runs nested Python calls in one C call)
            # follow it, indented, as gdb prints elided frames.
            outer = [PythonFrameDecorator(item, py, show_address=False,
                                          tid=model.tid, position=positions.get(id(py)))
                     for py in pyframes[1:]]
            yield PythonFrameDecorator(item, pyframes[0], show_address=True,
                                       elided=outer, tid=model.tid,
                                       position=positions.get(id(pyframes[0])))
            continue
        name = _native_name(g, model.lib_frame_for(g))
        tail = model.tail_python(g)
        if name or tail:
            elided = [PythonFrameDecorator(item, py, show_address=False, tid=model.tid,
                                           position=positions.get(id(py)))
                      for py in tail] if tail else None
            yield NativeFrameDecorator(item, name, elided)
        else:
            yield item


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
