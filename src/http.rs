//! The one HTTP layer under every service client: reqwest on rustls (ring), our own TLS
//! configuration (CA file, client certificate, verification switch), timeouts, a body-size limit,
//! bounded retries for idempotent requests only, and one DEBUG log line per request with no
//! credential in it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;

use crate::error::{Classify, Kind};

/// Default request timeout, as libcloud's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest reply body we accept (a 10,000-VM pool is ≈ 37 MB).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024 * 1024;
/// Largest reply to a write accepted by [`HttpOptions::api`] (writes answer an id or a few fields).
pub const API_MAX_WRITE_BODY: usize = 1024 * 1024;
/// Longest wait between two attempts, whatever the backoff.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// TLS settings of a client.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Do not verify the server certificate (default: verify).
    pub insecure: bool,
    /// PEM file of trusted CAs; when set, it replaces the system store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain); a grid proxy may give the same file for both.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate (its path is never shown).
    pub client_key: Option<PathBuf>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field(
                "client_key",
                &self.client_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Proxies, as the caller resolved them (the Python driver reads libcloud's `proxy_url`, and
/// the environment's `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`); nothing is read from the
/// environment here. Proxy URLs may carry `user:password@` (sent as `Proxy-Authorization`,
/// never shown).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Every request goes through this proxy, whatever `no_proxy` says (libcloud's `proxy_url`).
    pub all: Option<String>,
    /// Proxy of `https://` URLs (when `all` is not set).
    pub https: Option<String>,
    /// Proxy of `http://` URLs (when `all` is not set).
    pub http: Option<String>,
    /// Hosts reached directly instead of through `https`/`http` (`NO_PROXY` syntax: a
    /// comma-separated list of domains, which match their subdomains too, IP addresses, CIDR
    /// ranges, or `*`).
    pub no_proxy: Option<String>,
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |url: &Option<String>| url.as_deref().map(|u| redact_url(u).into_owned());
        f.debug_struct("ProxyOptions")
            .field("all", &shown(&self.all))
            .field("https", &shown(&self.https))
            .field("http", &shown(&self.http))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyOptions {
    /// The reqwest proxies (none: direct connections).
    fn proxies(&self) -> Result<Vec<reqwest::Proxy>, TransportError> {
        let bad = |what: &str, url: &str, e: reqwest::Error| TransportError::Setup {
            detail: redact_urls(&format!(
                "bad proxy URL{what} '{}': {}",
                redact_url(url),
                error_chain(&e)
            ))
            .into_owned(),
        };
        if let Some(url) = &self.all {
            return Ok(vec![
                reqwest::Proxy::all(url.as_str()).map_err(|e| bad("", url, e))?
            ]);
        }
        let no_proxy = || {
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string)
        };
        let mut proxies = Vec::new();
        if let Some(url) = &self.https {
            let proxy = reqwest::Proxy::https(url.as_str()).map_err(|e| bad(" (HTTPS)", url, e))?;
            proxies.push(proxy.no_proxy(no_proxy()));
        }
        if let Some(url) = &self.http {
            let proxy = reqwest::Proxy::http(url.as_str()).map_err(|e| bad(" (HTTP)", url, e))?;
            proxies.push(proxy.no_proxy(no_proxy()));
        }
        Ok(proxies)
    }
}

/// Retries: reads on connection errors, broken or missing replies, timeouts and 502/503/504;
/// writes only when the connection could not be opened (the request never left).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    /// Wait before the second attempt.
    pub delay: Duration,
    /// Multiplier of the wait after each attempt (≥ 1); a wait never exceeds [`MAX_RETRY_DELAY`].
    pub backoff: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            delay: Duration::from_secs(1),
            backoff: 1.0,
        }
    }
}

/// Everything a client is built with.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Whole-request timeout (connect, send, and read the full body).
    pub timeout: Duration,
    pub tls: TlsOptions,
    pub retry: RetryPolicy,
    /// Largest reply body accepted.
    pub max_body: usize,
    /// Largest reply body accepted for a non-idempotent request.
    pub max_write_body: usize,
    /// A 2xx reply that is an HTML page (a portal, a proxy's page, a web UI) is an error.
    pub reject_html: bool,
    pub user_agent: String,
    /// The proxies the client starts with (see [`HttpClient::set_proxy`]).
    pub proxy: ProxyOptions,
}

impl HttpOptions {
    /// The options of an API client (what the driver uses): HTML pages are not replies, and a
    /// write's reply is at most [`API_MAX_WRITE_BODY`] bytes.
    pub fn api() -> Self {
        HttpOptions {
            max_write_body: API_MAX_WRITE_BODY,
            reject_html: true,
            ..HttpOptions::default()
        }
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: DEFAULT_TIMEOUT,
            tls: TlsOptions::default(),
            retry: RetryPolicy::default(),
            max_body: DEFAULT_MAX_BODY,
            max_write_body: DEFAULT_MAX_BODY,
            reject_html: false,
            user_agent: format!(
                "stratuslab-libcloud/{} (rust core)",
                env!("CARGO_PKG_VERSION")
            ),
            proxy: ProxyOptions::default(),
        }
    }
}

