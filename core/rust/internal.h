/* Shared between the files of core/rust/ and their unit tests. */
#ifndef MIXSTACK_RUST_INTERNAL_H
#define MIXSTACK_RUST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rust/rust.h"

/* ------------------------------------------------------------------------
 * modules.c: Rust modules and their symbols, read from the files.
 * ------------------------------------------------------------------------ */

/* What one ELF file on this machine says, independent of where it is
 * loaded. Addresses are link-time (st_value). */
struct ms_rust_elf_info {
        bool is_elf;
        bool is_rust;
        bool have_symtab;
        char *rustc_version;
        bool have_global;
        uint64_t global_value;
        bool have_local;
        uint64_t local_value;
        uint64_t local_size;
        bool have_local_hook;
        uint64_t local_hook_value;
        bool have_canary;
        uint64_t canary_value;
        bool have_cleanup;
        uint64_t cleanup_value;
};

/* Read path's program headers, .comment and symbol tables. A file that
 * is not ELF gives info->is_elf false and no error. */
struct ms_error *ms_rust_elf_read(const char *path,
                                  struct ms_rust_elf_info *info);
void ms_rust_elf_info_deinit(struct ms_rust_elf_info *info);

/* Look up names (exact symbol names, versions excluded) in path's
 * .dynsym and .symtab: values[i] (st_value) and found[i] for each. */
struct ms_error *ms_rust_elf_lookup(const char *path, const char *const *names,
                                    size_t n, uint64_t *values, bool *found);
/* Fill state->modules from the target's mappings and read their global
 * counts. */
struct ms_error *ms_rust_modules_read(struct ms_target *target,
                                      struct ms_rust_state *state);

/* The module whose file is mapped at address, or NULL. */
const struct ms_rust_module *ms_rust_module_at(
        const struct ms_rust_state *state, const struct ms_target *target,
        uint64_t address);

/* ------------------------------------------------------------------------
 * tls.c: LOCAL_PANIC_COUNT through glibc's link_map and the DTV.
 * ------------------------------------------------------------------------ */

/* Set state->tls and modules[i].tls_modid for the modules with a
 * LOCAL_PANIC_COUNT, from the dynamic linker's link_map list (glibc's
 * _r_debug and libthread_db descriptors). Leaves them NULL / 0 where it
 * cannot; fails only when out of memory. */
struct ms_error *ms_rust_tls_resolve(struct ms_target *target,
                                     struct ms_rust_state *state);

/* Read module's LOCAL_PANIC_COUNT for thread. MS_ERROR_NOT_FOUND when it
 * cannot be located. */
struct ms_error *ms_rust_local_count(struct ms_target *target,
                                     const struct ms_rust_state *state,
                                     const struct ms_rust_module *module,
                                     const struct ms_target_thread *thread,
                                     uint64_t *count, bool *in_hook);

/* ------------------------------------------------------------------------
 * frames.c: what a thread's frames say.
 * ------------------------------------------------------------------------ */

/* Whether function (a demangled name) has component as one of its path
 * components: "__rustc::rust_panic" has "rust_panic", "panic_with_hook<T>"
 * has "panic_with_hook". */
bool ms_rust_name_has(const char *function, const char *component);

/* ------------------------------------------------------------------------
 * text.c: validated strings and structures from target memory.
 * ------------------------------------------------------------------------ */

/* Whether buf[0..len) is valid UTF-8 without control characters other
 * than \n and \t. */
bool ms_rust_text_ok(const uint8_t *buf, size_t len);

/* Read a UTF-8 text of len bytes at address (len at most max), NUL
 * terminated and malloc'd. MS_ERROR_BAD_INPUT when it is not text. */
struct ms_error *ms_rust_read_text(struct ms_target *target, uint64_t address,
                                   uint64_t len, size_t max, char **ret);

/* A core::panic::Location read and validated at address: file a
 * readable UTF-8 text ending in ".rs", 0 < line < 10^7, 0 < col < 10^5. */
