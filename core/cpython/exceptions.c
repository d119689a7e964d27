/*
 * Pending and handled exceptions of a thread state (cpython.h, struct
 * ms_py_exc; cpython-internals.md §7).
 *
 * Pending: current_exception (3.12+, always an instance), or the
 * curexc_type / curexc_value / curexc_traceback triple (3.8-3.11), whose
 * value may still be what was passed to PyErr_SetObject: NULL, a str, a
 * tuple of constructor arguments or any single argument.
 * Handled: the exc_info stack, from tstate->exc_info along previous_item;
 * an item is empty when its exc_type (3.8-3.10) or exc_value (3.11+) is
 * NULL or None, as _PyErr_GetTopmostException skips it.
 * Which of these fields exist is the layout's business; nothing here
 * tests a version.
 */
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"

/* Iterations of the exc_info walk, empty items included. */
#define MAX_EXC_INFO_ITEMS 256

/* Types whose str() of a single argument is its repr() (their own
 * __str__ overrides BaseException's). */
static const char *const repr_single_types[] = {
        "builtins.KeyError",
};

/* PyO3 turns a Rust panic that reaches Python into this exception. */
#define PANIC_EXCEPTION "pyo3_runtime.PanicException"

struct exc_reader {
        struct ms_target *target;
        const struct ms_py_layout *l;
        struct ms_py_code_cache *cache;
        /* Py_None, once an object was found to be it. */
        uint64_t none;
};

void ms_py_tb_frame_deinit(struct ms_py_tb_frame *f)
{
        free(f->function);
        free(f->qualname);
        free(f->file);
}

static void exc_deinit(struct ms_py_exc *e)
{
        for (size_t i = 0; i < e->n_traceback; i++)
                ms_py_tb_frame_deinit(&e->traceback[i]);
        free(e->traceback);
        free(e->type);
        free(e->message);
        free(e->error);
}

void ms_py_exc_chain_deinit(struct ms_py_exc_chain *chain)
{
        for (size_t i = 0; i < chain->n; i++)
                exc_deinit(&chain->items[i]);
        free(chain->items);
        memset(chain, 0, sizeof(*chain));
}

/* Keep the first problem of an exception in its error, and go on. Only
 * running out of memory stops the reader. */
static struct ms_error *note(struct ms_py_exc *e, struct ms_error *err,
                             const char *what)
{
        if (!err || err->code == MS_ERROR_NO_MEMORY)
                return err;
        if (!e->error && asprintf(&e->error, "%s: %s", what, err->message) < 0)
                e->error = NULL;
        ms_error_destroy(err);
        return NULL;
}

static bool is_none(struct exc_reader *r, uint64_t object)
{
        if (!object)
                return false;
        if (object == r->none)
                return true;
        char name[16];
        struct ms_error *err =
                ms_py_type_name(r->target, r->l, object, name, sizeof(name));
        bool none = !err && strcmp(name, "NoneType") == 0;
        ms_error_destroy(err);
        if (none)
                r->none = object;
        return none;
}

/* An exception instance (as opposed to a class or constructor args). */
static bool is_instance(struct exc_reader *r, uint64_t object)
{
        uint64_t flags;
        struct ms_error *err =
                ms_py_type_flags(r->target, r->l, object, &flags);
        ms_error_destroy(err);
        return !err && (flags & MS_PY_TPFLAGS_BASE_EXC_SUBCLASS);
}

static bool has_flag(struct exc_reader *r, uint64_t object, uint64_t flag)
{
        uint64_t flags;
        struct ms_error *err =
                ms_py_type_flags(r->target, r->l, object, &flags);
        ms_error_destroy(err);
        return !err && (flags & flag);
}

/* ------------------------------------------------------------------------
 * Tracebacks
 * ------------------------------------------------------------------------ */

/* The code object a frame object runs: f_code (3.8-3.10), or through
 * f_frame, the _PyInterpreterFrame (3.11+; after the frame returned it is
 * the copy inside the frame object). */
static struct ms_error *frame_code(struct exc_reader *r, uint64_t frame,
                                   uint64_t *code)
{
        const struct ms_py_layout *l = r->l;
        if (l->fo_code >= 0)
                return ms_py_read_field(r->target, frame, l->fo_code, code);
        uint64_t iframe;
        struct ms_error *err =
                ms_py_read_field(r->target, frame, l->fo_frame, &iframe);
        if (!err)
                err = ms_py_read_field(r->target, iframe, l->if_executable,
                                       code);
        if (!err && l->if_executable_tag_mask > 0)
                *code &= ~(uint64_t)l->if_executable_tag_mask;
        return err;
}

