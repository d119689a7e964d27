//! `mixsample`: the Rust half of mixstack's crash samples.
//!
//! Every function here exists to put a real CPython + PyO3 process into a
//! state that a mixed-stack debugger must explain (see crash-samples/README.md).
//! The Python drivers in crash-samples/scenarios/ record the ground truth
//! (manifest.json) through `record` callbacks that this code calls *right
//! before* it blocks or crashes, so the Python frames seen by the callback's
//! caller are exactly the frames a debugger sees in the core.
//!
//! Functions marked `#[inline(never)]` are the native frames that manifests
//! list in `native_expect` / `expect_crash_frame`: keep their names stable.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyOSError;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

// ---------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------

/// Kernel thread id of the calling thread.
fn gettid() -> i64 {
    unsafe { libc::syscall(libc::SYS_gettid) as i64 }
}

fn write_ready(fd: i32) {
    if fd < 0 {
        return;
    }
    let b = [b'R'];
    loop {
        let r = unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, 1) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break;
    }
}

/// Blocks in read(2) on `fd` until EOF (the harness closes the write end
/// only when it goes away). This is the frame snapshot scenarios sit in.
#[inline(never)]
pub fn block_on_pipe(fd: i32) -> isize {
    let mut buf = [0u8; 1];
    loop {
        let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, 1) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return std::hint::black_box(r);
    }
}

static PARK_LOCK: Mutex<bool> = Mutex::new(false);
static PARK_CV: Condvar = Condvar::new();

/// Parks the calling thread forever on a condvar (futex wait).
#[inline(never)]
pub fn park_forever() {
    let mut g = PARK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        g = PARK_CV.wait(g).unwrap_or_else(|e| e.into_inner());
        if *std::hint::black_box(&*g) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// panic bookkeeping: a hook that remembers where the last panic on this
// thread happened (and can hand it to Python *before* an abort).
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct PanicRec {
    message: String,
    file: String,
    line: u32,
    col: u32,
    tid: i64,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<PanicRec>> = const { RefCell::new(None) };
    static ON_PANIC: RefCell<Option<Py<PyAny>>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let rec = PanicRec {
                message: info.payload_as_str().unwrap_or("<non-string payload>").to_string(),
                file: info.location().map(|l| l.file().to_string()).unwrap_or_default(),
                line: info.location().map(|l| l.line()).unwrap_or(0),
                col: info.location().map(|l| l.column()).unwrap_or(0),
                tid: gettid(),
            };
            let _ = LAST_PANIC.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    *c = Some(rec.clone());
                }
            });
            // Armed by abort_in_callback: report the first panic to Python
            // (the process aborts right after this hook returns).
            let cb = ON_PANIC
                .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()))
                .ok()
                .flatten();
            if let Some(cb) = cb {
                Python::attach(|py| {
                    let d = panic_dict(py, &rec);
                    if let Err(e) = cb.bind(py).call1((d,)) {
                        e.print(py);
                    }
                });
            }
            prev(info);
        }));
    });
}

fn panic_dict<'py>(py: Python<'py>, rec: &PanicRec) -> Bound<'py, PyDict> {
    let d = PyDict::new(py);
    let _ = d.set_item("message", &rec.message);
    let _ = d.set_item("file", &rec.file);
    let _ = d.set_item("line", rec.line);
    let _ = d.set_item("col", rec.col);
    let _ = d.set_item("tid", rec.tid);
    d
}

fn take_last_panic() -> Option<PanicRec> {
    LAST_PANIC.with(|c| c.borrow_mut().take())
}

// ---------------------------------------------------------------------------
// general purpose functions
// ---------------------------------------------------------------------------

/// Native tid of the calling thread.
#[pyfunction]
fn native_tid() -> i64 {
    gettid()
}

/// Sets the calling thread's comm (Linux truncates to 15 bytes).
#[pyfunction]
fn set_thread_name(name: &str) -> PyResult<()> {
    let mut bytes: Vec<u8> = name.as_bytes().iter().copied().take(15).collect();
    bytes.push(0);
    let r = unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(PyOSError::new_err("prctl(PR_SET_NAME) failed"));
    }
    Ok(())
}

