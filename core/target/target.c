/*
 * The parts of a target shared by every backend: threads, mappings and the
 * host files behind them, and memory reads that fall back to those files
 * for pages a core did not dump.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/u64_table.h"
#include "target/backend.h"

/* Reads that fail as a whole are retried page by page. */
#define TARGET_PAGE_SIZE 4096
/* Missing files are named in this many warnings; the rest are counted. */
#define MAX_MISSING_WARNINGS 64
/* GNU build-ids are 20 bytes (sha1); allow for longer ones. */
#define MAX_BUILD_ID 64
/* At most this much of a PT_NOTE segment is searched for the build-id. */
#define MAX_NOTE_SEGMENT 65536
/* At most this many program headers are looked at in an ELF image. */
#define MAX_PHDRS 4096

/* One file named by the target's mappings. */
struct host_file {
        /* The path as the target names it. */
        char *path;
        /* The file on this machine, or NULL. */
        char *found;
        /* The build-id of found was compared with the target's. */
        bool checked;
        bool mismatch;
        /* 0: not mapped yet, 1: mapped, -1: mapping failed. */
        int map_state;
        void *map;
        size_t size;
};

struct ms_file_cache {
        /* Pointers, so that a file stays put when the array grows. */
        struct host_file **files;
        size_t n, capacity;
        /* Open addressing by path: index into files + 1, 0 when empty. */
        size_t *slots;
        size_t n_slots; /* a power of two, > 2 * n */
        /* options->executable was given: it is the executable's file. */
        bool exe_given;
        size_t n_missing;
};

static void page_cache_destroy(struct ms_page_cache *cache);
static struct ms_error *fault(uint64_t address, size_t size);

/* ------------------------------------------------------------------------
 * Small helpers shared with the backends
 * ------------------------------------------------------------------------ */

void ms_regs_from_user_regs(const uint64_t user[MS_USER_REGS_WORDS],
                            uint64_t regs[MS_NUM_REGS], uint64_t *fs_base)
{
        /* struct user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8
         * rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base ... */
        static const int from_user[MS_NUM_REGS] = {
                10, 12, 11, 5,
                13, 14, 4,  19, /* rax rdx rcx rbx rsi rdi rbp rsp */
                9,  8,  7,  6,
                3,  2,  1,  0, /* r8 - r15 */
                16,            /* rip */
        };
        for (int i = 0; i < MS_NUM_REGS; i++)
                regs[i] = user[from_user[i]];
        if (fs_base)
                *fs_base = user[21];
}

bool ms_signal_is_crash(int signo, bool in_core)
{
        return signo == SIGTRAP ? in_core : ms_signal_dumps_core(signo);
}

bool ms_signal_dumps_core(int signo)
{
        switch (signo) {
        case SIGQUIT:
        case SIGILL:
        case SIGTRAP:
        case SIGABRT:
        case SIGBUS:
        case SIGFPE:
        case SIGSEGV:
        case SIGXCPU:
        case SIGXFSZ:
        case SIGSYS:
                return true;
        default:
                return false;
        }
}

static size_t align_up(size_t n, size_t align)
{
        return (n + align - 1) & ~(align - 1);
}

bool ms_note_next(const uint8_t *buf, size_t size, size_t align, size_t *offset,
                  struct ms_note *note, bool *malformed)
{
        size_t off = *offset;
        if (off >= size)
                return false;
        if (size - off < 12) {
                *malformed = true;
                return false;
        }
        uint32_t hdr[3];
        memcpy(hdr, buf + off, sizeof(hdr));
        off += 12;
        if (hdr[0] > size - off) {
                *malformed = true;
                return false;
        }
        note->name = (const char *)buf + off;
        note->namesz = hdr[0];
        note->type = hdr[2];
        /* Name and desc start at multiples of align (8 for the 64-bit
         * GNU property notes); the sizes are 32-bit, so none of this
         * overflows. */
        off = align_up(off + hdr[0], align);
        if (off > size || hdr[1] > size - off) {
                *malformed = true;
                return false;
        }
        note->desc = buf + off;
        note->descsz = hdr[1];
        /* The last note's padding may be missing. */
        off = MS_MIN(align_up(off + hdr[1], align), size);
        *offset = off;
        return true;
}

bool ms_note_is(const struct ms_note *note, const char *name)
{
        size_t len = strlen(name);
        if (note->namesz != len && note->namesz != len + 1)
                return false;
        if (memcmp(note->name, name, len) != 0)
                return false;
        return note->namesz == len || note->name[len] == '\0';
}

static bool notes_build_id(const uint8_t *notes, size_t size, size_t align,
                           uint8_t *buf, size_t *len)
{
        size_t off = 0;
        bool malformed = false;
        struct ms_note note;
        while (ms_note_next(notes, size, align, &off, &note, &malformed)) {
                if (note.type != NT_GNU_BUILD_ID || !ms_note_is(&note, "GNU") ||
                    note.descsz == 0)
                        continue;
                size_t n = MS_MIN(note.descsz, *len);
                memcpy(buf, note.desc, n);
                *len = n;
                return true;
        }
        return false;
}

