//! Fleet operations for Python, thin over [`crate::fleet`]: the fleet runs on the process
//! runtime while the calling thread waits for its events in slices of [`SLICE`] with the GIL
//! released, hands each event to Python (`sink`, which builds the node and reports progress) and
//! checks signals between slices. Ctrl-C (or an exception from `sink`) stops new requests; the
//! requests in flight finish, and the interruption is returned with every outcome.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::convert;
use super::errors::{run, to_py};
use crate::driver::{CreateNode, Driver, NodeRecord};
use crate::error::Error;
use crate::fleet::{self, FleetEvent, FleetNode, FleetOptions, Outcome};

/// How long the waiting thread goes without checking signals.
const SLICE: Duration = Duration::from_millis(100);

/// The arguments of a create shared by every node, as `driver.py` passes them: size name, CPU,
/// RAM MiB, swap MiB, image, public key, public key file, network, context, disks bus, volatile
/// disk GiB. (A plain tuple: its items' own extraction errors, such as the `UnicodeEncodeError`
/// of a lone surrogate, reach the caller unchanged.)
pub type CreateArgs = (
    String,
    u32,
    u64,
    u64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<(String, String)>,
    Option<String>,
    Option<u32>,
);

/// The create of the node `name`.
pub fn request(args: CreateArgs, name: String) -> CreateNode {
    let (
        size_name,
        cpu,
        ram_mib,
        swap_mib,
        image,
        public_key,
        public_key_file,
        network,
        context,
        disks_bus,
        volatile_disk_gib,
    ) = args;
    CreateNode {
        name,
        size_name,
        cpu,
        ram_mib,
        swap_mib,
        image,
        public_key,
        public_key_file,
        network,
        context,
        disks_bus,
        volatile_disk_gib,
    }
}

/// A settle period in seconds (None = [`fleet::DEFAULT_SETTLE`]).
pub fn settle(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!(
            "ex_settle must be ≥ 0 seconds, not {s}"
        ))),
    }
}

/// What a fleet returns to Python: per input item `(value, exception)` (both None when it was
/// never sent), and the interruption that stopped it, if any.
pub type Returned<'py, V> = (Vec<(Option<V>, Option<Py<PyAny>>)>, Option<Py<PyAny>>);

/// The events ready now, waiting up to one slice for the first; false once the fleet has ended.
async fn next_batch<T>(
    events: &mut UnboundedReceiver<FleetEvent<T>>,
) -> (Vec<FleetEvent<T>>, bool) {
    let first = match tokio::time::timeout(SLICE, events.recv()).await {
        Err(_) => return (Vec::new(), true),
        Ok(None) => return (Vec::new(), false),
        Ok(Some(e)) => e,
    };
    let mut batch = vec![first];
    loop {
        match events.try_recv() {
            Ok(e) => batch.push(e),
            Err(TryRecvError::Empty) => return (batch, true),
            Err(TryRecvError::Disconnected) => return (batch, false),
        }
    }
}

/// Runs a fleet to its end (see the module documentation).
fn drive<'py, T, V, Fut>(
    py: Python<'py>,
    fleet: Fleet<T, Fut>,
    convert: impl Fn(Python<'py>, &T) -> PyResult<V> + Copy,
    sink: &Bound<'py, PyAny>,
) -> PyResult<Returned<'py, V>>
where
    T: Send + 'static,
    V: IntoPyObject<'py> + Clone,
    Fut: Future<Output = Vec<Outcome<T>>> + Send + 'static,
{
    let Fleet {
        future,
        mut events,
        cancel,
    } = fleet;
    let handle = crate::runtime::spawn(future).map_err(|e| to_py(py, &e))?;
    let mut stopped: Option<PyErr> = None;
    let stop = |e: PyErr, stopped: &mut Option<PyErr>| {
        cancel.store(true, Ordering::SeqCst);
        if stopped.is_none() {
            *stopped = Some(e);
        }
    };
    let outcome_of = |o: &Outcome<T>| outcome(py, o, convert);
    loop {
        let (batch, open) = match run(py, || crate::runtime::block_on(next_batch(&mut events))) {
            Ok(b) => b,
            Err(e) => {
                stop(e, &mut stopped);
                continue;
            }
        };
        for (i, outcome) in &batch {
            let (value, error) = outcome_of(outcome)?;
            if let Err(e) = sink.call1((*i, value, error)) {
                stop(e, &mut stopped);
            }
        }
        if !open {
            break;
        }
        if let Err(e) = py.check_signals() {
            stop(e, &mut stopped);
        }
    }
    let outcomes = run(py, move || {
        crate::runtime::block_on(handle)?
            .map_err(|e| Error::internal(format!("a fleet task failed: {e}")))
    })?;
    let returned = outcomes
        .iter()
        .map(outcome_of)
        .collect::<PyResult<Vec<_>>>()?;
    Ok((returned, stopped.map(|e| e.into_value(py).into_any())))
}