/// Why a request produced no usable HTTP reply (a reply with any status is not an error here,
/// except an HTML page when [`HttpOptions::reject_html`] is set).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no reply within {seconds:.1} s (timeout)")]
    Timeout { seconds: f64 },
    /// The connection could not be opened: the request never left.
    #[error("cannot connect: {detail}")]
    Connect { detail: String },
    #[error("TLS problem: {detail}")]
    Tls { detail: String },
    /// The server ended the handshake over our client certificate.
    #[error("TLS problem: the server refused the client certificate ({detail})")]
    ClientCertRefused { detail: String },
    /// The connection was closed before any reply.
    #[error("the connection was closed before a reply: {detail}")]
    NoReply { detail: String },
    #[error("the connection broke while reading the reply: {detail}")]
    Body { detail: String },
    #[error("reply body larger than the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    /// A 2xx reply that is a web page, not an API reply.
    #[error("the server answered a web page ({content_type}), not an API reply: {excerpt}")]
    HtmlReply {
        content_type: String,
        excerpt: String,
    },
    /// A write whose reply was lost or unusable: the server may have carried it out.
    #[error("{cause} (the request may have been carried out: check before repeating it)")]
    OutcomeUnknown { cause: Box<TransportError> },
    #[error("invalid URL '{url}': {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("cannot build the HTTP client: {detail}")]
    Setup { detail: String },
}

impl Classify for TransportError {
    fn kind(&self) -> Kind {
        match self {
            TransportError::Timeout { .. } => Kind::Timeout,
            TransportError::ClientCertRefused { .. } => Kind::InvalidCreds,
            TransportError::Connect { .. }
            | TransportError::Tls { .. }
            | TransportError::NoReply { .. }
            | TransportError::Body { .. } => Kind::Unreachable,
            TransportError::BodyTooLarge { .. } | TransportError::HtmlReply { .. } => {
                Kind::Malformed
            }
            TransportError::OutcomeUnknown { cause } => cause.kind(),
            TransportError::InvalidUrl { .. } => Kind::Config,
            TransportError::Setup { .. } => Kind::Config,
        }
    }
}

impl TransportError {
    /// True when the request certainly did not reach the server (safe to send again).
    fn never_sent(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. }
                | TransportError::Tls { .. }
                | TransportError::ClientCertRefused { .. }
                | TransportError::InvalidUrl { .. }
                | TransportError::Setup { .. }
        )
    }
}

/// An outgoing request. Credentials go in `basic_auth`, never in the URL.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Option<Bytes>,
    pub basic_auth: Option<(String, String)>,
    /// Safe to send twice (reads). Writes are never retried.
    pub idempotent: bool,
    /// Label for the log line (site and operation).
    pub label: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(u, _)| (u, "***")),
            )
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>, label: impl Into<String>) -> Self {
        let idempotent = matches!(method, Method::GET | Method::HEAD);
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            basic_auth: None,
            idempotent,
            label: label.into(),
        }
    }
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn accept(self, value: &str) -> Self {
        self.header(ACCEPT, value)
    }
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.headers.push((CONTENT_TYPE, content_type.to_owned()));
        self.body = Some(body.into());
        self
    }
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_owned(), password.to_owned()));
        self
    }
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
}

/// A reply, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: Bytes,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The start of the body as one line of text for error messages: an HTML page is reduced to
    /// its text, whitespace runs to one space, at most `max` characters (then `…`).
    pub fn excerpt(&self, max: usize) -> String {
        excerpt(&self.body, max)
    }
}

/// How many body bytes [`excerpt`] looks at (enough to get past an HTML page's head).
const EXCERPT_SCAN: usize = 16 * 1024;

/// See [`Response::excerpt`].
pub fn excerpt(body: &[u8], max: usize) -> String {
    let scanned = &body[..body.len().min(EXCERPT_SCAN)];
    let text = String::from_utf8_lossy(scanned);
    let html = looks_like_html(&text);
    let mut out = String::new();
    let mut in_tag = false;
    let mut pending_space = false;
    let mut count = 0;
    let mut cut = false;
    for c in text.chars() {
        if html && c == '<' {
            in_tag = true;
            pending_space = true;
            continue;
        }
        if in_tag {
            in_tag = c != '>';
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            pending_space = true;
            continue;
        }
        if count >= max {
            cut = true;
            break;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        pending_space = false;
        out.push(c);
        count += 1;
    }
    if cut || body.len() > scanned.len() {
        out.push('…');
    }
    out
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.contains("<html") || head.contains("<body")
}

/// The URL without user information (`https://user:secret@host/` → `https://host/`).
pub fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    redact_urls(url)
}

