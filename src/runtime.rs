//! One tokio runtime per process, with a fork guard.
//!
//! Every blocking entry point (the Python bindings, the local cloud's handle) goes through
//! [`block_on`] or [`spawn`]. After `os.fork()` the child cannot use the parent's runtime (its worker
//! threads do not exist in the child), so the runtime is keyed by process id: a child gets a fresh
//! runtime on first use and the parent's is leaked rather than dropped (dropping would wait for
//! threads that are gone).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{AbortHandle, JoinHandle};

use crate::error::{Error, Result};

struct Slot {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Slot>> = Mutex::new(None);

/// The process's runtime, created on first use (and again in a forked child).
pub fn handle() -> Result<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME
        .lock()
        .map_err(|_| Error::internal("runtime lock poisoned"))?;
    if let Some(s) = slot.as_ref() {
        if s.pid == pid {
            return Ok(Arc::clone(&s.runtime));
        }
    }
    if let Some(old) = slot.take() {
        // Forked child: the parent's worker threads are not here; never drop that runtime.
        std::mem::forget(old.runtime);
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stratuslab-io")
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the tokio runtime: {e}")))?;
    let runtime = Arc::new(runtime);
    *slot = Some(Slot {
        pid,
        runtime: Arc::clone(&runtime),
    });
    Ok(runtime)
}

/// Runs a future to completion on the process runtime, from a thread that is not a runtime worker.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    let runtime = handle()?;
    outside_runtime()?;
    Ok(runtime.block_on(future))
}

/// Spawns a task on the process runtime.
pub fn spawn<F>(future: F) -> Result<tokio::task::JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(handle()?.spawn(future))
}

/// A future running on the process runtime, waited for in slices so that the waiting thread can
/// do something between them (the Python bindings check for Ctrl-C). Dropped unfinished, it is
/// cancelled: the future is dropped on the runtime, which closes its connections.
pub struct Task<T> {
    handle: JoinHandle<T>,
    runtime: Arc<Runtime>,
}

impl<T: Send + 'static> Task<T> {
    /// Starts `future` on the process runtime.
    pub fn spawn<F>(future: F) -> Result<Self>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let runtime = handle()?;
        Ok(Task {
            handle: runtime.spawn(future),
            runtime,
        })
    }

    /// Waits at most `slice` (from a thread that is not a runtime worker): `Some` with the
    /// output once the future is done, `None` while it runs. A panic of the future is an error.
    pub fn wait(&mut self, slice: Duration) -> Result<Option<T>> {
        outside_runtime()?;
        let handle = &mut self.handle;
        match self
            .runtime
            .block_on(async { tokio::time::timeout(slice, handle).await })
        {
            Err(_elapsed) => Ok(None),
            Ok(Ok(output)) => Ok(Some(output)),
            Ok(Err(e)) => Err(Error::internal(format!("a bug in the Rust core: {e}"))),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Aborts a spawned task when dropped (a stream whose receiver gives up cancels its producer).
#[derive(Debug)]
pub struct AbortOnDrop(pub AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What [`recv_for`] got.
#[derive(Debug)]
pub enum Received<T> {
    Item(T),
    /// Every sender is gone.
    Closed,
    /// Nothing yet.
    Pending,
}

/// Waits at most `slice` for the next message of `events` (from a thread that is not a runtime
/// worker).
pub fn recv_for<T>(events: &mut UnboundedReceiver<T>, slice: Duration) -> Result<Received<T>> {
    let runtime = handle()?;
    outside_runtime()?;
    Ok(
        match runtime.block_on(async { tokio::time::timeout(slice, events.recv()).await }) {
            Ok(Some(item)) => Received::Item(item),
            Ok(None) => Received::Closed,
            Err(_elapsed) => Received::Pending,
        },
    )
}

fn outside_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::internal(
            "block_on called from inside the runtime (a blocking call from async code)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_runtime_twice() {
        let a = handle().expect("runtime");
        let b = handle().expect("runtime");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(block_on(async { 2 + 2 }).expect("block_on"), 4);
    }

    #[test]
    fn nested_block_on_is_an_error_not_a_panic() {
        let r = block_on(async { block_on(async { 1 }).is_err() }).expect("outer");
        assert!(r);
    }

    #[test]
    fn a_task_is_waited_for_in_slices_and_cancelled_when_dropped() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut task = Task::spawn(async move {
            let _tx = tx; // dropped (closing the channel) when the future is dropped
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        })
        .expect("spawn");
        let started = std::time::Instant::now();
        assert!(task
            .wait(Duration::from_millis(20))
            .expect("wait")
            .is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(task);
        // The future was dropped: its sender is gone.
        assert!(block_on(rx).expect("block_on").is_err());
        let mut quick = Task::spawn(async { 7 }).expect("spawn");
        let mut got = None;
        while got.is_none() {
            got = quick.wait(Duration::from_millis(20)).expect("wait");
        }
        assert_eq!(got, Some(7));
    }

    #[test]
    fn a_panicking_task_is_an_error() {
        let mut task = Task::spawn(async { panic!("boom") }).expect("spawn");
        let mut result = task.wait(Duration::from_millis(50));
        while matches!(result, Ok(None)) {
            result = task.wait(Duration::from_millis(50));
        }
        assert!(result.is_err());
    }

    #[test]
    fn recv_for_says_pending_then_item_then_closed() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        assert!(matches!(
            recv_for(&mut rx, Duration::from_millis(10)).expect("recv"),
            Received::Pending
        ));
        tx.send(3).expect("send");
        drop(tx);
        assert!(matches!(
            recv_for(&mut rx, Duration::from_millis(10)).expect("recv"),
            Received::Item(3)
        ));
        assert!(matches!(
            recv_for(&mut rx, Duration::from_millis(10)).expect("recv"),
            Received::Closed
        ));
    }
}
