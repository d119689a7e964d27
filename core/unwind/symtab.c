#include <gelf.h>
#include <stddef.h>
#include <stdlib.h>

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

static void build(struct module_symbols *m)
{
        int n = dwfl_module_getsymtab(m->mod);
        if (n <= 1)
                return;
        m->symbols = malloc((size_t)n * sizeof(*m->symbols));
        if (!m->symbols)
                return;
        for (int i = 1; i < n; i++) {
                GElf_Sym sym;
                GElf_Addr address;
                GElf_Word shndx;
                const char *name = dwfl_module_getsym_info(
                        m->mod, i, &sym, &address, &shndx, NULL, NULL);
                if (!is_candidate(&sym, name, shndx))
                        continue;
                m->symbols[m->n++] = (struct symbol){
                        .address = address,
                        .size = sym.st_size,
                        .name = name,
                        .binding = binding_value(&sym),
                        .index = i,
                };
        }
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
