//! The driver core: every site's clients, and the operations of the libcloud driver as plain
//! records. Work across sites runs concurrently. No pyo3 here (`src/python/` wraps this).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::config::{InstanceType, Settings, SiteSettings};
use crate::error::Classify;
use crate::error::{Context, Error, Result};
use crate::http::{HttpClient, HttpOptions, ProxyOptions, TlsOptions};
use crate::marketplace::{self, ImageEntry, ListQuery, MarketplaceClient, StatusFilter};
use crate::one::client::{
    read_pool_reply, OneClient, OneError, PoolPiece, PoolSink, Version, POOL_MINE, POOL_STATE_ANY,
    POOL_STATE_NOT_DONE,
};
use crate::one::endpoint::Auth;
use crate::one::states;
use crate::one::template::{self, NicSpec, RootDisk, VmSpec};
use crate::one::vm::{parse_pool, parse_vm, VmRecord};
use crate::pdisk::{self, PdiskClient, Visibility};
use crate::pieces::Work;
use crate::runtime::AbortOnDrop;

mod opennebula;
pub use opennebula::{parse_ref, PlainImage, PlainRef, PlainVolume, SiteKind, SITE_TYPE_KEY};

/// OpenNebula `STATE` of a deleted VM.
const VM_STATE_DONE: i32 = 6;

/// Options that apply to every site.
#[derive(Debug, Clone, Default)]
pub struct DriverOptions {
    /// Request timeout; `None` = the site's `endpoint_timeout`, else 60 s.
    pub timeout: Option<Duration>,
    pub tls: TlsOptions,
    pub retry: crate::http::RetryPolicy,
    pub proxy: ProxyOptions,
}

/// One site: its settings and clients.
#[derive(Debug)]
pub struct Site {
    pub name: String,
    pub display_name: String,
    pub country: String,
    pub settings: SiteSettings,
    /// Where the site's images and volumes come from.
    pub kind: SiteKind,
    pub one: OneClient,
    pub pdisk: PdiskClient,
    pub marketplace: MarketplaceClient,
    /// The HTTP client the three share.
    pub http: HttpClient,
}

/// A node as the driver reports it.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub site: String,
    pub vm: VmRecord,
    pub state: &'static str,
    pub public_ips: Vec<String>,
    pub private_ips: Vec<String>,
    /// (name, cpu, ram MiB, swap MiB)
    pub size: Option<(String, u32, u64, u64)>,
    pub image_id: Option<String>,
    /// Attached pdisk volumes: uuid → device; `None` when unknown (pdisk could not be read, or
    /// was not asked).
    pub volumes: Option<BTreeMap<String, String>>,
}

/// What [`Driver::stream_nodes`] sends; `site` numbers the sites of [`NodeStream::sites`].
#[derive(Debug)]
pub enum NodeEvent {
    /// More nodes of a site, in pool order.
    Records {
        site: usize,
        records: Vec<NodeRecord>,
    },
    /// Forget the nodes of the site sent so far (its whole list follows).
    Discard { site: usize },
    /// The site is complete, or failed.
    Done { site: usize, result: Result<()> },
    /// A site's pool, being read piece by piece: the receiver may read pieces itself
    /// ([`Work::read_one`]) when it has nothing else to do.
    Pieces(Arc<dyn Work>),
    /// The site's nodes are listed, but its volumes could not be read: their `volumes` are
    /// unknown (`None`).
    VolumesUnknown { site: usize, error: Error },
}

/// The caller's pdisk mounts of a site by VM id (uuid → device), as [`Driver::site_mounts`]
/// reads them.
pub type MountsByVm = BTreeMap<i64, BTreeMap<String, String>>;

/// Sets a node's `volumes` from the site's mounts: the mounts on its VM when pdisk knows any
/// (else those its template names), unknown when pdisk could not be read. One rule for
/// `list_nodes` and `ex_get_node`.
fn apply_mounts(record: &mut NodeRecord, mounts: Option<&MountsByVm>) {
    match mounts {
        Some(by_vm) => {
            if let Some(volumes) = by_vm.get(&record.vm.id) {
                record.volumes = Some(volumes.clone());
            }
        }
        None => record.volumes = None,
    }
}

/// [`Driver::list_nodes`]' result: per site (in site order) its nodes or its error, and the
/// sites whose volumes are unknown (pdisk failed).
#[derive(Debug)]
pub struct NodeListing {
    pub per_site: Vec<(String, Result<Vec<NodeRecord>>)>,
    pub volumes_unknown: Vec<(String, Error)>,
}

/// The sites a [`Driver::stream_nodes`] lists (in site order) and its events.
#[derive(Debug)]
pub struct NodeStream {
    pub sites: Vec<String>,
    pub events: tokio::sync::mpsc::UnboundedReceiver<NodeEvent>,
    /// Cancels the listing when dropped before its end.
    pub producer: AbortOnDrop,
}

/// The error of a site whose listing stopped without its [`NodeEvent::Done`].
pub fn ended_early(site: &str) -> Error {
    Error::internal(format!("site '{site}': the listing stopped before its end"))
}

/// What [`Driver::stream_images`] sends; `listing` numbers its listings (valid, then expired,
/// then deprecated, as asked).
#[derive(Debug)]
pub enum ImageEvent {
    /// More entries of a listing, in listing order (those contradicting its status dropped).
    Entries {
        listing: usize,
        entries: Vec<MarketplaceResult<ImageEntry>>,
    },
    /// Forget the entries of the listing sent so far (all of them follow).
    Discard { listing: usize },
    /// The listing is complete, or failed.
    Done { listing: usize, result: Result<()> },
    /// A listing being read piece by piece: the receiver may read pieces itself.
    Pieces(Arc<dyn Work>),
}

/// The number of listings a [`Driver::stream_images`] reads, and its events.
#[derive(Debug)]
pub struct ImageStream {
    pub listings: usize,
    pub events: tokio::sync::mpsc::UnboundedReceiver<ImageEvent>,
    /// Cancels the listings when dropped before their end.
    pub producer: AbortOnDrop,
}

/// A volume as the driver reports it.
#[derive(Debug, Clone)]
pub struct VolumeRecord {
    pub site: String,
    pub disk: pdisk::DiskSummary,
    /// Where the disk is mounted (read for disks whose `count` is not 0).
    pub mounts: Vec<pdisk::Mount>,
}

/// A create with the caller's values checked and the image resolved ([`Driver::prepare_create`]):
/// only the node's name and client token remain to be rendered.
#[derive(Debug, Clone)]
pub struct PreparedCreate {
    pub spec: VmSpec,
    pub dialect: template::Dialect,
}

impl PreparedCreate {
    /// The allocate template of one node: its name and, as a top-level attribute that oned keeps
    /// (TEMPLATE on 3.x, USER_TEMPLATE from 4.0), its client token.
    pub fn render(&self, name: &str, token: &str) -> Result<String> {
        check_node_name(name)?;
        let mut spec = self.spec.clone();
        name.clone_into(&mut spec.name);
        spec.raw_extra
            .push((crate::fleet::TOKEN_ATTRIBUTE.to_owned(), token.to_owned()));
        template::render_for(&spec, self.dialect).map_err(|e| Error::invalid(e.to_string()))
    }
}

/// A node name OpenNebula keeps as given.
pub fn check_node_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("node name must not be empty"));
    }
    if name.trim() != name {
        return Err(Error::invalid(format!(
            "node name {name:?} starts or ends with white space, which OpenNebula's VM listing does not keep"
        )));
    }
    Ok(())
}

/// What a `create_node` needs besides the site.
#[derive(Debug, Clone, Default)]
pub struct CreateNode {
    pub name: String,
    pub size_name: String,
    pub cpu: u32,
    pub ram_mib: u64,
    pub swap_mib: u64,
    pub image: String,
    pub public_key: Option<String>,
    pub public_key_file: Option<String>,
    pub network: Option<String>,
    pub context: Vec<(String, String)>,
    pub disks_bus: Option<String>,
    pub volatile_disk_gib: Option<u32>,
}

/// Node actions of the libcloud API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    Destroy,
    Reboot,
    Stop,
    Start,
}

impl NodeAction {
    pub fn parse(name: &str) -> Result<NodeAction> {
        Ok(match name {
            "destroy" => NodeAction::Destroy,
            "reboot" => NodeAction::Reboot,
            "stop" => NodeAction::Stop,
            "start" => NodeAction::Start,
            other => return Err(Error::invalid(format!("unknown node action '{other}'"))),
        })
    }
    fn label(self) -> &'static str {
        match self {
            NodeAction::Destroy => "destroy_node",
            NodeAction::Reboot => "reboot_node",
            NodeAction::Stop => "stop_node",
            NodeAction::Start => "start_node",
        }
    }
}

