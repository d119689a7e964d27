/*
 * CPython struct layouts as data.
 *
 * A struct ms_py_layout holds, for one CPython version, the offsets of every
 * field mixstack reads plus a few facts (units, enum values, bit positions).
 * The readers (threads.c, frames.c, object.c) never test a version number:
 * they read whatever offsets the layout gives, and a field of -1 means
 * "this version has no such thing".
 *
 * The tables (layouts_generated.c) are produced by scripts/gen-cpython-layouts
 * from the compiler's offsetof() against each version's internal headers;
 * 3.14 and 3.15 are derived from published headers. At run time a 3.13+
 * target's own _Py_DebugOffsets override the table (debug_offsets.c).
 */
#ifndef MIXSTACK_CPYTHON_LAYOUT_H
#define MIXSTACK_CPYTHON_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixstack/mixstack.h"

/* Line table formats (co_linetable_format). */
enum {
        MS_PY_LINETABLE_LNOTAB = 1,    /* 3.8-3.9 co_lnotab */
        MS_PY_LINETABLE_310 = 2,       /* 3.10 co_linetable */
        MS_PY_LINETABLE_LOCATIONS = 3, /* 3.11+ location table */
};

struct ms_py_layout {
        /* "3.12"; "3.13t" for a free-threaded build. */
        const char *name;
        /* PY_VERSION_HEX of the headers the entry was made from. */
        uint32_t version_hex;
        bool free_threaded;
        /* Where the numbers come from ("measured: ..." / "derived ..."). */
        const char *source;
#define MS_PY_FIELD(name, doc) int32_t name;
#include "cpython/layout_fields.h"
#undef MS_PY_FIELD
};

extern const struct ms_py_layout ms_py_layouts[];
extern const size_t ms_py_n_layouts;

/* The table entry for major.minor (GIL build), or NULL. */
const struct ms_py_layout *ms_py_layout_find(int major, int minor);

/* Name of a layout field and its value by index, for dumps and tests;
 * NULL past the last field. */
const char *ms_py_layout_field(const struct ms_py_layout *layout, size_t i,
                               int32_t *value);

/*
 * Turn a GIL-build table entry into the layout of the free-threaded build
 * of the same version, as far as it can be inferred: the object header is
 * 16 bytes longer there, so every field inside an object moves by 16.
 * Thread states and interpreter frames are not objects and do not move.
 * Fields that moved otherwise must come from the target's debug offsets.
 */
void ms_py_layout_make_free_threaded(struct ms_py_layout *layout);

/* _Py_DebugOffsets, at the start of _PyRuntime in 3.13+. */
#define MS_PY_DEBUG_COOKIE "xdebugpy"
#define MS_PY_DEBUG_COOKIE_LEN 8
/* The largest _Py_DebugOffsets known (3.15 pre-releases), read in one go. */
#define MS_PY_DEBUG_OFFSETS_MAX 1024

/*
 * Parse _Py_DebugOffsets: buf holds size bytes read at &_PyRuntime, which
 * start with the cookie. On success the fields the struct describes are
 * written over *layout (which should hold the table entry for the version,
 * or the nearest one), and *version_hex and *free_threaded are set.
 * The struct's layout depends on the version it declares (3.13, 3.14 and
 * two 3.15 variants); each candidate is validated (sizes bounded, offsets
 * inside their struct, ob_type at 8 or 24) before anything is used.
 * MS_ERROR_BAD_INPUT when no candidate is plausible, MS_ERROR_UNSUPPORTED
 * for a version with no known struct layout.
 */
struct ms_error *ms_py_debug_offsets_parse(const uint8_t *buf, size_t size,
                                           struct ms_py_layout *layout,
                                           uint32_t *version_hex,
                                           bool *free_threaded);

#endif /* MIXSTACK_CPYTHON_LAYOUT_H */