/// prctl(PR_SET_PDEATHSIG, SIGKILL): the scenario dies with the harness.
#[pyfunction]
fn die_with_parent() -> PyResult<()> {
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(PyOSError::new_err("prctl(PR_SET_PDEATHSIG) failed"));
    }
    Ok(())
}

/// Calls `record()` (if given), signals readiness on `ready_fd` (if >= 0),
/// then blocks reading `fd`, with the GIL held, or released when `detach`.
#[pyfunction]
#[pyo3(signature = (fd, ready_fd=-1, record=None, detach=false))]
fn block_read(
    py: Python<'_>,
    fd: i32,
    ready_fd: i32,
    record: Option<Bound<'_, PyAny>>,
    detach: bool,
) -> PyResult<isize> {
    if let Some(r) = record {
        r.call0()?;
    }
    write_ready(ready_fd);
    if detach {
        Ok(py.detach(move || block_on_pipe(fd)))
    } else {
        Ok(block_on_pipe(fd))
    }
}

// ---------------------------------------------------------------------------
// 1. pending-panic / 2. handled-panic
// ---------------------------------------------------------------------------

#[inline(never)]
pub fn raise_rust_panic(msg: &str) -> ! {
    panic!("{}", msg)
}

/// A panic escaping a #[pyfunction]: PyO3's trampoline turns it into
/// pyo3_runtime.PanicException.
#[pyfunction]
fn panic_now(msg: &str) -> PyResult<()> {
    raise_rust_panic(msg)
}

/// Details of the last panic seen on this thread (message, file, line, col, tid), or None.
#[pyfunction]
fn last_panic(py: Python<'_>) -> Option<Bound<'_, PyDict>> {
    LAST_PANIC.with(|c| c.borrow().as_ref().map(|r| panic_dict(py, r)))
}

#[inline(never)]
pub fn hold_pending_panic(block_fd: i32) -> isize {
    // black_box after the call: no tail call, so this frame stays visible
    let r = block_on_pipe(block_fd);
    std::hint::black_box(r)
}

/// Catches a Rust panic, converts it to PanicException, calls
/// `record(exc, panic_info)`, restores the exception as the thread's pending
/// error (PyErr_Restore / PyErr_SetRaisedException), writes the ready byte and
/// blocks with the GIL held and the error pending.
#[pyfunction]
fn pending_panic(
    py: Python<'_>,
    msg: String,
    block_fd: i32,
    ready_fd: i32,
    record: Bound<'_, PyAny>,
) -> PyResult<()> {
    let payload = match panic::catch_unwind(AssertUnwindSafe(|| raise_rust_panic(&msg))) {
        Ok(never) => never,
        Err(p) => p,
    };
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic from Rust code".to_string());
    let rec = take_last_panic();
    let err = PanicException::new_err((text.clone(),));
    let exc = err.value(py).clone();
    let info = rec.map(|r| panic_dict(py, &r));
    record.call1((exc, info))?;
    err.restore(py);
    write_ready(ready_fd);
    hold_pending_panic(block_fd);
    // Only reached when the harness went away (EOF on the pipe).
    unsafe { pyo3::ffi::PyErr_Clear() };
    Err(PanicException::new_err((text,)))
}

// ---------------------------------------------------------------------------
// 3. abort-in-callback
// ---------------------------------------------------------------------------

/// A C-ABI callback: a panic here cannot unwind out, so Rust aborts through
/// core::panicking::panic_cannot_unwind.
pub extern "C" fn boom_callback(x: u32) -> u32 {
    if std::hint::black_box(x) != 0 {
        panic!("abort-in-callback: boom {}", x);
    }
    x
}

#[inline(never)]
pub fn call_extern_callback(cb: extern "C" fn(u32) -> u32, x: u32) -> u32 {
    let cb = std::hint::black_box(cb);
    let r = cb(x);
    std::hint::black_box(r)
}

/// Arms the panic hook with `on_panic(panic_info)`, then calls an
/// `extern "C"` callback through a function pointer; it panics -> abort.
#[pyfunction]
fn abort_in_callback(x: u32, on_panic: Py<PyAny>) -> u32 {
    ON_PANIC.with(|c| *c.borrow_mut() = Some(on_panic));
    call_extern_callback(boom_callback, x)
}

// ---------------------------------------------------------------------------
// 4. segfault-in-rust / 8. deep-interleave / 10. stripped
// ---------------------------------------------------------------------------

#[inline(never)]
pub fn segfault_now(addr: usize) -> u64 {
    let p = std::hint::black_box(addr) as *const u64;
    unsafe { std::ptr::read_volatile(p) }
}

/// Calls `record()` then reads from address 0x10 (SIGSEGV).
#[pyfunction]
fn segfault(record: Bound<'_, PyAny>) -> PyResult<u64> {
    record.call0()?;
    Ok(segfault_now(0x10))
}

#[inline(never)]
pub fn descend_level<'py>(n: u32, cb: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let r = cb.call1((n.saturating_sub(1),));
    std::hint::black_box(&r);
    r
}

