/*
 * From an address to the function levels at it: the symbol-table function
 * (what eu-stack and gdb without debug info show) and, when the module has
 * DWARF, the functions inlined into it and source positions. Results are
 * cached per address: threads of one process share most of their frames.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "base/u64_table.h"
#include "symbols/symbols.h"
#include "unwind/symbolize.h"
#include "unwind/symtab.h"

/* DWARF 5/6 language codes newer than some dwarf.h. */
#define LANG_C_PLUS_PLUS_17 0x2a
#define LANG_C_PLUS_PLUS_20 0x2b
#define LANG_C17 0x2c

/* Inline nesting deeper than this is cut (garbage DWARF). */
#define MAX_INLINE_DEPTH 64
/* Nesting of DIEs searched for the scopes of an address, and the number of
 * DIEs looked at: bounds against hostile DWARF. */
#define MAX_SCOPE_DEPTH 256
#define MAX_SCOPE_VISITS 10000000

/* Symbolized addresses: the levels live on the heap, so a pointer to
 * them stays valid when the table grows. */
struct cached_symbol {
        struct ms_u64_entry entry; /* key: the lookup address */
        struct ms_symbolized *symbolized;
};

struct ms_symbol_cache {
        struct ms_u64_table table;
};

static void levels_free(struct ms_sym_level *levels, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(levels[i].module);
                free(levels[i].raw_symbol);
                free(levels[i].function);
                free(levels[i].file);
        }
        free(levels);
}

static void symbolized_free(struct ms_symbolized *s)
{
        if (!s)
                return;
        levels_free(s->levels, s->n_levels);
        free(s);
}

struct ms_symbol_cache *ms_symbol_cache_create(void)
{
        struct ms_symbol_cache *cache = malloc(sizeof(*cache));
        if (cache)
                ms_u64_table_init(&cache->table, sizeof(struct cached_symbol));
        return cache;
}

void ms_symbol_cache_destroy(struct ms_symbol_cache *cache)
{
        if (!cache)
                return;
        for (size_t i = 0; i < cache->table.n_slots; i++) {
                struct cached_symbol *c = ms_u64_table_slot(&cache->table, i);
                if (c)
                        symbolized_free(c->symbolized);
        }
        ms_u64_table_deinit(&cache->table);
        free(cache);
}

/* Builds the levels of one address, innermost first. */
struct builder {
        struct ms_sym_level *levels;
        size_t n;
        size_t capacity;
        bool ok;
        struct ms_symtabs *symtabs;
};

static struct ms_sym_level *builder_add(struct builder *b)
{
        if (!ms_grow((void **)&b->levels, &b->capacity, b->n,
                     sizeof(*b->levels))) {
                b->ok = false;
                return NULL;
        }
        struct ms_sym_level *level = &b->levels[b->n++];
        memset(level, 0, sizeof(*level));
        return level;
}

static void set_string(struct builder *b, char **field, const char *value)
{
        *field = ms_strdup_or_null(value, &b->ok);
}

static void set_name(struct builder *b, struct ms_sym_level *level,
                     const char *raw)
{
        set_string(b, &level->raw_symbol, raw);
        if (!raw)
                return;
        level->function = ms_demangle(raw, &level->language);
        if (!level->function)
                b->ok = false;
}

static enum ms_language cu_language(Dwarf_Die *cudie)
{
        switch (dwarf_srclang(cudie)) {
        case DW_LANG_C89:
        case DW_LANG_C:
        case DW_LANG_C99:
        case DW_LANG_C11:
        case LANG_C17:
                return MS_LANGUAGE_C;
        case DW_LANG_C_plus_plus:
        case DW_LANG_C_plus_plus_03:
        case DW_LANG_C_plus_plus_11:
        case DW_LANG_C_plus_plus_14:
        case LANG_C_PLUS_PLUS_17:
        case LANG_C_PLUS_PLUS_20:
                return MS_LANGUAGE_CXX;
        case DW_LANG_Rust:
                return MS_LANGUAGE_RUST;
        default:
                return MS_LANGUAGE_UNKNOWN;
        }
}

/* Name a DWARF function: its linkage name demangled (full Rust paths), or
 * its plain name (C has no linkage names). */
