/*
 * The loaded ELF modules of a target, derived from its file mappings.
 *
 * A file mapped at file offset 0 is usually a loaded module, but not always:
 * Rust's std maps every loaded object whole to symbolize a panic backtrace,
 * and debuggers' helpers map debug files. A loaded module is recognised by
 * its layout: the loader maps each PT_LOAD segment separately, so another
 * mapping of the same file starts where the program headers say the next
 * segment goes, at that segment's file offset. When a file has a single
 * mapping at offset 0 (debugger-fed targets hand over one per module), it
 * is taken as it is, except in cores and live processes, whose mappings are
 * complete: there a file with later segments none of which is mapped is data
 * (std maps the separate debug file of the executable whole, once).
 */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target/target.h"

#define MAX_PHDRS 256
#define PAGE_MASK (~(uint64_t)4095)

/* Program headers of the file mapped at m: from target memory (the first
 * page of every mapped ELF file is in a core), else from the host file. */
static size_t read_phdrs(struct ms_target *target, const struct ms_mapping *m,
                         Elf64_Phdr *phdrs, uint16_t *type)
{
        Elf64_Ehdr eh;
        struct ms_error *err =
                ms_target_read(target, m->start, &eh, sizeof(eh));
        bool from_memory = !err;
        ms_error_destroy(err);
        int fd = -1;
        if (!from_memory) {
                if (!m->host_path)
                        return 0;
                fd = open(m->host_path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh))
                        goto fail;
        }
        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
            eh.e_phnum > MAX_PHDRS || eh.e_phoff > (1u << 20))
                goto fail;
        size_t size = eh.e_phnum * sizeof(Elf64_Phdr);
        if (from_memory) {
                err = ms_target_read(target, m->start + eh.e_phoff, phdrs,
                                     size);
                bool ok = !err;
                ms_error_destroy(err);
                if (!ok)
                        goto fail;
        } else if (pread(fd, phdrs, size, (off_t)eh.e_phoff) != (ssize_t)size) {
                goto fail;
        }
        if (fd >= 0)
                close(fd);
        *type = eh.e_type;
        return eh.e_phnum;
fail:
        if (fd >= 0)
                close(fd);
        return 0;
}

/* The first PT_LOAD, or NULL. */
static const Elf64_Phdr *first_load(const Elf64_Phdr *phdrs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (phdrs[i].p_type == PT_LOAD)
                        return &phdrs[i];
        }
        return NULL;
}

static bool same_file(const struct ms_mapping *a, const struct ms_mapping *b)
{
        return a->path && b->path && strcmp(a->path, b->path) == 0;
}

/* Does a mapping of the same file start where the loader would have put
 * a later PT_LOAD segment of the copy mapped at m? A small file linked by
 * lld packs its segments into the first file page (file offsets 0x870,
 * 0xbb0... at the next virtual pages), so every mapping of it has file
 * offset 0: a later segment counts when it starts on a page of its own. */
static bool has_loader_layout(const struct ms_target *target,
                              const struct ms_mapping *m,
                              const Elf64_Phdr *phdrs, size_t n)
{
        const Elf64_Phdr *first = first_load(phdrs, n);
        if (!first)
                return false;
        for (size_t i = 0; i < n; i++) {
                const Elf64_Phdr *ph = &phdrs[i];
                if (ph->p_type != PT_LOAD || ph == first ||
                    (ph->p_vaddr & PAGE_MASK) == (first->p_vaddr & PAGE_MASK))
                        continue;
                uint64_t at = m->start + (ph->p_vaddr & PAGE_MASK) -
                              (first->p_vaddr & PAGE_MASK);
                const struct ms_mapping *seg =
                        ms_target_find_mapping(target, at);
                if (seg && seg->start == at && same_file(seg, m) &&
                    seg->file_offset == (ph->p_offset & PAGE_MASK))
                        return true;
        }
        return false;
}

/* Is m itself a later segment of a copy mapped just below it? The page
 * of such a segment (lld's packed layout) starts with the ELF header too. */
