//! Exactly-once creation with client tokens, and fleet operations (many nodes across sites).
//!
//! **Client tokens.** Every create carries a token as the top-level template attribute
//! [`TOKEN_ATTRIBUTE`]. OpenNebula keeps an attribute it does not know where `one.vm.info` returns
//! it: in `TEMPLATE` on 3.2 and 3.8 (the 3.8.5 daemon returns it in `one.vmpool.info` too), in
//! `USER_TEMPLATE` from 4.0 on (`VirtualMachine.cc` at `release-4.14.2`: the user's template is
//! a template of its own). `one.vmpool.info` returns the whole document up to 5.6; from 5.8 it
//! answers a short body whose `USER_TEMPLATE` keeps only a few scheduler attributes
//! (`VirtualMachineTemplate::to_xml_short`, `release-5.8.0` to `release-7.4.0`), and 5.10 added
//! `one.vmpool.infoextended` with the whole documents. A token lookup therefore asks
//! [`OneClient::vm_pool_full`](crate::one::client::OneClient::vm_pool_full), and on 5.8–5.9 reads
//! the VMs of the node's name one by one.
//!
//! **Lost replies.** A failed `one.vm.allocate` is one of three things ([`lost_reply`]):
//! refused (nothing was created: an error tuple, a fault, 401, a connection never opened),
//! lost after the daemon may have acted (reset, truncated or unreadable reply, a 5xx from the
//! proxy), or possibly still in flight (a timeout, a 504). After a lost reply the token is looked
//! up at once; while a request may be in flight it is looked up until the VM appears or the
//! settle period has passed, and never sent again before. With retries on, an allocate whose VM
//! did not appear is sent again; whenever a create was sent more than once, and at the end of a
//! fleet create, VMs sharing a token are reduced to the oldest (the younger are destroyed).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, Semaphore};

use crate::driver::{site_node_record, CreateNode, Driver, NodeRecord, PreparedCreate, Site};
use crate::error::{Context, Error, Result};
use crate::http::TransportError;
use crate::one::client::{OneError, POOL_MINE, POOL_STATE_NOT_DONE};
use crate::one::vm::{parse_pool, VmRecord};
use crate::xmlrpc::XmlRpcError;

/// The template attribute carrying the client token.
pub const TOKEN_ATTRIBUTE: &str = "CLIENT_TOKEN";
/// How long a create whose request may still be in flight (a timeout) waits for its VM to appear
/// before it may be sent again or given up.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);
/// Requests in flight per site in a fleet operation: below the 15 connections oned's XML-RPC
/// server takes at once by default (`MAX_CONN` in `oned.conf`), leaving room for other clients.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10;
/// The longest wait between two token lookups while a request may be in flight.
const LOOKUP_INTERVAL: Duration = Duration::from_secs(1);
const MAX_TOKEN_LEN: usize = 128;

/// How creates resolve lost replies.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// See [`DEFAULT_SETTLE`].
    pub settle: Duration,
    /// Allocates sent at most for one node (1 = never sent again; the driver's `ex_retries`).
    pub attempts: u32,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            settle: DEFAULT_SETTLE,
            attempts: 1,
        }
    }
}

/// A fresh client token.
pub fn new_token() -> String {
    format!("sl-{}", uuid::Uuid::new_v4().simple())
}

/// The caller's token, checked (1–128 of `A-Z a-z 0-9 . _ : -`), or a fresh one.
pub fn token_or_new(token: Option<String>) -> Result<String> {
    let Some(token) = token else {
        return Ok(new_token());
    };
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(token)
    } else {
        Err(Error::invalid(format!(
            "client token {token:?} must be 1 to {MAX_TOKEN_LEN} characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'"
        )))
    }
}

/// What a failed `one.vm.allocate` says about the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Refused: no VM was created.
    No,
    /// The reply was lost or spoiled; the daemon may have acted already.
    AfterActing,
    /// The request may still be in flight (the daemon may act later).
    InFlight,
}

/// Classifies a failed allocate.
pub fn lost_reply(e: &OneError) -> Lost {
    match e {
        OneError::Transport(TransportError::OutcomeUnknown { cause }) => match **cause {
            TransportError::Timeout { .. } => Lost::InFlight,
            _ => Lost::AfterActing,
        },
        OneError::Http { status: 504, .. } => Lost::InFlight,
        OneError::Http {
            status: 500..=599, ..
        } => Lost::AfterActing,
        OneError::XmlRpc(XmlRpcError::Malformed { .. })
        | OneError::UnexpectedReply { .. }
        | OneError::Document { .. } => Lost::AfterActing,
        _ => Lost::No,
    }
}