/// The OpenNebula action name for a libcloud action, given the site's version and, for `start`,
/// the VM's current STATE. `None` = not possible on that version.
pub fn action_name(action: NodeAction, version: Version, state: i32) -> Option<&'static str> {
    let v38 = (version.major, version.minor) >= (3, 8);
    match (action, version.major) {
        (NodeAction::Destroy, 0..=3) => Some("finalize"),
        (NodeAction::Destroy, 4) => Some("delete"),
        (NodeAction::Destroy, _) => Some("terminate-hard"),
        // Every OpenNebula daemon has `reboot`, 3.2.1's included (its VirtualMachineAction).
        (NodeAction::Reboot, _) => Some("reboot"),
        (NodeAction::Stop, _) if v38 => Some("poweroff"),
        (NodeAction::Stop, _) => Some("stop"),
        // POWEROFF (8): 3.8 wants `restart`, 4.x and later `resume`.
        (NodeAction::Start, 3) if state == 8 => Some("restart"),
        (NodeAction::Start, _) => Some("resume"),
    }
}

/// The driver core.
#[derive(Debug)]
pub struct Driver {
    sites: Vec<Site>,
    default_site: String,
    instance_types: Vec<InstanceType>,
    /// Attempts of the retry policy: how often a create may send its allocate.
    attempts: u32,
}

