//! The Rust handle of a running local cloud (what the Python `LocalCloud` wraps): start it with
//! [`LocalCloudOptions`], read its endpoints and generated `stratuslab-user.cfg`, seed VMs,
//! volumes and images, inject faults, inspect state, stop it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::compute::{ComputeOptions, ComputeState, NetworkSpec};
use super::faults::{FaultRule, FaultSet, Service};
use super::marketplace::Catalog;
use super::pdisk::{DiskState, PdiskStore};
use super::server::{Server, Shared, SiteState};
use super::tls::TlsMaterial;
use crate::error::{Classify, Kind};

/// Everything that can go wrong starting or driving a local cloud.
#[derive(Debug, thiserror::Error)]
pub enum LocalCloudError {
    /// The listening socket could not be opened.
    #[error("local cloud cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A generated file could not be written.
    #[error("local cloud cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Generating the CA, a certificate or the TLS configuration failed.
    #[error("local cloud TLS setup failed: {message}")]
    Tls { message: String },
    /// An option value is unusable.
    #[error("invalid local cloud option: {message}")]
    InvalidOption { message: String },
    /// No site by that name.
    #[error("the local cloud has no site named {site:?}")]
    UnknownSite { site: String },
    /// Client certificates need TLS.
    #[error(
        "the local cloud runs without TLS (start it with tls = true to issue client certificates)"
    )]
    TlsDisabled,
    /// The Marketplace refused a document.
    #[error("the local Marketplace rejected the document: {message}")]
    Marketplace { message: String },
    /// A request handler panicked while holding the state.
    #[error("local cloud state is unavailable after a panic in a request handler")]
    Poisoned,
}

impl Classify for LocalCloudError {
    fn kind(&self) -> Kind {
        match self {
            LocalCloudError::InvalidOption { .. }
            | LocalCloudError::UnknownSite { .. }
            | LocalCloudError::Marketplace { .. } => Kind::InvalidArgument,
            LocalCloudError::TlsDisabled => Kind::Unsupported,
            LocalCloudError::Bind { .. }
            | LocalCloudError::Io { .. }
            | LocalCloudError::Tls { .. }
            | LocalCloudError::Poisoned => Kind::Internal,
        }
    }
}

/// How to build the local cloud.
#[derive(Debug, Clone)]
pub struct LocalCloudOptions {
    /// Site names (each becomes the first path segment of its services).
    pub sites: Vec<String>,
    /// Accepted (username, password) pairs; the first one goes into `config_text`.
    pub users: Vec<(String, String)>,
    /// OpenNebula version knob: `3.2`, `3.8` (default), `4.x`, `5.x`.
    pub version: String,
    /// Time between lifecycle steps (0 = straight to RUNNING).
    pub boot_step: Duration,
    /// Delay before every reply.
    pub latency: Duration,
    /// Serve HTTPS with a generated CA.
    pub tls: bool,
    /// Port on 127.0.0.1 (0 = ephemeral).
    pub port: u16,
    /// `public` network: first address and count per site (site `i` starts `i × count` further).
    pub public_network: (Ipv4Addr, u32),
    /// `private` network, same rule.
    pub private_network: (Ipv4Addr, u32),
    /// `local` network, same rule.
    pub local_network: (Ipv4Addr, u32),
    /// Start the Marketplace with its default (synthetic) entries.
    pub marketplace_seed: bool,
    /// `stratuslab` (default) or `opennebula` (a plain daemon: image, template and vnet pools,
    /// hot-plug; its config section has `site_type = opennebula` and the `/RPC2` endpoint).
    pub site_type: String,
    /// Per-site `version` and `site_type`, overriding the two above (one local cloud can mix
    /// kinds and versions).
    pub site_options: std::collections::BTreeMap<String, SiteKnobs>,
}

/// One site's own version and kind ([`LocalCloudOptions::site_options`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteKnobs {
    pub version: Option<String>,
    pub site_type: Option<String>,
}

impl Default for LocalCloudOptions {
    fn default() -> Self {
        LocalCloudOptions {
            sites: vec!["lal".into()],
            users: vec![("alice".into(), "secret-pw".into())],
            version: "3.8".into(),
            boot_step: Duration::from_millis(50),
            latency: Duration::ZERO,
            tls: false,
            port: 0,
            public_network: (Ipv4Addr::new(192, 0, 2, 10), 100),
            private_network: (Ipv4Addr::new(10, 1, 0, 1), 20_000),
            local_network: (Ipv4Addr::new(172, 16, 0, 1), 100),
            marketplace_seed: true,
            site_type: "stratuslab".into(),
            site_options: std::collections::BTreeMap::new(),
        }
    }
}

