/*
 * Print the offsets mixstack needs from one CPython version's headers,
 * one "name value" line per field (names from core/cpython/layout_fields.h).
 * Fields a version lacks are simply not printed: scripts/gen-cpython-layouts
 * writes them as -1.
 *
 * Built by scripts/gen-cpython-layouts against each interpreter's headers:
 *
 *     cc -DPy_BUILD_CORE -I<inc>/python3.X -I<inc>/python3.X/internal gen.c
 *
 * The version checks below are unavoidable here (field names differ between
 * versions); everything downstream of this program sees only numbers.
 */
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x03090000
#include "pycore_interp.h"
#include "pycore_runtime.h"
#else
#include "pycore_pystate.h"
#endif
#include "pycore_gil.h"
#if PY_VERSION_HEX >= 0x030b0000
#include "pycore_code.h"
#include "pycore_frame.h"
#endif
#if PY_VERSION_HEX >= 0x030d0000
#include "pycore_tstate.h"
#endif
#if PY_VERSION_HEX >= 0x030b0000
#include "pycore_dict.h"
#else
/* 3.8-3.10 declare the dict keys struct in Objects/dict-common.h, which is
 * not installed. This is that declaration (identical in 3.8, 3.9 and
 * 3.10); the compiler still does the layout. */
typedef struct {
        Py_hash_t me_hash;
        PyObject *me_key;
        PyObject *me_value;
} PyDictKeyEntry;
struct _dictkeysobject {
        Py_ssize_t dk_refcnt;
        Py_ssize_t dk_size;
        void *dk_lookup;
        Py_ssize_t dk_usable;
        Py_ssize_t dk_nentries;
        char dk_indices[];
};
#endif

