"""ctypes bindings for libmixstack's public API (core/include/mixstack/mixstack.h).

This module does not import gdb: it is the plain binding, usable (and
tested) outside the debugger. It mirrors no structure of the library:
options are set by name (ms_options_set()) in structures the library
allocates, errors are read through accessors and reports as JSON, so the
library can grow without this module knowing its layouts. The library's
binary interface (ms_abi_version()) and version are checked at load.
"""
import ctypes
import ctypes.util
import json
import os

# enum ms_error_code
MS_ERROR_NO_MEMORY = 1
MS_ERROR_INVALID_ARGUMENT = 2
MS_ERROR_OS = 3
MS_ERROR_FAULT = 4
MS_ERROR_BAD_INPUT = 5
MS_ERROR_NOT_FOUND = 6
MS_ERROR_UNSUPPORTED = 7
MS_ERROR_LIBRARY = 8
MS_ERROR_INTERRUPTED = 9
MS_ERROR_PERMISSION = 10

# enum ms_target_kind
MS_TARGET_CORE, MS_TARGET_PID, MS_TARGET_DEBUGGER = range(3)
# enum ms_frame_kind
MS_FRAME_NATIVE, MS_FRAME_PYTHON = range(2)
# enum ms_stack_mode
MS_STACK_MIXED, MS_STACK_PYTHON_ONLY, MS_STACK_NATIVE_ONLY = range(3)
# enum ms_format
MS_FORMAT_TEXT, MS_FORMAT_JSON = range(2)
# enum ms_section
(MS_SECTION_REPORT, MS_SECTION_STACKS, MS_SECTION_THREADS, MS_SECTION_GIL,
 MS_SECTION_ERRORS, MS_SECTION_PANIC, MS_SECTION_PHASE, MS_SECTION_TASKS) = range(8)

# Their names for ms_options_set().
_MODES = ("mixed", "python-only", "native-only")
_FORMATS = ("text", "json")
_SECTIONS = ("report", "stacks", "threads", "gil", "errors", "panic", "phase",
             "tasks")

MS_NUM_REGS = 17
# Flags of ms_frame_map_add_debugger_frame().
MS_DEBUGGER_FRAME_INLINED = 1
MS_DEBUGGER_FRAME_ARTIFICIAL = 2
# Flags of ms_frame_map_format_stack().
MS_FRAME_MAP_PYTHON_ONLY = 1
MS_FRAME_MAP_SOURCE = 2
# The DWARF order of the registers a debugger hands over.
REGISTER_NAMES = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")

pid_t = ctypes.c_int

# The binary interface this binding is written for (MS_ABI_VERSION of
# mixstack.h): a library with another one is refused at load.
MS_ABI_VERSION = 1


ReadMemoryFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64,
                                ctypes.c_void_p, ctypes.c_size_t)

# Every structure of the library is opaque here: errors are read with
# ms_error_code()/_errnum()/_message(), reports as JSON, options set by name.
_ErrorPtr = ctypes.c_void_p


class LibraryError(Exception):
    """A struct ms_error turned into a Python exception."""

    def __init__(self, code, message, errnum=0):
        super().__init__(message)
        self.code = code
        self.errnum = errnum
        self.message = message


class LoadError(Exception):
    """libmixstack could not be found or loaded."""


def _candidates():
    """Where libmixstack may be, in order: $MIXSTACK_LIB, the paths configured
    at build/install time, then the system's library search."""
    env = os.environ.get("MIXSTACK_LIB")
    if env:
        return [("MIXSTACK_LIB", env)]
    out = []
    try:
        from . import _paths
    except ImportError:
        _paths = None
    if _paths is not None:
        here = os.path.dirname(os.path.abspath(__file__))
        for attr in ("LIBRARY_RELATIVE", "LIBRARY"):
            value = getattr(_paths, attr, None)
            if value:
                path = value if os.path.isabs(value) else os.path.normpath(
                    os.path.join(here, value))
                out.append(("configured", path))
    out.append(("system", None))  # looked up only when reached
    return out


