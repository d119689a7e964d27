/*
 * Line numbers from a code object's line table, for each format CPython
 * used: 3.8-3.9 co_lnotab, 3.10 co_linetable, 3.11+ location table. Pure
 * functions over bytes already copied out of the target, so they are
 * tested against the interpreters' own answers (tests/helpers/dump_lines.py).
 */
#ifndef MIXSTACK_CPYTHON_LINETABLE_H
#define MIXSTACK_CPYTHON_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The line of the instruction at byte offset `offset` of the bytecode, as
 * PyCode_Addr2Line computes it. format is one of MS_PY_LINETABLE_*
 * (layout.h). A negative offset (a frame that has not started) gives
 * firstlineno. Returns -1 when the instruction has no line (3.10+ "None")
 * or lies past the table, or for an unknown format. Never reads past
 * table[len - 1].
 */
int ms_py_linetable_line(int format, const uint8_t *table, size_t len,
                         int firstlineno, int64_t offset);

#endif /* MIXSTACK_CPYTHON_LINETABLE_H */
