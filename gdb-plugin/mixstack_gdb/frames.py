"""Matching the library's frames to gdb's frames of one thread.

The library numbers a thread's native frames (its native-only stack,
inlined frames included); gdb numbers its own (inline and tail-call frames
included, which the two may not see alike). Both see the same physical
frames, so those are matched by pc; every gdb frame then belongs to the
group of the physical frame it shares, and every library frame to the
group of the physical frame its pc is in. Which frames to show, and which
Python frames an eval-loop frame runs, come from the library's mixed report
(its `native_index` fields); nothing here knows CPython.
"""
import re

import gdb

from . import lib as L
from .session import SESSION

_VIRTUAL_TYPES = {getattr(gdb, "INLINE_FRAME", 2), getattr(gdb, "TAILCALL_FRAME", 3)}


def _int_pc(value):
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return None


class GdbFrame:
    __slots__ = ("level", "frame", "pc", "type", "name", "physical", "group")

    def __init__(self, level, frame):
        self.level = level
        self.frame = frame
        self.pc = frame.pc()
        self.type = frame.type()
        try:
            self.name = frame.name()
        except gdb.error:
            self.name = None
        # True for frames gdb unwound from registers (not inline / tail call).
        self.physical = self.type not in _VIRTUAL_TYPES
        self.group = None  # level of the physical frame it belongs to


def gdb_frames(limit=4096):
    """The selected thread's frames as gdb numbers them."""
    out = []
    frame = gdb.newest_frame()
    level = 0
    while frame is not None and level < limit:
        out.append(GdbFrame(level, frame))
        try:
            frame = frame.older()
        except gdb.error:
            break
        level += 1
    # Inline frames belong to the physical frame below them (outwards);
    # tail-call frames stand alone.
    pending = []
    for f in out:
        if f.type == getattr(gdb, "INLINE_FRAME", 2):
            pending.append(f)
            continue
        f.group = f.level if f.physical else None
        for p in pending:
            p.group = f.level if f.physical else None
        pending = []
    return out


def thread_doc(doc, tid):
    for t in doc.get("threads", ()):
        if t.get("tid") == tid:
            return t
    return None


def align(lib_frames, gframes):
    """Map library native indices to gdb group levels: {index: level}."""
    lib_phys = [(f["index"], _int_pc(f["pc"])) for f in lib_frames
                if f.get("kind") == "native" and not f.get("inlined")]
    g_phys = [(f.level, f.pc) for f in gframes if f.physical]
    mapping = {}
    i = j = 0
    while i < len(lib_phys) and j < len(g_phys):
        if lib_phys[i][1] == g_phys[j][1]:
            mapping[lib_phys[i][0]] = g_phys[j][0]
            i += 1
            j += 1
            continue
        # One side has frames the other lacks: resync on the nearest pc.
        ahead_g = next((k for k in range(j + 1, min(j + 4, len(g_phys)))
                        if g_phys[k][1] == lib_phys[i][1]), None)
        ahead_l = next((k for k in range(i + 1, min(i + 4, len(lib_phys)))
                        if lib_phys[k][1] == g_phys[j][1]), None)
        if ahead_g is not None and (ahead_l is None or ahead_g - j <= ahead_l - i):
            j = ahead_g
        elif ahead_l is not None:
            i = ahead_l
        else:
            i += 1
            j += 1
    # Inlined library frames belong to the physical frame after them.
    pending = []
    for f in lib_frames:
        if f.get("kind") != "native":
            continue
        if f.get("inlined"):
            pending.append(f["index"])
            continue
        level = mapping.get(f["index"])
        for p in pending:
            if level is not None:
                mapping[p] = level
        pending = []
    return mapping


