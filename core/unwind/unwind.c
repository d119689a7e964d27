/*
 * Native unwinding with libdwfl's unwinder fed by the target: registers and
 * memory come through Dwfl_Thread_Callbacks, so cores, live processes and
 * debugger-fed targets take the same path. Everything read is untrusted:
 * every stack is bounded and ends with a reason when it ends early.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unwind/cfi_rules.h"
#include "unwind/internal.h"
#include "unwind/jit.h"
#include "unwind/symbolize.h"
#include "unwind/symtab.h"
#include "unwind/unwind.h"

/* Frames (pc, sp) compared for loops: catches cycles up to this long. */
#define LOOP_WINDOW 8

/* ------------------------------------------------------------------------
 * Thread callbacks
 * ------------------------------------------------------------------------ */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
        struct ms_unwinder *u = arg;
        struct ms_target *t = u->target;
        struct ms_target_thread *prev = *thread_argp;
        size_t i = prev ? (size_t)(prev - t->threads) + 1 : 0;
        for (; i < t->n_threads; i++) {
                if (t->threads[i].have_regs && t->threads[i].tid > 0) {
                        *thread_argp = &t->threads[i];
                        return t->threads[i].tid;
                }
        }
        return 0;
}

/* The thread being unwound is known: no scan through next_thread. */
static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
        struct ms_unwinder *u = arg;
        struct ms_target *t = u->target;
        if (u->resuming && u->resume.tid == tid) {
                *thread_argp = &u->resume;
                return true;
        }
        if (u->current < t->n_threads && t->threads[u->current].tid == tid) {
                *thread_argp = &t->threads[u->current];
                return true;
        }
        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i].tid == tid) {
                        *thread_argp = &t->threads[i];
                        return true;
                }
        }
        return false;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr address, Dwarf_Word *result,
                        void *arg)
{
        struct ms_unwinder *u = arg;
        struct ms_error *err =
                ms_target_read(u->target, address, result, sizeof(*result));
        if (!err)
                return true;
        ms_error_destroy(err);
        u->read_failed = true;
        u->read_fault = address;
        return false;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
        const struct ms_target_thread *t = arg;
        Dwarf_Word regs[MS_NUM_REGS];
        for (size_t i = 0; i < MS_NUM_REGS; i++)
                regs[i] = t->regs[i];
        dwfl_thread_state_register_pc(thread, regs[MS_REG_RIP]);
        return dwfl_thread_state_registers(thread, 0, MS_NUM_REGS, regs);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
        .next_thread = next_thread,
        .get_thread = get_thread,
        .memory_read = memory_read,
        .set_initial_registers = set_initial_registers,
};

/* ------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------ */

/* Give dwfl the architecture from a bare x86-64 ELF header rather than from
 * a module: threads then unwind (by frame pointers at worst) even when no
 * module could be loaded. */
static struct ms_error *attach(struct ms_unwinder *u)
{
        static const unsigned char ident[EI_NIDENT] = {
                ELFMAG0,    ELFMAG1,     ELFMAG2,    ELFMAG3,
                ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE,
        };
        Elf64_Ehdr *ehdr = calloc(1, sizeof(*ehdr));
        if (!ehdr)
                return &ms_error_no_memory;
        memcpy(ehdr->e_ident, ident, sizeof(ident));
        ehdr->e_type = ET_CORE;
        ehdr->e_machine = EM_X86_64;
        ehdr->e_version = EV_CURRENT;
        ehdr->e_ehsize = sizeof(*ehdr);
        u->arch_image = ehdr;
        u->arch_elf = elf_memory((char *)ehdr, sizeof(*ehdr));
        if (!u->arch_elf)
                return ms_error_create(MS_ERROR_LIBRARY, "elf_memory: %s",
                                       elf_errmsg(-1));
        pid_t pid = u->target->pid > 0 ? u->target->pid : 1;
        if (!dwfl_attach_state(u->dwfl, u->arch_elf, pid, &thread_callbacks, u))
                return ms_error_create(MS_ERROR_LIBRARY,
                                       "dwfl_attach_state: %s",
                                       dwfl_errmsg(-1));
        return NULL;
}

