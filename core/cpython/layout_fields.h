/*
 * The fields of struct ms_py_layout, as an X-macro list:
 *
 *     MS_PY_FIELD(name, "what it is")
 *
 * Every field is an int32: a byte offset (relative to the start of the
 * struct named by the prefix), a size, or a small fact about the version
 * (marked "fact"). -1 means the version does not have it.
 *
 * This one list defines the struct (layout.h), is what
 * scripts/gen-cpython-layouts prints for every version (so a field
 * missing from a table is written as -1 explicitly, never left as 0), and
 * names the fields in test output. Add a field here, teach
 * scripts/cpython-layouts/gen.c to measure it, and re-run the generator.
 *
 * No include guard: it is meant to be included more than once.
 */

/* _PyRuntimeState (_PyRuntime) */
MS_PY_FIELD(rt_size, "sizeof(_PyRuntimeState)")
MS_PY_FIELD(rt_initialized,
            "_initialized: the runtime struct is set up (3.11+)")
MS_PY_FIELD(rt_core_initialized, "core_initialized")
MS_PY_FIELD(rt_py_initialized, "initialized: Py_Initialize finished")
MS_PY_FIELD(rt_finalizing, "tstate running Py_FinalizeEx ((_)finalizing)")
MS_PY_FIELD(rt_finalizing_id,
            "_finalizing_id: pthread id of the finalizing thread (3.12+)")
MS_PY_FIELD(rt_interpreters_head, "interpreters.head")
MS_PY_FIELD(rt_interpreters_main, "interpreters.main")
MS_PY_FIELD(rt_main_thread, "main_thread (pthread_t)")
MS_PY_FIELD(rt_tstate_current, "gilstate.tstate_current (3.8-3.11)")
MS_PY_FIELD(rt_gil, "runtime-wide struct _gil_runtime_state (3.8-3.11)")

/* PyInterpreterState */
MS_PY_FIELD(is_size, "sizeof(PyInterpreterState)")
MS_PY_FIELD(is_next, "next")
MS_PY_FIELD(is_id, "id (int64)")
MS_PY_FIELD(is_threads_head, "threads head (tstate_head before 3.11)")
MS_PY_FIELD(is_threads_main, "threads.main (3.13+)")
MS_PY_FIELD(is_runtime, "runtime: equals &_PyRuntime (3.9+)")
MS_PY_FIELD(is_finalizing, "finalizing (int)")
MS_PY_FIELD(is_finalizing_tstate,
            "_finalizing: tstate running finalization (3.12+)")
MS_PY_FIELD(is_ceval_gil, "ceval.gil: pointer to the GIL in use (3.12+)")
MS_PY_FIELD(is_gil, "_gil: the interpreter's own GIL struct (3.12+)")
MS_PY_FIELD(is_gc, "gc (struct _gc_runtime_state; 3.9+)")
MS_PY_FIELD(is_gc_collecting, "gc.collecting, relative to the interpreter")
MS_PY_FIELD(is_modules, "sys.modules (modules / imports.modules)")
MS_PY_FIELD(is_sysdict, "sysdict")
MS_PY_FIELD(is_builtins, "builtins")
MS_PY_FIELD(is_atexit_callbacks,
            "atexit.callbacks: atexit_py_callback *[] (3.10-3.13), a list "
            "of (func, args, kwargs) tuples (3.14+)")
MS_PY_FIELD(is_atexit_ncallbacks,
            "atexit.ncallbacks (int; 3.10-3.13); -1 with is_atexit_callbacks: "
            "the callbacks are a list")
MS_PY_FIELD(atexit_cb_func, "atexit_py_callback.func (3.10-3.13)")

/* struct _gil_runtime_state, relative to the GIL struct */
MS_PY_FIELD(gil_enabled, "enabled (free-threaded builds)")
MS_PY_FIELD(gil_last_holder, "last_holder")
MS_PY_FIELD(gil_locked, "locked")
MS_PY_FIELD(gil_switch_number, "switch_number")
MS_PY_FIELD(gil_cond, "cond: the condition variable GIL waiters sleep on")
MS_PY_FIELD(gil_mutex, "mutex: guards the GIL; waiters hold or contend it")
MS_PY_FIELD(gil_switch_cond,
            "switch_cond: where a thread dropping the GIL waits for the "
            "taker (the end of mutex)")