/* Read and check the ELF header; the number of program headers. */
static bool check_ehdr(const Elf64_Ehdr *ehdr, size_t *phnum)
{
        if (memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 ||
            ehdr->e_ident[EI_CLASS] != ELFCLASS64 ||
            ehdr->e_ident[EI_DATA] != ELFDATA2LSB ||
            ehdr->e_phentsize != sizeof(Elf64_Phdr))
                return false;
        *phnum = ehdr->e_phnum;
        return *phnum > 0 && *phnum <= MAX_PHDRS;
}

bool ms_elf_file_build_id(const uint8_t *image, size_t size, uint8_t *buf,
                          size_t *len)
{
        Elf64_Ehdr ehdr;
        size_t phnum;
        if (size < sizeof(ehdr))
                return false;
        memcpy(&ehdr, image, sizeof(ehdr));
        if (!check_ehdr(&ehdr, &phnum))
                return false;
        if (ehdr.e_phoff > size ||
            phnum > (size - ehdr.e_phoff) / sizeof(Elf64_Phdr))
                return false;
        for (size_t i = 0; i < phnum; i++) {
                Elf64_Phdr phdr;
                memcpy(&phdr, image + ehdr.e_phoff + i * sizeof(phdr),
                       sizeof(phdr));
                if (phdr.p_type != PT_NOTE || phdr.p_offset > size ||
                    phdr.p_filesz > size - phdr.p_offset)
                        continue;
                size_t align = phdr.p_align == 8 ? 8 : 4;
                if (notes_build_id(image + phdr.p_offset, phdr.p_filesz, align,
                                   buf, len))
                        return true;
        }
        return false;
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * ------------------------------------------------------------------------ */

static char *strip_trailing_slashes(char *s)
{
        size_t len = strlen(s);
        while (len > 1 && s[len - 1] == '/')
                s[--len] = '\0';
        return s;
}

/* An executable named by the user must be an ELF file that can be read:
 * anything else is a mistake in the command line (a word too many), not a
 * file missing from this machine. */
static struct ms_error *check_given_executable(const char *path)
{
        if (!path[0])
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "empty executable path");
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ms_error_from_errno(errno, "executable %s", path);
        struct stat st;
        unsigned char magic[SELFMAG];
        bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        bool elf = regular && read(fd, magic, SELFMAG) == SELFMAG &&
                   memcmp(magic, ELFMAG, SELFMAG) == 0;
        close(fd);
        if (!elf)
                return ms_error_create(
                        MS_ERROR_BAD_INPUT, "executable %s: %s", path,
                        regular ? "not an ELF file" : "not a regular file");
        return NULL;
}

struct ms_error *ms_target_init(struct ms_target *target,
                                const struct ms_target_ops *ops,
                                enum ms_target_kind kind,
                                const struct ms_target_options *options)
{
        memset(target, 0, sizeof(*target));
        target->ops = ops;
        target->kind = kind;
        target->files = calloc(1, sizeof(*target->files));
        if (!target->files)
                return &ms_error_no_memory;
        if (!options)
                return NULL;
        target->no_debuginfod = options->no_debuginfod;
        target->download = options->download;
        target->download_arg = options->download_arg;
        if (options->sysroot && options->sysroot[0]) {
                target->sysroot = strdup(options->sysroot);
                if (!target->sysroot)
                        return &ms_error_no_memory;
                strip_trailing_slashes(target->sysroot);
                /* A sysroot of "/" is no sysroot. */
                if (strcmp(target->sysroot, "/") == 0) {
                        free(target->sysroot);
                        target->sysroot = NULL;
                }
        }
        if (options->n_library_paths && !options->library_paths)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "library_paths is NULL");
        if (options->n_library_paths) {
                target->library_paths =
                        calloc(options->n_library_paths, sizeof(char *));
                if (!target->library_paths)
                        return &ms_error_no_memory;
        }
        for (size_t i = 0; i < options->n_library_paths; i++) {
                const char *dir = options->library_paths[i];
                if (!dir || !dir[0])
                        continue;
                char *copy = strdup(dir);
                if (!copy)
                        return &ms_error_no_memory;
                target->library_paths[target->n_library_paths++] =
                        strip_trailing_slashes(copy);
        }
        if (options->executable) {
                struct ms_error *err =
                        check_given_executable(options->executable);
                if (err)
                        return err;
                target->host_executable = strdup(options->executable);
                if (!target->host_executable)
                        return &ms_error_no_memory;
                target->files->exe_given = true;
        }
        return NULL;
}