struct ms_error *ms_unwinder_create(struct ms_target *target,
                                    struct ms_unwinder **ret)
{
        if (!target || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_unwinder_create: no target");
        elf_version(EV_CURRENT);
        struct ms_unwinder *u = calloc(1, sizeof(*u));
        if (!u)
                return &ms_error_no_memory;
        u->target = target;
        u->separate_dwarf = true;
        u->cache = ms_symbol_cache_create();
        u->names_cache = ms_symbol_cache_create();
        u->symtabs = ms_symtabs_create();
        u->cfi = ms_cfi_cache_create();
        ms_u64_table_init(&u->jit_pcs, sizeof(struct ms_u64_entry));
        struct ms_error *err =
                u->cache && u->names_cache && u->symtabs && u->cfi
                        ? NULL
                        : &ms_error_no_memory;
        if (!err)
                err = ms_unwinder_report_modules(u);
        if (!err)
                err = attach(u);
        if (err) {
                ms_unwinder_destroy(u);
                return err;
        }
        *ret = u;
        return NULL;
}

void ms_unwinder_destroy(struct ms_unwinder *u)
{
        if (!u)
                return;
        /* dwfl holds the arch Elf until its end. */
        if (u->dwfl)
                dwfl_end(u->dwfl);
        if (u->arch_elf)
                elf_end(u->arch_elf);
        free(u->arch_image);
        ms_symbol_cache_destroy(u->cache);
        ms_symbol_cache_destroy(u->names_cache);
        ms_symtabs_destroy(u->symtabs);
        ms_cfi_cache_destroy(u->cfi);
        ms_u64_table_deinit(&u->jit_pcs);
        free(u->debuginfo_path);
        free(u);
}

void ms_unwinder_set_separate_debuginfo(struct ms_unwinder *u, bool use)
{
        u->separate_dwarf = use;
}

void ms_unwinder_set_names_only(struct ms_unwinder *u, bool on)
{
        u->names_only = on;
}

void ms_unwinder_set_cfi_cache(struct ms_unwinder *u, bool on)
{
        if (on && !u->cfi)
                u->cfi = ms_cfi_cache_create();
        if (!on) {
                ms_cfi_cache_destroy(u->cfi);
                u->cfi = NULL;
        }
}

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------ */

void ms_native_stack_deinit(struct ms_native_stack *stack)
{
        for (size_t i = 0; !stack->borrowed && i < stack->n_frames; i++)
                ms_frame_deinit(&stack->frames[i]);
        free(stack->frames);
        free(stack->error);
        stack->frames = NULL;
        stack->n_frames = 0;
        stack->error = NULL;
        stack->borrowed = false;
}

struct walk {
        struct ms_unwinder *u;
        struct ms_native_stack *stack;
        size_t capacity;
        unsigned max_frames;
        /* Out of memory: the one failure that is returned. */
        struct ms_error *err;
        /* (pc, sp) of the last physical frames, for loop detection. */
        uint64_t recent_pc[LOOP_WINDOW];
        uint64_t recent_sp[LOOP_WINDOW];
        bool recent_have_sp[LOOP_WINDOW];
        unsigned n_physical;
        /* The last physical frame, to say where unwinding stopped. */
        uint64_t last_pc;
        bool last_in_module;
        /* libdwfl walks: the registers of the last frame, and whether the
         * walk starts again past JIT code (its first frame is then a
         * caller, not an activation). */
        struct ms_cfi_regs last_regs;
        bool resumed;
};

static void walk_error(struct walk *w, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Record why the stack ends early (the first reason wins). */
static void walk_error(struct walk *w, const char *fmt, ...)
{
        if (w->stack->error)
                return;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&w->stack->error, fmt, ap) < 0)
                w->stack->error = NULL;
        va_end(ap);
}

/* Fill f from level, with strings copied or, for a borrowed stack, the
 * symbol cache's own (one walk copied millions of strings otherwise). */
