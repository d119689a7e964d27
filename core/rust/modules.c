/*
 * Rust modules of a target and their GLOBAL_PANIC_COUNT. Symbols are read
 * here from each mapped file with libelf rather than through the unwinder:
 * std's counters are LOCAL symbols present once per module (every cdylib
 * links its own std), and a lookup by name returns only the first.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rust/internal.h"

/* Substrings of the raw symbol names that hold for both manglings:
 * legacy "_ZN3std9panicking11panic_count18GLOBAL_PANIC_COUNT17h…E" and v0
 * "_RNvNtNtCs…_3std9panicking11panic_count18GLOBAL_PANIC_COUNT". */
#define SYM_GLOBAL "9panicking11panic_count18GLOBAL_PANIC_COUNT"
#define SYM_LOCAL "11panic_count17LOCAL_PANIC_COUNT"
#define SYM_CANARY "12panic_unwind3imp6CANARY"
#define SYM_CLEANUP "12panic_unwind3imp5panic17exception_cleanup"
#define RUSTC_COMMENT "rustc version "

/* A bound on the symbols looked at per table: real tables have at most a
 * few million entries. */
#define MAX_SYMBOLS (16u * 1024 * 1024)
/* More than this many threads in a panic at once is not a counter. */
#define PLAUSIBLE_COUNT 1000000

static const char *section_name(Elf *elf, size_t shstrndx, GElf_Shdr *shdr)
{
        return elf_strptr(elf, shstrndx, shdr->sh_name);
}

/* The first "rustc version ..." string of .comment (NUL-separated). */
static struct ms_error *read_comment(Elf_Scn *scn,
                                     struct ms_rust_elf_info *info)
{
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !data->d_buf)
                return NULL;
        const char *p = data->d_buf;
        size_t size = data->d_size, len = strlen(RUSTC_COMMENT);
        for (size_t at = 0; at < size;) {
                const char *s = p + at;
                const char *nul = memchr(s, '\0', size - at);
                size_t n = nul ? (size_t)(nul - s) : size - at;
                if (n >= len && memcmp(s, RUSTC_COMMENT, len) == 0 && n < 256 &&
                    ms_rust_text_ok((const uint8_t *)s, n)) {
                        info->rustc_version = strndup(s, n);
                        return info->rustc_version ? NULL : &ms_error_no_memory;
                }
                at += n + 1;
        }
        return NULL;
}

/* 1.85 splits LOCAL_PANIC_COUNT into "….0.llvm.N" (the count) and
 * "….1.llvm.N" (the 1-byte in_hook flag). */
static bool is_hook_part(const char *name, const GElf_Sym *sym)
{
        const char *val = strstr(name, "VAL");
        return sym->st_size == 1 && val && strstr(val, ".1") != NULL;
}

static void take_symbol(const char *name, const GElf_Sym *sym,
                        struct ms_rust_elf_info *info)
{
        unsigned type = GELF_ST_TYPE(sym->st_info);
        if (sym->st_shndx == SHN_UNDEF || !strstr(name, "panic"))
                return;
        if (!info->have_global && type == STT_OBJECT &&
            strstr(name, SYM_GLOBAL)) {
                info->have_global = true;
                info->global_value = sym->st_value;
        } else if (type == STT_TLS && strstr(name, SYM_LOCAL)) {
                if (is_hook_part(name, sym)) {
                        if (!info->have_local_hook) {
                                info->have_local_hook = true;
                                info->local_hook_value = sym->st_value;
                        }
                } else if (!info->have_local &&
                           (sym->st_size == 8 || sym->st_size == 16)) {
                        info->have_local = true;
                        info->local_value = sym->st_value;
                        info->local_size = sym->st_size;
                }
        } else if (!info->have_canary && type == STT_OBJECT &&
                   strstr(name, SYM_CANARY)) {
                info->have_canary = true;
                info->canary_value = sym->st_value;
        } else if (!info->have_cleanup && type == STT_FUNC &&
                   strstr(name, SYM_CLEANUP)) {
                info->have_cleanup = true;
                info->cleanup_value = sym->st_value;
        }
}

static void read_symbols(Elf *elf, Elf_Scn *scn, GElf_Shdr *shdr,
                         struct ms_rust_elf_info *info)
{
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !shdr->sh_entsize)
                return;
        size_t n = MS_MIN(data->d_size / shdr->sh_entsize, (size_t)MAX_SYMBOLS);
        for (size_t i = 1; i < n; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(data, (int)i, &sym))
                        break;
                const char *name = elf_strptr(elf, shdr->sh_link, sym.st_name);
                if (name)
                        take_symbol(name, &sym, info);
        }
}