/// Every URL of a text without its user information (what a message or a log line may carry).
pub fn redact_urls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#'\"<>()".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        out.push_str(
            authority
                .rfind('@')
                .map_or(authority, |at| &authority[at + 1..]),
        );
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.into()
}

/// Whether request lines also go to the `_libcloud_debug` target ([`set_libcloud_debug`]).
static LIBCLOUD_DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns on (or off) the copy of every request line sent to the
/// `stratuslab_libcloud::_libcloud_debug` log target, which the Python side writes to
/// libcloud's debug file (`LIBCLOUD_DEBUG`, `libcloud.enable_debug`) whatever the application's
/// logging levels say.
pub fn set_libcloud_debug(on: bool) {
    LIBCLOUD_DEBUG.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// One request line: a DEBUG record of the `stratuslab_libcloud` target (the application's
/// logging decides where it goes) and, while libcloud's debug output is on, the same on
/// `stratuslab_libcloud::_libcloud_debug`.
macro_rules! request_line {
    ($($arg:tt)+) => {{
        log::debug!(target: "stratuslab_libcloud", $($arg)+);
        if LIBCLOUD_DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
            log::debug!(target: "stratuslab_libcloud::_libcloud_debug", $($arg)+);
        }
    }};
}

/// A pooled client (keep-alive) for one site and its options. Cheap to clone (clones share the
/// pool). Safe across `fork()`: a child process gets a fresh pool on its first request.
#[derive(Clone)]
pub struct HttpClient {
    pool: Arc<Mutex<Pool>>,
    options: Arc<HttpOptions>,
    /// A large reply's buffer given back by its reader ([`HttpClient::recycle`]), for the next
    /// large reply.
    spare: Arc<Mutex<Option<BytesMut>>>,
}

/// Replies at least this large are read into a recycled buffer when there is one.
const LARGE_BODY: usize = 8 << 20;

/// The reqwest client, the process it was built in, and its proxies.
struct Pool {
    pid: u32,
    client: reqwest::Client,
    proxy: ProxyOptions,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("options", &self.options)
            .finish()
    }
}

fn build_client(
    options: &HttpOptions,
    proxy: &ProxyOptions,
) -> Result<reqwest::Client, TransportError> {
    let tls = tls_config(&options.tls)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_str(&options.user_agent).map_err(|e| TransportError::Setup {
            detail: e.to_string(),
        })?,
    );
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .default_headers(headers)
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(5))
        // Only the proxies given: reqwest would read the environment its own way.
        .no_proxy();
    for p in proxy.proxies()? {
        builder = builder.proxy(p);
    }
    builder.build().map_err(|e| TransportError::Setup {
        detail: error_chain(&e),
    })
}

impl HttpClient {
    /// Builds the client (reads the TLS files now, so their problems show at once).
    pub fn new(options: HttpOptions) -> Result<Self, TransportError> {
        let client = build_client(&options, &options.proxy)?;
        Ok(HttpClient {
            pool: Arc::new(Mutex::new(Pool {
                pid: std::process::id(),
                client,
                proxy: options.proxy.clone(),
            })),
            options: Arc::new(options),
            spare: Arc::new(Mutex::new(None)),
        })
    }

    /// Gives back the body of a large reply its reader is done with: its buffer is kept (one
    /// per client) for the next large reply. A fresh 38 MB buffer costs about 9,400 page faults
    /// to fill, most of the time the driver spends receiving a 10,000-VM pool; the price is
    /// that one buffer, as large as the largest recent reply, stays allocated. Bodies still
    /// shared elsewhere, or small, are just dropped.
    pub fn recycle(&self, body: Bytes) {
        if body.len() < LARGE_BODY {
            return;
        }
        if let (Ok(mut buffer), Ok(mut spare)) = (body.try_into_mut(), self.spare.lock()) {
            buffer.clear();
            *spare = Some(buffer);
        }
    }