fn site_auth(s: &SiteSettings) -> Result<Auth> {
    if let (Some(u), Some(p)) = (s.get("username"), s.get("password")) {
        return Ok(Auth::Password {
            username: u.to_owned(),
            password: p.to_owned(),
        });
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cert = s
        .get("pem_certificate")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{home}/.globus/usercert.pem"));
    let key = s
        .get("pem_key")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{home}/.globus/userkey.pem"));
    if std::path::Path::new(&cert).is_file() && std::path::Path::new(&key).is_file() {
        return Ok(Auth::Certificate { cert, key });
    }
    let missing = match (s.get("username"), s.get("password")) {
        (None, _) => "username",
        (Some(_), None) => "password",
        _ => "credentials",
    };
    Err(Error::Config(crate::config::ConfigError::BadValue {
        location: "settings".to_owned(),
        site: s.name.clone(),
        key: missing.to_owned(),
        reason: format!(
            "missing credentials: no {missing}, and no readable PEM certificate ({cert}) with its key (pem_key)"
        ),
    }))
}

fn ctx(site: &str, endpoint: &str, operation: &str) -> Context {
    Context::new(site, endpoint, operation)
}

impl Driver {
    /// Builds every site's clients (no I/O).
    pub fn new(settings: Settings, options: &DriverOptions) -> Result<Driver> {
        let mut sites = Vec::with_capacity(settings.sites.len());
        for s in settings.sites {
            let auth = site_auth(&s)?;
            let timeout = match options.timeout {
                Some(t) => t,
                None => match s.endpoint_timeout()? {
                    Some(secs) => Duration::from_secs_f64(secs),
                    None => crate::http::DEFAULT_TIMEOUT,
                },
            };
            let mut tls = options.tls.clone();
            if let Auth::Certificate { cert, key } = &auth {
                tls.client_cert = Some(PathBuf::from(cert));
                tls.client_key = Some(PathBuf::from(key));
            }
            let http = HttpClient::new(HttpOptions {
                timeout,
                tls,
                retry: options.retry.clone(),
                proxy: options.proxy.clone(),
                ..HttpOptions::api()
            })
            .map_err(|e| Error::remote(ctx(&s.name, "(TLS setup)", "configure"), e))?;
            let endpoint = s.get("endpoint").ok_or_else(|| {
                Error::Config(crate::config::ConfigError::BadValue {
                    location: "settings".to_owned(),
                    site: s.name.clone(),
                    key: "endpoint".to_owned(),
                    reason: "missing endpoint".to_owned(),
                })
            })?;
            let one = OneClient::new(&s.name, endpoint, auth.clone(), http.clone())
                .map_err(|e| Error::remote(ctx(&s.name, endpoint, "configure"), e))?;
            let kind = SiteKind::of(&s)?;
            opennebula::check_endpoint(&s, kind, &one)?;
            let cert_mode = matches!(auth, Auth::Certificate { .. });
            let pdisk_url = pdisk::pdisk_base_url(s.get("pdisk_endpoint"), endpoint, cert_mode)
                .map_err(|e| Error::remote(ctx(&s.name, endpoint, "configure pdisk"), e))?;
            let pdisk_credentials = match &auth {
                Auth::Password { username, password } => Some((
                    s.get("pdisk_username").unwrap_or(username).to_owned(),
                    s.get("pdisk_password").unwrap_or(password).to_owned(),
                )),
                Auth::Certificate { .. } => None,
            };
            let pdisk =
                PdiskClient::new(pdisk_url, pdisk_credentials, http.clone(), s.name.clone());
            let mp_endpoint = s
                .get("marketplace_endpoint")
                .unwrap_or("https://marketplace.stratuslab.eu");
            let marketplace = MarketplaceClient::new(mp_endpoint, http.clone(), &s.name)
                .map_err(|e| Error::remote(ctx(&s.name, mp_endpoint, "configure"), e))?;
            sites.push(Site {
                name: s.name.clone(),
                display_name: s.display_name(),
                country: s.country(),
                settings: s,
                kind,
                one,
                pdisk,
                marketplace,
                http,
            });
        }
        Ok(Driver {
            sites,
            default_site: settings.default_site,
            instance_types: settings.instance_types,
            attempts: options.retry.attempts.max(1),
        })
    }

    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// Routes the next requests of every site through other proxies (libcloud's
    /// `connection.set_http_proxy`); on a bad proxy URL nothing changes.
    pub fn set_proxy(&self, proxy: &ProxyOptions) -> Result<()> {
        for s in &self.sites {
            s.http
                .set_proxy(proxy.clone())
                .map_err(|e| Error::remote(ctx(&s.name, "(proxy setup)", "set_http_proxy"), e))?;
        }
        Ok(())
    }

    pub fn default_site(&self) -> &str {
        &self.default_site
    }

    pub fn instance_types(&self) -> &[InstanceType] {
        &self.instance_types
    }

    /// How creates resolve lost replies: retries as the driver's policy, this settle period.
    pub fn create_options(&self, settle: Option<Duration>) -> crate::fleet::CreateOptions {
        crate::fleet::CreateOptions {
            settle: settle.unwrap_or(crate::fleet::DEFAULT_SETTLE),
            attempts: self.attempts,
        }
    }

    /// The site with this name, or an error listing the known ones.
    pub fn site(&self, name: &str) -> Result<&Site> {
        self.sites.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.sites.iter().map(|s| s.name.as_str()).collect();
            Error::invalid(format!(
                "unknown location '{name}' (known sites: {})",
                known.join(", ")
            ))
        })
    }

    /// The position of the site with this name (errors as [`site`](Self::site)).
    fn site_index(&self, name: &str) -> Result<usize> {
        let wanted = self.site(name)?;
        self.sites
            .iter()
            .position(|s| std::ptr::eq(s, wanted))
            .ok_or_else(|| Error::internal("site lookup"))
    }

    fn selected(&self, site: Option<&str>) -> Result<Vec<&Site>> {
        match site {
            Some(name) => Ok(vec![self.site(name)?]),
            None => Ok(self.sites.iter().collect()),
        }
    }

    /// `list_nodes`: every selected site concurrently; one result per site, in site order
    /// (the records of [`stream_nodes`](Self::stream_nodes), collected), and the sites (by
    /// name) whose volumes are unknown, with pdisk's error.
    pub async fn list_nodes(
        self: &Arc<Self>,
        site: Option<&str>,
        with_volumes: bool,
    ) -> Result<NodeListing> {
        let NodeStream {
            sites,
            mut events,
            producer: _producer,
        } = self.stream_nodes(site, with_volumes)?;
        let mut results: Vec<Option<Result<Vec<NodeRecord>>>> =
            sites.iter().map(|_| None).collect();
        let mut records: Vec<Vec<NodeRecord>> = sites.iter().map(|_| Vec::new()).collect();
        let mut volumes_unknown = Vec::new();
        while let Some(event) = events.recv().await {
            match event {
                NodeEvent::Records { site, records: r } => records[site].extend(r),
                NodeEvent::Discard { site } => records[site].clear(),
                NodeEvent::Done { site, result } => {
                    results[site] = Some(result.map(|()| std::mem::take(&mut records[site])))
                }
                NodeEvent::VolumesUnknown { site, error } => {
                    volumes_unknown.push((sites[site].clone(), error))
                }
                NodeEvent::Pieces(_) => {}
            }
        }
        let per_site = sites
            .into_iter()
            .zip(results)
            .map(|(name, result)| {
                let result = result.unwrap_or_else(|| Err(ended_early(&name)));
                (name, result)
            })
            .collect();
        Ok(NodeListing {
            per_site,
            volumes_unknown,
        })
    }

    /// `list_nodes` as a stream: every selected site is listed concurrently and its nodes are
    /// sent as they are read from the reply, piece by piece, in pool order, while the rest is
    /// read (so the receiver can build its objects meanwhile). Each site ends with one
    /// [`NodeEvent::Done`]; a site whose events stop without one failed inside (a bug).
    /// Without `with_volumes`, pdisk is not asked and every node's `volumes` is unknown.
    pub fn stream_nodes(
        self: &Arc<Self>,
        site: Option<&str>,
        with_volumes: bool,
    ) -> Result<NodeStream> {
        let indices: Vec<usize> = match site {
            Some(name) => vec![self.site_index(name)?],
            None => (0..self.sites.len()).collect(),
        };
        let sites = indices
            .iter()
            .map(|&i| self.sites[i].name.clone())
            .collect();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let driver = Arc::clone(self);
        let producer = crate::runtime::spawn(async move {
            join_all(indices.into_iter().enumerate().map(|(n, i)| {
                let tx = tx.clone();
                let driver = Arc::clone(&driver);
                async move {
                    let result = driver.stream_site_nodes(n, i, with_volumes, &tx).await;
                    // The receiver may be gone (the caller stopped); nothing to tell then.
                    let _ = tx.send(NodeEvent::Done { site: n, result });
                }
            }))
            .await;
        })?;
        Ok(NodeStream {
            sites,
            events,
            producer: AbortOnDrop(producer.abort_handle()),
        })
    }

    /// One site of [`stream_nodes`](Self::stream_nodes): the pool reply and the volume mounts
    /// are fetched together, then the reply is read on a blocking thread, which sends the
    /// nodes piece by piece ([`read_pool_reply`]).
    async fn stream_site_nodes(
        self: &Arc<Self>,
        n: usize,
        index: usize,
        with_volumes: bool,
        tx: &tokio::sync::mpsc::UnboundedSender<NodeEvent>,
    ) -> Result<()> {
        let site = &self.sites[index];
        let context = || ctx(&site.name, site.one.url(), "list_nodes (one.vmpool.info)");
        let mounts = async {
            if with_volumes {
                Some(self.site_mounts(site, "list_nodes").await)
            } else {
                None
            }
        };
        let (reply, mounts) = tokio::join!(
            site.one.vm_pool_reply(POOL_MINE, POOL_STATE_NOT_DONE),
            mounts
        );
        let body = reply.map_err(|e| Error::remote(context(), e))?;
        let by_vm = match mounts {
            Some(Ok(by_vm)) => Some(by_vm),
            Some(Err(error)) => {
                // The receiver may be gone (the caller stopped): nothing to tell then.
                let _ = tx.send(NodeEvent::VolumesUnknown { site: n, error });
                None
            }
            None => None,
        };
        let driver = Arc::clone(self);
        let out = tx.clone();
        // The receiver may be gone (the caller stopped): nothing to tell then.
        let emit: PoolSink = Arc::new(move |piece| {
            let event = match piece {
                PoolPiece::Records(vms) => {
                    let site = &driver.sites[index];
                    let records = vms
                        .into_iter()
                        .map(|vm| {
                            let mut r = site_node_record(site, vm, &driver.instance_types);
                            apply_mounts(&mut r, by_vm.as_ref());
                            r
                        })
                        .collect();
                    NodeEvent::Records { site: n, records }
                }
                PoolPiece::Discard => NodeEvent::Discard { site: n },
            };
            let _ = out.send(event);
        });
        let tx = tx.clone();
        let driver = Arc::clone(self);
        let read = tokio::task::spawn_blocking(move || {
            let body = read_pool_reply(body, emit, &mut |pieces| {
                let _ = tx.send(NodeEvent::Pieces(pieces));
            })?;
            driver.sites[index].one.recycle(body);
            Ok::<(), crate::one::client::OneError>(())
        });
        match read.await {
            Ok(result) => result.map_err(|e| Error::remote(context(), e)),
            Err(e) => Err(Error::internal(format!(
                "site '{}': reading the node list failed: {e}",
                site.name
            ))),
        }
    }

    /// The caller's mounted disks by VM (uuid → device); any pdisk failure makes them unknown
    /// (the error names `operation`).
    async fn site_mounts(&self, site: &Site, operation: &str) -> Result<MountsByVm> {
        if site.kind == SiteKind::OpenNebula {
            // Plain sites have no pdisk: their volumes are images, attached as VM disks.
            return Ok(MountsByVm::new());
        }
        let context = |op: &str| ctx(&site.name, site.pdisk.base_url(), op);
        let disks = site
            .pdisk
            .list()
            .await
            .map_err(|e| Error::remote(context(&format!("{operation} (GET /disks/)")), e))?;
        let mounted: Vec<_> = disks.into_iter().filter(|d| d.count > 0).collect();
        let all = join_all(mounted.iter().map(|d| site.pdisk.mounts(&d.uuid))).await;
        let mut by_vm = MountsByVm::new();
        for (d, m) in mounted.iter().zip(all) {
            let mounts = match m {
                Ok(mounts) => mounts,
                // Deleted since it was listed: mounted nowhere.
                Err(e) if e.http_status() == Some(404) => Vec::new(),
                Err(e) => {
                    return Err(Error::remote(
                        context(&format!("{operation} (GET /disks/<uuid>/mounts)")),
                        e,
                    ))
                }
            };
            for m in mounts {
                by_vm
                    .entry(m.vm_id)
                    .or_default()
                    .insert(d.uuid.clone(), m.device);
            }
        }
        Ok(by_vm)
    }

    pub(crate) async fn vm(&self, site: &Site, vm_id: i64, operation: &str) -> Result<VmRecord> {
        let context = || ctx(&site.name, site.one.url(), operation);
        let xml = site
            .one
            .vm_info(vm_id)
            .await
            .map_err(|e| Error::remote(context(), e))?;
        parse_vm(xml.as_bytes()).map_err(|e| Error::remote(context(), e))
    }

    /// `ex_get_node`: one VM by site-local id, its volumes read as `list_nodes` reads them; when
    /// pdisk fails they are unknown and its error comes second.
    pub async fn get_node(&self, site: &str, vm_id: i64) -> Result<(NodeRecord, Option<Error>)> {
        let s = self.site(site)?;
        let (vm, mounts) = tokio::join!(
            self.vm(s, vm_id, "ex_get_node (one.vm.info)"),
            self.site_mounts(s, "ex_get_node")
        );
        let mut record = site_node_record(s, vm?, &self.instance_types);
        let (mounts, error) = match mounts {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        apply_mounts(&mut record, mounts.as_ref());
        Ok((record, error))
    }

    /// `destroy_node`, `reboot_node`, `stop_node`, `start_node`: reads the VM first (a DONE VM
    /// is refused before any action is sent; `start` depends on the state), then one
    /// `one.vm.action` in the site version's vocabulary. `destroy_node` then releases the VM's
    /// pdisk mounts that are left; a failure there comes back (the node is destroyed).
    pub async fn node_action(
        &self,
        site: &str,
        vm_id: i64,
        action: NodeAction,
    ) -> Result<Option<Error>> {
        let s = self.site(site)?;
        let context = |op: &str| ctx(&s.name, s.one.url(), op);
        let version = s.one.version().await.map_err(|e| {
            Error::remote(
                context(&format!("{} (one.system.version)", action.label())),
                e,
            )
        })?;
        let vm = self
            .vm(s, vm_id, &format!("{} (one.vm.info)", action.label()))
            .await?;
        if vm.state == VM_STATE_DONE {
            return Err(Error::state(
                context(&format!("{} (one.vm.info)", action.label())),
                format!(
                    "node {vm_id}@{} is already destroyed (OpenNebula state DONE): {} is not possible",
                    s.name,
                    action.label()
                ),
            ));
        }
        let name = action_name(action, version, vm.state).ok_or_else(|| {
            Error::unsupported(
                context(&format!("{} (one.vm.action)", action.label())),
                format!(
                    "{} is not supported by OpenNebula {version} (its one.vm.action has no such action)",
                    action.label()
                ),
            )
        })?;
        s.one.action(name, vm_id).await.map_err(|e| {
            Error::remote(
                context(&format!("{} (one.vm.action {name})", action.label())),
                e,
            )
        })?;
        if action != NodeAction::Destroy {
            return Ok(None);
        }
        Ok(self.release_mounts(s, vm_id).await.err())
    }

    /// Removes every pdisk mount of VM `vm_id` (after `destroy_node`: a site whose epilog
    /// released them already leaves nothing to do).
    async fn release_mounts(&self, s: &Site, vm_id: i64) -> Result<()> {
        let by_vm = self.site_mounts(s, "destroy_node").await?;
        let Some(volumes) = by_vm.get(&vm_id) else {
            return Ok(());
        };
        for uuid in volumes.keys() {
            match s.pdisk.detach(uuid, vm_id).await {
                Ok(_) => {}
                // Released meanwhile (by the site's epilog).
                Err(e) if e.http_status() == Some(404) => {}
                Err(e) => {
                    return Err(Error::remote(
                        ctx(
                            &s.name,
                            s.pdisk.base_url(),
                            "destroy_node (DELETE /disks/<uuid>/mounts/<id>)",
                        ),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// `create_node`: checks every caller value (name, key, context, size, network, bus, client
    /// token) by rendering the template before any request, resolves the image, renders for the
    /// site's version with the client token, allocates exactly once ([`crate::fleet`]: a lost
    /// reply is resolved by looking the token up) and reads the VM back (its IP is leased
    /// already).
    pub async fn create_node(
        &self,
        site: &str,
        req: CreateNode,
        token: Option<String>,
        options: &crate::fleet::CreateOptions,
    ) -> Result<NodeRecord> {
        let s = self.site(site)?;
        if s.kind == SiteKind::OpenNebula {
            return self.plain_create_node(s, req).await;
        }
        let given = token.is_some();
        let token = crate::fleet::token_or_new(token)?;
        let prepared = self.prepare_create(s, &req).await?;
        crate::fleet::create_one(self, s, &prepared, &req.name, &token, given, options).await
    }

    /// Everything of a create that does not depend on the node's name and token: the caller's
    /// values checked, the image resolved, the site's template dialect.
    pub(crate) async fn prepare_create(
        &self,
        s: &Site,
        req: &CreateNode,
    ) -> Result<PreparedCreate> {
        check_node_name(&req.name)?;
        if req.cpu == 0 || req.ram_mib == 0 {
            return Err(Error::invalid(format!(
                "size '{}' has no CPU or RAM",
                req.size_name
            )));
        }
        let public_key = self.public_key(s, req)?;
        let network = req.network.clone().unwrap_or_else(|| "public".to_owned());
        if !matches!(network.as_str(), "public" | "private" | "local") {
            return Err(Error::invalid(format!(
                "unknown network '{network}' (public, private or local)"
            )));
        }
        let chosen_bus = req
            .disks_bus
            .clone()
            .or(s.settings.get("vm_disks_bus").map(str::to_owned));
        if let Some(bus) = &chosen_bus {
            bus_prefix(bus)?;
        }
        let cloud_init = s
            .settings
            .get("default_context_method")
            .map(|m| m.trim().eq_ignore_ascii_case("cloud-init"))
            .unwrap_or(false);
        let mut context = Vec::new();
        if cloud_init {
            use base64::Engine as _;
            context.push(("CONTEXT_METHOD".to_owned(), "cloud-init".to_owned()));
            context.push((
                "CLOUD_INIT_AUTHORIZED_KEYS".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(public_key.as_bytes()),
            ));
        }
        context.push(("public_key".to_owned(), public_key));
        context.extend(req.context.iter().cloned());
        let mut spec = VmSpec {
            name: req.name.clone(),
            cpu: f64::from(req.cpu),
            vcpu: req.cpu,
            memory_mib: req.ram_mib,
            // Placeholder until the image is resolved: the caller's values are checked below
            // before any request is sent.
            root_disk: RootDisk {
                source: "https://image.invalid/".to_owned(),
                target_prefix: "hd".to_owned(),
                driver: None,
                save: false,
            },
            swap_mib: (req.swap_mib > 0).then_some(req.swap_mib),
            extra_disks: req
                .volatile_disk_gib
                .map(|g| {
                    vec![template::ExtraDisk::Volatile {
                        size_mib: u64::from(g) * 1024,
                    }]
                })
                .unwrap_or_default(),
            nics: vec![NicSpec {
                network,
                ip: None,
                model: s.settings.get("vm_network_model").map(str::to_owned),
            }],
            context,
            graphics: true,
            requirements: s.settings.get("vm_requirements").map(str::to_owned),
            inbound_ports: Vec::new(),
            raw_extra: Vec::new(),
        };
        template::render(&spec).map_err(|e| Error::invalid(e.to_string()))?;

        let (source, driver, image_bus, inbound) = self.resolve_image(s, &req.image).await?;
        let bus = chosen_bus.or(image_bus).unwrap_or_else(|| "ide".to_owned());
        spec.root_disk = RootDisk {
            source,
            target_prefix: bus_prefix(&bus)?.to_owned(),
            driver,
            save: false,
        };
        spec.inbound_ports = inbound;
        let context = |op: &str| ctx(&s.name, s.one.url(), op);
        let version = s
            .one
            .version()
            .await
            .map_err(|e| Error::remote(context("create_node (one.system.version)"), e))?;
        let dialect = if (version.major, version.minor) >= (3, 8) {
            template::Dialect::One38
        } else {
            template::Dialect::StratusLab
        };
        Ok(PreparedCreate { spec, dialect })
    }

    /// Reads a VM just allocated back (its IP is leased already); when that fails the VM still
    /// exists, so a record with its id, name and token is returned rather than an error.
    pub(crate) async fn read_back(
        &self,
        s: &Site,
        vm_id: i64,
        name: &str,
        token: &str,
    ) -> NodeRecord {
        match self.vm(s, vm_id, "create_node (one.vm.info)").await {
            Ok(vm) => site_node_record(s, vm, &self.instance_types),
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "site '{}': VM {vm_id} was created but reading it back failed: {e}", s.name);
                let mut vm = VmRecord {
                    id: vm_id,
                    name: name.to_owned(),
                    state: 1,
                    ..VmRecord::default()
                };
                vm.template.client_token = Some(token.to_owned());
                site_node_record(s, vm, &self.instance_types)
            }
        }
    }

    /// Destroys a VM whose id and site are known to exist (duplicate clean-up, fleets): one
    /// `one.vm.action` in the site version's vocabulary.
    pub(crate) async fn destroy_vm(&self, s: &Site, vm_id: i64, operation: &str) -> Result<()> {
        let context = |op: &str| ctx(&s.name, s.one.url(), op);
        let version =
            s.one.version().await.map_err(|e| {
                Error::remote(context(&format!("{operation} (one.system.version)")), e)
            })?;
        let name = action_name(NodeAction::Destroy, version, 0)
            .ok_or_else(|| Error::internal("no destroy action for this version"))?;
        s.one
            .action(name, vm_id)
            .await
            .map_err(|e| Error::remote(context(&format!("{operation} (one.vm.action {name})")), e))
    }

    fn public_key(&self, s: &Site, req: &CreateNode) -> Result<String> {
        let text = if let Some(k) = &req.public_key {
            k.clone()
        } else {
            let path = req
                .public_key_file
                .clone()
                .or_else(|| s.settings.get("user_public_key_file").map(str::to_owned))
                .unwrap_or_else(|| {
                    format!(
                        "{}/.ssh/id_rsa.pub",
                        std::env::var("HOME").unwrap_or_default()
                    )
                });
            let path = expand_home(&path);
            std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid(format!(
                    "no SSH public key: give auth=NodeAuthSSHKey(...) or a readable key file (cannot read {path}: {e})"
                ))
            })?
        };
        let key: String = text
            .lines()
            .filter(|l| !l.starts_with("Comment:"))
            .collect::<Vec<_>>()
            .join("\n");
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(Error::invalid("the SSH public key is empty"));
        }
        Ok(key)
    }

    /// Root-disk source, driver, disks bus and inbound ports for an image reference (spec §3.1).
    async fn resolve_image(
        &self,
        s: &Site,
        image: &str,
    ) -> Result<(String, Option<String>, Option<String>, Vec<u16>)> {
        let image = image.trim();
        if marketplace::is_valid_identifier(image) {
            let entry = self
                .image_entry(s, image, false, "create_node (Marketplace entry)")
                .await?;
            if entry.locations.is_empty() {
                return Err(Error::invalid(format!(
                    "Image location(s) are not set in manifest for the image with ID {image}"
                )));
            }
            let source = format!("{}/metadata/{image}", s.marketplace.endpoint());
            return Ok((
                source,
                Some(entry.format.clone().unwrap_or_default()),
                entry.disks_bus.clone(),
                entry.inbound_ports.clone(),
            ));
        }
        if is_pdisk_uuid(image) {
            let base = s
                .settings
                .get("pdisk_endpoint")
                .unwrap_or_else(|| s.pdisk.base_url())
                .trim_end_matches('/');
            return Ok((
                format!("pdisk:{base}/{image}"),
                Some("raw".into()),
                None,
                Vec::new(),
            ));
        }
        if image.starts_with("http://") || image.starts_with("https://") {
            return Ok((image.to_owned(), Some("raw".into()), None, Vec::new()));
        }
        Err(Error::invalid(format!(
            "image '{image}' is neither a Marketplace identifier (27 characters of [A-Za-z0-9_-]), a pdisk UUID nor an http(s) URL"
        )))
    }

    /// The entries of one listing per status in `statuses` (fetched concurrently), each with the
    /// rank of its status (its index in `statuses`). The Marketplace decides what is valid,
    /// expired or deprecated with its own clock (spec §5.8); the driver never second-guesses it
    /// with the local clock. A listing without result is empty; any other failure (including a
    /// 404 that is not the server's "no metadata matching query found") is an error.
    async fn fetch_entries(
        &self,
        s: &Site,
        base: &ListQuery,
        statuses: &[StatusFilter],
        operation: &str,
    ) -> Result<Vec<(usize, MarketplaceResult<ImageEntry>)>> {
        let listings = join_all(statuses.iter().map(|&status| {
            let query = ListQuery {
                status,
                ..base.clone()
            };
            async move { s.marketplace.list(&query).await }
        }))
        .await;
        let mut out = Vec::new();
        for ((rank, listing), &status) in listings.into_iter().enumerate().zip(statuses) {
            let entries = listing
                .map_err(|e| Error::remote(ctx(&s.name, s.marketplace.endpoint(), operation), e))?;
            out.extend(
                checked_entries(&s.name, status, entries)
                    .into_iter()
                    .map(|e| (rank, e)),
            );
        }
        Ok(out)
    }

    /// `list_images` as a stream: the listings the options ask for (valid, then expired, then
    /// deprecated) are fetched concurrently and each is read in pieces whose entries are sent
    /// as they are read (entries contradicting their listing's status dropped, as
    /// [`list_images`](Self::list_images) does). The receiver picks the images with
    /// [`select_image_indices`] and [`image_matches`].
    pub fn stream_images(
        self: &Arc<Self>,
        site: &str,
        endorser: Option<&str>,
        include_expired: bool,
        include_deprecated: bool,
    ) -> Result<ImageStream> {
        let index = self.site_index(site)?;
        let statuses = image_statuses(include_expired, include_deprecated);
        let listings = statuses.len();
        let base = ListQuery {
            email: endorser.map(str::to_owned),
            ..ListQuery::default()
        };
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let driver = Arc::clone(self);
        let producer = crate::runtime::spawn(async move {
            join_all(statuses.into_iter().enumerate().map(|(listing, status)| {
                let tx = tx.clone();
                let driver = Arc::clone(&driver);
                let query = ListQuery {
                    status,
                    ..base.clone()
                };
                async move {
                    let result = driver
                        .stream_listing(index, listing, status, query, &tx)
                        .await;
                    // The receiver may be gone (the caller stopped): nothing to tell then.
                    let _ = tx.send(ImageEvent::Done { listing, result });
                }
            }))
            .await;
        })?;
        Ok(ImageStream {
            listings,
            events,
            producer: AbortOnDrop(producer.abort_handle()),
        })
    }

    /// One listing of [`stream_images`](Self::stream_images): fetched, then read on a
    /// blocking thread ([`marketplace::listing_pieces`], else [`marketplace::parse_listing`]).
    async fn stream_listing(
        self: &Arc<Self>,
        index: usize,
        listing: usize,
        status: StatusFilter,
        query: ListQuery,
        tx: &tokio::sync::mpsc::UnboundedSender<ImageEvent>,
    ) -> Result<()> {
        let s = &self.sites[index];
        let context = || ctx(&s.name, s.marketplace.endpoint(), LIST_IMAGES);
        let Some(body) = s
            .marketplace
            .list_reply(&query)
            .await
            .map_err(|e| Error::remote(context(), e))?
        else {
            return Ok(());
        };
        let driver = Arc::clone(self);
        let tx = tx.clone();
        let read = tokio::task::spawn_blocking(move || {
            let s = &driver.sites[index];
            let out = tx.clone();
            let site = s.name.clone();
            let deliver = Arc::new(move |entries| {
                let entries = checked_entries(&site, status, entries);
                let _ = out.send(ImageEvent::Entries { listing, entries });
            });
            let sink = Arc::clone(&deliver);
            let pieces =
                marketplace::listing_pieces(body.clone(), Box::new(move |e| sink(e))).map(Arc::new);
            if let Some(pieces) = &pieces {
                let _ = tx.send(ImageEvent::Pieces(Arc::clone(pieces) as Arc<dyn Work>));
            }
            let result = match pieces {
                Some(pieces) if pieces.finish() => Ok(()),
                _ => {
                    let _ = tx.send(ImageEvent::Discard { listing });
                    marketplace::parse_listing(&body).map(|entries| deliver(entries))
                }
            };
            s.marketplace.recycle(body);
            result
        });
        match read.await {
            Ok(result) => result.map_err(|e| Error::remote(context(), e)),
            Err(e) => Err(Error::internal(format!(
                "site '{}': reading the image listing failed: {e}",
                s.name
            ))),
        }
    }

    async fn image_entry(
        &self,
        s: &Site,
        id: &str,
        include_expired: bool,
        operation: &str,
    ) -> Result<ImageEntry> {
        if !marketplace::is_valid_identifier(id) {
            return Err(Error::invalid(format!(
                "'{id}' is not a Marketplace image identifier (27 characters of [A-Za-z0-9_-])"
            )));
        }
        let query = ListQuery {
            identifier: Some(id.to_owned()),
            ..ListQuery::default()
        };
        let statuses: &[StatusFilter] = if include_expired {
            &[
                StatusFilter::Valid,
                StatusFilter::Expired,
                StatusFilter::Deprecated,
            ]
        } else {
            &[StatusFilter::Valid]
        };
        let operation = format!("{operation} (GET /metadata)");
        let entries = self.fetch_entries(s, &query, statuses, &operation).await?;
        let context = || ctx(&s.name, s.marketplace.endpoint(), &operation);
        let (mut images, first_error) = select_images(entries);
        images.retain(|e| e.identifier == id);
        match (images.into_iter().next(), first_error) {
            (Some(image), _) => Ok(image),
            (None, Some(error)) => Err(Error::remote(context(), error)),
            (None, None) => Err(Error::remote(
                context(),
                marketplace::MarketplaceError::NotFound {
                    identifier: id.to_owned(),
                },
            )),
        }
    }

    /// `list_images` of one site's Marketplace: the valid entries, plus the expired and/or the
    /// deprecated ones when asked (a deprecated entry is included whatever its date), one per
    /// identifier (see [`select_images`]), filtered by OS, architecture (case-insensitive) and
    /// endorser e-mail.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_images(
        &self,
        site: &str,
        os: Option<&str>,
        arch: Option<&str>,
        endorser: Option<&str>,
        include_expired: bool,
        include_deprecated: bool,
    ) -> Result<Vec<ImageEntry>> {
        let s = self.site(site)?;
        let query = ListQuery {
            email: endorser.map(str::to_owned),
            ..ListQuery::default()
        };
        let statuses = image_statuses(include_expired, include_deprecated);
        let entries = self
            .fetch_entries(s, &query, &statuses, LIST_IMAGES)
            .await?;
        let (mut images, _) = select_images(entries);
        if os.is_some() || arch.is_some() || endorser.is_some() {
            images.retain(|e| image_matches(e, os, arch, endorser));
        }
        Ok(images)
    }

    /// `get_image`: the valid entry with this identifier (newest endorsement); with
    /// `include_expired`, an expired or deprecated one when no valid one exists.
    pub async fn get_image(
        &self,
        site: &str,
        id: &str,
        include_expired: bool,
    ) -> Result<ImageEntry> {
        let s = self.site(site)?;
        self.image_entry(s, id, include_expired, "get_image").await
    }

    /// `list_volumes`: every selected site concurrently; the mounts of each disk in use are
    /// read too (concurrently; a failure there is only logged: the disk is listed without them).
    pub async fn list_volumes(
        &self,
        site: Option<&str>,
    ) -> Result<Vec<(String, Result<Vec<VolumeRecord>>)>> {
        let mut sites = self.selected(site)?;
        // Plain OpenNebula sites have no pdisk: their volumes are `plain_list_volumes`'.
        sites.retain(|s| s.kind == SiteKind::StratusLab);
        let results = join_all(sites.iter().map(|s| self.list_site_volumes(s))).await;
        Ok(sites.iter().map(|s| s.name.clone()).zip(results).collect())
    }

    async fn list_site_volumes(&self, s: &Site) -> Result<Vec<VolumeRecord>> {
        let disks = s.pdisk.list().await.map_err(|e| {
            Error::remote(
                ctx(&s.name, s.pdisk.base_url(), "list_volumes (GET /disks/)"),
                e,
            )
        })?;
        let mounts = join_all(disks.iter().map(|d| async move {
            if d.count == 0 {
                return Vec::new();
            }
            s.pdisk.mounts(&d.uuid).await.unwrap_or_else(|e| {
                log::warn!(target: "stratuslab_libcloud", "site '{}': list_volumes: cannot read the mounts of {}: {e}", s.name, d.uuid);
                Vec::new()
            })
        }))
        .await;
        Ok(disks
            .into_iter()
            .zip(mounts)
            .map(|(disk, mounts)| VolumeRecord {
                site: s.name.clone(),
                disk,
                mounts,
            })
            .collect())
    }

    /// `create_volume`: checks before sending, then POST, then describes the new disk.
    pub async fn create_volume(
        &self,
        site: &str,
        size_gib: i64,
        name: &str,
        visibility: &str,
    ) -> Result<VolumeRecord> {
        let s = self.site(site)?;
        if !(1..=1024).contains(&size_gib) {
            return Err(Error::invalid(format!(
                "volume size must be between 1 and 1024 GiB, not {size_gib}"
            )));
        }
        let tag = name.trim();
        if tag.is_empty() {
            return Err(Error::invalid("volume name must not be empty"));
        }
        if tag.chars().count() > 40 {
            return Err(Error::invalid(format!(
                "volume name is {} characters long; pdisk tags are at most 40",
                tag.chars().count()
            )));
        }
        let vis = Visibility::parse(visibility).ok_or_else(|| {
            Error::invalid(format!(
                "visibility must be 'private' or 'public', not '{visibility}'"
            ))
        })?;
        let context = |op: &str| ctx(&s.name, s.pdisk.base_url(), op);
        let uuid = s
            .pdisk
            .create(size_gib as u32, tag, vis)
            .await
            .map_err(|e| Error::remote(context("create_volume (POST /disks/)"), e))?;
        let disk = s
            .pdisk
            .describe(&uuid)
            .await
            .map_err(|e| Error::remote(context("create_volume (GET /disks/<uuid>)"), e))?;
        Ok(VolumeRecord {
            site: s.name.clone(),
            disk: disk.into(),
            mounts: Vec::new(),
        })
    }

    /// `destroy_volume`.
    pub async fn destroy_volume(&self, site: &str, uuid: &str) -> Result<()> {
        let s = self.site(site)?;
        s.pdisk.delete(uuid).await.map_err(|e| {
            Error::remote(
                ctx(
                    &s.name,
                    s.pdisk.base_url(),
                    "destroy_volume (DELETE /disks/<uuid>)",
                ),
                e,
            )
        })
    }

    /// `attach_volume`: the node must be RUNNING; its host comes from a fresh `one.vm.info`.
    pub async fn attach_volume(&self, site: &str, vm_id: i64, uuid: &str) -> Result<String> {
        let s = self.site(site)?;
        let vm = self.vm(s, vm_id, "attach_volume (one.vm.info)").await?;
        let refused = |message: String| {
            Error::state(
                ctx(&s.name, s.one.url(), "attach_volume (one.vm.info)"),
                message,
            )
        };
        if !(vm.state == 3 && vm.lcm_state == 3) {
            return Err(refused(format!(
                "VM {vm_id} is not in running state ({}), so the volume cannot be attached",
                states::summary_label(vm.state, vm.lcm_state)
            )));
        }
        let host = vm
            .current_host()
            .ok_or_else(|| refused(format!("VM {vm_id} has no host yet")))?;
        s.pdisk.attach(uuid, host, vm_id).await.map_err(|e| {
            Error::remote(
                ctx(
                    &s.name,
                    s.pdisk.base_url(),
                    "attach_volume (POST /disks/<uuid>/mounts/)",
                ),
                e,
            )
        })
    }

    /// `detach_volume`: unmounts the disk from each of the caller's VMs it is mounted on, in
    /// any state (DONE included), and from VMs that no longer exist (a mount left behind).
    pub async fn detach_volume(&self, site: &str, uuid: &str) -> Result<Vec<(i64, String)>> {
        let s = self.site(site)?;
        let context = |op: &str| ctx(&s.name, s.pdisk.base_url(), op);
        let mounts_op = "detach_volume (GET /disks/<uuid>/mounts)";
        let mounts = s
            .pdisk
            .mounts(uuid)
            .await
            .map_err(|e| Error::remote(context(mounts_op), e))?;
        if mounts.is_empty() {
            return Err(Error::state(
                context(mounts_op),
                format!("volume {uuid} is not attached to any node"),
            ));
        }
        let pool_context = || ctx(&s.name, s.one.url(), "detach_volume (one.vmpool.info)");
        let pool = s
            .one
            .vm_pool(POOL_MINE, POOL_STATE_ANY)
            .await
            .map_err(|e| Error::remote(pool_context(), e))?;
        let mut mine: HashSet<i64> = parse_pool(pool.as_bytes())
            .map_err(|e| Error::remote(pool_context(), e))?
            .into_iter()
            .map(|v| v.id)
            .collect();
        let others: Vec<i64> = mounts
            .iter()
            .map(|m| m.vm_id)
            .filter(|id| !mine.contains(id))
            .collect();
        for vm_id in others {
            if self.vm_is_gone(s, vm_id).await? {
                mine.insert(vm_id);
            }
        }
        let mut detached = Vec::new();
        for m in mounts.iter().filter(|m| mine.contains(&m.vm_id)) {
            let target = s.pdisk.detach(uuid, m.vm_id).await.map_err(|e| {
                Error::remote(
                    context("detach_volume (DELETE /disks/<uuid>/mounts/<id>)"),
                    e,
                )
            })?;
            detached.push((m.vm_id, target));
        }
        if detached.is_empty() {
            return Err(Error::state(
                context(mounts_op),
                format!("volume {uuid} is mounted only on VMs that are not yours"),
            ));
        }
        Ok(detached)
    }

    /// Whether VM `vm_id` no longer exists at the site (OpenNebula's `NO_EXISTS`); a VM that
    /// exists but is someone else's (readable or not) is not gone.
    async fn vm_is_gone(&self, s: &Site, vm_id: i64) -> Result<bool> {
        const NO_EXISTS: i64 = 0x400;
        const AUTHORIZATION: i64 = 0x200;
        match s.one.vm_info(vm_id).await {
            Ok(_) => Ok(false),
            Err(e @ OneError::Refused { .. }) => match e.service_code() {
                Some(NO_EXISTS) => Ok(true),
                Some(AUTHORIZATION) => Ok(false),
                _ => Err(Error::remote(
                    ctx(&s.name, s.one.url(), "detach_volume (one.vm.info)"),
                    e,
                )),
            },
            Err(e) => Err(Error::remote(
                ctx(&s.name, s.one.url(), "detach_volume (one.vm.info)"),
                e,
            )),
        }
    }
}