fn ctx(s: &Site, operation: &str) -> Context {
    Context::new(&s.name, s.one.url(), operation)
}

/// The caller's live VMs at `s` carrying one of `tokens`, per token, oldest first (STIME, then
/// id). `names` are the nodes' names: on 5.8–5.9 (short pool bodies) the VMs of those names
/// without a visible token are read one by one.
pub async fn find_tokens(
    driver: &Driver,
    s: &Site,
    tokens: &HashSet<&str>,
    names: &HashSet<&str>,
) -> Result<HashMap<String, Vec<VmRecord>>> {
    let operation = "client token lookup (one.vmpool.info)";
    let xml = s
        .one
        .vm_pool_full(POOL_MINE, POOL_STATE_NOT_DONE)
        .await
        .map_err(|e| Error::remote(ctx(s, operation), e))?;
    let vms = parse_pool(xml.as_bytes()).map_err(|e| Error::remote(ctx(s, operation), e))?;
    let version = s
        .one
        .version()
        .await
        .map_err(|e| Error::remote(ctx(s, operation), e))?;
    let short_bodies =
        (version.major, version.minor) >= (5, 8) && (version.major, version.minor) < (5, 10);
    let mut found: HashMap<String, Vec<VmRecord>> = HashMap::new();
    for vm in vms {
        let vm = match &vm.template.client_token {
            None if short_bodies && names.contains(vm.name.as_str()) => {
                driver
                    .vm(s, vm.id, "client token lookup (one.vm.info)")
                    .await?
            }
            _ => vm,
        };
        if let Some(token) = vm.template.client_token.as_deref() {
            if tokens.contains(token) {
                found.entry(token.to_owned()).or_default().push(vm);
            }
        }
    }
    for list in found.values_mut() {
        list.sort_by_key(|vm| (vm.stime, vm.id));
    }
    Ok(found)
}

/// The VMs of one token, oldest first.
async fn find_token(driver: &Driver, s: &Site, token: &str, name: &str) -> Result<Vec<VmRecord>> {
    let mut found = find_tokens(driver, s, &HashSet::from([token]), &HashSet::from([name])).await?;
    Ok(found.remove(token).unwrap_or_default())
}

/// Keeps the oldest of VMs sharing `token` (sorted oldest first, not empty) and destroys the
/// others; the kept VM.
async fn keep_oldest(driver: &Driver, s: &Site, token: &str, mut vms: Vec<VmRecord>) -> VmRecord {
    let younger = vms.split_off(1);
    for vm in younger {
        log::warn!(target: "stratuslab_libcloud", "site '{}': VMs {} and {} carry client token {token}: destroying the younger, {}", s.name, vms[0].id, vm.id, vm.id);
        if let Err(e) = driver
            .destroy_vm(s, vm.id, "create_node (duplicate clean-up)")
            .await
        {
            log::error!(target: "stratuslab_libcloud", "site '{}': VM {} duplicates VM {} (client token {token}) and could not be destroyed: {e}", s.name, vm.id, vms[0].id);
        }
    }
    vms.swap_remove(0)
}

/// What the allocate step ended with.
enum Allocated {
    /// The daemon's answer: the new VM's id.
    Id(i64),
    /// The reply was lost and the token lookup found these VMs (oldest first).
    Found(Vec<VmRecord>),
}

