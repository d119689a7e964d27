"""The per-stop state: the library, the target built from gdb, and the
reports made from it, cached until the inferior runs, stops, exits or loads
code, so repeated commands (and gdb's own `bt`) are instant."""
import signal as _signal

import gdb

from . import lib as L
from .gdbtarget import GdbTarget, Interrupted

PREFIX = "mixstack: "


class Error(gdb.GdbError):
    """A one-line error for the user."""

    def __init__(self, message):
        super().__init__(PREFIX + message)


NO_PYTHON = "no Python interpreter found in this process"


class Session:
    def __init__(self):
        self._library = None
        self._load_error = None
        self.generation = 0
        self._target = None
        self._reports = {}   # options tuple -> (handle, json doc or None)
        self._key = None
        self.last_stop_signal = None  # (signo, tid) of the last signal stop
        self._maps = {}      # (tid, locals) -> frames.FrameMap

    # The library -------------------------------------------------------
    def library(self):
        if self._library is None:
            if self._load_error is not None:
                raise Error(self._load_error)
            try:
                self._library = L.Library()
            except L.LoadError as e:
                self._load_error = str(e)
                raise Error(self._load_error)
            except (OSError, AttributeError) as e:
                self._load_error = "cannot use libmixstack: %s" % e
                raise Error(self._load_error)
        return self._library

    def library_or_none(self):
        try:
            return self.library()
        except gdb.GdbError:
            return None

    # Cache --------------------------------------------------------------
    def invalidate(self, *_args):
        for fmap in self._maps.values():
            fmap.destroy()
        self._maps = {}
        for handle, _ in self._reports.values():
            if self._library is not None:
                self._library.report_destroy(handle)
        self._reports = {}
        if self._target is not None:
            self._target.destroy()
            self._target = None
        self._key = None
        self.generation += 1

    def on_stop(self, event):
        self.invalidate()
        self.last_stop_signal = None
        if isinstance(event, gdb.SignalEvent):
            name = getattr(event, "stop_signal", None)
            signo = getattr(_signal.Signals, "__members__", {}).get(name)
            try:
                tid = gdb.selected_thread().ptid[1]
            except (gdb.error, AttributeError):
                tid = 0
            if signo is not None and tid:
                self.last_stop_signal = (int(signo), tid)

    def _current_key(self):
        inferior = gdb.selected_inferior()
        try:
            ptids = tuple(sorted(t.ptid for t in inferior.threads()))
        except gdb.error:
            ptids = ()
        return (inferior.num, inferior.pid, ptids,
                gdb.current_progspace().filename)

    def inferior(self):
        """The selected inferior, when it is a process (or a core) and the
        library can be used on it."""
        self.library()
        inferior = gdb.selected_inferior()
        if not inferior.pid or not inferior.threads():
            raise Error("no process: run a program, attach to one (gdb -p) "
                        "or open a core file first")
        try:
            arch = inferior.architecture().name()
        except (gdb.error, AttributeError):
            arch = None
        if arch and arch != "i386:x86-64":
            raise Error("%s processes are not supported (x86-64 only)" % arch)
        return inferior

    def target(self):
        key = self._current_key()
        if self._key != key:
            self.invalidate()
        if self._target is None:
            inferior = self.inferior()
            library = self.library()
            try:
                self._target = GdbTarget(library, inferior).build(
                    self.last_stop_signal)
            except Interrupted:
                raise Error("interrupted")
            except KeyboardInterrupt:
                raise Error("interrupted")
            except L.LibraryError as e:
                raise Error(e.message)
            self._key = key
        return self._target

    def report(self, mode=L.MS_STACK_MIXED, all_frames=False, locals=False):
        """The report handle for these options (cached for this stop)."""
        options = (mode, bool(all_frames), bool(locals))
        cached = self._reports.get(options)
        if cached is not None and self._key == self._current_key():
            return cached[0]
        target = self.target()
        library = self.library()
        reader = target.reader
        try:
            handle = library.report_create(target.handle, mode=mode,
                                           all_frames=all_frames, locals=locals)
        except KeyboardInterrupt:
            reader.interrupted = True
            handle = None
        except L.LibraryError as e:
            if reader.interrupted or e.code == L.MS_ERROR_INTERRUPTED:
                self.invalidate()
                raise Error("interrupted")
            raise Error(e.message)
        if reader.interrupted:
            # The reads failed on purpose once Ctrl-C came: the report is
            # not worth keeping, and neither is the target.
            library.report_destroy(handle)
            self.invalidate()
            raise Error("interrupted")
        self._reports[options] = (handle, None)
        return handle

    def report_json(self, mode=L.MS_STACK_MIXED, all_frames=False, locals=False):
        """The whole report as parsed JSON (cached)."""
        handle = self.report(mode, all_frames, locals)
        options = (mode, bool(all_frames), bool(locals))
        doc = self._reports[options][1]
        if doc is None:
            try:
                doc = self.library().report_json(handle)
            except L.LibraryError as e:
                raise Error(e.message)
            except ValueError as e:
                raise Error("the library printed JSON that does not parse: %s" % e)
            self._reports[options] = (handle, doc)
        return doc

    def format(self, section, fmt=L.MS_FORMAT_TEXT, tids=(), **report_options):
        handle = self.report(**report_options)
        try:
            return self.library().report_format_section(handle, section, fmt, tids)
        except L.LibraryError as e:
            raise Error(e.message)

    def frame_map(self, tid=None, **report_options):
        """The library's frame map of thread tid (the selected thread by
        default) against gdb's frames, synced with gdb's selected frame.
        One per thread and stop: it holds the Python frame navigation.
        The map of a report with locals follows the plain one's current
        Python frame."""
        from . import frames as F
        if tid is None:
            tid = F.selected_tid()
            if tid is None:
                raise Error("no thread selected")
        options = dict(mode=L.MS_STACK_MIXED, all_frames=False, locals=False)
        options.update(report_options)
        report = self.report(**options)
        key = (tid, tuple(sorted(options.items())))
        fmap = self._maps.get(key)
        if fmap is None:
            doc = self.report_json(**options)
            thread = next((t for t in doc.get("threads", ()) if t.get("tid") == tid), None)
            if thread is None:
                raise Error("thread %d is not in the report" % tid)
            try:
                fmap = F.FrameMap(self.library(), report, tid, thread)
            except L.LibraryError as e:
                raise Error(e.message)
            self._maps[key] = fmap
        if tid == F.selected_tid():
            fmap.sync()
        default = dict(mode=L.MS_STACK_MIXED, all_frames=False, locals=False)
        if options != default and options["mode"] != L.MS_STACK_NATIVE_ONLY:
            fmap.follow(self.frame_map(tid))
        return fmap

    def has_python(self):
        return self.report_json().get("python") is not None

    def require_python(self):
        if not self.has_python():
            raise Error(NO_PYTHON)


SESSION = Session()