static struct ms_error *push_tb(struct ms_py_exc *e, size_t *capacity,
                                const struct ms_py_code *c, int line)
{
        if (!ms_grow((void **)&e->traceback, capacity, e->n_traceback,
                     sizeof(*e->traceback)))
                return &ms_error_no_memory;
        struct ms_py_tb_frame *f = &e->traceback[e->n_traceback];
        bool ok = true;
        *f = (struct ms_py_tb_frame){
                .function = ms_strdup_or_null(c ? c->function : NULL, &ok),
                .qualname = ms_strdup_or_null(c ? c->qualname : NULL, &ok),
                .file = ms_strdup_or_null(c ? c->file : NULL, &ok),
                .line = line > 0 ? line : 0,
        };
        if (!ok) {
                ms_py_tb_frame_deinit(f);
                return &ms_error_no_memory;
        }
        e->n_traceback++;
        return NULL;
}

/* One traceback object: its frame's code and line, and the next one.
 * tb_lineno is filled eagerly up to 3.10; from 3.11 it is -1 until asked
 * for, and the line comes from the code's table at tb_lasti (bytes). */
static struct ms_error *read_tb_entry(struct exc_reader *r, uint64_t tb,
                                      struct ms_py_exc *e, size_t *capacity,
                                      uint64_t *next)
{
        const struct ms_py_layout *l = r->l;
        struct ms_error *err =
                ms_py_check_type(r->target, l, tb, "traceback", "a traceback");
        uint64_t frame = 0, code = 0;
        int32_t lasti = -1, lineno = -1;
        if (!err)
                err = ms_py_read_field(r->target, tb, l->tb_next, next);
        if (!err)
                err = ms_py_read_field(r->target, tb, l->tb_frame, &frame);
        if (!err)
                err = ms_py_read_field_i32(r->target, tb, l->tb_lasti, &lasti);
        if (!err)
                err = ms_py_read_field_i32(r->target, tb, l->tb_lineno,
                                           &lineno);
        if (!err)
                err = frame_code(r, frame, &code);
        if (err)
                return err;
        struct ms_py_code *c;
        err = ms_py_code_get(r->cache, r->target, l, code, &c);
        if (err)
                return err;
        int line = lineno > 0 ? lineno
                              : ms_py_code_line(l, c, lasti < 0 ? -1 : lasti);
        return push_tb(e, capacity, c->error ? NULL : c, line);
}