/// Python -> Rust -> Python: calls `cb(n - 1)`.
#[pyfunction]
fn descend<'py>(n: u32, cb: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    descend_level(n, &cb)
}

#[inline(never)]
pub fn bottom_crash(addr: usize) -> u64 {
    segfault_now(std::hint::black_box(addr)).wrapping_add(1)
}

/// The bottom of deep-interleave: `record()` then SIGSEGV.
#[pyfunction]
fn crash_at_bottom(record: Bound<'_, PyAny>) -> PyResult<u64> {
    record.call0()?;
    Ok(bottom_crash(0x10))
}

// ---------------------------------------------------------------------------
// 5. gil-deadlock
// ---------------------------------------------------------------------------

static SHARED: Mutex<u64> = Mutex::new(0);

#[inline(never)]
pub fn lock_shared_mutex() -> u64 {
    let g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    *g
}

#[inline(never)]
pub fn attach_while_holding_mutex(held: &mut u64) {
    Python::attach(|py| {
        *held += 1;
        let _ = std::hint::black_box(py.None());
    });
}

#[inline(never)]
pub fn deadlock_thread_b(tx: mpsc::Sender<i64>, go: mpsc::Receiver<()>) {
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let _ = tx.send(gettid());
    let _ = go.recv();
    attach_while_holding_mutex(&mut g);
}

/// Spawns Rust thread B which locks SHARED then wants the GIL; this thread
/// (holding the GIL) calls `record(b_tid, b_name)` then locks SHARED.
#[pyfunction]
fn gil_deadlock(record: Bound<'_, PyAny>, ready_fd: i32) -> PyResult<u64> {
    let (tx, rx) = mpsc::channel();
    let (gotx, gorx) = mpsc::channel();
    let name = "mix-deadlock-b";
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || deadlock_thread_b(tx, gorx))
        .map_err(|e| PyOSError::new_err(e.to_string()))?;
    let btid = rx.recv().map_err(|e| PyOSError::new_err(e.to_string()))?;
    record.call1((btid, name))?;
    // From here on no Python code runs on this thread: it keeps the GIL.
    let _ = gotx.send(());
    write_ready(ready_fd);
    Ok(lock_shared_mutex())
}

// ---------------------------------------------------------------------------
// 6. gil-hog
// ---------------------------------------------------------------------------

#[inline(never)]
pub fn hog_spin(seconds: f64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut acc: u64 = 0x9e3779b97f4a7c15;
    loop {
        for i in 0..100_000u64 {
            acc = std::hint::black_box(acc.rotate_left(7) ^ i.wrapping_mul(0x2545F4914F6CDD1D));
        }
        if Instant::now() >= deadline {
            return acc;
        }
    }
}

/// `record()`, ready byte, then computes for `seconds` without detaching.
#[pyfunction]
fn gil_hog(record: Bound<'_, PyAny>, ready_fd: i32, seconds: f64) -> PyResult<u64> {
    record.call0()?;
    write_ready(ready_fd);
    Ok(hog_spin(seconds))
}

// ---------------------------------------------------------------------------
// 7. exit-crash
// ---------------------------------------------------------------------------

#[inline(never)]
pub fn abort_now(msg: &str) -> ! {
    eprintln!("{}", msg);
    std::process::abort()
}