/// A fleet ready to run: its future, its events and its stop flag.
pub struct Fleet<T, Fut> {
    pub future: Fut,
    pub events: UnboundedReceiver<FleetEvent<T>>,
    pub cancel: Arc<AtomicBool>,
}

/// The fleet of `Core.create_nodes`, checked.
#[allow(clippy::too_many_arguments)]
pub fn create_fleet(
    driver: &Arc<Driver>,
    sites: Vec<String>,
    names: Vec<String>,
    tokens: Vec<Option<String>>,
    args: CreateArgs,
    max_in_flight: usize,
    settle_seconds: Option<f64>,
) -> PyResult<Fleet<NodeRecord, impl Future<Output = Vec<Outcome<NodeRecord>>> + Send + 'static>> {
    if sites.len() != names.len() || tokens.len() != names.len() {
        return Err(PyValueError::new_err(
            "sites, names and tokens must have the same length",
        ));
    }
    check_in_flight(max_in_flight)?;
    let options = FleetOptions {
        create: driver.create_options(settle(settle_seconds)?),
        max_in_flight,
    };
    let nodes: Vec<FleetNode> = sites
        .into_iter()
        .zip(names)
        .zip(tokens)
        .map(|((site, name), token)| FleetNode { site, name, token })
        .collect();
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, events) = mpsc::unbounded_channel();
    let future = fleet::create_nodes(
        Arc::clone(driver),
        request(args, String::new()),
        nodes,
        options,
        Arc::clone(&cancel),
        tx,
    );
    Ok(Fleet {
        future,
        events,
        cancel,
    })
}

/// The fleet of `Core.destroy_nodes`, checked.
pub fn destroy_fleet(
    driver: &Arc<Driver>,
    nodes: Vec<(String, i64)>,
    max_in_flight: usize,
) -> PyResult<Fleet<(), impl Future<Output = Vec<Outcome<()>>> + Send + 'static>> {
    check_in_flight(max_in_flight)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, events) = mpsc::unbounded_channel();
    let future = fleet::destroy_nodes(
        Arc::clone(driver),
        nodes,
        max_in_flight,
        Arc::clone(&cancel),
        tx,
    );
    Ok(Fleet {
        future,
        events,
        cancel,
    })
}

fn check_in_flight(max_in_flight: usize) -> PyResult<()> {
    if max_in_flight == 0 {
        return Err(PyValueError::new_err("ex_max_in_flight must be at least 1"));
    }
    Ok(())
}

/// `(value, exception)` of one item (both None when it was never sent).
pub fn outcome<'py, T, V>(
    py: Python<'py>,
    outcome: &Outcome<T>,
    convert: impl Fn(Python<'py>, &T) -> PyResult<V>,
) -> PyResult<(Option<V>, Option<Py<PyAny>>)> {
    Ok(match outcome {
        Outcome::Done(v) => (Some(convert(py, v)?), None),
        Outcome::Failed(e) => (None, Some(to_py(py, e).into_value(py).into_any())),
        Outcome::NotSent => (None, None),
    })
}

/// `Core.create_nodes`.
#[allow(clippy::too_many_arguments)]
pub fn create_nodes<'py>(
    py: Python<'py>,
    driver: &Arc<Driver>,
    sites: Vec<String>,
    names: Vec<String>,
    tokens: Vec<Option<String>>,
    args: CreateArgs,
    max_in_flight: usize,
    settle_seconds: Option<f64>,
    sink: &Bound<'py, PyAny>,
) -> PyResult<Returned<'py, convert::NodeTuple<'py>>> {
    let f = create_fleet(
        driver,
        sites,
        names,
        tokens,
        args,
        max_in_flight,
        settle_seconds,
    )?;
    drive(py, f, node_tuple, sink)
}

/// A fleet's node as Python's tuple.
pub fn node_tuple<'py>(py: Python<'py>, r: &NodeRecord) -> PyResult<convert::NodeTuple<'py>> {
    convert::node(py, r, &mut convert::Strings::new(py))
}

/// `Core.destroy_nodes`.
pub fn destroy_nodes<'py>(
    py: Python<'py>,
    driver: &Arc<Driver>,
    nodes: Vec<(String, i64)>,
    max_in_flight: usize,
    sink: &Bound<'py, PyAny>,
) -> PyResult<Returned<'py, bool>> {
    let f = destroy_fleet(driver, nodes, max_in_flight)?;
    drive(py, f, |_, ()| Ok(true), sink)
}

