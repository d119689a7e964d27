/*
 * Whether the library's name of a function and a debugger's are the same
 * function's. The library prints qualified, demangled names with compiler
 * clone suffixes ("mixsample::boom_callback", "foo.cold"); debuggers often
 * show the bare DWARF name of an inlined function ("boom_callback") or a
 * generic one with its parameters ("Vec<T>::push").
 */
#include <string.h>

#include "navigate/navigate.h"

#define MAX_NAME 1024

/* name without a compiler clone suffix (".cold", ".llvm.123", ...). */
static size_t base_length(const char *name)
{
        static const char *const suffixes[] = {
                ".llvm", ".cold", ".lto_priv", ".constprop",
                ".isra", ".part", ".clone",
        };
        size_t len = strlen(name);
        for (size_t i = 0; i < MS_ARRAY_SIZE(suffixes); i++) {
                const char *p = strstr(name, suffixes[i]);
                if (p && (size_t)(p - name) < len)
                        len = (size_t)(p - name);
        }
        return len;
}

/* Whether lib[0..ll) ends with "::" followed by dbg[0..dl). */
static bool ends_with_path(const char *lib, size_t ll, const char *dbg,
                           size_t dl)
{
        return ll >= dl + 2 && memcmp(lib + ll - dl, dbg, dl) == 0 &&
               memcmp(lib + ll - dl - 2, "::", 2) == 0;
}

bool ms_same_function_name(const char *lib, const char *dbg)
{
        if (!lib || !dbg || !*lib || !*dbg)
                return false;
        if (strcmp(lib, dbg) == 0)
                return true;
        size_t ll = base_length(lib), dl = base_length(dbg);
        if (ll > MAX_NAME || dl > MAX_NAME)
                return false;
        if (ll == dl && memcmp(lib, dbg, ll) == 0)
                return true;
        if (ends_with_path(lib, ll, dbg, dl))
                return true;
        /* Generic parameters left out on one side or both. */
        const char *lt = memchr(dbg, '<', dl);
        size_t dbase = lt ? (size_t)(lt - dbg) : dl;
        if (ends_with_path(lib, ll, dbg, dbase))
                return true;
        const char *llt = memchr(lib, '<', ll);
        size_t lbase = llt ? (size_t)(llt - lib) : ll;
        return ends_with_path(lib, lbase, dbg, dbase) ||
               (lbase == dbase && dbase && memcmp(lib, dbg, dbase) == 0);
}
