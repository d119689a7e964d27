/*
 * The debugger-fed target: a gdb or lldb plugin hands over memory through a
 * callback and adds threads and mappings one by one.
 *
 * Mappings are kept sorted and resolved to host files as they are added
 * (ms_target_insert_mapping), so the target is consistent after every call
 * and needs no "finish" step the plugins could forget.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "target/backend.h"
#include "target/regions.h"

struct debugger_target {
        struct ms_target target;
        ms_read_memory_fn *read_memory;
        void *arg;
        /* Writable memory the debugger listed (ms_target_add_region). */
        struct ms_memory_region *regions;
        size_t n_regions, regions_capacity;
};

static struct debugger_target *to_debugger(struct ms_target *target)
{
        return (struct debugger_target *)target;
}

static struct ms_error *debugger_read(struct ms_target *target,
                                      uint64_t address, void *buf, size_t size)
{
        struct debugger_target *d = to_debugger(target);
        if (d->read_memory(d->arg, address, buf, size) != 0)
                return ms_error_create(MS_ERROR_FAULT,
                                       "cannot read %zu bytes at 0x%" PRIx64,
                                       size, address);
        return NULL;
}

static void debugger_destroy(struct ms_target *target)
{
        free(to_debugger(target)->regions);
        free(to_debugger(target));
}

static const struct ms_target_ops debugger_ops = {
        .read = debugger_read,
        .destroy = debugger_destroy,
};

struct ms_error *ms_target_create_debugger(
        ms_read_memory_fn *read_memory, void *arg,
        const struct ms_target_options *options, struct ms_target **ret)
{
        if (!read_memory || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no memory reader given");
        struct debugger_target *d = calloc(1, sizeof(*d));
        if (!d)
                return &ms_error_no_memory;
        d->read_memory = read_memory;
        d->arg = arg;
        struct ms_error *err = ms_target_init(&d->target, &debugger_ops,
                                              MS_TARGET_DEBUGGER, options);
        if (err) {
                ms_target_destroy(&d->target);
                return err;
        }
        *ret = &d->target;
        return NULL;
}

static struct ms_error *check_debugger(struct ms_target *target)
{
        if (!target || target->kind != MS_TARGET_DEBUGGER)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "not a debugger target");
        return NULL;
}

struct ms_error *ms_target_add_thread(struct ms_target *target, pid_t tid,
                                      const char *name,
                                      const uint64_t regs[MS_NUM_REGS],
                                      uint64_t fs_base)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (ms_target_find_thread(target, tid))
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "thread %d added twice", (int)tid);
        return ms_target_append_thread(target, tid, name, regs, fs_base);
}

struct ms_error *ms_target_add_mapping(struct ms_target *target,
                                       const char *path, uint64_t start,
                                       uint64_t end, uint64_t file_offset)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        return ms_target_insert_mapping(target, path, start, end, file_offset);
}

struct ms_error *ms_target_set_process(struct ms_target *target, pid_t pid,
                                       const char *executable, int signo,
                                       pid_t signal_tid)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (signo < 0 || signo >= 65)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "bad signal number %d", signo);
        if (executable) {
                err = ms_target_set_executable(target, executable);
                if (err)
                        return err;
        }
        target->pid = pid;
        target->signo = signo;
        target->signal_tid = signo ? signal_tid : 0;
        return NULL;
}

/* At most this many regions are kept: enough for any process. */
#define MAX_REGIONS 1000000

struct ms_error *ms_target_add_region(struct ms_target *target, uint64_t start,
                                      uint64_t end, bool writable)
{
        struct ms_error *err = check_debugger(target);
        if (err)
                return err;
        if (end <= start)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "empty region 0x%" PRIx64 "-0x%" PRIx64,
                                       start, end);
        struct debugger_target *d = to_debugger(target);
        if (!writable || d->n_regions >= MAX_REGIONS)
                return NULL;
        if (!ms_grow((void **)&d->regions, &d->regions_capacity, d->n_regions,
                     sizeof(*d->regions)))
                return &ms_error_no_memory;
        d->regions[d->n_regions++] =
                (struct ms_memory_region){.start = start, .end = end};
        return NULL;
}

bool ms_target_debugger_regions(const struct ms_target *target,
                                const struct ms_memory_region **regions,
                                size_t *n)
{
        if (target->kind != MS_TARGET_DEBUGGER)
                return false;
        const struct debugger_target *d =
                (const struct debugger_target *)target;
        *regions = d->regions;
        *n = d->n_regions;
        return d->n_regions > 0;
}
