/* Line-table decoders; see linetable.h and cpython-internals.md §4b. */
#include "cpython/linetable.h"

#include <stdbool.h>

#include "cpython/layout.h"

/* 3.8-3.9: pairs (address increment, signed line increment). The line
 * increment of a pair applies only once its address is <= offset. */
static int lnotab_line(const uint8_t *t, size_t len, int line, int64_t off)
{
        int64_t addr = 0;
        for (size_t i = 0; i + 1 < len; i += 2) {
                addr += t[i];
                if (addr > off)
                        break;
                line += (int8_t)t[i + 1];
        }
        return line;
}

/* 3.10: pairs (range length in bytes, signed line delta); a delta of -128
 * means the range has no line. Zero-length ranges only move the line. */
static int linetable310_line(const uint8_t *t, size_t len, int line,
                             int64_t off)
{
        int64_t end = 0;
        for (size_t i = 0; i + 1 < len; i += 2) {
                int64_t start = end;
                end += t[i];
                int delta = (int8_t)t[i + 1];
                bool no_line = delta == -128;
                if (!no_line)
                        line += delta;
                if (off >= start && off < end)
                        return no_line ? -1 : line;
        }
        return -1;
}

/* Unsigned varint of the location table: 6 bits a byte, 0x40 = more. */
static uint64_t read_varint(const uint8_t *t, size_t len, size_t *i)
{
        uint64_t val = 0;
        unsigned shift = 0;
        while (*i < len) {
                uint8_t b = t[(*i)++];
                if (shift < 64)
                        val |= (uint64_t)(b & 63) << shift;
                shift += 6;
                if (!(b & 64))
                        break;
        }
        return val;
}

static int64_t read_svarint(const uint8_t *t, size_t len, size_t *i)
{
        uint64_t u = read_varint(t, len, i);
        return (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
}

/* The line delta of the entry whose first byte is t[*i]; leaves *i on the
 * entry's first extra byte. */
static int64_t location_line_delta(const uint8_t *t, size_t len, size_t *i)
{
        int code = (t[*i] >> 3) & 15;
        (*i)++;
        switch (code) {
        case 10: /* one-line forms: the delta is in the code */
        case 11:
        case 12:
                return code - 10;
        case 13: /* no columns */
        case 14: /* long form */
                return read_svarint(t, len, i);
        default: /* short forms (0-9) and no-line (15) keep the line */
                return 0;
        }
}

/* 3.11+: entries of (length in code units, line delta, columns); the first
 * byte of each has bit 7 set. Code 15 means "no line" for that entry. */
static int locations_line(const uint8_t *t, size_t len, int line, int64_t off)
{
        int64_t unit = off / 2;
        int64_t addr = 0;
        size_t i = 0;
        /* Skip anything before the first entry start (corrupt input). */
        while (i < len && !(t[i] & 128))
                i++;
        while (i < len) {
                uint8_t first = t[i];
                bool no_line = ((first >> 3) & 15) == 15;
                line += (int)location_line_delta(t, len, &i);
                int64_t end = addr + (first & 7) + 1;
                if (unit >= addr && unit < end)
                        return no_line ? -1 : line;
                addr = end;
                /* Column bytes and the like never have bit 7 set. */
                while (i < len && !(t[i] & 128))
                        i++;
        }
        return -1;
}

int ms_py_linetable_line(int format, const uint8_t *table, size_t len,
                         int firstlineno, int64_t offset)
{
        if (offset < 0)
                return firstlineno;
        switch (format) {
        case MS_PY_LINETABLE_LNOTAB:
                return lnotab_line(table, len, firstlineno, offset);
        case MS_PY_LINETABLE_310:
                return linetable310_line(table, len, firstlineno, offset);
        case MS_PY_LINETABLE_LOCATIONS:
                return locations_line(table, len, firstlineno, offset);
        default:
                return -1;
        }
}