def _load_mode(path):
    """dlopen flags for libmixstack at path. A wheel's libmixstack comes with
    its own libdw and libelf (in mixstack.libs, renamed by auditwheel):
    they must bind to each other, not to the libelf gdb itself may have
    loaded (another version: libdw uses libelf's internals), so their own
    symbols come first (RTLD_DEEPBIND). Elsewhere the default (DEEPBIND
    is incompatible with sanitizer runtimes)."""
    wheel_libs = os.path.join(os.path.dirname(os.path.abspath(path)),
                              os.pardir, os.pardir, "mixstack.libs")
    if os.path.isdir(wheel_libs):
        return ctypes.DEFAULT_MODE | getattr(os, "RTLD_DEEPBIND", 0)
    return ctypes.DEFAULT_MODE


def load_library():
    """Load libmixstack; returns (CDLL, path). Raises LoadError."""
    tried = []
    for origin, path in _candidates():
        if origin == "system":
            path = ctypes.util.find_library("mixstack")
            if not path:
                continue
        if origin == "configured" and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            return ctypes.CDLL(path, mode=_load_mode(path)), path
        except OSError as e:
            if origin == "MIXSTACK_LIB":
                raise LoadError("cannot load MIXSTACK_LIB=%s: %s" % (path, e))
            tried.append("%s (%s)" % (path, e))
    raise LoadError("libmixstack not found (tried: %s); set MIXSTACK_LIB to "
                    "the path of libmixstack.so" % (", ".join(tried) or "nothing"))


def _bytes(s):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return os.fsencode(s)