/// The instance type a VM was made from: `(name, cpu, ram MiB, swap MiB)`. CPU is `VCPU`, else
/// `CPU` rounded up; swap is the `TYPE = swap` disk (0 without one). The name is the instance type
/// with exactly these three values, else `custom-<cpu>cpu-<ram>mib-<swap>swap`. `None` when the
/// template has no CPU or MEMORY.
pub fn size_of(vm: &VmRecord, types: &[InstanceType]) -> Option<(String, u32, u64, u64)> {
    let cpu = match (vm.template.vcpu, vm.template.cpu) {
        (Some(v), _) => v,
        (None, Some(c)) if c.is_finite() && c > 0.0 && c <= f64::from(u32::MAX) => c.ceil() as u32,
        _ => return None,
    };
    let ram = vm.template.memory_mib?;
    let swap = vm
        .template
        .disks
        .iter()
        .find(|d| {
            d.disk_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("swap"))
        })
        .and_then(|d| d.size_mib)
        .unwrap_or(0);
    let name = types
        .iter()
        .find(|t| t.cpu == cpu && t.ram_mib == ram && t.swap_mib == swap)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| format!("custom-{cpu}cpu-{ram}mib-{swap}swap"));
    Some((name, cpu, ram, swap))
}

/// Whether an OpenNebula network name is a private one: StratusLab's `private` and `local`
/// networks, and any name containing `priv` (the 3.8.5 captures' `stratus-priv`).
fn is_private_network(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "local" || name.contains("priv")
}

