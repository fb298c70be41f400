//! `Core`: the driver core behind `StratusLabNodeDriver`. Shareable between threads (`frozen`,
//! no interior Python state); every network call releases the GIL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule};
use pyo3::IntoPyObjectExt;

use super::aio;
use super::convert;
use super::errors::{block, run, to_py, SIGNAL_CHECK};
use crate::config::{self, Overrides};
use crate::driver::{
    by_site, CreateNode, Driver, DriverOptions, ImageCollector, ImageFilter, NodeAction,
    NodeCollector, NodeRecord, NodeStream, NodesListed,
};
use crate::http::{ProxyOptions, RetryPolicy, TlsOptions};
use crate::pieces::Work;
use crate::runtime::{recv_for, Received};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::driver::ImageStream;
use crate::marketplace::ImageEntry;

/// Configuration text as given by Python: `str` or `bytes`.
#[derive(FromPyObject)]
pub enum ConfigInput {
    Text(String),
    Bytes(Vec<u8>),
}

#[pyclass(frozen, module = "stratuslab_libcloud._stratuslab")]
pub struct Core {
    driver: Arc<Driver>,
}

pub(super) type Failures<'py> = Vec<(String, Bound<'py, PyAny>)>;

/// Pauses Python's cyclic garbage collector while a listing's records are converted; the pause
/// nests. The first listing to start disables the collector only if it is enabled, and the last
/// to finish enables it again only if that first one disabled it, so two concurrent listings,
/// or a user who disabled the collector themselves, never have it re-enabled under them. Entered and left with the GIL held.
struct GcPaused<'py>(Bound<'py, PyModule>);

/// How many listings are converting records now, and whether the first of them disabled the
/// collector (`false` when it was already disabled).
struct GcPauses {
    depth: usize,
    disabled_by_us: bool,
}

static GC_PAUSES: std::sync::Mutex<GcPauses> = std::sync::Mutex::new(GcPauses {
    depth: 0,
    disabled_by_us: false,
});

fn gc_pauses() -> std::sync::MutexGuard<'static, GcPauses> {
    GC_PAUSES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'py> GcPaused<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let gc = py.import(intern!(py, "gc"))?;
        let mut pauses = gc_pauses();
        if pauses.depth == 0 && gc.call_method0(intern!(py, "isenabled"))?.is_truthy()? {
            gc.call_method0(intern!(py, "disable"))?;
            pauses.disabled_by_us = true;
        }
        pauses.depth += 1;
        Ok(GcPaused(gc))
    }
}

impl Drop for GcPaused<'_> {
    fn drop(&mut self) {
        let mut pauses = gc_pauses();
        pauses.depth = pauses.depth.saturating_sub(1);
        if pauses.depth == 0 && std::mem::take(&mut pauses.disabled_by_us) {
            // Nothing sensible to do if this fails; the collector stays as it is.
            let _ = self.0.call_method0(intern!(self.0.py(), "enable"));
        }
    }
}

type LocationTuple<'py> = (String, String, String, Bound<'py, PyDict>);