static bool is_later_segment(const struct ms_target *target,
                             const struct ms_mapping *m,
                             const Elf64_Phdr *phdrs, size_t n)
{
        const Elf64_Phdr *first = first_load(phdrs, n);
        for (size_t i = 0; first && i < n; i++) {
                const Elf64_Phdr *ph = &phdrs[i];
                uint64_t delta = (ph->p_vaddr & PAGE_MASK) -
                                 (first->p_vaddr & PAGE_MASK);
                if (ph->p_type != PT_LOAD || ph == first || delta == 0 ||
                    delta > m->start ||
                    m->file_offset != (ph->p_offset & PAGE_MASK))
                        continue;
                const struct ms_mapping *base =
                        ms_target_find_mapping(target, m->start - delta);
                if (base && base->start == m->start - delta &&
                    base->file_offset == 0 && same_file(base, m))
                        return true;
        }
        return false;
}

/* Does the file have a PT_LOAD segment the loader maps on its own, after
 * the first page? */
static bool has_later_segment(const Elf64_Phdr *phdrs, size_t n)
{
        const Elf64_Phdr *first = first_load(phdrs, n);
        for (size_t i = 0; first && i < n; i++) {
                if (phdrs[i].p_type == PT_LOAD && &phdrs[i] != first &&
                    (phdrs[i].p_offset & PAGE_MASK) != 0)
                        return true;
        }
        return false;
}

/* Are the target's mappings all of the process's (cores, live processes),
 * not just one per module (debugger-fed targets)? */
static bool mappings_complete(const struct ms_target *target)
{
        return target->kind == MS_TARGET_CORE || target->kind == MS_TARGET_PID;
}

/* How many mappings of m's file start at file offset 0. */
static size_t count_headers(const struct ms_target *target,
                            const struct ms_mapping *m)
{
        size_t n = 0;
        for (size_t i = 0; i < target->n_mappings; i++) {
                const struct ms_mapping *o = &target->mappings[i];
                n += o->file_offset == 0 && same_file(o, m);
        }
        return n;
}

static bool is_pseudo_path(const char *path)
{
        return !path || path[0] != '/' || strncmp(path, "/dev/", 5) == 0 ||
               strncmp(path, "/memfd:", 7) == 0 ||
               strncmp(path, "/SYSV", 5) == 0;
}

static struct ms_error *compute_modules(struct ms_target *target)
{
        free(target->modules);
        target->modules = NULL;
        target->n_modules = 0;
        size_t capacity = 0;
        Elf64_Phdr *phdrs = malloc(MAX_PHDRS * sizeof(*phdrs));
        if (!phdrs)
                return &ms_error_no_memory;
        for (size_t i = 0; i < target->n_mappings; i++) {
                const struct ms_mapping *m = &target->mappings[i];
                if (m->file_offset != 0 || is_pseudo_path(m->path))
                        continue;
                uint16_t type = ET_NONE;
                size_t n = read_phdrs(target, m, phdrs, &type);
                /* Data files (locale archive) are mapped at 0 too. */
                if (!n && m->host_path)
                        continue;
                bool alone = count_headers(target, m) == 1 &&
                             (!mappings_complete(target) ||
                              !has_later_segment(phdrs, n));
                if (n && !alone &&
                    (!has_loader_layout(target, m, phdrs, n) ||
                     is_later_segment(target, m, phdrs, n)))
                        continue;
                /* A non-PIE executable (or its debug file, which Rust's
                 * panic backtrace maps whole) runs only at its own
                 * addresses: mapped elsewhere, it is a file being read. */
                const Elf64_Phdr *load = first_load(phdrs, n);
                if (type == ET_EXEC && load &&
                    m->start != (load->p_vaddr & PAGE_MASK))
                        continue;
                if (!ms_grow((void **)&target->modules, &capacity,
                             target->n_modules, sizeof(*target->modules))) {
                        free(phdrs);
                        return &ms_error_no_memory;
                }
                const Elf64_Phdr *first = first_load(phdrs, n);
                struct ms_module *mod = &target->modules[target->n_modules++];
                mod->path = m->path;
                mod->host_path = m->host_path;
                mod->start = m->start;
                mod->have_bias = first != NULL;
                mod->bias = m->start - (first ? first->p_vaddr & PAGE_MASK : 0);
        }
        free(phdrs);
        return NULL;
}

struct ms_error *ms_target_modules(struct ms_target *target,
                                   const struct ms_module **ret, size_t *n)
{
        if (!target->have_modules ||
            target->modules_for_n_mappings != target->n_mappings) {
                struct ms_error *err = compute_modules(target);
                if (err)
                        return err;
                target->have_modules = true;
                target->modules_for_n_mappings = target->n_mappings;
        }
        *ret = target->modules;
        *n = target->n_modules;
        return NULL;
}