static bool copy_level(struct ms_frame *f, const struct ms_sym_level *level,
                       bool borrow)
{
        bool ok = true;
        f->language = level->language;
        f->inlined = level->inlined;
        f->line = level->line;
        f->column = level->column;
        if (borrow) {
                f->module = level->module;
                f->raw_symbol = level->raw_symbol;
                f->function = level->function;
                f->file = level->file;
                return true;
        }
        f->module = ms_strdup_or_null(level->module, &ok);
        f->raw_symbol = ms_strdup_or_null(level->raw_symbol, &ok);
        f->function = ms_strdup_or_null(level->function, &ok);
        f->file = ms_strdup_or_null(level->file, &ok);
        return ok;
}

/* The load bias of the module holding pc (0 when none). */
static uint64_t module_bias(struct ms_unwinder *u, uint64_t pc)
{
        Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, pc);
        Dwarf_Addr bias = 0;
        if (mod && !dwfl_module_getelf(mod, &bias))
                bias = 0;
        return bias;
}

/* Name a frame of JIT-compiled code by its pseudo module. */
static bool name_jit(struct ms_frame *f, bool borrowed)
{
        /* A borrowed stack's strings are never freed. */
        f->module = borrowed ? (char *)MS_JIT_MODULE : strdup(MS_JIT_MODULE);
        return f->module != NULL;
}

/* Append the frames (inlined ones first) of one physical frame. */
static int add_frames(struct walk *w, uint64_t pc, bool activation, uint64_t sp)
{
        struct ms_unwinder *u = w->u;
        /* A return address points after the call, which may be past the end
         * of a noreturn caller: look up the call instruction instead. */
        uint64_t lookup = activation || pc == 0 ? pc : pc - 1;
        enum ms_dwarf_use use = u->names_only       ? MS_DWARF_NONE
                                : u->separate_dwarf ? MS_DWARF_ALL
                                                    : MS_DWARF_EMBEDDED;
        const struct ms_symbolized *s;
        w->err = ms_symbolize(u->names_only ? u->names_cache : u->cache,
                              u->symtabs, u->dwfl, lookup, use, &s);
        if (w->err)
                return DWARF_CB_ABORT;
        w->last_pc = pc;
        w->last_in_module = s->levels[s->n_levels - 1].module != NULL;
        struct ms_native_stack *stack = w->stack;
        for (size_t i = 0; i < s->n_levels; i++) {
                if (stack->n_frames >= w->max_frames) {
                        walk_error(w, "stopped after %u frames", w->max_frames);
                        return DWARF_CB_ABORT;
                }
                if (!ms_grow((void **)&stack->frames, &w->capacity,
                             stack->n_frames, sizeof(*stack->frames))) {
                        w->err = &ms_error_no_memory;
                        return DWARF_CB_ABORT;
                }
                const struct ms_sym_level *level = &s->levels[i];
                struct ms_frame *f = &stack->frames[stack->n_frames];
                memset(f, 0, sizeof(*f));
                f->kind = MS_FRAME_NATIVE;
                f->pc = pc;
                f->sp = sp;
                f->is_activation = activation;
                f->native_index = (int)stack->n_frames;
                if (level->has_symbol)
                        f->offset = pc - level->symbol_address;
                else if (level->module)
                        f->offset = pc - module_bias(u, pc);
                stack->n_frames++;
                if (!copy_level(f, level, stack->borrowed) ||
                    (!f->module && ms_u64_table_find(&u->jit_pcs, pc) &&
                     !name_jit(f, stack->borrowed))) {
                        w->err = &ms_error_no_memory;
                        return DWARF_CB_ABORT;
                }
        }
        return DWARF_CB_OK;
}

/* The frame just added runs JIT-compiled code: remember its pc (for
 * ms_unwinder_add_debuginfo) and name its module so. */
static bool mark_jit(struct walk *w, uint64_t pc)
{
        struct ms_native_stack *stack = w->stack;
        if (!ms_u64_table_insert(&w->u->jit_pcs, pc))
                return false;
        struct ms_frame *f = &stack->frames[stack->n_frames - 1];
        return f->module || name_jit(f, stack->borrowed);
}

/* True when (pc, sp) repeats a recent frame: the unwinder would go round
 * forever. Only exact repeats count, sp included, so recursion is fine. */
