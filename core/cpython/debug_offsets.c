/*
 * Layout tables: lookup, and _Py_DebugOffsets (3.13+) merged over them.
 *
 * _Py_DebugOffsets is an 8-byte cookie followed by uint64 fields only, so
 * each known version of the struct is just the ordered list of its fields
 * (the declaration order of Include/internal/pycore_debug_offsets.h). A
 * field's position is 8 + 8 * its index. There is no size field: the list
 * is chosen by the version the struct declares, then validated.
 */
#include <string.h>

#include "cpython/internal.h"

const struct ms_py_layout *ms_py_layout_find(int major, int minor)
{
        for (size_t i = 0; i < ms_py_n_layouts; i++) {
                const struct ms_py_layout *l = &ms_py_layouts[i];
                if ((int)(l->version_hex >> 24) == major &&
                    (int)((l->version_hex >> 16) & 0xff) == minor &&
                    !l->free_threaded)
                        return l;
        }
        return NULL;
}

static const char *const field_names[] = {
#define MS_PY_FIELD(name, doc) #name,
#include "cpython/layout_fields.h"
#undef MS_PY_FIELD
};

static const size_t field_offsets[] = {
#define MS_PY_FIELD(name, doc) offsetof(struct ms_py_layout, name),
#include "cpython/layout_fields.h"
#undef MS_PY_FIELD
};

const char *ms_py_layout_field(const struct ms_py_layout *layout, size_t i,
                               int32_t *value)
{
        if (i >= MS_ARRAY_SIZE(field_names))
                return NULL;
        memcpy(value, (const char *)layout + field_offsets[i], sizeof(*value));
        return field_names[i];
}

void ms_py_layout_make_free_threaded(struct ms_py_layout *l)
{
        /* Fields inside objects (prefixes below) move with the header. */
        static const char *const object_prefixes[] = {
                "fo_",   "co_",   "ob_",   "tp_",    "bytes_", "tuple_",
                "list_", "dict_", "long_", "float_", "u_",     "exc_",
                "tb_",   "gen_",  "ht_",   "fn_",    "meth_",
        };
        static const char *const facts[] = {
                "fo_lasti_unit",      "co_linetable_format", "u_kind_shift",
                "u_compact_bit",      "u_ascii_bit",         "u_ready_bit",
                "long_ndigits_shift", "long_digit_bits",
        };
        if (l->free_threaded)
                return;
        for (size_t i = 0; i < MS_ARRAY_SIZE(field_names); i++) {
                const char *name = field_names[i];
                bool object = false;
                for (size_t j = 0; j < MS_ARRAY_SIZE(object_prefixes); j++)
                        object |= strncmp(name, object_prefixes[j],
                                          strlen(object_prefixes[j])) == 0;
                for (size_t j = 0; j < MS_ARRAY_SIZE(facts); j++)
                        object &= strcmp(name, facts[j]) != 0;
                int32_t *v = (int32_t *)((char *)l + field_offsets[i]);
                /* Sizes grow by 16 as well; "co_size" etc. match the prefix. */
                if (object && *v >= 0)
                        *v += 16;
        }
        /* The atexit state lies elsewhere in a free-threaded interpreter
         * (and holds a lock first): no free-threaded table places it. */
        l->is_atexit_callbacks = -1;
        l->free_threaded = true;
}

