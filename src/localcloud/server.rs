//! The local cloud's HTTP server: one axum router on `127.0.0.1:<port>`, optionally behind TLS,
//! serving several named sites on one port (the site is the first path segment):
//!
//! | path | service | authentication |
//! |---|---|---|
//! | `/<site>/one-proxy/pswd/xmlrpc` | compute (XML-RPC) | HTTP Basic, realm `StratusLab Password Realm` |
//! | `/<site>/one-proxy/cert/xmlrpc` | compute (XML-RPC) | TLS client certificate |
//! | `/<site>/RPC2` | compute, direct oned | session string `user:password` |
//! | `/<site>/pdisk/pswd/disks…` | pdisk (REST) | HTTP Basic |
//! | `/<site>/pdisk/cert/disks…` | pdisk (REST) | TLS client certificate |
//! | `/marketplace/metadata…`, `/metadata…` | Marketplace (global) | none |
//!
//! Behind the proxy paths the session string (parameter 0) is replaced as one-proxy does:
//! `URLEncode(user) + ":" + 40 × 'a'` (oneadmin's Basic password is passed through).
//! Per-site state sits behind a `std::sync::Mutex` held only for the in-memory work. Fault rules
//! ([`super::faults`]) are applied per request after routing; the connection layer can drop or
//! reset a connection on a rule's demand.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::{Extension, Router};
use base64::Engine;
use futures_util::{stream, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::cloud::LocalCloudError;
use super::compute::ComputeState;
use super::faults::{FaultKind, FaultSet, Service};
use super::marketplace::Catalog;
use super::pdisk::PdiskStore;
use super::tls::{peer_certificate, TlsMaterial};
use super::Reply;
use crate::xmlrpc::{decode_call, encode_fault, encode_response, Value};

/// Realm of the `/pswd` contexts (one-proxy and pdisk).
pub const PASSWORD_REALM: &str = "StratusLab Password Realm";
/// Largest request body read.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// xmlrpc-c's fault code for a call document it cannot parse.
const FAULT_PARSE: i32 = -503;

/// One site's services; locked only for in-memory work.
pub struct SiteState {
    pub compute: ComputeState,
    pub pdisk: PdiskStore,
    /// Encoded `one.vmpool.info` replies by (user, filter params), valid for one generation.
    pool_cache: HashMap<(String, [i64; 4]), (u64, Bytes)>,
}

impl SiteState {
    /// A site from its two stores.
    pub fn new(compute: ComputeState, pdisk: PdiskStore) -> Self {
        SiteState {
            compute,
            pdisk,
            pool_cache: HashMap::new(),
        }
    }

    /// Brings the site to `now`: planned VM transitions happen, and a VM that reached DONE
    /// releases its pdisk mounts, as a StratusLab site's epilog did (no quarantine here: the
    /// disk is free, and can be deleted, at once).
    pub fn settle(&mut self, now: f64) {
        self.compute.advance(now);
        for vm_id in self.compute.take_ended() {
            self.pdisk.release_vm(vm_id);
        }
    }
}

/// Everything the request handlers share.
pub struct Shared {
    /// Sites by name.
    pub sites: HashMap<String, Mutex<SiteState>>,
    /// Accepted (username, password) pairs.
    pub users: Vec<(String, String)>,
    /// The global Marketplace catalog.
    pub catalog: RwLock<Catalog>,
    /// Fault rules and request counters.
    pub faults: Mutex<FaultSet>,
    /// Marketplace clock override (Unix seconds).
    pub clock: Mutex<Option<i64>>,
    /// Delay added before every reply.
    pub latency: Duration,
    /// Requests whose handling was dropped before its reply (the client went away).
    pub dropped: AtomicU64,
    /// TLS material when the server speaks HTTPS.
    pub tls: Option<Arc<TlsMaterial>>,
}

/// A running server.
pub struct Server {
    port: u16,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0 = ephemeral) and starts serving.
    pub async fn start(shared: Arc<Shared>, port: u16) -> Result<Server, LocalCloudError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LocalCloudError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| LocalCloudError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .port();
        if JETTY_HEADER_CASE.get().is_none() {
            if let Some(extensions) = jetty_header_case().await {
                let _ = JETTY_HEADER_CASE.set(extensions);
            }
        }
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared, rx));
        Ok(Server {
            port,
            shutdown,
            task,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting, closes every connection and frees the port.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = Router::new().fallback(dispatch).with_state(shared.clone());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    connections.spawn(connection(tcp, shared.clone(), router.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Response extensions that make hyper write `WWW-Authenticate` as Jetty does (its title case
/// gives `Www-Authenticate`, and e.g. Python's `xmlrpc.client` hands header names over as sent).
static JETTY_HEADER_CASE: OnceLock<axum::http::Extensions> = OnceLock::new();

/// hyper takes a response header's case only from its private `HeaderCaseMap` extension, which
/// it builds when it parses a request with `preserve_header_case`: so it parses one such request
/// (in memory) and the request's extensions are kept for the responses.
async fn jetty_header_case() -> Option<axum::http::Extensions> {
    let (mut client, server) = tokio::io::duplex(4096);
    let captured = Arc::new(Mutex::new(None));
    let sink = captured.clone();
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        if let Ok(mut slot) = sink.lock() {
            *slot = Some(request.extensions().clone());
        }
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(
            Body::empty(),
        )))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(server), service);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nWWW-Authenticate: Basic\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    conn.await.ok()?;
    let extensions = captured.lock().ok()?.take();
    extensions
}

/// Per-connection controls a handler can pull: close now, and whether to close with a reset.
#[derive(Default)]
struct ConnControl {
    kill: Notify,
    reset: AtomicBool,
}

/// What a handler knows about its connection.
#[derive(Clone)]
struct ConnInfo {
    /// Subject DN of the client certificate (issued by our CA), if one was presented.
    peer_dn: Option<String>,
    control: Arc<ConnControl>,
}

/// The TCP stream, reset (SO_LINGER 0) instead of closed when a fault asked for it.
struct ConnIo {
    tcp: TcpStream,
    control: Arc<ConnControl>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::SeqCst) {
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

async fn connection(tcp: TcpStream, shared: Arc<Shared>, router: Router) {
    let _ = tcp.set_nodelay(true);
    let control = Arc::new(ConnControl::default());
    let io = ConnIo {
        tcp,
        control: control.clone(),
    };
    match &shared.tls {
        Some(tls) => {
            let Ok(stream) = tls.acceptor().accept(io).await else {
                return;
            };
            let peer_dn = peer_certificate(stream.get_ref().1).and_then(|der| tls.subject_of(&der));
            serve(stream, ConnInfo { peer_dn, control }, router).await;
        }
        None => {
            serve(
                io,
                ConnInfo {
                    peer_dn: None,
                    control,
                },
                router,
            )
            .await
        }
    }
}

async fn serve<IO>(io: IO, info: ConnInfo, router: Router)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let control = info.control.clone();
    let service = TowerToHyperService::new(router.layer(Extension(info)));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // Header names as Jetty sends them (`WWW-Authenticate`); some clients look them up by case.
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = control.kill.notified() => {}
    }
}

/// Where a request goes.
enum Route<'a> {
    Compute {
        site: &'a str,
        auth: ComputeAuth,
    },
    Pdisk {
        site: &'a str,
        cert: bool,
        path: &'a str,
    },
    Marketplace {
        path: &'a str,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ComputeAuth {
    Password,
    Certificate,
    Direct,
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix('/')?;
    if let Some(p) = rest.strip_prefix("marketplace") {
        if p.starts_with("/metadata") {
            return Some(Route::Marketplace { path: p });
        }
    }
    if rest.starts_with("metadata") && (rest.len() == 8 || rest[8..].starts_with('/')) {
        return Some(Route::Marketplace { path });
    }
    let (site, tail) = rest.split_once('/')?;
    match tail {
        "one-proxy/pswd/xmlrpc" => Some(Route::Compute {
            site,
            auth: ComputeAuth::Password,
        }),
        "one-proxy/cert/xmlrpc" => Some(Route::Compute {
            site,
            auth: ComputeAuth::Certificate,
        }),
        "RPC2" => Some(Route::Compute {
            site,
            auth: ComputeAuth::Direct,
        }),
        _ => {
            let (cert, p) = if let Some(p) = tail.strip_prefix("pdisk/pswd") {
                (false, p)
            } else {
                (true, tail.strip_prefix("pdisk/cert")?)
            };
            (p.is_empty() || p.starts_with('/')).then_some(Route::Pdisk {
                site,
                cert,
                path: p,
            })
        }
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn html_error(status: u16) -> Reply {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    Reply::new(
        status,
        "text/html;charset=ISO-8859-1",
        format!(
            "<html>\n<head>\n<title>Error {status} {reason}</title>\n</head>\n<body>\n<h2>HTTP ERROR: {status}</h2>\n<p>{reason}</p>\n</body>\n</html>\n"
        ),
    )
}

fn unauthorized() -> Reply {
    html_error(401).with_header(
        "WWW-Authenticate",
        &format!("Basic realm=\"{PASSWORD_REALM}\""),
    )
}

/// (username, password) from an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn password_user(shared: &Shared, headers: &HeaderMap) -> Option<(String, String)> {
    let (user, password) = basic_credentials(headers)?;
    shared
        .users
        .iter()
        .any(|(u, p)| *u == user && *p == password)
        .then_some((user, password))
}

/// one-proxy's treatment of a DN: a leading `CN=proxy,` or `CN=<digits>,` is dropped.
fn strip_proxy_cn(dn: &str) -> &str {
    if let Some((first, rest)) = dn.split_once(',') {
        if let Some(cn) = first.strip_prefix("CN=") {
            if cn == "proxy" || (!cn.is_empty() && cn.bytes().all(|b| b.is_ascii_digit())) {
                return rest;
            }
        }
    }
    dn
}

/// Java's `URLEncoder.encode(s, "UTF-8")`.
fn java_url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn xmlrpc_reply(body: String) -> Reply {
    Reply::new(200, "text/xml", body)
}

/// What a fault rule does to a finished reply.
enum Delivery {
    Normal,
    Reset,
}

/// Counts a request in [`Shared::dropped`] unless it was [`finish`](Self::finish)ed.
struct Unfinished(Option<Arc<Shared>>);

impl Unfinished {
    fn finish(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(shared) = &self.0 {
            shared.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnInfo>,
    request: Request,
) -> Response {
    let unfinished = Unfinished(Some(Arc::clone(&shared)));
    let response = handle(shared, conn, request).await;
    unfinished.finish();
    response
}

async fn handle(shared: Arc<Shared>, conn: ConnInfo, request: Request) -> Response {
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let Some(route) = route(&path) else {
        return to_response(html_error(404));
    };
    let site = match &route {
        Route::Compute { site, .. } | Route::Pdisk { site, .. } => Some(*site),
        Route::Marketplace { .. } => None,
    };
    if site.is_some_and(|site| !shared.sites.contains_key(site)) {
        return to_response(html_error(404));
    }
    if matches!(route, Route::Compute { .. }) && parts.method != Method::POST {
        return to_response(html_error(405).with_header("Allow", "POST"));
    }
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(_) => return to_response(html_error(413)),
    };
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    // Routing is known: find the operation, count it and pick a fault.
    let (service, op, call) = match &route {
        Route::Compute { .. } => {
            let call = decode_call(&body);
            let op = match &call {
                Ok((method, _)) => method.clone(),
                Err(_) => "?".to_owned(),
            };
            (Service::Compute, op, Some(call))
        }
        Route::Pdisk { path, .. } => {
            let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
            (Service::Pdisk, format!("{} /{first}", parts.method), None)
        }
        Route::Marketplace { .. } => (
            Service::Marketplace,
            format!("{} /metadata", parts.method),
            None,
        ),
    };
    let fault = shared
        .faults
        .lock()
        .ok()
        .and_then(|mut faults| faults.take(site, service, &op));

    let mut delivery = Delivery::Normal;
    match &fault {
        Some(FaultKind::Slow(delay)) => tokio::time::sleep(*delay).await,
        // Compute runs the delayed call as a task of its own (below).
        Some(FaultKind::Late(delay)) if service != Service::Compute => {
            tokio::time::sleep(*delay).await
        }
        Some(FaultKind::Status(status)) => {
            let reply = if *status == 401 {
                unauthorized()
            } else {
                html_error(*status)
            };
            return to_response(reply);
        }
        Some(FaultKind::Drop) => {
            conn.control.kill.notify_one();
            return std::future::pending().await;
        }
        Some(FaultKind::OneError(code, message)) if service == Service::Compute => {
            let value = Value::Array(vec![
                Value::Bool(false),
                Value::String(message.clone()),
                Value::Int(i64::from(*code)),
            ]);
            return to_response(xmlrpc_reply(encode_response(&value)));
        }
        Some(FaultKind::Fault(code, message)) if service == Service::Compute => {
            return to_response(xmlrpc_reply(encode_fault(*code, message)));
        }
        Some(FaultKind::Malformed) => {
            let content_type = match service {
                Service::Pdisk => "application/json",
                _ => "text/xml",
            };
            return to_response(Reply::new(
                200,
                content_type,
                &b"<html><body>\x00\xff not what you asked for {\"oops\": [1, 2"[..],
            ));
        }
        Some(FaultKind::HugeBody(size)) => return huge_body(service, *size),
        Some(FaultKind::Reset) => delivery = Delivery::Reset,
        _ => {}
    }

    let mut reply = match route {
        Route::Compute { site, auth } => match (call, &fault) {
            (Some(call), Some(FaultKind::Late(delay))) => {
                // Carried out after the delay even when the client has gone (a request in
                // flight when its client timed out): the work is a task of its own.
                let (shared, conn, headers) =
                    (Arc::clone(&shared), conn.clone(), parts.headers.clone());
                let (site, delay) = (site.to_owned(), *delay);
                let task = tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    compute(&shared, &conn, &headers, &site, auth, call)
                });
                task.await.unwrap_or_else(|_| html_error(500))
            }
            (Some(call), _) => compute(&shared, &conn, &parts.headers, site, auth, call),
            (None, _) => html_error(500),
        },
        Route::Pdisk { site, cert, path } => {
            let user = if cert {
                conn.peer_dn
                    .as_deref()
                    .map(|dn| strip_proxy_cn(dn).to_owned())
            } else {
                password_user(&shared, &parts.headers).map(|(user, _)| user)
            };
            match user {
                None if cert => html_error(403),
                None => unauthorized(),
                Some(user) => match shared.sites.get(site).map(|s| s.lock()) {
                    Some(Ok(mut state)) => {
                        state.settle(now_unix());
                        let SiteState { compute, pdisk, .. } = &mut *state;
                        pdisk.handle(
                            &user,
                            parts.method.as_str(),
                            path,
                            &query,
                            &body,
                            accept.as_deref(),
                            &|id| compute.vm_view(id),
                        )
                    }
                    _ => html_error(500),
                },
            }
        }
        Route::Marketplace { path } => {
            let now = shared
                .clock
                .lock()
                .ok()
                .and_then(|c| *c)
                .unwrap_or(now_unix() as i64);
            match shared.catalog.read() {
                Ok(catalog) => {
                    catalog.handle(parts.method.as_str(), path, &query, accept.as_deref(), now)
                }
                Err(_) => html_error(500),
            }
        }
    };

    match fault {
        Some(FaultKind::StatusAfter(status)) => return to_response(html_error(status)),
        Some(FaultKind::DropAfter) => {
            conn.control.kill.notify_one();
            return std::future::pending().await;
        }
        Some(FaultKind::Truncated) => {
            let half = reply.body.len() / 2;
            reply.body.truncate(half);
        }
        Some(FaultKind::WrongContentType) => reply.content_type = "text/html; charset=UTF-8".into(),
        _ => {}
    }
    match delivery {
        Delivery::Normal => to_response(reply),
        Delivery::Reset => reset_mid_body(reply, conn.control.clone()),
    }
}

/// Handles one XML-RPC call for `site`.
fn compute(
    shared: &Shared,
    conn: &ConnInfo,
    headers: &HeaderMap,
    site: &str,
    auth: ComputeAuth,
    call: Result<(String, Vec<Value>), crate::xmlrpc::XmlRpcError>,
) -> Reply {
    match auth {
        ComputeAuth::Password if password_user(shared, headers).is_none() => return unauthorized(),
        ComputeAuth::Certificate if conn.peer_dn.is_none() => return html_error(403),
        _ => {}
    }
    let (method, mut params) = match call {
        Ok(call) => call,
        Err(err) => {
            return xmlrpc_reply(encode_fault(
                FAULT_PARSE,
                &format!("Call XML not a proper XML-RPC call. {err}"),
            ))
        }
    };
    // Who is calling, as oned will see it (None = direct call with a bad session).
    let user: Option<String> = match auth {
        ComputeAuth::Password => {
            let Some((user, password)) = password_user(shared, headers) else {
                return unauthorized();
            };
            let secret = if user == "oneadmin" {
                password
            } else {
                "a".repeat(40)
            };
            let one_user = java_url_encode(&user);
            if let Some(first) = params.first_mut() {
                *first = Value::String(format!("{one_user}:{secret}"));
            }
            Some(one_user)
        }
        ComputeAuth::Certificate => {
            let Some(dn) = conn.peer_dn.as_deref() else {
                return html_error(403);
            };
            let one_user = java_url_encode(strip_proxy_cn(dn));
            if let Some(first) = params.first_mut() {
                *first = Value::String(format!("{one_user}:{}", "a".repeat(40)));
            }
            Some(one_user)
        }
        ComputeAuth::Direct => params.first().and_then(Value::as_str).and_then(|session| {
            let (user, password) = session.split_once(':')?;
            shared
                .users
                .iter()
                .any(|(u, p)| u == user && p == password)
                .then(|| user.to_owned())
        }),
    };
    let Some(site_state) = shared.sites.get(site) else {
        return html_error(404);
    };
    let now = now_unix();
    let pool_key = (method == "one.vmpool.info")
        .then(|| {
            let ints: Vec<i64> = params
                .iter()
                .skip(1)
                .take(4)
                .filter_map(Value::as_i64)
                .collect();
            <[i64; 4]>::try_from(ints).ok()
        })
        .flatten();

    let (result, generation) = {
        let Ok(mut state) = site_state.lock() else {
            return html_error(500);
        };
        let Some(user) = user else {
            return encode_result(state.compute.authentication_failure(&method, &params));
        };
        state.settle(now);
        let generation = state.compute.generation();
        if let Some(ints) = pool_key {
            if let Some((g, bytes)) = state.pool_cache.get(&(user.clone(), ints)) {
                if *g == generation {
                    return Reply::new(200, "text/xml", bytes.clone());
                }
            }
        }
        let result = state.compute.call(now, &user, &method, &params);
        state.settle(now);
        (result, pool_key.map(|ints| (user, ints, generation)))
    };
    let reply = encode_result(result);
    if let Some((user, ints, generation)) = generation {
        if reply.status == 200 {
            if let Ok(mut state) = site_state.lock() {
                state.pool_cache.retain(|_, (g, _)| *g == generation);
                state
                    .pool_cache
                    .insert((user, ints), (generation, reply.body.clone()));
            }
        }
    }
    reply
}

fn encode_result(result: Result<Value, (i32, String)>) -> Reply {
    match result {
        Ok(value) => xmlrpc_reply(encode_response(&value)),
        Err((code, message)) => xmlrpc_reply(encode_fault(code, &message)),
    }
}

fn to_response(reply: Reply) -> Response {
    let mut response = Response::new(Body::from(reply.body));
    if reply
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("WWW-Authenticate"))
    {
        if let Some(extensions) = JETTY_HEADER_CASE.get() {
            response.extensions_mut().extend(extensions.clone());
        }
    }
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&reply.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// Headers declaring the full length, half the body, then a TCP reset.
fn reset_mid_body(reply: Reply, control: Arc<ConnControl>) -> Response {
    let full = reply.body.len();
    let first = reply.body.slice(..full / 2);
    let tail = async move {
        // Give hyper a moment to flush the first half before the reset.
        tokio::time::sleep(Duration::from_millis(50)).await;
        control.reset.store(true, Ordering::SeqCst);
        control.kill.notify_one();
        std::future::pending::<Result<Bytes, io::Error>>().await
    };
    let chunks =
        stream::once(async move { Ok::<Bytes, io::Error>(first) }).chain(stream::once(tail));
    let mut response = to_response(Reply {
        status: reply.status,
        content_type: reply.content_type,
        headers: reply.headers,
        body: Bytes::new(),
    });
    *response.body_mut() = Body::from_stream(chunks);
    if let Ok(value) = HeaderValue::from_str(&full.to_string()) {
        response.headers_mut().insert(header::CONTENT_LENGTH, value);
    }
    response
}

/// A well-formed reply of about `size` bytes, streamed in 64 KiB chunks.
fn huge_body(service: Service, size: usize) -> Response {
    let (content_type, head, tail): (&str, &str, &str) = match service {
        Service::Compute | Service::Any => (
            "text/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><string>",
            "</string></value><value><i4>0</i4></value></data></array></value></param></params></methodResponse>\r\n",
        ),
        Service::Pdisk => ("application/json", "[{\"padding\": \"", "\"}]"),
        Service::Marketplace => (
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata><!--",
            "--></metadata>\n",
        ),
    };
    const CHUNK: usize = 64 * 1024;
    let filler = Bytes::from(vec![b'x'; CHUNK]);
    let pad = size.saturating_sub(head.len() + tail.len());
    let full_chunks = pad / CHUNK;
    let last = pad % CHUNK;
    let total = head.len() + pad + tail.len();
    let body = stream::iter(
        std::iter::once(Bytes::from_static(head.as_bytes()))
            .chain(std::iter::repeat_n(filler.clone(), full_chunks))
            .chain(std::iter::once(filler.slice(..last)))
            .chain(std::iter::once(Bytes::from_static(tail.as_bytes())))
            .map(Ok::<Bytes, io::Error>),
    );
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&total.to_string()) {
        headers.insert(header::CONTENT_LENGTH, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use reqwest::Method;

    use super::*;
    use crate::http::{
        HttpClient, HttpOptions, Request as HttpRequest, TlsOptions, TransportError,
    };
    use crate::localcloud::cloud::{LocalCloud, LocalCloudOptions};
    use crate::localcloud::faults::FaultRule;
    use crate::xmlrpc::{decode_response, encode_call, XmlRpcError};

    const AUTH_ERROR: &str =
        include_str!("../../tests/fixtures/localcloud/opennebula-3.8.5/auth-error.txt");

    fn client() -> HttpClient {
        client_with(TlsOptions::default())
    }

    fn client_with(tls: TlsOptions) -> HttpClient {
        HttpClient::new(HttpOptions {
            timeout: Duration::from_secs(20),
            tls,
            ..HttpOptions::default()
        })
        .unwrap()
    }

    async fn start(options: LocalCloudOptions) -> LocalCloud {
        LocalCloud::start(options).await.unwrap()
    }

    fn options(sites: &[&str], boot_step_ms: u64) -> LocalCloudOptions {
        LocalCloudOptions {
            sites: sites.iter().map(|s| s.to_string()).collect(),
            boot_step: Duration::from_millis(boot_step_ms),
            ..LocalCloudOptions::default()
        }
    }

    fn pswd(cloud: &LocalCloud, site: &str) -> String {
        cloud
            .endpoints(site)
            .unwrap()
            .compute
            .replace("/one-proxy/xmlrpc", "/one-proxy/pswd/xmlrpc")
    }

    async fn post(
        client: &HttpClient,
        url: &str,
        auth: Option<(&str, &str)>,
        method: &str,
        params: &[Value],
    ) -> Result<crate::http::Response, TransportError> {
        let mut request = HttpRequest::new(Method::POST, url, "test")
            .body("text/xml", encode_call(method, params));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, password);
        }
        client.send(request).await
    }

    /// The raw reply head to an unauthenticated POST.
    async fn raw_post(port: u16, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        tcp.read_to_end(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// One call as alice through one-proxy's password context.
    async fn rpc(
        client: &HttpClient,
        url: &str,
        method: &str,
        params: &[Value],
    ) -> Result<Value, XmlRpcError> {
        let mut all = vec![Value::String("alice:secret-pw".into())];
        all.extend_from_slice(params);
        let reply = post(client, url, Some(("alice", "secret-pw")), method, &all)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        decode_response(&reply.body)
    }

    fn ok_value(reply: Result<Value, XmlRpcError>) -> Value {
        match reply {
            Ok(Value::Array(items)) if items[0] == Value::Bool(true) => items[1].clone(),
            other => panic!("not a success: {other:?}"),
        }
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    const TEMPLATE: &str = "NAME = \"web\"\nCPU = 1\nMEMORY = 512\nNIC = [ NETWORK = \"public\", NETWORK_UNAME = \"oneadmin\" ]";

    async fn allocate(client: &HttpClient, url: &str) -> i64 {
        ok_value(rpc(client, url, "one.vm.allocate", &[s(TEMPLATE)]).await)
            .as_i64()
            .unwrap()
    }

    async fn state(client: &HttpClient, url: &str, id: i64) -> (String, String) {
        let doc = ok_value(rpc(client, url, "one.vm.info", &[Value::Int(id)]).await);
        let doc = doc.as_str().unwrap();
        let get = |tag: &str| {
            let open = format!("<{tag}>");
            let i = doc.find(&open).unwrap() + open.len();
            doc[i..i + doc[i..].find('<').unwrap()].to_owned()
        };
        (get("STATE"), get("LCM_STATE"))
    }

    async fn pool(client: &HttpClient, url: &str, filter: i64, state: i64) -> String {
        let params = [
            Value::Int(filter),
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(state),
        ];
        let doc = ok_value(rpc(client, url, "one.vmpool.info", &params).await);
        doc.as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn xmlrpc_wire_format_auth_and_errors() {
        let cloud = start(options(&["lal"], 0)).await;
        let client = client();
        let url = pswd(&cloud, "lal");

        // The exact bytes: xmlrpc-c's layout (<i4>, <boolean>, <string>), text/xml.
        let reply = post(
            &client,
            &url,
            Some(("alice", "secret-pw")),
            "one.system.version",
            &[s("x")],
        )
        .await
        .unwrap();
        assert_eq!(reply.content_type.as_deref(), Some("text/xml"));
        assert_eq!(
            decode_response(&reply.body).unwrap(),
            Value::Array(vec![Value::Bool(true), s("3.8.5"), Value::Int(0)])
        );
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        assert!(
            text.contains("<boolean>1</boolean>") && text.contains("<i4>0</i4>"),
            "{text}"
        );

        // No or wrong credentials: HTTP 401 with the realm.
        for auth in [None, Some(("alice", "wrong"))] {
            // Authentication comes before the body is looked at (Jetty's JAAS runs first).
            let raw = raw_post(cloud.port(), "/lal/one-proxy/pswd/xmlrpc").await;
            assert!(raw.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{raw}");
            assert!(
                raw.contains("\r\nContent-Type: text/html;charset=ISO-8859-1\r\n"),
                "{raw}"
            );
            // Jetty's case exactly (title case alone would write `Www-Authenticate`).
            assert!(
                raw.contains("\r\nWWW-Authenticate: Basic realm=\"StratusLab Password Realm\"\r\n"),
                "{raw}"
            );
            let reply = post(&client, &url, auth, "one.system.version", &[s("x")])
                .await
                .unwrap();
            assert_eq!(reply.status, 401);
            assert_eq!(
                reply.www_authenticate.as_deref(),
                Some("Basic realm=\"StratusLab Password Realm\"")
            );
        }

        // Direct oned: the session string is checked, the reply is the captured tuple.
        let rpc2 = cloud.endpoints("lal").unwrap().rpc2;
        let reply = post(
            &client,
            &rpc2,
            None,
            "one.system.version",
            &[s("alice:nope")],
        )
        .await
        .unwrap();
        assert_eq!(
            decode_response(&reply.body).unwrap(),
            Value::Array(vec![
                Value::Bool(false),
                s("[SystemVersion] User couldn't be authenticated, aborting call."),
                Value::Int(256)
            ])
        );
        assert_eq!(
            AUTH_ERROR.trim(),
            "[False, \"[SystemVersion] User couldn't be authenticated, aborting call.\", 256]"
        );
        let reply = post(
            &client,
            &rpc2,
            None,
            "one.system.version",
            &[s("alice:secret-pw")],
        )
        .await
        .unwrap();
        assert_eq!(
            decode_response(&reply.body).unwrap(),
            Value::Array(vec![Value::Bool(true), s("3.8.5"), Value::Int(0)])
        );

        // OpenNebula errors and XML-RPC faults.
        assert_eq!(
            rpc(&client, &url, "one.vm.info", &[Value::Int(9999)])
                .await
                .unwrap(),
            Value::Array(vec![
                Value::Bool(false),
                s("[VirtualMachineInfo] Error getting virtual machine [9999]."),
                Value::Int(1024)
            ])
        );
        assert_eq!(
            rpc(&client, &url, "one.vm.nosuchmethod", &[Value::Int(1)]).await,
            Err(XmlRpcError::Fault {
                code: -506,
                message: "Method 'one.vm.nosuchmethod' not defined".into()
            })
        );
        assert_eq!(
            rpc(&client, &url, "one.vm.action", &[s("shutdown"), s("0")]).await,
            Err(XmlRpcError::Fault {
                code: -501,
                message: "Parameter that is supposed to be integer is not".into()
            })
        );
        assert_eq!(
            rpc(&client, &url, "one.vm.allocate", &[s("NAME = \"x\"\nDISK = [ broken")]).await.unwrap(),
            Value::Array(vec![
                Value::Bool(false),
                s("[VirtualMachineAllocate] Error allocating a new virtual machine. Parse error: syntax error, unexpected $end, expecting EQUAL at line 2, columns 21:27"),
                Value::Int(8192)
            ])
        );
        let id = allocate(&client, &url).await;
        assert_eq!(
            rpc(
                &client,
                &url,
                "one.vm.action",
                &[s("resume"), Value::Int(id)]
            )
            .await
            .unwrap(),
            Value::Array(vec![
                Value::Bool(false),
                s("[VirtualMachineAction] Wrong state to perform action"),
                Value::Int(2048)
            ])
        );
        // one-proxy replaced the session: the VM belongs to alice.
        let doc = ok_value(rpc(&client, &url, "one.vm.info", &[Value::Int(id)]).await);
        assert!(doc.as_str().unwrap().contains("<UNAME>alice</UNAME>"));
        // GET is not XML-RPC.
        let reply = client
            .send(HttpRequest::new(Method::GET, &url, "test"))
            .await
            .unwrap();
        assert_eq!(reply.status, 405);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn lifecycle_with_and_without_boot_step() {
        let cloud = start(options(&["lal", "grnet"], 0)).await;
        let client = client();
        let url = pswd(&cloud, "lal");
        let id = allocate(&client, &url).await;
        assert_eq!(state(&client, &url, id).await, ("3".into(), "3".into()));
        assert_eq!(cloud.vm_template("lal", id).as_deref(), Some(TEMPLATE));
        ok_value(
            rpc(
                &client,
                &url,
                "one.vm.action",
                &[s("finalize"), Value::Int(id)],
            )
            .await,
        );
        assert_eq!(state(&client, &url, id).await, ("6".into(), "0".into()));
        cloud.stop().await;

        let cloud = start(options(&["lal"], 30)).await;
        let url = pswd(&cloud, "lal");
        let id = allocate(&client, &url).await;
        let first = state(&client, &url, id).await;
        assert_eq!(first, ("1".into(), "0".into()));
        let deadline = Instant::now() + Duration::from_secs(10);
        // Under load a poll can take longer than a step: the sequence starts with what was seen
        // right after allocating.
        let mut seen = vec![first];
        loop {
            let now = state(&client, &url, id).await;
            if seen.last() != Some(&now) {
                seen.push(now.clone());
            }
            if now == ("3".into(), "3".into()) {
                break;
            }
            assert!(Instant::now() < deadline, "never RUNNING: {seen:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen.first(), Some(&("1".to_owned(), "0".to_owned())));
        ok_value(
            rpc(
                &client,
                &url,
                "one.vm.action",
                &[s("shutdown"), Value::Int(id)],
            )
            .await,
        );
        assert_eq!(state(&client, &url, id).await, ("3".into(), "12".into()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while state(&client, &url, id).await != ("6".into(), "0".into()) {
            assert!(Instant::now() < deadline, "never DONE");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(cloud.vm_state("lal", id), Some((6, 0)));
        cloud.stop().await;
    }

    #[tokio::test]
    async fn pool_filters_and_site_isolation() {
        let mut opts = options(&["lal", "grnet"], 0);
        opts.users.push(("bob".into(), "bob-pw".into()));
        let cloud = start(opts).await;
        let client = client();
        let lal = pswd(&cloud, "lal");
        let grnet = pswd(&cloud, "grnet");
        let a = allocate(&client, &lal).await;
        let b = allocate(&client, &lal).await;
        ok_value(
            rpc(
                &client,
                &lal,
                "one.vm.action",
                &[s("finalize"), Value::Int(b)],
            )
            .await,
        );
        let mine = pool(&client, &lal, -3, -1).await;
        assert!(mine.starts_with("<VM_POOL><VM><ID>0</ID>") && mine.matches("<VM>").count() == 1);
        assert_eq!(pool(&client, &lal, -2, -2).await.matches("<VM>").count(), 2);
        assert_eq!(pool(&client, &lal, -2, 6).await.matches("<VM>").count(), 1);
        // The cached pool follows changes.
        ok_value(
            rpc(
                &client,
                &lal,
                "one.vm.action",
                &[s("finalize"), Value::Int(a)],
            )
            .await,
        );
        assert_eq!(pool(&client, &lal, -3, -1).await, "<VM_POOL></VM_POOL>");
        // Site b knows nothing of site a's VMs; its addresses come from its own slice.
        assert_eq!(pool(&client, &grnet, -2, -2).await, "<VM_POOL></VM_POOL>");
        assert_eq!(
            rpc(&client, &grnet, "one.vm.info", &[Value::Int(a)])
                .await
                .unwrap(),
            Value::Array(vec![
                Value::Bool(false),
                s("[VirtualMachineInfo] Error getting virtual machine [0]."),
                Value::Int(1024)
            ])
        );
        let c = allocate(&client, &grnet).await;
        let doc = ok_value(rpc(&client, &grnet, "one.vm.info", &[Value::Int(c)]).await);
        assert!(doc
            .as_str()
            .unwrap()
            .contains("<IP><![CDATA[192.0.2.110]]></IP>"));
        // bob sees none of alice's VMs.
        let params = [
            s("bob:bob-pw"),
            Value::Int(-2),
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(-2),
        ];
        let reply = post(
            &client,
            &lal,
            Some(("bob", "bob-pw")),
            "one.vmpool.info",
            &params,
        )
        .await
        .unwrap();
        assert_eq!(
            decode_response(&reply.body).unwrap(),
            Value::Array(vec![
                Value::Bool(true),
                s("<VM_POOL></VM_POOL>"),
                Value::Int(0)
            ])
        );
        assert_eq!(cloud.vm_ids("lal"), vec![0, 1]);
        assert_eq!(cloud.vm_ids("grnet"), vec![0]);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn lost_reply_faults_act_before_the_reply_is_lost() {
        let cloud = start(options(&["lal"], 0)).await;
        let url = pswd(&cloud, "lal");
        let allocate = |client: HttpClient| {
            let url = url.clone();
            async move {
                let params = [
                    s("alice:secret-pw"),
                    s("NAME = \"f\"\nCPU = 1\nMEMORY = 64\n"),
                ];
                post(
                    &client,
                    &url,
                    Some(("alice", "secret-pw")),
                    "one.vm.allocate",
                    &params,
                )
                .await
            }
        };
        let rule = |kind| {
            FaultRule::new(Service::Compute, kind)
                .at_site("lal")
                .for_op("one.vm.allocate")
                .times(1)
        };

        cloud
            .inject_fault(rule(FaultKind::StatusAfter(503)))
            .unwrap();
        assert_eq!(allocate(client()).await.unwrap().status, 503);
        assert_eq!(cloud.vm_ids("lal").len(), 1);

        cloud.inject_fault(rule(FaultKind::DropAfter)).unwrap();
        assert!(allocate(client()).await.is_err());
        assert_eq!(cloud.vm_ids("lal").len(), 2);

        // In flight: the client gives up first, the VM appears after the delay all the same.
        cloud
            .inject_fault(rule(FaultKind::Late(Duration::from_millis(300))))
            .unwrap();
        let impatient = HttpClient::new(HttpOptions {
            timeout: Duration::from_millis(100),
            ..HttpOptions::default()
        })
        .unwrap();
        let err = allocate(impatient).await.unwrap_err();
        assert!(err.to_string().contains("no reply within"), "{err}");
        assert_eq!(cloud.vm_ids("lal").len(), 2);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while cloud.vm_ids("lal").len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the late call never acted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(allocate(client()).await.unwrap().status, 200);
        assert_eq!(cloud.vm_ids("lal").len(), 4);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn fault_injection_kinds() {
        let cloud = start(options(&["lal", "grnet"], 0)).await;
        let client = client();
        let url = pswd(&cloud, "lal");
        let version = |c: &HttpClient| {
            let c = c.clone();
            let url = url.clone();
            async move {
                post(
                    &c,
                    &url,
                    Some(("alice", "secret-pw")),
                    "one.system.version",
                    &[s("x")],
                )
                .await
            }
        };
        let rule = |kind| {
            FaultRule::new(Service::Compute, kind)
                .at_site("lal")
                .for_op("one.system.version")
                .times(1)
        };

        cloud.inject_fault(rule(FaultKind::Status(503))).unwrap();
        assert_eq!(version(&client).await.unwrap().status, 503);
        assert_eq!(version(&client).await.unwrap().status, 200);

        cloud.inject_fault(rule(FaultKind::Malformed)).unwrap();
        let reply = version(&client).await.unwrap();
        assert_eq!(reply.status, 200);
        assert!(matches!(
            decode_response(&reply.body),
            Err(XmlRpcError::Malformed { .. })
        ));

        cloud.inject_fault(rule(FaultKind::Truncated)).unwrap();
        let reply = version(&client).await.unwrap();
        let full = version(&client).await.unwrap();
        assert_eq!(reply.body.len(), full.body.len() / 2);
        assert!(decode_response(&reply.body).is_err());

        cloud.inject_fault(rule(FaultKind::Drop)).unwrap();
        assert!(version(&client).await.is_err());
        cloud.inject_fault(rule(FaultKind::Reset)).unwrap();
        assert!(version(&client).await.is_err());
        assert_eq!(version(&client).await.unwrap().status, 200);

        cloud
            .inject_fault(rule(FaultKind::Slow(Duration::from_millis(300))))
            .unwrap();
        let started = Instant::now();
        assert_eq!(version(&client).await.unwrap().status, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));

        cloud
            .inject_fault(rule(FaultKind::OneError(
                512,
                "[SystemVersion] nope".into(),
            )))
            .unwrap();
        let reply = version(&client).await.unwrap();
        assert_eq!(
            decode_response(&reply.body).unwrap(),
            Value::Array(vec![
                Value::Bool(false),
                s("[SystemVersion] nope"),
                Value::Int(512)
            ])
        );
        cloud
            .inject_fault(rule(FaultKind::Fault(-32000, "boom".into())))
            .unwrap();
        let reply = version(&client).await.unwrap();
        assert_eq!(
            decode_response(&reply.body),
            Err(XmlRpcError::Fault {
                code: -32000,
                message: "boom".into()
            })
        );
        cloud
            .inject_fault(rule(FaultKind::WrongContentType))
            .unwrap();
        let reply = version(&client).await.unwrap();
        assert_eq!(
            reply.content_type.as_deref(),
            Some("text/html; charset=UTF-8")
        );
        cloud
            .inject_fault(rule(FaultKind::HugeBody(3_000_000)))
            .unwrap();
        let reply = version(&client).await.unwrap();
        assert_eq!(reply.body.len(), 3_000_000);
        let Value::Array(items) = decode_response(&reply.body).unwrap() else {
            panic!()
        };
        let padding = items[1].as_str().unwrap();
        assert!(padding.len() > 2_999_000 && padding.bytes().all(|b| b == b'x'));

        // Other sites and operations were never touched; every request was counted.
        let other = pswd(&cloud, "grnet");
        assert_eq!(
            post(
                &client,
                &other,
                Some(("alice", "secret-pw")),
                "one.system.version",
                &[s("x")]
            )
            .await
            .unwrap()
            .status,
            200
        );
        assert_eq!(
            cloud.request_count("lal", Service::Compute, "one.system.version"),
            13
        );
        assert_eq!(cloud.request_count("grnet", Service::Compute, "*"), 1);
        cloud
            .inject_fault(FaultRule::new(Service::Any, FaultKind::Status(502)))
            .unwrap();
        assert_eq!(version(&client).await.unwrap().status, 502);
        cloud.clear_faults().unwrap();
        assert_eq!(version(&client).await.unwrap().status, 200);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn pdisk_and_marketplace_routes() {
        let cloud = start(options(&["lal"], 0)).await;
        let client = client();
        let pdisk = cloud.endpoints("lal").unwrap().pdisk;
        let list = format!("{pdisk}/pswd/disks/");
        let reply = client
            .send(HttpRequest::new(Method::GET, &list, "test").accept("application/json"))
            .await
            .unwrap();
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.www_authenticate.as_deref(),
            Some("Basic realm=\"StratusLab Password Realm\"")
        );
        cloud.seed_volumes("lal", 3, "alice").unwrap();
        let reply = client
            .send(
                HttpRequest::new(Method::GET, &list, "test")
                    .accept("application/json")
                    .basic_auth("alice", "secret-pw"),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.excerpt(300));
        assert_eq!(cloud.disks("lal").len(), 3);
        assert_eq!(cloud.request_count("lal", Service::Pdisk, "GET /disks"), 2);

        let base = cloud.base_url();
        for url in [
            format!("{base}/marketplace/metadata"),
            format!("{base}/metadata"),
        ] {
            let reply = client
                .send(HttpRequest::new(Method::GET, &url, "test"))
                .await
                .unwrap();
            assert_eq!(reply.status, 200, "{url}");
        }
        assert_eq!(
            cloud.request_count("", Service::Marketplace, "GET /metadata"),
            2
        );
        let reply = client
            .send(HttpRequest::new(
                Method::GET,
                format!("{base}/nosuchsite/RPC2"),
                "test",
            ))
            .await
            .unwrap();
        assert_eq!(reply.status, 404);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn tls_with_generated_ca_and_client_certificates() {
        let mut opts = options(&["lal"], 0);
        opts.tls = true;
        let cloud = start(opts).await;
        assert!(cloud.base_url().starts_with("https://127.0.0.1:"));
        let ca = cloud.ca_pem_path().unwrap();
        let url = pswd(&cloud, "lal");

        let trusted = client_with(TlsOptions {
            ca_file: Some(ca.clone()),
            ..TlsOptions::default()
        });
        assert_eq!(
            ok_value(rpc(&trusted, &url, "one.system.version", &[]).await),
            s("3.8.5")
        );
        let untrusted = client_with(TlsOptions::default());
        assert!(matches!(
            post(
                &untrusted,
                &url,
                Some(("alice", "secret-pw")),
                "one.system.version",
                &[s("x")]
            )
            .await,
            Err(TransportError::Tls { .. } | TransportError::Connect { .. })
        ));

        let cert_url = url.replace("/pswd/", "/cert/");
        let reply = post(
            &trusted,
            &cert_url,
            None,
            "one.system.version",
            &[s("dummy:pass")],
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 403);
        let (cert, key) = cloud.issue_client_cert("carol").unwrap();
        let carol = client_with(TlsOptions {
            ca_file: Some(ca),
            client_cert: Some(cert),
            client_key: Some(key),
            ..TlsOptions::default()
        });
        let reply = post(
            &carol,
            &cert_url,
            None,
            "one.vm.allocate",
            &[s("dummy:pass"), s(TEMPLATE)],
        )
        .await
        .unwrap();
        let id = ok_value(decode_response(&reply.body)).as_i64().unwrap();
        let reply = post(
            &carol,
            &cert_url,
            None,
            "one.vm.info",
            &[s("dummy:pass"), Value::Int(id)],
        )
        .await
        .unwrap();
        let doc = ok_value(decode_response(&reply.body));
        assert!(doc
            .as_str()
            .unwrap()
            .contains("<UNAME>CN%3Dcarol%2CO%3DStratusLab+Local+Cloud</UNAME>"));
        cloud.stop().await;
    }

    async fn hammer(seconds: u64) {
        let cloud = start(options(&["lal", "grnet"], 1)).await;
        let url = pswd(&cloud, "lal");
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = JoinSet::new();
        for worker in 0..16 {
            let url = if worker % 4 == 3 {
                pswd(&cloud, "grnet")
            } else {
                url.clone()
            };
            tasks.spawn(async move {
                let client = client();
                let mut calls = 0u64;
                while Instant::now() < deadline {
                    let id = allocate(&client, &url).await;
                    state(&client, &url, id).await;
                    pool(&client, &url, -3, -1).await;
                    let reply = rpc(
                        &client,
                        &url,
                        "one.vm.action",
                        &[s("finalize"), Value::Int(id)],
                    )
                    .await;
                    ok_value(reply);
                    calls += 4;
                }
                calls
            });
        }
        let mut total = 0;
        while let Some(done) = tasks.join_next().await {
            total += done.unwrap();
        }
        assert!(total >= 16 * 4, "{total}");
        assert_eq!(
            cloud.request_count("lal", Service::Compute, "*")
                + cloud.request_count("grnet", Service::Compute, "*"),
            total
        );
        cloud.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sixteen_concurrent_clients() {
        tokio::time::timeout(Duration::from_secs(60), hammer(3))
            .await
            .unwrap();
    }

    /// The long variant: `cargo test --lib localcloud::server -- --ignored`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore]
    async fn sixteen_concurrent_clients_for_thirty_seconds() {
        tokio::time::timeout(Duration::from_secs(120), hammer(30))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_vm_pool_is_served_from_cache() {
        let cloud = start(options(&["lal"], 0)).await;
        let ids = cloud.seed_vms("lal", 10_000, "alice").unwrap();
        assert_eq!(ids.len(), 10_000);
        let client = client();
        let url = pswd(&cloud, "lal");
        let params = [
            s("x"),
            Value::Int(-3),
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(-1),
        ];
        let fetch = || {
            post(
                &client,
                &url,
                Some(("alice", "secret-pw")),
                "one.vmpool.info",
                &params,
            )
        };
        let first = fetch().await.unwrap();
        // The second reply is the cached bytes of the first (same generation).
        let second = fetch().await.unwrap();
        assert_eq!(first.body, second.body);
        assert!(first.body.len() > 30_000_000, "{}", first.body.len());
        let text = std::str::from_utf8(&first.body).unwrap();
        assert_eq!(text.matches("&lt;VM&gt;&lt;ID&gt;").count(), 10_000);
        // A change invalidates it.
        ok_value(
            rpc(
                &client,
                &url,
                "one.vm.action",
                &[s("finalize"), Value::Int(0)],
            )
            .await,
        );
        let third = fetch().await.unwrap();
        let text = std::str::from_utf8(&third.body).unwrap();
        assert_eq!(text.matches("&lt;VM&gt;&lt;ID&gt;").count(), 9_999);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn stop_frees_the_port() {
        let cloud = start(options(&["lal"], 0)).await;
        let port = cloud.port();
        let client = client();
        assert_eq!(
            ok_value(rpc(&client, &pswd(&cloud, "lal"), "one.system.version", &[]).await),
            s("3.8.5")
        );
        cloud.stop().await;
        let again = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await;
        assert!(again.is_ok());
    }
}
