#include <gelf.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "unwind/symtab.h"

/* Symbols looked at below the address asked for before giving up on a
 * containing one (functions do not nest: the first few decide). */
#define MAX_LOOKBACK 64

struct symbol {
        uint64_t address;
        uint64_t size;
        const char *name;
        int binding; /* higher is better: global, weak, local */
        int index;   /* in the module's table: the first one wins ties */
};

struct module_symbols {
        Dwfl_Module *mod;
        struct symbol *symbols; /* by address, then worst binding first */
        size_t n;
};

struct ms_symtabs {
        struct module_symbols *modules;
        size_t n, capacity;
};

struct ms_symtabs *ms_symtabs_create(void)
{
        return calloc(1, sizeof(struct ms_symtabs));
}

void ms_symtabs_destroy(struct ms_symtabs *symtabs)
{
        if (!symtabs)
                return;
        for (size_t i = 0; i < symtabs->n; i++)
                free(symtabs->modules[i].symbols);
        free(symtabs->modules);
        free(symtabs);
}

static int binding_value(const GElf_Sym *sym)
{
        switch (GELF_ST_BIND(sym->st_info)) {
        case STB_GLOBAL:
                return 3;
        case STB_WEAK:
                return 2;
        case STB_LOCAL:
                return 1;
        default:
                return 0;
        }
}

static int compare_symbols(const void *a, const void *b)
{
        const struct symbol *x = a, *y = b;
        if (x->address != y->address)
                return x->address < y->address ? -1 : 1;
        if (x->binding != y->binding)
                return x->binding - y->binding;
        return y->index - x->index;
}

/* What dwfl_module_addrinfo considers: named, defined, not a section,
 * file or TLS symbol. */
static bool is_candidate(const GElf_Sym *sym, const char *name, GElf_Word shndx)
{
        int type = GELF_ST_TYPE(sym->st_info);
        return name && *name && shndx != SHN_UNDEF && type != STT_SECTION &&
               type != STT_FILE && type != STT_TLS;
}

/* ------------------------------------------------------------------------
 * Bodies named by the exported function that jumps to them
 * ------------------------------------------------------------------------ */

/* Thunks looked at per module, at most. */
#define MAX_THUNKS 65536

Elf_Scn *ms_elf_section(Elf *elf, const char *name, GElf_Shdr *shdr)
{
        size_t shstrndx;
        if (elf_getshdrstrndx(elf, &shstrndx) != 0)
                return NULL;
        for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn;
             scn = elf_nextscn(elf, scn)) {
                const char *n =
                        gelf_getshdr(scn, shdr)
                                ? elf_strptr(elf, shstrndx, shdr->sh_name)
                                : NULL;
                if (n && strcmp(n, name) == 0)
                        return scn;
        }
        return NULL;
}

/* The data and address of the section of elf named name, or NULL. */
static const uint8_t *section(Elf *elf, const char *name, uint64_t *addr,
                              size_t *size)
{
        GElf_Shdr sh;
        Elf_Scn *scn = ms_elf_section(elf, name, &sh);
        Elf_Data *data =
                scn && sh.sh_type != SHT_NOBITS ? elf_getdata(scn, NULL) : NULL;
        if (!data || !data->d_buf || data->d_off != 0)
                return NULL;
        *addr = sh.sh_addr;
        *size = data->d_size;
        return data->d_buf;
}

static uint32_t u32_at(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
               (uint32_t)p[3] << 24;
}

/* The code bytes of the module's file at file address addr (n of them),
 * or NULL when no executable section holds them. */
static const uint8_t *code_at(Elf *elf, uint64_t addr, size_t n)
{
        for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn;
             scn = elf_nextscn(elf, scn)) {
                GElf_Shdr sh;
                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
                    !(sh.sh_flags & SHF_EXECINSTR) || addr < sh.sh_addr ||
                    addr - sh.sh_addr >= sh.sh_size)
                        continue;
                Elf_Data *data = elf_getdata(scn, NULL);
                uint64_t off = addr - sh.sh_addr;
                if (!data || !data->d_buf || data->d_off != 0 ||
                    off > data->d_size || data->d_size - off < n)
                        return NULL;
                return (const uint8_t *)data->d_buf + off;
        }
        return NULL;
}

