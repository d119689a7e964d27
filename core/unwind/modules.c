/*
 * Reporting a target's modules to libdwfl. The same code serves cores, live
 * processes and debugger-fed targets: every module comes from the target's
 * mappings and is opened at the host path the target resolved, never looked
 * up anywhere else (a host file at the same path may be a different build).
 */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unwind/internal.h"
#include "unwind/symtab.h"

/* The vdso is two or three pages; anything much larger is not one. */
#define MAX_VDSO_SIZE (1024 * 1024)

/* Modules are only ever reported with their ELF already open, so there is
 * nothing to find; in particular no build-id search through the host. */
static int find_elf_none(Dwfl_Module *mod, void **userdata, const char *modname,
                         Dwarf_Addr base, char **file_name, Elf **elfp)
{
        return -1;
}

/* Paths that name no file: "[vdso]", "[heap]", "anon_inode:…", and device
 * or shared memory files that hold no code. */
static bool is_pseudo_path(const char *path)
{
        return path[0] != '/' || strncmp(path, "/dev/", 5) == 0 ||
               strncmp(path, "/memfd:", 7) == 0 ||
               strncmp(path, "/SYSV", 5) == 0;
}

static int compare_mappings(const void *a, const void *b)
{
        const struct ms_mapping *ma = *(const struct ms_mapping *const *)a;
        const struct ms_mapping *mb = *(const struct ms_mapping *const *)b;
        int c = strcmp(ma->path, mb->path);
        if (c)
                return c;
        return ma->start < mb->start ? -1 : ma->start > mb->start;
}

static bool file_is_elf(const char *path)
{
        unsigned char magic[SELFMAG];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        bool elf = pread(fd, magic, SELFMAG, 0) == SELFMAG &&
                   memcmp(magic, ELFMAG, SELFMAG) == 0;
        close(fd);
        return elf;
}

static void report_at(struct ms_unwinder *u, const char *path,
                      const char *host_path, uint64_t base)
{
        if (dwfl_report_elf(u->dwfl, path, host_path, -1, base, false))
                return;
        /* Data files (locale archive, fonts) are mapped too: not a loss. */
        if (file_is_elf(host_path))
                ms_warnings_add(&u->target->warnings, "cannot load %s (%s): %s",
                                path, host_path, dwfl_errmsg(-1));
}

/* Report a file none of whose mappings starts at file offset 0 (its
 * headers' page is not mapped or not recorded): assume the first
 * mapping's offset and address are congruent. */
static void report_headless(struct ms_unwinder *u, struct ms_mapping **group,
                            size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (group[i]->file_offset == 0)
                        return;
        }
        const struct ms_mapping *first = group[0];
        report_at(u, first->path, first->host_path,
                  first->start >= first->file_offset
                          ? first->start - first->file_offset
                          : first->start);
}

/* Report every loaded module at the address of its ELF header: dwfl
 * subtracts the first PT_LOAD's page-aligned p_vaddr itself (add_p_vaddr
 * false). The target decides what is a loaded module, so a file that is
 * also mapped whole elsewhere (a Rust backtrace symbolizer's view) is
 * reported once, where the loader put it. */
static struct ms_error *report_files(struct ms_unwinder *u)
{
        struct ms_target *t = u->target;
        const struct ms_module *modules;
        size_t n_modules;
        struct ms_error *err = ms_target_modules(t, &modules, &n_modules);
        if (err)
                return err;
        for (size_t i = 0; i < n_modules; i++) {
                if (modules[i].host_path)
                        report_at(u, modules[i].path, modules[i].host_path,
                                  modules[i].start);
        }

        struct ms_mapping **files =
                malloc((t->n_mappings ? t->n_mappings : 1) * sizeof(*files));
        if (!files)
                return &ms_error_no_memory;
        size_t n = 0;
        for (size_t i = 0; i < t->n_mappings; i++) {
                struct ms_mapping *m = &t->mappings[i];
                if (m->path && m->host_path && !is_pseudo_path(m->path))
                        files[n++] = m;
        }
        qsort(files, n, sizeof(*files), compare_mappings);
        for (size_t i = 0; i < n;) {
                size_t j = i + 1;
                while (j < n && strcmp(files[j]->path, files[i]->path) == 0)
                        j++;
                report_headless(u, &files[i], j - i);
                i = j;
        }
        free(files);
        return NULL;
}

