/*
 * Line tables: for every installed interpreter, tests/helpers/dump_lines.py
 * dumps each code object's raw line table and the line the interpreter
 * itself gives for every instruction; linetable.c must agree on all.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/interpreters.h"
#include "cpython/layout.h"
#include "cpython/linetable.h"
#include "unit.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
        size_t n = 0;
        if (strcmp(s, "-") == 0)
                return 0;
        for (; s[0] && s[1] && n < cap; s += 2) {
                unsigned v;
                if (sscanf(s, "%2x", &v) != 1)
                        break;
                out[n++] = (uint8_t)v;
        }
        return n;
}

/* Compare every instruction of one dump; returns the number of codes. */
static size_t check_dump(const char *name, FILE *f)
{
        static char cline[1 << 20], lline[1 << 22];
        static uint8_t table[1 << 19];
        size_t n_codes = 0, n_insns = 0, n_bad = 0;
        while (fgets(cline, sizeof(cline), f) &&
               fgets(lline, sizeof(lline), f)) {
                int format, first;
                char hex[sizeof(cline)], co_name[256];
                if (sscanf(cline, "C %d %d %s %255s", &format, &first, hex,
                           co_name) != 4 ||
                    lline[0] != 'L') {
                        CHECK(!"malformed dump line");
                        break;
                }
                size_t len = unhex(hex, table, sizeof(table));
                n_codes++;
                char *p = lline + 1, *end;
                for (;;) {
                        long off = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        p = end;
                        long want = strtol(p, &end, 10);
                        p = end;
                        int got = ms_py_linetable_line(format, table, len,
                                                       first, off);
                        n_insns++;
                        if (got != want && n_bad++ < 10)
                                fprintf(stderr,
                                        "%s: %s offset %ld: line %d, want "
                                        "%ld\n",
                                        name, co_name, off, got, want);
                }
        }
        printf("%s: %zu code objects, %zu instructions, %zu mismatches\n", name,
               n_codes, n_insns, n_bad);
        CHECK(n_codes > 0);
        CHECK(n_bad == 0);
        return n_codes;
}

static void test_synthetic(void)
{
        /* No-line entries and negative offsets, which stdlib code rarely
         * has in every format. */
        const uint8_t t310[] = {4, 1, 2, 0x80, 4, 2};
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_310, t310, 6, 10, 0) == 11);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_310, t310, 6, 10, 4) == -1);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_310, t310, 6, 10, 6) == 13);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_310, t310, 6, 10, 10) == -1);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_310, t310, 6, 10, -1) == 10);
        /* 3.11+: code 13 (+3 via svarint 6), code 15 (no line, 2 units),
         * code 11 (+1, 1 unit, two column bytes). */
        const uint8_t tloc[] = {0x80 | (13 << 3) | 0, 6, 0x80 | (15 << 3) | 1,
                                0x80 | (11 << 3) | 0, 4, 9};
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_LOCATIONS, tloc, 6, 5, 0) ==
              8);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_LOCATIONS, tloc, 6, 5, 2) ==
              -1);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_LOCATIONS, tloc, 6, 5, 4) ==
              -1);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_LOCATIONS, tloc, 6, 5, 6) ==
              9);
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_LOCATIONS, tloc, 6, 5, 8) ==
              -1);
        /* Truncated tables must not be read past their end. */
        const uint8_t trunc[] = {0x80 | (14 << 3) | 7, 0x41};
        CHECK(ms_py_linetable_line(MS_PY_LINETABLE_LOCATIONS, trunc, 2, 1,
                                   100) == -1);
        CHECK(ms_py_linetable_line(99, trunc, 2, 1, 0) == -1);
}

int main(void)
{
        test_synthetic();
        struct test_pythons pythons;
        test_pythons_find(&pythons);
        char helper[4096];
        test_helper_path("dump_lines.py", helper, sizeof(helper));
        size_t n_run = 0;
        for (size_t i = 0; i < pythons.n; i++) {
                char name[256], out[4608], cmd[16384];
                test_python_name(pythons.paths[i], name, sizeof(name));
                snprintf(out, sizeof(out), "%s/cpython-lines-%s.txt",
                         test_scratch_dir(), name);
                snprintf(cmd, sizeof(cmd), "'%s' -I '%s' '%s'",
                         pythons.paths[i], helper, out);
                if (system(cmd) != 0) {
                        fprintf(stderr, "%s: dump_lines.py failed\n", name);
                        CHECK(!"dump_lines.py failed");
                        continue;
                }
                FILE *f = fopen(out, "r");
                CHECK(f != NULL);
                if (!f)
                        continue;
                check_dump(name, f);
                fclose(f);
                n_run++;
        }
        test_pythons_free(&pythons);
        if (n_run == 0 && unit_failed == 0)
                unit_skip("no CPython 3.8+ interpreter found");
        return unit_finish();
}