/// One fleet item's outcome, to be made Python's `(value, exception)` with the GIL.
type Erased =
    Box<dyn FnOnce(Python<'_>) -> PyResult<(Option<Py<PyAny>>, Option<Py<PyAny>>)> + Send>;

/// How a fleet's value becomes Python's.
type ToPy<T> = fn(Python<'_>, &T) -> PyResult<Py<PyAny>>;

fn erase<T: Send + 'static>(o: Outcome<T>, convert: ToPy<T>) -> Erased {
    Box::new(move |py| outcome(py, &o, convert))
}

type ErasedEvents = std::pin::Pin<Box<dyn futures_util::Stream<Item = (usize, Erased)> + Send>>;

/// A fleet for asyncio (`Core.create_nodes_async`, `Core.destroy_nodes_async`), running on the
/// process runtime from its creation: `next()` awaits the events ready (as the synchronous
/// fleet's `sink` gets them), `stop()` sends no new request (those in flight finish),
/// `outcomes()` awaits every item's outcome, `abort()` (or dropping the object) drops the fleet
/// with its requests in flight.
#[pyclass(frozen, module = "stratuslab_libcloud._stratuslab")]
pub struct AsyncFleet {
    events: Arc<tokio::sync::Mutex<ErasedEvents>>,
    outcomes: std::sync::Mutex<Option<tokio::task::JoinHandle<Vec<Erased>>>>,
    cancel: Arc<AtomicBool>,
    abort: tokio::task::AbortHandle,
}

impl AsyncFleet {
    /// Starts `fleet`, its values made Python's by `convert`.
    pub fn start<T, Fut>(py: Python<'_>, fleet: Fleet<T, Fut>, convert: ToPy<T>) -> PyResult<Self>
    where
        T: Send + 'static,
        Fut: Future<Output = Vec<Outcome<T>>> + Send + 'static,
    {
        let Fleet {
            future,
            mut events,
            cancel,
        } = fleet;
        let handle = crate::runtime::spawn(async move {
            future
                .await
                .into_iter()
                .map(|o| erase(o, convert))
                .collect::<Vec<_>>()
        })
        .map_err(|e| to_py(py, &e))?;
        let stream = futures_util::stream::poll_fn(move |cx| events.poll_recv(cx));
        let stream = futures_util::StreamExt::map(stream, move |(i, o)| (i, erase(o, convert)));
        Ok(AsyncFleet {
            events: Arc::new(tokio::sync::Mutex::new(Box::pin(stream))),
            abort: handle.abort_handle(),
            outcomes: std::sync::Mutex::new(Some(handle)),
            cancel,
        })
    }
}

impl Drop for AsyncFleet {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Aborts a fleet task whose outcomes were awaited by a future that is dropped (cancelled).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[pymethods]
impl AsyncFleet {
    /// An awaitable of the events ready, `[(index, value, exception)]` (at least one), or None
    /// once the fleet has ended.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let events = Arc::clone(&self.events);
        super::aio::awaitable(
            py,
            async move {
                let mut events = events.lock().await;
                let Some(first) = futures_util::StreamExt::next(&mut *events).await else {
                    return Ok(None);
                };
                let mut batch = vec![first];
                while let Some(Some(e)) = futures_util::FutureExt::now_or_never(
                    futures_util::StreamExt::next(&mut *events),
                ) {
                    batch.push(e);
                }
                Ok(Some(batch))
            },
            |py, batch| match batch {
                None => Ok(py.None()),
                Some(batch) => batch
                    .into_iter()
                    .map(|(i, o)| o(py).map(|(value, error)| (i, value, error)))
                    .collect::<PyResult<Vec<_>>>()?
                    .into_py_any(py),
            },
        )
    }

    /// Sends no new request; those in flight finish.
    fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Drops the fleet with its requests in flight.
    fn abort(&self) {
        self.abort.abort();
    }

    /// An awaitable of every item's `(value, exception)`, in input order (both None: never
    /// sent). Once only.
    fn outcomes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let handle = self
            .outcomes
            .lock()
            .map_err(|_| PyValueError::new_err("the fleet's lock is poisoned"))?
            .take()
            .ok_or_else(|| PyValueError::new_err("the fleet's outcomes were already awaited"))?;
        let guard = AbortOnDrop(handle.abort_handle());
        super::aio::awaitable(
            py,
            async move {
                let _guard = guard;
                handle
                    .await
                    .map_err(|e| Error::internal(format!("a fleet task failed: {e}")))
            },
            |py, outcomes| {
                outcomes
                    .into_iter()
                    .map(|o| o(py))
                    .collect::<PyResult<Vec<_>>>()?
                    .into_py_any(py)
            },
        )
    }
}

/// A created node as Python's tuple, for [`AsyncFleet`].
pub fn node_object(py: Python<'_>, r: &NodeRecord) -> PyResult<Py<PyAny>> {
    node_tuple(py, r)?.into_py_any(py)
}

/// A destroyed node, for [`AsyncFleet`].
pub fn destroyed(py: Python<'_>, _: &()) -> PyResult<Py<PyAny>> {
    true.into_py_any(py)
}
