"""gdb's view of the inferior handed to libmixstack's debugger-fed target:
memory through a read callback, every thread's registers, the file
mappings, and the process (pid, executable, fatal signal).

No CPython or Rust knowledge lives here: only what gdb knows about the
process, in the form the library asks for.
"""
import ctypes
import os
import re

import gdb

from . import lib as L


class Interrupted(Exception):
    """The user pressed Ctrl-C while the report was being built."""


class MemoryReader:
    """The read_memory callback. It must never let an exception cross into
    C: every failure is a nonzero return. The library reads whole pages and
    keeps them (a debugger target caches its memory), so each call here is
    a page or a read that a page could not serve."""

    def __init__(self, inferior):
        self.inferior = inferior
        self.interrupted = False
        self.reads = 0
        self.callback = L.ReadMemoryFn(self._read)

    def read(self, address, size):
        """The bytes at address, or None when any cannot be read."""
        if size <= 0:
            return b""
        if address + size > 1 << 64:
            return None
        try:
            return bytes(self.inferior.read_memory(address, size))
        except gdb.MemoryError:
            return None

    def _read(self, arg, address, buf, size):
        if self.interrupted:
            return 1
        try:
            self.reads += 1
            data = self.read(address, size)
            if data is None or len(data) != size:
                return 1
            ctypes.memmove(buf, data, size)
            return 0
        except KeyboardInterrupt:
            self.interrupted = True
            return 1
        except BaseException:  # noqa: B902 -- nothing may cross into C
            return 1


def _u64(value):
    return int(value) & 0xFFFFFFFFFFFFFFFF


def _read_registers(frame):
    regs = [_u64(frame.read_register(name)) for name in L.REGISTER_NAMES]
    try:
        fs_base = _u64(frame.read_register("fs_base"))
    except (gdb.error, ValueError):
        fs_base = 0
    return regs, fs_base


def _siginfo_signo():
    try:
        return int(gdb.parse_and_eval("$_siginfo.si_signo"))
    except (gdb.error, gdb.MemoryError, ValueError):
        return 0


def connection_type(inferior):
    conn = getattr(inferior, "connection", None)
    return getattr(conn, "type", None) if conn is not None else None


def is_core(inferior):
    kind = connection_type(inferior)
    if kind is not None:
        return kind == "core"
    try:
        return "core file" in gdb.execute("info target", to_string=True).lower()
    except gdb.error:
        return False


def _exitsignal():
    try:
        value = gdb.parse_and_eval("$_exitsignal")
        if value.type.code == gdb.TYPE_CODE_VOID:
            return 0
        return int(value)
    except (gdb.error, ValueError):
        return 0


class ThreadInfo:
    __slots__ = ("num", "tid", "name", "regs", "fs_base", "signo", "error")

    def __init__(self, num, tid, name):
        self.num, self.tid, self.name = num, tid, name
        self.regs = None
        self.fs_base = 0
        self.signo = 0
        self.error = None


def collect_threads(inferior, want_siginfo):
    """Every thread of the inferior with its innermost registers, in gdb's
    thread order. The selected thread and frame are restored afterwards."""
    try:
        orig_thread = gdb.selected_thread()
    except gdb.error:
        orig_thread = None
    orig_level = None
    if orig_thread is not None:
        try:
            orig_level = gdb.selected_frame().level()
        except gdb.error:
            orig_level = None
    out = []
    try:
        for thread in sorted(inferior.threads(), key=lambda t: t.num):
            if not thread.is_valid():
                continue
            name = thread.name if isinstance(thread.name, str) else None
            info = ThreadInfo(thread.num, thread.ptid[1] or thread.ptid[0], name)
            out.append(info)
            if thread.is_running() if hasattr(thread, "is_running") else False:
                info.error = "thread %d is running" % info.tid
                continue
            try:
                thread.switch()
                info.regs, info.fs_base = _read_registers(gdb.newest_frame())
                if want_siginfo:
                    info.signo = _siginfo_signo()
            except (gdb.error, gdb.MemoryError, ValueError) as e:
                info.regs = None
                info.error = "thread %d: no registers (%s)" % (info.tid, e)
    finally:
        if orig_thread is not None and orig_thread.is_valid():
            try:
                orig_thread.switch()
                if orig_level:
                    select_level(orig_level)
            except gdb.error:
                pass
    return out


def select_level(level):
    """Select the gdb frame at level (frames counted as gdb counts them)."""
    frame = gdb.newest_frame()
    for _ in range(level):
        older = frame.older()
        if older is None:
            break
        frame = older
    frame.select()
    return frame


