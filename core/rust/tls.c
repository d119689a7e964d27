/*
 * LOCAL_PANIC_COUNT: a thread-local of each Rust module. A dlopen'ed
 * extension's TLS block is allocated per thread and reached through the
 * thread's DTV at the module's TLS module id, which only the dynamic
 * linker knows (link_map::l_tls_modid). glibc describes its private
 * layouts for libthread_db in GLIBC_PRIVATE symbols of libc.so.6
 * (libpthread.so.0 before 2.34): each _thread_db_<struct>_<field> is
 * three u32s {size in bits, count, offset}. Reading those rather than
 * hard-coding offsets is what keeps this working across glibc releases.
 *
 * Walk: _r_debug (ld.so) -> r_map -> link_map list, the module's entry by
 * l_addr == load bias -> l_tls_modid; thread pointer (fs_base) ->
 * pthread.header.dtv -> dtv[modid].pointer.val -> block + st_value.
 * Only glibc on x86-64; anything else leaves the local count unknown.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rust/internal.h"

/* link_map lists longer than this are corrupt. */
#define MAX_LINK_MAPS 65536
/* The public part of struct link_map. */
#define LM_ADDR 0
#define LM_NEXT 24
/* struct r_debug: int r_version, then struct link_map *r_map. */
#define R_DEBUG_MAP 8
/* glibc's TLS_DTV_UNALLOCATED. */
#define DTV_UNALLOCATED UINT64_MAX
/* No DTV holds more module ids than this. */
#define MAX_DTV_LEN (1u << 20)

enum {
        D_MODID,
        D_DTVP,
        D_DTV_ENTRY,
        D_DTV_VAL,
        N_DESCS,
};

static const char *const desc_names[N_DESCS] = {
        [D_MODID] = "_thread_db_link_map_l_tls_modid",
        [D_DTVP] = "_thread_db_pthread_dtvp",
        [D_DTV_ENTRY] = "_thread_db_dtv_dtv",
        [D_DTV_VAL] = "_thread_db_dtv_t_pointer_val",
};

struct ms_rust_tls {
        uint64_t modid_offset;
        uint64_t dtvp_offset;
        uint64_t dtv_entry_size;
        uint64_t dtv_val_offset;
        uint64_t first_link_map;
};

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

/* Look names up in the first loaded file whose name starts with one of
 * prefixes; values are run-time addresses. */
static bool lookup_in(struct ms_target *target, const char *const *prefixes,
                      size_t n_prefixes, const char *const *names, size_t n,
                      uint64_t *values, bool *found)
{
        const struct ms_module *modules;
        size_t n_modules;
        struct ms_error *err = ms_target_modules(target, &modules, &n_modules);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        for (size_t i = 0; i < n_modules; i++) {
                const struct ms_module *m = &modules[i];
                if (!m->host_path)
                        continue;
                bool match = false;
                for (size_t p = 0; p < n_prefixes && !match; p++)
                        match = strncmp(base_name(m->path), prefixes[p],
                                        strlen(prefixes[p])) == 0;
                if (!match)
                        continue;
                err = ms_rust_elf_lookup(m->host_path, names, n, values, found);
                if (err) {
                        ms_error_destroy(err);
                        continue;
                }
                bool all = true;
                for (size_t k = 0; k < n; k++) {
                        all = all && found[k];
                        values[k] += m->bias;
                }
                if (all)
                        return true;
        }
        return false;
}

/* A descriptor {bits, count, offset}: its offset, and its element size
 * in bytes when size is not NULL. */
static bool read_desc(struct ms_target *target, uint64_t address,
                      uint64_t *offset, uint64_t *size)
{
        uint32_t d[3];
        struct ms_error *err = ms_target_read(target, address, d, sizeof(d));
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        /* Only 8-byte fields (16-byte dtv entries) make sense on x86-64. */
        bool ok = (d[0] == 64 || (size && d[0] == 128)) && d[2] < 65536;
        *offset = d[2];
        if (size)
                *size = d[0] / 8;
        return ok;
}

static bool read_layout(struct ms_target *target, struct ms_rust_tls *layout)
{
        static const char *const libc[] = {"libc.so", "libc-2.", "libpthread"};
        static const char *const ld[] = {"ld-linux", "ld-2.", "ld.so"};
        static const char *const r_debug[] = {"_r_debug"};
        uint64_t v[N_DESCS], rd;
        bool found[N_DESCS], rd_found;
        if (!lookup_in(target, libc, MS_ARRAY_SIZE(libc), desc_names, N_DESCS,
                       v, found) ||
            !lookup_in(target, ld, MS_ARRAY_SIZE(ld), r_debug, 1, &rd,
                       &rd_found))
                return false;
        uint64_t unused;
        if (!read_desc(target, v[D_MODID], &layout->modid_offset, NULL) ||
            !read_desc(target, v[D_DTVP], &layout->dtvp_offset, NULL) ||
            !read_desc(target, v[D_DTV_ENTRY], &unused,
                       &layout->dtv_entry_size) ||
            !read_desc(target, v[D_DTV_VAL], &layout->dtv_val_offset, NULL))
                return false;
        struct ms_error *err = ms_target_read_u64(target, rd + R_DEBUG_MAP,
                                                  &layout->first_link_map);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        return layout->first_link_map != 0;
}

