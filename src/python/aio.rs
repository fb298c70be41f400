//! The asyncio side of the core: a Rust future of the driver becomes an asyncio future, run on
//! the one process runtime ([`crate::runtime`]), its result set from the event loop's own thread.
//!
//! Each running event loop that awaits calls gets one completion queue while it has calls
//! pending: a finished Rust future pushes its outcome there (no GIL) and, if no wake-up is in
//! flight, writes one byte to a socket pair whose reading end the loop watches (`add_reader`).
//! The loop then converts and sets every finished result in one callback: one wake-up for a
//! batch of completions, no thread and no GIL hand-off per call, and the conversion to Python
//! runs in the loop's thread. The reader is removed when the loop's last pending call is
//! settled. Cancelling the asyncio future aborts the Rust task (its HTTP requests are dropped).

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::FutureExt;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use super::errors::{panicked, to_py};
use crate::error::Error;

/// A finished future's result, made Python's with the GIL in the loop's thread.
type Convert = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// One settled call: its asyncio future, its cancel callback, and the result (`None`: the Rust
/// task was dropped before it finished, as when it was cancelled).
struct Done {
    future: Py<PyAny>,
    cancel: Py<Cancel>,
    result: Option<Convert>,
}

/// The completions of one event loop, and its wake-up.
struct Queue {
    done: Mutex<Vec<Done>>,
    /// A wake-up byte is in flight (set by the first completion after a drain).
    armed: AtomicBool,
    /// Calls created and not yet settled (touched by the loop's thread only).
    pending: AtomicUsize,
    tx: UnixStream,
    rx: UnixStream,
    runtime: Arc<Runtime>,
}

impl Queue {
    fn push(&self, done: Done) {
        if let Ok(mut items) = self.done.lock() {
            items.push(done);
        }
        if !self.armed.swap(true, Ordering::SeqCst) {
            // A full socket means a wake-up is already there; any other failure leaves the
            // completion for the next one.
            let _ = (&self.tx).write(&[1]);
        }
    }
}

/// The loops with calls pending, by the loop object's address (kept alive by the entry), per
/// process id (a forked child starts with none).
struct Entry {
    queue: Arc<Queue>,
    event_loop: Py<PyAny>,
}

type Loops = (u32, HashMap<usize, Entry>);

static LOOPS: Mutex<Option<Loops>> = Mutex::new(None);

fn loops() -> PyResult<std::sync::MutexGuard<'static, Option<Loops>>> {
    LOOPS.lock().map_err(|_| {
        pyo3::exceptions::PyRuntimeError::new_err("the asyncio queue's lock is poisoned")
    })
}

/// The queue of `event_loop` with one more call pending, watched by the loop.
fn queue_of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Queue>> {
    let key = event_loop.as_ptr() as usize;
    let pid = std::process::id();
    let (stale, closed_candidates) = {
        let mut slot = loops()?;
        let stale = match slot.as_ref() {
            Some((p, _)) if *p == pid => None,
            _ => slot.replace((pid, HashMap::new())),
        };
        let Some((_, map)) = slot.as_mut() else {
            return Err(to_py(py, &Error::internal("no asyncio queue table")));
        };
        if let Some(entry) = map.get(&key) {
            entry.queue.pending.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(&entry.queue));
        }
        let others: Vec<(usize, Py<PyAny>)> = map
            .iter()
            .map(|(k, e)| (*k, e.event_loop.clone_ref(py)))
            .collect();
        (stale, others)
    };
    drop(stale);
    // Loops closed with calls pending never drain again: forget them (outside the lock).
    let mut closed = Vec::new();
    for (k, lp) in closed_candidates {
        if lp
            .bind(py)
            .call_method0(intern!(py, "is_closed"))?
            .is_truthy()?
        {
            closed.push(k);
        }
    }
    let runtime = crate::runtime::handle().map_err(|e| to_py(py, &e))?;
    let (tx, rx) = UnixStream::pair()
        .and_then(|(tx, rx)| {
            tx.set_nonblocking(true)?;
            rx.set_nonblocking(true)?;
            Ok((tx, rx))
        })
        .map_err(|e| {
            to_py(
                py,
                &Error::internal(format!("cannot make the asyncio wake-up: {e}")),
            )
        })?;
    let queue = Arc::new(Queue {
        done: Mutex::new(Vec::new()),
        armed: AtomicBool::new(false),
        pending: AtomicUsize::new(1),
        tx,
        rx,
        runtime,
    });
    let drain = Drain {
        queue: Arc::clone(&queue),
        event_loop: event_loop.clone().unbind(),
    };
    event_loop.call_method1(intern!(py, "add_reader"), (queue.rx.as_raw_fd(), drain))?;
    let removed: Vec<Entry> = {
        let mut slot = loops()?;
        let mut removed = Vec::new();
        if let Some((_, map)) = slot.as_mut() {
            for k in closed {
                removed.extend(map.remove(&k));
            }
            map.insert(
                key,
                Entry {
                    queue: Arc::clone(&queue),
                    event_loop: event_loop.clone().unbind(),
                },
            );
        }
        removed
    };
    drop(removed);
    Ok(queue)
}