/* Where a function whose code is only `[endbr64] jmp rel32` jumps (file
 * addresses), or 0. */
static uint64_t jump_target(Elf *elf, uint64_t addr)
{
        static const uint8_t endbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
        const uint8_t *code = code_at(elf, addr, sizeof(endbr64) + 5);
        if (!code)
                return 0;
        size_t p = memcmp(code, endbr64, sizeof(endbr64)) == 0 ? sizeof(endbr64)
                                                               : 0;
        if (code[p] != 0xe9)
                return 0;
        int32_t rel = (int32_t)u32_at(code + p + 1);
        return addr + p + 5 + (uint64_t)(int64_t)rel;
}

/* The unwind tables of a module's file: .eh_frame_hdr's sorted table of
 * (function start, FDE) pairs and .eh_frame. */
struct eh_tables {
        const uint8_t *hdr, *frame;
        uint64_t hdr_addr, frame_addr;
        size_t hdr_size, frame_size;
        uint32_t count;
};

/* Only the encodings every x86-64 toolchain writes are taken: version 1,
 * a pc-relative sdata4 .eh_frame pointer, a udata4 count, a
 * data-relative sdata4 table. */
static bool eh_tables_init(Elf *elf, struct eh_tables *t)
{
        t->hdr = section(elf, ".eh_frame_hdr", &t->hdr_addr, &t->hdr_size);
        t->frame = section(elf, ".eh_frame", &t->frame_addr, &t->frame_size);
        if (!t->hdr || !t->frame || t->hdr_size < 12 || t->hdr[0] != 1 ||
            t->hdr[1] != 0x1b || t->hdr[2] != 0x03 || t->hdr[3] != 0x3b)
                return false;
        t->count = u32_at(t->hdr + 8);
        return t->count <= (t->hdr_size - 12) / 8;
}

/* The size of the function starting at target (file address) by the FDE
 * that starts there, 0 when none does. The FDE's own pc_begin
 * (pc-relative sdata4) must equal target, which also checks the
 * encoding; its pc_range follows. */
static uint64_t function_size(const struct eh_tables *t, uint64_t target)
{
        size_t lo = 0, hi = t->count;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const uint8_t *e = t->hdr + 12 + 8 * mid;
                uint64_t start =
                        t->hdr_addr + (uint64_t)(int64_t)(int32_t)u32_at(e);
                if (start < target) {
                        lo = mid + 1;
                        continue;
                }
                if (start > target) {
                        hi = mid;
                        continue;
                }
                uint64_t fde =
                        t->hdr_addr + (uint64_t)(int64_t)(int32_t)u32_at(e + 4);
                if (fde < t->frame_addr ||
                    fde - t->frame_addr > t->frame_size ||
                    t->frame_size - (fde - t->frame_addr) < 16)
                        return 0;
                const uint8_t *f = t->frame + (fde - t->frame_addr);
                uint64_t begin =
                        fde + 8 + (uint64_t)(int64_t)(int32_t)u32_at(f + 8);
                return begin == target ? u32_at(f + 12) : 0;
        }
        return 0;
}

/*
 * Stripped PGO+LTO builds export some functions as a bare jump to a body
 * that keeps no symbol: Debian's Py_FinalizeEx is `endbr64; jmp` to what
 * the -dbg symbols call _Py_Finalize.constprop.0. Such a body is that
 * function's code, so it is named after it, over the range its CFI gives;
 * it ranks below every real symbol (binding 0), so a symbol table that
 * names the body wins. When several thunks jump to one body, the longest
 * name wins (Py_Finalize wraps Py_FinalizeEx).
 */
