/*
 * Helpers shared by the target backends (core_file.c, live.c, debugger.c)
 * and target.c. Not used outside core/target/.
 */
#ifndef MIXSTACK_TARGET_BACKEND_H
#define MIXSTACK_TARGET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "target/target.h"

/* Number of words in the x86-64 struct user_regs_struct, which is both the
 * pr_reg of NT_PRSTATUS and what PTRACE_GETREGS returns. */
#define MS_USER_REGS_WORDS 27

/* Convert struct user_regs_struct words to DWARF order; *fs_base gets the
 * thread pointer. */
void ms_regs_from_user_regs(const uint64_t user[MS_USER_REGS_WORDS],
                            uint64_t regs[MS_NUM_REGS], uint64_t *fs_base);

/* Serve reads of target from a cache of whole pages read from the
 * backend (unwinders read stacks 8 bytes at a time: one system call each
 * for a live process). Only for backends whose memory cannot change while
 * the target lives, such as a stopped process. At most a bounded number of
 * pages is kept (memory stays proportional to what is read); past that,
 * reads go straight to the backend. Pages cached by an earlier call are
 * forgotten. Returns false when out of memory (the target then works
 * uncached). */
bool ms_target_cache_pages(struct ms_target *target);

/* One ELF note, pointing into the buffer it was parsed from. */
struct ms_note {
        const char *name; /* namesz bytes, normally NUL-terminated */
        uint32_t namesz;
        uint32_t type;
        const uint8_t *desc;
        size_t descsz;
};

/*
 * Parse the note at *offset of buf (size bytes, notes padded to align, 4 or
 * 8) and advance *offset. Returns false at the end of the buffer, or when
 * the note does not fit in it; *malformed is set in the latter case.
 */
bool ms_note_next(const uint8_t *buf, size_t size, size_t align, size_t *offset,
                  struct ms_note *note, bool *malformed);

/* Whether a note's name is name (namesz with or without the NUL). */
bool ms_note_is(const struct ms_note *note, const char *name);

/*
 * Find the GNU build-id among the program headers of an ELF image held in
 * memory (a mapped host file): image/size is the whole file. Copies at
 * most *len bytes into buf and sets *len. Returns false when there is
 * none.
 */
bool ms_elf_file_build_id(const uint8_t *image, size_t size, uint8_t *buf,
                          size_t *len);

/* The mmap'd contents of the host file of path (a path as the target names
 * it), resolved and mapped on first use and cached by the target. NULL when
 * there is no such file here or it cannot be mapped. */
const uint8_t *ms_target_map_file(struct ms_target *target, const char *path,
                                  size_t *size);

/* Insert a mapping at its sorted place and resolve its host file at once,
 * so that the target stays usable after each call (debugger targets). */
struct ms_error *ms_target_insert_mapping(struct ms_target *target,
                                          const char *path, uint64_t start,
                                          uint64_t end, uint64_t file_offset);

/* Set target->executable (copied) and, unless the options gave one,
 * target->host_executable from the host files. */
struct ms_error *ms_target_set_executable(struct ms_target *target,
                                          const char *path);

/* Whether signo is a signal whose default action dumps core (the only
 * signals a kernel-written core can carry). */
bool ms_signal_dumps_core(int signo);

/* How long a live target kept its process stopped, from the first
 * PTRACE_INTERRUPT to the last PTRACE_DETACH, in nanoseconds (for tests and
 * measurements). */
uint64_t ms_live_last_stop_ns(const struct ms_target *target);

/* ms_target_detach_now() of a live target (async-signal-safe). */
void ms_live_detach_now(struct ms_target *target);

#endif /* MIXSTACK_TARGET_BACKEND_H */
