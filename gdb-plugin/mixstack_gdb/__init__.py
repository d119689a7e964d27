"""mixstack for gdb: the `mixstack` commands and Python frames in `bt`.

Loaded by mixstack-gdb.py (`source .../mixstack-gdb.py` in ~/.gdbinit).
Everything is computed by libmixstack; this package hands it gdb's view of
the process and prints what it returns. Only `lib` (the ctypes bindings)
works outside gdb.
"""
_loaded = False


def setup():
    """Register the commands, the frame filter and the event hooks (once)."""
    global _loaded
    import gdb

    from . import commands, framefilter
    from .session import SESSION

    commands.register()
    framefilter.install()
    if _loaded:
        return
    events = gdb.events
    stop = getattr(events, "stop", None)
    if stop is not None:
        stop.connect(_quiet(SESSION.on_stop))
    invalidate = _quiet(SESSION.invalidate)
    for name in ("cont", "new_objfile", "exited", "clear_objfiles",
                 "memory_changed", "register_changed", "inferior_call",
                 "new_inferior", "inferior_deleted", "new_thread"):
        registry = getattr(events, name, None)
        if registry is not None:
            registry.connect(invalidate)
    _loaded = True


def _quiet(handler):
    """An event handler that never lets an exception reach gdb (which would
    print a Python error): Ctrl-C or gdb quitting may interrupt it."""
    def run(*args):
        try:
            handler(*args)
        except BaseException:  # noqa: B902
            pass
    return run