/// The URLs of one site's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteEndpoints {
    /// Second-generation one-proxy URL (`…/<site>/one-proxy/xmlrpc`; clients insert `/pswd/`).
    pub compute: String,
    /// Direct oned URL (`…/<site>/RPC2`).
    pub rpc2: String,
    /// pdisk base (`…/<site>/pdisk`; clients append `/pswd/disks/`).
    pub pdisk: String,
    /// The global Marketplace (`…/marketplace`).
    pub marketplace: String,
}

/// Template of seeded VMs (synthetic, shaped like the 3.8.5 capture's `vm-template-1.txt`).
const SEED_TEMPLATE: &str = r#"CPU = 0.5
VCPU = 1
MEMORY = 256
DISK = [ IMAGE_ID = 0, TARGET = "hda" ]
DISK = [ TYPE = "swap", SIZE = 128, TARGET = "hdb" ]
NIC = [ NETWORK = "private", NETWORK_UNAME = "oneadmin" ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [
  HOSTNAME = "$NAME",
  IP_PUBLIC = "$NIC[IP]",
  SSH_PUBLIC_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 seed@localcloud.example.org",
  TARGET = "hdc" ]
"#;

/// Site names the router reserves.
const RESERVED_SITES: [&str; 2] = ["marketplace", "metadata"];

/// A running local cloud.
pub struct LocalCloud {
    shared: Arc<Shared>,
    server: Server,
    sites: Vec<String>,
    users: Vec<(String, String)>,
    /// The plain OpenNebula sites.
    plain: std::collections::HashSet<String>,
}

impl std::fmt::Debug for LocalCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCloud")
            .field("port", &self.server.port())
            .field("sites", &self.sites)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The `index`-th site's slice of a network.
fn site_network(
    name: &str,
    bridge: &str,
    (first, count): (Ipv4Addr, u32),
    index: usize,
) -> Result<NetworkSpec, LocalCloudError> {
    let start = u64::from(u32::from(first)) + u64::from(count) * index as u64;
    let start = u32::try_from(start)
        .ok()
        .filter(|s| count > 0 && u64::from(*s) + u64::from(count) <= 1 << 32)
        .ok_or_else(|| LocalCloudError::InvalidOption {
            message: format!(
                "{name} network: {count} addresses from {first} for site #{index} do not fit in IPv4"
            ),
        })?;
    Ok(NetworkSpec {
        name: name.into(),
        first: Ipv4Addr::from(start),
        count,
        bridge: bridge.into(),
    })
}

/// The location name and country of a site in the generated configuration: StratusLab's own
/// sites by institute and city, any other by its section name; always marked as local.
fn display(site: &str) -> (String, &'static str) {
    let (place, country) = match site {
        "lal" => ("LAL, Orsay", "FR"),
        "grnet" => ("GRNET, Athens", "GR"),
        "cesnet" => ("CESNET, Prague", "CZ"),
        "ifca" => ("IFCA, Santander", "ES"),
        "tcd" => ("TCD, Dublin", "IE"),
        _ => (site, "EU"),
    };
    (format!("{place} (local cloud)"), country)
}

impl LocalCloud {
    /// Builds every site and starts serving.
    pub async fn start(options: LocalCloudOptions) -> Result<LocalCloud, LocalCloudError> {
        if options.sites.is_empty() {
            return Err(LocalCloudError::InvalidOption {
                message: "at least one site is needed".into(),
            });
        }
        let mut sites = std::collections::HashMap::new();
        let mut plain = std::collections::HashSet::new();
        if let Some(unknown) = options
            .site_options
            .keys()
            .find(|k| !options.sites.contains(k))
        {
            return Err(LocalCloudError::InvalidOption {
                message: format!("site_options names {unknown:?}, which is not a site"),
            });
        }
        for (index, site) in options.sites.iter().enumerate() {
            let knobs = options.site_options.get(site).cloned().unwrap_or_default();
            let version = knobs.version.unwrap_or_else(|| options.version.clone());
            let is_plain = match knobs
                .site_type
                .as_deref()
                .unwrap_or(&options.site_type)
                .trim()
            {
                "stratuslab" => false,
                "opennebula" => true,
                other => {
                    return Err(LocalCloudError::InvalidOption {
                        message: format!(
                            "site {site:?}: site_type {other:?} (stratuslab or opennebula)"
                        ),
                    })
                }
            };
            if is_plain {
                plain.insert(site.clone());
            }
            let valid = !site.is_empty()
                && site
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !RESERVED_SITES.contains(&site.as_str());
            if !valid || sites.contains_key(site) {
                return Err(LocalCloudError::InvalidOption {
                    message: format!(
                        "site name {site:?} must be unique, made of letters, digits, '-' or '_', and not {RESERVED_SITES:?}"
                    ),
                });
            }
            let compute = ComputeState::new(
                &version,
                ComputeOptions {
                    boot_step: options.boot_step,
                    networks: vec![
                        site_network("public", "br0", options.public_network, index)?,
                        site_network("private", "br1", options.private_network, index)?,
                        site_network("local", "br0", options.local_network, index)?,
                    ],
                    hosts: vec![
                        format!("node-1.{site}.localcloud"),
                        format!("node-2.{site}.localcloud"),
                    ],
                    users: options.users.iter().map(|(u, _)| u.clone()).collect(),
                    plain: is_plain,
                },
            )?;
            sites.insert(
                site.clone(),
                Mutex::new(SiteState::new(compute, PdiskStore::new("pdisk"))),
            );
        }
        let tls = if options.tls {
            Some(Arc::new(TlsMaterial::generate()?))
        } else {
            None
        };
        let catalog = if options.marketplace_seed {
            Catalog::with_default_entries()
        } else {
            Catalog::new()
        };
        let shared = Arc::new(Shared {
            sites,
            users: options.users.clone(),
            catalog: RwLock::new(catalog),
            faults: Mutex::new(FaultSet::new()),
            clock: Mutex::new(None),
            latency: options.latency,
            dropped: std::sync::atomic::AtomicU64::new(0),
            tls,
        });
        let server = Server::start(shared.clone(), options.port).await?;
        Ok(LocalCloud {
            shared,
            server,
            sites: options.sites,
            users: options.users,
            plain,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>` (or `https://`).
    pub fn base_url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port())
    }

    /// The site names, in order.
    pub fn sites(&self) -> &[String] {
        &self.sites
    }

    /// The URLs of `site`'s services.
    pub fn endpoints(&self, site: &str) -> Option<SiteEndpoints> {
        if !self.shared.sites.contains_key(site) {
            return None;
        }
        let base = self.base_url();
        Some(SiteEndpoints {
            compute: format!("{base}/{site}/one-proxy/xmlrpc"),
            rpc2: format!("{base}/{site}/RPC2"),
            pdisk: format!("{base}/{site}/pdisk"),
            marketplace: format!("{base}/marketplace"),
        })
    }

    /// A `stratuslab-user.cfg` for this cloud: `[default]` selects the first site and carries the
    /// first user's credentials; one section per site.
    pub fn config_text(&self) -> String {
        let mut text = String::from("[default]\n");
        if let Some(first) = self.sites.first() {
            text.push_str(&format!("selected_section = {first}\n"));
        }
        if let Some((user, password)) = self.users.first() {
            text.push_str(&format!("username = {user}\npassword = {password}\n"));
        }
        for site in &self.sites {
            let (name, country) = display(site);
            if let (Some(e), true) = (self.endpoints(site), self.plain.contains(site)) {
                text.push_str(&format!(
                    "\n[{site}]\nsite_type = opennebula\nendpoint = {}\nname = {name}\ncountry = {country}\n",
                    e.rpc2,
                ));
            } else if let Some(e) = self.endpoints(site) {
                text.push_str(&format!(
                    "\n[{site}]\nendpoint = {}\npdisk_endpoint = {}\nmarketplace_endpoint = {}\nname = {name}\ncountry = {country}\n",
                    e.compute,
                    e.pdisk,
                    e.marketplace,
                ));
            }
        }
        text
    }

    /// The CA certificate (PEM) to trust, when TLS is on.
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        self.shared.tls.as_ref().map(|t| t.ca_pem_path().to_owned())
    }

    /// Issues a client certificate (subject `CN=<user>,O=StratusLab Local Cloud`) for the
    /// `/cert` contexts; returns (certificate PEM path, key PEM path).
    pub fn issue_client_cert(&self, user: &str) -> Result<(PathBuf, PathBuf), LocalCloudError> {
        self.shared
            .tls
            .as_ref()
            .ok_or(LocalCloudError::TlsDisabled)?
            .issue_client_cert(user)
    }

    fn with_site<T>(
        &self,
        site: &str,
        f: impl FnOnce(&mut SiteState) -> T,
    ) -> Result<T, LocalCloudError> {
        let state = self
            .shared
            .sites
            .get(site)
            .ok_or_else(|| LocalCloudError::UnknownSite { site: site.into() })?;
        let mut guard = state.lock().map_err(|_| LocalCloudError::Poisoned)?;
        Ok(f(&mut guard))
    }

    /// Adds `n` RUNNING VMs owned by `owner` at `site`; returns their ids.
    pub fn seed_vms(&self, site: &str, n: usize, owner: &str) -> Result<Vec<i64>, LocalCloudError> {
        let now = now_unix();
        self.with_site(site, |s| s.compute.seed_vms(now, n, owner, SEED_TEMPLATE))?
    }

    /// Adds `n` volumes owned by `owner` at `site`.
    pub fn seed_volumes(&self, site: &str, n: usize, owner: &str) -> Result<(), LocalCloudError> {
        self.with_site(site, |s| s.pdisk.seed(n, owner))
    }

    /// Adds `n` synthetic Marketplace entries.
    pub fn seed_images(&self, n: usize) -> Result<(), LocalCloudError> {
        self.shared
            .catalog
            .write()
            .map_err(|_| LocalCloudError::Poisoned)?
            .seed(n);
        Ok(())
    }

    /// Loads a (real or synthetic) Marketplace RDF/XML entry; returns its identifier.
    pub fn load_marketplace_document(&self, rdf: &str) -> Result<String, LocalCloudError> {
        self.shared
            .catalog
            .write()
            .map_err(|_| LocalCloudError::Poisoned)?
            .add_document(rdf)
            .map_err(|e| LocalCloudError::Marketplace {
                message: e.to_string(),
            })
    }

    /// Sets the Marketplace's "now" (Unix seconds) for validity checks; `None` = real time.
    pub fn set_clock(&self, unix: Option<i64>) -> Result<(), LocalCloudError> {
        *self
            .shared
            .clock
            .lock()
            .map_err(|_| LocalCloudError::Poisoned)? = unix;
        Ok(())
    }

    /// Adds a fault-injection rule.
    pub fn inject_fault(&self, rule: FaultRule) -> Result<(), LocalCloudError> {
        self.shared
            .faults
            .lock()
            .map_err(|_| LocalCloudError::Poisoned)?
            .add(rule);
        Ok(())
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) -> Result<(), LocalCloudError> {
        self.shared
            .faults
            .lock()
            .map_err(|_| LocalCloudError::Poisoned)?
            .clear();
        Ok(())
    }

    /// Requests whose handling was dropped before the reply (the client closed the connection).
    pub fn dropped_count(&self) -> u64 {
        self.shared
            .dropped
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests seen for (site, service, op): `site` "" is the Marketplace; `op` is the XML-RPC
    /// method or `"GET /disks"` style, `"*"` for all; [`Service::Any`] sums services.
    pub fn request_count(&self, site: &str, service: Service, op: &str) -> u64 {
        self.shared
            .faults
            .lock()
            .map(|f| f.count(site, service, op))
            .unwrap_or(0)
    }

    /// The template text VM `vm_id` of `site` was allocated with.
    pub fn vm_template(&self, site: &str, vm_id: i64) -> Option<String> {
        self.with_site(site, |s| s.compute.vm_template(vm_id).map(str::to_owned))
            .ok()
            .flatten()
    }

    /// Every VM id of `site` (DONE included).
    pub fn vm_ids(&self, site: &str) -> Vec<i64> {
        self.with_site(site, |s| s.compute.vm_ids())
            .unwrap_or_default()
    }

    /// `(STATE, LCM_STATE)` of a VM, now.
    pub fn vm_state(&self, site: &str, id: i64) -> Option<(i32, i32)> {
        let now = now_unix();
        self.with_site(site, |s| s.compute.vm_state(now, id))
            .ok()
            .flatten()
    }

    /// Makes VM `id` of `site` FAILED with this error message (see `ComputeState::fail_vm`);
    /// `false` when there is no such live VM.
    pub fn fail_vm(&self, site: &str, id: i64, message: &str) -> Result<bool, LocalCloudError> {
        let now = now_unix();
        self.with_site(site, |s| s.compute.fail_vm(now, id, message))
    }

    /// The volumes of `site`.
    pub fn disks(&self, site: &str) -> Vec<DiskState> {
        let now = now_unix();
        self.with_site(site, |s| {
            s.settle(now);
            s.pdisk.disks()
        })
        .unwrap_or_default()
    }

    /// Stops the server and frees the port.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
