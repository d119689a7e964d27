/*
 * Finding CPython runtimes (_PyRuntime) in a target and telling their
 * version; see cpython.h for the order of the methods.
 */
#include <ctype.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpython/internal.h"
#include "unwind/unwind.h"

/* Per module, at most this much of .bss/.data is searched for the
 * Py_GetVersion() buffer, and this much per mapping in the exhaustive
 * scan. */
#define MAX_VERSION_SCAN (8u << 20)
#define MAX_SCAN_MAPPING (64u << 20)
/* The exhaustive scan reads at most this much in all: a hostile core's
 * mappings can send it over gigabytes of unbacked addresses. */
#define MAX_SCAN_TOTAL (512ull << 20)
#define SCAN_CHUNK 65536
/* At most this many candidates are examined. */
#define MAX_CANDIDATES 256

struct candidate {
        uint64_t address;
        char *module;
        const char *found_by;
        int major, minor;
        uint32_t version_hex;
};

struct candidates {
        struct candidate *items;
        size_t n, capacity;
        /* The _asyncio module's debug offsets (3.14+; the module may be a
         * file of its own), 0 when no module has them. */
        uint64_t asyncio_debug;
};

static struct ms_error *add_candidate(struct candidates *c, uint64_t address,
                                      const char *module, const char *found_by,
                                      int major, int minor,
                                      uint32_t version_hex)
{
        for (size_t i = 0; i < c->n; i++) {
                struct candidate *o = &c->items[i];
                if (o->address != address)
                        continue;
                /* Same runtime seen another way: keep what is known. */
                if (!o->major && major) {
                        o->major = major;
                        o->minor = minor;
                }
                if (!o->version_hex)
                        o->version_hex = version_hex;
                if (!o->module && module)
                        o->module = strdup(module);
                return NULL;
        }
        if (c->n >= MAX_CANDIDATES)
                return NULL;
        if (!ms_grow((void **)&c->items, &c->capacity, c->n, sizeof(*c->items)))
                return &ms_error_no_memory;
        bool ok = true;
        c->items[c->n] = (struct candidate){
                .address = address,
                .module = ms_strdup_or_null(module, &ok),
                .found_by = found_by,
                .major = major,
                .minor = minor,
                .version_hex = version_hex,
        };
        if (!ok)
                return &ms_error_no_memory;
        c->n++;
        return NULL;
}

static void candidates_deinit(struct candidates *c)
{
        for (size_t i = 0; i < c->n; i++)
                free(c->items[i].module);
        free(c->items);
}

/* "3.X" from a module name: libpython3.11.so.1.0, python3.11, python3.13t. */
static bool version_from_name(const char *path, int *major, int *minor)
{
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *p = strstr(base, "python");
        if (!p)
                return false;
        p += strlen("python");
        int a, b, n = 0;
        if (sscanf(p, "%d.%d%n", &a, &b, &n) != 2 || a != 3)
                return false;
        *major = a;
        *minor = b;
        return true;
}

/* What one ELF module file tells about a runtime inside it. */
struct module_info {
        uint64_t bias;
        bool have_bias;
        uint64_t runtime_symbol;     /* st_value of _PyRuntime, 0 if absent */
        uint64_t runtime_section;    /* sh_addr of .PyRuntime, 0 if absent */
        uint64_t py_version;         /* st_value of Py_Version, 0 if absent */
        uint64_t bss_addr, bss_size; /* where Py_GetVersion's buffer is */
        uint64_t asyncio_debug;      /* sh_addr of .AsyncioDebug (3.14+) */
};

static void scan_dynsym(Elf *elf, Elf_Scn *scn, GElf_Shdr *sh,
                        struct module_info *mi)
{
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || sh->sh_entsize == 0)
                return;
        size_t n = sh->sh_size / sh->sh_entsize;
        for (size_t i = 0; i < n; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(data, (int)i, &sym) ||
                    sym.st_shndx == SHN_UNDEF)
                        continue;
                const char *name = elf_strptr(elf, sh->sh_link, sym.st_name);
                if (!name)
                        continue;
                if (strcmp(name, "_PyRuntime") == 0)
                        mi->runtime_symbol = sym.st_value;
                else if (strcmp(name, "Py_Version") == 0)
                        mi->py_version = sym.st_value;
        }
}