/* The fields of _Py_DebugOffsets mixstack uses; D_SKIP for the others. */
enum dof {
        D_SKIP,
        D_VERSION,
        D_FREE_THREADED,
        D_RT_SIZE,
        D_RT_FINALIZING,
        D_RT_INTERPRETERS_HEAD,
        D_IS_SIZE,
        D_IS_ID,
        D_IS_NEXT,
        D_IS_THREADS_HEAD,
        D_IS_THREADS_MAIN,
        D_IS_GC,
        D_IS_MODULES,
        D_IS_SYSDICT,
        D_IS_BUILTINS,
        D_IS_CEVAL_GIL,
        D_IS_GIL,
        D_GIL_ENABLED,
        D_IS_GIL_LOCKED,
        D_IS_GIL_HOLDER,
        D_TS_SIZE,
        D_TS_PREV,
        D_TS_NEXT,
        D_TS_INTERP,
        D_TS_CURRENT_FRAME,
        D_TS_BASE_FRAME,
        D_TS_THREAD_ID,
        D_TS_NATIVE_THREAD_ID,
        D_TS_DATASTACK_CHUNK,
        D_TS_STATUS,
        D_TS_HOLDS_GIL,
        D_TS_GIL_REQUESTED,
        D_TS_CURRENT_EXCEPTION,
        D_TS_EXC_STATE,
        D_EI_EXC_VALUE,
        D_IF_SIZE,
        D_IF_PREVIOUS,
        D_IF_EXECUTABLE,
        D_IF_INSTR_PTR,
        D_IF_LOCALSPLUS,
        D_IF_OWNER,
        D_IF_STACKPOINTER,
        D_IF_TLBC_INDEX,
        D_CO_SIZE,
        D_CO_FILENAME,
        D_CO_NAME,
        D_CO_QUALNAME,
        D_CO_LINETABLE,
        D_CO_FIRSTLINENO,
        D_CO_ARGCOUNT,
        D_CO_LOCALSPLUSNAMES,
        D_CO_LOCALSPLUSKINDS,
        D_CO_CODE_ADAPTIVE,
        D_CO_TLBC,
        D_OB_SIZE,
        D_OB_TYPE,
        D_TP_SIZE,
        D_TP_NAME,
        D_TP_FLAGS,
        D_TP_BASICSIZE,
        D_HT_SIZE,
        D_HT_CACHED_KEYS,
        D_TUPLE_SIZE,
        D_TUPLE_ITEM,
        D_TUPLE_OB_SIZE,
        D_LIST_SIZE,
        D_LIST_ITEM,
        D_DICT_SIZE,
        D_DICT_KEYS,
        D_DICT_VALUES,
        D_FLOAT_SIZE,
        D_FLOAT_FVAL,
        D_LONG_SIZE,
        D_LONG_TAG,
        D_LONG_DIGIT,
        D_BYTES_SIZE,
        D_BYTES_SVAL,
        D_U_SIZE,
        D_U_STATE,
        D_U_LENGTH,
        D_U_ASCII_SIZE,
        D_U_COMPACT_SIZE,
        D_GC_SIZE,
        D_GC_COLLECTING,
        D_COUNT,
};

/* Groups shared by several versions, in declaration order. */
#define DO_HEAD                                                 \
        D_VERSION, D_FREE_THREADED, D_RT_SIZE, D_RT_FINALIZING, \
                D_RT_INTERPRETERS_HEAD
#define DO_INTERP_313                                                      \
        D_IS_SIZE, D_IS_ID, D_IS_NEXT, D_IS_THREADS_HEAD, D_IS_GC,         \
                D_IS_MODULES, D_IS_SYSDICT, D_IS_BUILTINS, D_IS_CEVAL_GIL, \
                D_IS_GIL, D_GIL_ENABLED, D_IS_GIL_LOCKED, D_IS_GIL_HOLDER
#define DO_INTERP_314                                                        \
        D_IS_SIZE, D_IS_ID, D_IS_NEXT, D_IS_THREADS_HEAD, D_IS_THREADS_MAIN, \
                D_IS_GC, D_IS_MODULES, D_IS_SYSDICT, D_IS_BUILTINS,          \
                D_IS_CEVAL_GIL, D_IS_GIL, D_GIL_ENABLED, D_IS_GIL_LOCKED,    \
                D_IS_GIL_HOLDER, D_SKIP /* code_object_generation */,        \
                D_SKIP /* tlbc_generation */
#define DO_TS_TAIL \
        D_TS_THREAD_ID, D_TS_NATIVE_THREAD_ID, D_TS_DATASTACK_CHUNK, D_TS_STATUS