static void file_cache_destroy(struct ms_file_cache *cache)
{
        if (!cache)
                return;
        for (size_t i = 0; i < cache->n; i++) {
                struct host_file *f = cache->files[i];
                if (f->map_state > 0)
                        munmap(f->map, f->size);
                free(f->path);
                free(f->found);
                free(f);
        }
        free(cache->files);
        free(cache->slots);
        free(cache);
}

void ms_target_detach_now(struct ms_target *target)
{
        if (target && target->kind == MS_TARGET_PID)
                ms_live_detach_now(target);
}

void ms_target_destroy(struct ms_target *target)
{
        if (!target)
                return;
        for (size_t i = 0; i < target->n_threads; i++)
                free(target->threads[i].name);
        free(target->threads);
        for (size_t i = 0; i < target->n_mappings; i++)
                free(target->mappings[i].path);
        free(target->mappings);
        free(target->core_path);
        free(target->executable);
        free(target->host_executable);
        free(target->sysroot);
        for (size_t i = 0; i < target->n_library_paths; i++)
                free(target->library_paths[i]);
        free(target->library_paths);
        ms_warnings_deinit(&target->warnings);
        file_cache_destroy(target->files);
        target->files = NULL;
        page_cache_destroy(target->page_cache);
        target->page_cache = NULL;
        free(target->modules);
        /* Last: the backend frees the allocation that holds target. */
        if (target->ops && target->ops->destroy)
                target->ops->destroy(target);
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */

struct ms_error *ms_target_append_thread(struct ms_target *target, pid_t tid,
                                         const char *name, const uint64_t *regs,
                                         uint64_t fs_base)
{
        if (target->n_threads >= MS_MAX_THREADS)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "more than %d threads", MS_MAX_THREADS);
        if (!ms_grow((void **)&target->threads, &target->threads_capacity,
                     target->n_threads, sizeof(*target->threads)))
                return &ms_error_no_memory;
        struct ms_target_thread *t = &target->threads[target->n_threads];
        memset(t, 0, sizeof(*t));
        bool ok = true;
        t->name = ms_strdup_or_null(name, &ok);
        if (!ok)
                return &ms_error_no_memory;
        t->tid = tid;
        t->fs_base = fs_base;
        t->syscall_nr = -1;
        if (regs) {
                memcpy(t->regs, regs, sizeof(t->regs));
                t->have_regs = true;
        }
        target->n_threads++;
        return NULL;
}

