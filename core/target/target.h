/*
 * The target abstraction inside libmixstack: one struct for a core file, a
 * live process and a debugger-fed view. Readers above this layer (unwind,
 * cpython, rust) see only what is declared here.
 */
#ifndef MIXSTACK_TARGET_TARGET_H
#define MIXSTACK_TARGET_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/util.h"
#include "mixstack/mixstack.h"
#include "base/options.h"

/* At most this many threads and mappings are taken from any target. */
#define MS_MAX_THREADS 65536
#define MS_MAX_MAPPINGS 1000000

/* x86-64 DWARF register numbers used in ms_target_thread::regs. */
enum {
        MS_REG_RAX = 0,
        MS_REG_RDX = 1,
        MS_REG_RCX = 2,
        MS_REG_RBX = 3,
        MS_REG_RSI = 4,
        MS_REG_RDI = 5,
        MS_REG_RBP = 6,
        MS_REG_RSP = 7,
        MS_REG_R8 = 8,
        MS_REG_R15 = 15,
        MS_REG_RIP = 16,
};

struct ms_target_thread {
        pid_t tid;
        /* comm as the target recorded it (NT_PRPSINFO has only the main
         * thread's; /proc for live; the debugger's name). May be NULL. */
        char *name;
        uint64_t regs[MS_NUM_REGS];
        bool have_regs;
        /* The thread pointer (TLS base), 0 when unknown. */
        uint64_t fs_base;
        /* Signal pending for this thread in the core (pr_cursig), or 0. */
        int signo;
        /* The system call the thread is in (orig_rax of its saved user
         * registers; its arguments are in rdi, rsi, ...), -1 when none or
         * unknown. */
        int64_t syscall_nr;
};

/* One mapping of a file into the address space. */
struct ms_mapping {
        uint64_t start;
        uint64_t end;
        uint64_t file_offset;
        /* The path as the target names it ("/usr/lib/.../libc.so.6"). */
        char *path;
        /* The file on this machine that holds it (after sysroot and library
         * path search), or NULL when none was found. Shared between the
         * mappings of the same path. */
        const char *host_path;
};

struct ms_target;

struct ms_target_ops {
        /* Read size bytes at address from the backend itself. Return NULL or
         * an error (MS_ERROR_FAULT for unreadable memory). */
        struct ms_error *(*read)(struct ms_target *target, uint64_t address,
                                 void *buf, size_t size);
        /* Stop the target so that it holds still while it is read, and
         * read its threads (live processes; NULL for targets that hold
         * still anyway). *mappings_changed says the mappings were read
         * again and differ from those read before. */
        struct ms_error *(*freeze)(struct ms_target *target,
                                   bool *mappings_changed);
        /* Let a frozen target go on; reads afterwards see only what was
         * read while it was frozen. */
        void (*thaw)(struct ms_target *target);
        /* Release what the backend owns (detach a live process). */
        void (*destroy)(struct ms_target *target);
};

struct ms_target {
        const struct ms_target_ops *ops;
        enum ms_target_kind kind;
        pid_t pid;
        /* Core path for cores, else NULL. */
        char *core_path;
        /* Executable path as the target names it, and as found here. */
        char *executable;
        char *host_executable;
        /* Fatal signal of a core (0 for snapshots and live processes) and
         * the thread that received it. */
        int signo;
        int si_code;
        uint64_t fault_address;
        pid_t signal_tid;
        /* Where the vdso is mapped (AT_SYSINFO_EHDR of the core's NT_AUXV),
         * 0 when unknown. The unwinder reads the vdso from memory; a
         * "[vdso]" mapping, when the backend has one, is used first. */
        uint64_t vdso_address;
        struct ms_target_thread *threads;
        size_t n_threads;
        size_t threads_capacity;
        /* Sorted by start, non-overlapping. */
        struct ms_mapping *mappings;
        size_t n_mappings;
        size_t mappings_capacity;
        /* Options copied at creation. */
        bool no_debuginfod;
        ms_download_fn *download;
        void *download_arg;
        char *sysroot;
        char **library_paths;
        size_t n_library_paths;
        struct ms_warnings warnings;
        /* Files opened to back reads of file-backed memory missing from a
         * core; owned by target.c. */
        struct ms_file_cache *files;
        /* The loaded ELF modules, computed from the mappings on first use
         * (modules.c); recomputed when the number of mappings changes. */
        struct ms_module *modules;
        size_t n_modules;
        size_t modules_for_n_mappings;
        bool have_modules;
        /* Whole pages read from the backend, when the backend asked for
         * it (ms_target_cache_pages): for backends whose reads are system
         * calls or callbacks and whose memory cannot change while the
         * target lives. NULL when off. */
        struct ms_page_cache *page_cache;
        /* ms_target_freeze() stopped the target once; ms_target_thaw()
         * let it go on: memory not read by then is not read at all, not
         * even from the mapped files (a private mapping's pages differ
         * from its file). */
        bool frozen, thawed;
};