#define DO_IF_313                                                  \
        D_IF_SIZE, D_IF_PREVIOUS, D_IF_EXECUTABLE, D_IF_INSTR_PTR, \
                D_IF_LOCALSPLUS, D_IF_OWNER
#define DO_CODE_313                                                         \
        D_CO_SIZE, D_CO_FILENAME, D_CO_NAME, D_CO_QUALNAME, D_CO_LINETABLE, \
                D_CO_FIRSTLINENO, D_CO_ARGCOUNT, D_CO_LOCALSPLUSNAMES,      \
                D_CO_LOCALSPLUSKINDS, D_CO_CODE_ADAPTIVE
#define DO_TYPE_313                                                       \
        D_OB_SIZE, D_OB_TYPE, D_TP_SIZE, D_TP_NAME, D_SKIP /* tp_repr */, \
                D_TP_FLAGS
#define DO_SEQ                                                                 \
        D_TUPLE_SIZE, D_TUPLE_ITEM, D_TUPLE_OB_SIZE, D_LIST_SIZE, D_LIST_ITEM, \
                D_SKIP                        /* list ob_size */
#define DO_SET D_SKIP, D_SKIP, D_SKIP, D_SKIP /* set size/used/table/mask */
#define DO_SCALARS                                                           \
        D_DICT_SIZE, D_DICT_KEYS, D_DICT_VALUES, D_FLOAT_SIZE, D_FLOAT_FVAL, \
                D_LONG_SIZE, D_LONG_TAG, D_LONG_DIGIT, D_BYTES_SIZE,         \
                D_SKIP /* bytes ob_size */, D_BYTES_SVAL
#define DO_UNICODE_313 D_U_SIZE, D_U_STATE, D_U_LENGTH, D_U_ASCII_SIZE
#define DO_GEN_LLIST                                             \
        D_SKIP, D_SKIP, D_SKIP, D_SKIP /* gen_object */, D_SKIP, \
                D_SKIP /* llist_node */
#define DO_DEBUGGER D_SKIP, D_SKIP, D_SKIP, D_SKIP, D_SKIP, D_SKIP

static const uint8_t fields_313[] = {
        DO_HEAD,    DO_INTERP_313,  D_TS_SIZE,          D_TS_PREV,
        D_TS_NEXT,  D_TS_INTERP,    D_TS_CURRENT_FRAME, DO_TS_TAIL,
        DO_IF_313,  DO_CODE_313,    DO_TYPE_313,        DO_SEQ,
        DO_SCALARS, DO_UNICODE_313, D_GC_SIZE,          D_GC_COLLECTING,
};

static const uint8_t fields_314[] = {
        DO_HEAD,
        DO_INTERP_314,
        D_TS_SIZE,
        D_TS_PREV,
        D_TS_NEXT,
        D_TS_INTERP,
        D_TS_CURRENT_FRAME,
        DO_TS_TAIL,
        DO_IF_313,
        D_IF_STACKPOINTER,
        D_IF_TLBC_INDEX,
        DO_CODE_313,
        D_CO_TLBC,
        DO_TYPE_313,
        DO_SEQ,
        DO_SET,
        DO_SCALARS,
        DO_UNICODE_313,
        D_GC_SIZE,
        D_GC_COLLECTING,
        DO_GEN_LLIST,
        DO_DEBUGGER,
};

