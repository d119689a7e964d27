#include <dwarf.h>
#include <stdlib.h>
#include <string.h>

#include "base/u64_table.h"
#include "base/util.h"
#include "unwind/cfi_rules.h"

enum rule_kind {
        RULE_SAME,      /* the caller's value is this frame's */
        RULE_UNDEFINED, /* lost (call-clobbered) */
        RULE_SAVED,     /* at CFA + offset */
        RULE_VALUE,     /* is CFA + offset */
};

struct rule {
        enum rule_kind kind;
        int64_t offset;
};

/* The rules at one lookup address; simple is false when they are not all
 * of the kinds above. */
struct rules {
        struct ms_u64_entry entry; /* key: the lookup address */
        bool simple;
        int cfa_reg;
        int64_t cfa_offset;
        int ra_reg;
        struct rule regs[MS_CFI_NUM_REGS];
};

struct ms_cfi_cache {
        struct ms_u64_table rules;
};

struct ms_cfi_cache *ms_cfi_cache_create(void)
{
        struct ms_cfi_cache *cache = malloc(sizeof(*cache));
        if (cache)
                ms_u64_table_init(&cache->rules, sizeof(struct rules));
        return cache;
}

void ms_cfi_cache_destroy(struct ms_cfi_cache *cache)
{
        if (!cache)
                return;
        ms_u64_table_deinit(&cache->rules);
        free(cache);
}

/* The rule libdw describes by ops (see dwarf_frame_register in libdw.h):
 * false when it is none of the simple kinds. */
static bool parse_rule(const Dwarf_Op *ops, const Dwarf_Op *mem, size_t n,
                       struct rule *rule)
{
        if (n == 0) {
                rule->kind = ops == mem ? RULE_UNDEFINED : RULE_SAME;
                return true;
        }
        if (ops[0].atom != DW_OP_call_frame_cfa)
                return false;
        size_t i = 1;
        rule->offset = 0;
        if (i < n && ops[i].atom == DW_OP_plus_uconst)
                rule->offset = (int64_t)ops[i++].number;
        rule->kind = RULE_SAVED;
        if (i < n && ops[i].atom == DW_OP_stack_value) {
                rule->kind = RULE_VALUE;
                i++;
        }
        return i == n;
}

/* Take the rules at lookup from the CFI of its module. */
static void compute(Dwfl *dwfl, uint64_t lookup, struct rules *r)
{
        r->simple = false;
        Dwfl_Module *mod = dwfl_addrmodule(dwfl, lookup);
        Dwarf_Addr bias;
        Dwarf_CFI *cfi = mod ? dwfl_module_eh_cfi(mod, &bias) : NULL;
        Dwarf_Frame *frame;
        if (!cfi || dwarf_cfi_addrframe(cfi, lookup - bias, &frame) != 0)
                return;
        Dwarf_Addr start, end;
        bool signal;
        Dwarf_Op *ops;
        size_t n;
        r->ra_reg = dwarf_frame_info(frame, &start, &end, &signal);
        bool ok = !signal && r->ra_reg >= 0 && r->ra_reg < MS_CFI_NUM_REGS &&
                  dwarf_frame_cfa(frame, &ops, &n) == 0 && n == 1 &&
                  ops[0].atom == DW_OP_bregx && ops[0].number < MS_CFI_NUM_REGS;
        if (ok) {
                r->cfa_reg = (int)ops[0].number;
                r->cfa_offset = (int64_t)ops[0].number2;
        }
        for (int reg = 0; ok && reg < MS_CFI_NUM_REGS; reg++) {
                Dwarf_Op mem[3];
                ok = dwarf_frame_register(frame, reg, mem, &ops, &n) == 0 &&
                     parse_rule(ops, mem, n, &r->regs[reg]);
        }
        free(frame);
        r->simple = ok;
}

static const struct rules *rules_at(struct ms_cfi_cache *cache, Dwfl *dwfl,
                                    uint64_t lookup)
{
        struct rules *r = ms_u64_table_find(&cache->rules, lookup);
        if (r)
                return r;
        r = ms_u64_table_insert(&cache->rules, lookup);
        if (r)
                compute(dwfl, lookup, r);
        return r;
}

enum ms_cfi_step ms_cfi_step(struct ms_cfi_cache *cache, Dwfl *dwfl,
                             struct ms_target *target, uint64_t lookup,
                             const struct ms_cfi_regs *regs,
                             struct ms_cfi_regs *caller)
{
        const struct rules *r = rules_at(cache, dwfl, lookup);
        if (!r)
                return MS_CFI_STEP_NO_MEMORY;
        if (!r->simple || !regs->known[r->cfa_reg])
                return MS_CFI_STEP_UNSUPPORTED;
        uint64_t cfa = regs->value[r->cfa_reg] + (uint64_t)r->cfa_offset;
        for (int reg = 0; reg < MS_CFI_NUM_REGS; reg++) {
                const struct rule *rule = &r->regs[reg];
                uint64_t at = cfa + (uint64_t)rule->offset;
                caller->known[reg] = true;
                switch (rule->kind) {
                case RULE_SAME:
                        caller->value[reg] = regs->value[reg];
                        caller->known[reg] = regs->known[reg];
                        break;
                case RULE_UNDEFINED:
                        caller->value[reg] = 0;
                        caller->known[reg] = false;
                        break;
                case RULE_VALUE:
                        caller->value[reg] = at;
                        break;
                case RULE_SAVED: {
                        struct ms_error *err = ms_target_read_u64(
                                target, at, &caller->value[reg]);
                        if (err) {
                                ms_error_destroy(err);
                                return MS_CFI_STEP_UNSUPPORTED;
                        }
                        break;
                }
                }
        }
        if (!caller->known[r->ra_reg])
                return MS_CFI_STEP_END;
        caller->value[MS_REG_RIP] = caller->value[r->ra_reg];
        caller->known[MS_REG_RIP] = true;
        return MS_CFI_STEP_CALLER;
}
