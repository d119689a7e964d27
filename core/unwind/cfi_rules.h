/*
 * The unwinding rules of code addresses, taken once from libdw's CFI and
 * kept: most frames of a process repeat a few hundred return addresses,
 * and libdwfl interprets the CFI program again for each frame, which was
 * most of the time a live process stayed stopped. Only the rules compilers
 * emit for ordinary x86-64 code are kept (CFA = register + offset,
 * registers saved at CFA + offset, same, undefined or CFA + offset as a
 * value); for anything else (signal frames, DWARF expressions, no CFI)
 * there are no rules and the caller unwinds with libdwfl instead.
 */
#ifndef MIXSTACK_UNWIND_CFI_RULES_H
#define MIXSTACK_UNWIND_CFI_RULES_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdint.h>

#include "target/target.h"

/* The registers unwound: the DWARF x86-64 registers 0-16 (rip last). */
#define MS_CFI_NUM_REGS MS_NUM_REGS

struct ms_cfi_cache;

struct ms_cfi_cache *ms_cfi_cache_create(void);
void ms_cfi_cache_destroy(struct ms_cfi_cache *cache);

/* The register state of a frame. */
struct ms_cfi_regs {
        uint64_t value[MS_CFI_NUM_REGS];
        bool known[MS_CFI_NUM_REGS];
};

/* What one step from a frame gave. */
enum ms_cfi_step {
        /* caller holds the caller's registers. */
        MS_CFI_STEP_CALLER,
        /* The return address is undefined: the outermost frame. */
        MS_CFI_STEP_END,
        /* No simple rules here, or a read failed: unwind with libdwfl. */
        MS_CFI_STEP_UNSUPPORTED,
        /* Out of memory. */
        MS_CFI_STEP_NO_MEMORY,
};

/*
 * Unwind one frame: regs are the registers of the frame whose code is at
 * lookup (the pc for the innermost frame, the return address minus one
 * for the others); caller gets the caller's registers, its pc in
 * value[MS_REG_RIP]. Memory is read from target.
 */
enum ms_cfi_step ms_cfi_step(struct ms_cfi_cache *cache, Dwfl *dwfl,
                             struct ms_target *target, uint64_t lookup,
                             const struct ms_cfi_regs *regs,
                             struct ms_cfi_regs *caller);

#endif /* MIXSTACK_UNWIND_CFI_RULES_H */
