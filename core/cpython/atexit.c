/*
 * The Python callbacks registered with atexit (interp->atexit, 3.10+):
 * what Py_FinalizeEx's atexit step runs. Knowing their code objects tells
 * an atexit callback running on a thread from any other Python code, with
 * or without symbols (lifecycle.c).
 *
 * 3.10-3.13 keep an array of atexit_py_callback pointers and a count
 * (is_atexit_ncallbacks); 3.14+ a list of (func, args, kwargs) tuples
 * (is_atexit_ncallbacks -1). 3.8-3.9 keep them in the atexit module's
 * state, which is not read. At most MAX_ATEXIT are looked at; every read
 * is checked, and each object's type before its fields are used.
 */
#include <stdlib.h>

#include "cpython/internal.h"

/* Callbacks looked at, at most: more is not a program's atexit list. */
#define MAX_ATEXIT 256

static bool type_is(struct ms_target *target, const struct ms_py_layout *l,
                    uint64_t object, const char *name)
{
        struct ms_error *err = ms_py_check_type(target, l, object, name, name);
        ms_error_destroy(err);
        return !err;
}

static bool has_flag(struct ms_target *target, const struct ms_py_layout *l,
                     uint64_t object, unsigned long flag)
{
        uint64_t flags = 0;
        struct ms_error *err = ms_py_type_flags(target, l, object, &flags);
        ms_error_destroy(err);
        return !err && (flags & flag);
}

/* Keep the code object of func when it is a Python function or a method
 * bound to one (atexit.register(obj.close)): what the frame the callback
 * runs executes. Other callables (builtins, functools.partial) run no
 * Python frame of their own, or one that cannot be told from here. */
static void add_function(struct ms_target *target, const struct ms_py_layout *l,
                         uint64_t func, struct ms_py_interp *in)
{
        uint64_t code = 0;
        struct ms_error *err = NULL;
        if (ms_py_plausible_pointer(func) &&
            type_is(target, l, func, "method")) {
                err = ms_py_read_field(target, func, l->meth_func, &func);
                ms_error_destroy(err);
                if (err)
                        return;
        }
        if (!ms_py_plausible_pointer(func) ||
            !type_is(target, l, func, "function"))
                return;
        err = ms_py_read_field(target, func, l->fn_code, &code);
        ms_error_destroy(err);
        if (err || !ms_py_plausible_pointer(code) ||
            !type_is(target, l, code, "code"))
                return;
        in->atexit_code[in->n_atexit_code++] = code;
}

/* The n items of an array of pointers at address (a list's ob_item, or
 * 3.10-3.13's callbacks). */
static bool read_items(struct ms_target *target, uint64_t address, size_t n,
                       uint64_t *items)
{
        if (!n)
                return true;
        struct ms_error *err =
                ms_py_plausible_pointer(address)
                        ? ms_target_read(target, address, items,
                                         n * sizeof(*items))
                        : ms_error_create(MS_ERROR_BAD_INPUT, "bad item array");
        ms_error_destroy(err);
        return !err;
}

/* The callables, from the array (3.10-3.13) or the list (3.14+). */
static bool read_callables(struct ms_target *target,
                           const struct ms_py_layout *l, uint64_t interp,
                           uint64_t *funcs, size_t *n)
{
        uint64_t callbacks = 0;
        struct ms_error *err = ms_py_read_field(
                target, interp, l->is_atexit_callbacks, &callbacks);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        int64_t count = 0;
        uint64_t items = callbacks;
        if (l->is_atexit_ncallbacks >= 0) {
                int32_t nc = 0;
                err = ms_py_read_field_i32(target, interp,
                                           l->is_atexit_ncallbacks, &nc);
                count = nc;
        } else {
                /* Created at interpreter start: NULL only before that. */
                if (!callbacks || !has_flag(target, l, callbacks,
                                            MS_PY_TPFLAGS_LIST_SUBCLASS))
                        return false;
                uint64_t size = 0;
                err = ms_py_read_field(target, callbacks, l->ob_size, &size);
                count = (int64_t)size;
                if (!err)
                        err = ms_py_read_field(target, callbacks, l->list_item,
                                               &items);
        }
        ms_error_destroy(err);
        if (err || count < 0 || count > MAX_ATEXIT)
                return false;
        *n = (size_t)count;
        if (!read_items(target, items, *n, funcs))
                return false;
        /* Each item holds the callable first: an atexit_py_callback (its
         * func field; NULL once unregistered) or a (func, args, kwargs)
         * tuple. */
        for (size_t i = 0; i < *n; i++) {
                uint64_t item = funcs[i], func = 0;
                funcs[i] = 0;
                if (!item)
                        continue;
                if (l->is_atexit_ncallbacks >= 0)
                        err = ms_py_read_field(target, item, l->atexit_cb_func,
                                               &func);
                else if (has_flag(target, l, item,
                                  MS_PY_TPFLAGS_TUPLE_SUBCLASS))
                        err = ms_py_read_field(target, item, l->tuple_item,
                                               &func);
                else
                        continue;
                ms_error_destroy(err);
                funcs[i] = err ? 0 : func;
        }
        return true;
}

void ms_py_atexit_read(struct ms_target *target, const struct ms_py_layout *l,
                       struct ms_py_interp *in)
{
        if (l->is_atexit_callbacks < 0 || l->fn_code < 0)
                return;
        uint64_t *funcs = calloc(MAX_ATEXIT, sizeof(*funcs));
        in->atexit_code = calloc(MAX_ATEXIT, sizeof(*in->atexit_code));
        size_t n = 0;
        if (funcs && in->atexit_code &&
            read_callables(target, l, in->address, funcs, &n)) {
                for (size_t i = 0; i < n; i++)
                        add_function(target, l, funcs[i], in);
                in->atexit_known = true;
        }
        free(funcs);
        if (!in->atexit_known || !in->n_atexit_code) {
                free(in->atexit_code);
                in->atexit_code = NULL;
                in->n_atexit_code = 0;
        }
}