/* PyThreadState */
MS_PY_FIELD(ts_size, "sizeof(PyThreadState)")
MS_PY_FIELD(ts_prev, "prev")
MS_PY_FIELD(ts_next, "next")
MS_PY_FIELD(ts_interp, "interp")
MS_PY_FIELD(ts_frame, "frame: top PyFrameObject* (3.8-3.10)")
MS_PY_FIELD(ts_cframe, "cframe: _PyCFrame* (3.10-3.12)")
MS_PY_FIELD(cframe_current_frame, "_PyCFrame.current_frame (3.11-3.12)")
MS_PY_FIELD(cframe_previous,
            "_PyCFrame.previous (3.10-3.12): the caller eval call's cframe")
MS_PY_FIELD(ts_current_frame, "current_frame (3.13+)")
MS_PY_FIELD(ts_base_frame, "base_frame sentinel pointer (3.15+)")
MS_PY_FIELD(ts_thread_id, "thread_id (pthread_t)")
MS_PY_FIELD(ts_native_thread_id, "native_thread_id (kernel tid; 3.11+)")
MS_PY_FIELD(ts_id, "id (unique in the interpreter)")
MS_PY_FIELD(ts_status, "_initialized (3.11) / _status bit-field word (3.12+)")
MS_PY_FIELD(ts_status_holds_gil_bit,
            "fact: bit of _status that is holds_gil (3.13)")
MS_PY_FIELD(ts_state, "state: detached/attached/suspended (3.13+)")
MS_PY_FIELD(ts_holds_gil, "holds_gil int (3.14+)")
MS_PY_FIELD(ts_gil_requested, "gil_requested int: waiting for the GIL (3.15+)")
MS_PY_FIELD(ts_curexc_type, "curexc_type (3.8-3.11)")
MS_PY_FIELD(ts_curexc_value, "curexc_value (3.8-3.11)")
MS_PY_FIELD(ts_curexc_traceback, "curexc_traceback (3.8-3.11)")
MS_PY_FIELD(ts_current_exception, "current_exception (3.12+)")
MS_PY_FIELD(ts_exc_info, "exc_info: top _PyErr_StackItem*")
MS_PY_FIELD(ts_exc_state, "exc_state: embedded base _PyErr_StackItem")
MS_PY_FIELD(ts_datastack_chunk, "datastack_chunk (3.11+)")

/* _PyErr_StackItem */
MS_PY_FIELD(ei_exc_type, "exc_type (3.8-3.10)")
MS_PY_FIELD(ei_exc_value, "exc_value")
MS_PY_FIELD(ei_exc_traceback, "exc_traceback (3.8-3.10)")
MS_PY_FIELD(ei_previous_item, "previous_item")

/* PyFrameObject */
MS_PY_FIELD(fo_size, "sizeof(PyFrameObject)")
MS_PY_FIELD(fo_back, "f_back")
MS_PY_FIELD(fo_code, "f_code (3.8-3.10)")
MS_PY_FIELD(fo_frame, "f_frame: its _PyInterpreterFrame* (3.11+)")
MS_PY_FIELD(fo_trace, "f_trace")
MS_PY_FIELD(fo_lasti, "f_lasti (3.8-3.10)")
MS_PY_FIELD(fo_lasti_unit,
            "fact: bytes per f_lasti unit (1 in 3.8-3.9, 2 in 3.10)")
MS_PY_FIELD(fo_lineno, "f_lineno")
MS_PY_FIELD(fo_localsplus, "f_localsplus (3.8-3.10)")
MS_PY_FIELD(fo_globals, "f_globals (3.8-3.10)")

/* _PyInterpreterFrame (3.11+) */
MS_PY_FIELD(if_size, "sizeof(_PyInterpreterFrame)")
MS_PY_FIELD(if_previous, "previous")
MS_PY_FIELD(if_executable, "f_code (3.11-3.12) / f_executable (3.13+)")
MS_PY_FIELD(if_executable_tag_mask,
            "fact: low bits of f_executable that are tags (3.14+)")
