// A Rust program for tests/unit/test_rust_panic.c, built there with plain
// rustc and -C panic=abort: it panics, and its SIGABRT handler writes one
// byte to stdout and then waits forever, so that the test can attach to the
// process in the middle of the abort with the panic's traces still in
// memory. "altstack" runs the handler on a sigaltstack, as faulthandler
// does, so the stack scan has to start from the interrupted context.
//
// The test finds the panic's line and column from the @PANIC marker.
use std::ptr::null_mut;

#[repr(C)]
struct SigAction {
    handler: usize,
    mask: [u64; 16],
    flags: i32,
    restorer: usize,
}

#[repr(C)]
struct Stack {
    sp: *mut u8,
    flags: i32,
    size: usize,
}

extern "C" {
    fn sigaction(sig: i32, act: *const SigAction, old: *mut SigAction) -> i32;
    fn sigaltstack(ss: *const Stack, old: *mut Stack) -> i32;
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
    fn pause() -> i32;
}

const SIGABRT: i32 = 6;
const SA_ONSTACK: i32 = 0x0800_0000;
const ALT_SIZE: usize = 64 * 1024;

extern "C" fn on_abort(_sig: i32) {
    unsafe {
        write(1, b"A".as_ptr(), 1);
        loop {
            pause();
        }
    }
}

#[inline(never)]
fn fixture_inner(x: u32) -> u32 {
    if std::hint::black_box(x) > 0 {
        panic!("fixture panic x={}", x); // @PANIC
    }
    x
}

fn main() {
    let alt = std::env::args().nth(1).as_deref() == Some("altstack");
    unsafe {
        if alt {
            let stack = Box::leak(vec![0u8; ALT_SIZE].into_boxed_slice());
            let ss = Stack { sp: stack.as_mut_ptr(), flags: 0, size: ALT_SIZE };
            sigaltstack(&ss, null_mut());
        }
        let act = SigAction {
            handler: on_abort as *const () as usize,
            mask: [0; 16],
            flags: if alt { SA_ONSTACK } else { 0 },
            restorer: 0,
        };
        sigaction(SIGABRT, &act, null_mut());
    }
    let r = fixture_inner(std::hint::black_box(7));
    std::process::exit(r as i32);
}