/// Sends `one.vm.allocate` until it answers, its VM appears, or `options.attempts` are spent
/// (never sending again while an earlier request may be in flight); whether it was sent twice.
async fn allocate(
    driver: &Driver,
    s: &Site,
    text: &str,
    name: &str,
    token: &str,
    options: &CreateOptions,
) -> Result<(Allocated, bool)> {
    let mut sent = 0;
    loop {
        sent += 1;
        let err = match s.one.allocate(text).await {
            Ok(id) => return Ok((Allocated::Id(id), sent > 1)),
            Err(e) => e,
        };
        let lost = lost_reply(&err);
        if lost == Lost::No {
            return Err(Error::remote(ctx(s, "create_node (one.vm.allocate)"), err));
        }
        log::warn!(target: "stratuslab_libcloud", "site '{}': the reply of one.vm.allocate for '{name}' was lost ({err}); looking up client token {token}", s.name);
        let deadline = Instant::now()
            + if lost == Lost::InFlight {
                options.settle
            } else {
                Duration::ZERO
            };
        let interval = LOOKUP_INTERVAL
            .min(options.settle / 4)
            .max(Duration::from_millis(10));
        let lookup_failed = loop {
            let failed = match find_token(driver, s, token, name).await {
                Ok(vms) if !vms.is_empty() => return Ok((Allocated::Found(vms), sent > 1)),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            let now = Instant::now();
            if now >= deadline {
                break failed;
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
        };
        if let Some(e) = &lookup_failed {
            log::warn!(target: "stratuslab_libcloud", "site '{}': client token {token} could not be looked up: {e}", s.name);
        }
        if lookup_failed.is_some() || sent >= options.attempts {
            let operation = format!(
                "create_node (one.vm.allocate, client token {token}: not found after the reply was lost; create_node with ex_client_token='{token}' returns the VM if it appears)"
            );
            return Err(Error::remote(ctx(s, &operation), err));
        }
        log::info!(target: "stratuslab_libcloud", "site '{}': client token {token} not found: sending one.vm.allocate again", s.name);
    }
}

/// Creates one node exactly once: a caller's token is looked up first (a VM of an earlier call
/// is returned), then the allocate of [`allocate`], the duplicate check when it was sent twice,
/// and the read-back.
pub async fn create_one(
    driver: &Driver,
    s: &Site,
    prepared: &PreparedCreate,
    name: &str,
    token: &str,
    given: bool,
    options: &CreateOptions,
) -> Result<NodeRecord> {
    let text = prepared.render(name, token)?;
    if given {
        let vms = find_token(driver, s, token, name).await?;
        if !vms.is_empty() {
            let kept = keep_oldest(driver, s, token, vms).await;
            return Ok(driver.read_back(s, kept.id, name, token).await);
        }
    }
    create_rendered(driver, s, &text, name, token, options).await
}

async fn create_rendered(
    driver: &Driver,
    s: &Site,
    text: &str,
    name: &str,
    token: &str,
    options: &CreateOptions,
) -> Result<NodeRecord> {
    let id = match allocate(driver, s, text, name, token, options).await? {
        (Allocated::Found(vms), _) => keep_oldest(driver, s, token, vms).await.id,
        (Allocated::Id(id), false) => id,
        (Allocated::Id(id), true) => match find_token(driver, s, token, name).await {
            Ok(vms) if vms.len() > 1 => keep_oldest(driver, s, token, vms).await.id,
            Ok(_) => id,
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "site '{}': the duplicate check of client token {token} failed: {e}", s.name);
                id
            }
        },
    };
    Ok(driver.read_back(s, id, name, token).await)
}

/// How one item of a fleet operation ended.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    Done(T),
    Failed(Arc<Error>),
    /// Cancelled before its request was sent.
    NotSent,
}

/// A finished item of a fleet operation: its index in the input and how it ended.
pub type FleetEvent<T> = (usize, Outcome<T>);

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub create: CreateOptions,
    /// Requests in flight per site (see [`DEFAULT_MAX_IN_FLIGHT`]).
    pub max_in_flight: usize,
}

/// One node of a fleet create.
#[derive(Debug, Clone)]
pub struct FleetNode {
    pub site: String,
    pub name: String,
    /// The caller's token (looked up first), or `None` for a fresh one.
    pub token: Option<String>,
}

/// Runs `work(i)` for every item, at most `max_in_flight` at once per site, sending each outcome
/// on `events` as it ends; once `cancel` is set no further item starts (they end [`Outcome::NotSent`]).
async fn bounded<T, F, Fut>(
    sites: &[String],
    max_in_flight: usize,
    cancel: &AtomicBool,
    events: &mpsc::UnboundedSender<FleetEvent<T>>,
    work: F,
) -> Vec<Outcome<T>>
where
    T: Clone,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = std::result::Result<T, Arc<Error>>>,
{
    let mut limits: HashMap<&str, Arc<Semaphore>> = HashMap::new();
    for site in sites {
        limits
            .entry(site.as_str())
            .or_insert_with(|| Arc::new(Semaphore::new(max_in_flight.max(1))));
    }
    let mut running = FuturesUnordered::new();
    for (i, site) in sites.iter().enumerate() {
        let limit = limits.get(site.as_str()).map(Arc::clone);
        let work = &work;
        running.push(async move {
            let _permit = match &limit {
                Some(l) => l.acquire().await.ok(),
                None => None,
            };
            if cancel.load(Ordering::SeqCst) {
                return (i, Outcome::NotSent);
            }
            match work(i).await {
                Ok(v) => (i, Outcome::Done(v)),
                Err(e) => (i, Outcome::Failed(e)),
            }
        });
    }
    let mut out: Vec<Outcome<T>> = vec![Outcome::NotSent; sites.len()];
    while let Some((i, outcome)) = running.next().await {
        // A receiver that has gone only stops the progress reports.
        let _ = events.send((i, outcome.clone()));
        if let Some(slot) = out.get_mut(i) {
            *slot = outcome;
        }
    }
    out
}