MS_PY_FIELD(if_funcobj, "f_func / f_funcobj")
MS_PY_FIELD(if_globals, "f_globals")
MS_PY_FIELD(if_locals, "f_locals")
MS_PY_FIELD(if_frame_obj, "frame_obj")
MS_PY_FIELD(if_instr_ptr, "prev_instr (3.11-3.12) / instr_ptr (3.13+)")
MS_PY_FIELD(if_stacktop, "stacktop (int; 3.11-3.13)")
MS_PY_FIELD(if_stackpointer, "stackpointer (3.14+)")
MS_PY_FIELD(if_is_entry, "is_entry (bool; 3.11)")
MS_PY_FIELD(if_owner, "owner (char)")
MS_PY_FIELD(if_owner_generator, "fact: owner value FRAME_OWNED_BY_GENERATOR")
MS_PY_FIELD(if_owner_shim, "fact: lowest owner value of shim frames (CSTACK "
                           "3.12-3.13, INTERPRETER 3.14+)")
MS_PY_FIELD(if_localsplus, "localsplus")
MS_PY_FIELD(if_tlbc_index, "tlbc_index (free-threaded 3.14+)")

/* PyCodeObject */
MS_PY_FIELD(co_size, "sizeof(PyCodeObject)")
MS_PY_FIELD(co_argcount, "co_argcount")
MS_PY_FIELD(co_flags, "co_flags")
MS_PY_FIELD(co_nlocals, "co_nlocals")
MS_PY_FIELD(co_nlocalsplus, "co_nlocalsplus (3.11+)")
MS_PY_FIELD(co_firstlineno, "co_firstlineno (int)")
MS_PY_FIELD(co_code, "co_code bytes (3.8-3.10)")
MS_PY_FIELD(co_varnames, "co_varnames (3.8-3.10) / co_localsplusnames (3.11+)")
MS_PY_FIELD(co_localspluskinds, "co_localspluskinds (3.11+)")
MS_PY_FIELD(co_filename, "co_filename")
MS_PY_FIELD(co_name, "co_name")
MS_PY_FIELD(co_qualname, "co_qualname (3.11+)")
MS_PY_FIELD(co_linetable, "co_lnotab (3.8-3.9) / co_linetable (3.10+)")
MS_PY_FIELD(
        co_linetable_format,
        "fact: 1 lnotab (3.8-3.9), 2 3.10 linetable, 3 location table (3.11+)")
MS_PY_FIELD(co_firsttraceable, "_co_firsttraceable (3.11+)")
MS_PY_FIELD(co_code_adaptive, "co_code_adaptive: first code unit (3.11+)")
MS_PY_FIELD(co_tlbc, "co_tlbc (free-threaded 3.14+)")

/* Objects */
MS_PY_FIELD(ob_type, "PyObject.ob_type")
MS_PY_FIELD(ob_size, "PyVarObject.ob_size")
MS_PY_FIELD(tp_name, "PyTypeObject.tp_name")
MS_PY_FIELD(tp_flags, "PyTypeObject.tp_flags")
MS_PY_FIELD(tp_basicsize, "PyTypeObject.tp_basicsize")
MS_PY_FIELD(tp_dict, "PyTypeObject.tp_dict (a heap type's __dict__)")
MS_PY_FIELD(ht_qualname, "PyHeapTypeObject.ht_qualname")
MS_PY_FIELD(bytes_sval, "PyBytesObject.ob_sval")
MS_PY_FIELD(tuple_item, "PyTupleObject.ob_item")
MS_PY_FIELD(list_item, "PyListObject.ob_item")
MS_PY_FIELD(dict_used, "PyDictObject.ma_used")
MS_PY_FIELD(dict_keys, "PyDictObject.ma_keys")
MS_PY_FIELD(dict_values, "PyDictObject.ma_values")
MS_PY_FIELD(long_tag, "PyLongObject long_value.lv_tag (3.12+); ob_size before")
MS_PY_FIELD(long_digit, "PyLongObject ob_digit")
MS_PY_FIELD(long_ndigits_shift,
            "fact: lv_tag >> this = digit count, low 2 bits = sign (3.12+); "
            "-1: long_tag is the signed ob_size")