static bool walk_loops(struct walk *w, uint64_t pc, bool have_sp, uint64_t sp)
{
        unsigned n = MS_MIN(w->n_physical, LOOP_WINDOW);
        for (unsigned i = 0; i < n; i++) {
                if (w->recent_pc[i] == pc && w->recent_have_sp[i] == have_sp &&
                    (!have_sp || w->recent_sp[i] == sp))
                        return true;
        }
        unsigned slot = w->n_physical % LOOP_WINDOW;
        w->recent_pc[slot] = pc;
        w->recent_sp[slot] = sp;
        w->recent_have_sp[slot] = have_sp;
        w->n_physical++;
        return false;
}

/* One physical frame found: bound the walk and add its frames. */
static int visit(struct walk *w, uint64_t pc, bool activation, bool have_sp,
                 uint64_t sp)
{
        /* A zero return address ends some stacks (threads of runtimes
         * without CFI for their entry): the end, not an error. */
        if (pc == 0 && w->n_physical > 0)
                return DWARF_CB_ABORT;
        if (walk_loops(w, pc, have_sp, sp)) {
                walk_error(w, "unwinding loops at 0x%" PRIx64, pc);
                return DWARF_CB_ABORT;
        }
        if (w->stack->n_frames >= w->max_frames) {
                walk_error(w, "stopped after %u frames", w->max_frames);
                return DWARF_CB_ABORT;
        }
        return add_frames(w, pc, activation, have_sp ? sp : 0);
}

static int frame_callback(Dwfl_Frame *state, void *arg)
{
        struct walk *w = arg;
        Dwarf_Addr pc;
        bool activation;
        if (!dwfl_frame_pc(state, &pc, &activation)) {
                walk_error(w, "cannot get the program counter: %s",
                           dwfl_errmsg(-1));
                return DWARF_CB_ABORT;
        }
        Dwarf_Word sp = 0;
        bool have_sp = dwfl_frame_reg(state, MS_REG_RSP, &sp) == 0;
        for (int i = 0; i < MS_CFI_NUM_REGS; i++) {
                Dwarf_Word v = 0;
                w->last_regs.known[i] =
                        i == MS_REG_RIP ? true
                                        : dwfl_frame_reg(state, i, &v) == 0;
                w->last_regs.value[i] = i == MS_REG_RIP ? pc : v;
        }
        if (w->resumed && w->n_physical == 0)
                activation = false;
        return visit(w, pc, activation, have_sp, sp);
}

/* Unwind with the cached CFI rules. Returns false as soon as a frame needs
 * libdwfl: the walk is then made again by libdwfl, from the start, so that
 * both ways give one answer. */
static bool walk_with_rules(struct walk *w, const struct ms_target_thread *t)
{
        struct ms_unwinder *u = w->u;
        struct ms_cfi_regs regs, caller;
        for (size_t i = 0; i < MS_CFI_NUM_REGS; i++) {
                regs.value[i] = t->regs[i];
                regs.known[i] = true;
        }
        for (bool activation = true;; activation = false) {
                uint64_t pc = regs.value[MS_REG_RIP];
                if (visit(w, pc, activation, regs.known[MS_REG_RSP],
                          regs.value[MS_REG_RSP]) != DWARF_CB_OK)
                        return true;
                uint64_t lookup = activation ? pc : pc - 1;
                switch (ms_cfi_step(u->cfi, u->dwfl, u->target, lookup, &regs,
                                    &caller)) {
                case MS_CFI_STEP_CALLER:
                        regs = caller;
                        break;
                case MS_CFI_STEP_END:
                        return true;
                case MS_CFI_STEP_NO_MEMORY:
                        w->err = &ms_error_no_memory;
                        return true;
                case MS_CFI_STEP_UNSUPPORTED:
                        /* No CFI: JIT-compiled code, or libdwfl's turn. */
                        if (!ms_jit_step(u->target, u->dwfl, &regs, &caller))
                                return false;
                        if (!mark_jit(w, pc)) {
                                w->err = &ms_error_no_memory;
                                return true;
                        }
                        regs = caller;
                        break;
                }
        }
}