#define PAGE_MASK (~(uint64_t)0xfff)

/* .symtab first: it has the LOCAL symbols; .dynsym after, for the rare
 * build that exports them. */
static struct ms_error *read_sections(Elf *elf, struct ms_rust_elf_info *info)
{
        size_t shstrndx;
        if (elf_getshdrstrndx(elf, &shstrndx) != 0)
                return NULL;
        Elf_Scn *dynsym = NULL;
        GElf_Shdr dynsym_shdr;
        for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn;
             scn = elf_nextscn(elf, scn)) {
                GElf_Shdr shdr;
                if (!gelf_getshdr(scn, &shdr))
                        continue;
                if (shdr.sh_type == SHT_SYMTAB) {
                        info->have_symtab = true;
                        read_symbols(elf, scn, &shdr, info);
                } else if (shdr.sh_type == SHT_DYNSYM) {
                        dynsym = scn;
                        dynsym_shdr = shdr;
                } else if (shdr.sh_type == SHT_PROGBITS &&
                           !info->rustc_version) {
                        const char *name = section_name(elf, shstrndx, &shdr);
                        if (name && strcmp(name, ".comment") == 0) {
                                struct ms_error *err = read_comment(scn, info);
                                if (err)
                                        return err;
                        }
                }
        }
        if (dynsym)
                read_symbols(elf, dynsym, &dynsym_shdr, info);
        return NULL;
}

struct ms_error *ms_rust_elf_read(const char *path,
                                  struct ms_rust_elf_info *info)
{
        memset(info, 0, sizeof(*info));
        elf_version(EV_CURRENT);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        struct ms_error *err = NULL;
        GElf_Ehdr ehdr;
        if (elf && elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, &ehdr)) {
                info->is_elf = true;
                err = read_sections(elf, info);
                info->is_rust = info->rustc_version || info->have_global ||
                                info->have_canary;
        }
        if (elf)
                elf_end(elf);
        close(fd);
        return err;
}

void ms_rust_elf_info_deinit(struct ms_rust_elf_info *info)
{
        free(info->rustc_version);
        info->rustc_version = NULL;
}
static char *reason(const char *fmt, const char *arg)
{
        char *s = NULL;
        if (asprintf(&s, fmt, arg) < 0)
                return NULL;
        return s;
}

/* Read GLOBAL_PANIC_COUNT, or say why it is unknown. */
static struct ms_error *read_global(struct ms_target *target,
                                    const struct ms_rust_elf_info *info,
                                    struct ms_rust_module *m,
                                    struct ms_warnings *warnings)
{
        if (!info->have_global) {
                m->count_unknown_reason = strdup(
                        info->have_symtab ? "no GLOBAL_PANIC_COUNT symbol"
                                          : "no symbol table (stripped)");
                return m->count_unknown_reason ? NULL : &ms_error_no_memory;
        }
        m->count_address = m->bias + info->global_value;
        uint64_t v;
        struct ms_error *err = ms_target_read_u64(target, m->count_address, &v);
        if (err) {
                m->count_unknown_reason =
                        reason("cannot read it: %s", err->message);
                ms_error_destroy(err);
                return m->count_unknown_reason ? NULL : &ms_error_no_memory;
        }
        m->count_known = true;
        m->always_abort = (v & MS_RUST_ALWAYS_ABORT_FLAG) != 0;
        m->global_panic_count = v & ~MS_RUST_ALWAYS_ABORT_FLAG;
        if (m->global_panic_count > PLAUSIBLE_COUNT)
                ms_warnings_add(warnings,
                                "%s: implausible GLOBAL_PANIC_COUNT %" PRIu64
                                " at 0x%" PRIx64,
                                m->path, m->global_panic_count,
                                m->count_address);
        return NULL;
}