static void add_jump_targets(struct module_symbols *m, size_t n_real)
{
        Dwarf_Addr bias = 0;
        Elf *elf = dwfl_module_getelf(m->mod, &bias);
        struct eh_tables t;
        if (!elf || !eh_tables_init(elf, &t))
                return;
        for (size_t i = 0, thunks = 0; i < n_real && thunks < MAX_THUNKS; i++) {
                const struct symbol *s = &m->symbols[i];
                if (s->binding < 2 || s->size < 5 || s->address < bias)
                        continue;
                uint64_t target = jump_target(elf, s->address - bias);
                uint64_t size = target ? function_size(&t, target) : 0;
                if (!size)
                        continue;
                thunks++;
                size_t len = strlen(s->name);
                m->symbols[m->n++] = (struct symbol){
                        .address = target + bias,
                        .size = size,
                        .name = s->name,
                        .binding = 0,
                        .index = len < INT_MAX ? INT_MAX - (int)len : 0,
                };
        }
}

static void build(struct module_symbols *m)
{
        int n = dwfl_module_getsymtab(m->mod);
        if (n <= 1)
                return;
        /* Room for a body per symbol (add_jump_targets). */
        m->symbols = malloc(2 * (size_t)n * sizeof(*m->symbols));
        if (!m->symbols)
                return;
        bool local_functions = false;
        for (int i = 1; i < n; i++) {
                GElf_Sym sym;
                GElf_Addr address;
                GElf_Word shndx;
                const char *name = dwfl_module_getsym_info(
                        m->mod, i, &sym, &address, &shndx, NULL, NULL);
                if (!is_candidate(&sym, name, shndx))
                        continue;
                local_functions |= GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
                                   GELF_ST_BIND(sym.st_info) == STB_LOCAL;
                m->symbols[m->n++] = (struct symbol){
                        .address = address,
                        .size = sym.st_size,
                        .name = name,
                        .binding = binding_value(&sym),
                        .index = i,
                };
        }
        /* A table with static functions (.symtab, a debug file) names
         * the bodies itself. */
        if (!local_functions)
                add_jump_targets(m, m->n);
        qsort(m->symbols, m->n, sizeof(*m->symbols), compare_symbols);
}

static struct module_symbols *module_symbols(struct ms_symtabs *symtabs,
                                             Dwfl_Module *mod)
{
        for (size_t i = 0; i < symtabs->n; i++) {
                if (symtabs->modules[i].mod == mod)
                        return &symtabs->modules[i];
        }
        if (!ms_grow((void **)&symtabs->modules, &symtabs->capacity, symtabs->n,
                     sizeof(*symtabs->modules)))
                return NULL;
        struct module_symbols *m = &symtabs->modules[symtabs->n++];
        *m = (struct module_symbols){.mod = mod};
        build(m);
        return m;
}

void ms_symtabs_load(struct ms_symtabs *symtabs, Dwfl_Module *mod)
{
        module_symbols(symtabs, mod);
}

/* Index of the last symbol at or below address, or -1. */
static ptrdiff_t last_at_or_below(const struct module_symbols *m,
                                  uint64_t address)
{
        return (ptrdiff_t)ms_count_at_or_below(
                       m->symbols, m->n, sizeof(*m->symbols),
                       offsetof(struct symbol, address), address) -
               1;
}

bool ms_symtabs_lookup(struct ms_symtabs *symtabs, Dwfl_Module *mod,
                       uint64_t address, const char **name, uint64_t *start)
{
        const struct module_symbols *m = module_symbols(symtabs, mod);
        if (!m || !m->n)
                return false;
        const struct symbol *label = NULL;
        /* Sized symbols below exclude labels below their end. */
        uint64_t min_label = 0;
        ptrdiff_t i = last_at_or_below(m, address);
        for (ptrdiff_t k = 0; i >= 0 && k < MAX_LOOKBACK; i--, k++) {
                const struct symbol *s = &m->symbols[i];
                if (s->size) {
                        if (address - s->address < s->size) {
                                *name = s->name;
                                *start = s->address;
                                return true;
                        }
                        if (s->address + s->size > min_label)
                                min_label = s->address + s->size;
                } else if (!label) {
                        /* Walking down: at one address, the better binding
                         * comes first. */
                        label = s;
                }
        }
        if (!label || label->address < min_label)
                return false;
        *name = label->name;
        *start = label->address;
        return true;
}