static void scan_sections(Elf *elf, struct module_info *mi)
{
        size_t shstrndx;
        if (elf_getshdrstrndx(elf, &shstrndx) != 0)
                return;
        for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
                GElf_Shdr sh;
                if (!gelf_getshdr(scn, &sh))
                        continue;
                const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
                if (!name)
                        continue;
                if (strcmp(name, ".PyRuntime") == 0)
                        mi->runtime_section = sh.sh_addr;
                else if (strcmp(name, ".AsyncioDebug") == 0)
                        mi->asyncio_debug = sh.sh_addr;
                else if (strcmp(name, ".bss") == 0) {
                        mi->bss_addr = sh.sh_addr;
                        mi->bss_size = sh.sh_size;
                } else if (sh.sh_type == SHT_DYNSYM)
                        scan_dynsym(elf, scn, &sh, mi);
        }
}

/* Load bias of the loaded module path (the target decides which mapping
 * at file offset 0 is the loaded copy). */
static void find_bias(struct ms_target *target, const char *path,
                      struct module_info *mi)
{
        const struct ms_module *modules;
        size_t n;
        struct ms_error *err = ms_target_modules(target, &modules, &n);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        for (size_t i = 0; i < n && !mi->have_bias; i++) {
                if (strcmp(modules[i].path, path) == 0 &&
                    modules[i].have_bias) {
                        mi->bias = modules[i].bias;
                        mi->have_bias = true;
                }
        }
}