#[pymethods]
impl Core {
    #[new]
    #[pyo3(signature = (*, config, origin, env, args, default_site, timeout, verify, ca_file, retry_attempts, retry_delay, backoff, proxy_all=None, proxy_https=None, proxy_http=None, no_proxy=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config: Option<ConfigInput>,
        origin: Option<String>,
        env: BTreeMap<String, String>,
        args: BTreeMap<String, String>,
        default_site: Option<String>,
        timeout: Option<f64>,
        verify: bool,
        ca_file: Option<String>,
        retry_attempts: u32,
        retry_delay: f64,
        backoff: f64,
        proxy_all: Option<String>,
        proxy_https: Option<String>,
        proxy_http: Option<String>,
        no_proxy: Option<String>,
    ) -> PyResult<Self> {
        if let Some(t) = timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "timeout must be a positive number of seconds, not {t}"
                )));
            }
        }
        if !(retry_delay.is_finite() && retry_delay >= 0.0 && backoff.is_finite() && backoff >= 1.0)
        {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "retry_delay must be ≥ 0 and backoff ≥ 1",
            ));
        }
        run(py, move || {
            let overrides = Overrides {
                default_site,
                env: config::env_overrides(env),
                args,
            };
            let origin = origin.unwrap_or_else(|| "<configuration>".to_owned());
            let settings = match config {
                Some(ConfigInput::Text(t)) => {
                    config::resolve(&config::parse_str(&t, &origin)?, &overrides)?
                }
                Some(ConfigInput::Bytes(b)) => {
                    config::resolve(&config::parse_bytes(&b, &origin)?, &overrides)?
                }
                None => config::resolve_without_file(&overrides)?,
            };
            let options = DriverOptions {
                timeout: timeout.map(Duration::from_secs_f64),
                tls: TlsOptions {
                    insecure: !verify,
                    ca_file: ca_file.map(Into::into),
                    client_cert: None,
                    client_key: None,
                },
                retry: RetryPolicy {
                    attempts: retry_attempts.max(1),
                    delay: Duration::from_secs_f64(retry_delay),
                    backoff,
                },
                proxy: ProxyOptions {
                    all: proxy_all,
                    https: proxy_https,
                    http: proxy_http,
                    no_proxy,
                },
            };
            Ok(Core {
                driver: Arc::new(Driver::new(settings, &options)?),
            })
        })
    }

    /// Sends every later request of every site through these proxies (`proxy_all`: all of
    /// them, as libcloud's `set_http_proxy`; all `None`: direct connections).
    #[pyo3(signature = (proxy_all=None, proxy_https=None, proxy_http=None, no_proxy=None))]
    fn set_proxy(
        &self,
        py: Python<'_>,
        proxy_all: Option<String>,
        proxy_https: Option<String>,
        proxy_http: Option<String>,
        no_proxy: Option<String>,
    ) -> PyResult<()> {
        let proxy = ProxyOptions {
            all: proxy_all,
            https: proxy_https,
            http: proxy_http,
            no_proxy,
        };
        let driver = Arc::clone(&self.driver);
        run(py, move || driver.set_proxy(&proxy))
    }

    /// The operations of plain OpenNebula sites (images, volumes, networks).
    fn opennebula(&self) -> super::opennebula::PlainSites {
        super::opennebula::PlainSites {
            driver: Arc::clone(&self.driver),
        }
    }

    fn site_names(&self) -> Vec<String> {
        self.driver.sites().iter().map(|s| s.name.clone()).collect()
    }

    fn default_site(&self) -> String {
        self.driver.default_site().to_owned()
    }

    /// `[(id, name, country, extra)]`; extra holds the endpoints, `username` and
    /// `endpoint_timeout` (never a password).
    fn locations<'py>(&self, py: Python<'py>) -> PyResult<Vec<LocationTuple<'py>>> {
        self.driver
            .sites()
            .iter()
            .map(|s| {
                let extra = PyDict::new(py);
                extra.set_item("compute_endpoint", s.one.url())?;
                extra.set_item("pdisk_endpoint", s.pdisk.base_url())?;
                extra.set_item("marketplace_endpoint", s.marketplace.endpoint())?;
                extra.set_item("username", s.settings.get("username"))?;
                extra.set_item("site_type", s.kind.name())?;
                let timeout = s
                    .settings
                    .endpoint_timeout()
                    .map_err(|e| to_py(py, &e.into()))?;
                extra.set_item("endpoint_timeout", timeout)?;
                Ok((
                    s.name.clone(),
                    s.display_name.clone(),
                    s.country.clone(),
                    extra,
                ))
            })
            .collect()
    }

    /// `[(name, cpu, ram_mib, swap_mib)]`
    fn sizes(&self) -> Vec<(String, u32, u64, u64)> {
        self.driver
            .instance_types()
            .iter()
            .map(|t| (t.name.clone(), t.cpu, t.ram_mib, t.swap_mib))
            .collect()
    }

    /// The nodes of every selected site (or one), each built by `build(*record)` (a
    /// [`convert::NodeTuple`]) as soon as its piece of the site's reply is read: the reading
    /// goes on, without the GIL, on other threads while the objects are built here. Returns the
    /// nodes, the failed sites, and the sites whose volumes are unknown (pdisk failed; raised
    /// when `strict`). Without `volumes`, pdisk is not asked.
    #[pyo3(signature = (site, strict, build, volumes = true))]
    fn list_nodes<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
        build: Bound<'py, PyAny>,
        volumes: bool,
    ) -> PyResult<(Bound<'py, PyList>, Failures<'py>, Failures<'py>)> {
        let driver = Arc::clone(&self.driver);
        let NodeStream {
            sites,
            mut events,
            producer: _producer,
        } = run(py, move || driver.stream_nodes(site.as_deref(), volumes))?;
        let _paused = GcPaused::new(py)?;
        let mut strings = convert::Strings::new(py);
        let mut listing = NodeCollector::new(&sites);
        let mut done = Vec::new();
        let mut count = 0;
        let mut build_all = |records: Vec<NodeRecord>, out: &mut Vec<Bound<'py, PyAny>>| {
            out.reserve(records.len());
            for r in &records {
                out.push(build.call1(convert::node(py, r, &mut strings)?)?);
            }
            count += records.len();
            done.push(records);
            Ok::<(), PyErr>(())
        };
        consume(py, &mut events, |event| listing.take(event, &mut build_all))?;
        free_elsewhere(done, count);
        let listed = listing.finish(strict).map_err(|e| to_py(py, &e))?;
        Ok((
            PyList::new(py, listed.nodes.items)?,
            failures(py, listed.nodes.failures),
            failures(py, listed.volumes_unknown),
        ))
    }

    /// One node, and pdisk's error when its volumes are unknown.
    fn get_node<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
    ) -> PyResult<(convert::NodeTuple<'py>, Option<Bound<'py, PyAny>>)> {
        let driver = Arc::clone(&self.driver);
        got_node(
            py,
            block(py, async move { driver.get_node(&site, vm_id).await })?,
        )
    }

    /// One node, created exactly once ([`crate::fleet`]); `args` are [`super::fleet::CreateArgs`].
    #[pyo3(signature = (site, name, args, client_token, settle))]
    fn create_node<'py>(
        &self,
        py: Python<'py>,
        site: String,
        name: String,
        args: super::fleet::CreateArgs,
        client_token: Option<String>,
        settle: Option<f64>,
    ) -> PyResult<convert::NodeTuple<'py>> {
        let r = block(
            py,
            self.create_work(site, name, args, client_token, settle)?,
        )?;
        super::fleet::node_tuple(py, &r)
    }

    /// Acts on a node; returns the error of a cleanup after the action that failed
    /// (`destroy` releasing the node's pdisk mounts), to be warned about.
    fn node_action<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
        action: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let cleanup = block(py, self.action_work(site, vm_id, action))?;
        Ok(cleanup.map(|e| exception(py, &e)))
    }

    /// The images of a site's Marketplace, each built by `build(id, name, extra)` as soon as
    /// its piece of the listing is read (the reading goes on, without the GIL, on another
    /// thread), then picked as `Driver::list_images` picks them.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (site, os, arch, endorser, include_expired, include_deprecated, build))]
    fn list_images<'py>(
        &self,
        py: Python<'py>,
        site: String,
        os: Option<String>,
        arch: Option<String>,
        endorser: Option<String>,
        include_expired: bool,
        include_deprecated: bool,
        build: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let driver = Arc::clone(&self.driver);
        let email = endorser.clone();
        let name = site.clone();
        let ImageStream {
            listings,
            mut events,
            producer: _producer,
        } = run(py, move || {
            driver.stream_images(&site, email.as_deref(), include_expired, include_deprecated)
        })?;
        let _paused = GcPaused::new(py)?;
        let mut strings = convert::Strings::new(py);
        let template = convert::image_template(py)?;
        let mut listing = ImageCollector::new(&name, listings);
        let mut build_one =
            |entry: &ImageEntry| build.call1(convert::image(py, entry, &mut strings, &template)?);
        consume(py, &mut events, |event| listing.take(event, &mut build_one))?;
        let filter = ImageFilter { os, arch, endorser };
        let (images, entries) = listing
            .finish(&filter)
            .map_err(|e| to_py(py, &e))?
            .into_built();
        let count = entries.len();
        free_elsewhere(entries, count);
        PyList::new(py, images)
    }

    fn get_image<'py>(
        &self,
        py: Python<'py>,
        site: String,
        image_id: String,
        include_expired: bool,
    ) -> PyResult<convert::ImageTuple<'py>> {
        let driver = Arc::clone(&self.driver);
        let e = block(py, async move {
            driver.get_image(&site, &image_id, include_expired).await
        })?;
        image_tuple(py, &e)
    }

    #[pyo3(signature = (site, strict))]
    fn list_volumes<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
    ) -> PyResult<(Bound<'py, PyList>, Failures<'py>)> {
        let driver = Arc::clone(&self.driver);
        let results = block(
            py,
            async move { driver.list_volumes(site.as_deref()).await },
        )?;
        per_site(py, results, strict, convert::volume)
    }

    fn create_volume<'py>(
        &self,
        py: Python<'py>,
        site: String,
        size: i64,
        name: String,
        visibility: String,
    ) -> PyResult<(String, String, u64, &'static str, Bound<'py, PyDict>)> {
        let driver = Arc::clone(&self.driver);
        let v = block(py, async move {
            driver.create_volume(&site, size, &name, &visibility).await
        })?;
        convert::volume(py, v)
    }

    fn destroy_volume(&self, py: Python<'_>, site: String, uuid: String) -> PyResult<()> {
        let driver = Arc::clone(&self.driver);
        block(py, async move { driver.destroy_volume(&site, &uuid).await })
    }

    fn attach_volume(
        &self,
        py: Python<'_>,
        site: String,
        vm_id: i64,
        uuid: String,
    ) -> PyResult<String> {
        let driver = Arc::clone(&self.driver);
        block(py, async move {
            driver.attach_volume(&site, vm_id, &uuid).await
        })
    }

    fn detach_volume(
        &self,
        py: Python<'_>,
        site: String,
        uuid: String,
    ) -> PyResult<Vec<(i64, String)>> {
        let driver = Arc::clone(&self.driver);
        block(py, async move { driver.detach_volume(&site, &uuid).await })
    }

    /// Many nodes (`sites[i]`, `names[i]`, `tokens[i]`), at most `max_in_flight` requests at
    /// once per site; `sink(index, node_tuple, exception)` as each ends.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (sites, names, tokens, args, max_in_flight, settle, sink))]
    fn create_nodes<'py>(
        &self,
        py: Python<'py>,
        sites: Vec<String>,
        names: Vec<String>,
        tokens: Vec<Option<String>>,
        args: super::fleet::CreateArgs,
        max_in_flight: usize,
        settle: Option<f64>,
        sink: Bound<'py, PyAny>,
    ) -> PyResult<super::fleet::Returned<'py, convert::NodeTuple<'py>>> {
        super::fleet::create_nodes(
            py,
            &self.driver,
            sites,
            names,
            tokens,
            args,
            max_in_flight,
            settle,
            &sink,
        )
    }

    /// Destroys `(site, vm_id)` nodes, at most `max_in_flight` at once per site;
    /// `sink(index, True, exception)` as each ends.
    fn destroy_nodes<'py>(
        &self,
        py: Python<'py>,
        nodes: Vec<(String, i64)>,
        max_in_flight: usize,
        sink: Bound<'py, PyAny>,
    ) -> PyResult<super::fleet::Returned<'py, bool>> {
        super::fleet::destroy_nodes(py, &self.driver, nodes, max_in_flight, &sink)
    }

    // ---------------------------------------------------------------- asyncio twins
    // Each returns an asyncio awaitable ([`aio::awaitable`]) whose result is what the
    // synchronous method returns (listings: records, built into objects by the caller).

    /// `list_nodes`' awaitable: `(nodes, failures, volumes_unknown)`, the nodes built by `build`.
    #[pyo3(signature = (site, strict, build, volumes = true))]
    fn list_nodes_async<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
        build: Py<PyAny>,
        volumes: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.list_nodes(site.as_deref(), volumes, strict).await },
            move |py, listed: NodesListed<NodeRecord>| {
                let mut strings = convert::Strings::new(py);
                let build = build.bind(py);
                let nodes = PyList::empty(py);
                for r in &listed.nodes.items {
                    nodes.append(build.call1(convert::node(py, r, &mut strings)?)?)?;
                }
                (
                    nodes,
                    failures(py, listed.nodes.failures),
                    failures(py, listed.volumes_unknown),
                )
                    .into_py_any(py)
            },
        )
    }

    /// `get_node`'s awaitable: `(node, volumes_error)`, the node built by `build`.
    fn get_node_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
        build: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.get_node(&site, vm_id).await },
            move |py, got| {
                let (node, error) = got_node(py, got)?;
                (build.bind(py).call1(node)?, error).into_py_any(py)
            },
        )
    }

    #[pyo3(signature = (site, name, args, client_token, settle))]
    fn create_node_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        name: String,
        args: super::fleet::CreateArgs,
        client_token: Option<String>,
        settle: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        aio::awaitable(
            py,
            self.create_work(site, name, args, client_token, settle)?,
            |py, r| super::fleet::node_tuple(py, &r)?.into_py_any(py),
        )
    }

    fn node_action_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
        action: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        aio::awaitable(py, self.action_work(site, vm_id, action), |py, cleanup| {
            cleanup.map(|e| exception(py, &e)).into_py_any(py)
        })
    }

    /// `list_images`' awaitable: `[(id, name, extra)]`, picked and filtered.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (site, os, arch, endorser, include_expired, include_deprecated))]
    fn list_images_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        os: Option<String>,
        arch: Option<String>,
        endorser: Option<String>,
        include_expired: bool,
        include_deprecated: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move {
                let filter = ImageFilter { os, arch, endorser };
                driver
                    .list_images(&site, &filter, include_expired, include_deprecated)
                    .await
            },
            |py, entries| {
                let mut strings = convert::Strings::new(py);
                let template = convert::image_template(py)?;
                let images = PyList::empty(py);
                for e in &entries {
                    images.append(convert::image(py, e, &mut strings, &template)?)?;
                }
                images.into_py_any(py)
            },
        )
    }

    fn get_image_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        image_id: String,
        include_expired: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.get_image(&site, &image_id, include_expired).await },
            |py, e| image_tuple(py, &e)?.into_py_any(py),
        )
    }

    #[pyo3(signature = (site, strict))]
    fn list_volumes_async<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.list_volumes(site.as_deref()).await },
            move |py, results| per_site(py, results, strict, convert::volume)?.into_py_any(py),
        )
    }

    fn create_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        size: i64,
        name: String,
        visibility: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.create_volume(&site, size, &name, &visibility).await },
            |py, v| convert::volume(py, v)?.into_py_any(py),
        )
    }

    fn destroy_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        uuid: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.destroy_volume(&site, &uuid).await },
            |py, ()| py.None().into_py_any(py),
        )
    }

    fn attach_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
        uuid: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.attach_volume(&site, vm_id, &uuid).await },
            |py, device| device.into_py_any(py),
        )
    }

    fn detach_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        uuid: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        aio::awaitable(
            py,
            async move { driver.detach_volume(&site, &uuid).await },
            |py, detached| detached.into_py_any(py),
        )
    }

    /// `create_nodes` for asyncio: the fleet, started ([`super::fleet::AsyncFleet`]; values are
    /// node tuples).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (sites, names, tokens, args, max_in_flight, settle))]
    fn create_nodes_async(
        &self,
        py: Python<'_>,
        sites: Vec<String>,
        names: Vec<String>,
        tokens: Vec<Option<String>>,
        args: super::fleet::CreateArgs,
        max_in_flight: usize,
        settle: Option<f64>,
    ) -> PyResult<super::fleet::AsyncFleet> {
        let fleet = super::fleet::create_fleet(
            &self.driver,
            sites,
            names,
            tokens,
            args,
            max_in_flight,
            settle,
        )?;
        super::fleet::AsyncFleet::start(py, fleet, super::fleet::node_object)
    }

    /// `destroy_nodes` for asyncio: the fleet, started (values are True).
    fn destroy_nodes_async(
        &self,
        py: Python<'_>,
        nodes: Vec<(String, i64)>,
        max_in_flight: usize,
    ) -> PyResult<super::fleet::AsyncFleet> {
        let fleet = super::fleet::destroy_fleet(&self.driver, nodes, max_in_flight)?;
        super::fleet::AsyncFleet::start(py, fleet, super::fleet::destroyed)
    }
}

