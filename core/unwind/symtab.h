/*
 * Address-to-symbol lookup over a module's symbol tables by binary search.
 * dwfl_module_addrinfo() looks at every symbol of the module each time:
 * with libpython's or a debug file's tens of thousands of symbols, that
 * was most of the time spent naming frames. The answer is the same: the
 * containing sized symbol that starts last (global before weak before
 * local), else the nearest assembly label above every sized symbol below.
 */
#ifndef MIXSTACK_UNWIND_SYMTAB_H
#define MIXSTACK_UNWIND_SYMTAB_H

#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdint.h>

/* The sorted symbols of every module looked at, built on first use. */
struct ms_symtabs;

struct ms_symtabs *ms_symtabs_create(void);
void ms_symtabs_destroy(struct ms_symtabs *symtabs);

/* Build mod's table now (else on its first lookup). */
void ms_symtabs_load(struct ms_symtabs *symtabs, Dwfl_Module *mod);

/* The symbol of mod at address: its name (owned by dwfl) and start.
 * Returns false when no symbol covers address or out of memory. */
bool ms_symtabs_lookup(struct ms_symtabs *symtabs, Dwfl_Module *mod,
                       uint64_t address, const char **name, uint64_t *start);

/* The section of elf named name (its header into *shdr), or NULL. */
Elf_Scn *ms_elf_section(Elf *elf, const char *name, GElf_Shdr *shdr);

#endif /* MIXSTACK_UNWIND_SYMTAB_H */