#define OFF(name, type, member) \
        printf("%s %zu\n", #name, (size_t)offsetof(type, member))
#define SIZE(name, type) printf("%s %zu\n", #name, sizeof(type))
#define VAL(name, v) printf("%s %ld\n", #name, (long)(v))

/* The first set bit of a bit-field, found by setting it in a zeroed struct:
 * the compiler, not a guess, decides where bit-fields go. */
static int first_bit(const void *p, size_t size)
{
        const unsigned char *b = p;
        for (size_t i = 0; i < size * 8; i++) {
                if (b[i / 8] & (1u << (i % 8)))
                        return (int)i;
        }
        return -1;
}

#define STATE_BIT(name, field, value)                                       \
        do {                                                                \
                PyASCIIObject o_;                                           \
                memset(&o_, 0, sizeof(o_));                                 \
                o_.state.field = value;                                     \
                VAL(name,                                                   \
                    first_bit((char *)&o_ + offsetof(PyASCIIObject, state), \
                              4));                                          \
        } while (0)

static void runtime(void)
{
        SIZE(rt_size, _PyRuntimeState);
#if PY_VERSION_HEX >= 0x030b0000
        OFF(rt_initialized, _PyRuntimeState, _initialized);
#endif
        OFF(rt_core_initialized, _PyRuntimeState, core_initialized);
        OFF(rt_py_initialized, _PyRuntimeState, initialized);
#if PY_VERSION_HEX >= 0x03090000
        OFF(rt_finalizing, _PyRuntimeState, _finalizing);
#else
        OFF(rt_finalizing, _PyRuntimeState, finalizing);
#endif
#if PY_VERSION_HEX >= 0x030c0000
        OFF(rt_finalizing_id, _PyRuntimeState, _finalizing_id);
#endif
        OFF(rt_interpreters_head, _PyRuntimeState, interpreters.head);
        OFF(rt_interpreters_main, _PyRuntimeState, interpreters.main);
        OFF(rt_main_thread, _PyRuntimeState, main_thread);
#if PY_VERSION_HEX < 0x030c0000
        OFF(rt_tstate_current, _PyRuntimeState, gilstate.tstate_current);
        OFF(rt_gil, _PyRuntimeState, ceval.gil);
#endif
}

static void interp(void)
{
        SIZE(is_size, PyInterpreterState);
        OFF(is_next, PyInterpreterState, next);
        OFF(is_id, PyInterpreterState, id);
#if PY_VERSION_HEX >= 0x030b0000
        OFF(is_threads_head, PyInterpreterState, threads.head);
#else
        OFF(is_threads_head, PyInterpreterState, tstate_head);
#endif
#if PY_VERSION_HEX >= 0x030d0000
        OFF(is_threads_main, PyInterpreterState, threads.main);
#endif
#if PY_VERSION_HEX >= 0x03090000
        OFF(is_runtime, PyInterpreterState, runtime);
        OFF(is_gc, PyInterpreterState, gc);
        OFF(is_gc_collecting, PyInterpreterState, gc.collecting);
#endif
        OFF(is_finalizing, PyInterpreterState, finalizing);
#if PY_VERSION_HEX >= 0x030c0000
        OFF(is_finalizing_tstate, PyInterpreterState, _finalizing);
#endif
#if PY_VERSION_HEX >= 0x030c0000
        OFF(is_ceval_gil, PyInterpreterState, ceval.gil);
        OFF(is_gil, PyInterpreterState, _gil);
        OFF(is_modules, PyInterpreterState, imports.modules);
#else
        OFF(is_modules, PyInterpreterState, modules);
#endif
        OFF(is_sysdict, PyInterpreterState, sysdict);
        OFF(is_builtins, PyInterpreterState, builtins);
#if PY_VERSION_HEX >= 0x030e0000
        OFF(is_atexit_callbacks, PyInterpreterState, atexit.callbacks);
#elif PY_VERSION_HEX >= 0x030a0000
        OFF(is_atexit_callbacks, PyInterpreterState, atexit.callbacks);
        OFF(is_atexit_ncallbacks, PyInterpreterState, atexit.ncallbacks);
#if PY_VERSION_HEX >= 0x030c0000
        OFF(atexit_cb_func, atexit_py_callback, func);
#else
        OFF(atexit_cb_func, atexit_callback, func);
#endif
#endif

        OFF(gil_last_holder, struct _gil_runtime_state, last_holder);
        OFF(gil_locked, struct _gil_runtime_state, locked);
        OFF(gil_switch_number, struct _gil_runtime_state, switch_number);
        OFF(gil_cond, struct _gil_runtime_state, cond);
        OFF(gil_mutex, struct _gil_runtime_state, mutex);
        OFF(gil_switch_cond, struct _gil_runtime_state, switch_cond);
#ifdef Py_GIL_DISABLED
        OFF(gil_enabled, struct _gil_runtime_state, enabled);
#endif
}

static void tstate(void)
{
        SIZE(ts_size, PyThreadState);
        OFF(ts_prev, PyThreadState, prev);
        OFF(ts_next, PyThreadState, next);
        OFF(ts_interp, PyThreadState, interp);
#if PY_VERSION_HEX < 0x030b0000
        OFF(ts_frame, PyThreadState, frame);
#endif
#if PY_VERSION_HEX >= 0x030a0000 && PY_VERSION_HEX < 0x030d0000
        OFF(ts_cframe, PyThreadState, cframe);
        /* CFrame (3.10) and _PyCFrame (3.11-3.12) differ in name only. */
        OFF(cframe_previous, __typeof__(*((PyThreadState *)0)->cframe),
            previous);
#endif
#if PY_VERSION_HEX >= 0x030b0000 && PY_VERSION_HEX < 0x030d0000
        OFF(cframe_current_frame, _PyCFrame, current_frame);
#endif
#if PY_VERSION_HEX >= 0x030d0000
        OFF(ts_current_frame, PyThreadState, current_frame);
        OFF(ts_state, PyThreadState, state);
        {
                PyThreadState t;
                memset(&t, 0, sizeof(t));
                t._status.holds_gil = 1;
                VAL(ts_status_holds_gil_bit,
                    first_bit((char *)&t + offsetof(PyThreadState, _status),
                              4));
        }
#endif
        OFF(ts_thread_id, PyThreadState, thread_id);
#if PY_VERSION_HEX >= 0x030b0000
        OFF(ts_native_thread_id, PyThreadState, native_thread_id);
        OFF(ts_datastack_chunk, PyThreadState, datastack_chunk);
#endif
        OFF(ts_id, PyThreadState, id);
#if PY_VERSION_HEX >= 0x030c0000
        OFF(ts_status, PyThreadState, _status);
        OFF(ts_current_exception, PyThreadState, current_exception);
#elif PY_VERSION_HEX >= 0x030b0000
        OFF(ts_status, PyThreadState, _initialized);
#endif
#if PY_VERSION_HEX < 0x030c0000
        OFF(ts_curexc_type, PyThreadState, curexc_type);
        OFF(ts_curexc_value, PyThreadState, curexc_value);
        OFF(ts_curexc_traceback, PyThreadState, curexc_traceback);
#endif
        OFF(ts_exc_info, PyThreadState, exc_info);
        OFF(ts_exc_state, PyThreadState, exc_state);

#if PY_VERSION_HEX < 0x030b0000
        OFF(ei_exc_type, _PyErr_StackItem, exc_type);
        OFF(ei_exc_traceback, _PyErr_StackItem, exc_traceback);
#endif
        OFF(ei_exc_value, _PyErr_StackItem, exc_value);
        OFF(ei_previous_item, _PyErr_StackItem, previous_item);
}

static void frames(void)
{
        SIZE(fo_size, PyFrameObject);
        OFF(fo_back, PyFrameObject, f_back);
        OFF(fo_trace, PyFrameObject, f_trace);
        OFF(fo_lineno, PyFrameObject, f_lineno);
#if PY_VERSION_HEX < 0x030b0000
        OFF(fo_code, PyFrameObject, f_code);
        OFF(fo_lasti, PyFrameObject, f_lasti);
        OFF(fo_localsplus, PyFrameObject, f_localsplus);
        OFF(fo_globals, PyFrameObject, f_globals);
        /* 3.10 counts f_lasti in code units, earlier versions in bytes. */
        VAL(fo_lasti_unit, PY_VERSION_HEX >= 0x030a0000 ? 2 : 1);
#else
        OFF(fo_frame, PyFrameObject, f_frame);

        typedef struct _PyInterpreterFrame IF;
        SIZE(if_size, IF);
        OFF(if_previous, IF, previous);
#if PY_VERSION_HEX >= 0x030d0000
        OFF(if_executable, IF, f_executable);
        OFF(if_instr_ptr, IF, instr_ptr);
#else
        OFF(if_executable, IF, f_code);
        OFF(if_instr_ptr, IF, prev_instr);
#endif
        VAL(if_executable_tag_mask, 0);
#if PY_VERSION_HEX >= 0x030c0000
        OFF(if_funcobj, IF, f_funcobj);
        VAL(if_owner_shim, FRAME_OWNED_BY_CSTACK);
#else
        OFF(if_funcobj, IF, f_func);
        OFF(if_is_entry, IF, is_entry);
#endif
        OFF(if_globals, IF, f_globals);
        OFF(if_locals, IF, f_locals);
        OFF(if_frame_obj, IF, frame_obj);
        OFF(if_stacktop, IF, stacktop);
        OFF(if_owner, IF, owner);
        VAL(if_owner_generator, FRAME_OWNED_BY_GENERATOR);
        OFF(if_localsplus, IF, localsplus);

        OFF(gen_iframe, PyGenObject, gi_iframe);
        OFF(gen_frame_state, PyGenObject, gi_frame_state);
#endif
}

static void code(void)
{
        SIZE(co_size, PyCodeObject);
        OFF(co_argcount, PyCodeObject, co_argcount);
        OFF(co_flags, PyCodeObject, co_flags);
        OFF(co_firstlineno, PyCodeObject, co_firstlineno);
        OFF(co_filename, PyCodeObject, co_filename);
        OFF(co_name, PyCodeObject, co_name);
#if PY_VERSION_HEX >= 0x030b0000
        OFF(co_nlocals, PyCodeObject, co_nlocals);
        OFF(co_nlocalsplus, PyCodeObject, co_nlocalsplus);
        OFF(co_varnames, PyCodeObject, co_localsplusnames);
        OFF(co_localspluskinds, PyCodeObject, co_localspluskinds);
        OFF(co_qualname, PyCodeObject, co_qualname);
        OFF(co_linetable, PyCodeObject, co_linetable);
        VAL(co_linetable_format, 3);
        OFF(co_firsttraceable, PyCodeObject, _co_firsttraceable);
        OFF(co_code_adaptive, PyCodeObject, co_code_adaptive);
#else
        OFF(co_nlocals, PyCodeObject, co_nlocals);
        OFF(co_code, PyCodeObject, co_code);
        OFF(co_varnames, PyCodeObject, co_varnames);
#if PY_VERSION_HEX >= 0x030a0000
        OFF(co_linetable, PyCodeObject, co_linetable);
        VAL(co_linetable_format, 2);
#else
        OFF(co_linetable, PyCodeObject, co_lnotab);
        VAL(co_linetable_format, 1);
#endif
#endif
}

static void dict_keys(void)
{
        typedef struct _dictkeysobject DK;
#if PY_VERSION_HEX >= 0x030b0000
        OFF(dk_log2_size, DK, dk_log2_size);
        OFF(dk_log2_index_bytes, DK, dk_log2_index_bytes);
        OFF(dk_kind, DK, dk_kind);
        SIZE(dk_uentry_size, PyDictUnicodeEntry);
        OFF(dk_uentry_key, PyDictUnicodeEntry, me_key);
        OFF(dk_uentry_value, PyDictUnicodeEntry, me_value);
#else
        OFF(dk_size, DK, dk_size);
#endif
        OFF(dk_nentries, DK, dk_nentries);
        OFF(dk_indices, DK, dk_indices);
        SIZE(dk_entry_size, PyDictKeyEntry);
        OFF(dk_entry_key, PyDictKeyEntry, me_key);
        OFF(dk_entry_value, PyDictKeyEntry, me_value);
}

static void objects(void)
{
        OFF(ob_type, PyObject, ob_type);
        OFF(ob_size, PyVarObject, ob_size);
        OFF(tp_name, PyTypeObject, tp_name);
        OFF(tp_flags, PyTypeObject, tp_flags);
        OFF(tp_basicsize, PyTypeObject, tp_basicsize);
        OFF(tp_dict, PyTypeObject, tp_dict);
        OFF(ht_qualname, PyHeapTypeObject, ht_qualname);
        OFF(bytes_sval, PyBytesObject, ob_sval);
        OFF(tuple_item, PyTupleObject, ob_item);
        OFF(list_item, PyListObject, ob_item);
        OFF(dict_used, PyDictObject, ma_used);
        OFF(dict_keys, PyDictObject, ma_keys);
        OFF(dict_values, PyDictObject, ma_values);
#if PY_VERSION_HEX >= 0x030c0000
        OFF(long_tag, PyLongObject, long_value.lv_tag);
        OFF(long_digit, PyLongObject, long_value.ob_digit);
        VAL(long_ndigits_shift, _PyLong_NON_SIZE_BITS);
#else
        OFF(long_tag, PyVarObject, ob_size);
        OFF(long_digit, PyLongObject, ob_digit);
#endif
        VAL(long_digit_bits, PyLong_SHIFT);
        OFF(float_fval, PyFloatObject, ob_fval);
        OFF(fn_code, PyFunctionObject, func_code);
        OFF(meth_func, PyMethodObject, im_func);
        dict_keys();

        OFF(u_length, PyASCIIObject, length);
        OFF(u_state, PyASCIIObject, state);
        SIZE(u_ascii_data, PyASCIIObject);
        SIZE(u_compact_data, PyCompactUnicodeObject);
        STATE_BIT(u_kind_shift, kind, 1);
        STATE_BIT(u_compact_bit, compact, 1);
        STATE_BIT(u_ascii_bit, ascii, 1);
#if PY_VERSION_HEX < 0x030c0000
        OFF(u_wstr, PyASCIIObject, wstr);
        OFF(u_wstr_length, PyCompactUnicodeObject, wstr_length);
        STATE_BIT(u_ready_bit, ready, 1);
#endif

        OFF(exc_args, PyBaseExceptionObject, args);
#if PY_VERSION_HEX >= 0x030b0000
        OFF(exc_notes, PyBaseExceptionObject, notes);
#endif
        OFF(exc_traceback, PyBaseExceptionObject, traceback);
        OFF(exc_context, PyBaseExceptionObject, context);
        OFF(exc_cause, PyBaseExceptionObject, cause);
        OFF(exc_suppress_context, PyBaseExceptionObject, suppress_context);
        OFF(tb_next, PyTracebackObject, tb_next);
        OFF(tb_frame, PyTracebackObject, tb_frame);
        OFF(tb_lasti, PyTracebackObject, tb_lasti);
        OFF(tb_lineno, PyTracebackObject, tb_lineno);
}

int main(void)
{
        printf("version_hex %lu\n", (unsigned long)PY_VERSION_HEX);
#ifdef Py_GIL_DISABLED
        printf("free_threaded 1\n");
#else
        printf("free_threaded 0\n");
#endif
        runtime();
        interp();
        tstate();
        frames();
        code();
        objects();
        return 0;
}