struct ms_target_thread *ms_target_find_thread(struct ms_target *target,
                                               pid_t tid)
{
        for (size_t i = 0; i < target->n_threads; i++) {
                if (target->threads[i].tid == tid)
                        return &target->threads[i];
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * Host files
 * ------------------------------------------------------------------------ */

static size_t hash_path(const char *s)
{
        /* FNV-1a. */
        uint64_t h = 0xcbf29ce484222325;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 0x100000001b3;
        return (size_t)h;
}

static struct host_file *file_lookup(const struct ms_file_cache *cache,
                                     const char *path)
{
        if (!cache || !cache->n_slots)
                return NULL;
        size_t mask = cache->n_slots - 1;
        for (size_t i = hash_path(path) & mask;; i = (i + 1) & mask) {
                size_t slot = cache->slots[i];
                if (!slot)
                        return NULL;
                if (strcmp(cache->files[slot - 1]->path, path) == 0)
                        return cache->files[slot - 1];
        }
}

static void slots_insert(size_t *slots, size_t n_slots, const char *path,
                         size_t value)
{
        size_t mask = n_slots - 1;
        size_t i = hash_path(path) & mask;
        while (slots[i])
                i = (i + 1) & mask;
        slots[i] = value;
}

static bool file_cache_add(struct ms_file_cache *cache, struct host_file *f)
{
        if (2 * (cache->n + 1) >= cache->n_slots) {
                size_t n_slots = cache->n_slots ? cache->n_slots * 2 : 64;
                size_t *slots = calloc(n_slots, sizeof(*slots));
                if (!slots)
                        return false;
                for (size_t i = 0; i < cache->n; i++)
                        slots_insert(slots, n_slots, cache->files[i]->path,
                                     i + 1);
                free(cache->slots);
                cache->slots = slots;
                cache->n_slots = n_slots;
        }
        if (!ms_grow((void **)&cache->files, &cache->capacity, cache->n,
                     sizeof(*cache->files)))
                return false;
        cache->files[cache->n++] = f;
        slots_insert(cache->slots, cache->n_slots, f->path, cache->n);
        return true;
}

/* Paths that name no regular file one could find on this machine. */
static bool is_pseudo_path(const char *path)
{
        static const char *const prefixes[] = {
                "/dev/", "/memfd:", "/SYSV",   "/anon_hugepage", "/proc/",
                "/sys/", "/[",      "/dmabuf", "/drm",
        };
        if (path[0] != '/')
                return true; /* [vdso], [heap], anon_inode:..., "" */
        for (size_t i = 0; i < MS_ARRAY_SIZE(prefixes); i++) {
                if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        }
        return false;
}

static bool is_readable_file(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
               access(path, R_OK) == 0;
}

static char *try_path(const char *dir, const char *name, size_t name_len)
{
        char *path = NULL;
        if (asprintf(&path, "%s%s%.*s", dir, name[0] == '/' ? "" : "/",
                     (int)name_len, name) < 0)
                return NULL;
        if (is_readable_file(path))
                return path;
        free(path);
        return NULL;
}

char *ms_target_resolve_path(const struct ms_target *target, const char *path)
{
        if (!path || is_pseudo_path(path))
                return NULL;
        /* The kernel marks files unlinked since they were mapped; the file
         * now at that path (an upgrade?) is checked by its build-id. */
        static const char deleted[] = " (deleted)";
        size_t len = strnlen(path, 4096);
        if (len >= 4096)
                return NULL;
        if (len > sizeof(deleted) - 1 &&
            strcmp(path + len - (sizeof(deleted) - 1), deleted) == 0)
                len -= sizeof(deleted) - 1;
        char *found;
        if (target->sysroot) {
                found = try_path(target->sysroot, path, len);
                if (found)
                        return found;
        }
        const char *base = path;
        for (size_t i = 0; i < len; i++) {
                if (path[i] == '/')
                        base = path + i + 1;
        }
        size_t base_len = len - (size_t)(base - path);
        for (size_t i = 0; base_len && i < target->n_library_paths; i++) {
                found = try_path(target->library_paths[i], base, base_len);
                if (found)
                        return found;
        }
        if (!target->sysroot) {
                found = try_path("", path, len);
                if (found)
                        return found;
        }
        return NULL;
}

static bool is_executable(const struct ms_target *target, const char *path)
{
        return target->executable && strcmp(target->executable, path) == 0;
}

/* The host file to use for a target path: none after a build-id mismatch,
 * except for the executable, which is still the best there is. */
static const char *file_host_path(const struct ms_target *target,
                                  const struct host_file *f)
{
        if (!f || !f->found)
                return NULL;
        if (f->mismatch && !is_executable(target, f->path))
                return NULL;
        return f->found;
}

static void warn_missing(struct ms_target *target, const char *path,
                         const uint64_t *start)
{
        struct ms_file_cache *cache = target->files;
        if (cache->n_missing++ >= MAX_MISSING_WARNINGS)
                return;
        if (start)
                ms_warnings_add(&target->warnings,
                                "missing file: %s (mapped at 0x%" PRIx64
                                "); its symbols and memory are unavailable",
                                path, *start);
        else
                ms_warnings_add(&target->warnings,
                                "missing file: %s; its symbols are unavailable",
                                path);
}

/* The host_file of path, created (and resolved) on first use. start is
 * where it is mapped, for the warning when it is missing, or NULL. */
static struct host_file *file_get(struct ms_target *target, const char *path,
                                  const uint64_t *start)
{
        struct ms_file_cache *cache = target->files;
        struct host_file *f = file_lookup(cache, path);
        if (f)
                return f;
        f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        f->path = strdup(path);
        if (!f->path) {
                free(f);
                return NULL;
        }
        if (cache->exe_given && is_executable(target, path)) {
                if (is_readable_file(target->host_executable))
                        f->found = strdup(target->host_executable);
        } else {
                f->found = ms_target_resolve_path(target, path);
        }
        if (!file_cache_add(cache, f)) {
                free(f->found);
                free(f->path);
                free(f);
                return NULL;
        }
        if (!f->found && !is_pseudo_path(path))
                warn_missing(target, path, start);
        return f;
}

static const uint8_t *file_map(struct host_file *f, size_t *size)
{
        if (f->map_state == 0) {
                f->map_state = -1;
                int fd = f->found ? open(f->found, O_RDONLY | O_CLOEXEC) : -1;
                struct stat st;
                if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                    st.st_size > 0 && (uint64_t)st.st_size <= SIZE_MAX) {
                        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ,
                                         MAP_PRIVATE, fd, 0);
                        if (map != MAP_FAILED) {
                                f->map = map;
                                f->size = (size_t)st.st_size;
                                f->map_state = 1;
                        }
                }
                if (fd >= 0)
                        close(fd);
        }
        if (f->map_state < 0)
                return NULL;
        *size = f->size;
        return f->map;
}

const uint8_t *ms_target_map_file(struct ms_target *target, const char *path,
                                  size_t *size)
{
        struct host_file *f = file_get(target, path, NULL);
        if (!f || !file_host_path(target, f))
                return NULL;
        return file_map(f, size);
}

static void hex(const uint8_t *id, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[id[i] >> 4];
                out[2 * i + 1] = digits[id[i] & 0xf];
        }
        out[2 * len] = '\0';
}

/* Compare the build-id of f's host file with the one in target memory at
 * m, f's mapping at file offset 0. Unknown either way: no verdict. */