/* Why dwfl stopped, when it says it failed. */
static void walk_failed(struct walk *w, int dwfl_err)
{
        if (w->u->read_failed) {
                walk_error(w, "cannot read memory at 0x%" PRIx64,
                           w->u->read_fault);
        } else if (w->n_physical && !w->last_in_module) {
                /* dwfl would say "No DWARF information found". */
                walk_error(w, "no module holds pc 0x%" PRIx64, w->last_pc);
        } else if (dwfl_err) {
                walk_error(w, "%s", dwfl_errmsg(dwfl_err));
        } else {
                walk_error(w, "unwinding failed");
        }
}

/* Bytes at a thread's stack pointer looked at to tell a stack the core
 * lacks: a stack in use holds return addresses and saved registers there,
 * never only zeros. */
#define STACK_PROBE_BYTES 256
/* Stacks with more frames than this are there, whatever their memory. */
#define STACK_MISSING_MAX_FRAMES 2

/* Does the core lack thread t's stack: the memory at its stack pointer is
 * zeros or not in the core? gdb 13's gcore of a process on Debian
 * unstable's glibc (2.43) writes zeros for every thread stack but the main
 * thread's (the guard page now lies inside the stack mapping, and gcore
 * gives up on the mapping at the first page it cannot read). */
static bool core_lacks_stack(struct ms_unwinder *u,
                             const struct ms_target_thread *t,
                             const struct ms_native_stack *stack)
{
        if (u->target->kind != MS_TARGET_CORE ||
            stack->n_frames > STACK_MISSING_MAX_FRAMES)
                return false;
        uint8_t buf[STACK_PROBE_BYTES];
        struct ms_error *err = ms_target_read(u->target, t->regs[MS_REG_RSP],
                                              buf, sizeof(buf));
        if (err) {
                ms_error_destroy(err);
                return true;
        }
        for (size_t i = 0; i < sizeof(buf); i++) {
                if (buf[i])
                        return false;
        }
        return true;
}

/* Say so for a thread whose stack the core lacks, in place of the reason
 * the walk gave (which would blame the few frames it found). */
static void check_stack_present(struct walk *w,
                                const struct ms_target_thread *t)
{
        if (!core_lacks_stack(w->u, t, w->stack))
                return;
        free(w->stack->error);
        w->stack->error = NULL;
        walk_error(w,
                   "the core lacks this thread's stack (only zeros at sp "
                   "0x%" PRIx64 "): what wrote the core could not read it, "
                   "as gdb 13's gcore cannot on a newer glibc",
                   t->regs[MS_REG_RSP]);
}

struct ms_error *ms_unwind_thread(struct ms_unwinder *u, size_t index,
                                  unsigned max_frames,
                                  struct ms_native_stack *stack)
{
        memset(stack, 0, sizeof(*stack));
        if (index >= u->target->n_threads)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no thread number %zu", index);
        const struct ms_target_thread *t = &u->target->threads[index];
        struct walk w = {
                .u = u,
                .stack = stack,
                .max_frames = max_frames ? max_frames : 1,
        };
        if (!t->have_regs) {
                walk_error(&w, "no registers for thread %d", (int)t->tid);
                return NULL;
        }
        stack->borrowed = u->names_only;
        if (u->cfi && walk_with_rules(&w, t)) {
                if (w.err)
                        ms_native_stack_deinit(stack);
                else if (!stack->n_frames)
                        walk_error(&w, "no frames");
                else
                        check_stack_present(&w, t);
                return w.err;
        }
        /* Again with libdwfl. */
        ms_native_stack_deinit(stack);
        stack->borrowed = u->names_only;
        w = (struct walk){
                .u = u,
                .stack = stack,
                .max_frames = max_frames ? max_frames : 1,
        };
        u->current = index;
        u->read_failed = false;
        dwfl_errno(); /* forget errors of earlier calls */
        int r = dwfl_getthread_frames(u->dwfl, t->tid, frame_callback, &w);
        int dwfl_err = dwfl_errno();
        /* Stopped in JIT-compiled code: step over it and walk on from its
         * caller, as many times as the frame limit allows. */
        struct ms_cfi_regs caller;
        while (r == -1 && !w.err && w.n_physical && !w.last_in_module &&
               stack->n_frames < w.max_frames &&
               ms_jit_step(u->target, u->dwfl, &w.last_regs, &caller)) {
                if (!mark_jit(&w, w.last_pc)) {
                        w.err = &ms_error_no_memory;
                        break;
                }
                u->resume = *t;
                for (int i = 0; i < MS_CFI_NUM_REGS; i++)
                        u->resume.regs[i] =
                                caller.known[i] ? caller.value[i] : 0;
                u->resuming = true;
                w.resumed = true;
                unsigned n_before = w.n_physical;
                size_t frames_before = stack->n_frames;
                w.n_physical = 0;
                u->read_failed = false;
                r = dwfl_getthread_frames(u->dwfl, t->tid, frame_callback, &w);
                dwfl_err = dwfl_errno();
                u->resuming = false;
                w.n_physical += n_before;
                /* Nothing added: the same step would come again. */
                if (stack->n_frames == frames_before)
                        break;
        }
        if (w.err) {
                ms_native_stack_deinit(stack);
                return w.err;
        }
        if (r == -1)
                walk_failed(&w, dwfl_err);
        if (!stack->n_frames)
                walk_error(&w, "no frames");
        else
                check_stack_present(&w, t);
        return NULL;
}

