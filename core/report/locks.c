/*
 * Who owns the lock a thread is blocked on, when the lock says: a glibc
 * pthread mutex records its owner's tid. A thread blocked in
 * pthread_mutex_lock sleeps in the futex system call on the mutex's lock
 * word, and the system call's first argument (rdi, kept in the saved user
 * registers) is that word's address; the owner is the int 8 bytes on
 * (struct __pthread_mutex_s: __lock, __count, __owner; the same in every
 * x86-64 glibc). The answer is believed only when it names a thread of
 * the target.
 */
#include <string.h>

#include "report/boundary.h"
#include "symbols/symbols.h"
#include "target/target.h"

/* Frames of a pthread mutex wait are among the innermost few. */
#define MAX_WAIT_DEPTH 6

static bool is_mutex_wait(const struct ms_frame *f)
{
        static const char *const names[] = {
                "__lll_lock_wait",
                "___pthread_mutex_lock",
                "__pthread_mutex_lock",
                "pthread_mutex_lock",
                "__pthread_mutex_lock_full",
                "__pthread_mutex_clocklock_common",
                "___pthread_mutex_timedlock",
                "pthread_mutex_timedlock",
        };
        if (!f->function)
                return false;
        size_t len = ms_symbol_base_length(f->function);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (strlen(names[i]) == len &&
                    strncmp(f->function, names[i], len) == 0)
                        return true;
        }
        return false;
}

pid_t ms_lock_owner(struct ms_target *target, const struct ms_target_thread *t,
                    const struct ms_frame *frames, size_t n_frames)
{
        bool waits = false;
        for (size_t i = 0; i < n_frames && i < MAX_WAIT_DEPTH && !waits; i++)
                waits = is_mutex_wait(&frames[i]);
        if (!waits || !t->have_regs)
                return 0;
        uint64_t word = t->regs[MS_REG_RDI];
        uint32_t lock, owner;
        struct ms_error *err = ms_target_read_u32(target, word, &lock);
        if (!err)
                err = ms_target_read_u32(target, word + 8, &owner);
        if (err) {
                ms_error_destroy(err);
                return 0;
        }
        if (!lock || !owner || owner == (uint32_t)t->tid ||
            !ms_target_find_thread(target, (pid_t)owner))
                return 0;
        return (pid_t)owner;
}