static bool read_module_info(struct ms_target *target, const char *path,
                             const char *host_path, struct module_info *mi)
{
        memset(mi, 0, sizeof(*mi));
        int fd = open(host_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        elf_version(EV_CURRENT);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        bool ok = elf && elf_kind(elf) == ELF_K_ELF;
        if (ok) {
                scan_sections(elf, mi);
                find_bias(target, path, mi);
        }
        elf_end(elf);
        close(fd);
        return ok && mi->have_bias;
}

/* Parse a run of decimal digits at *p (at most 3). */
static bool parse_num(const uint8_t *buf, size_t n, size_t *p, unsigned *ret)
{
        unsigned v = 0, k = 0;
        while (*p < n && k < 3 && isdigit(buf[*p])) {
                v = v * 10 + (unsigned)(buf[(*p)++] - '0');
                k++;
        }
        *ret = v;
        return k > 0;
}

/* PY_VERSION_HEX of "3.X.Y[{a,b,rc}N][+] (" at buf[i], the start of the
 * Py_GetVersion() buffer ("3.10.13 (main, ...) [GCC ...]"), or 0. */
static uint32_t version_at(const uint8_t *buf, size_t n, size_t i)
{
        unsigned major, minor, micro, serial = 0, level = 0xF;
        size_t p = i;
        if (!parse_num(buf, n, &p, &major) || major != 3 || p >= n ||
            buf[p++] != '.' || !parse_num(buf, n, &p, &minor) || p >= n ||
            buf[p++] != '.' || !parse_num(buf, n, &p, &micro))
                return 0;
        if (p + 1 < n && buf[p] == 'r' && buf[p + 1] == 'c') {
                level = 0xC;
                p += 2;
        } else if (p < n && (buf[p] == 'a' || buf[p] == 'b')) {
                level = buf[p++] == 'a' ? 0xA : 0xB;
        }
        if (level != 0xF && !parse_num(buf, n, &p, &serial))
                return 0;
        if (p < n && buf[p] == '+')
                p++;
        if (p + 1 >= n || buf[p] != ' ' || buf[p + 1] != '(')
                return 0;
        return major << 24 | minor << 16 | micro << 8 | level << 4 |
               (serial & 0xf);
}

static uint32_t version_in_buffer(const uint8_t *buf, size_t n)
{
        for (size_t i = 0; i + 8 < n; i++) {
                if (buf[i] != '3' || buf[i + 1] != '.' || (i && buf[i - 1]))
                        continue;
                uint32_t hex = version_at(buf, n, i);
                if (hex)
                        return hex;
        }
        return 0;
}

/* Read n bytes at address, or, when that fails, the readable pages at
 * its start. Returns how many bytes were read (0: none). */
static size_t read_prefix(struct ms_target *target, uint64_t address,
                          uint8_t *buf, size_t n)
{
        struct ms_error *err = ms_target_read(target, address, buf, n);
        if (!err)
                return n;
        ms_error_destroy(err);
        size_t got = 0;
        while (got < n) {
                uint64_t a = address + got;
                size_t part = (size_t)MS_MIN((uint64_t)(n - got),
                                             ((a | 4095) + 1) - a);
                err = ms_target_read(target, a, buf + got, part);
                if (err) {
                        ms_error_destroy(err);
                        break;
                }
                got += part;
        }
        return got;
}

/* The Py_GetVersion() buffer in [start, start + size), which must be
 * readable from its start (the .bss of a module). */
static uint32_t version_from_memory(struct ms_target *target, uint64_t start,
                                    uint64_t size)
{
        size = MS_MIN(size, (uint64_t)MAX_VERSION_SCAN);
        uint8_t *buf = malloc(SCAN_CHUNK + 64);
        if (!buf)
                return 0;
        uint32_t hex = 0;
        for (uint64_t off = 0; off < size && !hex; off += SCAN_CHUNK) {
                size_t n =
                        (size_t)MS_MIN((uint64_t)SCAN_CHUNK + 64, size - off);
                size_t got = read_prefix(target, start + off, buf, n);
                hex = version_in_buffer(buf, got);
                if (got < n)
                        break;
        }
        free(buf);
        return hex;
}

/* Everything a module shows: its runtime address and the version hints. */
static struct ms_error *scan_module(struct ms_target *target,
                                    const struct ms_mapping *map,
                                    struct candidates *c)
{
        struct module_info mi;
        if (!map->host_path ||
            !read_module_info(target, map->path, map->host_path, &mi))
                return NULL;
        if (mi.asyncio_debug && !c->asyncio_debug)
                c->asyncio_debug = mi.asyncio_debug + mi.bias;
        uint64_t addr =
                mi.runtime_symbol ? mi.runtime_symbol : mi.runtime_section;
        if (!addr)
                return NULL;
        const char *how = mi.runtime_symbol ? "symbol" : "section";
        int major = 0, minor = 0;
        uint32_t hex = 0;
        if (mi.py_version) {
                uint64_t v;
                struct ms_error *err =
                        ms_target_read_u64(target, mi.py_version + mi.bias, &v);
                if (!err && v >> 24 == 3)
                        hex = (uint32_t)v;
                ms_error_destroy(err);
        }
        /* Before 3.11: the sys.version buffer gives the micro version
         * too; the file name only major.minor. */
        if (!hex && mi.bss_size)
                hex = version_from_memory(target, mi.bss_addr + mi.bias,
                                          mi.bss_size);
        if (hex) {
                major = (int)(hex >> 24);
                minor = (int)((hex >> 16) & 0xff);
        } else {
                version_from_name(map->path, &major, &minor);
        }
        struct ms_error *err = add_candidate(c, addr + mi.bias, map->path, how,
                                             major, minor, hex);
        /* The section and the symbol must agree; when they do not, the
         * section is the better witness (symbols can be interposed). */
        if (!err && mi.runtime_section && mi.runtime_symbol &&
            mi.runtime_section != mi.runtime_symbol)
                err = add_candidate(c, mi.runtime_section + mi.bias, map->path,
                                    "section", major, minor, hex);
        return err;
}

static bool seen_path(const struct ms_target *target, size_t upto,
                      const char *path)
{
        for (size_t i = 0; i < upto; i++) {
                const char *p = target->mappings[i].path;
                if (p && strcmp(p, path) == 0)
                        return true;
        }
        return false;
}

static struct ms_error *scan_modules(struct ms_target *target,
                                     struct candidates *c)
{
        for (size_t i = 0; i < target->n_mappings; i++) {
                const struct ms_mapping *map = &target->mappings[i];
                if (!map->path || map->path[0] != '/' ||
                    seen_path(target, i, map->path))
                        continue;
                struct ms_error *err = scan_module(target, map, c);
                if (err)
                        return err;
        }
        return NULL;
}

/* Ask the unwinder too: it also reads .symtab and separate debug files,
 * and knows modules a debugger target has no path for. */
static struct ms_error *ask_unwinder(struct ms_target *target,
                                     struct ms_unwinder *unwinder,
                                     struct candidates *c)
{
        uint64_t addr;
        struct ms_error *err = ms_unwinder_find_symbol(
                unwinder, NULL, "_PyRuntime", &addr, NULL);
        if (err) {
                ms_error_destroy(err);
                return NULL;
        }
        const struct ms_mapping *map = ms_target_find_mapping(target, addr);
        int major = 0, minor = 0;
        if (map && map->path)
                version_from_name(map->path, &major, &minor);
        uint64_t v = 0, vaddr;
        uint32_t hex = 0;
        err = ms_unwinder_find_symbol(unwinder, map ? map->path : NULL,
                                      "Py_Version", &vaddr, NULL);
        if (!err)
                err = ms_target_read_u64(target, vaddr, &v);
        if (!err && v >> 24 == 3) {
                hex = (uint32_t)v;
                major = 3;
                minor = (int)((v >> 16) & 0xff);
        }
        ms_error_destroy(err);
        return add_candidate(c, addr, map ? map->path : NULL, "symbol", major,
                             minor, hex);
}

/* ------------------------------------------------------------------------
 * Exhaustive scan
 * ------------------------------------------------------------------------ */

/* Does address hold a runtime of layout l? The main interpreter must have
 * id 0 and point back to the runtime (3.9+), its first thread must point
 * to it, and the interpreter list must contain it. */
static bool looks_like_runtime(struct ms_target *target,
                               const struct ms_py_layout *l, uint64_t address)
{
        uint64_t head, main, id, back, ts, ts_interp;
        struct ms_error *err = ms_py_read_field(target, address,
                                                l->rt_interpreters_head, &head);
        if (!err)
                err = ms_py_read_field(target, address, l->rt_interpreters_main,
                                       &main);
        if (err || !ms_py_plausible_pointer(head) ||
            !ms_py_plausible_pointer(main)) {
                ms_error_destroy(err);
                return false;
        }
        err = ms_py_read_field(target, main, l->is_id, &id);
        if (!err && l->is_runtime >= 0)
                err = ms_py_read_field(target, main, l->is_runtime, &back);
        else
                back = address;
        if (!err)
                err = ms_py_read_field(target, main, l->is_threads_head, &ts);
        if (err || id != 0 || back != address) {
                ms_error_destroy(err);
                return false;
        }
        /* main must be on the interpreter list (a candidate 8 bytes off
         * can see a pointer to main where head should be). */
        uint64_t p = head;
        for (int i = 0; i < 64 && p && p != main; i++) {
                if (!ms_py_plausible_pointer(p) ||
                    (err = ms_py_read_field(target, p, l->is_next, &p))) {
                        ms_error_destroy(err);
                        return false;
                }
        }
        if (p != main)
                return false;
        if (!ts)
                return l->is_runtime >= 0;
        err = ms_py_read_field(target, ts, l->ts_interp, &ts_interp);
        ms_error_destroy(err);
        return !err && ts_interp == main;
}

/* What the scan of one module looks for: pre-3.13 layouts to try (the
 * version from the file name when it has one; all of them otherwise). */
struct scan_ctx {
        struct ms_target *target;
        const char *path;
        int major, minor;
        struct candidates *c;
        bool found;
        /* Bytes the scan may still look at (shared by every module). */
        uint64_t *budget;
};

static bool scan_layout_wanted(const struct scan_ctx *s,
                               const struct ms_py_layout *l)
{
        if (l->version_hex >= 0x030d0000)
                return false;
        return !s->major || ((int)(l->version_hex >> 24) == s->major &&
                             (int)((l->version_hex >> 16) & 0xff) == s->minor);
}

static struct ms_error *scan_chunk(struct scan_ctx *s, const uint8_t *buf,
                                   size_t n, uint64_t base)
{
        for (size_t off = 0; off + 8 <= n; off += 8) {
                uint64_t addr = base + off;
                if (memcmp(buf + off, MS_PY_DEBUG_COOKIE, 8) == 0) {
                        s->found = true;
                        return add_candidate(s->c, addr, s->path, "scan", 0, 0,
                                             0);
                }
                /* Before 3.13: interpreters.head is a pointer at a small,
                 * known offset; try layouts only where one could be. */
                for (size_t i = 0; i < ms_py_n_layouts; i++) {
                        const struct ms_py_layout *l = &ms_py_layouts[i];
                        if (!scan_layout_wanted(s, l) ||
                            off + (size_t)l->rt_interpreters_main + 8 > n)
                                continue;
                        uint64_t head;
                        memcpy(&head, buf + off + l->rt_interpreters_head, 8);
                        if (!ms_py_plausible_pointer(head) ||
                            !looks_like_runtime(s->target, l, addr))
                                continue;
                        s->found = true;
                        return add_candidate(
                                s->c, addr, s->path, "scan",
                                (int)(l->version_hex >> 24),
                                (int)((l->version_hex >> 16) & 0xff), 0);
                }
        }
        return NULL;
}

/* Scan [start, end) until a runtime is found; with stop_at_hole, stop at
 * the first unreadable chunk (the end of a module's .bss). */
static struct ms_error *scan_range(struct scan_ctx *s, uint8_t *buf,
                                   uint64_t start, uint64_t end,
                                   bool stop_at_hole)
{
        struct ms_error *err = NULL;
        /* a + n <= end: no wrap-around at the top of the address space. */
        for (uint64_t a = start; a < end && !err && !s->found && *s->budget;) {
                size_t n = (size_t)MS_MIN(MS_MIN((uint64_t)SCAN_CHUNK, end - a),
                                          *s->budget);
                *s->budget -= n;
                size_t got = read_prefix(s->target, a, buf, n);
                err = scan_chunk(s, buf, got, a);
                if (got < n && stop_at_hole)
                        break;
                a += n;
        }
        return err;
}

/* The start of the next mapping at or after address (of any file), or
 * UINT64_MAX: a module's .bss must end before it. */
static uint64_t next_mapping_start(const struct ms_target *target,
                                   uint64_t address)
{
        uint64_t next = UINT64_MAX;
        for (size_t i = 0; i < target->n_mappings; i++) {
                uint64_t s = target->mappings[i].start;
                if (s >= address && s < next)
                        next = s;
        }
        return next;
}

/* The sys.version buffer of a module: in its .bss, which starts in the
 * last page of its last file mapping and goes on in anonymous memory. */
static uint32_t module_version(struct ms_target *target, uint64_t last_start,
                               uint64_t last_end)
{
        uint64_t start =
                MS_MAX(last_start, last_end - MS_MIN(last_end, SCAN_CHUNK));
        uint64_t limit = MS_MIN(next_mapping_start(target, last_end),
                                last_end + MAX_VERSION_SCAN);
        return version_from_memory(target, start, limit - start);
}

/* One module: its data mappings (non-zero file offset), then the .bss
 * that follows its last mapping. target.h has no anonymous mappings, and
 * before 3.10 _PyRuntime is zero-initialized, so it lives in .bss. */
static struct ms_error *scan_module_memory(struct ms_target *target,
                                           size_t first, uint8_t *buf,
                                           uint64_t *budget,
                                           struct candidates *c)
{
        const char *path = target->mappings[first].path;
        struct scan_ctx s = {
                .target = target, .path = path, .c = c, .budget = budget};
        version_from_name(path, &s.major, &s.minor);
        uint64_t last_start = 0, last_end = 0;
        struct ms_error *err = NULL;
        for (size_t i = first; i < target->n_mappings; i++) {
                const struct ms_mapping *map = &target->mappings[i];
                if (!map->path || strcmp(map->path, path) != 0)
                        continue;
                if (map->end > last_end) {
                        last_start = map->start;
                        last_end = map->end;
                }
                if (err || s.found || map->file_offset == 0 ||
                    map->end - map->start > MAX_SCAN_MAPPING)
                        continue;
                err = scan_range(&s, buf, map->start, map->end, false);
        }
        if (!err && !s.found && last_end) {
                uint64_t limit = MS_MIN(next_mapping_start(target, last_end),
                                        last_end + MAX_VERSION_SCAN);
                err = scan_range(&s, buf, last_end, limit, true);
        }
        if (!err && s.found) {
                /* The full version (before 3.13 nothing else has it). */
                struct candidate *cd = &c->items[c->n - 1];
                uint32_t hex =
                        cd->major == 3 && cd->minor < 13
                                ? module_version(target, last_start, last_end)
                                : 0;
                if (hex && (int)((hex >> 16) & 0xff) == cd->minor)
                        cd->version_hex = hex;
        }
        return err;
}

static struct ms_error *scan_memory(struct ms_target *target,
                                    struct candidates *c)
{
        uint8_t *buf = malloc(SCAN_CHUNK);
        if (!buf)
                return &ms_error_no_memory;
        struct ms_error *err = NULL;
        uint64_t budget = MAX_SCAN_TOTAL;
        for (size_t i = 0; i < target->n_mappings && !err; i++) {
                const struct ms_mapping *map = &target->mappings[i];
                if (!map->path || seen_path(target, i, map->path))
                        continue;
                err = scan_module_memory(target, i, buf, &budget, c);
        }
        free(buf);
        if (!err && !budget)
                ms_warnings_add(&target->warnings,
                                "the scan for a Python runtime stopped after "
                                "%llu MiB",
                                (unsigned long long)(MAX_SCAN_TOTAL >> 20));
        return err;
}

/* ------------------------------------------------------------------------
 * Reading one runtime
 * ------------------------------------------------------------------------ */

/* The table entry for a version, or for the newest older/oldest newer
 * version when there is none (a 3.16 described by its debug offsets). */
static const struct ms_py_layout *nearest_layout(int major, int minor)
{
        const struct ms_py_layout *l = ms_py_layout_find(major, minor);
        for (int m = minor - 1; !l && m >= minor - 4 && m >= 0; m--)
                l = ms_py_layout_find(major, m);
        return l;
}

static void set_version_string(struct ms_py_runtime *rt)
{
        char buf[64];
        if (rt->version_hex) {
                static const char *const level[16] = {
                        [0xA] = "a",
                        [0xB] = "b",
                        [0xC] = "rc",
                };
                unsigned lv = (rt->version_hex >> 4) & 0xf;
                unsigned serial = rt->version_hex & 0xf;
                if (lv != 0xF && level[lv])
                        snprintf(buf, sizeof(buf), "%d.%d.%d%s%u%s", rt->major,
                                 rt->minor, rt->micro, level[lv], serial,
                                 rt->free_threaded ? "t" : "");
                else
                        snprintf(buf, sizeof(buf), "%d.%d.%d%s", rt->major,
                                 rt->minor, rt->micro,
                                 rt->free_threaded ? "t" : "");
        } else {
                snprintf(buf, sizeof(buf), "%d.%d%s", rt->major, rt->minor,
                         rt->free_threaded ? "t" : "");
        }
        rt->version_string = strdup(buf);
}

/* Use the target's _Py_DebugOffsets when it has them. Returns true when
 * the layout came from them. */
static bool read_debug_offsets(struct ms_target *target,
                               struct ms_py_runtime *rt)
{
        static const size_t sizes[] = {MS_PY_DEBUG_OFFSETS_MAX, 888, 584};
        uint8_t buf[MS_PY_DEBUG_OFFSETS_MAX];
        size_t got = 0;
        for (size_t i = 0; i < MS_ARRAY_SIZE(sizes) && !got; i++) {
                struct ms_error *err =
                        ms_target_read(target, rt->address, buf, sizes[i]);
                if (!err)
                        got = sizes[i];
                ms_error_destroy(err);
        }
        if (got < 24 || memcmp(buf, MS_PY_DEBUG_COOKIE, MS_PY_DEBUG_COOKIE_LEN))
                return false;
        uint64_t declared;
        memcpy(&declared, buf + 8, 8);
        const struct ms_py_layout *base = nearest_layout(
                (int)(declared >> 24), (int)((declared >> 16) & 0xff));
        if (!base) {
                ms_warnings_add(&rt->warnings,
                                "runtime 0x%" PRIx64
                                ": no table for version 0x%08" PRIx64,
                                rt->address, declared);
                return false;
        }
        struct ms_py_layout l = *base;
        uint32_t hex;
        bool ft;
        struct ms_error *err =
                ms_py_debug_offsets_parse(buf, got, &l, &hex, &ft);
        if (err) {
                ms_warnings_add(&rt->warnings, "runtime 0x%" PRIx64 ": %s",
                                rt->address, err->message);
                ms_error_destroy(err);
                return false;
        }
        if (ft) {
                /* Object fields the debug offsets do not describe move with
                 * the longer header; then re-apply the described ones. */
                struct ms_py_layout shifted = *base;
                ms_py_layout_make_free_threaded(&shifted);
                bool ft2;
                ms_error_destroy(ms_py_debug_offsets_parse(buf, got, &shifted,
                                                           &hex, &ft2));
                l = shifted;
        }
        rt->layout = l;
        rt->version_hex = hex;
        rt->free_threaded = ft;
        return true;
}

/* An int flag of the runtime, -1 when the version has none or it cannot
 * be read. */
static int runtime_flag(struct ms_target *target,
                        const struct ms_py_runtime *rt, int32_t off)
{
        int32_t v;
        struct ms_error *err =
                ms_py_read_field_i32(target, rt->address, off, &v);
        ms_error_destroy(err);
        return err ? -1 : v;
}

/* A pointer-sized field of the runtime, 0 when absent or unreadable. */
static uint64_t runtime_word(struct ms_target *target,
                             const struct ms_py_runtime *rt, int32_t off)
{
        uint64_t v = 0;
        struct ms_error *err = ms_py_read_field(target, rt->address, off, &v);
        ms_error_destroy(err);
        return err ? 0 : v;
}

static void read_lifecycle(struct ms_target *target, struct ms_py_runtime *rt)
{
        const struct ms_py_layout *l = &rt->layout;
        /* _initialized (3.11+) is an int at the start of the flags; the
         * others are ints too. */
        rt->runtime_initialized = runtime_flag(target, rt, l->rt_initialized);
        rt->initialized = runtime_flag(target, rt, l->rt_py_initialized);
        rt->core_initialized = runtime_flag(target, rt, l->rt_core_initialized);
        rt->finalizing_tstate = runtime_word(target, rt, l->rt_finalizing);
        rt->finalizing_id = runtime_word(target, rt, l->rt_finalizing_id);
        rt->interpreters_head =
                runtime_word(target, rt, l->rt_interpreters_head);
        rt->tstate_current = runtime_word(target, rt, l->rt_tstate_current);
}

struct ms_error *ms_py_runtime_read(struct ms_target *target, uint64_t address,
                                    int major, int minor, uint32_t version_hex,
                                    const struct ms_py_find_options *options,
                                    struct ms_py_runtime *rt)
{
        memset(rt, 0, sizeof(*rt));
        rt->address = address;
        rt->has_debug_offsets = read_debug_offsets(target, rt);
        if (!rt->has_debug_offsets) {
                if (!major && options && options->major) {
                        major = options->major;
                        minor = options->minor;
                }
                const struct ms_py_layout *l =
                        major ? ms_py_layout_find(major, minor) : NULL;
                if (!l && major)
                        return ms_error_create(MS_ERROR_UNSUPPORTED,
                                               "CPython %d.%d is not supported",
                                               major, minor);
                if (!l)
                        return ms_error_create(
                                MS_ERROR_UNSUPPORTED,
                                "the CPython version is unknown");
                rt->layout = *l;
                rt->version_hex = version_hex;
        }
        if (rt->version_hex) {
                rt->major = (int)(rt->version_hex >> 24);
                rt->minor = (int)((rt->version_hex >> 16) & 0xff);
                rt->micro = (int)((rt->version_hex >> 8) & 0xff);
        } else {
                rt->major = major;
                rt->minor = minor;
                rt->micro = -1;
        }
        set_version_string(rt);
        if (!rt->version_string)
                return &ms_error_no_memory;
        read_lifecycle(target, rt);
        unsigned max_frames = options && options->max_frames
                                      ? options->max_frames
                                      : MS_PY_MAX_FRAMES;
        return ms_py_read_threads(target, rt, max_frames);
}

/* ------------------------------------------------------------------------
 * Finding all runtimes
 * ------------------------------------------------------------------------ */

static struct ms_error *collect(struct ms_target *target,
                                struct ms_unwinder *unwinder,
                                const struct ms_py_find_options *options,
                                struct candidates *c)
{
        struct ms_error *err = NULL;
        if (options && options->runtime_address)
                err = add_candidate(c, options->runtime_address, NULL,
                                    "address", 0, 0, 0);
        bool modules = !(options && options->skip_modules);
        if (!err && modules)
                err = scan_modules(target, c);
        if (!err && modules && unwinder)
                err = ask_unwinder(target, unwinder, c);
        if (!err && options && options->exhaustive)
                err = scan_memory(target, c);
        return err;
}

struct ms_error *ms_py_runtimes_find(struct ms_target *target,
                                     struct ms_unwinder *unwinder,
                                     const struct ms_py_find_options *options,
                                     struct ms_py_runtime **ret, size_t *n_ret)
{
        struct candidates c = {0};
        *ret = NULL;
        *n_ret = 0;
        struct ms_error *err = collect(target, unwinder, options, &c);
        struct ms_py_runtime *rts = NULL;
        size_t n = 0;
        if (!err && c.n) {
                rts = calloc(c.n, sizeof(*rts));
                if (!rts)
                        err = &ms_error_no_memory;
        }
        for (size_t i = 0; !err && i < c.n; i++) {
                struct candidate *cd = &c.items[i];
                struct ms_py_runtime *rt = &rts[n];
                struct ms_error *rerr = ms_py_runtime_read(
                        target, cd->address, cd->major, cd->minor,
                        cd->version_hex, options, rt);
                if (rerr && rerr->code == MS_ERROR_NO_MEMORY) {
                        ms_py_runtime_deinit(rt);
                        err = rerr;
                        break;
                }
                if (rerr) {
                        /* Not a runtime we can read: say why, go on. */
                        ms_warnings_add(
                                &target->warnings,
                                "CPython runtime 0x%" PRIx64 " (%s%s%s): %s",
                                cd->address, cd->found_by,
                                cd->module ? " in " : "",
                                cd->module ? cd->module : "", rerr->message);
                        ms_error_destroy(rerr);
                        ms_py_runtime_deinit(rt);
                        continue;
                }
                rt->found_by = cd->found_by;
                rt->asyncio_debug = c.asyncio_debug;
                rt->module = cd->module;
                cd->module = NULL;
                n++;
        }
        candidates_deinit(&c);
        if (err) {
                ms_py_runtimes_destroy(rts, n);
                return err;
        }
        *ret = rts;
        *n_ret = n;
        return NULL;
}

void ms_py_runtime_deinit(struct ms_py_runtime *rt)
{
        if (!rt)
                return;
        for (size_t i = 0; i < rt->n_threads; i++) {
                struct ms_py_thread *t = &rt->threads[i];
                for (size_t j = 0; j < t->n_frames; j++) {
                        ms_py_locals_free(&t->frames[j]);
                        free(t->frames[j].function);
                        free(t->frames[j].qualname);
                        free(t->frames[j].file);
                }
                free(t->frames);
                free(t->error);
                ms_py_exc_chain_deinit(&t->pending);
                for (size_t j = 0; j < t->n_handled; j++)
                        ms_py_exc_chain_deinit(&t->handled[j]);
                free(t->handled);
        }
        free(rt->threads);
        for (size_t i = 0; i < rt->n_interps; i++)
                free(rt->interps[i].atexit_code);
        free(rt->interps);
        free(rt->module);
        free(rt->version_string);
        ms_warnings_deinit(&rt->warnings);
        memset(rt, 0, sizeof(*rt));
}

void ms_py_runtimes_destroy(struct ms_py_runtime *runtimes, size_t n)
{
        for (size_t i = 0; i < n; i++)
                ms_py_runtime_deinit(&runtimes[i]);
        free(runtimes);
}