impl Core {
    /// The work of `create_node` (sync and async): one node, created exactly once.
    fn create_work(
        &self,
        site: String,
        name: String,
        args: super::fleet::CreateArgs,
        client_token: Option<String>,
        settle: Option<f64>,
    ) -> PyResult<
        impl std::future::Future<Output = crate::error::Result<crate::driver::NodeRecord>>
            + Send
            + 'static,
    > {
        let driver = Arc::clone(&self.driver);
        let options = driver.create_options(super::fleet::settle(settle)?);
        let req: CreateNode = super::fleet::request(args, name);
        Ok(async move { driver.create_node(&site, req, client_token, &options).await })
    }

    /// The work of `node_action` (sync and async).
    fn action_work(
        &self,
        site: String,
        vm_id: i64,
        action: String,
    ) -> impl std::future::Future<Output = crate::error::Result<Option<crate::error::Error>>>
           + Send
           + 'static {
        let driver = Arc::clone(&self.driver);
        async move {
            let action = NodeAction::parse(&action)?;
            driver.node_action(&site, vm_id, action).await
        }
    }
}

/// `get_node`'s result for Python: the node, and pdisk's error when its volumes are unknown.
fn got_node(
    py: Python<'_>,
    (r, error): (crate::driver::NodeRecord, Option<crate::error::Error>),
) -> PyResult<(convert::NodeTuple<'_>, Option<Bound<'_, PyAny>>)> {
    Ok((
        super::fleet::node_tuple(py, &r)?,
        error.map(|e| exception(py, &e)),
    ))
}