/* 3.15 as of the newest pre-release known (888 bytes). */
#define DO_315(LAST_PROFILED_FRAME_SEQ)                                        \
        DO_HEAD, DO_INTERP_314, D_TS_SIZE, D_TS_PREV, D_TS_NEXT, D_TS_INTERP,  \
                D_TS_CURRENT_FRAME, D_TS_BASE_FRAME,                           \
                D_SKIP /* last_profiled_frame */,                              \
                LAST_PROFILED_FRAME_SEQ DO_TS_TAIL, D_TS_HOLDS_GIL,            \
                D_TS_GIL_REQUESTED, D_TS_CURRENT_EXCEPTION, D_TS_EXC_STATE,    \
                D_EI_EXC_VALUE, DO_IF_313, D_IF_STACKPOINTER, D_IF_TLBC_INDEX, \
                DO_CODE_313, D_CO_TLBC, D_OB_SIZE, D_OB_TYPE, D_TP_SIZE,       \
                D_TP_NAME, D_SKIP /* tp_repr */, D_TP_FLAGS, D_TP_BASICSIZE,   \
                D_SKIP /* tp_dictoffset */, D_HT_SIZE, D_HT_CACHED_KEYS,       \
                DO_SEQ, DO_SET, DO_SCALARS, DO_UNICODE_313, D_U_COMPACT_SIZE,  \
                D_GC_SIZE, D_GC_COLLECTING, D_SKIP /* gc.frame */, D_SKIP,     \
                D_SKIP /* generation_stats(_size) */, DO_GEN_LLIST,            \
                DO_DEBUGGER

#define DO_SEQ_PRESENT D_SKIP /* last_profiled_frame_seq */,
#define DO_SEQ_ABSENT
static const uint8_t fields_315[] = {DO_315(DO_SEQ_PRESENT)};
/* The ~3.15b1 layout, before last_profiled_frame_seq was added. */
static const uint8_t fields_315b1[] = {DO_315(DO_SEQ_ABSENT)};

/* sizeof(_Py_DebugOffsets) = 8 + 8 * fields (cpython-internals.md §1a). */
_Static_assert(8 + 8 * MS_ARRAY_SIZE(fields_313) == 584, "3.13 layout");
_Static_assert(8 + 8 * MS_ARRAY_SIZE(fields_314) == 760, "3.14 layout");
_Static_assert(8 + 8 * MS_ARRAY_SIZE(fields_315) == 888, "3.15 layout");
_Static_assert(8 + 8 * MS_ARRAY_SIZE(fields_315b1) == 880, "3.15b1 layout");

struct do_variant {
        const char *name;
        /* Versions declaring themselves in [min_hex, max_hex) use it. */
        uint32_t min_hex, max_hex;
        const uint8_t *fields;
        size_t n_fields;
};

/* Candidates are tried in order; the first that validates wins. Versions
 * past the newest known try the newest layouts. */
static const struct do_variant variants[] = {
        {"3.13", 0x030d0000, 0x030e0000, fields_313, MS_ARRAY_SIZE(fields_313)},
        {"3.14", 0x030e0000, 0x030f0000, fields_314, MS_ARRAY_SIZE(fields_314)},
        {"3.15", 0x030f0000, 0xffffffff, fields_315, MS_ARRAY_SIZE(fields_315)},
        {"3.15b1", 0x030f0000, 0xffffffff, fields_315b1,
         MS_ARRAY_SIZE(fields_315b1)},
};

/* Which layout field each debug-offsets field sets, and which size field
 * bounds it (it must lie inside the struct it describes). */
struct do_map {
        uint8_t field;
        uint8_t bound;
        size_t layout_offset;
};

