/* Shared by the files of core/cpython: reading CPython objects. */
#ifndef MIXSTACK_CPYTHON_INTERNAL_H
#define MIXSTACK_CPYTHON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "cpython/cpython.h"

/* Type flags (stable since 3.0). */
#define MS_PY_TPFLAGS_HEAPTYPE (1UL << 9)
#define MS_PY_TPFLAGS_LONG_SUBCLASS (1UL << 24)
#define MS_PY_TPFLAGS_LIST_SUBCLASS (1UL << 25)
#define MS_PY_TPFLAGS_TUPLE_SUBCLASS (1UL << 26)
#define MS_PY_TPFLAGS_BYTES_SUBCLASS (1UL << 27)
#define MS_PY_TPFLAGS_UNICODE_SUBCLASS (1UL << 28)
#define MS_PY_TPFLAGS_DICT_SUBCLASS (1UL << 29)
#define MS_PY_TPFLAGS_BASE_EXC_SUBCLASS (1UL << 30)
#define MS_PY_TPFLAGS_TYPE_SUBCLASS (1UL << 31)

/* The largest struct read in one go (a thread state, a code object). */
#define MS_PY_MAX_STRUCT 4096

/*
 * A copy of a struct read from the target in one read, so that the fields
 * of one frame or thread state cost one read, not ten. Field getters
 * return false for an absent field (offset -1) or one past the copy.
 */
struct ms_py_blob {
        uint64_t address;
        size_t size;
        uint8_t data[MS_PY_MAX_STRUCT];
};

/* Read size bytes (<= MS_PY_MAX_STRUCT) at address into blob. When the
 * whole struct is not readable (it ends at an unmapped page), as much of
 * its start as can be read is kept, down to min_size bytes. */
struct ms_error *ms_py_blob_read(struct ms_target *target, uint64_t address,
                                 size_t size, size_t min_size,
                                 struct ms_py_blob *blob);
bool ms_py_blob_u64(const struct ms_py_blob *blob, int32_t off, uint64_t *ret);
bool ms_py_blob_i64(const struct ms_py_blob *blob, int32_t off, int64_t *ret);
bool ms_py_blob_i32(const struct ms_py_blob *blob, int32_t off, int32_t *ret);
bool ms_py_blob_u8(const struct ms_py_blob *blob, int32_t off, uint8_t *ret);

/* Read the pointer-sized field at address + off; MS_ERROR_UNSUPPORTED when
 * off is -1 (the version has no such field). */
struct ms_error *ms_py_read_field(struct ms_target *target, uint64_t address,
                                  int32_t off, uint64_t *ret);
struct ms_error *ms_py_read_field_i32(struct ms_target *target,
                                      uint64_t address, int32_t off,
                                      int32_t *ret);

/* A plausible object pointer: non-NULL, 8-byte aligned, in user space. */
bool ms_py_plausible_pointer(uint64_t p);

/* tp_flags of the type of the object at address. */
struct ms_error *ms_py_type_flags(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  uint64_t *ret);

/* tp_name of the type of the object at address, into buf (cut). */
struct ms_error *ms_py_type_name(struct ms_target *target,
                                 const struct ms_py_layout *l, uint64_t object,
                                 char *buf, size_t size);

/* NULL when the object at address is of the type named name (tp_name),
 * else MS_ERROR_BAD_INPUT naming what it is ("0x... is a T, not a what"). */
struct ms_error *ms_py_check_type(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  const char *name, const char *what);

/* Decode the str at address (any PEP 393 kind, legacy strings included)
 * into a malloc'd UTF-8 string of at most MS_PY_MAX_STRING code points.
 * MS_ERROR_BAD_INPUT when the object is not a str. */
struct ms_error *ms_py_read_str(struct ms_target *target,
                                const struct ms_py_layout *l, uint64_t address,
                                char **ret);

/* Copy the contents of the bytes object at address (at most max bytes)
 * into a malloc'd buffer. MS_ERROR_BAD_INPUT when it is not bytes or is
 * longer than max. */
struct ms_error *ms_py_read_bytes(struct ms_target *target,
                                  const struct ms_py_layout *l,
                                  uint64_t address, size_t max, uint8_t **ret,
                                  size_t *len);

/* ob_type of the object at address, checked to be a plausible pointer. */
struct ms_error *ms_py_object_type(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, uint64_t *type);

/* ------------------------------------------------------------------------
 * str() and repr() of simple objects (repr.c)
 * ------------------------------------------------------------------------ */

/* A bounded string builder: text past limit bytes is dropped (cut at a
 * UTF-8 boundary) and truncated set; allocation failure sets no_memory. */
struct ms_py_sbuf {
        char *data;
        size_t len, cap, limit;
        bool truncated;
        bool no_memory;
};

void ms_py_sbuf_putn(struct ms_py_sbuf *sb, const char *s, size_t n);
void ms_py_sbuf_puts(struct ms_py_sbuf *sb, const char *s);
void ms_py_sbuf_printf(struct ms_py_sbuf *sb, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, never NULL unless out of memory; then the buffer
 * is freed and NULL returned). The builder is emptied. */
char *ms_py_sbuf_take(struct ms_py_sbuf *sb);
void ms_py_sbuf_deinit(struct ms_py_sbuf *sb);

