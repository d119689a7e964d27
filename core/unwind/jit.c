/*
 * Unwinding through JIT-compiled code: executable memory that no module
 * holds and no CFI describes (CPython 3.13+ with PYTHON_JIT=1).
 *
 * CPython's x86-64 JIT enters a trace through a shim compiled into the
 * same memory: a C-ABI function that pushes the callee-saved registers
 * the trace's preserve_none code may clobber, calls the trace, and pops
 * them back before returning to the eval loop. The trace's stencils use
 * every register, rbp included, and keep their locals on the stack; when
 * a stencil calls into C, the return address on the stack points into
 * the trace. So one step from a frame in JIT code is, in order:
 *
 * 1. the frame is at an epilogue (pop...; ret, or leave; ret), as the
 *    shim is after its call returned: run it on the saved registers;
 * 2. a stack slot above sp holds a return address into JIT code that is
 *    right after a call instruction and at such an epilogue: the shim's
 *    return address, which the trace's frame lies below;
 * 3. frame pointers (rbp), for JIT code that keeps them: [rbp + 8] is a
 *    return address right after a call, [rbp] the caller's rbp.
 *
 * Everything is read from the target and checked: a step that finds
 * nothing plausible fails, and the stack ends there as before.
 */
#include <string.h>

#include "unwind/jit.h"

/* How far above sp the shim's return address is looked for. */
#define MAX_SCAN_WORDS 2048
/* Registers an epilogue restores at most. */
#define MAX_POPS 12

/* DWARF numbers of the registers by x86 encoding (rax, rcx, rdx, rbx,
 * rsp, rbp, rsi, rdi, r8-r15). */
static const int dwarf_of_x86[16] = {0, 2, 1,  3,  7,  6,  4,  5,
                                     8, 9, 10, 11, 12, 13, 14, 15};

static bool read_u64(struct ms_target *target, uint64_t address, uint64_t *ret)
{
        struct ms_error *err = ms_target_read_u64(target, address, ret);
        ms_error_destroy(err);
        return !err;
}

static bool in_module(Dwfl *dwfl, uint64_t pc)
{
        return dwfl_addrmodule(dwfl, pc) != NULL;
}

/* Run the epilogue at pc (add $n, %rsp or leave, then up to MAX_POPS
 * pops, then ret) on regs; false when the code there is not such an
 * epilogue. CPython's perf trampolines (-X perf, 3.12+) end so too:
 * sub $8, %rsp; call *%rcx; add $8, %rsp; ret. */
static bool run_epilogue(struct ms_target *target, uint64_t pc,
                         const struct ms_cfi_regs *regs,
                         struct ms_cfi_regs *caller)
{
        uint8_t code[2 * MAX_POPS + 8];
        struct ms_error *err = ms_target_read(target, pc, code, sizeof(code));
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        *caller = *regs;
        uint64_t sp = regs->value[MS_REG_RSP];
        size_t i = 0;
        if (code[0] == 0xc9) { /* leave: mov rbp, rsp; pop rbp */
                if (!regs->known[MS_REG_RBP])
                        return false;
                sp = regs->value[MS_REG_RBP];
                if (!read_u64(target, sp, &caller->value[MS_REG_RBP]))
                        return false;
                sp += 8;
                i = 1;
        } else if (code[0] == 0x48 && code[1] == 0x83 && code[2] == 0xc4 &&
                   code[3] < 0x80) { /* add $imm8, %rsp */
                sp += code[3];
                i = 4;
        }
        for (unsigned pops = 0; pops < MAX_POPS && i < sizeof(code) - 1;
             pops++) {
                int reg;
                if (code[i] >= 0x58 && code[i] <= 0x5f) {
                        reg = code[i] - 0x58;
                        i += 1;
                } else if (code[i] == 0x41 && code[i + 1] >= 0x58 &&
                           code[i + 1] <= 0x5f) {
                        reg = 8 + code[i + 1] - 0x58;
                        i += 2;
                } else {
                        break;
                }
                if (reg == 4) /* pop rsp: not an epilogue */
                        return false;
                int d = dwarf_of_x86[reg];
                if (!read_u64(target, sp, &caller->value[d]))
                        return false;
                caller->known[d] = true;
                sp += 8;
        }
        if (i >= sizeof(code) || code[i] != 0xc3 || i == 0)
                return false;
        uint64_t ra;
        if (!read_u64(target, sp, &ra) || !ra)
                return false;
        caller->value[MS_REG_RIP] = ra;
        caller->value[MS_REG_RSP] = sp + 8;
        caller->known[MS_REG_RSP] = caller->known[MS_REG_RIP] = true;
        return true;
}