#define M(d, bound, field) {d, bound, offsetof(struct ms_py_layout, field)}
static const struct do_map maps[] = {
        M(D_RT_FINALIZING, D_RT_SIZE, rt_finalizing),
        M(D_RT_INTERPRETERS_HEAD, D_RT_SIZE, rt_interpreters_head),
        M(D_IS_ID, D_IS_SIZE, is_id),
        M(D_IS_NEXT, D_IS_SIZE, is_next),
        M(D_IS_THREADS_HEAD, D_IS_SIZE, is_threads_head),
        M(D_IS_THREADS_MAIN, D_IS_SIZE, is_threads_main),
        M(D_IS_GC, D_IS_SIZE, is_gc),
        M(D_IS_MODULES, D_IS_SIZE, is_modules),
        M(D_IS_SYSDICT, D_IS_SIZE, is_sysdict),
        M(D_IS_BUILTINS, D_IS_SIZE, is_builtins),
        M(D_IS_CEVAL_GIL, D_IS_SIZE, is_ceval_gil),
        M(D_IS_GIL, D_IS_SIZE, is_gil),
        M(D_TS_PREV, D_TS_SIZE, ts_prev),
        M(D_TS_NEXT, D_TS_SIZE, ts_next),
        M(D_TS_INTERP, D_TS_SIZE, ts_interp),
        M(D_TS_CURRENT_FRAME, D_TS_SIZE, ts_current_frame),
        M(D_TS_BASE_FRAME, D_TS_SIZE, ts_base_frame),
        M(D_TS_THREAD_ID, D_TS_SIZE, ts_thread_id),
        M(D_TS_NATIVE_THREAD_ID, D_TS_SIZE, ts_native_thread_id),
        M(D_TS_DATASTACK_CHUNK, D_TS_SIZE, ts_datastack_chunk),
        M(D_TS_STATUS, D_TS_SIZE, ts_status),
        M(D_TS_HOLDS_GIL, D_TS_SIZE, ts_holds_gil),
        M(D_TS_GIL_REQUESTED, D_TS_SIZE, ts_gil_requested),
        M(D_TS_CURRENT_EXCEPTION, D_TS_SIZE, ts_current_exception),
        M(D_TS_EXC_STATE, D_TS_SIZE, ts_exc_state),
        M(D_EI_EXC_VALUE, D_SKIP, ei_exc_value),
        M(D_IF_PREVIOUS, D_IF_SIZE, if_previous),
        M(D_IF_EXECUTABLE, D_IF_SIZE, if_executable),
        M(D_IF_INSTR_PTR, D_IF_SIZE, if_instr_ptr),
        M(D_IF_LOCALSPLUS, D_IF_SIZE, if_localsplus),
        M(D_IF_OWNER, D_IF_SIZE, if_owner),
        M(D_IF_STACKPOINTER, D_IF_SIZE, if_stackpointer),
        M(D_CO_FILENAME, D_CO_SIZE, co_filename),
        M(D_CO_NAME, D_CO_SIZE, co_name),
        M(D_CO_QUALNAME, D_CO_SIZE, co_qualname),
        M(D_CO_LINETABLE, D_CO_SIZE, co_linetable),
        M(D_CO_FIRSTLINENO, D_CO_SIZE, co_firstlineno),
        M(D_CO_ARGCOUNT, D_CO_SIZE, co_argcount),
        M(D_CO_LOCALSPLUSNAMES, D_CO_SIZE, co_varnames),
        M(D_CO_LOCALSPLUSKINDS, D_CO_SIZE, co_localspluskinds),
        /* co_code_adaptive is a flexible array: it may equal the size. */
        M(D_CO_CODE_ADAPTIVE, D_SKIP, co_code_adaptive),
        M(D_OB_TYPE, D_OB_SIZE, ob_type),
        M(D_TP_NAME, D_TP_SIZE, tp_name),
        M(D_TP_FLAGS, D_TP_SIZE, tp_flags),
        M(D_TP_BASICSIZE, D_TP_SIZE, tp_basicsize),
        M(D_TUPLE_ITEM, D_TUPLE_SIZE, tuple_item),
        M(D_TUPLE_OB_SIZE, D_TUPLE_SIZE, ob_size),
        M(D_LIST_ITEM, D_LIST_SIZE, list_item),
        M(D_DICT_KEYS, D_DICT_SIZE, dict_keys),
        M(D_DICT_VALUES, D_DICT_SIZE, dict_values),
        M(D_FLOAT_FVAL, D_FLOAT_SIZE, float_fval),
        M(D_LONG_TAG, D_LONG_SIZE, long_tag),
        M(D_LONG_DIGIT, D_SKIP, long_digit),
        M(D_BYTES_SVAL, D_BYTES_SIZE, bytes_sval),
        M(D_U_STATE, D_U_SIZE, u_state),
        M(D_U_LENGTH, D_U_SIZE, u_length),
        M(D_U_ASCII_SIZE, D_U_SIZE, u_ascii_data),
        M(D_U_COMPACT_SIZE, D_U_SIZE, u_compact_data),
        M(D_IS_SIZE, D_SKIP, is_size),
        M(D_RT_SIZE, D_SKIP, rt_size),
        M(D_TS_SIZE, D_SKIP, ts_size),
        M(D_IF_SIZE, D_SKIP, if_size),
        M(D_CO_SIZE, D_SKIP, co_size),
};
#undef M