/// `ex_create_nodes`: every node of `nodes` created exactly once, at most
/// `options.max_in_flight` requests at once per site; the image is resolved and the caller's
/// values are checked once per site. At the end, one token lookup per site: VMs sharing a token
/// are reduced to the oldest, and a node given up on whose VM has appeared is reported created.
pub async fn create_nodes(
    driver: Arc<Driver>,
    req: CreateNode,
    nodes: Vec<FleetNode>,
    options: FleetOptions,
    cancel: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<FleetEvent<NodeRecord>>,
) -> Vec<Outcome<NodeRecord>> {
    // The per-site check renders a stand-in name; each node's own name is checked when its
    // template is rendered, before its request.
    let mut req = req;
    "fleet-node".clone_into(&mut req.name);
    // Tokens first: a bad one fails its node before anything is sent.
    let tokens: Vec<Result<String>> = nodes
        .iter()
        .map(|n| token_or_new(n.token.clone()))
        .collect();
    let mut sites: Vec<&str> = nodes.iter().map(|n| n.site.as_str()).collect();
    sites.sort_unstable();
    sites.dedup();
    let prepared: HashMap<&str, std::result::Result<(&Site, PreparedCreate), Arc<Error>>> =
        futures_util::future::join_all(sites.iter().map(|name| {
            let driver = &driver;
            let req = &req;
            async move {
                let r = async {
                    let s = driver.site(name)?;
                    Ok((s, driver.prepare_create(s, req).await?))
                }
                .await;
                (*name, r.map_err(Arc::new))
            }
        }))
        .await
        .into_iter()
        .collect();
    let node_sites: Vec<String> = nodes.iter().map(|n| n.site.clone()).collect();
    let mut outcomes = bounded(&node_sites, options.max_in_flight, &cancel, &events, |i| {
        let prepared = prepared.get(nodes[i].site.as_str());
        let token = &tokens[i];
        let node = &nodes[i];
        let driver = &driver;
        let options = &options.create;
        async move {
            let (s, prepared) = match prepared {
                Some(Ok((s, p))) => (*s, p),
                Some(Err(e)) => return Err(Arc::clone(e)),
                None => return Err(Arc::new(Error::internal("fleet site not prepared"))),
            };
            let token = token
                .as_ref()
                .map_err(|e| Arc::new(Error::invalid(e.to_string())))?;
            create_one(
                driver,
                s,
                prepared,
                &node.name,
                token,
                node.token.is_some(),
                options,
            )
            .await
            .map_err(Arc::new)
        }
    })
    .await;
    reconcile(&driver, &nodes, &tokens, &mut outcomes).await;
    outcomes
}

/// The end-of-fleet check: one token lookup per site with nodes that were sent (created, or
/// failed: a create given up on after a lost reply may have its VM by now).
async fn reconcile(
    driver: &Driver,
    nodes: &[FleetNode],
    tokens: &[Result<String>],
    outcomes: &mut [Outcome<NodeRecord>],
) {
    let mut per_site: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if !matches!(outcome, Outcome::NotSent) {
            per_site.entry(nodes[i].site.as_str()).or_default().push(i);
        }
    }
    let checks = per_site.into_iter().map(|(site, items)| async move {
        let Ok(s) = driver.site(site) else {
            return Vec::new();
        };
        let wanted: HashSet<&str> = items
            .iter()
            .filter_map(|&i| tokens[i].as_deref().ok())
            .collect();
        let names: HashSet<&str> = items.iter().map(|&i| nodes[i].name.as_str()).collect();
        let found = match find_tokens(driver, s, &wanted, &names).await {
            Ok(found) => found,
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "site '{site}': the fleet's duplicate check failed: {e}");
                return Vec::new();
            }
        };
        let mut changes = Vec::new();
        for i in items {
            let Ok(token) = tokens[i].as_deref() else {
                continue;
            };
            let Some(vms) = found.get(token) else {
                continue;
            };
            let kept = keep_oldest(driver, s, token, vms.clone()).await;
            changes.push((i, kept));
        }
        changes
    });
    for changes in futures_util::future::join_all(checks).await {
        for (i, kept) in changes {
            let same = matches!(&outcomes[i], Outcome::Done(r) if r.vm.id == kept.id);
            if !same {
                if let Ok(s) = driver.site(&nodes[i].site) {
                    outcomes[i] = Outcome::Done(site_node_record(s, kept, driver.instance_types()));
                }
            }
        }
    }
}