/// `record()`, prints `msg` to stderr and calls std::process::abort().
#[pyfunction]
fn exit_abort(msg: &str, record: Bound<'_, PyAny>) -> PyResult<()> {
    record.call0()?;
    abort_now(msg)
}

// ---------------------------------------------------------------------------
// 9. many-threads
// ---------------------------------------------------------------------------

#[inline(never)]
pub fn rust_only_thread(tx: mpsc::Sender<i64>) {
    let _ = tx.send(gettid());
    drop(tx);
    park_forever();
    std::hint::black_box(());
}

/// Spawns `n` Rust threads named `{prefix}{i:02}` that never touch Python
/// and park on a condvar; returns [(tid, name)].
#[pyfunction]
fn spawn_rust_only(n: usize, prefix: &str) -> PyResult<Vec<(i64, String)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("{}{:02}", prefix, i);
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || rust_only_thread(tx))
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let tid = rx.recv().map_err(|e| PyOSError::new_err(e.to_string()))?;
        out.push((tid, name));
    }
    Ok(out)
}

#[inline(never)]
pub fn attached_call_python(cb: Py<PyAny>, name: String) {
    Python::attach(|py| {
        if let Err(e) = cb.bind(py).call1((gettid(), name)) {
            e.print(py);
        }
    });
}

#[inline(never)]
pub fn attached_then_detached(cb: Py<PyAny>, name: String) {
    Python::attach(|py| {
        if let Err(e) = cb.bind(py).call1((gettid(), name)) {
            e.print(py);
        }
        py.detach(park_forever);
    });
}

/// Spawns `n` Rust threads named `{prefix}{i:02}` that attach to Python and
/// call `cb(tid, name)`. With `detach_after`, they then detach and park on a
/// condvar; otherwise `cb` is expected to block (in Python).
#[pyfunction]
fn spawn_attached(n: usize, prefix: &str, cb: Py<PyAny>, detach_after: bool) -> PyResult<Vec<String>> {
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{}{:02}", prefix, i);
        let nm = name.clone();
        let cb = Python::attach(|py| cb.clone_ref(py));
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                if detach_after {
                    attached_then_detached(cb, nm)
                } else {
                    attached_call_python(cb, nm)
                }
            })
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        names.push(name);
    }
    Ok(names)
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// async scenarios: futures made by pyo3-async-runtimes on tokio
// ---------------------------------------------------------------------------

/// Senders kept alive and never used: the futures waiting on their
/// receivers never complete (the channel is never closed either).
static NEVER_TX: Mutex<Vec<tokio::sync::oneshot::Sender<()>>> = Mutex::new(Vec::new());

/// The Rust future of async-rust-never and async-runtime-gone: it waits on
/// a channel nobody sends to.
#[inline(never)]
pub async fn wait_for_channel(rx: tokio::sync::oneshot::Receiver<()>) -> u64 {
    let _ = rx.await;
    0
}

/// A Python awaitable (pyo3-async-runtimes future_into_py on its global
/// tokio runtime) whose Rust future never completes.
#[pyfunction]
fn never_completes(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    NEVER_TX.lock().unwrap().push(tx);
    pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(wait_for_channel(rx).await) })
}

/// A PyO3 `async fn` (a pyo3 Coroutine when called) whose future never
/// completes: it waits on a channel nobody sends to.
#[pyfunction]
async fn never_async() -> u64 {
    let (tx, rx) = tokio::sync::oneshot::channel();
    NEVER_TX.lock().unwrap().push(tx);
    wait_for_channel(rx).await
}

/// Runs on a tokio worker: attaches to Python, which waits for the GIL the
/// event loop thread holds.
#[inline(never)]
pub fn tokio_task_needs_gil() -> u64 {
    Python::attach(|py| std::hint::black_box(py.None().as_ptr() as u64))
}

/// Called on the event loop thread (GIL held): spawn a tokio task that
/// needs the GIL and block on it without detaching. record(tokio_tid) is
/// called once the task runs; the task attaches only after the loop thread
/// stopped running Python (record returned), so the GIL is never handed
/// over in between.
#[inline(never)]
pub fn block_on_gil_task(record: &Bound<'_, PyAny>) -> PyResult<u64> {
    let rt = pyo3_async_runtimes::tokio::get_runtime();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let handle = rt.spawn(async move {
        tx.send(gettid()).ok();
        let _ = go_rx.recv();
        tokio_task_needs_gil();
    });
    let tid = rx.recv().unwrap_or(0);
    record.call1((tid,))?;
    go_tx.send(()).ok();
    let _ = rt.block_on(handle);
    Ok(0)
}