/// A VM as the driver reports it. IPs: every NIC's `IP`, private for private networks (see
/// [`is_private_network`]), public otherwise. Image: the root disk's (`DISK_ID` 0, else the first
/// disk) image-repository `IMAGE` name when it has one, else the image id in its `SOURCE`
/// ([`image_id_of_source`]). Volumes: the other `pdisk:` disks, uuid → target.
/// [`node_record`] at site `s`: on a plain OpenNebula site the image is the id of the
/// `NodeImage` it was booted from (`template-<n>@<site>`, else `image-<n>@<site>`).
pub fn site_node_record(s: &Site, vm: VmRecord, types: &[InstanceType]) -> NodeRecord {
    let mut record = node_record(&s.name, vm, types);
    if s.kind == SiteKind::OpenNebula {
        record.image_id = opennebula::node_image_id(&s.name, &record.vm);
    }
    record
}

pub fn node_record(site: &str, vm: VmRecord, types: &[InstanceType]) -> NodeRecord {
    let mut public_ips = Vec::new();
    let mut private_ips = Vec::new();
    for nic in &vm.template.nics {
        let Some(ip) = nic.ip.clone() else { continue };
        if is_private_network(nic.network.as_deref().unwrap_or("")) {
            private_ips.push(ip);
        } else {
            public_ips.push(ip);
        }
    }
    let root = vm
        .template
        .disks
        .iter()
        .find(|d| d.disk_id == Some(0))
        .or_else(|| vm.template.disks.first());
    let image_id = root.and_then(|d| {
        d.image
            .clone()
            .or_else(|| d.source.as_deref().map(image_id_of_source))
    });
    let mut volumes = BTreeMap::new();
    for d in &vm.template.disks {
        if let (Some(src), Some(target)) = (d.source.as_deref(), d.target.as_deref()) {
            if src.starts_with("pdisk:") && Some(d) != root {
                volumes.insert(image_id_of_source(src), target.to_owned());
            }
        }
    }
    NodeRecord {
        site: site.to_owned(),
        state: states::node_state(vm.state, vm.lcm_state),
        size: size_of(&vm, types),
        public_ips,
        private_ips,
        image_id,
        volumes: Some(volumes),
        vm,
    }
}