    /// A buffer for a body of `n` bytes: the spare one when it is large enough.
    fn body_buffer(&self, n: usize) -> BytesMut {
        if n >= LARGE_BODY {
            if let Some(buffer) = self.spare.lock().ok().and_then(|mut s| s.take()) {
                if buffer.capacity() >= n {
                    return buffer;
                }
            }
        }
        BytesMut::with_capacity(n)
    }

    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Routes the next requests of this client and its clones through other proxies (libcloud's
    /// `connection.set_http_proxy`): a new connection pool is built (requests under way finish
    /// on the old one). A bad proxy URL changes nothing.
    pub fn set_proxy(&self, proxy: ProxyOptions) -> Result<(), TransportError> {
        let client = build_client(&self.options, &proxy)?;
        let mut pool = self.pool.lock().map_err(|_| TransportError::Setup {
            detail: "the HTTP client's lock is poisoned".to_owned(),
        })?;
        if pool.pid != std::process::id() {
            // Forked child: the parent's pool is not ours to drop (see `client`).
            std::mem::forget(std::mem::replace(&mut pool.client, client));
            pool.pid = std::process::id();
        } else {
            pool.client = client;
        }
        pool.proxy = proxy;
        Ok(())
    }

    /// The reqwest client of this process. In a forked child the parent's pooled connections
    /// are served by runtime threads that do not exist there (a request on them would wait for
    /// the timeout): they are abandoned, unclosed (the sockets are the parent's), for a new pool.
    fn client(&self) -> Result<reqwest::Client, TransportError> {
        let pid = std::process::id();
        let mut pool = self.pool.lock().map_err(|_| TransportError::Setup {
            detail: "the HTTP client's lock is poisoned".to_owned(),
        })?;
        if pool.pid != pid {
            let fresh = build_client(&self.options, &pool.proxy)?;
            std::mem::forget(std::mem::replace(&mut pool.client, fresh));
            log::debug!(
                target: "stratuslab_libcloud",
                "process {pid} was forked from {}: new HTTP connection pool",
                pool.pid
            );
            pool.pid = pid;
        }
        Ok(pool.client.clone())
    }

    /// Sends a request, retrying per the policy: reads on transient failures, writes only when
    /// the connection could not be opened. A write whose reply is lost or unusable fails with
    /// [`TransportError::OutcomeUnknown`].
    pub async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let attempts = self.options.retry.attempts.max(1);
        let mut delay = self.options.retry.delay.min(MAX_RETRY_DELAY);
        let mut attempt = 1;
        loop {
            let result = self.send_once(&request).await;
            let retryable = match &result {
                Ok(r) => request.idempotent && matches!(r.status, 502..=504),
                Err(e @ TransportError::Connect { .. }) => e.never_sent(),
                Err(
                    TransportError::NoReply { .. }
                    | TransportError::Body { .. }
                    | TransportError::Timeout { .. },
                ) => request.idempotent,
                Err(_) => false,
            };
            if !retryable || attempt >= attempts {
                return match result {
                    Err(e) if !request.idempotent && !e.never_sent() => {
                        Err(TransportError::OutcomeUnknown { cause: Box::new(e) })
                    }
                    other => other,
                };
            }
            request_line!(
                "{}: retrying {} {} (attempt {} of {}) in {:.2} s",
                request.label,
                request.method,
                redact_url(&request.url),
                attempt + 1,
                attempts,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            delay = delay
                .mul_f64(self.options.retry.backoff.clamp(1.0, 1e6))
                .min(MAX_RETRY_DELAY);
            attempt += 1;
        }
    }

    async fn send_once(&self, request: &Request) -> Result<Response, TransportError> {
        let started = Instant::now();
        let mut builder = self
            .client()?
            .request(request.method.clone(), request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.clone(), value.as_str());
        }
        if let Some((user, password)) = &request.basic_auth {
            builder = builder.basic_auth(user, Some(password));
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let limit = if request.idempotent {
            self.options.max_body
        } else {
            self.options.max_write_body.min(self.options.max_body)
        };
        let result = self.execute(builder, limit).await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(r) => request_line!(
                "{}: {} {} -> {} in {:.1} ms, {} bytes",
                request.label,
                request.method,
                redact_url(&request.url),
                r.status,
                elapsed,
                r.body.len()
            ),
            Err(e) => request_line!(
                "{}: {} {} -> error after {:.1} ms: {}",
                request.label,
                request.method,
                redact_url(&request.url),
                elapsed,
                e
            ),
        }
        result
    }

    async fn execute(
        &self,
        builder: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Response, TransportError> {
        let timeout = self.options.timeout;
        let mut response = builder
            .send()
            .await
            .map_err(|e| classify_reqwest(&e, timeout))?;
        let headers = response.headers();
        let header = |name: HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status().as_u16();
        let content_type = header(CONTENT_TYPE);
        let location = header(reqwest::header::LOCATION);
        let www_authenticate = header(reqwest::header::WWW_AUTHENTICATE);
        let mut body = match response.content_length() {
            Some(n) if n > limit as u64 => return Err(TransportError::BodyTooLarge { limit }),
            Some(n) => self.body_buffer(n as usize),
            None => BytesMut::new(),
        };
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(TransportError::BodyTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(match classify_reqwest(&e, timeout) {
                        TransportError::Timeout { seconds } => TransportError::Timeout { seconds },
                        _ => TransportError::Body {
                            detail: error_chain(&e),
                        },
                    })
                }
            }
        }
        let response = Response {
            status,
            content_type,
            location,
            www_authenticate,
            body: body.freeze(),
        };
        if self.options.reject_html && response.is_success() && is_html(&response) {
            return Err(TransportError::HtmlReply {
                content_type: response.content_type.clone().unwrap_or_default(),
                excerpt: response.excerpt(120),
            });
        }
        Ok(response)
    }
}