#[pyfunction]
fn loop_blocks_on_tokio(record: Bound<'_, PyAny>) -> PyResult<u64> {
    block_on_gil_task(&record)
}

/// A runtime of its own for async-runtime-gone, shut down while a future
/// made on it is awaited from Python.
static DOOMED: Mutex<Option<tokio::runtime::Runtime>> = Mutex::new(None);

tokio::task_local! {
    static DOOMED_LOCALS: std::cell::OnceCell<pyo3_async_runtimes::TaskLocals>;
}

struct DoomedRuntime;

impl pyo3_async_runtimes::generic::Runtime for DoomedRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        DOOMED.lock().unwrap().as_ref().expect("runtime").spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        DOOMED.lock().unwrap().as_ref().expect("runtime").spawn_blocking(f)
    }
}

impl pyo3_async_runtimes::generic::ContextExt for DoomedRuntime {
    fn scope<F, R>(
        locals: pyo3_async_runtimes::TaskLocals,
        fut: F,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send>>
    where
        F: std::future::Future<Output = R> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(DOOMED_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<pyo3_async_runtimes::TaskLocals> {
        DOOMED_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// A Python awaitable whose Rust future runs on the doomed runtime.
#[pyfunction]
fn doomed_future(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    {
        let mut g = DOOMED.lock().unwrap();
        if g.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("doomed-rt")
                .enable_all()
                .build()
                .map_err(|e| PyOSError::new_err(e.to_string()))?;
            *g = Some(rt);
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    NEVER_TX.lock().unwrap().push(tx);
    pyo3_async_runtimes::generic::future_into_py::<DoomedRuntime, _, _>(py, async move {
        Ok(wait_for_channel(rx).await)
    })
}

/// Shut the doomed runtime down (its threads end, its tasks are dropped):
/// the futures it should complete never are.
#[pyfunction]
fn shutdown_doomed_runtime(py: Python<'_>) {
    let rt = DOOMED.lock().unwrap().take();
    if let Some(rt) = rt {
        py.detach(|| rt.shutdown_timeout(Duration::from_secs(10)));
    }
}

#[pymodule]
fn mixsample(m: &Bound<'_, PyModule>) -> PyResult<()> {
    install_hook();
    m.add_function(wrap_pyfunction!(native_tid, m)?)?;
    m.add_function(wrap_pyfunction!(set_thread_name, m)?)?;
    m.add_function(wrap_pyfunction!(die_with_parent, m)?)?;
    m.add_function(wrap_pyfunction!(block_read, m)?)?;
    m.add_function(wrap_pyfunction!(panic_now, m)?)?;
    m.add_function(wrap_pyfunction!(last_panic, m)?)?;
    m.add_function(wrap_pyfunction!(pending_panic, m)?)?;
    m.add_function(wrap_pyfunction!(abort_in_callback, m)?)?;
    m.add_function(wrap_pyfunction!(segfault, m)?)?;
    m.add_function(wrap_pyfunction!(descend, m)?)?;
    m.add_function(wrap_pyfunction!(crash_at_bottom, m)?)?;
    m.add_function(wrap_pyfunction!(gil_deadlock, m)?)?;
    m.add_function(wrap_pyfunction!(gil_hog, m)?)?;
    m.add_function(wrap_pyfunction!(exit_abort, m)?)?;
    m.add_function(wrap_pyfunction!(spawn_rust_only, m)?)?;
    m.add_function(wrap_pyfunction!(spawn_attached, m)?)?;
    m.add_function(wrap_pyfunction!(never_completes, m)?)?;
    m.add_function(wrap_pyfunction!(never_async, m)?)?;
    m.add_function(wrap_pyfunction!(loop_blocks_on_tokio, m)?)?;
    m.add_function(wrap_pyfunction!(doomed_future, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_doomed_runtime, m)?)?;
    Ok(())
}
