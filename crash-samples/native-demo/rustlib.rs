// The Rust half of native-demo: nested frames of every shape a mixed stack
// shows (extern "C" entry, generic, closure, inlined function) between C
// callers and a C callee that blocks. Built as a staticlib twice, with legacy
// and with v0 symbol mangling. The LINE: markers are looked up by the tests.
use std::hint::black_box;

extern "C" {
    // native-demo.c: blocks forever in a way chosen by kind.
    fn demo_block(kind: i32) -> i32;
}

// Inlined even at opt-level=0: shows up as an inlined frame in DWARF.
#[inline(always)]
fn inlined_level(kind: i32) -> i64 {
    let r = unsafe { demo_block(kind) }; // LINE:rust_inlined_call
    r as i64 + 1
}

#[inline(never)]
fn closure_level(kind: i32) -> i64 {
    let call = |k: i32| -> i64 {
        inlined_level(k) // LINE:rust_closure_call
    };
    black_box(call(kind)) + 1 // LINE:rust_closure_level_call
}

#[inline(never)]
fn generic_level<T: Copy + Into<i64>>(value: T, kind: i32) -> i64 {
    let r = closure_level(kind); // LINE:rust_generic_call
    black_box(r) + value.into()
}

#[no_mangle]
pub extern "C" fn demo_rust_worker(kind: i32) -> i64 {
    if kind % 2 == 0 {
        return generic_level::<i32>(kind, kind) + 1; // LINE:rust_worker_call_i32
    }
    generic_level::<u8>(kind as u8, kind) + 1 // LINE:rust_worker_call_u8
}

#[inline(never)]
fn do_crash(how: i32) -> i32 {
    if how == 1 {
        panic!("native-demo panic (how={how})"); // LINE:rust_panic
    }
    // A null write the compiler cannot drop.
    let p: *mut i32 = black_box(std::ptr::null_mut());
    unsafe { p.write_volatile(how) }; // LINE:rust_segv
    how
}

#[inline(never)]
fn crash_generic<T: Copy + Into<i64>>(how: T) -> i64 {
    let run = |h: i64| -> i64 {
        do_crash(h as i32) as i64 // LINE:rust_crash_closure_call
    };
    black_box(run(how.into())) + 1 // LINE:rust_crash_generic_call
}

#[no_mangle]
pub extern "C" fn demo_rust_crash(how: i32) -> i64 {
    crash_generic::<i32>(how) + 1 // LINE:rust_crash_call
}