static void check_build_id(struct ms_target *target, struct host_file *f,
                           const struct ms_mapping *m)
{
        if (f->checked || !f->found || m->file_offset != 0)
                return;
        f->checked = true;
        uint8_t here[MAX_BUILD_ID], there[MAX_BUILD_ID];
        size_t here_len = sizeof(here), there_len = sizeof(there), size;
        const uint8_t *image = file_map(f, &size);
        if (!image || !ms_elf_file_build_id(image, size, here, &here_len))
                return;
        struct ms_error *err = ms_target_build_id(target, m, there, &there_len);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        if (here_len == there_len && memcmp(here, there, here_len) == 0)
                return;
        f->mismatch = true;
        char here_hex[2 * MAX_BUILD_ID + 1], there_hex[2 * MAX_BUILD_ID + 1];
        hex(here, here_len, here_hex);
        hex(there, there_len, there_hex);
        const char *what = target->kind == MS_TARGET_CORE ? "core" : "process";
        if (is_executable(target, f->path))
                ms_warnings_add(&target->warnings,
                                "%s on this machine does not match the %s "
                                "(build-id %s vs %s); using it anyway",
                                f->found, what, here_hex, there_hex);
        else
                ms_warnings_add(&target->warnings,
                                "%s on this machine does not match the %s "
                                "(build-id %s vs %s); its symbols and memory "
                                "are unavailable",
                                f->found, what, here_hex, there_hex);
}

/* ------------------------------------------------------------------------
 * Page cache (live processes)
 * ------------------------------------------------------------------------ */

/* At most this many pages (64 MiB) are cached; reads beyond go straight
 * to the backend. */
#define PAGE_CACHE_MAX_PAGES 16384
/* Reads larger than this bypass the cache: one backend call is cheaper
 * than several page reads, and they are rarely repeated. */
#define PAGE_CACHE_MAX_READ (4 * TARGET_PAGE_SIZE)

struct cached_page {
        struct ms_u64_entry entry; /* key: the address of the page */
        /* TARGET_PAGE_SIZE bytes, or NULL when the page cannot be read as
         * a whole (unmapped): reads of it go to the backend each time. */
        uint8_t *data;
};

struct ms_page_cache {
        struct ms_u64_table pages;
};

static void page_cache_destroy(struct ms_page_cache *cache)
{
        if (!cache)
                return;
        for (size_t i = 0; i < cache->pages.n_slots; i++) {
                struct cached_page *p = ms_u64_table_slot(&cache->pages, i);
                if (p)
                        free(p->data);
        }
        ms_u64_table_deinit(&cache->pages);
        free(cache);
}

bool ms_target_cache_pages(struct ms_target *target)
{
        /* Pages cached before are forgotten: they may be stale. */
        page_cache_destroy(target->page_cache);
        target->page_cache = malloc(sizeof(*target->page_cache));
        if (target->page_cache)
                ms_u64_table_init(&target->page_cache->pages,
                                  sizeof(struct cached_page));
        return target->page_cache != NULL;
}

/* The cached copy of page, reading it when new. NULL when the page is not
 * cached: it cannot be read whole, or the cache is full or out of memory. */
static const struct cached_page *page_cache_get(struct ms_target *target,
                                                uint64_t page)
{
        struct ms_u64_table *pages = &target->page_cache->pages;
        struct cached_page *p = ms_u64_table_find(pages, page);
        if (p)
                return p;
        if (pages->n >= PAGE_CACHE_MAX_PAGES ||
            page > UINT64_MAX - TARGET_PAGE_SIZE + 1)
                return NULL;
        uint8_t *data = malloc(TARGET_PAGE_SIZE);
        if (!data)
                return NULL;
        struct ms_error *err =
                target->ops->read(target, page, data, TARGET_PAGE_SIZE);
        if (err) {
                /* Only "unreadable" is remembered. */
                bool fault = err->code == MS_ERROR_FAULT;
                ms_error_destroy(err);
                free(data);
                if (!fault)
                        return NULL;
                data = NULL;
        }
        p = ms_u64_table_insert(pages, page);
        if (!p) {
                free(data);
                return NULL;
        }
        p->data = data;
        return p;
}

/* Read from the backend only: what the target itself holds. */
static struct ms_error *backend_read(struct ms_target *target, uint64_t address,
                                     void *buf, size_t size)
{
        if (!target->page_cache || size > PAGE_CACHE_MAX_READ)
                return target->ops->read(target, address, buf, size);
        uint8_t *out = buf;
        for (size_t done = 0; done < size;) {
                uint64_t at = address + done;
                uint64_t page = at - at % TARGET_PAGE_SIZE;
                size_t offset = (size_t)(at - page);
                size_t chunk = MS_MIN(size - done, TARGET_PAGE_SIZE - offset);
                const struct cached_page *p = page_cache_get(target, page);
                if (p && p->data) {
                        memcpy(out + done, p->data + offset, chunk);
                } else {
                        /* Not cached, or not readable as a whole page: ask
                         * for exactly these bytes. */
                        struct ms_error *err = target->ops->read(
                                target, at, out + done, chunk);
                        if (err) {
                                if (err->code != MS_ERROR_FAULT)
                                        return err;
                                ms_error_destroy(err);
                                return fault(address, size);
                        }
                }
                done += chunk;
        }
        return NULL;
}