/* Whether the instruction just before return address ra is a call:
 * call rel32 (e8), or an indirect call through a register or memory
 * (ff /2) of 2 to 7 bytes. */
static bool after_call(struct ms_target *target, uint64_t ra)
{
        uint8_t b[8];
        if (ra < sizeof(b))
                return false;
        struct ms_error *err =
                ms_target_read(target, ra - sizeof(b), b, sizeof(b));
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        if (b[3] == 0xe8)
                return true;
        for (int len = 2; len <= 7; len++) {
                const uint8_t *insn = b + sizeof(b) - len;
                /* An optional REX prefix, then ff with reg field 2. */
                size_t k = (insn[0] & 0xf0) == 0x40 ? 1 : 0;
                /* The opcode and its ModRM byte within the len bytes. */
                if (k + 2 > (size_t)len)
                        continue;
                if (insn[k] == 0xff && ((insn[k + 1] >> 3) & 7) == 2)
                        return true;
        }
        return false;
}

/* The eval loop's rbp, saved by the trace in its frame [sp, slot) (the
 * stencils use rbp for themselves and push the caller's first; the shim,
 * at slot, does not save it): a stack address above the shim whose next
 * word is a return address into a module, right after a call, as a frame
 * pointer's is. The caller's CFA may be rbp-based (the eval loop of
 * Debian's builds is), so its frame needs it. */
static bool saved_frame_pointer(struct ms_target *target, Dwfl *dwfl,
                                uint64_t sp, uint64_t slot, uint64_t *ret)
{
        for (uint64_t a = sp; a < slot; a += 8) {
                uint64_t v, ra;
                if (!read_u64(target, a, &v))
                        return false;
                if (v < slot + 24 || v - slot > (1u << 20) || (v & 7) ||
                    !read_u64(target, v + 8, &ra) || !in_module(dwfl, ra) ||
                    !after_call(target, ra))
                        continue;
                *ret = v;
                return true;
        }
        return false;
}

/* Case 2: the shim's return address above the trace's frame. */
static bool find_shim(struct ms_target *target, Dwfl *dwfl,
                      const struct ms_cfi_regs *regs, struct ms_cfi_regs *out)
{
        uint64_t sp = regs->value[MS_REG_RSP];
        for (unsigned i = 0; i < MAX_SCAN_WORDS; i++) {
                uint64_t slot = sp + 8 * (uint64_t)i, v;
                if (!read_u64(target, slot, &v))
                        return false;
                if (v < 4096 || in_module(dwfl, v) || !after_call(target, v))
                        continue;
                struct ms_cfi_regs at = *regs;
                at.value[MS_REG_RSP] = slot + 8;
                at.value[MS_REG_RIP] = v;
                struct ms_cfi_regs after;
                if (!run_epilogue(target, v, &at, &after))
                        continue;
                uint64_t fp;
                if (saved_frame_pointer(target, dwfl, sp, slot, &fp)) {
                        at.value[MS_REG_RBP] = fp;
                        at.known[MS_REG_RBP] = true;
                }
                *out = at;
                return true;
        }
        return false;
}

/* Case 3: a frame-pointer frame. */
static bool frame_pointer(struct ms_target *target,
                          const struct ms_cfi_regs *regs,
                          struct ms_cfi_regs *out)
{
        uint64_t sp = regs->value[MS_REG_RSP], fp = regs->value[MS_REG_RBP];
        uint64_t ra, saved;
        if (!regs->known[MS_REG_RBP] || fp < sp || fp - sp > (1u << 20) ||
            (fp & 7) || !read_u64(target, fp + 8, &ra) ||
            !read_u64(target, fp, &saved) || !after_call(target, ra))
                return false;
        *out = *regs;
        out->value[MS_REG_RIP] = ra;
        out->value[MS_REG_RSP] = fp + 16;
        out->value[MS_REG_RBP] = saved;
        return true;
}

bool ms_jit_step(struct ms_target *target, Dwfl *dwfl,
                 const struct ms_cfi_regs *regs, struct ms_cfi_regs *caller)
{
        uint64_t pc = regs->value[MS_REG_RIP];
        if (!regs->known[MS_REG_RSP] || !pc || in_module(dwfl, pc))
                return false;
        if (run_epilogue(target, pc, regs, caller) ||
            find_shim(target, dwfl, regs, caller) ||
            frame_pointer(target, regs, caller))
                return caller->value[MS_REG_RSP] > regs->value[MS_REG_RSP];
        return false;
}
