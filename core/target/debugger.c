/*
 * The debugger-fed target: a gdb or lldb plugin hands over memory through a
 * callback and adds threads and mappings one by one.
 *
 * Mappings are kept sorted and resolved to host files as they are added
 * (ms_target_insert_mapping), so the target is consistent after every call
 * and needs no "finish" step the plugins could forget.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "target/backend.h"
#include "target/regions.h"

struct debugger_target {
        struct ms_target target;
        ms_read_memory_fn *read_memory;
        void *arg;
        /* Writable memory the debugger listed (ms_target_add_region). */
        struct ms_memory_region *regions;
        size_t n_regions, regions_capacity;
};

static struct debugger_target *to_debugger(struct ms_target *target)
{
        return (struct debugger_target *)target;
}

static struct ms_error *debugger_read(struct ms_target *target,
                                      uint64_t address, void *buf, size_t size)
{
        struct debugger_target *d = to_debugger(target);
        if (d->read_memory(d->arg, address, buf, size) != 0)
                return ms_error_create(MS_ERROR_FAULT,
                                       "cannot read %zu bytes at 0x%" PRIx64,
                                       size, address);
        return NULL;
}

static void debugger_destroy(struct ms_target *target)
{
        free(to_debugger(target)->regions);
        free(to_debugger(target));
}

static const struct ms_target_ops debugger_ops = {
        .read = debugger_read,
        .destroy = debugger_destroy,
};

struct ms_error *ms_target_create_debugger(
        ms_read_memory_fn *read_memory, void *arg,
        const struct ms_target_options *options, struct ms_target **ret)
{
        if (!read_memory || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no memory reader given");
        struct debugger_target *d = calloc(1, sizeof(*d));
        if (!d)
                return &ms_error_no_memory;
        d->read_memory = read_memory;
        d->arg = arg;
        struct ms_error *err = ms_target_init(&d->target, &debugger_ops,
                                              MS_TARGET_DEBUGGER, options);
        /* The process holds still while the target lives (the debugger
         * has it stopped): whole pages are read once, which turns the
         * unwinder's many small reads into few calls into the debugger. */
        if (!err && !ms_target_cache_pages(&d->target))
                err = &ms_error_no_memory;
        if (err) {
                ms_target_destroy(&d->target);
                return err;
        }
        *ret = &d->target;
        return NULL;
}

static struct ms_error *check_debugger(struct ms_target *target)
{
        if (!target || target->kind != MS_TARGET_DEBUGGER)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "not a debugger target");
        return NULL;
}

struct ms_error *ms_target_add_thread(struct ms_target *target, pid_t tid,
                                      const char *name,
                                      const uint64_t regs[MS_NUM_REGS],
                                      uint64_t fs_base)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (ms_target_find_thread(target, tid))
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "thread %d added twice", (int)tid);
        return ms_target_append_thread(target, tid, name, regs, fs_base);
}

struct ms_error *ms_target_add_mapping(struct ms_target *target,
                                       const char *path, uint64_t start,
                                       uint64_t end, uint64_t file_offset)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        return ms_target_insert_mapping(target, path, start, end, file_offset);
}

/* A core names its process, not its threads (NT_PRPSINFO's pr_fname, the
 * comm: the executable's name cut to 15 bytes), and debuggers do not all
 * pass it on (gdb does not): the main thread gets it as in a core read by
 * the CLI. */
static struct ms_error *name_main_thread(struct ms_target *target)
{
        const char *exe = target->executable;
        if (!exe || !target->pid)
                return NULL;
        for (size_t i = 0; i < target->n_threads; i++) {
                struct ms_target_thread *t = &target->threads[i];
                if (t->tid != target->pid || t->name)
                        continue;
                const char *base = strrchr(exe, '/');
                base = base ? base + 1 : exe;
                if (!*base)
                        return NULL;
                t->name = strndup(base, 15);
                return t->name ? NULL : &ms_error_no_memory;
        }
        return NULL;
}

struct ms_error *ms_target_set_process(struct ms_target *target, pid_t pid,
                                       const char *executable, int signo,
                                       pid_t signal_tid)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (signo < 0 || signo >= 65)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "bad signal number %d", signo);
        if (executable) {
                err = ms_target_set_executable(target, executable);
                if (err)
                        return err;
        }
        target->pid = pid;
        target->signo = signo;
        target->signal_tid = signo ? signal_tid : 0;
        return name_main_thread(target);
}

/* At most this many regions are kept: enough for any process. */
#define MAX_REGIONS 1000000

struct ms_error *ms_target_add_region(struct ms_target *target, uint64_t start,
                                      uint64_t end, bool writable)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (end <= start)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "empty region 0x%" PRIx64 "-0x%" PRIx64,
                                       start, end);
        struct debugger_target *d = to_debugger(target);
        if (!writable || d->n_regions >= MAX_REGIONS)
                return NULL;
        if (!ms_grow((void **)&d->regions, &d->regions_capacity, d->n_regions,
                     sizeof(*d->regions)))
                return &ms_error_no_memory;
        d->regions[d->n_regions++] =
                (struct ms_memory_region){.start = start, .end = end};
        return NULL;
}