struct ms_error *ms_target_build_id(struct ms_target *target,
                                    const struct ms_mapping *mapping,
                                    uint8_t *buf, size_t *len)
{
        /* The kernel dumps the first page of every mapped ELF file, which
         * holds the ELF and program headers and normally the build-id
         * note; so does every debugger. */
        uint64_t base = mapping->start;
        Elf64_Ehdr ehdr;
        size_t phnum;
        struct ms_error *err = backend_read(target, base, &ehdr, sizeof(ehdr));
        if (err)
                return err;
        if (!check_ehdr(&ehdr, &phnum))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "no ELF header at 0x%" PRIx64, base);
        Elf64_Phdr *phdrs = calloc(phnum, sizeof(*phdrs));
        if (!phdrs)
                return &ms_error_no_memory;
        err = backend_read(target, base + ehdr.e_phoff, phdrs,
                           phnum * sizeof(*phdrs));
        if (err)
                goto out;
        /* The load bias: mapping->start holds file offset 0, which the
         * first PT_LOAD maps at p_vaddr - p_offset (congruent mod page). */
        uint64_t bias = 0;
        bool have_bias = false;
        for (size_t i = 0; i < phnum && !have_bias; i++) {
                if (phdrs[i].p_type != PT_LOAD)
                        continue;
                bias = base - (phdrs[i].p_vaddr - phdrs[i].p_offset);
                have_bias = true;
        }
        err = ms_error_create(MS_ERROR_NOT_FOUND, "no build-id at 0x%" PRIx64,
                              base);
        for (size_t i = 0; i < phnum && have_bias; i++) {
                if (phdrs[i].p_type != PT_NOTE || !phdrs[i].p_filesz)
                        continue;
                size_t size = MS_MIN(phdrs[i].p_filesz, MAX_NOTE_SEGMENT);
                uint8_t *notes = malloc(size);
                if (!notes) {
                        ms_error_destroy(err);
                        err = &ms_error_no_memory;
                        break;
                }
                struct ms_error *read_err = backend_read(
                        target, bias + phdrs[i].p_vaddr, notes, size);
                size_t align = phdrs[i].p_align == 8 ? 8 : 4;
                bool found = !read_err &&
                             notes_build_id(notes, size, align, buf, len);
                ms_error_destroy(read_err);
                free(notes);
                if (found) {
                        ms_error_destroy(err);
                        err = NULL;
                        break;
                }
        }
out:
        free(phdrs);
        return err;
}

/* ------------------------------------------------------------------------
 * Mappings
 * ------------------------------------------------------------------------ */

static struct ms_error *check_mapping(const char *path, uint64_t start,
                                      uint64_t end)
{
        if (!path)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "mapping without a path");
        if (end < start)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "mapping of %s ends (0x%" PRIx64
                                       ") before it starts (0x%" PRIx64 ")",
                                       path, end, start);
        return NULL;
}

struct ms_error *ms_target_append_mapping(struct ms_target *target,
                                          const char *path, uint64_t start,
                                          uint64_t end, uint64_t file_offset)
{
        struct ms_error *err = check_mapping(path, start, end);
        if (err)
                return err;
        if (target->n_mappings >= MS_MAX_MAPPINGS)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "more than %d mappings",
                                       MS_MAX_MAPPINGS);
        if (!ms_grow((void **)&target->mappings, &target->mappings_capacity,
                     target->n_mappings, sizeof(*target->mappings)))
                return &ms_error_no_memory;
        struct ms_mapping *m = &target->mappings[target->n_mappings];
        m->path = strdup(path);
        if (!m->path)
                return &ms_error_no_memory;
        m->start = start;
        m->end = end;
        m->file_offset = file_offset;
        m->host_path = NULL;
        target->n_mappings++;
        return NULL;
}

static int mapping_cmp(const void *a, const void *b)
{
        const struct ms_mapping *x = a, *y = b;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->end != y->end)
                return x->end < y->end ? -1 : 1;
        return 0;
}

/* Point every mapping at its host file (after a verdict changed). */
static void refresh_host_paths(struct ms_target *target)
{
        for (size_t i = 0; i < target->n_mappings; i++) {
                struct ms_mapping *m = &target->mappings[i];
                m->host_path = file_host_path(
                        target, file_lookup(target->files, m->path));
        }
}