static void set_die_name(struct builder *b, struct ms_sym_level *level,
                         Dwarf_Die *die, enum ms_language cu_lang)
{
        Dwarf_Attribute attr;
        const char *linkage = dwarf_formstring(
                dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
        if (!linkage)
                linkage = dwarf_formstring(dwarf_attr_integrate(
                        die, DW_AT_MIPS_linkage_name, &attr));
        if (linkage) {
                set_name(b, level, linkage);
                return;
        }
        set_string(b, &level->function, dwarf_diename(die));
        level->language = cu_lang;
}

/* The DW_AT_call_file/line/column of an inlined subroutine: where, in the
 * next function out, it was inlined. */
static void set_call_site(struct builder *b, struct ms_sym_level *level,
                          Dwarf_Die *inlined)
{
        Dwarf_Attribute attr;
        Dwarf_Word value;
        if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr),
                            &value) == 0 &&
            value <= INT32_MAX)
                level->line = (int)value;
        if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_column, &attr),
                            &value) == 0 &&
            value <= INT32_MAX)
                level->column = (int)value;

        Dwarf_Die cu_mem, *cu = dwarf_diecu(inlined, &cu_mem, NULL, NULL);
        Dwarf_Files *files;
        size_t n_files;
        if (!cu ||
            dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr),
                            &value) != 0 ||
            dwarf_getsrcfiles(cu, &files, &n_files) != 0 || value >= n_files)
                return;
        /* Entry 0 of a DWARF 4 file table is libdw's "???". */
        const char *file = dwarf_filesrc(files, value, NULL, NULL);
        if (file && strcmp(file, "???") != 0)
                set_string(b, &level->file, file);
}

/* File and line of address from the line table. */
static void set_line(struct builder *b, struct ms_sym_level *level,
                     Dwfl_Module *mod, uint64_t address)
{
        Dwfl_Line *line = dwfl_module_getsrc(mod, address);
        int lineno = 0, column = 0;
        const char *file =
                line ? dwfl_lineinfo(line, NULL, &lineno, &column, NULL, NULL)
                     : NULL;
        if (!file)
                return;
        set_string(b, &level->file, file);
        level->line = lineno;
        level->column = column;
}

/* Tags without addresses that may own functions: Rust nests every
 * function in namespaces, which dwarf_getscopes does not look into. Types
 * hold only declarations (C++ and Rust put the code of methods outside),
 * so their members are not worth walking through. */
static bool is_container(int tag)
{
        return tag == DW_TAG_namespace || tag == DW_TAG_module;
}

static bool is_block(int tag)
{
        return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
               tag == DW_TAG_lexical_block || tag == DW_TAG_try_block ||
               tag == DW_TAG_catch_block;
}

static bool has_address_attributes(Dwarf_Die *die)
{
        return dwarf_hasattr(die, DW_AT_low_pc) ||
               dwarf_hasattr(die, DW_AT_ranges) ||
               dwarf_hasattr(die, DW_AT_entry_pc);
}

struct scope_search {
        Dwarf_Addr pc;
        Dwarf_Die chain[MAX_SCOPE_DEPTH]; /* outermost first */
        int n;
        /* DIEs looked at: a bound on the work for one address. */
        unsigned long visited;
};

/* Find under parent the blocks holding pc, appending them to s->chain.
 * Returns true when one was found: the search is then over, since blocks
 * do not overlap. */
static bool search_scopes(struct scope_search *s, Dwarf_Die *parent, int depth)
{
        Dwarf_Die child;
        if (depth >= MAX_SCOPE_DEPTH || dwarf_child(parent, &child) != 0)
                return false;
        do {
                if (++s->visited > MAX_SCOPE_VISITS)
                        return false;
                int tag = dwarf_tag(&child);
                if (is_container(tag)) {
                        if (search_scopes(s, &child, depth + 1))
                                return true;
                        continue;
                }
                if (!is_block(tag))
                        continue;
                int r = dwarf_haspc(&child, s->pc);
                if (r > 0) {
                        if (s->n < MAX_SCOPE_DEPTH)
                                s->chain[s->n++] = child;
                        search_scopes(s, &child, depth + 1);
                        return true;
                }
                /* A block without addresses can still hold ones with. */
                if (r < 0 && tag == DW_TAG_lexical_block &&
                    !has_address_attributes(&child) &&
                    search_scopes(s, &child, depth + 1))
                        return true;
        } while (dwarf_siblingof(&child, &child) == 0);
        return false;
}

/* The function scopes at address, innermost first, up to and including
 * the subprogram: inlined subroutines, then the concrete function.
 * Returns their number. */
static int function_scopes(Dwarf_Die *cudie, Dwarf_Addr address,
                           struct scope_search *s, Dwarf_Die **functions)
{
        s->pc = address;
        s->n = 0;
        s->visited = 0;
        search_scopes(s, cudie, 0);
        int k = 0;
        for (int i = s->n - 1; i >= 0 && k < MAX_INLINE_DEPTH; i--) {
                int tag = dwarf_tag(&s->chain[i]);
                if (tag == DW_TAG_inlined_subroutine ||
                    tag == DW_TAG_subprogram)
                        functions[k++] = &s->chain[i];
        }
        return k;
}

/* Number of leading inlined subroutines among the k functions. */
static int count_inlined(Dwarf_Die **functions, int k)
{
        int n = 0;
        while (n < k && dwarf_tag(functions[n]) == DW_TAG_inlined_subroutine)
                n++;
        return n;
}

/* The physical (non-inlined) level: named from the symbol table, which is
 * what every tool without DWARF shows, else from the DWARF subprogram. */
