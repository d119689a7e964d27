/*
 * Arguments and locals of Python frames: the names come from the code
 * object (co_varnames before 3.11, co_localsplusnames with their kinds
 * after), the values from the frame's localsplus array, printed with the
 * bounded repr of repr.c. Cells hold their value one object further.
 */
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"

/* co_localspluskinds bits (3.11+). */
#define CO_FAST_HIDDEN 0x10
#define CO_FAST_CELL 0x40
#define CO_FAST_FREE 0x80

void ms_py_locals_free(struct ms_py_frame *frame)
{
        for (size_t i = 0; i < frame->n_locals; i++) {
                free(frame->locals[i].name);
                free(frame->locals[i].value);
        }
        free(frame->locals);
        frame->locals = NULL;
        frame->n_locals = 0;
}

/* What one frame's code object says about its locals. */
struct local_names {
        uint64_t names; /* the names tuple */
        int32_t count;  /* slots shown */
        int32_t argcount;
        uint8_t *kinds; /* 3.11+, else NULL */
        size_t n_kinds;
};

static struct ms_error *read_names(struct ms_target *target,
                                   const struct ms_py_layout *l, uint64_t code,
                                   struct local_names *ln)
{
        memset(ln, 0, sizeof(*ln));
        int32_t count_field =
                l->co_nlocalsplus >= 0 ? l->co_nlocalsplus : l->co_nlocals;
        struct ms_error *err =
                ms_py_read_field_i32(target, code, count_field, &ln->count);
        if (!err)
                err = ms_py_read_field_i32(target, code, l->co_argcount,
                                           &ln->argcount);
        if (!err)
                err = ms_py_read_field(target, code, l->co_varnames,
                                       &ln->names);
        if (err)
                return err;
        if (ln->count < 0 || ln->count > 65535)
                return ms_error_create(MS_ERROR_BAD_INPUT, "bad local count %d",
                                       ln->count);
        if (l->co_localspluskinds >= 0) {
                uint64_t kinds;
                err = ms_py_read_field(target, code, l->co_localspluskinds,
                                       &kinds);
                if (!err)
                        err = ms_py_read_bytes(target, l, kinds, 65536,
                                               &ln->kinds, &ln->n_kinds);
                if (err)
                        return err;
        }
        return NULL;
}

/* The i-th item of a tuple. */
static struct ms_error *tuple_item(struct ms_target *target,
                                   const struct ms_py_layout *l, uint64_t tuple,
                                   int32_t i, uint64_t *ret)
{
        uint64_t size;
        struct ms_error *err =
                ms_py_read_field(target, tuple, l->ob_size, &size);
        if (err)
                return err;
        if ((uint64_t)i >= size)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "name %d past the tuple", i);
        return ms_target_read_u64(
                target, tuple + (uint64_t)l->tuple_item + 8 * (uint64_t)i, ret);
}

static char *value_text(struct ms_target *target, const struct ms_py_layout *l,
                        uint64_t value)
{
        struct ms_py_sbuf sb = {.limit = MS_PY_MAX_LOCAL_REPR};
        struct ms_error *err = ms_py_append_repr(target, l, value, &sb);
        if (err) {
                ms_py_sbuf_deinit(&sb);
                ms_error_destroy(err);
                return strdup("<unreadable>");
        }
        if (sb.truncated)
                ms_py_sbuf_puts(&sb, "...");
        return ms_py_sbuf_take(&sb);
}

static struct ms_error *add_local(struct ms_py_frame *frame, size_t *capacity,
                                  char *name, char *value, bool argument)
{
        if (!name || !value ||
            !ms_grow((void **)&frame->locals, capacity, frame->n_locals,
                     sizeof(*frame->locals))) {
                free(name);
                free(value);
                return &ms_error_no_memory;
        }
        frame->locals[frame->n_locals++] = (struct ms_py_local){
                .name = name, .value = value, .argument = argument};
        return NULL;
}

