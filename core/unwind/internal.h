/* Shared between unwind.c (threads, frames) and modules.c (modules). */
#ifndef MIXSTACK_UNWIND_INTERNAL_H
#define MIXSTACK_UNWIND_INTERNAL_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/u64_table.h"
#include "target/target.h"

struct ms_symbol_cache;
struct ms_symtabs;
struct ms_cfi_cache;

struct ms_unwinder {
        struct ms_target *target;
        Dwfl *dwfl;
        /* A bare x86-64 ELF header: the architecture for dwfl_attach_state
         * even when no module could be reported. Lives as long as dwfl. */
        Elf *arch_elf;
        void *arch_image;
        /* dwfl's search path for separate debug files. */
        char *debuginfo_path;
        Dwfl_Callbacks callbacks;
        /* The thread being unwound (index into target->threads). */
        size_t current;
        /* Set by memory_read when a read failed: the reason unwinding
         * stopped is then this address, not dwfl's generic message. */
        bool read_failed;
        uint64_t read_fault;
        /* Whether DWARF from separate debug files is used (it always is
         * from the modules' own files). */
        bool separate_dwarf;
        /* Frames are named from symbol tables only (no DWARF): see
         * ms_unwinder_set_names_only(). */
        bool names_only;
        /* Symbolized addresses, shared by every thread: with DWARF, and
         * names only. */
        struct ms_symbol_cache *cache, *names_cache;
        /* Sorted symbol tables of the modules. */
        struct ms_symtabs *symtabs;
        /* Unwinding rules per address; NULL: every walk goes through
         * libdwfl's unwinder. */
        struct ms_cfi_cache *cfi;
        /* Return addresses and pcs found to be JIT-compiled code (jit.c):
         * their frames are named MS_JIT_MODULE. */
        struct ms_u64_table jit_pcs;
        /* A libdwfl walk going on past JIT code: the thread as get_thread
         * gives it, with the registers of the JIT code's caller. */
        struct ms_target_thread resume;
        bool resuming;
};

/* dwfl's find_debuginfo callbacks (debuginfo.c): the standard search,
 * debuginfod included when $DEBUGINFOD_URLS names servers; and the same
 * without the network, for targets opened with no_debuginfod. */
int ms_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                      Dwarf_Addr base, const char *file_name,
                      const char *debuglink_file, GElf_Word debuglink_crc,
                      char **debuginfo_file_name);
int ms_find_debuginfo_offline(Dwfl_Module *mod, void **userdata,
                              const char *modname, Dwarf_Addr base,
                              const char *file_name, const char *debuglink_file,
                              GElf_Word debuglink_crc,
                              char **debuginfo_file_name);

/* Report the downloads of dwfl's debuginfod client, if any, to the
 * target's download callback. */
void ms_unwinder_watch_downloads(struct ms_unwinder *unwinder);

/* Fill dwfl's callbacks and report every module of the target. */
struct ms_error *ms_unwinder_report_modules(struct ms_unwinder *unwinder);

#endif /* MIXSTACK_UNWIND_INTERNAL_H */
