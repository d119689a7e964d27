/*
 * The core file backend: an ELF core (from the kernel or gdb's gcore) is
 * mapped read-only and parsed by hand. Every count, size and offset in it
 * is untrusted and checked against the file before use.
 *
 * What is a crash: a kernel core is only ever written for a signal whose
 * default action dumps core, and gcore records the signal a thread stopped
 * with (0, or SIGSTOP from the attach, or whatever the debugger saw).
 * So the core's signal is its NT_SIGINFO signal, else the first thread's
 * pr_cursig, and only when that is a core-dumping signal (SIGSEGV, SIGABRT,
 * SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGQUIT, SIGSYS, SIGXCPU, SIGXFSZ);
 * anything else is a snapshot and has signo 0.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "target/backend.h"

/* Offsets in the x86-64 struct elf_prstatus, elf_prpsinfo and siginfo_t:
 * the layout of the core, not of the machine reading it. */
#define PRSTATUS_CURSIG 12
#define PRSTATUS_PID 32
#define PRSTATUS_REG 112
#define PRSTATUS_MIN_SIZE (PRSTATUS_REG + MS_USER_REGS_WORDS * 8)
#define PRPSINFO_PID 24
#define PRPSINFO_FNAME 40
#define PRPSINFO_FNAME_SIZE 16
#define PRPSINFO_MIN_SIZE (PRPSINFO_FNAME + PRPSINFO_FNAME_SIZE)
#define SIGINFO_SIGNO 0
#define SIGINFO_CODE 8
#define SIGINFO_ADDR 16
#define SIGINFO_MIN_SIZE 24
/* Strings read from the core for the executable's name. */
#define MAX_PATH_LEN 4096

/* Memory held by the core: [start, file_end) is at offset in the file;
 * [file_end, end) was not dumped. */
struct core_segment {
        uint64_t start;
        uint64_t file_end;
        uint64_t offset;
};

struct core_target {
        struct ms_target target;
        const uint8_t *image;
        size_t size;
        struct core_segment *segments;
        size_t n_segments;
};

/* What the notes say, gathered before the target is filled in. */
struct core_notes {
        bool have_prpsinfo;
        pid_t pid;
        char fname[PRPSINFO_FNAME_SIZE + 1];
        bool have_siginfo;
        int sig_signo;
        int sig_code;
        uint64_t sig_addr;
        bool have_file;
        bool have_auxv;
        uint64_t at_phdr;
        uint64_t at_entry;
        uint64_t at_execfn;
        uint64_t at_sysinfo_ehdr;
        bool truncated;
        bool malformed;
        bool too_many_threads;
};

static struct core_target *to_core(struct ms_target *target)
{
        return (struct core_target *)target;
}

static uint64_t get_u64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static uint32_t get_u32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

static const struct core_segment *find_segment(const struct core_target *core,
                                               uint64_t address)
{
        size_t lo = ms_count_at_or_below(
                core->segments, core->n_segments, sizeof(*core->segments),
                offsetof(struct core_segment, start), address);
        if (lo == 0)
                return NULL;
        const struct core_segment *s = &core->segments[lo - 1];
        return address < s->file_end ? s : NULL;
}

static struct ms_error *core_read(struct ms_target *target, uint64_t address,
                                  void *buf, size_t size)
{
        struct core_target *core = to_core(target);
        uint8_t *out = buf;
        uint64_t at = address;
        size_t left = size;
        /* A read may span adjacent segments. */
        while (left) {
                const struct core_segment *s = find_segment(core, at);
                if (!s)
                        return ms_error_create(
                                MS_ERROR_FAULT,
                                "cannot read %zu bytes at 0x%" PRIx64
                                ": 0x%" PRIx64 " is not in the core",
                                size, address, at);
                size_t n = MS_MIN((uint64_t)left, s->file_end - at);
                memcpy(out, core->image + s->offset + (at - s->start), n);
                out += n;
                left -= n;
                at += n;
                if (left && at == 0)
                        return ms_error_create(
                                MS_ERROR_FAULT,
                                "cannot read %zu bytes at 0x%" PRIx64, size,
                                address);
        }
        return NULL;
}

