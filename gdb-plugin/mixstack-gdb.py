# mixstack for gdb. Load it from ~/.gdbinit with one line:
#
#     source /usr/local/share/mixstack/gdb/mixstack-gdb.py
#
# It adds the `mixstack` commands (`help mixstack`) and shows Python frames
# in gdb's own `bt`. libmixstack is found through $MIXSTACK_LIB, then the
# path configured when mixstack was built or installed, then the system's
# library search path.
import os
import sys

import gdb


def _mixstack_load():
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        import mixstack_gdb
        mixstack_gdb.setup()
    except Exception as e:  # never leave gdb with a traceback at startup
        gdb.write("mixstack: cannot load the gdb plugin from %s: %s: %s\n"
                  % (here, type(e).__name__, e), gdb.STDERR)


_mixstack_load()
del _mixstack_load