/// The disk target prefix of a bus (spec §3.5).
fn bus_prefix(bus: &str) -> Result<&'static str> {
    match bus.to_ascii_lowercase().as_str() {
        "ide" => Ok("hd"),
        "scsi" => Ok("sd"),
        "virtio" => Ok("vd"),
        other => Err(Error::invalid(format!(
            "Unknown disks bus type '{other}' (ide, scsi or virtio)"
        ))),
    }
}

/// The operation named in `list_images` errors.
const LIST_IMAGES: &str = "list_images (GET /metadata)";

/// The listings `list_images` reads, in rank order.
fn image_statuses(include_expired: bool, include_deprecated: bool) -> Vec<StatusFilter> {
    let mut statuses = vec![StatusFilter::Valid];
    if include_expired {
        statuses.push(StatusFilter::Expired);
    }
    if include_deprecated {
        statuses.push(StatusFilter::Deprecated);
    }
    statuses
}

/// Trusted but checked: deprecation is in the document itself, so an entry that contradicts
/// the status it was listed under is dropped (and said so).
fn checked_entries(
    site: &str,
    status: StatusFilter,
    entries: Vec<MarketplaceResult<ImageEntry>>,
) -> Vec<MarketplaceResult<ImageEntry>> {
    let wants_deprecated = status == StatusFilter::Deprecated;
    entries
        .into_iter()
        .filter(|e| match e {
            Ok(entry) if entry.deprecated.is_some() != wants_deprecated => {
                log::warn!(
                    target: "stratuslab_libcloud",
                    "site '{site}': Marketplace listed {} as {} but the entry says otherwise; dropped",
                    entry.identifier,
                    status.as_param()
                );
                false
            }
            _ => true,
        })
        .collect()
}