/*
 * An ELF file loaded by the dynamic loader (or the kernel): the executable,
 * a shared library, one copy per dlmopen namespace. A file that is merely
 * mmapped whole (as Rust's backtrace symbolizer does with every loaded
 * object, and as debug files are) is not a module, even though it is
 * mapped at file offset 0 too.
 */
struct ms_module {
        /* The path as the target names it, and the file on this machine
         * (NULL when missing). Both point into the target's mappings. */
        const char *path;
        const char *host_path;
        /* Where file offset 0 (the ELF header) is mapped. */
        uint64_t start;
        /* Load bias: start minus the first PT_LOAD's page-aligned p_vaddr,
         * the number to add to a symbol's st_value. */
        uint64_t bias;
        /* False when the program headers could be read from neither the
         * target nor the file: then bias assumes a p_vaddr of 0. */
        bool have_bias;
};

/* The loaded modules of target, sorted by start. The array belongs to the
 * target and stays valid until mappings are added. */
struct ms_error *ms_target_modules(struct ms_target *target,
                                   const struct ms_module **ret, size_t *n);

/*
 * Read target memory. Reads go to the backend first; bytes the backend does
 * not have (file-backed pages a core did not dump) are read from the mapped
 * file on this machine. MS_ERROR_FAULT when neither has them.
 */
struct ms_error *ms_target_read(struct ms_target *target, uint64_t address,
                                void *buf, size_t size);

/* Convenience readers: a little-endian u64 / u32 at address. */
struct ms_error *ms_target_read_u64(struct ms_target *target, uint64_t address,
                                    uint64_t *ret);
struct ms_error *ms_target_read_u32(struct ms_target *target, uint64_t address,
                                    uint32_t *ret);

/* Read a NUL-terminated string of at most max_len bytes (excluding the
 * NUL). The result is malloc'd and NUL-terminated; a string that does not
 * end within max_len is cut and *truncated is set (truncated may be NULL). */
struct ms_error *ms_target_read_string(struct ms_target *target,
                                       uint64_t address, size_t max_len,
                                       char **ret, bool *truncated);

/* The mapping holding address, or NULL. */
const struct ms_mapping *ms_target_find_mapping(const struct ms_target *target,
                                                uint64_t address);

/* The thread with tid, or NULL. */
struct ms_target_thread *ms_target_find_thread(struct ms_target *target,
                                               pid_t tid);

/*
 * Stop a target that runs (a live process opened with ms_target_open_pid())
 * and read its threads; a no-op for targets that hold still. *froze says
 * whether this call stopped it: the caller then thaws it. *mappings_changed
 * says the target's mappings were replaced (files mapped or unmapped since
 * the target was opened): anything built from them must be built again.
 */
struct ms_error *ms_target_freeze(struct ms_target *target, bool *froze,
                                  bool *mappings_changed);
/* Whether ms_target_freeze() would stop the target (it runs now). */
bool ms_target_runs(const struct ms_target *target);
/* Resume a target stopped by ms_target_freeze(). */
void ms_target_thaw(struct ms_target *target);

/* Backends use these to build a target. */
struct ms_error *ms_target_init(struct ms_target *target,
                                const struct ms_target_ops *ops,
                                enum ms_target_kind kind,
                                const struct ms_target_options *options);
/* Append a thread (regs copied when regs != NULL). */
struct ms_error *ms_target_append_thread(struct ms_target *target, pid_t tid,
                                         const char *name, const uint64_t *regs,
                                         uint64_t fs_base);
/* Append a mapping; call ms_target_finish_mappings() once all are in. */
struct ms_error *ms_target_append_mapping(struct ms_target *target,
                                          const char *path, uint64_t start,
                                          uint64_t end, uint64_t file_offset);
/* Forget every mapping (before appending a new set). */
void ms_target_clear_mappings(struct ms_target *target);
/* Sort mappings, resolve each path to a host file (sysroot, library paths,
 * the path itself), and warn once per file that cannot be found. */
void ms_target_finish_mappings(struct ms_target *target);

/* The GNU build-id of the ELF file mapped at mapping (its mapping at file
 * offset 0), read from the target itself, never from the file on this
 * machine. buf holds *len bytes; *len is set to the length copied.
 * MS_ERROR_NOT_FOUND when the file has no build-id note, MS_ERROR_FAULT
 * when the target does not hold its headers. */
struct ms_error *ms_target_build_id(struct ms_target *target,
                                    const struct ms_mapping *mapping,
                                    uint8_t *buf, size_t *len);

/* Resolve a path recorded in the target to a readable file on this
 * machine, honouring sysroot and library paths. Returns a malloc'd path or
 * NULL. */
char *ms_target_resolve_path(const struct ms_target *target, const char *path);

#endif /* MIXSTACK_TARGET_TARGET_H */