/* Append str(object) / repr(object) for the types CPython's own str()
 * and repr() would show without running code: str, int (and bool),
 * float, bytes, None, tuple, list, exception instances, classes; any
 * other object as "<type object at 0x...>". Nested containers are cut at
 * a small depth and length. Unreadable parts become "<unreadable ...>";
 * the error returned is only for an unreadable top-level object (or out
 * of memory: check sb->no_memory). */
struct ms_error *ms_py_append_str(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  struct ms_py_sbuf *sb);
struct ms_error *ms_py_append_repr(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, struct ms_py_sbuf *sb);

/* What BaseException.__str__ shows for constructor arguments: args is a
 * tuple, or one argument on its own when single. No argument gives "",
 * one gives str(arg) (repr(arg) when repr_single: KeyError's rule), more
 * give repr(args). */
struct ms_error *ms_py_append_args_str(struct ms_target *target,
                                       const struct ms_py_layout *l,
                                       uint64_t args, bool single,
                                       bool repr_single, struct ms_py_sbuf *sb);

/* The full name of a type object, as type.__module__ + "." +
 * type.__qualname__: static types carry the module in tp_name
 * ("_io.TextIOWrapper"; none means builtins), heap types have it in their
 * dict's __module__ and the qualified name in ht_qualname. *ret is
 * malloc'd. */
struct ms_error *ms_py_type_fullname(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     uint64_t type, char **ret);

/* The value of str key `key` in the dict at address (combined tables
 * only, at most a few thousand entries). MS_ERROR_NOT_FOUND when absent. */
struct ms_error *ms_py_dict_get(struct ms_target *target,
                                const struct ms_py_layout *l, uint64_t dict,
                                const char *key, uint64_t *value);

/* The (key, value) object pairs of a combined dict, at most max, in
 * insertion order; free both arrays. */
struct ms_error *ms_py_dict_pairs(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t dict,
                                  size_t max, uint64_t **keys,
                                  uint64_t **values, size_t *n);

/* What frames.c keeps of a code object, shared by all frames running it. */
#define MS_PY_LINE_MEMO 4

struct ms_py_code {
        uint64_t address;
        char *function;
        char *qualname;
        char *file;
        int firstlineno;
        uint8_t *linetable;
        size_t linetable_len;
        /* Address of the first code unit (3.11+), 0 before. */
        uint64_t code_start;
        /* First traceable instruction offset in bytes (3.11+), -1 else. */
        int64_t first_traceable;
        /* Reading failed: the frame shows error instead. */
        char *error;
        /* The lines of the last offsets looked up: recursion repeats them,
         * and decoding a line table is linear in its length. */
        int64_t memo_offset[MS_PY_LINE_MEMO];
        int memo_line[MS_PY_LINE_MEMO];
        unsigned memo_n;
};

/* A cache of decoded code objects keyed by address (open addressing). */
struct ms_py_code_cache {
        struct ms_py_code *slots;
        size_t capacity;
        size_t n;
};

void ms_py_code_cache_deinit(struct ms_py_code_cache *cache);

/* The line of the instruction at byte offset `offset` of code c (negative:
 * the first line); -1 when the table has none. */
int ms_py_code_line(const struct ms_py_layout *l, struct ms_py_code *c,
                    int64_t offset);

/* The decoded code object at address, read on first use. *ret is owned by
 * the cache; NULL only with an error (out of memory). Unreadable code
 * objects are cached too, with their error set. */
struct ms_error *ms_py_code_get(struct ms_py_code_cache *cache,
                                struct ms_target *target,
                                const struct ms_py_layout *l, uint64_t address,
                                struct ms_py_code **ret);

/* Read the Python frames of one thread state (ts holds the copy of the
 * tstate) into thread->frames. */
struct ms_error *ms_py_read_frames(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   struct ms_py_code_cache *cache,
                                   const struct ms_py_blob *ts,
                                   unsigned max_frames,
                                   struct ms_py_thread *thread);

/* Read the pending and handled exceptions of one thread state (ts holds
 * the copy of the tstate) into thread->pending / handled. What cannot be
 * read is noted in the exceptions' error; only running out of memory is
 * an error. */
struct ms_error *ms_py_read_exceptions(struct ms_target *target,
                                       const struct ms_py_layout *l,
                                       struct ms_py_code_cache *cache,
                                       const struct ms_py_blob *ts,
                                       struct ms_py_thread *thread);

/* Read the GIL interpreter `in` uses (gil.c), before its threads. */
/* Read the Python callbacks registered with atexit into in (atexit.c);
 * what cannot be read leaves in->atexit_known false. */
void ms_py_atexit_read(struct ms_target *target, const struct ms_py_layout *l,
                       struct ms_py_interp *in);

void ms_py_gil_read(struct ms_target *target, struct ms_py_runtime *rt,
                    struct ms_py_interp *in);
/* Once every thread is read: each GIL holder's tid, and cross-checks of
 * the GIL against the per-thread flags and tstate_current (warnings). */
void ms_py_gil_resolve(struct ms_py_runtime *rt);

/* Read interpreters and threads of rt (layout and address set). */
struct ms_error *ms_py_read_threads(struct ms_target *target,
                                    struct ms_py_runtime *rt,
                                    unsigned max_frames);

#endif /* MIXSTACK_CPYTHON_INTERNAL_H */