/// `list_images`' filters: OS and architecture (case-insensitive), endorser e-mail.
pub fn image_matches(
    e: &ImageEntry,
    os: Option<&str>,
    arch: Option<&str>,
    endorser: Option<&str>,
) -> bool {
    let eq = |a: &Option<String>, b: Option<&str>| match b {
        None => true,
        Some(b) => a
            .as_deref()
            .map(|a| a.eq_ignore_ascii_case(b))
            .unwrap_or(false),
    };
    eq(&e.os, os)
        && eq(&e.arch, arch)
        && match endorser {
            None => true,
            Some(m) => e
                .endorser
                .as_ref()
                .map(|x| x.email.eq_ignore_ascii_case(m))
                .unwrap_or(false),
        }
}

type MarketplaceResult<T> = std::result::Result<T, marketplace::MarketplaceError>;

/// One image per identifier from ranked listing entries (rank = position of the listing's
/// status: valid before expired before deprecated): the best-ranked entry wins, then the newest
/// endorsement (several endorsers of one image, or several dates). Listing order is kept.
/// Unreadable entries are skipped with a warning (the first one's error is returned too); an
/// identifier that does not match the SHA-1 checksum is logged (and flagged in the entry).
fn select_images(
    entries: Vec<(usize, MarketplaceResult<ImageEntry>)>,
) -> (Vec<ImageEntry>, Option<marketplace::MarketplaceError>) {
    let (winners, first_error) = select_image_indices(&entries);
    let mut taken: Vec<Option<MarketplaceResult<ImageEntry>>> =
        entries.into_iter().map(|(_, e)| Some(e)).collect();
    let first_error = first_error
        .and_then(|i| taken.get_mut(i).and_then(Option::take))
        .and_then(|e| e.err());
    let out = winners
        .into_iter()
        .filter_map(|i| taken.get_mut(i).and_then(Option::take))
        .filter_map(|e| e.ok())
        .collect();
    (out, first_error)
}

/// [`select_images`] by index: the winners' indices into `entries`, in output order, and the
/// index of the first unreadable entry. Logs as `select_images` does.
pub fn select_image_indices(
    entries: &[(usize, MarketplaceResult<ImageEntry>)],
) -> (Vec<usize>, Option<usize>) {
    // `order[slot]` is the index in `entries` of the best entry of the `slot`-th identifier
    // met (by reference: no identifier copied).
    let mut order: Vec<usize> = Vec::with_capacity(entries.len());
    let mut slot_of: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    let mut first_error = None;
    for (i, (rank, entry)) in entries.iter().enumerate() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "skipping an unreadable Marketplace entry: {e}");
                first_error.get_or_insert(i);
                continue;
            }
        };
        if entry.identifier_mismatch {
            log::warn!(target: "stratuslab_libcloud", "Marketplace entry {}: identifier does not match its SHA-1 checksum {}", entry.identifier, entry.sha1().unwrap_or(""));
        }
        match slot_of.entry(entry.identifier.as_str()) {
            std::collections::hash_map::Entry::Occupied(slot) => {
                let best_index = &mut order[*slot.get()];
                if let (best_rank, Ok(best)) = &entries[*best_index] {
                    if rank < best_rank || (rank == best_rank && entry.created > best.created) {
                        *best_index = i;
                    }
                }
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(order.len());
                order.push(i);
            }
        }
    }
    (order, first_error)
}

fn expand_home(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", std::env::var("HOME").unwrap_or_default()),
        None => path.to_owned(),
    }
}

