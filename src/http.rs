//! The one HTTP layer under every service client: reqwest on rustls (ring), our own TLS
//! configuration (CA file, client certificate, verification switch), timeouts, a body-size limit,
//! bounded retries for idempotent requests only, and one DEBUG log line per request with no
//! credential in it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;

use crate::error::{Classify, Kind};

/// Default request timeout, as libcloud's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest reply body we accept (a 10,000-VM pool is ≈ 37 MB).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024 * 1024;

/// TLS settings of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Verify the server certificate (default on).
    pub insecure: bool,
    /// PEM file of trusted CAs; when set, it replaces the system store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and key; a grid proxy may give the same file for both.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// Retries of idempotent requests (reads) on connection errors and 502/503/504.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    pub delay: Duration,
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

#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    pub timeout: Duration,
    pub tls: TlsOptions,
    pub retry: RetryPolicy,
    pub max_body: usize,
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: DEFAULT_TIMEOUT,
            tls: TlsOptions::default(),
            retry: RetryPolicy::default(),
            max_body: DEFAULT_MAX_BODY,
            user_agent: format!(
                "stratuslab-libcloud/{} (rust core)",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

/// Why a request produced no HTTP reply (a reply with any status is not an error here).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no reply within {seconds:.1} s (timeout)")]
    Timeout { seconds: f64 },
    #[error("cannot connect: {detail}")]
    Connect { detail: String },
    #[error("TLS problem: {detail}")]
    Tls { detail: String },
    #[error("the connection broke while reading the reply: {detail}")]
    Body { detail: String },
    #[error("reply body larger than the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("invalid URL '{url}': {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("cannot build the HTTP client: {detail}")]
    Setup { detail: String },
}

impl Classify for TransportError {
    fn kind(&self) -> Kind {
        match self {
            TransportError::Timeout { .. } => Kind::Timeout,
            TransportError::Connect { .. }
            | TransportError::Tls { .. }
            | TransportError::Body { .. } => Kind::Unreachable,
            TransportError::BodyTooLarge { .. } => Kind::Malformed,
            TransportError::InvalidUrl { .. } => Kind::Config,
            TransportError::Setup { .. } => Kind::Config,
        }
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
            .field("url", &self.url)
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
    /// The first bytes of the body as text, for error messages.
    pub fn excerpt(&self, max: usize) -> String {
        let end = self.body.len().min(max);
        let mut s = String::from_utf8_lossy(&self.body[..end]).into_owned();
        if self.body.len() > max {
            s.push('…');
        }
        s
    }
}

/// A pooled client (keep-alive) for one site and its options. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    options: Arc<HttpOptions>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("options", &self.options)
            .finish()
    }
}

impl HttpClient {
    pub fn new(options: HttpOptions) -> Result<Self, TransportError> {
        let tls = tls_config(&options.tls)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_str(&options.user_agent).map_err(|e| TransportError::Setup {
                detail: e.to_string(),
            })?,
        );
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::limited(5))
            .no_proxy()
            .build()
            .map_err(|e| TransportError::Setup {
                detail: error_chain(&e),
            })?;
        Ok(HttpClient {
            client,
            options: Arc::new(options),
        })
    }

    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Sends a request; retries only idempotent ones, per the retry policy.
    pub async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let attempts = if request.idempotent {
            self.options.retry.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.options.retry.delay;
        let mut attempt = 1;
        loop {
            let result = self.send_once(&request).await;
            let retryable = match &result {
                Ok(r) => matches!(r.status, 502..=504),
                Err(TransportError::Connect { .. }) | Err(TransportError::Body { .. }) => true,
                Err(TransportError::Timeout { .. }) => true,
                Err(_) => false,
            };
            if !retryable || attempt >= attempts {
                return result;
            }
            log::debug!(
                target: "stratuslab_libcloud",
                "{}: retrying {} {} (attempt {} of {}) in {:.2} s",
                request.label,
                request.method,
                request.url,
                attempt + 1,
                attempts,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            delay = delay.mul_f64(self.options.retry.backoff.max(1.0));
            attempt += 1;
        }
    }

    async fn send_once(&self, request: &Request) -> Result<Response, TransportError> {
        let started = Instant::now();
        let mut builder = self
            .client
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
        let result = self.execute(builder).await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(r) => log::debug!(
                target: "stratuslab_libcloud",
                "{}: {} {} -> {} in {:.1} ms, {} bytes",
                request.label,
                request.method,
                request.url,
                r.status,
                elapsed,
                r.body.len()
            ),
            Err(e) => log::debug!(
                target: "stratuslab_libcloud",
                "{}: {} {} -> error after {:.1} ms: {}",
                request.label,
                request.method,
                request.url,
                elapsed,
                e
            ),
        }
        result
    }

    async fn execute(&self, builder: reqwest::RequestBuilder) -> Result<Response, TransportError> {
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
        let limit = self.options.max_body;
        let mut body = match response.content_length() {
            Some(n) if n as usize > limit => return Err(TransportError::BodyTooLarge { limit }),
            Some(n) => BytesMut::with_capacity(n as usize),
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
                        other => TransportError::Body {
                            detail: other.to_string(),
                        },
                    })
                }
            }
        }
        Ok(Response {
            status,
            content_type,
            location,
            www_authenticate,
            body: body.freeze(),
        })
    }
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
    if error.is_timeout() {
        TransportError::Timeout {
            seconds: timeout.as_secs_f64(),
        }
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
        TransportError::Tls { detail: chain }
    } else if error.is_connect() {
        TransportError::Connect { detail: chain }
    } else if error.is_body() || error.is_decode() {
        TransportError::Body { detail: chain }
    } else if error.is_builder() {
        TransportError::InvalidUrl {
            url: error.url().map(|u| u.to_string()).unwrap_or_default(),
            detail: chain,
        }
    } else {
        TransportError::Connect { detail: chain }
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|e| TransportError::Setup {
        detail: format!("cannot read the {what} file {}: {e}", path.display()),
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
            let pem = read_pem(ca, "CA certificates")?;
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
            let cert_pem = read_pem(cert_path, "client certificate")?;
            let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TransportError::Setup {
                    detail: format!("bad PEM in {}: {e}", cert_path.display()),
                })?;
            let key_pem = read_pem(key_path, "client key")?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| TransportError::Setup {
                    detail: format!("bad PEM key in {}: {e}", key_path.display()),
                })?
                .ok_or_else(|| TransportError::Setup {
                    detail: format!("no private key found in {}", key_path.display()),
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TransportError::Setup {
                    detail: format!("client certificate rejected: {e}"),
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