/* Give each module with a LOCAL_PANIC_COUNT its l_tls_modid. */
static void resolve_modids(struct ms_target *target,
                           const struct ms_rust_tls *layout,
                           struct ms_rust_state *state)
{
        uint64_t lm = layout->first_link_map;
        for (unsigned i = 0; lm && i < MAX_LINK_MAPS; i++) {
                uint64_t l_addr, modid, next;
                struct ms_error *err =
                        ms_target_read_u64(target, lm + LM_ADDR, &l_addr);
                if (!err)
                        err = ms_target_read_u64(
                                target, lm + layout->modid_offset, &modid);
                if (!err)
                        err = ms_target_read_u64(target, lm + LM_NEXT, &next);
                if (err) {
                        ms_error_destroy(err);
                        return;
                }
                for (size_t k = 0; k < state->n_modules; k++) {
                        struct ms_rust_module *m = &state->modules[k];
                        if (m->have_local && m->bias == l_addr && modid &&
                            modid < MAX_DTV_LEN)
                                m->tls_modid = modid;
                }
                lm = next;
        }
}

struct ms_error *ms_rust_tls_resolve(struct ms_target *target,
                                     struct ms_rust_state *state)
{
        bool any = false;
        for (size_t k = 0; k < state->n_modules; k++)
                any = any || state->modules[k].have_local;
        if (!any)
                return NULL;
        struct ms_rust_tls *tls = calloc(1, sizeof(*tls));
        if (!tls)
                return &ms_error_no_memory;
        if (!read_layout(target, tls)) {
                free(tls);
                ms_warnings_add(&state->warnings,
                                "local panic counts unavailable: glibc's "
                                "_r_debug or libthread_db descriptors "
                                "(_thread_db_*) not found");
                return NULL;
        }
        resolve_modids(target, tls, state);
        state->tls = tls;
        return NULL;
}

/* The module's TLS block of thread: 0 when the thread never allocated it
 * (glibc allocates a dlopen'ed module's block on first access, so the
 * thread never touched the counter). */
static struct ms_error *tls_block(struct ms_target *target,
                                  const struct ms_rust_tls *l,
                                  const struct ms_rust_module *module,
                                  const struct ms_target_thread *thread,
                                  uint64_t *block)
{
        uint64_t dtv, len, val;
        struct ms_error *err = ms_target_read_u64(
                target, thread->fs_base + l->dtvp_offset, &dtv);
        if (err)
                return err;
        /* dtv[-1].counter is the number of slots allocated. */
        err = ms_target_read_u64(target, dtv - l->dtv_entry_size, &len);
        if (err)
                return err;
        if (len > MAX_DTV_LEN)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "implausible DTV length %" PRIu64, len);
        if (module->tls_modid > len) {
                *block = 0;
                return NULL;
        }
        err = ms_target_read_u64(target,
                                 dtv + module->tls_modid * l->dtv_entry_size +
                                         l->dtv_val_offset,
                                 &val);
        if (err)
                return err;
        *block = val == DTV_UNALLOCATED ? 0 : val;
        return NULL;
}

struct ms_error *ms_rust_local_count(struct ms_target *target,
                                     const struct ms_rust_state *state,
                                     const struct ms_rust_module *module,
                                     const struct ms_target_thread *thread,
                                     uint64_t *count, bool *in_hook)
{
        if (!state->tls || !module->have_local || !module->tls_modid ||
            !thread->fs_base)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "TLS block of %s not located",
                                       module->path);
        uint64_t block = 0;
        struct ms_error *err =
                tls_block(target, state->tls, module, thread, &block);
        if (err)
                return err;
        *count = 0;
        *in_hook = false;
        if (!block)
                return NULL;
        err = ms_target_read_u64(target, block + module->local_offset, count);
        if (err)
                return err;
        uint8_t hook = 0;
        if (module->local_size == 16)
                err = ms_target_read(target, block + module->local_offset + 8,
                                     &hook, 1);
        else if (module->have_local_hook)
                err = ms_target_read(target, block + module->local_hook_offset,
                                     &hook, 1);
        if (err)
                return err;
        *in_hook = hook != 0;
        return NULL;
}
