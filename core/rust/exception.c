/*
 * Heuristic: live unwinder exception objects (Rust panic reference §3.4).
 * When a process aborts after unwinding started (a panic leaving an
 * extern "C" function, a destructor panicking during cleanup), the first
 * panic's panic_unwind::imp::Exception is still on the heap, and its
 * cause (Box<dyn Any + Send>) holds the ORIGINAL payload, which the stack
 * no longer shows. The object is #[repr(C)]:
 *
 *   0  _Unwind_Exception.exception_class = the bytes "MOZ\0RUST"
 *   8  exception_cleanup  (panic_unwind::imp::panic::exception_cleanup)
 *  16  private[2]
 *  32  canary             (&panic_unwind::imp::CANARY of its module)
 *  40  cause data pointer
 *  48  cause vtable       {drop_in_place, size, align, ...}
 *
 * The class bytes also appear as an immediate in .text and in stale heap
 * chunks, so an object counts only when its canary is a Rust module's
 * CANARY symbol (or, for a module without symbols, points into that
 * module together with its cleanup pointer).
 */
#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rust/internal.h"
#include "target/regions.h"

#define EXCEPTION_SIZE 56
#define CHUNK (1024 * 1024)
#define MAX_REGIONS 1000000

static const char exception_class[8] = {'M', 'O', 'Z', '\0',
                                        'R', 'U', 'S', 'T'};

/* ------------------------------------------------------------------------
 * Writable memory
 * ------------------------------------------------------------------------ */

static bool add_region(struct ms_rust_region **regions, size_t *n,
                       size_t *capacity, uint64_t start, uint64_t end)
{
        if (end <= start || *n >= MAX_REGIONS)
                return true;
        if (!ms_grow((void **)regions, capacity, *n, sizeof(**regions)))
                return false;
        (*regions)[*n].start = start;
        (*regions)[*n].end = end;
        (*n)++;
        return true;
}

/* PT_LOAD segments with PF_W and bytes in the file. */
static struct ms_error *core_regions(const char *path,
                                     struct ms_rust_region **ret, size_t *n)
{
        elf_version(EV_CURRENT);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ms_error_from_errno(errno, "cannot open %s", path);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        size_t phnum = 0, capacity = 0;
        struct ms_error *err = NULL;
        if (!elf || elf_getphdrnum(elf, &phnum) != 0)
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "%s: cannot read program headers", path);
        for (size_t i = 0; !err && i < phnum; i++) {
                GElf_Phdr p;
                if (!gelf_getphdr(elf, (int)i, &p) || p.p_type != PT_LOAD ||
                    !(p.p_flags & PF_W) || !p.p_filesz)
                        continue;
                uint64_t size = MS_MIN(p.p_filesz, p.p_memsz);
                if (p.p_vaddr + size < p.p_vaddr)
                        continue;
                if (!add_region(ret, n, &capacity, p.p_vaddr, p.p_vaddr + size))
                        err = &ms_error_no_memory;
        }
        if (elf)
                elf_end(elf);
        close(fd);
        return err;
}

/* /proc/PID/maps entries that are readable and writable. */
static struct ms_error *live_regions(pid_t pid, struct ms_rust_region **ret,
                                     size_t *n)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return ms_error_from_errno(errno, "cannot open %s", path);
        char *line = NULL;
        size_t cap = 0, capacity = 0;
        struct ms_error *err = NULL;
        while (!err && getline(&line, &cap, f) > 0) {
                uint64_t start, end;
                char perms[8];
                if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &start, &end,
                           perms) != 3 ||
                    perms[0] != 'r' || perms[1] != 'w')
                        continue;
                if (!add_region(ret, n, &capacity, start, end))
                        err = &ms_error_no_memory;
        }
        free(line);
        fclose(f);
        return err;
}

/* The writable regions a debugger listed. */
static struct ms_error *copy_regions(const struct ms_memory_region *listed,
                                     size_t n_listed,
                                     struct ms_rust_region **ret, size_t *n)
{
        size_t capacity = 0;
        for (size_t i = 0; i < n_listed; i++) {
                if (!add_region(ret, n, &capacity, listed[i].start,
                                listed[i].end))
                        return &ms_error_no_memory;
        }
        return NULL;
}

struct ms_error *ms_rust_writable_regions(struct ms_target *target,
                                          struct ms_rust_region **ret,
                                          size_t *n)
{
        *ret = NULL;
        *n = 0;
        const struct ms_memory_region *listed;
        size_t n_listed;
        struct ms_error *err;
        if (target->kind == MS_TARGET_CORE && target->core_path)
                err = core_regions(target->core_path, ret, n);
        else if (target->kind == MS_TARGET_PID && target->pid > 0)
                err = live_regions(target->pid, ret, n);
        else if (ms_target_debugger_regions(target, &listed, &n_listed))
                err = copy_regions(listed, n_listed, ret, n);
        else
                err = ms_error_create(MS_ERROR_UNSUPPORTED,
                                      "the target has no list of its "
                                      "writable memory");
        if (err) {
                free(*ret);
                *ret = NULL;
                *n = 0;
        }
        return err;
}

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */

static uint64_t get_u64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