static struct ms_error *read_traceback(struct exc_reader *r, uint64_t tb,
                                       struct ms_py_exc *e)
{
        size_t capacity = 0;
        for (size_t i = 0; tb; i++) {
                uint64_t next = 0;
                if (i >= MS_PY_MAX_TRACEBACK) {
                        e->traceback_truncated = true;
                        break;
                }
                struct ms_error *err =
                        read_tb_entry(r, tb, e, &capacity, &next);
                if (err)
                        return note(e, err, "traceback");
                if (next == tb) {
                        e->traceback_truncated = true;
                        break;
                }
                tb = next;
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * One exception
 * ------------------------------------------------------------------------ */

static struct ms_error *name_type(struct exc_reader *r, struct ms_py_exc *e)
{
        struct ms_error *err =
                ms_py_type_fullname(r->target, r->l, e->type_address, &e->type);
        if (err)
                return note(e, err, "type");
        e->is_panic_exception = strcmp(e->type, PANIC_EXCEPTION) == 0;
        return NULL;
}

static bool repr_single(const struct ms_py_exc *e)
{
        for (size_t i = 0; e->type && i < MS_ARRAY_SIZE(repr_single_types);
             i++) {
                if (strcmp(e->type, repr_single_types[i]) == 0)
                        return true;
        }
        return false;
}

/* The message from constructor arguments: a tuple, or one argument on its
 * own when single. */
static struct ms_error *set_message(struct exc_reader *r, struct ms_py_exc *e,
                                    uint64_t args, bool single)
{
        struct ms_py_sbuf sb = {.limit = MS_PY_MAX_MESSAGE};
        struct ms_error *err = ms_py_append_args_str(
                r->target, r->l, args, single, repr_single(e), &sb);
        if (sb.no_memory) {
                ms_error_destroy(err);
                ms_py_sbuf_deinit(&sb);
                return &ms_error_no_memory;
        }
        if (err) {
                ms_py_sbuf_deinit(&sb);
                return note(e, err, "message");
        }
        e->message_truncated = sb.truncated;
        e->message = ms_py_sbuf_take(&sb);
        return e->message ? NULL : &ms_error_no_memory;
}

/* An exception instance. tb, when not 0, replaces its __traceback__ (up
 * to 3.11 a pending exception keeps its traceback beside it). */
static struct ms_error *describe_instance(struct exc_reader *r, uint64_t exc,
                                          uint64_t tb, struct ms_py_exc *e)
{
        const struct ms_py_layout *l = r->l;
        e->address = exc;
        e->normalized = true;
        struct ms_error *err =
                ms_py_object_type(r->target, l, exc, &e->type_address);
        if (err)
                return note(e, err, "exception");
        uint64_t args = 0;
        err = name_type(r, e);
        if (!err)
                err = note(e,
                           ms_py_read_field(r->target, exc, l->exc_args, &args),
                           "args");
        if (!err && args)
                err = set_message(r, e, args, false);
        if (!err && !tb)
                err = note(
                        e,
                        ms_py_read_field(r->target, exc, l->exc_traceback, &tb),
                        "traceback");
        if (!err && tb && !is_none(r, tb))
                err = read_traceback(r, tb, e);
        return err;
}

/* A 3.8-3.11 pending exception never normalised: a type and the value
 * given to PyErr_SetObject, which are the constructor's arguments. */
static struct ms_error *describe_unnormalized(struct exc_reader *r,
                                              uint64_t type, uint64_t value,
                                              uint64_t tb, struct ms_py_exc *e)
{
        e->type_address = type;
        e->normalized = false;
        struct ms_error *err = name_type(r, e);
        if (!err && value && !is_none(r, value)) {
                bool tuple = has_flag(r, value, MS_PY_TPFLAGS_TUPLE_SUBCLASS);
                err = set_message(r, e, value, !tuple);
        } else if (!err) {
                e->message = strdup("");
                err = e->message ? NULL : &ms_error_no_memory;
        }
        if (!err && tb && !is_none(r, tb))
                err = read_traceback(r, tb, e);
        return err;
}

/* ------------------------------------------------------------------------
 * Chains
 * ------------------------------------------------------------------------ */

static struct ms_error *chain_append(struct ms_py_exc_chain *chain,
                                     size_t *capacity, struct ms_py_exc **ret)
{
        if (!ms_grow((void **)&chain->items, capacity, chain->n,
                     sizeof(*chain->items)))
                return &ms_error_no_memory;
        *ret = &chain->items[chain->n++];
        memset(*ret, 0, sizeof(**ret));
        return NULL;
}

/* What Python prints before exc: its __cause__, else its __context__
 * unless __suppress_context__ (raise ... from None). */
static struct ms_error *chain_next(struct exc_reader *r, uint64_t exc,
                                   uint64_t *next, enum ms_py_exc_link *link)
{
        const struct ms_py_layout *l = r->l;
        uint64_t cause = 0, context = 0;
        int32_t suppress = 0;
        *next = 0;
        struct ms_error *err =
                ms_py_read_field(r->target, exc, l->exc_cause, &cause);
        if (!err)
                err = ms_py_read_field(r->target, exc, l->exc_context,
                                       &context);
        if (!err)
                err = ms_py_read_field_i32(r->target, exc,
                                           l->exc_suppress_context, &suppress);
        if (err)
                return err;
        if (cause && !is_none(r, cause)) {
                *next = cause;
                *link = MS_PY_EXC_LINK_CAUSE;
        } else if (context && !is_none(r, context) && !(suppress & 0xff)) {
                *next = context;
                *link = MS_PY_EXC_LINK_CONTEXT;
        }
        return NULL;
}

static bool seen_before(const uint64_t *seen, size_t n, uint64_t a)
{
        for (size_t i = 0; i < n; i++) {
                if (seen[i] == a)
                        return true;
        }
        return false;
}

static struct ms_error *read_chain(struct exc_reader *r, uint64_t exc,
                                   uint64_t tb, struct ms_py_exc_chain *chain)
{
        uint64_t seen[MS_PY_MAX_EXC_CHAIN];
        enum ms_py_exc_link link = MS_PY_EXC_LINK_NONE;
        size_t capacity = 0;
        for (size_t depth = 0; exc; depth++) {
                if (depth >= MS_PY_MAX_EXC_CHAIN ||
                    seen_before(seen, depth, exc)) {
                        chain->truncated = true;
                        break;
                }
                seen[depth] = exc;
                struct ms_py_exc *e;
                struct ms_error *err = chain_append(chain, &capacity, &e);
                if (!err) {
                        e->link = link;
                        err = describe_instance(r, exc, depth ? 0 : tb, e);
                }
                if (!err)
                        err = note(e, chain_next(r, exc, &exc, &link), "chain");
                if (err)
                        return err;
                /* Not even its type could be read: its links are junk. */
                if (!e->type)
                        break;
        }
        return NULL;
}

/* type/value/tb as a pending or handled exception: an instance with its
 * chain, or an un-normalised pair. */
static struct ms_error *read_triple(struct exc_reader *r, uint64_t type,
                                    uint64_t value, uint64_t tb,
                                    struct ms_py_exc_chain *chain)
{
        if (value && is_instance(r, value))
                return read_chain(r, value, tb, chain);
        struct ms_py_exc *e;
        size_t capacity = 0;
        struct ms_error *err = chain_append(chain, &capacity, &e);
        return err ? err : describe_unnormalized(r, type, value, tb, e);
}

/* ------------------------------------------------------------------------
 * Per thread state
 * ------------------------------------------------------------------------ */

static struct ms_error *read_pending(struct exc_reader *r,
                                     const struct ms_py_blob *ts,
                                     struct ms_py_thread *t)
{
        const struct ms_py_layout *l = r->l;
        uint64_t exc = 0, type = 0, value = 0, tb = 0;
        if (ms_py_blob_u64(ts, l->ts_current_exception, &exc))
                return exc ? read_chain(r, exc, 0, &t->pending) : NULL;
        if (!ms_py_blob_u64(ts, l->ts_curexc_type, &type) || !type)
                return NULL;
        ms_py_blob_u64(ts, l->ts_curexc_value, &value);
        ms_py_blob_u64(ts, l->ts_curexc_traceback, &tb);
        return read_triple(r, type, value, tb, &t->pending);
}

/* One _PyErr_StackItem: its exception, or nothing when it is empty. */
static struct ms_error *read_item(struct exc_reader *r, uint64_t item,
                                  struct ms_py_thread *t, size_t *capacity,
                                  uint64_t *previous)
{
        const struct ms_py_layout *l = r->l;
        uint64_t type = 0, value = 0, tb = 0;
        struct ms_error *err = ms_py_read_field(r->target, item,
                                                l->ei_previous_item, previous);
        if (!err)
                err = ms_py_read_field(r->target, item, l->ei_exc_value,
                                       &value);
        if (!err && l->ei_exc_type >= 0)
                err = ms_py_read_field(r->target, item, l->ei_exc_type, &type);
        if (!err && l->ei_exc_traceback >= 0)
                err = ms_py_read_field(r->target, item, l->ei_exc_traceback,
                                       &tb);
        if (err)
                return err;
        /* Up to 3.10 the type tells whether the item is set, from 3.11
         * the value (the only field). */
        uint64_t key = l->ei_exc_type >= 0 ? type : value;
        if (!key || is_none(r, key))
                return NULL;
        if (!ms_grow((void **)&t->handled, capacity, t->n_handled,
                     sizeof(*t->handled)))
                return &ms_error_no_memory;
        struct ms_py_exc_chain *chain = &t->handled[t->n_handled++];
        memset(chain, 0, sizeof(*chain));
        return read_triple(r, type, value, tb && !is_none(r, tb) ? tb : 0,
                           chain);
}

static struct ms_error *read_handled(struct exc_reader *r,
                                     const struct ms_py_blob *ts,
                                     struct ms_py_thread *t)
{
        uint64_t item = 0, seen[MAX_EXC_INFO_ITEMS];
        size_t capacity = 0;
        if (!ms_py_blob_u64(ts, r->l->ts_exc_info, &item))
                return NULL;
        /* Items live in thread states and generators: a corrupt list may
         * loop, so every item is visited once at most. */
        for (size_t i = 0; item && t->n_handled < MS_PY_MAX_HANDLED; i++) {
                if (i >= MAX_EXC_INFO_ITEMS || seen_before(seen, i, item) ||
                    !ms_py_plausible_pointer(item))
                        break;
                seen[i] = item;
                uint64_t previous = 0;
                struct ms_error *err =
                        read_item(r, item, t, &capacity, &previous);
                if (err && err->code == MS_ERROR_NO_MEMORY)
                        return err;
                if (err) {
                        /* An unreadable item ends the walk, not the thread. */
                        ms_error_destroy(err);
                        break;
                }
                item = previous;
        }
        return NULL;
}

struct ms_error *ms_py_read_exceptions(struct ms_target *target,
                                       const struct ms_py_layout *l,
                                       struct ms_py_code_cache *cache,
                                       const struct ms_py_blob *ts,
                                       struct ms_py_thread *thread)
{
        struct exc_reader r = {.target = target, .l = l, .cache = cache};
        struct ms_error *err = read_pending(&r, ts, thread);
        if (!err)
                err = read_handled(&r, ts, thread);
        return err;
}