# Mappings -------------------------------------------------------------------

_MAP_RE = re.compile(
    r"^\s*(0x[0-9a-fA-F]+)\s+(0x[0-9a-fA-F]+)\s+(0x[0-9a-fA-F]+)\s+"
    r"(0x[0-9a-fA-F]+)(?:\s+([r-][w-][xs-][ps-]))?\s*(.*?)\s*$")


def parse_proc_mappings(text):
    """(start, end, offset, path) of every line of `info proc mappings` whose
    object is a file or the vdso."""
    out = []
    for line in text.splitlines():
        m = _MAP_RE.match(line)
        if not m:
            continue
        path = m.group(6)
        if not path or not (path.startswith("/") or path == "[vdso]"):
            continue
        out.append((int(m.group(1), 16), int(m.group(2), 16),
                    int(m.group(4), 16), path))
    return out


def proc_mappings():
    try:
        text = gdb.execute("info proc mappings", to_string=True)
    except gdb.error:
        return []
    return parse_proc_mappings(text)


def debuginfod_enabled():
    """Whether gdb fetches debug info from debuginfod servers (`set
    debuginfod enabled`): the library then does too, for what it reads
    itself; "ask" and "off" are no (it cannot ask in the middle of a
    command). gdb without the setting: the environment decides."""
    try:
        return gdb.parameter("debuginfod enabled") in (True, "on")
    except (gdb.error, RuntimeError):
        return True


def info_proc_exe():
    """The executable gdb reads from the process or the core (`info proc
    exe`), for when gdb was given none."""
    try:
        text = gdb.execute("info proc exe", to_string=True)
    except gdb.error:
        return None
    m = re.search(r"^exe = '(.*)'$", text, re.M)
    return m.group(1) if m else None


def auxv_value(name):
    try:
        text = gdb.execute("info auxv", to_string=True)
    except gdb.error:
        return 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == name:
            try:
                return int(parts[-1], 0)
            except ValueError:
                return 0
    return 0


_SECTION_RE = re.compile(
    r"^\s*(0x[0-9a-fA-F]+)\s+-\s+(0x[0-9a-fA-F]+)\s+is\s+(\S+)(?:\s+in\s+(.+?))?\s*$")


def objfile_modules():
    """(path, section, runtime address) of the files gdb has loaded, from
    `info files`, for targets whose `info proc mappings` says nothing
    (remote targets): the library rebuilds their mappings from the files."""
    try:
        text = gdb.execute("info files", to_string=True)
    except gdb.error:
        return []
    exe = gdb.current_progspace().filename
    runtime = {}  # path -> {section name: address}
    for line in text.splitlines():
        m = _SECTION_RE.match(line)
        if not m:
            continue
        path = m.group(4) or exe
        if not path or not path.startswith("/"):
            continue
        runtime.setdefault(path, {}).setdefault(m.group(3), int(m.group(1), 16))
    out = []
    for path, secs in sorted(runtime.items()):
        for name in (".text", ".dynsym", ".rodata", ".data", ".dynamic"):
            if name in secs:
                out.append((path, name, secs[name]))
                break
    return out


_SECTION = re.compile(
    r"^\s*\[\d+\]\s+0x([0-9a-f]+)->0x([0-9a-f]+) at 0x[0-9a-f]+: load\S*\s+(.*)$")


def memory_regions(core, pid):
    """(start, end, writable) of the target's memory."""
    regions = []
    if core:
        try:
            text = gdb.execute("maint info sections", to_string=True)
        except gdb.error:
            return regions
        for line in text.splitlines():
            m = _SECTION.match(line)
            if m:
                regions.append((int(m.group(1), 16), int(m.group(2), 16),
                                "READONLY" not in m.group(3)))
        return regions
    try:
        with open("/proc/%d/maps" % pid) as maps:
            for line in maps:
                fields = line.split()
                lo, hi = fields[0].split("-")
                regions.append((int(lo, 16), int(hi, 16), fields[1][1] == "w"))
    except (OSError, ValueError, IndexError):
        pass
    return regions


def gdb_sysroot():
    """gdb's `set sysroot DIR`, where the target's files are found (a core
    of a process in a container or chroot), or None for this machine's
    own files ("", "/", "target:...")."""
    try:
        value = gdb.parameter("sysroot")
    except (gdb.error, RuntimeError):
        return None
    if not value or value == "/" or value.startswith("target:") \
            or value.startswith("remote:"):
        return None
    return value