/// `ex_destroy_nodes`: one `one.vm.action` per node, at most `max_in_flight` at once per site.
pub async fn destroy_nodes(
    driver: Arc<Driver>,
    nodes: Vec<(String, i64)>,
    max_in_flight: usize,
    cancel: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<FleetEvent<()>>,
) -> Vec<Outcome<()>> {
    let sites: Vec<String> = nodes.iter().map(|(s, _)| s.clone()).collect();
    bounded(&sites, max_in_flight, &cancel, &events, |i| {
        let (site, id) = (&nodes[i].0, nodes[i].1);
        let driver = &driver;
        async move {
            let s = driver.site(site).map_err(Arc::new)?;
            driver
                .destroy_vm(s, id, "ex_destroy_nodes")
                .await
                .map_err(Arc::new)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_the_per_site_limit_reports_every_item_and_stops_when_cancelled() {
        use std::sync::atomic::AtomicUsize;
        let sites: Vec<String> = (0..40)
            .map(|i| if i % 2 == 0 { "a" } else { "b" }.to_owned())
            .collect();
        let running: HashMap<&str, AtomicUsize> =
            [("a", AtomicUsize::new(0)), ("b", AtomicUsize::new(0))].into();
        let peak: HashMap<&str, AtomicUsize> =
            [("a", AtomicUsize::new(0)), ("b", AtomicUsize::new(0))].into();
        let cancel = AtomicBool::new(false);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = crate::runtime::block_on(bounded(&sites, 3, &cancel, &tx, |i| {
            let site = sites[i].as_str();
            let (running, peak, cancel) = (&running[site], &peak[site], &cancel);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if i == 10 {
                    cancel.store(true, Ordering::SeqCst);
                }
                if i == 3 {
                    return Err(Arc::new(Error::invalid("three")));
                }
                Ok(i)
            }
        }))
        .unwrap();
        assert_eq!(peak["a"].load(Ordering::SeqCst), 3);
        assert_eq!(peak["b"].load(Ordering::SeqCst), 3);
        assert!(matches!(out[0], Outcome::Done(0)));
        assert!(matches!(out[3], Outcome::Failed(_)));
        assert!(matches!(out[39], Outcome::NotSent));
        let done = out.iter().filter(|o| matches!(o, Outcome::Done(_))).count();
        assert!((10..40).contains(&done), "{done}");
        drop(tx);
        let mut events = 0;
        while rx.try_recv().is_ok() {
            events += 1;
        }
        assert_eq!(events, 40);
    }

    #[test]
    fn tokens_are_checked_or_made() {
        assert_eq!(
            token_or_new(Some("job-42.a:b_c".into())).unwrap(),
            "job-42.a:b_c"
        );
        for bad in ["", "a b", "x\"y", "é", &"x".repeat(129)] {
            assert!(token_or_new(Some(bad.to_owned())).is_err(), "{bad:?}");
        }
        let a = token_or_new(None).unwrap();
        let b = token_or_new(None).unwrap();
        assert_ne!(a, b);
        assert!(token_or_new(Some(a)).is_ok());
    }

    #[test]
    fn lost_replies_are_told_apart() {
        let unknown = |cause| {
            OneError::Transport(TransportError::OutcomeUnknown {
                cause: Box::new(cause),
            })
        };
        assert_eq!(
            lost_reply(&unknown(TransportError::Timeout { seconds: 1.0 })),
            Lost::InFlight
        );
        assert_eq!(
            lost_reply(&unknown(TransportError::Body {
                detail: "reset".into()
            })),
            Lost::AfterActing
        );
        let http = |status| OneError::Http {
            status,
            excerpt: String::new(),
        };
        assert_eq!(lost_reply(&http(503)), Lost::AfterActing);
        assert_eq!(lost_reply(&http(504)), Lost::InFlight);
        assert_eq!(lost_reply(&http(403)), Lost::No);
        assert_eq!(
            lost_reply(&OneError::Refused {
                code: 8192,
                message: "no".into()
            }),
            Lost::No
        );
        assert_eq!(
            lost_reply(&OneError::Transport(TransportError::Connect {
                detail: "refused".into()
            })),
            Lost::No
        );
        assert_eq!(
            lost_reply(&OneError::XmlRpc(XmlRpcError::Malformed {
                detail: "cut".into()
            })),
            Lost::AfterActing
        );
    }
}
