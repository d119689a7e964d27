"""mixstack installed from a wheel: the `mixstack` command runs the CLI
shipped in this package (bin/mixstack); the gdb and lldb plugins are in it
too (`mixstack debugger-setup gdb|lldb` prints the line that loads them).

Everything is native code: this module only finds it.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(HERE, "bin", "mixstack")
GDB_PLUGIN = os.path.join(HERE, "share", "mixstack", "gdb", "mixstack-gdb.py")
LLDB_PLUGIN = os.path.join(HERE, "lib", "mixstack", "libmixstack-lldb.so")


def main():
    """Entry point of the `mixstack` script: become the CLI."""
    try:
        os.execv(CLI, ["mixstack", *sys.argv[1:]])
    except OSError as e:
        sys.stderr.write("mixstack: cannot run %s: %s\n" % (CLI, e))
        return 2
