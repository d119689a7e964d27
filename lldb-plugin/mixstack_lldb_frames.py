"""Python frames in lldb's own `bt`, `frame select`, `up` and `down`
(LLDB 22 and later: scripted frame providers).

    (lldb) command script import /path/to/mixstack_lldb_frames.py

after `target create`, registers the provider with the selected target. For each thread, the library (libmixstack, through the ctypes
binding shared with the gdb plugin) unwinds the thread, reads its Python
frames and matches its frames to lldb's (ms_frame_map_*): lldb's frames
stay, except that each eval-loop frame becomes the Python frames it runs,
and the CPython machinery between them is left out. Nothing here matches
frames or knows CPython. Any failure leaves lldb's frames as they are.
"""
import ctypes
import os
import sys

import lldb

try:
    from lldb.plugins.scripted_frame_provider import ScriptedFrameProvider
    from lldb.plugins.scripted_process import ScriptedFrame
except ImportError:  # LLDB before 22: no frame providers
    ScriptedFrameProvider = ScriptedFrame = object

# The binding package (mixstack_gdb.lib): next to this file when
# installed, or where the build put it (set by CMake in the copy it makes).
BINDING_DIR = "@MIXSTACK_BINDING_DIR@"
_here = os.path.dirname(os.path.abspath(__file__))
for _d in (_here, BINDING_DIR, os.path.join(_here, "..", "gdb")):
    if _d and not _d.startswith("@") and _d not in sys.path:
        sys.path.append(_d)

from mixstack_gdb import lib as L  # noqa: E402

REGISTERS = L.REGISTER_NAMES
_LIBRARY = None


def library():
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = L.Library()
    return _LIBRARY


def _registers(frame):
    regs = [0] * L.MS_NUM_REGS
    fs_base = 0
    gpr = frame.GetRegisters().GetFirstValueByName("General Purpose Registers")
    for i, name in enumerate(REGISTERS + ("fs_base",)):
        value = gpr.GetChildMemberWithName(name) if gpr.IsValid() else None
        if value is None or not value.IsValid():
            value = frame.FindRegister(name)
        if value.IsValid():
            error = lldb.SBError()
            v = value.GetValueAsUnsigned(error, 0)
            if error.Success():
                if i < L.MS_NUM_REGS:
                    regs[i] = v
                else:
                    fs_base = v
    return regs, fs_base


def _frame_flags(frame):
    flags = 0
    if frame.IsInlined():
        flags |= L.MS_DEBUGGER_FRAME_INLINED
    if frame.IsArtificial():
        flags |= L.MS_DEBUGGER_FRAME_ARTIFICIAL
    return flags


class _Reader:
    def __init__(self, process):
        self.process = process
        self.callback = L.ReadMemoryFn(self._read)

    def _read(self, arg, address, buf, size):
        try:
            error = lldb.SBError()
            data = self.process.ReadMemory(address, size, error)
            if not error.Success() or data is None or len(data) != size:
                return 1
            ctypes.memmove(buf, data, size)
            return 0
        except BaseException:  # noqa: B902 -- nothing may cross into C
            return 1


def thread_report(thread, frame0):
    """A report of this one thread (its registers from lldb's innermost
    frame, the process's memory and modules), as parsed JSON, and the
    report's handle; the caller destroys the handle."""
    lib = library()
    process = thread.GetProcess()
    target = process.GetTarget()
    reader = _Reader(process)
    handle = lib.target_create_debugger(reader.callback)
    try:
        regs, fs_base = _registers(frame0)
        lib.target_add_thread(handle, thread.GetThreadID(), thread.GetName(),
                              regs, fs_base)
        for module in target.module_iter():
            path = module.GetFileSpec().fullpath
            address = module.GetObjectFileHeaderAddress().GetLoadAddress(target)
            if not path or address in (0, lldb.LLDB_INVALID_ADDRESS):
                continue
            try:
                lib.target_add_module(handle, path, None, address)
            except L.LibraryError:
                pass
        exe = target.GetExecutable().fullpath
        lib.target_set_process(handle, process.GetProcessID(), exe, 0, 0)
        report = lib.report_create(handle)
    finally:
        lib.target_destroy(handle)
        del reader
    return report


