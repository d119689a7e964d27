/*
 * Struct layouts the asyncio task reader needs, as data (see
 * asyncio_fields.h), one entry per CPython minor version, measured from
 * DWARF by scripts/gen-asyncio-layouts.
 */
#ifndef MIXSTACK_CPYTHON_ASYNCIO_LAYOUT_H
#define MIXSTACK_CPYTHON_ASYNCIO_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

struct ms_py_async_layout {
        int minor;
        /* PY_VERSION_HEX of the build measured. */
        uint32_t version_hex;
        const char *source;
#define MS_PY_ASYNC_FIELD(name, doc) int32_t name;
#include "cpython/asyncio_fields.h"
#undef MS_PY_ASYNC_FIELD
};

extern const struct ms_py_async_layout ms_py_async_layouts[];
extern const size_t ms_py_n_async_layouts;

/* The entry for 3.minor: of the builds measured, the newest one not newer
 * than version_hex (0: unknown, the oldest), else the oldest; NULL when
 * the minor version has none. */
const struct ms_py_async_layout *ms_py_async_layout_find(int minor,
                                                         uint32_t version_hex);

#endif /* MIXSTACK_CPYTHON_ASYNCIO_LAYOUT_H */