class ThreadModel:
    """For the selected thread: gdb's frames, the library's native frames,
    the mixed stack, and how they meet."""

    def __init__(self, tid, native_thread, mixed_thread, gframes):
        self.tid = tid
        self.gframes = gframes
        self.native = {f["index"]: f for f in native_thread.get("frames", ())}
        self.lib_to_level = align(native_thread.get("frames", ()), gframes)
        self.level_to_lib = {}
        for index, level in self.lib_to_level.items():
            self.level_to_lib.setdefault(level, []).append(index)
        self.inline_match = self._match_inline()
        mixed = mixed_thread.get("frames", ()) if mixed_thread else ()
        self.shown_native = {f.get("native_index") for f in mixed
                             if f.get("kind") == "native"
                             and f.get("native_index") is not None}
        # Python frames (innermost first) with the eval-loop native index
        # running them. Groups the library could not pair with an eval-loop
        # frame go with the next paired group (the library puts them just
        # inside it); when none follows, with the native frame shown just
        # before them (e.g. where unwinding stopped), as "tail" frames.
        self.python = []
        self.python_by_eval = {}
        self.tail_anchor = None
        self.tail = []
        pending, anchor, last_native = [], None, None
        for f in mixed:
            if f.get("kind") != "python":
                if f.get("native_index") is not None:
                    last_native = f["native_index"]
                continue
            index = f.get("native_index")
            if index is None:
                if not pending:
                    anchor = last_native
                pending.append(f)
                continue
            for p in pending:
                self.python.append((p, index))
                self.python_by_eval.setdefault(index, []).append(p)
            pending = []
            self.python.append((f, index))
            self.python_by_eval.setdefault(index, []).append(f)
        if pending:
            self.tail_anchor, self.tail = anchor, pending
            for p in pending:
                self.python.append((p, anchor))

    def _match_inline(self):
        """gdb inline frame level -> library inlined frame index, matched
        by name in order within each physical frame's group (either side
        may have inline frames the other lacks)."""
        out = {}
        by_group = {}
        for g in self.gframes:
            if not g.physical and g.group is not None:
                by_group.setdefault(g.group, []).append(g)
        for group, ginl in by_group.items():
            lib = sorted(i for i in self.level_to_lib.get(group, ())
                         if self.native.get(i, {}).get("inlined"))
            j = 0
            for g in ginl:
                for k in range(j, len(lib)):
                    if same_name(self.native[lib[k]].get("function"), g.name):
                        out[g.level] = lib[k]
                        j = k + 1
                        break
        return out

    def level_of(self, native_index):
        return self.lib_to_level.get(native_index) if native_index is not None else None

    def physical_lib(self, level):
        """The library's frame for gdb's physical frame at level, or None."""
        for index in self.level_to_lib.get(level, ()):
            f = self.native.get(index)
            if f is not None and not f.get("inlined"):
                return f
        return None

    def lib_frame_for(self, gframe):
        """The library frame that is this gdb frame, when one is."""
        if gframe.group is None:
            return None
        if gframe.physical:
            return self.physical_lib(gframe.level)
        index = self.inline_match.get(gframe.level)
        return self.native.get(index) if index is not None else None

    def eval_python(self, gframe):
        """Python frames run by this gdb frame when it is an eval-loop frame
        the library paired with them."""
        if gframe.group is None or not gframe.physical:
            return None
        for index in self.level_to_lib.get(gframe.level, ()):
            f = self.native.get(index)
            if f is not None and not f.get("inlined") and index in self.python_by_eval:
                return self.python_by_eval[index]
        return None

    def tail_python(self, gframe):
        """Unpaired Python frames shown after this gdb frame, if any."""
        if not self.tail or self.tail_anchor is None or gframe.group is None \
                or not gframe.physical:
            return None
        if self.tail_anchor in self.level_to_lib.get(gframe.level, ()):
            return self.tail
        return None

    def group_shown(self, level):
        """Whether the library shows any non-eval frame of this group."""
        for index in self.level_to_lib.get(level, ()):
            if index in self.shown_native:
                return True
        return False

    def group_known(self, level):
        return bool(self.level_to_lib.get(level))


_CLONE_SUFFIX = re.compile(r"\.(llvm|cold|lto_priv|constprop|isra|part|clone)\b.*$")


def same_name(lib_name, gdb_name):
    """Whether the library's name (qualified, compiler clone suffixes kept)
    and gdb's (often the bare DWARF name) are one function's."""
    if not lib_name or not gdb_name:
        return False
    if lib_name == gdb_name:
        return True
    lib_name = _CLONE_SUFFIX.sub("", lib_name)
    gdb_name = _CLONE_SUFFIX.sub("", gdb_name)
    if lib_name == gdb_name:
        return True
    base = gdb_name.split("<", 1)[0]
    return lib_name.endswith("::" + gdb_name) or lib_name.endswith("::" + base) \
        or lib_name.split("<", 1)[0].endswith("::" + base)


def selected_tid():
    thread = gdb.selected_thread()
    if thread is None:
        return None
    return thread.ptid[1] or thread.ptid[0]


def current_model():
    """The model of the selected thread (reports cached by the session)."""
    tid = selected_tid()
    native = SESSION.report_json(mode=L.MS_STACK_NATIVE_ONLY)
    mixed = SESSION.report_json()
    nthread = thread_doc(native, tid)
    if nthread is None:
        return None, mixed
    return ThreadModel(tid, nthread, thread_doc(mixed, tid), gdb_frames()), mixed