MS_PY_FIELD(long_digit_bits, "fact: bits per digit (PyLong_SHIFT)")
MS_PY_FIELD(float_fval, "PyFloatObject.ob_fval")
MS_PY_FIELD(fn_code, "PyFunctionObject.func_code")
MS_PY_FIELD(meth_func, "PyMethodObject.im_func: a bound method's function")

/* PyDictKeysObject and its entries: not objects (no header), so they do not
 * move in free-threaded builds. 3.8-3.10 keep the struct in
 * Objects/dict-common.h, which is not installed; gen.c carries a copy. */
MS_PY_FIELD(dk_size, "dk_size: slots (Py_ssize_t; 3.8-3.10)")
MS_PY_FIELD(dk_log2_size, "dk_log2_size (uint8; 3.11+)")
MS_PY_FIELD(dk_log2_index_bytes, "dk_log2_index_bytes (uint8; 3.11+)")
MS_PY_FIELD(dk_kind,
            "dk_kind (uint8; 3.11+): 0 general entries, else unicode entries")
MS_PY_FIELD(dk_nentries, "dk_nentries")
MS_PY_FIELD(dk_indices, "dk_indices: the index table; the entries follow it")
MS_PY_FIELD(dk_entry_size, "fact: sizeof(PyDictKeyEntry) {hash, key, value}")
MS_PY_FIELD(dk_entry_key, "PyDictKeyEntry.me_key")
MS_PY_FIELD(dk_entry_value, "PyDictKeyEntry.me_value")
MS_PY_FIELD(dk_uentry_size,
            "fact: sizeof(PyDictUnicodeEntry) {key, value} (3.11+)")
MS_PY_FIELD(dk_uentry_key, "PyDictUnicodeEntry.me_key (3.11+)")
MS_PY_FIELD(dk_uentry_value, "PyDictUnicodeEntry.me_value (3.11+)")

/* PyUnicodeObject (PEP 393) */
MS_PY_FIELD(u_length, "PyASCIIObject.length")
MS_PY_FIELD(u_state, "PyASCIIObject.state (bit-field word)")
MS_PY_FIELD(u_ascii_data, "sizeof(PyASCIIObject): compact ASCII data")
MS_PY_FIELD(
        u_compact_data,
        "sizeof(PyCompactUnicodeObject): compact data / legacy data pointer")
MS_PY_FIELD(u_wstr, "wstr (3.8-3.11)")
MS_PY_FIELD(u_wstr_length, "PyCompactUnicodeObject.wstr_length (3.8-3.11)")
MS_PY_FIELD(u_kind_shift, "fact: first bit of state.kind (3 bits)")
MS_PY_FIELD(u_compact_bit, "fact: bit of state.compact")
MS_PY_FIELD(u_ascii_bit, "fact: bit of state.ascii")
MS_PY_FIELD(u_ready_bit, "fact: bit of state.ready (3.8-3.11)")

/* Exceptions and tracebacks */
MS_PY_FIELD(exc_args, "PyBaseExceptionObject.args")
MS_PY_FIELD(exc_notes, "PyBaseExceptionObject.notes (3.11+)")
MS_PY_FIELD(exc_traceback, "PyBaseExceptionObject.traceback")
MS_PY_FIELD(exc_context, "PyBaseExceptionObject.context")
MS_PY_FIELD(exc_cause, "PyBaseExceptionObject.cause")
MS_PY_FIELD(exc_suppress_context, "PyBaseExceptionObject.suppress_context")
MS_PY_FIELD(tb_next, "PyTracebackObject.tb_next")
MS_PY_FIELD(tb_frame, "PyTracebackObject.tb_frame")
MS_PY_FIELD(tb_lasti, "PyTracebackObject.tb_lasti (bytes)")
MS_PY_FIELD(tb_lineno, "PyTracebackObject.tb_lineno")

/* Generators (3.11+) */
MS_PY_FIELD(gen_iframe, "PyGenObject gi_iframe")
MS_PY_FIELD(gen_frame_state, "PyGenObject gi_frame_state")