/// One Marketplace entry as Python's `(id, name, extra)`.
fn image_tuple<'py>(py: Python<'py>, e: &ImageEntry) -> PyResult<convert::ImageTuple<'py>> {
    convert::image(
        py,
        e,
        &mut convert::Strings::new(py),
        &convert::image_template(py)?,
    )
}

/// Receives a listing's events until their sender is gone, giving each to `take` (the
/// driver core's listing: [`NodeCollector::take`], [`ImageCollector::take`]), checking Python's
/// signals while it waits (an exception from a signal handler is returned); while none waits,
/// reads a piece of a reply being read in pieces (what `take` returned) itself, without the
/// GIL, instead of sleeping.
fn consume<E: Send>(
    py: Python<'_>,
    events: &mut UnboundedReceiver<E>,
    mut take: impl FnMut(E) -> PyResult<Option<Arc<dyn Work>>>,
) -> PyResult<()> {
    let mut pools: Vec<Arc<dyn Work>> = Vec::new();
    loop {
        let event = match events.try_recv() {
            Ok(event) => event,
            Err(TryRecvError::Disconnected) => return Ok(()),
            Err(TryRecvError::Empty) => {
                pools.retain(|p| p.has_more());
                if let Some(pool) = pools.first().cloned() {
                    run(py, move || Ok(pool.read_one()))?;
                    continue;
                }
                match run(py, || recv_for(events, SIGNAL_CHECK))? {
                    Received::Item(event) => event,
                    Received::Closed => return Ok(()),
                    Received::Pending => {
                        // Ctrl-C: the caller drops the stream, which cancels its producer.
                        py.check_signals()?;
                        continue;
                    }
                }
            }
        };
        if let Some(work) = take(event)? {
            pools.push(work);
        }
    }
}