static void update_host_executable(struct ms_target *target)
{
        if (!target->executable || target->files->exe_given)
                return;
        struct host_file *f = file_get(target, target->executable, NULL);
        const char *found = file_host_path(target, f);
        free(target->host_executable);
        target->host_executable = found ? strdup(found) : NULL;
}

void ms_target_clear_mappings(struct ms_target *target)
{
        for (size_t i = 0; i < target->n_mappings; i++)
                free(target->mappings[i].path);
        target->n_mappings = 0;
        target->have_modules = false;
}

struct ms_error *ms_target_freeze(struct ms_target *target, bool *froze,
                                  bool *mappings_changed)
{
        *froze = false;
        *mappings_changed = false;
        if (!ms_target_runs(target))
                return NULL;
        /* Frozen even on failure: thaw and destroy undo a partial stop. */
        target->frozen = true;
        struct ms_error *err = target->ops->freeze(target, mappings_changed);
        *froze = !err;
        return err;
}

bool ms_target_runs(const struct ms_target *target)
{
        return target->ops->freeze && !target->frozen;
}

void ms_target_thaw(struct ms_target *target)
{
        if (target->frozen && target->ops->thaw) {
                target->ops->thaw(target);
                target->thawed = true;
        }
}

void ms_target_finish_mappings(struct ms_target *target)
{
        if (target->n_mappings > 1)
                qsort(target->mappings, target->n_mappings,
                      sizeof(*target->mappings), mapping_cmp);
        /* Lookups need disjoint mappings: an overlap (only in broken
         * input) is resolved in favour of the later mapping. */
        for (size_t i = 1; i < target->n_mappings; i++) {
                struct ms_mapping *prev = &target->mappings[i - 1];
                if (prev->end > target->mappings[i].start)
                        prev->end = target->mappings[i].start;
        }
        size_t missing_before = target->files->n_missing;
        for (size_t i = 0; i < target->n_mappings; i++) {
                struct ms_mapping *m = &target->mappings[i];
                struct host_file *f = file_get(target, m->path, &m->start);
                if (f)
                        check_build_id(target, f, m);
        }
        refresh_host_paths(target);
        update_host_executable(target);
        size_t missing = target->files->n_missing;
        if (missing > MAX_MISSING_WARNINGS && missing_before < missing)
                ms_warnings_add(&target->warnings, "%zu more files are missing",
                                missing - MAX_MISSING_WARNINGS);
}