def collect_mappings(core):
    """File mappings of the inferior, or else its modules: (mappings,
    modules, source). MIXSTACK_GDB_MAPPINGS=objfiles forces the fallback
    used when gdb has no process mappings (tests use it)."""
    forced = os.environ.get("MIXSTACK_GDB_MAPPINGS")
    maps = [] if forced == "objfiles" else proc_mappings()
    modules = []
    source = "proc"
    if not any(path.startswith("/") for _, _, _, path in maps):
        maps = [m for m in maps if not m[3].startswith("/")]
        modules = objfile_modules()
        source = "objfiles"
    if not any(path == "[vdso]" for _, _, _, path in maps):
        vdso = auxv_value("AT_SYSINFO_EHDR")
        if vdso:
            maps.append((vdso, vdso, 0, "[vdso]"))
    return maps, modules, source


# The target -------------------------------------------------------------

class GdbTarget:
    """A libmixstack debugger target built from gdb's current view. Owns the
    target handle and the callback it reads through."""

    def __init__(self, library, inferior):
        self.library = library
        self.inferior = inferior
        self.handle = None
        self.reader = MemoryReader(inferior)
        self.threads = []
        self.notes = []  # why something gdb has could not be handed over
        self.core = is_core(inferior)
        self.signo = 0
        self.signal_tid = 0
        self.mapping_source = None

    def build(self, stop_signal=None):
        lib = self.library
        inferior = self.inferior
        executable = gdb.current_progspace().filename or info_proc_exe()
        self.handle = lib.target_create_debugger(
            self.reader.callback, sysroot=gdb_sysroot(),
            no_debuginfod=not debuginfod_enabled())
        try:
            self._add_mappings()
            self.threads = collect_threads(inferior, want_siginfo=True)
            added = 0
            for t in self.threads:
                if t.regs is None:
                    self.notes.append(t.error or "thread %d: no registers" % t.tid)
                    continue
                lib.target_add_thread(self.handle, t.tid, t.name, t.regs, t.fs_base)
                added += 1
            self._add_regions()
            self._find_signal(stop_signal)
            lib.target_set_process(self.handle, inferior.pid, executable,
                                   self.signo, self.signal_tid)
        except BaseException:
            self.destroy()
            raise
        if self.reader.interrupted:
            self.destroy()
            raise Interrupted()
        return self

    def _add_mappings(self):
        maps, modules, self.mapping_source = collect_mappings(self.core)
        for start, end, offset, path in maps:
            try:
                self.library.target_add_mapping(self.handle, path, start, end, offset)
            except L.LibraryError as e:
                self.notes.append("mapping %s: %s" % (path, e.message))
        for path, section, address in modules:
            try:
                self.library.target_add_module(self.handle, path, section, address)
            except L.LibraryError as e:
                self.notes.append("module %s: %s" % (path, e.message))

    def _add_regions(self):
        """Writable memory, searched by the library for the exception object
        of a Rust panic that aborted: a core's load sections (gdb names
        them loadN; writable ones are not READONLY), a live process's
        /proc/PID/maps."""
        for start, end, writable in memory_regions(self.core, self.inferior.pid):
            try:
                self.library.target_add_region(self.handle, start, end, writable)
            except L.LibraryError as e:
                self.notes.append("region 0x%x: %s" % (start, e.message))
                return

    def _find_signal(self, stop_signal):
        """The fatal signal and the thread it hit. Cores: the core's signal
        ($_exitsignal, from pr_cursig: gcore snapshots have none) and the
        thread whose siginfo carries it, else gdb's first thread (the one the
        kernel wrote first). Live: the last stop's signal when it is one a
        kernel would dump core for."""
        if self.core:
            signo = _exitsignal()
            if signo:
                tid = next((t.tid for t in self.threads if t.signo == signo),
                           self.threads[0].tid if self.threads else 0)
                self.signo, self.signal_tid = signo, tid
            return
        # A live process stopped by a signal a kernel writes a core for is
        # reported as crashed; SIGTRAP (breakpoints, steps), SIGINT (Ctrl-C)
        # and SIGSTOP (attach) are not.
        crash = self.library.signal_is_crash
        if stop_signal and crash(stop_signal[0], False):
            self.signo, self.signal_tid = stop_signal
            return
        for t in self.threads:
            if t.signo and crash(t.signo, False):
                self.signo, self.signal_tid = t.signo, t.tid
                return

    def destroy(self):
        if self.handle:
            self.library.target_destroy(self.handle)
            self.handle = None
