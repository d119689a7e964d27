/* Unwinding through JIT-compiled code (jit.c). */
#ifndef MIXSTACK_UNWIND_JIT_H
#define MIXSTACK_UNWIND_JIT_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>

#include "target/target.h"
#include "unwind/cfi_rules.h"

/* The pseudo module name of frames in JIT-compiled code. */
#define MS_JIT_MODULE "[jit]"

/*
 * One step from a frame whose pc lies in executable memory that no module
 * of dwfl holds (JIT-compiled code, no CFI): caller gets the caller's
 * registers. False when nothing plausible is found (or the pc is in a
 * module: those frames are for the CFI).
 */
bool ms_jit_step(struct ms_target *target, Dwfl *dwfl,
                 const struct ms_cfi_regs *regs, struct ms_cfi_regs *caller);

#endif /* MIXSTACK_UNWIND_JIT_H */