static void core_destroy(struct ms_target *target)
{
        struct core_target *core = to_core(target);
        if (core->image)
                munmap((void *)core->image, core->size);
        free(core->segments);
        free(core);
}

static const struct ms_target_ops core_ops = {
        .read = core_read,
        .destroy = core_destroy,
};

static int segment_cmp(const void *a, const void *b)
{
        const struct core_segment *x = a, *y = b;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        return 0;
}

/* Record the PT_LOAD segments; the parts past the end of the file (a
 * truncated core) are dropped with a warning. */
static struct ms_error *load_segments(struct core_target *core,
                                      const Elf64_Phdr *phdrs, size_t phnum)
{
        uint64_t total = 0, missing = 0;
        size_t n = 0;
        for (size_t i = 0; i < phnum; i++) {
                if (phdrs[i].p_type == PT_LOAD && phdrs[i].p_filesz)
                        n++;
        }
        core->segments = calloc(n ? n : 1, sizeof(*core->segments));
        if (!core->segments)
                return &ms_error_no_memory;
        for (size_t i = 0; i < phnum; i++) {
                const Elf64_Phdr *p = &phdrs[i];
                if (p->p_type != PT_LOAD || !p->p_filesz)
                        continue;
                uint64_t filesz = MS_MIN(p->p_filesz, p->p_memsz);
                if (p->p_vaddr + filesz < p->p_vaddr) {
                        ms_warnings_add(
                                &core->target.warnings,
                                "core has a malformed segment at 0x%" PRIx64
                                "; ignored",
                                p->p_vaddr);
                        continue;
                }
                total += filesz;
                uint64_t avail = 0;
                if (p->p_offset < core->size)
                        avail = MS_MIN(filesz, core->size - p->p_offset);
                missing += filesz - avail;
                if (!avail)
                        continue;
                struct core_segment *s = &core->segments[core->n_segments++];
                s->start = p->p_vaddr;
                s->file_end = p->p_vaddr + avail;
                s->offset = p->p_offset;
        }
        if (core->n_segments > 1)
                qsort(core->segments, core->n_segments, sizeof(*core->segments),
                      segment_cmp);
        /* Overlaps (broken input only): the later segment wins. */
        for (size_t i = 1; i < core->n_segments; i++) {
                struct core_segment *prev = &core->segments[i - 1];
                if (prev->file_end > core->segments[i].start)
                        prev->file_end = core->segments[i].start;
        }
        if (missing)
                ms_warnings_add(&core->target.warnings,
                                "core is truncated: %" PRIu64 " of %" PRIu64
                                " bytes of memory missing",
                                missing, total);
        return NULL;
}

/* ------------------------------------------------------------------------
 * Notes
 * ------------------------------------------------------------------------ */

static struct ms_error *note_prstatus(struct core_target *core,
                                      struct core_notes *notes,
                                      const struct ms_note *note)
{
        if (note->descsz < PRSTATUS_MIN_SIZE) {
                notes->malformed = true;
                return NULL;
        }
        if (core->target.n_threads >= MS_MAX_THREADS) {
                notes->too_many_threads = true;
                return NULL;
        }
        uint64_t user[MS_USER_REGS_WORDS], regs[MS_NUM_REGS], fs_base;
        memcpy(user, note->desc + PRSTATUS_REG, sizeof(user));
        ms_regs_from_user_regs(user, regs, &fs_base);
        pid_t tid = (pid_t)get_u32(note->desc + PRSTATUS_PID);
        int16_t cursig;
        memcpy(&cursig, note->desc + PRSTATUS_CURSIG, sizeof(cursig));
        struct ms_error *err = ms_target_append_thread(&core->target, tid, NULL,
                                                       regs, fs_base);
        if (err)
                return err;
        core->target.threads[core->target.n_threads - 1].signo = cursig;
        /* orig_rax: the system call the thread sleeps in. */
        core->target.threads[core->target.n_threads - 1].syscall_nr =
                (int64_t)user[15];
        return NULL;
}