fn is_pdisk_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| {
            p.len() == *n
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The image id in a root-disk source: the Marketplace identifier of `…/metadata/<id>`, the
/// UUID of a `pdisk:` source, else the source itself.
pub fn image_id_of_source(source: &str) -> String {
    if let Some(i) = source.find("/metadata/") {
        let rest = &source[i + "/metadata/".len()..];
        let id = rest.split('/').next().unwrap_or(rest);
        return id.to_owned();
    }
    if source.starts_with("pdisk:") {
        return source
            .rsplit(['/', ':'])
            .next()
            .unwrap_or(source)
            .to_owned();
    }
    source.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn action_names_per_version() {
        use NodeAction::*;
        assert_eq!(action_name(Destroy, v("3.2.1"), 3), Some("finalize"));
        assert_eq!(action_name(Destroy, v("3.8.5"), 3), Some("finalize"));
        assert_eq!(action_name(Destroy, v("4.14.2"), 3), Some("delete"));
        assert_eq!(action_name(Destroy, v("5.12.0"), 3), Some("terminate-hard"));
        assert_eq!(action_name(Reboot, v("3.2.1"), 3), Some("reboot"));
        assert_eq!(action_name(Reboot, v("3.8.5"), 3), Some("reboot"));
        assert_eq!(action_name(Stop, v("3.2.1"), 3), Some("stop"));
        assert_eq!(action_name(Stop, v("3.8.5"), 3), Some("poweroff"));
        assert_eq!(action_name(Start, v("3.8.5"), 8), Some("restart"));
        assert_eq!(action_name(Start, v("3.8.5"), 4), Some("resume"));
        assert_eq!(action_name(Start, v("5.12.0"), 8), Some("resume"));
        assert_eq!(action_name(Start, v("3.2.1"), 4), Some("resume"));
    }

    fn entry(id: &str, email: &str, created: &str) -> ImageEntry {
        ImageEntry {
            identifier: id.to_owned(),
            created: Some(created.to_owned()),
            endorser: Some(marketplace::Endorser {
                email: email.to_owned(),
                ..marketplace::Endorser::default()
            }),
            ..ImageEntry::default()
        }
    }

    #[test]
    fn select_images_one_per_identifier_valid_first_then_newest() {
        let a = "AAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let b = "BBBBBBBBBBBBBBBBBBBBBBBBBBB";
        let entries = vec![
            (0, Ok(entry(a, "old@x.org", "2012-01-01T00:00:00Z"))),
            (0, Ok(entry(b, "b@x.org", "2013-01-01T00:00:00Z"))),
            (0, Ok(entry(a, "new@x.org", "2014-01-01T00:00:00Z"))),
            (
                0,
                Err(marketplace::MarketplaceError::Entry { reason: "r".into() }),
            ),
            // expired (rank 1) and newer: loses to the valid one
            (1, Ok(entry(a, "expired@x.org", "2015-01-01T00:00:00Z"))),
            // deprecated and newer: loses to b's valid entry
            (2, Ok(entry(b, "deprecated@x.org", "2016-01-01T00:00:00Z"))),
        ];
        let (images, error) = select_images(entries);
        let got: Vec<(&str, &str)> = images
            .iter()
            .map(|e| {
                (
                    e.identifier.as_str(),
                    e.endorser.as_ref().map(|x| x.email.as_str()).unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(got, [(a, "new@x.org"), (b, "b@x.org")]);
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("invalid Marketplace entry: r")
        );
        let (images, error) = select_images(vec![
            (2, Ok(entry(a, "d@x.org", "2016-01-01T00:00:00Z"))),
            (1, Ok(entry(a, "e@x.org", "2010-01-01T00:00:00Z"))),
        ]);
        assert_eq!(images[0].endorser.as_ref().unwrap().email, "e@x.org");
        assert!(error.is_none());
    }

    #[test]
    fn image_ids_from_sources() {
        assert_eq!(
            image_id_of_source(
                "https://marketplace.stratuslab.eu/metadata/Pd1C0IktTPRXFPGlEHfxrF7gxOF"
            ),
            "Pd1C0IktTPRXFPGlEHfxrF7gxOF"
        );
        assert_eq!(
            image_id_of_source("pdisk:154.48.152.10:8445/95b75092-17d2-459f-9fa0-cd1deaa721f1"),
            "95b75092-17d2-459f-9fa0-cd1deaa721f1"
        );
        assert_eq!(image_id_of_source("dummy_path"), "dummy_path");
        assert!(is_pdisk_uuid("95b75092-17d2-459f-9fa0-cd1deaa721f1"));
        assert!(!is_pdisk_uuid("95B75092-17d2-459f-9fa0-cd1deaa721f1"));
    }

    /// What a fixture VM must become.
    struct Want {
        id: i64,
        name: &'static str,
        state: &'static str,
        public: &'static [&'static str],
        private: &'static [&'static str],
        size: Option<(&'static str, u32, u64, u64)>,
        image: Option<&'static str>,
        host: Option<&'static str>,
        volumes: &'static [(&'static str, &'static str)],
        created: i64,
    }

    const PROBE_1: Want = Want {
        id: 0,
        name: "probe-vm-1",
        state: "running",
        public: &[],
        private: &["192.168.100.1"],
        size: Some(("custom-1cpu-256mib-128swap", 1, 256, 128)),
        image: Some("ttylinux"),
        host: Some("dummyhost"),
        volumes: &[],
        created: 1795655396,
    };
    const PROBE_5: Want = Want {
        id: 4,
        name: "probe-vm-5",
        state: "running",
        public: &[],
        private: &["192.168.100.50"],
        size: Some(("custom-1cpu-512mib-0swap", 1, 512, 0)),
        image: Some("AbCdEf"),
        host: Some("dummyhost"),
        volumes: &[],
        created: 1795655425,
    };
    const fn probe(id: i64, name: &'static str, state: &'static str, created: i64) -> Want {
        Want {
            id,
            name,
            state,
            created,
            ..PROBE_1
        }
    }
    const PROBE_1_DONE: Want = probe(0, "probe-vm-1", "terminated", 1795655396);
    const PROBE_2_DONE: Want = probe(1, "probe-vm-2", "terminated", 1795655406);
    const PROBE_3_DONE: Want = probe(2, "probe-vm-3", "terminated", 1795655415);
    const PROBE_1_PENDING: Want = Want {
        state: "pending",
        host: None,
        ..PROBE_1
    };

    /// Every 3.8.5 `vm-info*` / `vmpool-info*` capture and the StratusLab 3.2 sample, decoded.
    fn golden() -> Vec<(&'static str, Vec<Want>)> {
        vec![
            ("opennebula-3.8.5/vm-info.xml", vec![PROBE_1]),
            (
                "opennebula-3.8.5/vm-info-pending.xml",
                vec![PROBE_1_PENDING],
            ),
            (
                "opennebula-3.8.5/vm-info-poweroff.xml",
                vec![Want {
                    state: "stopped",
                    ..PROBE_1
                }],
            ),
            ("opennebula-3.8.5/vm-info-done.xml", vec![PROBE_1_DONE]),
            ("opennebula-3.8.5/vm-info-monitored.xml", vec![PROBE_5]),
            ("opennebula-3.8.5/vm-info-source-disk.xml", vec![PROBE_5]),
            ("opennebula-3.8.5/vmpool-info.xml", vec![PROBE_1]),
            ("opennebula-3.8.5/vmpool-info-mine.xml", vec![PROBE_1]),
            (
                "opennebula-3.8.5/vmpool-info-pending.xml",
                vec![PROBE_1_PENDING],
            ),
            (
                "opennebula-3.8.5/vmpool-info-done.xml",
                vec![PROBE_1_DONE, PROBE_2_DONE, PROBE_3_DONE],
            ),
            (
                "opennebula-3.8.5/vmpool-info-all.xml",
                vec![
                    PROBE_1_DONE,
                    PROBE_2_DONE,
                    PROBE_3_DONE,
                    probe(3, "probe-vm-4", "running", 1795655420),
                    PROBE_5,
                    Want {
                        id: 5,
                        name: "y",
                        state: "pending",
                        public: &[],
                        private: &[],
                        size: Some(("custom-1cpu-64mib-0swap", 1, 64, 0)),
                        image: None,
                        host: None,
                        volumes: &[],
                        created: 1795655430,
                    },
                ],
            ),
            (
                "stratuslab/compute/vm-with-extra-disk-in-pdisk.xml",
                vec![Want {
                    id: 10755,
                    name: "withlun.1:a9bc274f-42c0-4e76-ae16-0cc2fbe92a46",
                    state: "running",
                    public: &["192.187.24.93"],
                    private: &[],
                    size: Some(("custom-2cpu-16384mib-1536swap", 2, 16384, 1536)),
                    image: Some("Pd1C0IktTPRXFPGlEHfxrF7gxOF"),
                    host: Some("192.168.112.64"),
                    volumes: &[("95b75092-17d2-459f-9fa0-cd1deaa721f1", "vdc")],
                    created: 1419246046,
                }],
            ),
        ]
    }

    fn fixture(path: &str) -> Vec<u8> {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    #[test]
    fn golden_nodes_from_every_real_capture() {
        let types = crate::config::default_instance_types();
        let cases = golden();
        for (path, wants) in &cases {
            let xml = fixture(path);
            let vms = if path.contains("vmpool-info") {
                parse_pool(&xml).unwrap()
            } else {
                vec![parse_vm(&xml).unwrap()]
            };
            assert_eq!(vms.len(), wants.len(), "{path}: number of VMs");
            for (vm, want) in vms.into_iter().zip(wants) {
                let r = node_record("lal", vm, &types);
                let at = format!("{path} VM {}", want.id);
                assert_eq!(r.site, "lal", "{at}");
                assert_eq!(r.vm.id, want.id, "{at}");
                assert_eq!(r.vm.name, want.name, "{at}");
                assert_eq!(r.state, want.state, "{at}");
                assert_eq!(r.public_ips, want.public, "{at}: public ips");
                assert_eq!(r.private_ips, want.private, "{at}: private ips");
                assert_eq!(
                    r.size,
                    want.size.map(|(n, c, m, s)| (n.to_owned(), c, m, s)),
                    "{at}: size"
                );
                assert_eq!(r.image_id.as_deref(), want.image, "{at}: image");
                assert_eq!(r.vm.current_host(), want.host, "{at}: host");
                let volumes: Vec<(&str, &str)> = r
                    .volumes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(volumes, want.volumes, "{at}: volumes");
                assert_eq!(r.vm.stime, want.created, "{at}: created");
            }
        }
        // Every capture of these kinds is covered (a new one must be added to the table).
        let dir = format!(
            "{}/tests/fixtures/opennebula-3.8.5",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                (n.starts_with("vm-info") || n.starts_with("vmpool-info")) && n.ends_with(".xml")
            })
            .map(|n| format!("opennebula-3.8.5/{n}"))
            .collect();
        on_disk.sort();
        let mut covered: Vec<String> = cases
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| p.starts_with("opennebula-3.8.5/"))
            .collect();
        covered.sort();
        assert_eq!(covered, on_disk);
    }

    #[test]
    fn sizes_match_configured_instance_types_exactly() {
        let xml = fixture("opennebula-3.8.5/vm-info.xml");
        let mut types = crate::config::default_instance_types();
        let r = node_record("lal", parse_vm(&xml).unwrap(), &types);
        assert_eq!(r.size.unwrap().0, "custom-1cpu-256mib-128swap");
        // Same CPU and RAM but another swap is not that type.
        types.push(InstanceType {
            name: "probe.other-swap".into(),
            cpu: 1,
            ram_mib: 256,
            swap_mib: 512,
        });
        let r = node_record("lal", parse_vm(&xml).unwrap(), &types);
        assert_eq!(r.size.unwrap().0, "custom-1cpu-256mib-128swap");
        types.push(InstanceType {
            name: "probe.tiny".into(),
            cpu: 1,
            ram_mib: 256,
            swap_mib: 128,
        });
        let r = node_record("lal", parse_vm(&xml).unwrap(), &types);
        assert_eq!(r.size, Some(("probe.tiny".to_owned(), 1, 256, 128)));
        // A template without MEMORY has no size; a CPU of 0.5 without VCPU counts as 1.
        let mut vm = parse_vm(&xml).unwrap();
        vm.template.vcpu = None;
        assert_eq!(size_of(&vm, &types).unwrap().1, 1);
        vm.template.cpu = Some(f64::NAN);
        assert_eq!(size_of(&vm, &types), None);
        vm.template.cpu = Some(2.5);
        vm.template.memory_mib = None;
        assert_eq!(size_of(&vm, &types), None);
    }

    #[test]
    fn network_names_decide_public_or_private() {
        for (name, private) in [
            ("public", false),
            ("PUBLIC", false),
            ("private", true),
            ("local", true),
            ("stratus-priv", true),
            ("Private-LAN", true),
            ("", false),
            ("localnet", false),
        ] {
            assert_eq!(is_private_network(name), private, "{name}");
        }
    }
}