static void set_physical(struct builder *b, struct ms_sym_level *level,
                         Dwfl_Module *mod, uint64_t address,
                         Dwarf_Die *subprogram, enum ms_language cu_lang)
{
        const char *raw;
        uint64_t start;
        if (ms_symtabs_lookup(b->symtabs, mod, address, &raw, &start)) {
                set_name(b, level, raw);
                level->has_symbol = true;
                level->symbol_address = start;
        } else if (subprogram) {
                set_die_name(b, level, subprogram, cu_lang);
        }
        /* The compile unit knows better than the mangling: an extern "C"
         * Rust function has a plain name. */
        if (cu_lang != MS_LANGUAGE_UNKNOWN)
                level->language = cu_lang;
}

/* Markers in a module's userdata slot: whether its DWARF is in the
 * module's own file. */
static char dwarf_embedded, dwarf_separate;

static bool has_debug_info(Elf *elf)
{
        GElf_Shdr shdr;
        return ms_elf_section(elf, ".debug_info", &shdr) ||
               ms_elf_section(elf, ".zdebug_info", &shdr);
}

/* Whether to use mod's DWARF: always when the module's own file has it;
 * from a separate debug file only when allowed, because opening one costs
 * (libc6-dbg's: ~50 ms of decompression) while the symbol table, which is
 * all names need, comes from it anyway. */
static bool use_dwarf(Dwfl_Module *mod, enum ms_dwarf_use use)
{
        if (use != MS_DWARF_EMBEDDED)
                return use == MS_DWARF_ALL;
        void **userdata;
        dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
        if (!*userdata) {
                Dwarf_Addr bias;
                Elf *elf = dwfl_module_getelf(mod, &bias);
                *userdata = elf && has_debug_info(elf) ? &dwarf_embedded
                                                       : &dwarf_separate;
        }
        return *userdata == &dwarf_embedded;
}

/* Fill b with the levels at address, innermost first. */
static void symbolize_into(struct builder *b, Dwfl *dwfl, uint64_t address,
                           enum ms_dwarf_use use)
{
        Dwfl_Module *mod = dwfl_addrmodule(dwfl, address);
        if (!mod) {
                builder_add(b);
                return;
        }
        const char *module =
                dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        /* NULL when the module has no DWARF: no scopes to look at then. */
        bool dwarf = use_dwarf(mod, use);
        Dwarf_Addr bias = 0;
        Dwarf_Die *cudie =
                dwarf ? dwfl_module_addrdie(mod, address, &bias) : NULL;
        /* dwfl may answer with a neighbouring unit (_start, written in
         * assembly, came back as Rust). */
        if (cudie && dwarf_haspc(cudie, address - bias) <= 0)
                cudie = NULL;
        enum ms_language cu_lang =
                cudie ? cu_language(cudie) : MS_LANGUAGE_UNKNOWN;
        /* Large (MAX_SCOPE_DEPTH DIEs): on the heap, not the stack. */
        struct scope_search *search = cudie ? malloc(sizeof(*search)) : NULL;
        Dwarf_Die *functions[MAX_INLINE_DEPTH];
        int k = search ? function_scopes(cudie, address - bias, search,
                                         functions)
                       : 0;
        int n_inlined = count_inlined(functions, k);

        for (int i = 0; i <= n_inlined && b->ok; i++) {
                struct ms_sym_level *level = builder_add(b);
                if (!level)
                        break;
                set_string(b, &level->module, module);
                if (i < n_inlined) {
                        level->inlined = true;
                        set_die_name(b, level, functions[i], cu_lang);
                } else {
                        set_physical(b, level, mod, address,
                                     k > i ? functions[i] : NULL, cu_lang);
                }
                /* An outer level is at the call site of the inline level
                 * just inside it. */
                if (i == 0) {
                        if (dwarf)
                                set_line(b, level, mod, address);
                } else {
                        set_call_site(b, level, functions[i - 1]);
                }
        }
        free(search);
}

struct ms_error *ms_symbolize(struct ms_symbol_cache *cache,
                              struct ms_symtabs *symtabs, Dwfl *dwfl,
                              uint64_t address, enum ms_dwarf_use use,
                              const struct ms_symbolized **ret)
{
        struct cached_symbol *c = ms_u64_table_find(&cache->table, address);
        if (c) {
                *ret = c->symbolized;
                return NULL;
        }
        struct builder b = {.ok = true, .symtabs = symtabs};
        symbolize_into(&b, dwfl, address, use);
        struct ms_symbolized *s = malloc(sizeof(*s));
        c = b.ok && s && b.n ? ms_u64_table_insert(&cache->table, address)
                             : NULL;
        if (!c) {
                levels_free(b.levels, b.n);
                free(s);
                return &ms_error_no_memory;
        }
        s->address = address;
        s->levels = b.levels;
        s->n_levels = b.n;
        c->symbolized = s;
        *ret = s;
        return NULL;
}