static void note_prpsinfo(struct core_notes *notes, const struct ms_note *note)
{
        if (notes->have_prpsinfo)
                return;
        if (note->descsz < PRPSINFO_MIN_SIZE) {
                notes->malformed = true;
                return;
        }
        notes->have_prpsinfo = true;
        notes->pid = (pid_t)get_u32(note->desc + PRPSINFO_PID);
        memcpy(notes->fname, note->desc + PRPSINFO_FNAME, PRPSINFO_FNAME_SIZE);
        notes->fname[PRPSINFO_FNAME_SIZE] = '\0';
}

static void note_siginfo(struct core_notes *notes, const struct ms_note *note)
{
        if (notes->have_siginfo)
                return;
        if (note->descsz < SIGINFO_MIN_SIZE) {
                notes->malformed = true;
                return;
        }
        notes->have_siginfo = true;
        notes->sig_signo = (int)get_u32(note->desc + SIGINFO_SIGNO);
        notes->sig_code = (int)get_u32(note->desc + SIGINFO_CODE);
        notes->sig_addr = get_u64(note->desc + SIGINFO_ADDR);
}

static void note_auxv(struct core_notes *notes, const struct ms_note *note)
{
        if (notes->have_auxv)
                return;
        notes->have_auxv = true;
        for (size_t off = 0; off + 16 <= note->descsz; off += 16) {
                uint64_t type = get_u64(note->desc + off);
                uint64_t value = get_u64(note->desc + off + 8);
                if (type == AT_NULL)
                        break;
                if (type == AT_PHDR)
                        notes->at_phdr = value;
                else if (type == AT_ENTRY)
                        notes->at_entry = value;
                else if (type == AT_EXECFN)
                        notes->at_execfn = value;
                else if (type == AT_SYSINFO_EHDR)
                        notes->at_sysinfo_ehdr = value;
        }
}

/* NT_FILE: count, page size, count * (start, end, page offset), then count
 * NUL-terminated names. */
static struct ms_error *note_file(struct core_target *core,
                                  struct core_notes *notes,
                                  const struct ms_note *note)
{
        if (notes->have_file)
                return NULL;
        notes->have_file = true;
        const uint8_t *d = note->desc;
        size_t size = note->descsz;
        if (size < 16) {
                notes->malformed = true;
                return NULL;
        }
        uint64_t count = get_u64(d), page_size = get_u64(d + 8);
        if (!page_size || (page_size & (page_size - 1)) ||
            page_size > (1u << 30)) {
                notes->malformed = true;
                return NULL;
        }
        if (count > (size - 16) / 24 || count > MS_MAX_MAPPINGS) {
                notes->malformed = true;
                count = MS_MIN((size - 16) / 24, (uint64_t)MS_MAX_MAPPINGS);
        }
        size_t name = 16 + (size_t)count * 24;
        for (size_t i = 0; i < count; i++) {
                const uint8_t *e = d + 16 + i * 24;
                const char *path = (const char *)d + name;
                size_t len = name < size ? strnlen(path, size - name) : 0;
                if (name >= size || len == size - name) {
                        notes->malformed = true; /* names cut short */
                        break;
                }
                name += len + 1;
                uint64_t start = get_u64(e), end = get_u64(e + 8);
                uint64_t pgoff = get_u64(e + 16);
                if (end < start || pgoff > UINT64_MAX / page_size) {
                        notes->malformed = true;
                        continue;
                }
                struct ms_error *err = ms_target_append_mapping(
                        &core->target, path, start, end, pgoff * page_size);
                if (err)
                        return err;
        }
        return NULL;
}

