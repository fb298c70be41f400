//! One tokio runtime per process, with a fork guard.
//!
//! Every blocking entry point (the Python bindings, the local cloud's handle) goes through
//! [`block_on`] or [`spawn`]. After `os.fork()` the child cannot use the parent's runtime (its worker
//! threads do not exist in the child), so the runtime is keyed by process id: a child gets a fresh
//! runtime on first use and the parent's is leaked rather than dropped (dropping would wait for
//! threads that are gone).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::{Builder, Runtime};

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
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::internal(
            "block_on called from inside the runtime (a blocking call from async code)",
        ));
    }
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
}