/// Frees a large listing's records on a short-lived thread: tens of thousands of small
/// allocations take milliseconds to free, which the caller need not wait for.
fn free_elsewhere<T: Send + 'static>(records: T, count: usize) {
    if count < 1000 {
        return;
    }
    // If no thread can be started, `spawn` drops the closure, and the records with it, here.
    let _detached = std::thread::Builder::new()
        .name("stratuslab-free".into())
        .spawn(move || drop(records));
}

/// Per-site results as the driver core flattens them ([`by_site`]), converted: the items
/// (as a list) and the failed sites, or the first failure raised when `strict`.
fn per_site<'py, R, T, F>(
    py: Python<'py>,
    results: Vec<(String, crate::error::Result<Vec<R>>)>,
    strict: bool,
    mut convert: F,
) -> PyResult<(Bound<'py, PyList>, Failures<'py>)>
where
    F: FnMut(Python<'py>, R) -> PyResult<T>,
    T: IntoPyObject<'py>,
{
    let listed = by_site(results, strict).map_err(|e| to_py(py, &e))?;
    let items = PyList::empty(py);
    for r in listed.items {
        items.append(convert(py, r)?)?;
    }
    Ok((items, failures(py, listed.failures)))
}

/// Failed sites with their Python exception objects (to report rather than raise).
pub(super) fn failures<'py>(
    py: Python<'py>,
    failed: Vec<(String, crate::error::Error)>,
) -> Failures<'py> {
    failed
        .into_iter()
        .map(|(site, e)| (site, exception(py, &e)))
        .collect()
}

/// The Python exception object for an error (to report rather than raise).
fn exception<'py>(py: Python<'py>, error: &crate::error::Error) -> Bound<'py, PyAny> {
    to_py(py, error).into_value(py).into_bound(py).into_any()
}