class Library:
    """The functions of libmixstack, with errors raised as LibraryError."""

    def __init__(self, cdll=None, path=None):
        if cdll is None:
            cdll, path = load_library()
        self.cdll = cdll
        self.path = path
        self._libc = ctypes.CDLL(None)
        self._libc.free.argtypes = [ctypes.c_void_p]
        self._libc.free.restype = None
        L = cdll
        try:
            abi = L.ms_abi_version
        except AttributeError:
            raise LoadError("%s is libmixstack without ms_abi_version(): too old "
                            "for this plugin" % path)
        abi.argtypes = []
        abi.restype = ctypes.c_uint
        if abi() != MS_ABI_VERSION:
            raise LoadError("%s has binary interface %d; this plugin needs %d"
                            % (path, abi(), MS_ABI_VERSION))
        L.ms_error_destroy.argtypes = [_ErrorPtr]
        L.ms_error_destroy.restype = None
        L.ms_error_code.argtypes = [_ErrorPtr]
        L.ms_error_code.restype = ctypes.c_int
        L.ms_error_errnum.argtypes = [_ErrorPtr]
        L.ms_error_errnum.restype = ctypes.c_int
        L.ms_error_message.argtypes = [_ErrorPtr]
        L.ms_error_message.restype = ctypes.c_char_p
        L.ms_target_create_debugger.argtypes = [
            ReadMemoryFn, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p)]
        L.ms_target_create_debugger.restype = _ErrorPtr
        L.ms_target_add_thread.argtypes = [
            ctypes.c_void_p, pid_t, ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_uint64), ctypes.c_uint64]
        L.ms_target_add_thread.restype = _ErrorPtr
        L.ms_target_add_mapping.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_uint64,
            ctypes.c_uint64]
        L.ms_target_add_mapping.restype = _ErrorPtr
        L.ms_target_add_module.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint64]
        L.ms_target_add_module.restype = _ErrorPtr
        L.ms_target_set_process.argtypes = [
            ctypes.c_void_p, pid_t, ctypes.c_char_p, ctypes.c_int, pid_t]
        L.ms_target_set_process.restype = _ErrorPtr
        L.ms_target_add_region.argtypes = [
            ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_bool]
        L.ms_target_add_region.restype = _ErrorPtr
        L.ms_target_destroy.argtypes = [ctypes.c_void_p]
        L.ms_target_destroy.restype = None
        L.ms_signal_is_crash.argtypes = [ctypes.c_int, ctypes.c_bool]
        L.ms_signal_is_crash.restype = ctypes.c_bool
        L.ms_report_create.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p)]
        L.ms_report_create.restype = _ErrorPtr
        L.ms_report_destroy.argtypes = [ctypes.c_void_p]
        L.ms_report_destroy.restype = None
        L.ms_report_format_section.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p)]
        L.ms_report_format_section.restype = _ErrorPtr
        L.ms_version.argtypes = []
        L.ms_version.restype = ctypes.c_char_p
        L.ms_options_create.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        L.ms_options_create.restype = _ErrorPtr
        L.ms_options_destroy.argtypes = [ctypes.c_void_p]
        L.ms_options_destroy.restype = None
        L.ms_options_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        L.ms_options_set.restype = _ErrorPtr
        for name in ("ms_options_target", "ms_options_report", "ms_options_print"):
            getattr(L, name).argtypes = [ctypes.c_void_p]
            getattr(L, name).restype = ctypes.c_void_p
        self._check_version()
        L.ms_signal_name.argtypes = [ctypes.c_int]
        L.ms_signal_name.restype = ctypes.c_char_p
        # Frame maps (debugger frontends).
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        L.ms_frame_map_create.argtypes = [vp, pid_t, ctypes.POINTER(vp)]
        L.ms_frame_map_create.restype = _ErrorPtr
        L.ms_frame_map_add_debugger_frame.argtypes = [
            vp, ctypes.c_uint64, ctypes.c_uint, ctypes.c_char_p]
        L.ms_frame_map_add_debugger_frame.restype = _ErrorPtr
        L.ms_frame_map_destroy.argtypes = [vp]
        L.ms_frame_map_destroy.restype = None
        L.ms_frame_map_debugger_frame.argtypes = [vp, sz]
        L.ms_frame_map_debugger_frame.restype = ctypes.c_long
        L.ms_frame_map_shows.argtypes = [vp, sz, ctypes.POINTER(sz),
                                         ctypes.POINTER(sz)]
        L.ms_frame_map_shows.restype = ctypes.c_bool
        L.ms_frame_map_n_python.argtypes = [vp]
        L.ms_frame_map_n_python.restype = sz
        L.ms_frame_map_python_frame.argtypes = [vp, sz]
        L.ms_frame_map_python_frame.restype = ctypes.c_long
        L.ms_frame_map_sync.argtypes = [vp, sz]
        L.ms_frame_map_sync.restype = None
        L.ms_frame_map_current_python.argtypes = [vp]
        L.ms_frame_map_current_python.restype = ctypes.c_long
        L.ms_frame_map_select_python.argtypes = [vp, sz]
        L.ms_frame_map_select_python.restype = _ErrorPtr
        L.ms_frame_map_current_debugger_frame.argtypes = [vp]
        L.ms_frame_map_current_debugger_frame.restype = ctypes.c_long
        L.ms_frame_map_follow.argtypes = [vp, vp]
        L.ms_frame_map_follow.restype = None
        L.ms_frame_map_move.argtypes = [vp, ctypes.c_long, ctypes.POINTER(sz)]
        L.ms_frame_map_move.restype = _ErrorPtr
        for name in ("ms_frame_map_format_current", "ms_frame_map_format_locals"):
            getattr(L, name).argtypes = [vp, ctypes.POINTER(vp)]
            getattr(L, name).restype = _ErrorPtr
        L.ms_frame_map_format_stack.argtypes = [vp, ctypes.c_uint, ctypes.POINTER(vp)]
        L.ms_frame_map_format_stack.restype = _ErrorPtr
        L.ms_frame_map_format_list.argtypes = [vp, ctypes.c_long, ctypes.c_long,
                                               ctypes.POINTER(vp)]
        L.ms_frame_map_format_list.restype = _ErrorPtr
        L.ms_frame_map_lookup.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(vp)]
        L.ms_frame_map_lookup.restype = _ErrorPtr

    def _check_version(self):
        try:
            from . import _paths
        except ImportError:
            return
        want = getattr(_paths, "VERSION", None)
        got = (self.cdll.ms_version() or b"").decode("ascii", "replace")
        if want and got != want:
            raise LoadError("%s is libmixstack %s; this plugin is for %s"
                            % (self.path, got, want))

    def _check(self, err):
        if not err:
            return
        L = self.cdll
        message = (L.ms_error_message(err) or b"unknown error").decode(
            "utf-8", "replace")
        code, errnum = L.ms_error_code(err), L.ms_error_errnum(err)
        L.ms_error_destroy(err)
        raise LibraryError(code, message, errnum)

    # Targets --------------------------------------------------------------
    def _options(self, settings):
        """An ms_options handle with settings ((name, value), value None:
        left out) applied; the caller destroys it."""
        handle = ctypes.c_void_p()
        self._check(self.cdll.ms_options_create(ctypes.byref(handle)))
        try:
            for name, value in settings:
                if value is None:
                    continue
                if isinstance(value, bool):
                    value = "1" if value else "0"
                elif isinstance(value, int):
                    value = str(value)
                self._check(self.cdll.ms_options_set(handle, name.encode(),
                                                     _bytes(value)))
        except BaseException:
            self.cdll.ms_options_destroy(handle)
            raise
        return handle.value

    def target_create_debugger(self, read_memory, executable=None,
                               sysroot=None, library_paths=(),
                               no_debuginfod=False):
        """read_memory is a ReadMemoryFn the caller keeps alive for as long as
        the target lives. Returns the target handle (an int)."""
        settings = [("executable", executable), ("sysroot", sysroot),
                    ("no-debuginfod", bool(no_debuginfod))]
        settings += [("library-path", p) for p in library_paths]
        opts = self._options(settings)
        try:
            ret = ctypes.c_void_p()
            self._check(self.cdll.ms_target_create_debugger(
                read_memory, None, self.cdll.ms_options_target(opts),
                ctypes.byref(ret)))
            return ret.value
        finally:
            self.cdll.ms_options_destroy(opts)

    def target_add_thread(self, target, tid, name, regs, fs_base):
        if len(regs) != MS_NUM_REGS:
            raise ValueError("%d registers, not %d" % (len(regs), MS_NUM_REGS))
        arr = (ctypes.c_uint64 * MS_NUM_REGS)(*[r & 0xFFFFFFFFFFFFFFFF for r in regs])
        self._check(self.cdll.ms_target_add_thread(
            target, tid, _bytes(name), arr, fs_base & 0xFFFFFFFFFFFFFFFF))

    def target_add_mapping(self, target, path, start, end, file_offset):
        self._check(self.cdll.ms_target_add_mapping(
            target, _bytes(path), start, end, file_offset))

    def target_add_module(self, target, path, section, address):
        self._check(self.cdll.ms_target_add_module(
            target, _bytes(path), _bytes(section), address))

    def target_add_region(self, target, start, end, writable):
        self._check(self.cdll.ms_target_add_region(target, start, end,
                                                   bool(writable)))

    def signal_is_crash(self, signo, in_core):
        """Whether signo is a crash (the library's rule, shared by every
        frontend)."""
        return bool(self.cdll.ms_signal_is_crash(int(signo), bool(in_core)))

    def target_set_process(self, target, pid, executable, signo, signal_tid):
        self._check(self.cdll.ms_target_set_process(
            target, pid, _bytes(executable), signo, signal_tid))

    def target_destroy(self, target):
        if target:
            self.cdll.ms_target_destroy(target)

    # Reports --------------------------------------------------------------
    def report_create(self, target, mode=MS_STACK_MIXED, all_frames=False,
                      locals=False, max_frames=0, exhaustive=False):
        opts = self._options([("mode", _MODES[mode]), ("all-frames", all_frames),
                              ("locals", locals), ("max-frames", max_frames),
                              ("exhaustive", exhaustive)])
        try:
            ret = ctypes.c_void_p()
            self._check(self.cdll.ms_report_create(
                target, self.cdll.ms_options_report(opts), ctypes.byref(ret)))
            return ret.value
        finally:
            self.cdll.ms_options_destroy(opts)

    def report_destroy(self, report):
        if report:
            self.cdll.ms_report_destroy(report)

    def report_format_section(self, report, section=MS_SECTION_REPORT,
                              fmt=MS_FORMAT_TEXT, tids=()):
        settings = [("format", _FORMATS[fmt]), ("section", _SECTIONS[section])]
        settings += [("thread", tid) for tid in tids]
        opts = self._options(settings)
        try:
            ret = ctypes.c_void_p()
            self._check(self.cdll.ms_report_format_section(
                report, self.cdll.ms_options_print(opts), ctypes.byref(ret)))
        finally:
            self.cdll.ms_options_destroy(opts)
        try:
            return ctypes.string_at(ret.value).decode("utf-8", "replace")
        finally:
            self._libc.free(ret.value)

    def report_json(self, report, section=MS_SECTION_REPORT, tids=()):
        return json.loads(self.report_format_section(
            report, section, MS_FORMAT_JSON, tids))

    # Frame maps -------------------------------------------------------------
    def _string(self, call, *args):
        ret = ctypes.c_void_p()
        self._check(call(*args, ctypes.byref(ret)))
        try:
            return ctypes.string_at(ret.value).decode("utf-8", "replace")
        finally:
            self._libc.free(ret.value)

    def frame_map_create(self, report, tid, frames):
        """A frame map of thread tid; frames: (pc, flags, name) innermost
        first, as the debugger lists them."""
        ret = ctypes.c_void_p()
        self._check(self.cdll.ms_frame_map_create(report, tid, ctypes.byref(ret)))
        try:
            for pc, flags, name in frames:
                self._check(self.cdll.ms_frame_map_add_debugger_frame(
                    ret.value, pc & 0xFFFFFFFFFFFFFFFF, flags, _bytes(name)))
        except BaseException:
            self.cdll.ms_frame_map_destroy(ret.value)
            raise
        return ret.value

    def frame_map_destroy(self, fmap):
        if fmap:
            self.cdll.ms_frame_map_destroy(fmap)

    def frame_map_debugger_frame(self, fmap, i):
        n = self.cdll.ms_frame_map_debugger_frame(fmap, i)
        return n if n >= 0 else None

    def frame_map_shows(self, fmap, n):
        """(known, first, count) for debugger frame n."""
        first, count = ctypes.c_size_t(), ctypes.c_size_t()
        known = self.cdll.ms_frame_map_shows(fmap, n, ctypes.byref(first),
                                             ctypes.byref(count))
        return bool(known), first.value, count.value

    def frame_map_n_python(self, fmap):
        return self.cdll.ms_frame_map_n_python(fmap)

    def frame_map_python_frame(self, fmap, k):
        i = self.cdll.ms_frame_map_python_frame(fmap, k)
        return i if i >= 0 else None

    def frame_map_sync(self, fmap, n):
        self.cdll.ms_frame_map_sync(fmap, n)

    def frame_map_current_python(self, fmap):
        k = self.cdll.ms_frame_map_current_python(fmap)
        return k if k >= 0 else None

    def frame_map_select_python(self, fmap, k):
        self._check(self.cdll.ms_frame_map_select_python(fmap, k))

    def frame_map_current_debugger_frame(self, fmap):
        n = self.cdll.ms_frame_map_current_debugger_frame(fmap)
        return n if n >= 0 else None

    def frame_map_follow(self, fmap, leader):
        self.cdll.ms_frame_map_follow(fmap, leader)

    def frame_map_move(self, fmap, count):
        ret = ctypes.c_size_t()
        self._check(self.cdll.ms_frame_map_move(fmap, count, ctypes.byref(ret)))
        return ret.value

    def frame_map_format_stack(self, fmap, flags=0):
        return self._string(self.cdll.ms_frame_map_format_stack, fmap, flags)

    def frame_map_format_current(self, fmap):
        return self._string(self.cdll.ms_frame_map_format_current, fmap)

    def frame_map_format_list(self, fmap, first=0, last=0):
        return self._string(self.cdll.ms_frame_map_format_list, fmap, first, last)

    def frame_map_format_locals(self, fmap):
        return self._string(self.cdll.ms_frame_map_format_locals, fmap)

    def frame_map_lookup(self, fmap, name):
        return self._string(self.cdll.ms_frame_map_lookup, fmap, _bytes(name))

    def signal_name(self, signo):
        name = self.cdll.ms_signal_name(signo)
        return name.decode() if name else None