class PythonFrame(ScriptedFrame):
    """A Python frame, at the pc of the eval loop running it."""

    def __init__(self, thread, index, pc, frame):
        super().__init__(thread, lldb.SBStructuredData())
        self.index = index
        self.pc = pc
        name = frame.get("qualname") or frame.get("function") or "??"
        self.name = name + " [python]"
        self.sym_ctx = lldb.SBSymbolContext()
        if frame.get("file"):
            entry = lldb.SBLineEntry()
            entry.SetFileSpec(lldb.SBFileSpec(frame["file"], False))
            if frame.get("line"):
                entry.SetLine(frame["line"])
            self.sym_ctx.SetLineEntry(entry)

    def get_id(self):
        return self.index

    def get_pc(self):
        # No pc: lldb would name the frame after the eval loop's symbol.
        return None

    def get_function_name(self):
        return self.name

    def is_artificial(self):
        return False

    def is_hidden(self):
        return False

    def get_symbol_context(self):
        return self.sym_ctx

    def get_register_context(self):
        return None


class MixstackFrameProvider(ScriptedFrameProvider):
    @staticmethod
    def get_description():
        return "mixstack: Python frames in place of the eval loops running them"

    def __init__(self, input_frames, args):
        super().__init__(input_frames, args)
        self.frames = None

    def _inputs(self):
        out = []
        n = self.input_frames.GetSize()
        for i in range(n):
            out.append(self.input_frames.GetFrameAtIndex(i))
        return out

    def _build(self):
        """The output frames: input frame indices and PythonFrames."""
        inputs = self._inputs()
        passthrough = list(range(len(inputs)))
        if not inputs or self.thread is None:
            return passthrough
        lib = library()
        report = thread_report(self.thread, inputs[0])
        fmap = None
        try:
            doc = lib.report_json(report)
            tid = self.thread.GetThreadID()
            thread = next((t for t in doc.get("threads", ()) if t.get("tid") == tid), None)
            if thread is None or not thread.get("python"):
                return passthrough
            frames = thread.get("frames", [])
            fmap = lib.frame_map_create(report, tid, [
                (f.GetPC(), _frame_flags(f), f.GetFunctionName()) for f in inputs])
            out = []
            for n, frame in enumerate(inputs):
                known, first, count = lib.frame_map_shows(fmap, n)
                shown = frames[first:first + count]
                if not known:
                    out.append(n)
                    continue
                for k, f in enumerate(shown):
                    if f.get("kind") == "python":
                        out.append(PythonFrame(self.thread, len(out), frame.GetPC(), f))
                    elif k == 0:
                        out.append(n)
            return out
        finally:
            lib.frame_map_destroy(fmap)
            lib.report_destroy(report)

    def get_frame_at_index(self, index):
        if self.frames is None:
            try:
                self.frames = self._build()
            except Exception:  # noqa: BLE001 -- never break `bt`
                if os.environ.get("MIXSTACK_LLDB_DEBUG"):
                    import traceback
                    traceback.print_exc()
                self.frames = list(range(self.input_frames.GetSize()))
        if index >= len(self.frames):
            return None
        return self.frames[index]


def register(debugger, target):
    name = "%s.MixstackFrameProvider" % __name__
    result = lldb.SBCommandReturnObject()
    debugger.GetCommandInterpreter().HandleCommand(
        "target frame-provider register -C %s" % name, result)
    return result.Succeeded(), result.GetError() or ""


def __lldb_init_module(debugger, internal_dict):
    if ScriptedFrameProvider is object:
        print("mixstack: this lldb has no scripted frame providers (LLDB 22 "
              "and later): `mixstack bt` shows the Python frames")
        return
    target = debugger.GetSelectedTarget()
    if target.IsValid():
        ok, error = register(debugger, target)
        if not ok:
            print("mixstack: %s" % error.strip())
    else:
        print("mixstack: create a target, then: target frame-provider register "
              "-C %s.MixstackFrameProvider" % __name__)