static struct ms_error *add_module(struct ms_target *target,
                                   struct ms_rust_state *state,
                                   const struct ms_rust_elf_info *info,
                                   const struct ms_module *mod,
                                   size_t *capacity)
{
        if (state->n_modules >= MS_RUST_MAX_MODULES) {
                ms_warnings_add(&state->warnings,
                                "more than %d Rust modules: the rest ignored",
                                MS_RUST_MAX_MODULES);
                return NULL;
        }
        if (!ms_grow((void **)&state->modules, capacity, state->n_modules,
                     sizeof(*state->modules)))
                return &ms_error_no_memory;
        struct ms_rust_module *m = &state->modules[state->n_modules++];
        memset(m, 0, sizeof(*m));
        bool ok = true;
        m->path = ms_strdup_or_null(mod->path, &ok);
        m->rustc_version = ms_strdup_or_null(info->rustc_version, &ok);
        if (!ok)
                return &ms_error_no_memory;
        m->bias = mod->bias;
        if (info->have_canary)
                m->canary_address = m->bias + info->canary_value;
        if (info->have_cleanup)
                m->cleanup_address = m->bias + info->cleanup_value;
        m->have_local = info->have_local;
        m->local_offset = info->local_value;
        m->local_size = info->local_size;
        m->have_local_hook = info->have_local_hook;
        m->local_hook_offset = info->local_hook_value;
        return read_global(target, info, m, &state->warnings);
}

/* Every loaded module whose file is Rust code. The target decides what is
 * loaded (a file Rust's backtrace symbolizer mapped whole is not). */
struct ms_error *ms_rust_modules_read(struct ms_target *target,
                                      struct ms_rust_state *state)
{
        const struct ms_module *modules;
        size_t n_modules, capacity = 0;
        struct ms_error *err = ms_target_modules(target, &modules, &n_modules);
        for (size_t i = 0; i < n_modules && !err; i++) {
                const struct ms_module *mod = &modules[i];
                if (!mod->host_path)
                        continue;
                struct ms_rust_elf_info info;
                err = ms_rust_elf_read(mod->host_path, &info);
                if (!err && info.is_rust)
                        err = add_module(target, state, &info, mod, &capacity);
                ms_rust_elf_info_deinit(&info);
        }
        return err;
}

const struct ms_rust_module *ms_rust_module_at(
        const struct ms_rust_state *state, const struct ms_target *target,
        uint64_t address)
{
        const struct ms_mapping *m = ms_target_find_mapping(target, address);
        if (!m || !m->path)
                return NULL;
        const struct ms_rust_module *best = NULL;
        for (size_t i = 0; i < state->n_modules; i++) {
                const struct ms_rust_module *r = &state->modules[i];
                /* Of several copies of a file, the one loaded nearest
                 * below the address. */
                if (strcmp(r->path, m->path) == 0 && r->bias <= address &&
                    (!best || r->bias > best->bias))
                        best = r;
        }
        return best;
}

const struct ms_rust_module *ms_rust_find_module(
        const struct ms_rust_state *state, const char *path)
{
        for (size_t i = 0; path && i < state->n_modules; i++) {
                if (strcmp(state->modules[i].path, path) == 0)
                        return &state->modules[i];
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * Exact lookups (glibc's symbols for the TLS walk)
 * ------------------------------------------------------------------------ */

static void lookup_table(Elf *elf, Elf_Scn *scn, GElf_Shdr *shdr,
                         const char *const *names, size_t n_names,
                         uint64_t *values, bool *found)
{
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !shdr->sh_entsize)
                return;
        size_t n = MS_MIN(data->d_size / shdr->sh_entsize, (size_t)MAX_SYMBOLS);
        for (size_t i = 1; i < n; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(data, (int)i, &sym) ||
                    sym.st_shndx == SHN_UNDEF)
                        continue;
                const char *name = elf_strptr(elf, shdr->sh_link, sym.st_name);
                for (size_t k = 0; name && k < n_names; k++) {
                        if (!found[k] && strcmp(name, names[k]) == 0) {
                                found[k] = true;
                                values[k] = sym.st_value;
                        }
                }
        }
}

struct ms_error *ms_rust_elf_lookup(const char *path, const char *const *names,
                                    size_t n, uint64_t *values, bool *found)
{
        memset(found, 0, n * sizeof(*found));
        elf_version(EV_CURRENT);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ms_error_from_errno(errno, "cannot open %s", path);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf || elf_kind(elf) != ELF_K_ELF) {
                if (elf)
                        elf_end(elf);
                close(fd);
                return ms_error_create(MS_ERROR_BAD_INPUT, "%s: not ELF", path);
        }
        for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn;
             scn = elf_nextscn(elf, scn)) {
                GElf_Shdr shdr;
                if (gelf_getshdr(scn, &shdr) &&
                    (shdr.sh_type == SHT_DYNSYM || shdr.sh_type == SHT_SYMTAB))
                        lookup_table(elf, scn, &shdr, names, n, values, found);
        }
        elf_end(elf);
        close(fd);
        return NULL;
}
