"""gdb's frames of a thread handed to the library's frame map
(ms_frame_map_*, core/navigate/): the library matches them to its own,
numbers its frames as gdb does, and navigates Python frames. Nothing here
matches frames or knows CPython.
"""
import gdb

from . import lib as L
from .gdbtarget import select_level

_INLINE = getattr(gdb, "INLINE_FRAME", 2)
_TAILCALL = getattr(gdb, "TAILCALL_FRAME", 3)
MAX_FRAMES = 4096


def selected_tid():
    thread = gdb.selected_thread()
    if thread is None:
        return None
    return thread.ptid[1] or thread.ptid[0]


def selected_level():
    try:
        return gdb.selected_frame().level()
    except gdb.error:
        return 0


def _frame_flags(frame):
    kind = frame.type()
    if kind == _INLINE:
        return L.MS_DEBUGGER_FRAME_INLINED
    if kind == _TAILCALL:
        return L.MS_DEBUGGER_FRAME_ARTIFICIAL
    return 0


def _name(frame):
    try:
        return frame.name()
    except gdb.error:
        return None


def gdb_frames():
    """(pc, flags, name) of the selected thread's frames as gdb numbers
    them, innermost first."""
    out = []
    frame = gdb.newest_frame()
    while frame is not None and len(out) < MAX_FRAMES:
        out.append((frame.pc(), _frame_flags(frame), _name(frame)))
        try:
            frame = frame.older()
        except gdb.error:
            break
    return out


def thread_frames(tid):
    """gdb_frames() of thread tid; the selected thread and frame are kept."""
    if tid == selected_tid():
        return gdb_frames()
    orig, level = gdb.selected_thread(), selected_level()
    try:
        for t in gdb.selected_inferior().threads():
            if (t.ptid[1] or t.ptid[0]) == tid:
                t.switch()
                return gdb_frames()
        return []
    finally:
        if orig is not None and orig.is_valid():
            orig.switch()
            select_level(level)


class FrameMap:
    """The library's frame map of one thread, with the report's JSON frames
    of that thread (the same frames, in the same order)."""

    def __init__(self, library, report, tid, doc_thread):
        self.library = library
        self.tid = tid
        self.frames = doc_thread.get("frames", []) if doc_thread else []
        self.handle = library.frame_map_create(report, tid, thread_frames(tid))

    def destroy(self):
        self.library.frame_map_destroy(self.handle)
        self.handle = None

    def shows(self, level):
        """(known, first index, [report frames]) for gdb frame level."""
        known, first, count = self.library.frame_map_shows(self.handle, level)
        return known, first, self.frames[first:first + count]

    def python_position(self, index):
        """The Python frame number (0 innermost) of report frame index."""
        return sum(1 for f in self.frames[:index] if f.get("kind") == "python")

    def sync(self):
        self.library.frame_map_sync(self.handle, selected_level())

    def current_debugger_frame(self):
        """gdb's frame running the current Python frame, None when none."""
        return self.library.frame_map_current_debugger_frame(self.handle)

    def follow(self, leader):
        """Make leader's current Python frame this map's current one."""
        self.library.frame_map_follow(self.handle, leader.handle)

    def move(self, count):
        return self.library.frame_map_move(self.handle, count)

    def format_stack(self, flags=0):
        return self.library.frame_map_format_stack(self.handle, flags)

    def format_current(self):
        return self.library.frame_map_format_current(self.handle)

    def format_list(self, first=0, last=0):
        return self.library.frame_map_format_list(self.handle, first, last)

    def format_locals(self):
        return self.library.frame_map_format_locals(self.handle)

    def lookup(self, name):
        return self.library.frame_map_lookup(self.handle, name)