struct ms_error *ms_target_insert_mapping(struct ms_target *target,
                                          const char *path, uint64_t start,
                                          uint64_t end, uint64_t file_offset)
{
        struct ms_error *err =
                ms_target_append_mapping(target, path, start, end, file_offset);
        if (err)
                return err;
        /* Move the new mapping (last) to its place: debuggers mostly add
         * in order, so this is usually no move at all. */
        size_t n = target->n_mappings;
        struct ms_mapping m = target->mappings[n - 1];
        size_t lo = 0, hi = n - 1;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (mapping_cmp(&target->mappings[mid], &m) <= 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        memmove(&target->mappings[lo + 1], &target->mappings[lo],
                (n - 1 - lo) * sizeof(m));
        target->mappings[lo] = m;
        if (lo > 0 && target->mappings[lo - 1].end > m.start)
                target->mappings[lo - 1].end = m.start;
        if (lo + 1 < n &&
            target->mappings[lo].end > target->mappings[lo + 1].start)
                target->mappings[lo].end = target->mappings[lo + 1].start;

        struct ms_mapping *placed = &target->mappings[lo];
        struct host_file *f = file_get(target, placed->path, &placed->start);
        if (!f)
                return NULL; /* out of memory: the mapping has no file */
        bool was_checked = f->checked;
        check_build_id(target, f, placed);
        if (f->mismatch && !was_checked)
                refresh_host_paths(target);
        else
                placed->host_path = file_host_path(target, f);
        return NULL;
}

struct ms_error *ms_target_set_executable(struct ms_target *target,
                                          const char *path)
{
        char *copy = NULL;
        if (path) {
                copy = strdup(path);
                if (!copy)
                        return &ms_error_no_memory;
        }
        free(target->executable);
        target->executable = copy;
        struct ms_file_cache *cache = target->files;
        if (copy && cache->exe_given) {
                /* The given file is the executable, whatever was found. */
                struct host_file *f = file_lookup(cache, copy);
                if (f && is_readable_file(target->host_executable)) {
                        char *given = strdup(target->host_executable);
                        if (!given)
                                return &ms_error_no_memory;
                        free(f->found);
                        f->found = given;
                        f->mismatch = false;
                        f->checked = false;
                }
        }
        update_host_executable(target);
        refresh_host_paths(target);
        return NULL;
}

const struct ms_mapping *ms_target_find_mapping(const struct ms_target *target,
                                                uint64_t address)
{
        /* The last mapping that starts at or before address. */
        size_t lo = ms_count_at_or_below(
                target->mappings, target->n_mappings, sizeof(*target->mappings),
                offsetof(struct ms_mapping, start), address);
        if (lo == 0)
                return NULL;
        const struct ms_mapping *m = &target->mappings[lo - 1];
        return address < m->end ? m : NULL;
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------ */

/* Read [address, address + size), within one mapping, from its host file. */
static bool read_from_file(struct ms_target *target, uint64_t address,
                           void *buf, size_t size)
{
        const struct ms_mapping *m = ms_target_find_mapping(target, address);
        if (!m || !m->host_path || size > m->end - address)
                return false;
        struct host_file *f = file_lookup(target->files, m->path);
        size_t file_size;
        const uint8_t *image = f ? file_map(f, &file_size) : NULL;
        if (!image)
                return false;
        uint64_t offset = m->file_offset + (address - m->start);
        if (offset < m->file_offset || offset > file_size ||
            size > file_size - offset)
                return false;
        memcpy(buf, image + offset, size);
        return true;
}

static struct ms_error *fault(uint64_t address, size_t size)
{
        return ms_error_create(MS_ERROR_FAULT,
                               "cannot read %zu bytes at 0x%" PRIx64, size,
                               address);
}

struct ms_error *ms_target_read(struct ms_target *target, uint64_t address,
                                void *buf, size_t size)
{
        if (!size)
                return NULL;
        if (!buf || address + (size - 1) < address)
                return fault(address, size);
        struct ms_error *err = backend_read(target, address, buf, size);
        if (!err || err->code != MS_ERROR_FAULT || target->thawed)
                return err;
        ms_error_destroy(err);
        /* Piece by piece: pages, cut at mapping ends, from the backend or
         * else from the host file. */
        uint8_t *out = buf;
        for (size_t done = 0; done < size;) {
                uint64_t at = address + done;
                size_t chunk =
                        MS_MIN(size - done,
                               TARGET_PAGE_SIZE - (at % TARGET_PAGE_SIZE));
                const struct ms_mapping *m = ms_target_find_mapping(target, at);
                if (m && m->end - at < chunk)
                        chunk = m->end - at;
                err = backend_read(target, at, out + done, chunk);
                if (err && err->code != MS_ERROR_FAULT)
                        return err;
                ms_error_destroy(err);
                if (err && !read_from_file(target, at, out + done, chunk))
                        return ms_error_create(
                                MS_ERROR_FAULT,
                                "cannot read %zu bytes at 0x%" PRIx64
                                ": 0x%" PRIx64 " is not available",
                                size, address, at);
                done += chunk;
        }
        return NULL;
}

struct ms_error *ms_target_read_u64(struct ms_target *target, uint64_t address,
                                    uint64_t *ret)
{
        uint8_t b[8];
        struct ms_error *err = ms_target_read(target, address, b, sizeof(b));
        if (err)
                return err;
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = (v << 8) | b[i];
        *ret = v;
        return NULL;
}

struct ms_error *ms_target_read_u32(struct ms_target *target, uint64_t address,
                                    uint32_t *ret)
{
        uint8_t b[4];
        struct ms_error *err = ms_target_read(target, address, b, sizeof(b));
        if (err)
                return err;
        *ret = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24;
        return NULL;
}

struct ms_error *ms_target_read_string(struct ms_target *target,
                                       uint64_t address, size_t max_len,
                                       char **ret, bool *truncated)
{
        /* Page by page, so that a string just before unreadable memory is
         * still read. */
        char *s = NULL;
        size_t len = 0, capacity = 0;
        if (truncated)
                *truncated = false;
        for (;;) {
                uint64_t at = address + len;
                if (at < address) {
                        free(s);
                        return fault(address, len);
                }
                size_t chunk = TARGET_PAGE_SIZE - (at % TARGET_PAGE_SIZE);
                bool cut = false;
                if (chunk >= max_len - len) {
                        /* One byte past max_len tells whether the string
                         * ends right there. */
                        chunk = max_len - len;
                        cut = true;
                }
                if (len + chunk + 1 > capacity) {
                        size_t want = MS_MAX(capacity * 2, len + chunk + 1);
                        char *p = realloc(s, want);
                        if (!p) {
                                free(s);
                                return &ms_error_no_memory;
                        }
                        s = p;
                        capacity = want;
                }
                struct ms_error *err =
                        ms_target_read(target, at, s + len, chunk);
                if (err) {
                        free(s);
                        return err;
                }
                char *nul = memchr(s + len, '\0', chunk);
                if (nul) {
                        *ret = s;
                        return NULL;
                }
                len += chunk;
                if (cut) {
                        s[len] = '\0';
                        if (truncated) {
                                /* Truncated unless a NUL follows. */
                                char next = 1;
                                struct ms_error *e = ms_target_read(
                                        target, address + len, &next, 1);
                                *truncated = e || next != '\0';
                                ms_error_destroy(e);
                        }
                        *ret = s;
                        return NULL;
                }
        }
}