static struct ms_error *parse_notes(struct core_target *core,
                                    struct core_notes *notes,
                                    const uint8_t *buf, size_t size)
{
        size_t off = 0;
        struct ms_note note;
        bool malformed = false;
        /* Core notes are 4-byte aligned whatever p_align says (gdb: 1). */
        while (ms_note_next(buf, size, 4, &off, &note, &malformed)) {
                struct ms_error *err = NULL;
                if (!ms_note_is(&note, "CORE"))
                        continue;
                switch (note.type) {
                case NT_PRSTATUS:
                        err = note_prstatus(core, notes, &note);
                        break;
                case NT_PRPSINFO:
                        note_prpsinfo(notes, &note);
                        break;
                case NT_SIGINFO:
                        note_siginfo(notes, &note);
                        break;
                case NT_AUXV:
                        note_auxv(notes, &note);
                        break;
                case NT_FILE:
                        err = note_file(core, notes, &note);
                        break;
                }
                if (err)
                        return err;
        }
        if (malformed)
                notes->malformed = true;
        return NULL;
}

/* ------------------------------------------------------------------------
 * Headers
 * ------------------------------------------------------------------------ */

static const char *elf_type_name(unsigned type)
{
        switch (type) {
        case ET_NONE:
                return "NONE";
        case ET_REL:
                return "REL";
        case ET_EXEC:
                return "EXEC";
        case ET_DYN:
                return "DYN";
        default:
                return "unknown";
        }
}

static const char *machine_name(unsigned machine)
{
        switch (machine) {
        case EM_386:
                return "i386";
        case EM_ARM:
                return "arm";
        case EM_AARCH64:
                return "aarch64";
        case EM_PPC64:
                return "ppc64";
        case EM_S390:
                return "s390";
        case EM_RISCV:
                return "riscv";
        case EM_MIPS:
                return "mips";
        default:
                return NULL;
        }
}

/* Check the ELF header; the program header table in *phdrs (copied, as
 * the file need not align it) and its length. */
static struct ms_error *read_headers(struct core_target *core, const char *path,
                                     Elf64_Phdr **phdrs, size_t *phnum)
{
        const uint8_t *image = core->image;
        size_t size = core->size;
        if (size < EI_NIDENT || memcmp(image, ELFMAG, SELFMAG) != 0)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s is not an ELF file", path);
        if (image[EI_CLASS] != ELFCLASS64 || image[EI_DATA] != ELFDATA2LSB)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "%s is a %s ELF file; only x86-64 cores "
                                       "are supported",
                                       path,
                                       image[EI_CLASS] != ELFCLASS64
                                               ? "32-bit"
                                               : "big-endian");
        Elf64_Ehdr ehdr;
        if (size < sizeof(ehdr))
                return ms_error_create(
                        MS_ERROR_BAD_INPUT,
                        "%s is truncated: its ELF header is incomplete", path);
        memcpy(&ehdr, image, sizeof(ehdr));
        if (ehdr.e_type != ET_CORE)
                return ms_error_create(
                        MS_ERROR_BAD_INPUT,
                        "%s is an ELF file but not a core dump (type %s)", path,
                        elf_type_name(ehdr.e_type));
        if (ehdr.e_machine != EM_X86_64) {
                const char *name = machine_name(ehdr.e_machine);
                if (name)
                        return ms_error_create(MS_ERROR_UNSUPPORTED,
                                               "%s is a core of an %s machine; "
                                               "only x86-64 is supported",
                                               path, name);
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "%s is a core of ELF machine %u; only "
                                       "x86-64 is supported",
                                       path, ehdr.e_machine);
        }
        size_t n = ehdr.e_phnum;
        if (n == PN_XNUM) {
                /* More segments than fit in e_phnum: section 0 has them. */
                Elf64_Shdr shdr;
                if (ehdr.e_shoff >= size || size - ehdr.e_shoff < sizeof(shdr))
                        return ms_error_create(
                                MS_ERROR_BAD_INPUT,
                                "%s is truncated: its segment count is missing",
                                path);
                memcpy(&shdr, image + ehdr.e_shoff, sizeof(shdr));
                n = shdr.sh_info;
        }
        if (!n || ehdr.e_phentsize != sizeof(Elf64_Phdr))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s has no valid program headers", path);
        size_t avail = ehdr.e_phoff < size
                               ? (size - ehdr.e_phoff) / sizeof(Elf64_Phdr)
                               : 0;
        if (!avail)
                return ms_error_create(
                        MS_ERROR_BAD_INPUT,
                        "%s is truncated: its program headers are missing",
                        path);
        if (avail < n) {
                ms_warnings_add(&core->target.warnings,
                                "core is truncated: only %zu of %zu program "
                                "headers are present",
                                avail, n);
                n = avail;
        }
        *phdrs = malloc(n * sizeof(Elf64_Phdr));
        if (!*phdrs)
                return &ms_error_no_memory;
        memcpy(*phdrs, image + ehdr.e_phoff, n * sizeof(Elf64_Phdr));
        *phnum = n;
        return NULL;
}