/* Largest plausible sizes: the runtime and interpreter structs are big
 * (hundreds of KiB), everything else small. */
static uint64_t size_limit(uint8_t field)
{
        return field == D_RT_SIZE || field == D_IS_SIZE ? (64u << 20) : 65536;
}

static bool decode(const struct do_variant *v, const uint8_t *buf, size_t size,
                   uint64_t vals[D_COUNT], bool have[D_COUNT])
{
        memset(have, 0, D_COUNT * sizeof(bool));
        if (8 + 8 * v->n_fields > size)
                return false;
        for (size_t i = 0; i < v->n_fields; i++) {
                uint8_t f = v->fields[i];
                if (f == D_SKIP)
                        continue;
                memcpy(&vals[f], buf + 8 + 8 * i, 8);
                have[f] = true;
        }
        return true;
}

static bool plausible(const uint64_t vals[D_COUNT], const bool have[D_COUNT])
{
        static const uint8_t sizes[] = {
                D_RT_SIZE, D_IS_SIZE, D_TS_SIZE,    D_IF_SIZE, D_CO_SIZE,
                D_OB_SIZE, D_TP_SIZE, D_TUPLE_SIZE, D_U_SIZE,  D_BYTES_SIZE,
        };
        for (size_t i = 0; i < MS_ARRAY_SIZE(sizes); i++) {
                uint64_t s = vals[sizes[i]];
                if (!have[sizes[i]] || s == 0 || s > size_limit(sizes[i]))
                        return false;
        }
        /* Cheap invariants that a wrong variant fails: the header of an
         * object and of a variable-size object. */
        if (vals[D_OB_TYPE] != 8 && vals[D_OB_TYPE] != 24)
                return false;
        if (vals[D_TUPLE_OB_SIZE] != 16 && vals[D_TUPLE_OB_SIZE] != 32)
                return false;
        if (vals[D_FREE_THREADED] > 1)
                return false;
        for (size_t i = 0; i < MS_ARRAY_SIZE(maps); i++) {
                const struct do_map *m = &maps[i];
                if (!have[m->field])
                        continue;
                uint64_t bound = m->bound != D_SKIP && have[m->bound]
                                         ? vals[m->bound]
                                         : size_limit(D_SKIP);
                if (vals[m->field] >= bound && m->bound != D_SKIP)
                        return false;
                if (vals[m->field] > size_limit(D_RT_SIZE))
                        return false;
        }
        /* The GIL fields are relative to the interpreter and must lie in
         * its _gil struct. */
        if (vals[D_IS_GIL_LOCKED] < vals[D_IS_GIL] ||
            vals[D_IS_GIL_HOLDER] < vals[D_IS_GIL] ||
            vals[D_IS_GIL_LOCKED] - vals[D_IS_GIL] > 256 ||
            vals[D_IS_GIL_HOLDER] - vals[D_IS_GIL] > 256)
                return false;
        return true;
}

