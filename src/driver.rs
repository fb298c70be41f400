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

mod images;
mod listing;
mod nodes;
mod opennebula;
mod records;
mod volumes;
pub use images::*;
pub use listing::{
    by_site, ImageCollector, ImageFilter, ImagesListed, Listed, NodeCollector, NodesListed,
};
pub use nodes::*;
pub use opennebula::{parse_ref, PlainImage, PlainRef, PlainVolume, SiteKind, SITE_TYPE_KEY};
pub use records::*;

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

/// A site's services, for the context of their errors ([`Site::context`], [`At::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Compute,
    Pdisk,
    Marketplace,
}

impl Site {
    /// Where a call happens: this site, the endpoint of `service`, `operation`.
    pub(crate) fn context(&self, service: Service, operation: &str) -> Context {
        let endpoint = match service {
            Service::Compute => self.one.url(),
            Service::Pdisk => self.pdisk.base_url(),
            Service::Marketplace => self.marketplace.endpoint(),
        };
        Context::new(&self.name, endpoint, operation)
    }
}

/// Attaches where a remote failure happened (site, endpoint, operation) to it: the one way the
/// driver core turns a client's error into the crate's [`Error`].
pub(crate) trait At<T> {
    fn at(self, site: &Site, service: Service, operation: &str) -> Result<T>;
}

impl<T, E: crate::error::RemoteFailure> At<T> for std::result::Result<T, E> {
    fn at(self, site: &Site, service: Service, operation: &str) -> Result<T> {
        self.map_err(|e| Error::remote(site.context(service, operation), e))
    }
}

/// The context of a failure that is not a call to a site's service (configuration, TLS setup).
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
}