/// The loop's reader callback: settles every finished call.
#[pyclass(frozen)]
struct Drain {
    queue: Arc<Queue>,
    event_loop: Py<PyAny>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let q = &self.queue;
        // Empty the socket first, then disarm: a completion that finds the queue armed after
        // this point is in the batch taken below, and one that disarms it writes a byte that
        // this read cannot have consumed (disarming before the read loses that byte and hangs).
        let mut buf = [0u8; 64];
        while let Ok(64) = (&q.rx).read(&mut buf) {}
        q.armed.store(false, Ordering::SeqCst);
        let batch = match q.done.lock() {
            Ok(mut items) => std::mem::take(&mut *items),
            Err(_) => Vec::new(),
        };
        let n = batch.len();
        for done in batch {
            settle(py, done);
        }
        if n > 0 && q.pending.fetch_sub(n, Ordering::Relaxed) == n {
            // The loop's last call: stop watching (a new call makes a new queue).
            let key = self.event_loop.as_ptr() as usize;
            let entry = {
                let mut slot = loops()?;
                match slot.as_mut() {
                    Some((_, map)) if map.get(&key).is_some_and(|e| Arc::ptr_eq(&e.queue, q)) => {
                        map.remove(&key)
                    }
                    _ => None,
                }
            };
            if entry.is_some() {
                self.event_loop
                    .bind(py)
                    .call_method1(intern!(py, "remove_reader"), (q.rx.as_raw_fd(),))?;
            }
        }
        Ok(())
    }
}

/// Sets a settled call's asyncio future (unless it was cancelled).
fn settle(py: Python<'_>, done: Done) {
    let future = done.future.bind(py);
    // A cancelled future has already run (and dropped) its callbacks: nothing is removed.
    let removed = future
        .call_method1(intern!(py, "remove_done_callback"), (done.cancel,))
        .and_then(|n| n.extract::<usize>());
    if !matches!(removed, Ok(1..)) {
        return;
    }
    let outcome = match done.result {
        None => Err(to_py(
            py,
            &Error::internal("a bug in the Rust core: the task ended without a result"),
        )),
        Some(convert) => match catch_unwind(AssertUnwindSafe(|| convert(py))) {
            Ok(r) => r,
            Err(panic) => Err(to_py(py, &panicked(&*panic))),
        },
    };
    let set = match outcome {
        Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
        Err(e) => future.call_method1(intern!(py, "set_exception"), (e.into_value(py),)),
    };
    if let Err(e) = set {
        e.write_unraisable(py, Some(future));
    }
}

/// The asyncio future's done callback: aborts the Rust task (a no-op once it has finished).
#[pyclass(frozen)]
struct Cancel {
    abort: OnceLock<AbortHandle>,
}

#[pymethods]
impl Cancel {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }
}

/// In the Rust task: pushes its call's completion once, when finished or dropped.
struct Slot {
    queue: Arc<Queue>,
    call: Option<(Py<PyAny>, Py<Cancel>)>,
}

impl Slot {
    fn finish(&mut self, result: Option<Convert>) {
        if let Some((future, cancel)) = self.call.take() {
            self.queue.push(Done {
                future,
                cancel,
                result,
            });
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.finish(None);
    }
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// An asyncio future of `fut` on the running loop (`RuntimeError` outside one), whose output
/// becomes Python's with `convert` (its error: the exception the synchronous call raises; a
/// panic: `StratusLabError`).
pub fn awaitable<'py, T, Fut, C>(
    py: Python<'py>,
    fut: Fut,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    let cancel = Py::new(
        py,
        Cancel {
            abort: OnceLock::new(),
        },
    )?;
    let queue = queue_of(py, &event_loop)?;
    let mut slot = Slot {
        queue: Arc::clone(&queue),
        call: Some((future.clone().unbind(), cancel.clone_ref(py))),
    };
    let handle = queue.runtime.spawn(async move {
        let outcome = AssertUnwindSafe(fut).catch_unwind().await;
        slot.finish(Some(Box::new(move |py| match outcome {
            Ok(Ok(value)) => convert(py, value),
            Ok(Err(e)) => Err(to_py(py, &e)),
            Err(panic) => Err(to_py(py, &panicked(&*panic))),
        })));
    });
    let _ = cancel.get().abort.set(handle.abort_handle());
    future.call_method1(intern!(py, "add_done_callback"), (cancel,))?;
    Ok(future)
}