static void merge(const uint64_t vals[D_COUNT], const bool have[D_COUNT],
                  struct ms_py_layout *l)
{
        /* The atexit state is not described; it follows builtins at a
         * fixed distance within a minor version (3.14.5 moved both by 24
         * bytes), so it moves with builtins. */
        if (have[D_IS_BUILTINS] && l->is_builtins >= 0 &&
            l->is_atexit_callbacks >= 0) {
                int64_t moved = (int64_t)vals[D_IS_BUILTINS] - l->is_builtins;
                int64_t atexit = l->is_atexit_callbacks + moved;
                l->is_atexit_callbacks =
                        atexit > 0 && (uint64_t)atexit < size_limit(D_IS_SIZE)
                                ? (int32_t)atexit
                                : -1;
        }
        for (size_t i = 0; i < MS_ARRAY_SIZE(maps); i++) {
                const struct do_map *m = &maps[i];
                if (!have[m->field])
                        continue;
                int32_t v = (int32_t)vals[m->field];
                memcpy((char *)l + m->layout_offset, &v, sizeof(v));
        }
        /* The table's waiting places follow locked at fixed distances
         * (a free-threaded GIL starts with `enabled`, moving them all). */
        int32_t locked = (int32_t)(vals[D_IS_GIL_LOCKED] - vals[D_IS_GIL]);
        int32_t moved = l->gil_locked >= 0 ? locked - l->gil_locked : 0;
        int32_t *waits[] = {&l->gil_cond, &l->gil_mutex, &l->gil_switch_cond};
        for (size_t i = 0; i < MS_ARRAY_SIZE(waits); i++) {
                if (*waits[i] >= 0)
                        *waits[i] += moved;
        }
        l->gil_locked = locked;
        l->gil_last_holder = (int32_t)(vals[D_IS_GIL_HOLDER] - vals[D_IS_GIL]);
        if (have[D_GC_COLLECTING] && l->is_gc >= 0)
                l->is_gc_collecting = l->is_gc + (int32_t)vals[D_GC_COLLECTING];
        /* FT-only fields are 0 in GIL builds, where they do not exist. */
        bool ft = vals[D_FREE_THREADED] == 1;
        l->gil_enabled = ft ? (int32_t)vals[D_GIL_ENABLED] : -1;
        if (have[D_IF_TLBC_INDEX])
                l->if_tlbc_index = ft ? (int32_t)vals[D_IF_TLBC_INDEX] : -1;
        if (have[D_CO_TLBC])
                l->co_tlbc = ft ? (int32_t)vals[D_CO_TLBC] : -1;
        /* ht_qualname directly precedes ht_cached_keys (every version
         * since 3.3); 3.15 describes only the latter. A zero size means
         * the group was left empty. */
        uint64_t ck = vals[D_HT_CACHED_KEYS];
        if (have[D_HT_CACHED_KEYS] && ck >= 8 && ck < vals[D_HT_SIZE] &&
            vals[D_HT_SIZE] <= size_limit(D_HT_SIZE))
                l->ht_qualname = (int32_t)(ck - 8);
        /* 3.15 marks the bottom of every stack with base_frame. */
        if (!have[D_TS_BASE_FRAME])
                l->ts_base_frame = -1;
        l->free_threaded = ft;
}

struct ms_error *ms_py_debug_offsets_parse(const uint8_t *buf, size_t size,
                                           struct ms_py_layout *layout,
                                           uint32_t *version_hex,
                                           bool *free_threaded)
{
        if (size < 24 ||
            memcmp(buf, MS_PY_DEBUG_COOKIE, MS_PY_DEBUG_COOKIE_LEN) != 0)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "no _Py_DebugOffsets cookie");
        uint64_t version;
        memcpy(&version, buf + 8, 8);
        if (version >> 24 != 3)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "_Py_DebugOffsets version 0x%" PRIx64,
                                       version);
        bool any = false;
        for (size_t i = 0; i < MS_ARRAY_SIZE(variants); i++) {
                const struct do_variant *v = &variants[i];
                if (version < v->min_hex || version >= v->max_hex)
                        continue;
                any = true;
                uint64_t vals[D_COUNT] = {0};
                bool have[D_COUNT];
                if (!decode(v, buf, size, vals, have) || !plausible(vals, have))
                        continue;
                merge(vals, have, layout);
                *version_hex = (uint32_t)version;
                *free_threaded = vals[D_FREE_THREADED] == 1;
                return NULL;
        }
        if (!any)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "no known _Py_DebugOffsets layout for "
                                       "version 0x%08" PRIx64,
                                       version);
        return ms_error_create(MS_ERROR_BAD_INPUT,
                               "_Py_DebugOffsets of version 0x%08" PRIx64
                               " fail validation",
                               version);
}