/* The object in slot i, or 0 when the slot is unbound or hidden. */
static uint64_t slot_value(struct ms_target *target,
                           const struct ms_py_layout *l,
                           const struct local_names *ln, uint64_t slots,
                           int32_t i)
{
        uint64_t v;
        struct ms_error *err =
                ms_target_read_u64(target, slots + 8 * (uint64_t)i, &v);
        if (err) {
                ms_error_destroy(err);
                return 0;
        }
        /* 3.14 stack references tag their low bits like f_executable. */
        if (l->if_executable_tag_mask > 0)
                v &= ~(uint64_t)l->if_executable_tag_mask;
        uint8_t kind = ln->kinds && (size_t)i < ln->n_kinds ? ln->kinds[i] : 0;
        if (kind & CO_FAST_HIDDEN)
                return 0;
        if (v && (kind & (CO_FAST_CELL | CO_FAST_FREE))) {
                /* A cell: its object follows the object header. */
                uint64_t inner;
                err = ms_target_read_u64(target, v + (uint64_t)l->ob_type + 8,
                                         &inner);
                if (err) {
                        ms_error_destroy(err);
                        return 0;
                }
                v = inner;
        }
        return ms_py_plausible_pointer(v) ? v : 0;
}

static struct ms_error *frame_locals(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     struct ms_py_frame *frame)
{
        int32_t localsplus =
                l->if_localsplus >= 0 ? l->if_localsplus : l->fo_localsplus;
        if (localsplus < 0 || !frame->address || !frame->code_address)
                return NULL;
        struct local_names ln;
        struct ms_error *err = read_names(target, l, frame->code_address, &ln);
        if (err) {
                free(ln.kinds);
                ms_error_destroy(err);
                return NULL;
        }
        size_t capacity = 0;
        uint64_t slots = frame->address + (uint64_t)localsplus;
        int32_t n = ln.count < MS_PY_MAX_LOCALS ? ln.count : MS_PY_MAX_LOCALS;
        for (int32_t i = 0; i < n && !err; i++) {
                uint64_t value = slot_value(target, l, &ln, slots, i);
                uint64_t name_obj;
                struct ms_error *e =
                        value ? tuple_item(target, l, ln.names, i, &name_obj)
                              : NULL;
                char *name = NULL;
                if (value && !e)
                        e = ms_py_read_str(target, l, name_obj, &name);
                if (!value || e) {
                        ms_error_destroy(e);
                        continue;
                }
                err = add_local(frame, &capacity, name,
                                value_text(target, l, value), i < ln.argcount);
        }
        free(ln.kinds);
        return err;
}

struct ms_error *ms_py_read_locals(struct ms_target *target,
                                   struct ms_py_runtime *rt)
{
        for (size_t t = 0; t < rt->n_threads; t++) {
                struct ms_py_thread *thread = &rt->threads[t];
                for (size_t f = 0; f < thread->n_frames; f++) {
                        struct ms_error *err = frame_locals(target, &rt->layout,
                                                            &thread->frames[f]);
                        if (err)
                                return err;
                }
        }
        return NULL;
}

/* Names kept per dict: a module's globals and the builtins fit. */
#define MAX_NAMESPACE_ITEMS 4096

void ms_py_namespaces_free(struct ms_py_namespace *ns, size_t n)
{
        for (size_t i = 0; ns && i < n; i++) {
                for (size_t j = 0; j < ns[i].n; j++) {
                        free(ns[i].items[j].name);
                        free(ns[i].items[j].value);
                }
                free(ns[i].items);
        }
        free(ns);
}