bool ms_target_debugger_regions(const struct ms_target *target,
                                const struct ms_memory_region **regions,
                                size_t *n)
{
        if (target->kind != MS_TARGET_DEBUGGER)
                return false;
        const struct debugger_target *d =
                (const struct debugger_target *)target;
        *regions = d->regions;
        *n = d->n_regions;
        return d->n_regions > 0;
}

/* The mappings of an ELF image loaded with bias: its PT_LOAD segments,
 * page-aligned as the kernel maps them. */
static struct ms_error *add_segments(struct ms_target *target, const char *path,
                                     const uint8_t *image, size_t size,
                                     const Elf64_Ehdr *ehdr, uint64_t bias)
{
        const uint64_t page = 4096;
        for (size_t i = 0; i < ehdr->e_phnum; i++) {
                Elf64_Phdr ph;
                uint64_t at = ehdr->e_phoff + i * (uint64_t)ehdr->e_phentsize;
                if (at > size || size - at < sizeof(ph))
                        break;
                memcpy(&ph, image + at, sizeof(ph));
                if (ph.p_type != PT_LOAD || !ph.p_memsz)
                        continue;
                uint64_t start = (bias + ph.p_vaddr) & ~(page - 1);
                uint64_t end = (bias + ph.p_vaddr + ph.p_memsz + page - 1) &
                               ~(page - 1);
                if (end <= start)
                        continue;
                struct ms_error *err = ms_target_add_mapping(
                        target, path, start, end, ph.p_offset & ~(page - 1));
                if (err)
                        return err;
        }
        return NULL;
}

/* The address in the file of section name (NULL: the ELF header, i.e. the
 * first PT_LOAD segment at file offset 0). */
static bool file_address(const uint8_t *image, size_t size,
                         const Elf64_Ehdr *ehdr, const char *name,
                         uint64_t *ret)
{
        if (!name) {
                for (size_t i = 0; i < ehdr->e_phnum; i++) {
                        Elf64_Phdr ph;
                        uint64_t at =
                                ehdr->e_phoff + i * (uint64_t)ehdr->e_phentsize;
                        if (at > size || size - at < sizeof(ph))
                                return false;
                        memcpy(&ph, image + at, sizeof(ph));
                        if (ph.p_type == PT_LOAD && ph.p_offset == 0) {
                                *ret = ph.p_vaddr;
                                return true;
                        }
                }
                return false;
        }
        Elf64_Shdr strtab;
        uint64_t at =
                ehdr->e_shoff + ehdr->e_shstrndx * (uint64_t)ehdr->e_shentsize;
        if (!ehdr->e_shoff || ehdr->e_shstrndx >= ehdr->e_shnum || at > size ||
            size - at < sizeof(strtab))
                return false;
        memcpy(&strtab, image + at, sizeof(strtab));
        if (strtab.sh_offset > size || size - strtab.sh_offset < strtab.sh_size)
                return false;
        const char *names = (const char *)image + strtab.sh_offset;
        size_t len = strlen(name);
        for (size_t i = 0; i < ehdr->e_shnum; i++) {
                Elf64_Shdr sh;
                at = ehdr->e_shoff + i * (uint64_t)ehdr->e_shentsize;
                if (at > size || size - at < sizeof(sh))
                        return false;
                memcpy(&sh, image + at, sizeof(sh));
                if (sh.sh_name >= strtab.sh_size ||
                    strtab.sh_size - sh.sh_name <= len)
                        continue;
                if (memcmp(names + sh.sh_name, name, len + 1) == 0 &&
                    sh.sh_addr) {
                        *ret = sh.sh_addr;
                        return true;
                }
        }
        return false;
}

struct ms_error *ms_target_add_module(struct ms_target *target,
                                      const char *path, const char *section,
                                      uint64_t address)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (!path)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT, "no path");
        size_t size;
        const uint8_t *image = ms_target_map_file(target, path, &size);
        if (!image)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "%s: not found on this machine", path);
        Elf64_Ehdr ehdr;
        if (size < sizeof(ehdr))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s: not an ELF file", path);
        memcpy(&ehdr, image, sizeof(ehdr));
        if (memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 ||
            ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
            ehdr.e_ident[EI_DATA] != ELFDATA2LSB ||
            ehdr.e_phentsize < sizeof(Elf64_Phdr) ||
            (ehdr.e_shnum && ehdr.e_shentsize < sizeof(Elf64_Shdr)))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s: not a 64-bit little-endian ELF "
                                       "file",
                                       path);
        uint64_t in_file;
        if (!file_address(image, size, &ehdr, section, &in_file))
                return ms_error_create(MS_ERROR_NOT_FOUND, "%s: no %s", path,
                                       section ? section
                                               : "ELF header segment");
        return add_segments(target, path, image, size, &ehdr,
                            address - in_file);
}
