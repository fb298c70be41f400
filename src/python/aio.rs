//! The asyncio side of the core: a Rust future of the driver becomes a Python awaitable
//! (`pyo3-async-runtimes`), run on the one process runtime ([`crate::runtime`]).
//!
//! The bridge is used through its generic interface with [`ProcessRuntime`], so that it spawns
//! on our runtime (keyed by process id: a forked child gets its own) instead of a second tokio
//! runtime of its own. What the bridge does "blocking" — setting the result on the asyncio future,
//! with the GIL — runs on one lazily started thread, not on tokio's blocking pool, so that a
//! thousand calls finishing together start no thread. Cancelling the asyncio future drops the
//! Rust future (its HTTP requests with it).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

use futures_util::FutureExt;
use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{ContextExt, JoinError, Runtime};
use pyo3_async_runtimes::TaskLocals;

use super::errors::{panicked, to_py};
use crate::error::Error;

/// The process runtime, as the bridge sees it.
pub struct ProcessRuntime;

/// Why a spawned piece of the bridge did not finish.
pub enum Failed {
    Join(tokio::task::JoinError),
    /// No runtime or no result thread could be started, or the result thread went away.
    Unavailable(String),
}

impl JoinError for Failed {
    fn is_panic(&self) -> bool {
        match self {
            Failed::Join(e) => e.is_panic(),
            Failed::Unavailable(_) => true,
        }
    }

    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        match self {
            Failed::Join(e) => match e.try_into_panic() {
                Ok(panic) => panic,
                Err(e) => Box::new(e.to_string()),
            },
            Failed::Unavailable(why) => Box::new(why),
        }
    }
}

type Joined = Pin<Box<dyn Future<Output = Result<(), Failed>> + Send>>;
type Job = Box<dyn FnOnce() + Send>;

/// The thread that hands results to Python, per process id (as the runtime).
static RESULTS: Mutex<Option<(u32, Sender<Job>)>> = Mutex::new(None);

fn results_thread() -> Result<Sender<Job>, String> {
    let pid = std::process::id();
    let mut slot = RESULTS
        .lock()
        .map_err(|_| "the result thread's lock is poisoned".to_owned())?;
    if let Some((p, tx)) = slot.as_ref() {
        if *p == pid {
            return Ok(tx.clone());
        }
    }
    let (tx, rx) = channel::<Job>();
    std::thread::Builder::new()
        .name("stratuslab-asyncio".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                // A job only sets a future's result; a panic there must not end the thread.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
        })
        .map_err(|e| format!("cannot start the asyncio result thread: {e}"))?;
    *slot = Some((pid, tx.clone()));
    Ok(tx)
}

impl Runtime for ProcessRuntime {
    type JoinError = Failed;
    type JoinHandle = Joined;

    fn spawn<F>(fut: F) -> Joined
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match crate::runtime::spawn(fut) {
            Ok(handle) => Box::pin(async move { handle.await.map_err(Failed::Join) }),
            Err(e) => Box::pin(std::future::ready(Err(Failed::Unavailable(e.to_string())))),
        }
    }

    fn spawn_blocking<F>(f: F) -> Joined
    where
        F: FnOnce() + Send + 'static,
    {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let sent = results_thread().and_then(|tx| {
            tx.send(Box::new(move || {
                f();
                let _ = done_tx.send(());
            }))
            .map_err(|_| "the asyncio result thread is gone".to_owned())
        });
        match sent {
            Ok(()) => Box::pin(async move {
                done_rx
                    .await
                    .map_err(|_| Failed::Unavailable("a result was not set".to_owned()))
            }),
            Err(why) => Box::pin(std::future::ready(Err(Failed::Unavailable(why)))),
        }
    }
}

impl ContextExt for ProcessRuntime {
    fn scope<F, R>(_locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        // The driver's futures never call back into Python's event loop: no locals to carry.
        Box::pin(fut)
    }

    fn get_task_locals() -> Option<TaskLocals> {
        None
    }
}

/// A result converted to Python by the bridge, with the GIL, once the Rust future is done.
type Convert = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

pub struct Deferred(Convert);

impl<'py> IntoPyObject<'py> for Deferred {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.0)(py).map(|o| o.into_bound(py))
    }
}

/// An asyncio awaitable of `fut`, whose output becomes Python's with `convert` (its error: the
/// exception the synchronous call raises; a panic: `StratusLabError`).
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
    pyo3_async_runtimes::generic::future_into_py::<ProcessRuntime, _, _>(py, async move {
        let outcome = AssertUnwindSafe(fut).catch_unwind().await;
        Ok(Deferred(Box::new(move |py| match outcome {
            Ok(Ok(value)) => convert(py, value),
            Ok(Err(e)) => Err(to_py(py, &e)),
            Err(panic) => Err(to_py(py, &panicked(&*panic))),
        })))
    })
}