struct ms_error *ms_unwinder_add_debuginfo(struct ms_unwinder *u,
                                           struct ms_native_stack *stack,
                                           unsigned max_frames)
{
        /* Symbolized with DWARF already. */
        if (!stack->borrowed)
                return NULL;
        struct ms_native_stack full = {0};
        struct walk w = {
                .u = u,
                .stack = &full,
                .max_frames = max_frames ? max_frames : 1,
        };
        bool names_only = u->names_only;
        u->names_only = false;
        for (size_t i = 0; i < stack->n_frames; i++) {
                const struct ms_frame *f = &stack->frames[i];
                /* Already expanded frames are not expanded twice. */
                if (f->inlined)
                        continue;
                if (add_frames(&w, f->pc, f->is_activation, f->sp) !=
                    DWARF_CB_OK)
                        break;
        }
        u->names_only = names_only;
        if (w.err) {
                ms_native_stack_deinit(&full);
                return w.err;
        }
        /* Why unwinding stopped early, unless the frames added ran out
         * of room first. */
        if (!full.error) {
                full.error = stack->error;
                stack->error = NULL;
        }
        ms_native_stack_deinit(stack);
        *stack = full;
        return NULL;
}

/* ------------------------------------------------------------------------
 * Symbol lookup
 * ------------------------------------------------------------------------ */

struct find_symbol {
        const char *suffix;
        const char *name;
        uint64_t address;
        uint64_t size;
        bool found;
};

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int find_symbol_in_module(Dwfl_Module *mod, void **userdata,
                                 const char *name, Dwarf_Addr start, void *arg)
{
        struct find_symbol *f = arg;
        if (f->suffix && (!name || !ends_with(name, f->suffix)))
                return DWARF_CB_OK;
        /* Both .symtab (with LOCAL symbols such as Rust's panic counters)
         * and .dynsym are in dwfl's table. */
        int n = dwfl_module_getsymtab(mod);
        for (int i = 1; i < n; i++) {
                GElf_Sym sym;
                GElf_Addr address;
                GElf_Word shndx;
                const char *s = dwfl_module_getsym_info(mod, i, &sym, &address,
                                                        &shndx, NULL, NULL);
                if (!s || shndx == SHN_UNDEF || strcmp(s, f->name) != 0)
                        continue;
                f->address = address;
                f->size = sym.st_size;
                f->found = true;
                return DWARF_CB_ABORT;
        }
        return DWARF_CB_OK;
}

struct ms_error *ms_unwinder_find_symbol(struct ms_unwinder *u,
                                         const char *module_suffix,
                                         const char *name, uint64_t *address,
                                         uint64_t *size)
{
        if (!name)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_unwinder_find_symbol: no name");
        struct find_symbol f = {.suffix = module_suffix, .name = name};
        dwfl_getmodules(u->dwfl, find_symbol_in_module, &f, 0);
        if (!f.found)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "symbol %s not found%s%s", name,
                                       module_suffix ? " in " : "",
                                       module_suffix ? module_suffix : "");
        if (address)
                *address = f.address;
        if (size)
                *size = f.size;
        return NULL;
}