/// A non-empty body served as `text/html` or `application/xhtml+xml`.
fn is_html(response: &Response) -> bool {
    let media = response
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    matches!(
        media.as_deref(),
        Some("text/html") | Some("application/xhtml+xml")
    ) && !response.body.iter().all(u8::is_ascii_whitespace)
}

/// The whole source chain of an error, without the URL (reqwest puts it in `Display`; our
/// messages name the endpoint themselves).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current = error.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.dedup();
    parts.join(": ")
}

fn classify_reqwest(error: &reqwest::Error, timeout: Duration) -> TransportError {
    let chain = error_chain(error);
    let lower = chain.to_ascii_lowercase();
    if error.is_timeout() {
        TransportError::Timeout {
            seconds: timeout.as_secs_f64(),
        }
    } else if lower.contains("received fatal alert") && lower.contains("certificate") {
        let alert = chain.rsplit(": ").next().unwrap_or(&chain).to_owned();
        TransportError::ClientCertRefused { detail: alert }
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        let detail = if lower.contains("certificate") && !lower.contains("alert") {
            format!(
                "certificate verification failed: {chain} (give the site's CA with ex_ca_cert or \
                 libcloud.security.CA_CERTS_PATH, or turn verification off with ex_verify_ssl=False)"
            )
        } else {
            chain
        };
        TransportError::Tls { detail }
    } else if error.is_connect() {
        TransportError::Connect { detail: chain }
    } else if error.is_body() || error.is_decode() {
        TransportError::Body { detail: chain }
    } else if error.is_builder() {
        TransportError::InvalidUrl {
            url: error
                .url()
                .map(|u| redact_url(u.as_str()).into_owned())
                .unwrap_or_default(),
            detail: chain,
        }
    } else {
        TransportError::NoReply { detail: chain }
    }
}

/// Reads a PEM file; `what` names it in errors (a private key's path is never shown).
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|e| TransportError::Setup {
        detail: format!("cannot read the {what}: {e}"),
    })
}