struct ms_rust_location {
        char *file;
        uint32_t line;
        uint32_t column;
        /* The file name is followed by a NUL (Rust >= ~1.89). */
        bool nul_terminated;
};
bool ms_rust_read_location(struct ms_target *target, uint64_t address,
                           struct ms_rust_location *ret);
void ms_rust_location_deinit(struct ms_rust_location *loc);

/* Whether a location is inside Rust's own library (core, std, alloc):
 * those of "panic in a function that cannot unwind" and friends. */
bool ms_rust_is_library_file(const char *file);

/* Whether message is one core itself produces when it aborts (not the
 * user's). */
bool ms_rust_is_runtime_message(const char *message);

/* Decode a String {cap, ptr, len} or &str {ptr, len} at address: words
 * holds the words already read there (n_words of them, 2 or 3). */
bool ms_rust_decode_string(struct ms_target *target, const uint64_t *words,
                           size_t n_words, bool string, char **ret);
/* The text of a String whose fields are known: cap >= len, ptr readable. */
bool ms_rust_decode_vec(struct ms_target *target, uint64_t cap, uint64_t ptr,
                        uint64_t len, char **ret);

/* The default hook's line, parsed: "thread '<name>' [(<tid>) ]panicked at
 * <file>:<line>:<col>:\n<msg>" (1.73+) or "thread '<name>' panicked at
 * '<msg>', <file>:<line>:<col>" (up to 1.72). text holds len bytes and
 * need not be NUL terminated. */
struct ms_rust_hook_text {
        char *thread_name;
        char *message;
        char *file;
        uint32_t line;
        uint32_t column;
};
bool ms_rust_parse_hook_text(const char *text, size_t len,
                             struct ms_rust_hook_text *ret);
void ms_rust_hook_text_deinit(struct ms_rust_hook_text *h);

/* ------------------------------------------------------------------------
 * scan.c: the stack scans.
 * ------------------------------------------------------------------------ */

/* The stack pointer a scan starts from: the interrupted context's when the
 * thread runs a signal handler (faulthandler's sigaltstack), else the
 * thread's. */
uint64_t ms_rust_scan_start(struct ms_target *target,
                            const struct ms_target_thread *thread,
                            const struct ms_frame *frames, size_t n);

/* Fill the recovered fields of out that are still NULL from the stack
 * above (and, for the hook text, below) sp: the hook text first, then the
 * validated Location and a payload near it. A Location in out->site_module
 * is preferred. */
struct ms_error *ms_rust_scan_stack(struct ms_target *target,
                                    const struct ms_rust_state *state,
                                    uint64_t sp, struct ms_rust_thread *out);

/* found[i] = some 8-aligned word of the stack window above sp equals
 * values[i]. */
struct ms_error *ms_rust_stack_refers(struct ms_target *target, uint64_t sp,
                                      const uint64_t *values, size_t n,
                                      bool *found);

/* ------------------------------------------------------------------------
 * exception.c: live exception objects in writable memory.
 * ------------------------------------------------------------------------ */

struct ms_rust_region {
        uint64_t start;
        uint64_t end;
};

/* The writable memory of target (core PT_LOAD segments with PF_W,
 * /proc/PID/maps "w" entries). MS_ERROR_UNSUPPORTED for targets that have
 * no such list (debugger-fed). */
struct ms_error *ms_rust_writable_regions(struct ms_target *target,
                                          struct ms_rust_region **ret,
                                          size_t *n);

/* Search regions (at most budget bytes) for exception objects whose
 * canary belongs to a module of state; append them to
 * state->exceptions. */
struct ms_error *ms_rust_find_exceptions(struct ms_target *target,
                                         struct ms_rust_state *state,
                                         const struct ms_rust_region *regions,
                                         size_t n_regions, uint64_t budget);

/* Validate and decode one exception object at address. */
bool ms_rust_decode_exception(struct ms_target *target,
                              const struct ms_rust_state *state,
                              uint64_t address, struct ms_rust_exception *ret);

#endif /* MIXSTACK_RUST_INTERNAL_H */
