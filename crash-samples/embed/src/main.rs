//! `mixembed`: a Rust program that embeds CPython through PyO3
//! (`auto-initialize`), linked against the interpreter's shared libpython3.X.
//! It is the embedding case of mixstack's crash samples
//! (crash-samples/README.md): the CPython runtime lives in libpython, not in
//! the executable.
//!
//!     mixembed DRIVER.py
//!
//! runs DRIVER.py as `__main__` with the built-in module `mixembed` (the
//! functions below), then finalizes the interpreter from Rust
//! (`Py_FinalizeEx`). Functions marked `#[inline(never)]` are the native
//! frames manifests name: keep their names.

use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;

/// The driver's recorder, called from the panic hook before the abort.
static PANIC_RECORD: OnceLock<Py<PyAny>> = OnceLock::new();

fn tid() -> i64 {
    unsafe { libc::syscall(libc::SYS_gettid) as i64 }
}

/// Kernel thread id of the calling thread.
#[pyfunction]
fn gettid() -> i64 {
    tid()
}

/// Die with the parent (the samples harness), like the extension does.
#[pyfunction]
fn die_with_parent() {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
    }
}

/// `record(message, file, line, col, tid)` is called by the panic hook.
#[pyfunction]
fn set_panic_record(record: Py<PyAny>) {
    let _ = PANIC_RECORD.set(record);
}

/// Calls `cb()`: Python frames run above this Rust frame.
#[pyfunction]
#[inline(never)]
fn rust_step(cb: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let r = call_back(&cb)?;
    Ok(std::hint::black_box(r))
}

#[inline(never)]
fn call_back(cb: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    Ok(cb.call0()?.unbind())
}

/// Panics with `message`; with `panic = "abort"` the program aborts.
#[pyfunction]
#[inline(never)]
fn explode(message: String) {
    panic_now(&message);
}

#[inline(never)]
fn panic_now(message: &str) -> ! {
    panic!("{}", message)
}

/// `record()`, one ready byte on `ready_fd`, then blocks reading `fd` with
/// the GIL held.
#[pyfunction]
#[inline(never)]
fn block_read(record: Bound<'_, PyAny>, fd: i32, ready_fd: i32) -> PyResult<isize> {
    record.call0()?;
    if ready_fd >= 0 {
        let b = [b'R'];
        unsafe { libc::write(ready_fd, b.as_ptr() as *const libc::c_void, 1) };
    }
    Ok(block_on_pipe(fd))
}

#[inline(never)]
fn block_on_pipe(fd: i32) -> isize {
    let mut buf = [0u8; 1];
    loop {
        let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, 1) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return std::hint::black_box(r);
    }
}

#[pymodule]
fn mixembed(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gettid, m)?)?;
    m.add_function(wrap_pyfunction!(die_with_parent, m)?)?;
    m.add_function(wrap_pyfunction!(set_panic_record, m)?)?;
    m.add_function(wrap_pyfunction!(rust_step, m)?)?;
    m.add_function(wrap_pyfunction!(explode, m)?)?;
    m.add_function(wrap_pyfunction!(block_read, m)?)?;
    Ok(())
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            String::new()
        };
        let (file, line, col) = info
            .location()
            .map(|l| (l.file().to_string(), l.line(), l.column()))
            .unwrap_or_default();
        eprintln!("mixembed panicked at {}:{}:{}: {}", file, line, col, message);
        if let Some(record) = PANIC_RECORD.get() {
            Python::attach(|py| {
                let _ = record.call1(py, (message, file, line, col, tid()));
            });
        }
    }));
}

fn main() {
    let path = match std::env::args().nth(1) {
        Some(p) => p,
        None => {
            eprintln!("usage: mixembed DRIVER.py");
            std::process::exit(2);
        }
    };
    let code = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("mixembed: {}: {}", path, e);
        std::process::exit(2);
    });
    install_panic_hook();
    pyo3::append_to_inittab!(mixembed);
    let status = Python::attach(|py| -> i32 {
        let code = CString::new(code).expect("no NUL in the driver");
        let file = CString::new(path.clone()).expect("no NUL in the path");
        match PyModule::from_code(py, &code, &file, c"__main__") {
            Ok(_) => 0,
            Err(e) => {
                e.print(py);
                1
            }
        }
    });
    // Finalize from Rust, as an embedding program does on its way out:
    // atexit handlers, then the interpreter's teardown.
    let rc = unsafe {
        pyo3::ffi::PyGILState_Ensure();
        pyo3::ffi::Py_FinalizeEx()
    };
    std::process::exit(if status != 0 { status } else { rc });
}