fn tls_config(options: &TlsOptions) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Setup {
            detail: e.to_string(),
        })?;
    let builder = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &options.ca_file {
            let pem = read_pem(ca, &format!("CA certificates file {}", ca.display()))?;
            let mut count = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| TransportError::Setup {
                    detail: format!("bad PEM in {}: {e}", ca.display()),
                })?;
                roots.add(cert).map_err(|e| TransportError::Setup {
                    detail: format!("bad CA certificate in {}: {e}", ca.display()),
                })?;
                count += 1;
            }
            if count == 0 {
                return Err(TransportError::Setup {
                    detail: format!("no certificate found in {}", ca.display()),
                });
            }
        } else {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A broken system certificate is skipped, as every TLS stack does.
                let _ignored = roots.add(cert);
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&options.client_cert, &options.client_key) {
        (Some(cert_path), key_path) => {
            let key_path = key_path.as_ref().unwrap_or(cert_path);
            // A grid proxy holds both in one file: then that path is a key's path too.
            let cert_name = if key_path == cert_path {
                "client certificate file (pem_certificate)".to_owned()
            } else {
                format!("client certificate file {}", cert_path.display())
            };
            let cert_pem = read_pem(cert_path, &cert_name)?;
            let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TransportError::Setup {
                    detail: format!("bad PEM in the {cert_name}: {e}"),
                })?;
            if certs.is_empty() {
                return Err(TransportError::Setup {
                    detail: format!("no certificate found in the {cert_name}"),
                });
            }
            let key_name = "client key file (pem_key)";
            let key_pem = read_pem(key_path, key_name)?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| TransportError::Setup {
                    detail: format!("bad PEM in the {key_name}: {e}"),
                })?
                .ok_or_else(|| TransportError::Setup {
                    detail: format!("no private key found in the {key_name}"),
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TransportError::Setup {
                    detail: format!("client certificate and key rejected: {e}"),
                })?
        }
        (None, _) => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts any server certificate (only when the user turned verification off explicitly).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_given_back_are_reused() {
        let http = HttpClient::new(HttpOptions::default()).unwrap();
        let n = LARGE_BODY + 10;
        let mut first = http.body_buffer(n);
        first.extend_from_slice(&vec![7u8; n]);
        let at = first.as_ptr();
        let body = first.freeze();
        // Still shared: not kept.
        let other = body.clone();
        http.recycle(body);
        assert!(http.spare.lock().unwrap().is_none());
        http.recycle(other);
        let again = http.body_buffer(n);
        assert_eq!(again.as_ptr(), at);
        assert!(again.is_empty() && again.capacity() >= n);
        // Taken: the next one is fresh; small or too small buffers are not kept or used.
        assert!(http.spare.lock().unwrap().is_none());
        http.recycle(Bytes::from(vec![0u8; 100]));
        assert!(http.spare.lock().unwrap().is_none());
        http.recycle(again.freeze());
        assert!(http.body_buffer(2 * n).capacity() >= 2 * n);
        assert!(http.spare.lock().unwrap().is_none());
    }
    use crate::localcloud::cloud::{LocalCloud, LocalCloudOptions};
    use crate::localcloud::faults::{FaultKind, FaultRule, Service};

    fn response(content_type: &str, body: &'static [u8]) -> Response {
        Response {
            status: 200,
            content_type: Some(content_type.to_owned()),
            location: None,
            www_authenticate: None,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn excerpt_of_an_html_error_page_is_its_text_on_one_line() {
        let page = b"<html>\n<head>\n<title>Error 503 Service Unavailable</title>\n</head>\n<body>\n<h2>HTTP ERROR: 503</h2>\n<p>Service Unavailable</p>\n</body>\n</html>\n";
        assert_eq!(
            response("text/html", page).excerpt(200),
            "Error 503 Service Unavailable HTTP ERROR: 503 Service Unavailable"
        );
        assert_eq!(response("text/html", page).excerpt(9), "Error 503…");
    }

    #[test]
    fn excerpt_of_json_keeps_the_text_and_collapses_whitespace() {
        let body = b"{\n  \"message\" : \"disk <x> is in use\",\n  \"code\" : 409\n}";
        assert_eq!(
            response("application/json", body).excerpt(200),
            "{ \"message\" : \"disk <x> is in use\", \"code\" : 409 }"
        );
        assert_eq!(excerpt(b"", 10), "");
        assert_eq!(excerpt(&[0xff, b'a', 0, b'b'], 10), "\u{fffd}a b");
    }

    #[test]
    fn excerpt_of_a_huge_body_is_bounded() {
        let body = vec![b'x'; 5_000_000];
        let text = excerpt(&body, 100);
        assert_eq!(text.chars().count(), 101);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn user_information_is_removed_from_urls() {
        assert_eq!(
            redact_url("https://alice:s3cret@example.org:2634/pswd/xmlrpc"),
            "https://example.org:2634/pswd/xmlrpc"
        );
        assert_eq!(redact_url("http://a@b@host/x?u=p@q"), "http://host/x?u=p@q");
        assert_eq!(redact_url("http://host/p@th"), "http://host/p@th");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_urls("site 'x', configure at http://u:p@[::1]:80/a: bad 'https://v:q@h' (u@h)"),
            "site 'x', configure at http://[::1]:80/a: bad 'https://h' (u@h)"
        );
    }

    #[test]
    fn debug_output_hides_the_password_and_the_key_path() {
        let request = Request::new(Method::POST, "https://u:pw1@h/x", "l").basic_auth("u", "pw2");
        let text = format!("{request:?}");
        assert!(!text.contains("pw1") && !text.contains("pw2"), "{text}");
        let tls = TlsOptions {
            client_key: Some("/home/u/.globus/userkey.pem".into()),
            ..TlsOptions::default()
        };
        assert!(!format!("{tls:?}").contains("userkey"));
    }

    #[test]
    fn key_problems_never_name_the_key_file() {
        let dir = std::env::temp_dir().join(format!("sl-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let key = dir.join("secret-key-name.pem");
        for (cert_path, key_path) in [(cert.clone(), key.clone()), (key.clone(), key.clone())] {
            let err = tls_config(&TlsOptions {
                client_cert: Some(cert_path),
                client_key: Some(key_path),
                ..TlsOptions::default()
            })
            .unwrap_err();
            let text = err.to_string();
            assert!(!text.contains("secret-key-name"), "{text}");
            assert_eq!(err.kind(), Kind::Config);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn html_detection(content_type: &str, body: &'static [u8]) -> bool {
        is_html(&response(content_type, body))
    }

    #[test]
    fn html_replies_are_recognised_by_media_type() {
        assert!(html_detection("text/html; charset=UTF-8", b"<p>x</p>"));
        assert!(html_detection("TEXT/HTML", b"{}"));
        assert!(!html_detection("text/html", b"  \n"));
        assert!(!html_detection("text/xml", b"<html/>"));
        assert!(!html_detection("application/json", b"[]"));
    }

    async fn cloud() -> LocalCloud {
        LocalCloud::start(LocalCloudOptions {
            boot_step: Duration::ZERO,
            ..LocalCloudOptions::default()
        })
        .await
        .unwrap()
    }

    fn client(retry: RetryPolicy, options: HttpOptions) -> HttpClient {
        HttpClient::new(HttpOptions {
            timeout: Duration::from_secs(5),
            retry,
            ..options
        })
        .unwrap()
    }

    fn retries(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            delay: Duration::from_millis(10),
            backoff: 2.0,
        }
    }

    fn disks(cloud: &LocalCloud, method: Method) -> Request {
        let url = format!("{}/pswd/disks/", cloud.endpoints("lal").unwrap().pdisk);
        let request = Request::new(method.clone(), url, "test").basic_auth("alice", "secret-pw");
        if method == Method::POST {
            request.body(
                "application/x-www-form-urlencoded",
                "size=1&tag=t&visibility=private",
            )
        } else {
            request
        }
    }

    fn count(cloud: &LocalCloud, op: &str) -> u64 {
        cloud.request_count("lal", Service::Pdisk, op)
    }

    #[tokio::test]
    async fn reads_are_retried_on_503_and_broken_connections_until_the_budget_is_spent() {
        let cloud = cloud().await;
        let http = client(retries(3), HttpOptions::default());
        for kind in [FaultKind::Status(503), FaultKind::Reset, FaultKind::Drop] {
            let before = count(&cloud, "GET /disks");
            cloud
                .inject_fault(FaultRule::new(Service::Pdisk, kind.clone()).times(2))
                .unwrap();
            let reply = http.send(disks(&cloud, Method::GET)).await.unwrap();
            assert_eq!(reply.status, 200, "{kind:?}");
            assert_eq!(count(&cloud, "GET /disks") - before, 3, "{kind:?}");
        }
        cloud
            .inject_fault(FaultRule::new(Service::Pdisk, FaultKind::Status(502)).times(3))
            .unwrap();
        let before = count(&cloud, "GET /disks");
        assert_eq!(
            http.send(disks(&cloud, Method::GET)).await.unwrap().status,
            502
        );
        assert_eq!(count(&cloud, "GET /disks") - before, 3);
        // 500 is not transient: no retry.
        cloud
            .inject_fault(FaultRule::new(Service::Pdisk, FaultKind::Status(500)).times(1))
            .unwrap();
        let before = count(&cloud, "GET /disks");
        assert_eq!(
            http.send(disks(&cloud, Method::GET)).await.unwrap().status,
            500
        );
        assert_eq!(count(&cloud, "GET /disks") - before, 1);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn writes_are_sent_once_and_a_lost_reply_says_the_outcome_is_unknown() {
        let cloud = cloud().await;
        let http = client(retries(3), HttpOptions::api());
        for kind in [FaultKind::Status(503), FaultKind::Reset, FaultKind::Drop] {
            let before = count(&cloud, "POST /disks");
            let disks_before = cloud.disks("lal").len();
            cloud
                .inject_fault(FaultRule::new(Service::Pdisk, kind.clone()).times(1))
                .unwrap();
            let result = http.send(disks(&cloud, Method::POST)).await;
            assert_eq!(count(&cloud, "POST /disks") - before, 1, "{kind:?}");
            match kind {
                FaultKind::Status(503) => {
                    assert_eq!(result.unwrap().status, 503);
                    assert_eq!(cloud.disks("lal").len(), disks_before);
                }
                FaultKind::Reset => {
                    let err = result.unwrap_err();
                    assert!(
                        matches!(&err, TransportError::OutcomeUnknown { cause } if matches!(**cause, TransportError::Body { .. })),
                        "{err:?}"
                    );
                    assert!(err.to_string().contains("may have been carried out"));
                    assert_eq!(err.kind(), Kind::Unreachable);
                    // The server did create it: that is why it is not sent again.
                    assert_eq!(cloud.disks("lal").len(), disks_before + 1);
                }
                _ => {
                    let err = result.unwrap_err();
                    assert!(
                        matches!(&err, TransportError::OutcomeUnknown { cause } if matches!(**cause, TransportError::NoReply { .. })),
                        "{err:?}"
                    );
                }
            }
        }
        cloud.stop().await;
    }

    /// A "proxy" on loopback that answers each connection's first request with `200 proxied`
    /// and records that request's first line.
    async fn fake_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let lines = Arc::clone(&lines);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    lines
                        .lock()
                        .unwrap()
                        .push(text.lines().next().unwrap().to_owned());
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nproxied")
                        .await;
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn requests_go_through_the_proxies_given_and_no_proxy_bypasses_them() {
        let (proxy, seen) = fake_proxy().await;
        let (direct, direct_seen) = fake_proxy().await;
        let direct_port = direct.rsplit(':').next().unwrap().to_owned();
        let get = |http: &HttpClient, url: String| {
            let http = http.clone();
            async move { http.send(Request::new(Method::GET, url, "t")).await }
        };
        // `all`: every scheme, whatever no_proxy says.
        let http = HttpClient::new(HttpOptions {
            proxy: ProxyOptions {
                all: Some(proxy.clone()),
                no_proxy: Some("*".to_owned()),
                ..ProxyOptions::default()
            },
            ..HttpOptions::default()
        })
        .unwrap();
        let reply = get(&http, "http://cloud.invalid:2634/x".to_owned())
            .await
            .unwrap();
        assert_eq!(&reply.body[..], b"proxied");
        // An https URL: a CONNECT (the fake proxy then answers 200 and no TLS: an error here).
        assert!(get(&http, "https://cloud.invalid/y".to_owned())
            .await
            .is_err());
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "GET http://cloud.invalid:2634/x HTTP/1.1",
                "CONNECT cloud.invalid:443 HTTP/1.1"
            ]
        );
        // Per scheme, with no_proxy: 127.0.0.1 is reached directly.
        seen.lock().unwrap().clear();
        let http = HttpClient::new(HttpOptions {
            proxy: ProxyOptions {
                http: Some(proxy.clone()),
                no_proxy: Some("example.org, 127.0.0.1".to_owned()),
                ..ProxyOptions::default()
            },
            ..HttpOptions::default()
        })
        .unwrap();
        get(&http, format!("http://127.0.0.1:{direct_port}/d"))
            .await
            .unwrap();
        let localhost = HttpClient::new(HttpOptions {
            proxy: ProxyOptions {
                https: Some(proxy.clone()),
                http: Some(proxy.clone()),
                no_proxy: Some(".localhost".to_owned()),
                ..ProxyOptions::default()
            },
            ..HttpOptions::default()
        })
        .unwrap();
        get(&localhost, format!("http://localhost:{direct_port}/l"))
            .await
            .unwrap();
        get(&http, "http://cloud.invalid/f".to_owned())
            .await
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["GET http://cloud.invalid/f HTTP/1.1"]
        );
        assert_eq!(
            *direct_seen.lock().unwrap(),
            ["GET /d HTTP/1.1", "GET /l HTTP/1.1"]
        );
        // set_proxy: the clones follow; None = direct again.
        let clone = http.clone();
        http.set_proxy(ProxyOptions {
            all: Some(proxy.clone()),
            ..ProxyOptions::default()
        })
        .unwrap();
        get(&clone, format!("http://127.0.0.1:{direct_port}/g"))
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
        http.set_proxy(ProxyOptions::default()).unwrap();
        get(&clone, format!("http://127.0.0.1:{direct_port}/h"))
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert_eq!(direct_seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_bad_proxy_url_is_a_setup_error_without_its_password() {
        let err = HttpClient::new(HttpOptions {
            proxy: ProxyOptions {
                https: Some("http://u:hunter2@[::1".to_owned()),
                ..ProxyOptions::default()
            },
            ..HttpOptions::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("proxy URL (HTTPS)") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(err.kind(), Kind::Config);
        let options = ProxyOptions {
            all: Some("http://u:hunter2@proxy:3128".to_owned()),
            ..ProxyOptions::default()
        };
        assert!(!format!("{options:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_even_for_writes_with_backoff() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let http = client(retries(3), HttpOptions::api());
        let started = Instant::now();
        let err = http
            .send(Request::new(
                Method::POST,
                format!("http://127.0.0.1:{port}/x"),
                "t",
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
        // 10 ms, then 20 ms.
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(err.kind(), Kind::Unreachable);
    }

    #[tokio::test]
    async fn api_options_refuse_html_pages_and_big_write_replies() {
        let cloud = cloud().await;
        let api = client(retries(1), HttpOptions::api());
        let plain = client(retries(1), HttpOptions::default());
        cloud
            .inject_fault(FaultRule::new(Service::Pdisk, FaultKind::WrongContentType).times(1))
            .unwrap();
        let err = api.send(disks(&cloud, Method::GET)).await.unwrap_err();
        assert!(matches!(err, TransportError::HtmlReply { .. }), "{err:?}");
        assert_eq!(err.kind(), Kind::Malformed);
        cloud
            .inject_fault(FaultRule::new(Service::Pdisk, FaultKind::WrongContentType).times(1))
            .unwrap();
        assert_eq!(
            plain.send(disks(&cloud, Method::GET)).await.unwrap().status,
            200
        );

        cloud
            .inject_fault(FaultRule::new(Service::Pdisk, FaultKind::HugeBody(3_000_000)).times(2))
            .unwrap();
        let err = api.send(disks(&cloud, Method::POST)).await.unwrap_err();
        assert!(
            matches!(&err, TransportError::OutcomeUnknown { cause } if matches!(**cause, TransportError::BodyTooLarge { limit: API_MAX_WRITE_BODY })),
            "{err:?}"
        );
        // A read of the same size is fine.
        let reply = api.send(disks(&cloud, Method::GET)).await.unwrap();
        assert_eq!(reply.body.len(), 3_000_000);
        cloud.stop().await;
    }

    #[tokio::test]
    async fn a_slow_reply_times_out_within_the_timeout() {
        let cloud = cloud().await;
        let http = HttpClient::new(HttpOptions {
            timeout: Duration::from_millis(300),
            ..HttpOptions::default()
        })
        .unwrap();
        cloud
            .inject_fault(
                FaultRule::new(Service::Pdisk, FaultKind::Slow(Duration::from_secs(3))).times(1),
            )
            .unwrap();
        let started = Instant::now();
        let err = http.send(disks(&cloud, Method::GET)).await.unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.to_string(), "no reply within 0.3 s (timeout)");
        cloud.stop().await;
    }
}
