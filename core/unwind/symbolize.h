/* Symbolization of code addresses for the unwinder (symbolize.c). */
#ifndef MIXSTACK_UNWIND_SYMBOLIZE_H
#define MIXSTACK_UNWIND_SYMBOLIZE_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"
#include "mixstack/mixstack.h"

/* One function level at an address: the function the code belongs to, or
 * one inlined into it. Strings may be NULL. */
struct ms_sym_level {
        enum ms_language language;
        bool inlined;
        char *module;
        char *raw_symbol;
        char *function;
        char *file;
        int line;
        int column;
        /* Start of the symbol-table symbol (physical levels only). */
        bool has_symbol;
        uint64_t symbol_address;
};

/* Every level at one address, innermost first; at least one (the physical
 * one, possibly empty when no module holds the address). */
struct ms_symbolized {
        uint64_t address;
        struct ms_sym_level *levels;
        size_t n_levels;
};

struct ms_symbol_cache;
struct ms_symtabs;

struct ms_symbol_cache *ms_symbol_cache_create(void);
void ms_symbol_cache_destroy(struct ms_symbol_cache *cache);

/* Which DWARF symbolization reads: none (names come from symbol tables),
 * only the modules' own, or also separate debug files. */
enum ms_dwarf_use {
        MS_DWARF_NONE,
        MS_DWARF_EMBEDDED,
        MS_DWARF_ALL,
};

/* The levels at address (a lookup address: the return address minus one
 * for caller frames), reading the DWARF that use allows. A cache must
 * always be used with the same use. The result belongs to the cache. */
struct ms_error *ms_symbolize(struct ms_symbol_cache *cache,
                              struct ms_symtabs *symtabs, Dwfl *dwfl,
                              uint64_t address, enum ms_dwarf_use use,
                              const struct ms_symbolized **ret);

#endif /* MIXSTACK_UNWIND_SYMBOLIZE_H */