static struct ms_error *read_namespace(struct ms_target *target,
                                       const struct ms_py_layout *l,
                                       uint64_t dict,
                                       struct ms_py_namespace *out)
{
        uint64_t *keys, *values;
        size_t n;
        memset(out, 0, sizeof(*out));
        out->dict = dict;
        struct ms_error *err = ms_py_dict_pairs(
                target, l, dict, MAX_NAMESPACE_ITEMS, &keys, &values, &n);
        if (!err) {
                out->items = calloc(n ? n : 1, sizeof(*out->items));
                if (!out->items)
                        err = &ms_error_no_memory;
        }
        for (size_t i = 0; !err && i < n; i++) {
                char *name;
                struct ms_error *e = ms_py_read_str(target, l, keys[i], &name);
                if (e) {
                        /* Not a str key: not a name. */
                        if (e->code == MS_ERROR_NO_MEMORY)
                                err = e;
                        else
                                ms_error_destroy(e);
                        continue;
                }
                struct ms_py_local *item = &out->items[out->n++];
                item->name = name;
                item->value = value_text(target, l, values[i]);
                if (!item->value)
                        err = &ms_error_no_memory;
        }
        free(keys);
        free(values);
        return err;
}

static bool have_namespace(const struct ms_py_namespace *ns, size_t n,
                           uint64_t dict)
{
        for (size_t i = 0; i < n; i++) {
                if (ns[i].dict == dict)
                        return true;
        }
        return false;
}

static struct ms_error *add_namespace(struct ms_target *target,
                                      const struct ms_py_layout *l,
                                      uint64_t dict,
                                      struct ms_py_namespace **ns, size_t *n,
                                      size_t *capacity)
{
        if (!dict || have_namespace(*ns, *n, dict))
                return NULL;
        if (!ms_grow((void **)ns, capacity, *n, sizeof(**ns)))
                return &ms_error_no_memory;
        struct ms_error *err = read_namespace(target, l, dict, &(*ns)[*n]);
        if (err && err->code != MS_ERROR_NO_MEMORY) {
                /* Unreadable: looked up as missing. */
                ms_error_destroy(err);
                err = NULL;
        }
        (*n)++;
        return err;
}

static uint64_t interp_builtins(struct ms_target *target,
                                const struct ms_py_runtime *rt, int64_t id)
{
        const struct ms_py_layout *l = &rt->layout;
        for (size_t i = 0; l->is_builtins >= 0 && i < rt->n_interps; i++) {
                if (rt->interps[i].id != id)
                        continue;
                uint64_t builtins = 0;
                struct ms_error *err =
                        ms_py_read_field(target, rt->interps[i].address,
                                         l->is_builtins, &builtins);
                if (err) {
                        ms_error_destroy(err);
                        return 0;
                }
                return ms_py_plausible_pointer(builtins) ? builtins : 0;
        }
        return 0;
}

/* The globals dict a frame runs with: _PyInterpreterFrame.f_globals
 * (3.11+) or PyFrameObject.f_globals (3.8-3.10); 0 when unknown. */
static uint64_t frame_globals(struct ms_target *target,
                              const struct ms_py_layout *l, uint64_t frame)
{
        int32_t offset = l->if_globals >= 0 ? l->if_globals : l->fo_globals;
        uint64_t globals = 0;
        if (offset < 0)
                return 0;
        struct ms_error *err =
                ms_py_read_field(target, frame, offset, &globals);
        if (err || !ms_py_plausible_pointer(globals))
                globals = 0;
        ms_error_destroy(err);
        return globals;
}

struct ms_error *ms_py_read_namespaces(struct ms_target *target,
                                       struct ms_py_runtime *rt,
                                       struct ms_py_namespace **ns, size_t *n,
                                       size_t *capacity)
{
        const struct ms_py_layout *l = &rt->layout;
        struct ms_error *err = NULL;
        for (size_t t = 0; !err && t < rt->n_threads; t++) {
                struct ms_py_thread *thread = &rt->threads[t];
                uint64_t builtins =
                        interp_builtins(target, rt, thread->interp_id);
                for (size_t f = 0; !err && f < thread->n_frames; f++) {
                        struct ms_py_frame *frame = &thread->frames[f];
                        uint64_t globals =
                                frame_globals(target, l, frame->address);
                        frame->globals = globals;
                        frame->builtins = builtins;
                        err = add_namespace(target, l, globals, ns, n,
                                            capacity);
                }
                if (!err)
                        err = add_namespace(target, l, builtins, ns, n,
                                            capacity);
        }
        return err;
}