/* The module that carries this canary. */
static const struct ms_rust_module *canary_module(
        struct ms_target *target, const struct ms_rust_state *state,
        uint64_t canary, uint64_t cleanup, bool *verified)
{
        for (size_t i = 0; i < state->n_modules; i++) {
                const struct ms_rust_module *m = &state->modules[i];
                if (m->canary_address && m->canary_address == canary) {
                        *verified = !m->cleanup_address ||
                                    m->cleanup_address == cleanup;
                        return *verified ? m : NULL;
                }
        }
        /* A module without symbols: both pointers into the same one. */
        *verified = false;
        const struct ms_rust_module *m =
                ms_rust_module_at(state, target, canary);
        if (m && !m->canary_address &&
            ms_rust_module_at(state, target, cleanup) == m)
                return m;
        return NULL;
}

/* The payload: Box<String> (vtable size 24) or Box<&str> (size 16);
 * anything else is a non-string payload and gives no message. */
static bool decode_cause(struct ms_target *target, uint64_t data,
                         uint64_t vtable, char **ret)
{
        uint64_t size, align, words[3];
        struct ms_error *err = ms_target_read_u64(target, vtable + 8, &size);
        if (!err)
                err = ms_target_read_u64(target, vtable + 16, &align);
        if (err || align != 8 || (size != 16 && size != 24)) {
                ms_error_destroy(err);
                return false;
        }
        err = ms_target_read(target, data, words, size);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        return ms_rust_decode_string(target, words, size / 8, size == 24, ret);
}

bool ms_rust_decode_exception(struct ms_target *target,
                              const struct ms_rust_state *state,
                              uint64_t address, struct ms_rust_exception *ret)
{
        uint8_t b[EXCEPTION_SIZE];
        memset(ret, 0, sizeof(*ret));
        struct ms_error *err = ms_target_read(target, address, b, sizeof(b));
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        if (memcmp(b, exception_class, sizeof(exception_class)) != 0)
                return false;
        bool verified;
        const struct ms_rust_module *m = canary_module(
                target, state, get_u64(b + 32), get_u64(b + 8), &verified);
        if (!m)
                return false;
        ret->address = address;
        ret->module = m->path;
        ret->canary_verified = verified;
        decode_cause(target, get_u64(b + 40), get_u64(b + 48), &ret->message);
        return true;
}

static struct ms_error *add_exception(struct ms_rust_state *state,
                                      const struct ms_rust_exception *e,
                                      size_t *capacity)
{
        if (state->n_exceptions >= MS_RUST_MAX_EXCEPTIONS) {
                ms_warnings_add(&state->warnings,
                                "more than %d Rust exception objects: the "
                                "rest ignored",
                                MS_RUST_MAX_EXCEPTIONS);
                free(e->message);
                return NULL;
        }
        if (!ms_grow((void **)&state->exceptions, capacity, state->n_exceptions,
                     sizeof(*state->exceptions))) {
                free(e->message);
                return &ms_error_no_memory;
        }
        state->exceptions[state->n_exceptions++] = *e;
        return NULL;
}

/* Search buf (size bytes of memory at address) for the class at 8-byte
 * aligned addresses. */
static struct ms_error *search_chunk(struct ms_target *target,
                                     struct ms_rust_state *state,
                                     const uint8_t *buf, size_t size,
                                     uint64_t address, size_t *capacity)
{
        const uint8_t *p = buf, *end = buf + size;
        while (p < end) {
                const uint8_t *at =
                        memmem(p, (size_t)(end - p), exception_class,
                               sizeof(exception_class));
                if (!at)
                        break;
                uint64_t a = address + (uint64_t)(at - buf);
                struct ms_rust_exception e;
                if (a % 8 == 0 &&
                    ms_rust_decode_exception(target, state, a, &e)) {
                        struct ms_error *err =
                                add_exception(state, &e, capacity);
                        if (err)
                                return err;
                }
                p = at + 1;
        }
        return NULL;
}

struct ms_error *ms_rust_find_exceptions(struct ms_target *target,
                                         struct ms_rust_state *state,
                                         const struct ms_rust_region *regions,
                                         size_t n_regions, uint64_t budget)
{
        uint8_t *buf = malloc(CHUNK);
        if (!buf)
                return &ms_error_no_memory;
        size_t capacity = state->n_exceptions;
        uint64_t spent = 0;
        struct ms_error *err = NULL;
        for (size_t r = 0; r < n_regions && !err; r++) {
                for (uint64_t at = regions[r].start;
                     at < regions[r].end && !err; at += CHUNK) {
                        size_t size = (size_t)MS_MIN((uint64_t)CHUNK,
                                                     regions[r].end - at);
                        if (spent + size > budget) {
                                ms_warnings_add(&state->warnings,
                                                "search for Rust exception "
                                                "objects stopped after %" PRIu64
                                                " MiB",
                                                spent >> 20);
                                free(buf);
                                return NULL;
                        }
                        spent += size;
                        struct ms_error *e =
                                ms_target_read(target, at, buf, size);
                        if (e) {
                                /* A region that is not all in the core. */
                                ms_error_destroy(e);
                                continue;
                        }
                        err = search_chunk(target, state, buf, size, at,
                                           &capacity);
                }
        }
        free(buf);
        return err;
}