/* Size of the vdso image: its section headers come last. */
static size_t vdso_size(const Elf64_Ehdr *ehdr, const struct ms_mapping *m)
{
        uint64_t size =
                ehdr->e_shoff + (uint64_t)ehdr->e_shnum * ehdr->e_shentsize;
        if (ehdr->e_shoff && size <= MAX_VDSO_SIZE)
                return size;
        if (m && m->end > m->start && m->end - m->start <= MAX_VDSO_SIZE)
                return m->end - m->start;
        return 0;
}

/* Copy the vdso from target memory into a memfd that dwfl then owns: signal
 * frames (__vdso_* and the sigreturn trampoline on some kernels) unwind only
 * with the vdso's CFI. Failing is not worth a warning. */
static void report_vdso(struct ms_unwinder *u)
{
        struct ms_target *t = u->target;
        const struct ms_mapping *m = NULL;
        uint64_t address = 0;
        for (size_t i = 0; i < t->n_mappings; i++) {
                if (t->mappings[i].path &&
                    strcmp(t->mappings[i].path, "[vdso]") == 0) {
                        m = &t->mappings[i];
                        address = m->start;
                        break;
                }
        }
        if (!m)
                address = t->vdso_address;
        if (!address)
                return;

        Elf64_Ehdr ehdr;
        struct ms_error *err = ms_target_read(t, address, &ehdr, sizeof(ehdr));
        if (err || memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 ||
            ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
                ms_error_destroy(err);
                return;
        }
        size_t size = vdso_size(&ehdr, m);
        void *image = size ? malloc(size) : NULL;
        if (!image)
                return;
        err = ms_target_read(t, address, image, size);
        int fd = err ? -1 : memfd_create("mixstack-vdso", MFD_CLOEXEC);
        ms_error_destroy(err);
        if (fd >= 0 && write(fd, image, size) == (ssize_t)size) {
                if (dwfl_report_elf(u->dwfl, "[vdso]", "[vdso]", fd, address,
                                    false))
                        fd = -1; /* dwfl closes it */
        }
        if (fd >= 0)
                close(fd);
        free(image);
}

/* The search path for separate debug files: dwfl's default, plus the
 * sysroot's /usr/lib/debug for cores from elsewhere. */
static struct ms_error *set_debuginfo_path(struct ms_unwinder *u)
{
        const char *sysroot = u->target->sysroot;
        int r;
        if (sysroot && *sysroot)
                r = asprintf(&u->debuginfo_path,
                             ":.debug:/usr/lib/debug:%s/usr/lib/debug",
                             sysroot);
        else
                r = asprintf(&u->debuginfo_path, ":.debug:/usr/lib/debug");
        if (r < 0) {
                u->debuginfo_path = NULL;
                return &ms_error_no_memory;
        }
        return NULL;
}

struct ms_error *ms_unwinder_report_modules(struct ms_unwinder *u)
{
        struct ms_error *err = set_debuginfo_path(u);
        if (err)
                return err;
        u->callbacks.find_elf = find_elf_none;
        u->callbacks.find_debuginfo = u->target->no_debuginfod
                                              ? ms_find_debuginfo_offline
                                              : ms_find_debuginfo;
        u->callbacks.debuginfo_path = &u->debuginfo_path;
        u->dwfl = dwfl_begin(&u->callbacks);
        if (!u->dwfl)
                return ms_error_create(MS_ERROR_LIBRARY, "dwfl_begin: %s",
                                       dwfl_errmsg(-1));
        ms_unwinder_watch_downloads(u);
        dwfl_report_begin(u->dwfl);
        err = report_files(u);
        if (!err)
                report_vdso(u);
        if (dwfl_report_end(u->dwfl, NULL, NULL) != 0 && !err)
                err = ms_error_create(MS_ERROR_LIBRARY, "dwfl_report_end: %s",
                                      dwfl_errmsg(-1));
        return err;
}

/* What naming and unwinding frames needs of a module: its symbol tables
 * (which may come from a separate debug file) and its CFI. DWARF is left
 * for later: it is read after a live process goes on. */
static int load_module(Dwfl_Module *mod, void **userdata, const char *name,
                       Dwarf_Addr start, void *arg)
{
        struct ms_unwinder *u = arg;
        Dwarf_Addr bias;
        ms_symtabs_load(u->symtabs, mod);
        dwfl_module_eh_cfi(mod, &bias);
        return DWARF_CB_OK;
}

void ms_unwinder_load_modules(struct ms_unwinder *u)
{
        dwfl_getmodules(u->dwfl, load_module, u, 0);
}