static struct ms_error *read_all_notes(struct core_target *core,
                                       struct core_notes *notes,
                                       const Elf64_Phdr *phdrs, size_t phnum)
{
        for (size_t i = 0; i < phnum; i++) {
                const Elf64_Phdr *p = &phdrs[i];
                if (p->p_type != PT_NOTE)
                        continue;
                size_t avail = 0;
                if (p->p_offset < core->size)
                        avail = MS_MIN(p->p_filesz, core->size - p->p_offset);
                if (avail < p->p_filesz)
                        notes->truncated = true;
                const uint8_t *start =
                        avail ? core->image + p->p_offset : core->image;
                struct ms_error *err = parse_notes(core, notes, start, avail);
                if (err)
                        return err;
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * Threads, signal and executable
 * ------------------------------------------------------------------------ */

static void set_signal(struct ms_target *target, const struct core_notes *notes)
{
        int signo = 0;
        if (notes->have_siginfo && ms_signal_dumps_core(notes->sig_signo))
                signo = notes->sig_signo;
        /* The kernel puts the dumping thread first. */
        for (size_t i = 0; i < target->n_threads; i++) {
                const struct ms_target_thread *t = &target->threads[i];
                if (!ms_signal_dumps_core(t->signo))
                        continue;
                if (!signo)
                        signo = t->signo;
                if (t->signo == signo) {
                        target->signal_tid = t->tid;
                        break;
                }
        }
        if (signo && !target->signal_tid)
                target->signal_tid = target->threads[0].tid;
        target->signo = signo;
        if (signo && notes->have_siginfo && notes->sig_signo == signo) {
                target->si_code = notes->sig_code;
                /* si_addr is only there for faults the kernel raised
                 * (si_code > 0); kill() and abort() fill in a pid. */
                bool fault = signo == SIGSEGV || signo == SIGBUS ||
                             signo == SIGILL || signo == SIGFPE ||
                             signo == SIGTRAP;
                if (fault && notes->sig_code > 0)
                        target->fault_address = notes->sig_addr;
        }
}

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

/* The mapping path that is the executable, from what the core says. */
static const char *find_executable(struct ms_target *target,
                                   const struct core_notes *notes,
                                   const char *execfn)
{
        const struct ms_mapping *maps = target->mappings;
        size_t n = target->n_mappings;
        /* The entry point is inside the executable: exact. */
        for (size_t i = 0; notes->at_entry && i < n; i++) {
                if (maps[i].start <= notes->at_entry &&
                    notes->at_entry < maps[i].end)
                        return maps[i].path;
        }
        for (size_t i = 0; execfn && i < n; i++) {
                if (strcmp(maps[i].path, execfn) == 0)
                        return maps[i].path;
        }
        for (size_t i = 0; execfn && i < n; i++) {
                if (strcmp(base_name(maps[i].path), base_name(execfn)) == 0)
                        return maps[i].path;
        }
        /* comm is the basename cut to 15 characters. */
        for (size_t i = 0; notes->fname[0] && i < n; i++) {
                if (strncmp(base_name(maps[i].path), notes->fname,
                            strlen(notes->fname)) == 0)
                        return maps[i].path;
        }
        return n ? maps[0].path : NULL;
}

/* Without NT_FILE, map the executable from its program headers at the
 * load bias that AT_PHDR gives. */
static struct ms_error *map_executable(struct ms_target *target,
                                       const struct core_notes *notes)
{
        size_t size;
        const uint8_t *image =
                ms_target_map_file(target, target->executable, &size);
        Elf64_Ehdr ehdr;
        if (!image || size < sizeof(ehdr) || !notes->at_phdr)
                return NULL;
        memcpy(&ehdr, image, sizeof(ehdr));
        if (memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 ||
            ehdr.e_phentsize != sizeof(Elf64_Phdr) || ehdr.e_phoff > size ||
            ehdr.e_phnum > (size - ehdr.e_phoff) / sizeof(Elf64_Phdr))
                return NULL;
        const uint8_t *ph = image + ehdr.e_phoff;
        uint64_t phdr_vaddr = 0;
        bool have = false;
        for (size_t i = 0; i < ehdr.e_phnum && !have; i++) {
                Elf64_Phdr p;
                memcpy(&p, ph + i * sizeof(p), sizeof(p));
                if (p.p_type == PT_PHDR) {
                        phdr_vaddr = p.p_vaddr;
                        have = true;
                } else if (p.p_type == PT_LOAD && p.p_offset <= ehdr.e_phoff &&
                           ehdr.e_phoff - p.p_offset < p.p_filesz) {
                        phdr_vaddr = p.p_vaddr + (ehdr.e_phoff - p.p_offset);
                        have = true;
                }
        }
        if (!have)
                return NULL;
        uint64_t bias = notes->at_phdr - phdr_vaddr;
        for (size_t i = 0; i < ehdr.e_phnum; i++) {
                Elf64_Phdr p;
                memcpy(&p, ph + i * sizeof(p), sizeof(p));
                if (p.p_type != PT_LOAD || !p.p_memsz)
                        continue;
                uint64_t page = 4096;
                uint64_t start = (bias + p.p_vaddr) & ~(page - 1);
                uint64_t end = bias + p.p_vaddr + p.p_memsz;
                if (end < start || end > UINT64_MAX - page)
                        continue;
                end = (end + page - 1) & ~(page - 1);
                struct ms_error *err = ms_target_append_mapping(
                        target, target->executable, start, end,
                        p.p_offset & ~(page - 1));
                if (err)
                        return err;
        }
        return NULL;
}

static struct ms_error *set_executable(struct ms_target *target,
                                       const struct core_notes *notes,
                                       const struct ms_target_options *options)
{
        char *execfn = NULL;
        if (notes->at_execfn) {
                struct ms_error *err = ms_target_read_string(
                        target, notes->at_execfn, MAX_PATH_LEN, &execfn, NULL);
                if (err && err->code == MS_ERROR_NO_MEMORY)
                        return err;
                ms_error_destroy(err);
        }
        const char *exe = find_executable(target, notes, execfn);
        if (!exe)
                exe = options && options->executable ? options->executable
                                                     : execfn;
        struct ms_error *err = NULL;
        if (exe) {
                target->executable = strdup(exe);
                if (!target->executable)
                        err = &ms_error_no_memory;
        }
        free(execfn);
        if (err || notes->have_file)
                return err;
        ms_warnings_add(&target->warnings,
                        "core has no NT_FILE note: only the executable's "
                        "mappings are known");
        return target->executable ? map_executable(target, notes) : NULL;
}

static struct ms_error *fill_target(struct core_target *core,
                                    const struct core_notes *notes,
                                    const char *path,
                                    const struct ms_target_options *options)
{
        struct ms_target *target = &core->target;
        if (!target->n_threads)
                return ms_error_create(
                        MS_ERROR_BAD_INPUT,
                        "%s has no threads (no NT_PRSTATUS note)%s", path,
                        notes->truncated ? ": it is truncated" : "");
        if (notes->truncated)
                ms_warnings_add(&target->warnings,
                                "core is truncated: its notes are incomplete");
        if (notes->malformed)
                ms_warnings_add(&target->warnings,
                                "core has malformed notes; some were ignored");
        if (notes->too_many_threads)
                ms_warnings_add(&target->warnings,
                                "core has more than %d threads; the rest are "
                                "ignored",
                                MS_MAX_THREADS);
        target->pid =
                notes->have_prpsinfo ? notes->pid : target->threads[0].tid;
        struct ms_target_thread *main_thread =
                ms_target_find_thread(target, target->pid);
        if (main_thread && notes->fname[0]) {
                main_thread->name = strdup(notes->fname);
                if (!main_thread->name)
                        return &ms_error_no_memory;
        }
        set_signal(target, notes);
        target->vdso_address = notes->at_sysinfo_ehdr;
        struct ms_error *err = set_executable(target, notes, options);
        if (err)
                return err;
        ms_target_finish_mappings(target);
        return NULL;
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

static struct ms_error *map_core(struct core_target *core, const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ms_error_from_errno(errno, "cannot open %s", path);
        struct stat st;
        struct ms_error *err = NULL;
        if (fstat(fd, &st) < 0) {
                err = ms_error_from_errno(errno, "cannot stat %s", path);
        } else if (!S_ISREG(st.st_mode)) {
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "%s is not a regular file", path);
        } else if (st.st_size == 0) {
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "%s is not an ELF file (it is empty)",
                                      path);
        } else if ((uint64_t)st.st_size > SIZE_MAX) {
                err = ms_error_create(MS_ERROR_UNSUPPORTED, "%s is too large",
                                      path);
        } else {
                void *map = mmap(NULL, (size_t)st.st_size, PROT_READ,
                                 MAP_PRIVATE, fd, 0);
                if (map == MAP_FAILED) {
                        err = ms_error_from_errno(errno, "cannot map %s", path);
                } else {
                        core->image = map;
                        core->size = (size_t)st.st_size;
                }
        }
        close(fd);
        return err;
}

static struct ms_error *open_core(struct core_target *core, const char *path,
                                  const struct ms_target_options *options)
{
        core->target.core_path = strdup(path);
        if (!core->target.core_path)
                return &ms_error_no_memory;
        struct ms_error *err = map_core(core, path);
        if (err)
                return err;
        Elf64_Phdr *phdrs = NULL;
        size_t phnum = 0;
        struct core_notes notes = {0};
        err = read_headers(core, path, &phdrs, &phnum);
        if (!err)
                err = load_segments(core, phdrs, phnum);
        if (!err)
                err = read_all_notes(core, &notes, phdrs, phnum);
        free(phdrs);
        if (!err)
                err = fill_target(core, &notes, path, options);
        return err;
}

struct ms_error *ms_target_open_core(const char *path,
                                     const struct ms_target_options *options,
                                     struct ms_target **ret)
{
        if (!path || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no core file given");
        struct core_target *core = calloc(1, sizeof(*core));
        if (!core)
                return &ms_error_no_memory;
        struct ms_error *err = ms_target_init(&core->target, &core_ops,
                                              MS_TARGET_CORE, options);
        if (!err)
                err = open_core(core, path, options);
        if (err) {
                ms_target_destroy(&core->target);
                return err;
        }
        *ret = &core->target;
        return NULL;
}
