//! The persistent-disk ("pdisk") REST client (spec §4): base URL rules, volume listing,
//! creation, description, deletion, and hot attach / detach.
//!
//! Wire facts the client copes with: every JSON value may be a string, numbers included, and a
//! number may carry FreeMarker's thousands separators (`"1,500,000,000"`); unknown keys are
//! ignored; errors come as `{ "message" : "...", "code" : <int> }` (or `ERROR (<code>): <text>`
//! as text). Bodies are parsed as proper JSON (the old Python client deleted every backslash from
//! POST replies first, which corrupts escaped quotes; we do not).

use reqwest::Method;
use serde_json::{Map, Value};

use crate::error::{Classify, Kind};
use crate::http::{HttpClient, Request, Response, TransportError};

/// Port of a first-generation pdisk endpoint given as a bare host.
pub const DEFAULT_PORT: u16 = 8445;
/// Smallest volume the service creates, in GiB.
pub const MIN_SIZE_GIB: u32 = 1;
/// Largest volume the service creates, in GiB.
pub const MAX_SIZE_GIB: u32 = 1024;

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
/// Longest server text kept in an error message.
const MESSAGE_LIMIT: usize = 500;

/// Errors of the pdisk layer.
#[derive(Debug, thiserror::Error)]
pub enum PdiskError {
    /// No HTTP reply at all.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// HTTP 401: the service rejected the credentials.
    #[error("pdisk rejected the credentials (HTTP 401)")]
    Unauthorized,
    /// The service refused the request (any other 4xx/5xx).
    #[error("pdisk answered HTTP {status}: {message}")]
    Http {
        status: u16,
        /// The `code` of the service's JSON error body, when it sent one.
        code: Option<i64>,
        message: String,
    },
    /// A 2xx reply we cannot understand.
    #[error("unexpected pdisk reply: {detail}")]
    Malformed { detail: String },
    /// The pdisk endpoint (or the compute endpoint it is derived from) is unusable.
    #[error("bad pdisk endpoint: {detail}")]
    Endpoint { detail: String },
    /// A caller's argument was rejected before anything was sent.
    #[error("{detail}")]
    InvalidArgument { detail: String },
}

impl Classify for PdiskError {
    fn kind(&self) -> Kind {
        match self {
            PdiskError::Transport(e) => e.kind(),
            PdiskError::Unauthorized => Kind::InvalidCreds,
            PdiskError::Http { .. } => Kind::Provider,
            PdiskError::Malformed { .. } => Kind::Malformed,
            PdiskError::Endpoint { .. } => Kind::Config,
            PdiskError::InvalidArgument { .. } => Kind::InvalidArgument,
        }
    }
    fn http_status(&self) -> Option<u16> {
        match self {
            PdiskError::Transport(e) => e.http_status(),
            PdiskError::Unauthorized => Some(401),
            PdiskError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
    fn service_code(&self) -> Option<i64> {
        match self {
            PdiskError::Transport(e) => e.service_code(),
            PdiskError::Http { code, .. } => *code,
            _ => None,
        }
    }
}

fn endpoint_error(detail: impl Into<String>) -> PdiskError {
    PdiskError::Endpoint {
        detail: detail.into(),
    }
}

fn malformed(detail: impl Into<String>) -> PdiskError {
    PdiskError::Malformed {
        detail: detail.into(),
    }
}

fn invalid(detail: impl Into<String>) -> PdiskError {
    PdiskError::InvalidArgument {
        detail: detail.into(),
    }
}

/// Who may see and attach a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Only the owner (and the super-user); the service's default.
    Private,
    /// Anyone may view and attach; only the owner (and the super-user) may delete.
    Public,
}

impl Visibility {
    /// The value sent in forms (`private` / `public`, as the Python client sent it).
    pub fn form_value(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
    /// The value the service renders (`PRIVATE` / `PUBLIC`).
    pub fn wire_name(self) -> &'static str {
        match self {
            Visibility::Private => "PRIVATE",
            Visibility::Public => "PUBLIC",
        }
    }
    /// Parses either spelling, case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("private") {
            Some(Visibility::Private)
        } else if value.eq_ignore_ascii_case("public") {
            Some(Visibility::Public)
        } else {
            None
        }
    }
}

/// The pdisk base URL, ending in `/pswd` (password) or `/cert` (certificate) (spec §4.1).
///
/// With a pdisk endpoint:
/// - no `scheme://` → `https://<host>:<port or 8445>[/<path>]` (an explicit `host:port` is kept);
/// - a `scheme://` URL (http or https) is kept as given;
/// - trailing slashes are removed in both cases.
///
/// Without one (the Python client then reused the compute endpoint verbatim, which only worked
/// for a bare host), it is derived from the compute endpoint:
/// - bare host (optionally `host:port`, any path): `https://<host>:8445` — the compute port is
///   one-proxy's (2634), never pdisk's;
/// - a URL whose path has a `one-proxy` segment (second generation, behind nginx, e.g.
///   `https://cloud.example.com/one-proxy/xmlrpc`): the same scheme and authority, the path before
///   `one-proxy`, then `/pdisk` → `https://cloud.example.com/pdisk`;
/// - any other URL (first generation `https://host:2634/xmlrpc`, or a direct OpenNebula
///   `http://host:2633/RPC2`): its scheme and host with port 8445 → `https://host:8445`.
///
/// URLs carrying credentials, a query or a fragment are refused (the credentials would end up in
/// messages; the suffix could not be appended).
pub fn pdisk_base_url(
    pdisk_endpoint: Option<&str>,
    compute_endpoint: &str,
    cert_mode: bool,
) -> Result<String, PdiskError> {
    let base = match pdisk_endpoint.map(str::trim).filter(|s| !s.is_empty()) {
        Some(endpoint) => sanitize_endpoint(endpoint)?,
        None => derive_from_compute(compute_endpoint.trim())?,
    };
    let suffix = if cert_mode { "/cert" } else { "/pswd" };
    Ok(base + suffix)
}

/// `scheme://rest` when the value starts with a scheme (letters, digits, `+`, `-`, `.`, `_`).
fn split_scheme(value: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = value.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_'));
    valid.then_some((scheme, rest))
}

/// Splits `host[:port][/path]` (no scheme) into host, port and path (without its leading `/`).
fn split_bare(value: &str) -> Result<(&str, Option<u16>, &str), PdiskError> {
    let (authority, path) = value.split_once('/').unwrap_or((value, ""));
    if authority.contains('@') {
        return Err(endpoint_error(
            "the endpoint must not contain credentials (set pdisk_username/pdisk_password)",
        ));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // [IPv6]:port
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| endpoint_error(format!("unclosed '[' in '{value}'")))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| endpoint_error(format!("bad host in '{value}'")))?,
            ),
        };
        (&authority[..inside.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(endpoint_error(format!("no host in '{value}'")));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| endpoint_error(format!("bad port '{p}' in '{value}'")))?,
        ),
    };
    Ok((host, port, path))
}

/// Checks a full URL: http(s), a host, no credentials, no query or fragment.
fn check_url(candidate: &str) -> Result<url::Url, PdiskError> {
    let url = url::Url::parse(candidate).map_err(|e| {
        if candidate.contains('@') {
            endpoint_error(format!("invalid URL: {e}"))
        } else {
            endpoint_error(format!("invalid URL '{candidate}': {e}"))
        }
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(endpoint_error(
            "the endpoint must not contain credentials (set pdisk_username/pdisk_password)",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(endpoint_error(format!(
            "unsupported scheme '{}' in '{candidate}' (use http or https)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(endpoint_error(format!("no host in '{candidate}'")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(endpoint_error(format!(
            "the endpoint '{candidate}' must not have a query or fragment"
        )));
    }
    Ok(url)
}

fn sanitize_endpoint(endpoint: &str) -> Result<String, PdiskError> {
    let full = if split_scheme(endpoint).is_some() {
        endpoint.trim_end_matches('/').to_owned()
    } else {
        let (host, port, path) = split_bare(endpoint)?;
        let port = port.unwrap_or(DEFAULT_PORT);
        format!("https://{host}:{port}/{path}")
            .trim_end_matches('/')
            .to_owned()
    };
    check_url(&full)?;
    Ok(full)
}

fn derive_from_compute(compute: &str) -> Result<String, PdiskError> {
    if compute.is_empty() {
        return Err(endpoint_error("Missing persistent disk endpoint."));
    }
    let Some(_) = split_scheme(compute) else {
        let (host, _, _) = split_bare(compute)?;
        let full = format!("https://{host}:{DEFAULT_PORT}");
        check_url(&full)?;
        return Ok(full);
    };
    let url = check_url(compute.trim_end_matches('/'))?;
    let host = url.host_str().unwrap_or_default();
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let full = match segments.iter().position(|s| *s == "one-proxy") {
        Some(at) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let prefix: String = segments[..at].iter().map(|s| format!("/{s}")).collect();
            format!("{}://{host}{port}{prefix}/pdisk", url.scheme())
        }
        None => format!("{}://{host}:{DEFAULT_PORT}", url.scheme()),
    };
    check_url(&full)?;
    Ok(full)
}

/// A volume as listed by `GET /disks/` (no type or visibility there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSummary {
    /// Server-chosen id (lower-case UUID).
    pub uuid: String,
    /// Free text (`""` when none).
    pub tag: String,
    /// Number of mounts (of CoW snapshots for a `MACHINE_IMAGE_ORIGIN`).
    pub count: u32,
    /// User name (or certificate DN) of the creator; the super-user after quarantine.
    pub owner: String,
    /// Marketplace image id, `snapshot:<uuid>`, or `""`.
    pub identifier: String,
    /// As given at creation: GiB up to 1024, bytes above (see [`DiskSummary::size_gib`]).
    pub size: u64,
    /// Start of quarantine, when the disk is quarantined.
    pub quarantine: Option<String>,
    /// Present only if the server sends it (the list template does not).
    pub disk_type: Option<String>,
    /// Present only if the server sends it (the list template does not).
    pub visibility: Option<String>,
}

/// A volume as described by `GET /disks/<uuid>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Server-chosen id (lower-case UUID).
    pub uuid: String,
    /// Free text (`""` when none).
    pub tag: String,
    /// Number of mounts (of CoW snapshots for a `MACHINE_IMAGE_ORIGIN`).
    pub count: u32,
    /// User name (or certificate DN) of the creator; the super-user after quarantine.
    pub owner: String,
    /// Marketplace image id, `snapshot:<uuid>`, or `""`.
    pub identifier: String,
    /// As given at creation: GiB up to 1024, bytes above (see [`Disk::size_gib`]).
    pub size: u64,
    /// Start of quarantine, when the disk is quarantined.
    pub quarantine: Option<String>,
    /// `MACHINE_IMAGE_ORIGIN`, …, `DATA_IMAGE_RAW_READ_WRITE`.
    pub disk_type: String,
    /// `PRIVATE` or `PUBLIC`.
    pub visibility: String,
}

/// One mount of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// OpenNebula VM id.
    pub vm_id: i64,
    /// `vda`…`vdz`, or `static` for a disk attached at boot.
    pub device: String,
}

/// GiB of a size that is GiB up to the creation maximum (1024) and bytes above (rounded up).
/// The service's documents say "GiB when ≤ 1000", but it creates 1001–1024 GiB disks and keeps
/// their size as given, while no disk image is 1024 bytes or less: reading 1001–1024 as bytes
/// reported a 1024 GiB volume as 1 GiB.
fn size_in_gib(size: u64) -> u64 {
    const GIB: u64 = 1 << 30;
    if size <= 1024 {
        size
    } else {
        size.div_ceil(GIB)
    }
}

impl DiskSummary {
    /// Size in GiB (the size is GiB up to 1024, bytes above; rounded up).
    pub fn size_gib(&self) -> u64 {
        size_in_gib(self.size)
    }
}

impl From<Disk> for DiskSummary {
    /// A described disk as a listing item (type and visibility known).
    fn from(d: Disk) -> Self {
        DiskSummary {
            uuid: d.uuid,
            tag: d.tag,
            count: d.count,
            owner: d.owner,
            identifier: d.identifier,
            size: d.size,
            quarantine: d.quarantine,
            disk_type: Some(d.disk_type),
            visibility: Some(d.visibility),
        }
    }
}

impl Disk {
    /// Size in GiB (the size is GiB up to 1024, bytes above; rounded up).
    pub fn size_gib(&self) -> u64 {
        size_in_gib(self.size)
    }
}

/// Client of one site's pdisk service. Cheap to clone; safe to share between tasks.
#[derive(Clone)]
pub struct PdiskClient {
    base_url: String,
    credentials: Option<(String, String)>,
    http: HttpClient,
    site: String,
}

impl std::fmt::Debug for PdiskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdiskClient")
            .field("base_url", &self.base_url)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("site", &self.site)
            .finish()
    }
}

impl PdiskClient {
    /// A client for `base_url` (from [`pdisk_base_url`]); `credentials` are sent as preemptive
    /// HTTP Basic on every request (`None` for the certificate path, where `http` carries the
    /// client certificate).
    pub fn new(
        base_url: String,
        credentials: Option<(String, String)>,
        http: HttpClient,
        site: String,
    ) -> Self {
        PdiskClient {
            base_url,
            credentials,
            http,
            site,
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The caller's volumes (every volume for the super-user), newest first.
    pub async fn list(&self) -> Result<Vec<DiskSummary>, PdiskError> {
        let response = self.call(Method::GET, "/disks/", None, "list").await?;
        parse_disk_list(&response.body)
    }

    /// Creates a volume of `size_gib` GiB (1..=1024); returns its uuid.
    pub async fn create(
        &self,
        size_gib: u32,
        tag: &str,
        visibility: Visibility,
    ) -> Result<String, PdiskError> {
        if !(MIN_SIZE_GIB..=MAX_SIZE_GIB).contains(&size_gib) {
            return Err(invalid(format!(
                "volume size must be between {MIN_SIZE_GIB} and {MAX_SIZE_GIB} GiB, not {size_gib}"
            )));
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("size", &size_gib.to_string())
            .append_pair("tag", tag)
            .append_pair("visibility", visibility.form_value())
            .finish();
        let response = self
            .call(Method::POST, "/disks/", Some(form), "create volume")
            .await?;
        parse_uuid(&response.body)
    }

    /// One volume, with its type and visibility.
    pub async fn describe(&self, uuid: &str) -> Result<Disk, PdiskError> {
        check_uuid(uuid)?;
        let path = format!("/disks/{uuid}/");
        let response = self
            .call(Method::GET, &path, None, "describe volume")
            .await?;
        parse_disk(&response.body)
    }

    /// Deletes a volume (the service refuses with 409 while it is mounted).
    pub async fn delete(&self, uuid: &str) -> Result<(), PdiskError> {
        check_uuid(uuid)?;
        let path = format!("/disks/{uuid}/");
        let response = self
            .call(Method::DELETE, &path, None, "delete volume")
            .await?;
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        parse_uuid(&response.body).map(|_| ())
    }

    /// The VMs (and devices) a volume is mounted on.
    pub async fn mounts(&self, uuid: &str) -> Result<Vec<Mount>, PdiskError> {
        check_uuid(uuid)?;
        let path = format!("/disks/{uuid}/mounts");
        let response = self
            .call(Method::GET, &path, None, "list volume mounts")
            .await?;
        parse_mounts(&response.body)
    }

    /// Hot-plugs a volume into VM `vm_id` running on hypervisor `node_host`; returns the target
    /// device (`vdz` first, then `vdy`, …).
    pub async fn attach(
        &self,
        uuid: &str,
        node_host: &str,
        vm_id: i64,
    ) -> Result<String, PdiskError> {
        check_uuid(uuid)?;
        if node_host.trim().is_empty() {
            return Err(invalid(
                "cannot attach a volume: the VM has no hypervisor host yet",
            ));
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("node", node_host)
            .append_pair("vm_id", &vm_id.to_string())
            .finish();
        let path = format!("/disks/{uuid}/mounts/");
        let response = self
            .call(Method::POST, &path, Some(form), "attach volume")
            .await?;
        parse_target(&response.body)
    }

    /// Hot-unplugs a volume from VM `vm_id`; returns the device it had.
    pub async fn detach(&self, uuid: &str, vm_id: i64) -> Result<String, PdiskError> {
        check_uuid(uuid)?;
        let path = format!("/disks/{uuid}/mounts/{uuid}_{vm_id}");
        let response = self
            .call(Method::DELETE, &path, None, "detach volume")
            .await?;
        parse_target(&response.body)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        form: Option<String>,
        operation: &str,
    ) -> Result<Response, PdiskError> {
        let url = format!("{}{path}", self.base_url);
        let label = format!("site '{}' pdisk {operation}", self.site);
        let mut request = Request::new(method, url, label).accept(JSON);
        if let Some(form) = form {
            request = request.body(FORM, form);
        }
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, password);
        }
        let response = self.http.send(request).await?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(error_from_response(&response))
        }
    }
}

/// Volume ids go into URL paths: only letters, digits and dashes are let through.
fn check_uuid(uuid: &str) -> Result<(), PdiskError> {
    if !uuid.is_empty() && uuid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(invalid(format!("'{uuid}' is not a pdisk volume id")))
    }
}

/// The error for a non-2xx reply.
fn error_from_response(response: &Response) -> PdiskError {
    if response.status == 401 {
        return PdiskError::Unauthorized;
    }
    let (code, message) = error_details(&response.body);
    let message = message.unwrap_or_else(|| {
        let text = response.excerpt(MESSAGE_LIMIT);
        let text = text.trim();
        if text.is_empty() {
            "(empty reply)".to_owned()
        } else {
            text.to_owned()
        }
    });
    PdiskError::Http {
        status: response.status,
        code,
        message,
    }
}

/// The service's `{ "message", "code" }` JSON or `ERROR (<code>): <text>` text, when it is one.
pub fn error_details(body: &[u8]) -> (Option<i64>, Option<String>) {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        let message = object.get("message").and_then(scalar_text);
        let code = object
            .get("code")
            .and_then(|v| integer(v).ok())
            .and_then(|n| i64::try_from(n).ok());
        if message.is_some() {
            return (code, message.map(|m| shorten(&m)));
        }
    }
    let text = String::from_utf8_lossy(body);
    if let Some(rest) = text.trim().strip_prefix("ERROR (") {
        if let Some((code, message)) = rest.split_once("): ") {
            if let Ok(code) = code.parse::<i64>() {
                return (Some(code), Some(shorten(message.trim())));
            }
        }
    }
    (None, None)
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The start of a body, for Malformed details.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if body.len() > 200 {
        text + "…"
    } else {
        text
    }
}

fn parse_json(body: &[u8]) -> Result<Value, PdiskError> {
    serde_json::from_slice(body)
        .map_err(|e| malformed(format!("not JSON ({e}): '{}'", excerpt(body))))
}

/// A JSON scalar as text (FreeMarker renders everything as strings; accept real numbers too).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A non-negative integer given as a JSON number or a string, possibly with thousands
/// separators in groups of three (`1,500,000,000`, `1.500.000.000`, `1 500 000 000`).
fn integer(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a non-negative integer")),
        Value::String(s) => parse_grouped(s.trim()).ok_or_else(|| format!("'{s}' is not a number")),
        other => Err(format!(
            "{} is not a number",
            excerpt(other.to_string().as_bytes())
        )),
    }
}

fn parse_grouped(text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let separator = text.chars().find(|c| !c.is_ascii_digit())?;
    if !matches!(
        separator,
        ',' | '.' | ' ' | '\'' | '_' | '\u{a0}' | '\u{202f}'
    ) {
        return None;
    }
    let mut digits = String::with_capacity(text.len());
    for (index, group) in text.split(separator).enumerate() {
        let ok_len = if index == 0 {
            (1..=3).contains(&group.len())
        } else {
            group.len() == 3
        };
        if !ok_len || !group.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push_str(group);
    }
    digits.parse().ok()
}

/// Field access on one JSON object, with the key named in errors.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, what: &'static str) -> Result<Self, PdiskError> {
        match value {
            Value::Object(object) => Ok(Fields { object, what }),
            other => Err(malformed(format!(
                "{what} is not a JSON object: {}",
                excerpt(other.to_string().as_bytes())
            ))),
        }
    }

    fn text(&self, key: &str) -> Result<Option<String>, PdiskError> {
        match self.object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => scalar_text(value).map(Some).ok_or_else(|| {
                malformed(format!(
                    "{}: '{key}' is not a string: {}",
                    self.what,
                    excerpt(value.to_string().as_bytes())
                ))
            }),
        }
    }

    fn required_text(&self, key: &str) -> Result<String, PdiskError> {
        self.text(key)?
            .ok_or_else(|| malformed(format!("{}: no '{key}'", self.what)))
    }

    /// Empty text counts as absent.
    fn optional_text(&self, key: &str) -> Result<Option<String>, PdiskError> {
        Ok(self.text(key)?.filter(|s| !s.is_empty()))
    }

    fn number(&self, key: &str) -> Result<u64, PdiskError> {
        let value = self
            .object
            .get(key)
            .ok_or_else(|| malformed(format!("{}: no '{key}'", self.what)))?;
        integer(value).map_err(|e| malformed(format!("{}: '{key}': {e}", self.what)))
    }

    fn count(&self) -> Result<u32, PdiskError> {
        let count = self.number("count")?;
        u32::try_from(count)
            .map_err(|_| malformed(format!("{}: 'count' {count} is too large", self.what)))
    }

    fn uuid(&self) -> Result<String, PdiskError> {
        let uuid = self.required_text("uuid")?;
        if uuid.is_empty() {
            return Err(malformed(format!("{}: empty 'uuid'", self.what)));
        }
        Ok(uuid)
    }
}

fn summary_from(value: &Value) -> Result<DiskSummary, PdiskError> {
    let f = Fields::of(value, "volume list item")?;
    Ok(DiskSummary {
        uuid: f.uuid()?,
        tag: f.text("tag")?.unwrap_or_default(),
        count: f.count()?,
        owner: f.required_text("owner")?,
        identifier: f.text("identifier")?.unwrap_or_default(),
        size: f.number("size")?,
        quarantine: f.optional_text("quarantine")?,
        disk_type: f.optional_text("type")?,
        visibility: f.optional_text("visibility")?,
    })
}

/// `GET /disks/` body → volumes.
pub fn parse_disk_list(body: &[u8]) -> Result<Vec<DiskSummary>, PdiskError> {
    match parse_json(body)? {
        Value::Array(items) => items.iter().map(summary_from).collect(),
        other => Err(malformed(format!(
            "volume list is not a JSON array: '{}'",
            excerpt(other.to_string().as_bytes())
        ))),
    }
}

/// `GET /disks/<uuid>/` body → volume.
pub fn parse_disk(body: &[u8]) -> Result<Disk, PdiskError> {
    let value = parse_json(body)?;
    let f = Fields::of(&value, "volume")?;
    Ok(Disk {
        uuid: f.uuid()?,
        tag: f.text("tag")?.unwrap_or_default(),
        count: f.count()?,
        owner: f.required_text("owner")?,
        identifier: f.text("identifier")?.unwrap_or_default(),
        size: f.number("size")?,
        quarantine: f.optional_text("quarantine")?,
        disk_type: f.required_text("type")?,
        visibility: f.required_text("visibility")?,
    })
}

/// `{ "uuid" : "<uuid>" }` (create and delete replies) → uuid.
pub fn parse_uuid(body: &[u8]) -> Result<String, PdiskError> {
    let value = parse_json(body)?;
    Fields::of(&value, "reply")?.uuid()
}

/// `GET /disks/<uuid>/mounts` body → mounts.
pub fn parse_mounts(body: &[u8]) -> Result<Vec<Mount>, PdiskError> {
    let items = match parse_json(body)? {
        Value::Array(items) => items,
        other => {
            return Err(malformed(format!(
                "mount list is not a JSON array: '{}'",
                excerpt(other.to_string().as_bytes())
            )))
        }
    };
    items
        .iter()
        .map(|item| {
            let f = Fields::of(item, "mount")?;
            let vm_id = f.number("vmId")?;
            Ok(Mount {
                vm_id: i64::try_from(vm_id)
                    .map_err(|_| malformed(format!("mount: 'vmId' {vm_id} is too large")))?,
                device: f.required_text("device")?,
            })
        })
        .collect()
}

/// The `target` of an attach or detach reply.
pub fn parse_target(body: &[u8]) -> Result<String, PdiskError> {
    let value = parse_json(body)?;
    let target = Fields::of(&value, "reply")?.required_text("target")?;
    if target.is_empty() {
        return Err(malformed("reply: empty 'target'"));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_first_and_second_generation() {
        // (pdisk_endpoint, compute endpoint, cert, expected)
        let cases: &[(Option<&str>, &str, bool, &str)] = &[
            // explicit pdisk endpoint, first generation
            (
                Some("pdisk.example.org"),
                "",
                false,
                "https://pdisk.example.org:8445/pswd",
            ),
            (
                Some("pdisk.example.org"),
                "",
                true,
                "https://pdisk.example.org:8445/cert",
            ),
            (
                Some("pdisk.example.org:9000"),
                "",
                false,
                "https://pdisk.example.org:9000/pswd",
            ),
            (
                Some("pdisk.example.org/"),
                "",
                false,
                "https://pdisk.example.org:8445/pswd",
            ),
            (
                Some("154.48.152.10:8445"),
                "",
                false,
                "https://154.48.152.10:8445/pswd",
            ),
            (Some("[::1]:8445"), "", false, "https://[::1]:8445/pswd"),
            // explicit pdisk endpoint, second generation (spec §4.1 and the reference config)
            (
                Some("https://cloud.example.com/pdisk"),
                "",
                false,
                "https://cloud.example.com/pdisk/pswd",
            ),
            (
                Some("https://cloud.example.com/pdisk///"),
                "x",
                true,
                "https://cloud.example.com/pdisk/cert",
            ),
            (
                Some("  http://127.0.0.1:4242/pdisk "),
                "",
                false,
                "http://127.0.0.1:4242/pdisk/pswd",
            ),
            // derived from the compute endpoint
            (
                None,
                "cloud.example.com",
                false,
                "https://cloud.example.com:8445/pswd",
            ),
            (
                Some(""),
                "cloud.example.com:2634",
                false,
                "https://cloud.example.com:8445/pswd",
            ),
            (
                None,
                "https://cloud.example.com:2634/xmlrpc",
                false,
                "https://cloud.example.com:8445/pswd",
            ),
            (
                None,
                "https://cloud.example.com/one-proxy/xmlrpc",
                false,
                "https://cloud.example.com/pdisk/pswd",
            ),
            (
                None,
                "https://cloud.example.com/one-proxy/pswd/xmlrpc",
                true,
                "https://cloud.example.com/pdisk/cert",
            ),
            (
                None,
                "http://127.0.0.1:40123/site/lal/one-proxy/xmlrpc",
                false,
                "http://127.0.0.1:40123/site/lal/pdisk/pswd",
            ),
            (
                None,
                "http://localhost:2633/RPC2",
                false,
                "http://localhost:8445/pswd",
            ),
            (None, "localhost", false, "https://localhost:8445/pswd"),
        ];
        for (pdisk, compute, cert, expected) in cases {
            let got = pdisk_base_url(*pdisk, compute, *cert)
                .unwrap_or_else(|e| panic!("{pdisk:?} / {compute}: {e}"));
            assert_eq!(got, *expected, "{pdisk:?} / {compute}");
        }
    }

    #[test]
    fn base_url_refusals() {
        let cases: &[(Option<&str>, &str, &str)] = &[
            (None, "", "Missing persistent disk endpoint."),
            (Some("   "), " ", "Missing persistent disk endpoint."),
            (
                Some("https://user:secret@cloud.example.com/pdisk"),
                "",
                "must not contain credentials",
            ),
            (Some("user:secret@host"), "", "must not contain credentials"),
            (
                Some("ftp://cloud.example.com/pdisk"),
                "",
                "unsupported scheme",
            ),
            (Some("host:port/x"), "", "bad port 'port'"),
            (Some(":8445"), "", "no host"),
            (
                Some("https://cloud.example.com/pdisk?x=1"),
                "",
                "query or fragment",
            ),
            (None, "https://", "invalid URL"),
        ];
        for (pdisk, compute, needle) in cases {
            let error = pdisk_base_url(*pdisk, compute, false).unwrap_err();
            assert_eq!(error.kind(), Kind::Config);
            let text = error.to_string();
            assert!(text.contains(needle), "{pdisk:?}: {text}");
            assert!(!text.contains("secret"), "password leaked: {text}");
        }
    }

    #[test]
    fn grouped_numbers() {
        let good = [
            ("0", 0),
            ("10", 10),
            ("1,024", 1024),
            ("1,500,000,000", 1_500_000_000),
            ("1.500.000.000", 1_500_000_000),
            ("1\u{a0}500\u{a0}000", 1_500_000),
            ("999", 999),
        ];
        for (text, expected) in good {
            assert_eq!(parse_grouped(text), Some(expected), "{text}");
        }
        for bad in [
            "",
            "1.5",
            "1,5000",
            ",100",
            "1,000.000",
            "-1",
            "12a",
            "1,,000",
            "abc",
        ] {
            assert_eq!(parse_grouped(bad), None, "{bad}");
        }
    }

    #[test]
    fn size_in_gib_rule() {
        let disk = |size| DiskSummary {
            uuid: "u".into(),
            tag: String::new(),
            count: 0,
            owner: "o".into(),
            identifier: String::new(),
            size,
            quarantine: None,
            disk_type: None,
            visibility: None,
        };
        assert_eq!(disk(1).size_gib(), 1);
        assert_eq!(disk(1000).size_gib(), 1000);
        // up to the creation maximum the size is GiB; above it, bytes
        assert_eq!(disk(1024).size_gib(), 1024);
        assert_eq!(disk(1025).size_gib(), 1);
        assert_eq!(disk(1_073_741_824).size_gib(), 1);
        assert_eq!(disk(1_073_741_825).size_gib(), 2);
        assert_eq!(disk(1_500_000_000).size_gib(), 2);
    }

    #[test]
    fn disk_from_string_numbers_and_unknown_keys() {
        let body = br#"{"uuid":"abc","tag":"t","count":"1,001","owner":"joe","identifier":"",
            "size":"1,500,000,000","type":"DATA_IMAGE_RAW_READ_WRITE","visibility":"PUBLIC",
            "future":"ignored","nested":{"a":1}}"#;
        let disk = parse_disk(body).unwrap();
        assert_eq!(
            disk,
            Disk {
                uuid: "abc".into(),
                tag: "t".into(),
                count: 1001,
                owner: "joe".into(),
                identifier: String::new(),
                size: 1_500_000_000,
                quarantine: None,
                disk_type: "DATA_IMAGE_RAW_READ_WRITE".into(),
                visibility: "PUBLIC".into(),
            }
        );
        assert_eq!(disk.size_gib(), 2);
        // real JSON numbers are fine too
        let body =
            br#"{"uuid":"abc","count":0,"owner":"joe","size":5,"type":"T","visibility":"PRIVATE"}"#;
        let disk = parse_disk(body).unwrap();
        assert_eq!((disk.count, disk.size, disk.tag.as_str()), (0, 5, ""));
    }

    #[test]
    fn list_items_lack_type_and_optional_keys() {
        // An older server (before 2015-03-09) left out an empty identifier.
        let body = br#"[{"uuid":"a","tag":"","count":"0","owner":"joe","size":"10"},
            {"uuid":"b","tag":"x","quarantine":"2014-03-01 10:00:00.000001","count":"2",
             "owner":"pdisk","identifier":"snapshot:a","size":"1"}]"#;
        let disks = parse_disk_list(body).unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[0].identifier, "");
        assert_eq!(disks[0].quarantine, None);
        assert_eq!(disks[0].disk_type, None);
        assert_eq!(disks[0].visibility, None);
        assert_eq!(
            disks[1].quarantine.as_deref(),
            Some("2014-03-01 10:00:00.000001")
        );
        assert_eq!(disks[1].count, 2);
        assert_eq!(disks[1].identifier, "snapshot:a");
    }

    #[test]
    fn garbage_is_malformed() {
        let cases: &[(&[u8], &str)] = &[
            (b"<html>login</html>", "not JSON"),
            (b"", "not JSON"),
            (b"{\"uuid\":\"a\"}", "not a JSON array"),
            (b"[1]", "not a JSON object"),
            (
                b"[{\"uuid\":\"a\",\"count\":\"x\",\"owner\":\"o\",\"size\":\"1\"}]",
                "'count'",
            ),
            (
                b"[{\"uuid\":\"a\",\"count\":\"1\",\"owner\":\"o\",\"size\":\"-1\"}]",
                "'size'",
            ),
            (
                b"[{\"count\":\"1\",\"owner\":\"o\",\"size\":\"1\"}]",
                "no 'uuid'",
            ),
            (
                b"[{\"uuid\":\"a\",\"count\":\"1\",\"owner\":\"o\"}]",
                "no 'size'",
            ),
            (
                b"[{\"uuid\":\"a\",\"count\":\"1\",\"owner\":[],\"size\":\"1\"}]",
                "'owner' is not a string",
            ),
        ];
        for (body, needle) in cases {
            let error = parse_disk_list(body).unwrap_err();
            assert_eq!(error.kind(), Kind::Malformed);
            assert!(error.to_string().contains(needle), "{error}");
        }
        assert_eq!(parse_uuid(b"{}").unwrap_err().kind(), Kind::Malformed);
        assert_eq!(
            parse_target(b"{\"target\":\"\"}").unwrap_err().kind(),
            Kind::Malformed
        );
        assert_eq!(
            parse_mounts(b"[{\"vmId\":\"x\",\"device\":\"vdz\"}]")
                .unwrap_err()
                .kind(),
            Kind::Malformed
        );
    }

    #[test]
    fn escaped_quotes_survive() {
        // The Python client stripped backslashes and then failed on this.
        let body = br#"{ "uuid" : "a", "tag": "my \"big\" disk\\data", "count": "0", "owner": "o",
            "size": "1", "type": "T", "visibility": "PRIVATE" }"#;
        assert_eq!(parse_disk(body).unwrap().tag, "my \"big\" disk\\data");
    }

    #[test]
    fn mounts_and_targets() {
        // the inline sample of the Python client's test suite [C-t-pd]
        let mounts = parse_mounts(br#"[{"vmId":"1234", "device":"static"}]"#).unwrap();
        assert_eq!(
            mounts,
            vec![Mount {
                vm_id: 1234,
                device: "static".into()
            }]
        );
        assert_eq!(
            parse_target(br#"{"target":"vdz","uuid":["a"]}"#).unwrap(),
            "vdz"
        );
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: None,
            location: None,
            www_authenticate: None,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn error_replies() {
        let e = error_from_response(&response(
            409,
            "{ \n  \"message\" : \"disk (u) is in use and can't be deleted\", \n  \"code\" : 409 \n}\n",
        ));
        assert_eq!(e.kind(), Kind::Provider);
        assert_eq!(e.http_status(), Some(409));
        assert_eq!(e.service_code(), Some(409));
        assert_eq!(
            e.to_string(),
            "pdisk answered HTTP 409: disk (u) is in use and can't be deleted"
        );

        let e = error_from_response(&response(404, "ERROR (404): Unknown disk: u\n"));
        assert_eq!(e.service_code(), Some(404));
        assert_eq!(e.to_string(), "pdisk answered HTTP 404: Unknown disk: u");

        let e = error_from_response(&response(502, "<html>Bad Gateway</html>"));
        assert_eq!(e.service_code(), None);
        assert_eq!(e.to_string(), "pdisk answered HTTP 502: Bad Gateway");

        let e = error_from_response(&response(500, ""));
        assert_eq!(e.to_string(), "pdisk answered HTTP 500: (empty reply)");

        let e = error_from_response(&response(401, "whatever"));
        assert_eq!(e.kind(), Kind::InvalidCreds);
        assert_eq!(e.http_status(), Some(401));
    }

    #[test]
    fn volume_ids_cannot_change_the_path() {
        for bad in ["", "../x", "a/b", "a?b", "a b", "a#b"] {
            assert_eq!(check_uuid(bad).unwrap_err().kind(), Kind::InvalidArgument);
        }
        check_uuid("95b75092-17d2-459f-9fa0-cd1deaa721f1").unwrap();
    }

    // ---- decoding the emulator's golden replies (tests/fixtures/pdisk/golden, synthetic) ----

    const A: &str = "95b75092-17d2-459f-9fa0-cd1deaa721f1";
    const B: &str = "0c2cbb1a-3b0e-4a59-8d4e-6f0a1d2e3f40";

    fn golden(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/pdisk/golden/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path)
            .unwrap()
            .replace("{{uuid2}}", B)
            .replace("{{uuid}}", A)
            .into_bytes()
    }

    #[test]
    fn decodes_golden_disks() {
        let plain = parse_disk(&golden("disk-plain.json")).unwrap();
        assert_eq!(
            plain,
            Disk {
                uuid: A.into(),
                tag: "data".into(),
                count: 0,
                owner: "joe".into(),
                identifier: String::new(),
                size: 10,
                quarantine: None,
                disk_type: "DATA_IMAGE_RAW_READ_WRITE".into(),
                visibility: "PRIVATE".into(),
            }
        );
        assert_eq!(plain.size_gib(), 10);
        let full = parse_disk(&golden("disk-full.json")).unwrap();
        assert_eq!(
            full,
            Disk {
                uuid: B.into(),
                tag: "my \"big\" disk".into(),
                count: 2,
                owner: "joe".into(),
                identifier: "JcqGhHxmTRAEpHMmRF-xhSTM3TO".into(),
                size: 1_500_000_000,
                quarantine: Some("2014-03-01 10:00:00.000001".into()),
                disk_type: "MACHINE_IMAGE_LIVE".into(),
                visibility: "PUBLIC".into(),
            }
        );
        assert_eq!(full.size_gib(), 2);

        let list = parse_disk_list(&golden("disks-list.json")).unwrap();
        let uuids: Vec<&str> = list.iter().map(|d| d.uuid.as_str()).collect();
        assert_eq!(uuids, [B, A]);
        assert_eq!(
            list[0],
            DiskSummary {
                uuid: B.into(),
                tag: "my \"big\" disk".into(),
                count: 2,
                owner: "joe".into(),
                identifier: "JcqGhHxmTRAEpHMmRF-xhSTM3TO".into(),
                size: 1_500_000_000,
                quarantine: Some("2014-03-01 10:00:00.000001".into()),
                disk_type: None,
                visibility: None,
            }
        );
        assert_eq!(
            (list[1].tag.as_str(), list[1].size, list[1].count),
            ("data", 10, 0)
        );
        assert!(parse_disk_list(&golden("disks-empty.json"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn decodes_golden_actions_and_errors() {
        assert_eq!(parse_uuid(&golden("uuid-keyvalue.json")).unwrap(), A);
        assert_eq!(parse_target(&golden("attach-200.json")).unwrap(), "vdy");
        assert_eq!(parse_target(&golden("detach-200.json")).unwrap(), "vdy");
        assert_eq!(
            parse_mounts(&golden("mounts.json")).unwrap(),
            vec![
                Mount {
                    vm_id: 42,
                    device: "vdy".into()
                },
                Mount {
                    vm_id: 7,
                    device: "vdz".into()
                }
            ]
        );
        assert!(parse_mounts(&golden("mounts-empty.json"))
            .unwrap()
            .is_empty());

        let e = error_from_response(&response(
            409,
            &String::from_utf8(golden("error-409.json")).unwrap(),
        ));
        assert_eq!(
            e.to_string(),
            format!("pdisk answered HTTP 409: disk ({B}) is in use and can't be deleted")
        );
        assert_eq!((e.http_status(), e.service_code()), (Some(409), Some(409)));
        let e = error_from_response(&response(
            400,
            &String::from_utf8(golden("error-400-size.json")).unwrap(),
        ));
        assert_eq!(
            e.to_string(),
            "pdisk answered HTTP 400: Error parsing size: For input string: \"ten\""
        );
        let e = error_from_response(&response(
            404,
            &String::from_utf8(golden("error-404.txt")).unwrap(),
        ));
        assert_eq!(
            e.to_string(),
            "pdisk answered HTTP 404: disk (no-such-disk) does not exist"
        );
        assert_eq!(e.service_code(), Some(404));
    }

    proptest::proptest! {
        /// Whatever the server sends, decoding returns a value or an error, never a panic.
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_disk_list(&body);
            let _ = parse_disk(&body);
            let _ = parse_mounts(&body);
            let _ = parse_target(&body);
            let _ = parse_uuid(&body);
            let e = error_from_response(&Response {
                status: 500,
                content_type: None,
                location: None,
                www_authenticate: None,
                body: bytes::Bytes::from(body),
            });
            proptest::prop_assert_eq!(e.http_status(), Some(500));
        }

        #[test]
        fn grouped_text_round_trips(n in proptest::num::u64::ANY) {
            let digits = n.to_string();
            let mut text = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    text.push(',');
                }
                text.push(c);
            }
            proptest::prop_assert_eq!(parse_grouped(&text), Some(n));
            proptest::prop_assert_eq!(integer(&Value::String(text)), Ok(n));
        }
    }

    // ---- end to end: PdiskClient → HTTP → PdiskStore (the local cloud's pdisk) ----

    mod end_to_end {
        use std::sync::{Arc, Mutex};

        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode, Uri};
        use axum::response::{IntoResponse, Response as AxumResponse};
        use base64::Engine;

        use super::super::*;
        use crate::http::HttpOptions;
        use crate::localcloud::pdisk::PdiskStore;
        use crate::localcloud::VmView;

        type Shared = Arc<Mutex<PdiskStore>>;

        fn basic_user(headers: &HeaderMap) -> Option<String> {
            let value = headers.get("authorization")?.to_str().ok()?;
            let encoded = value.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, password) = text.split_once(':')?;
            (password == "secret").then(|| user.to_owned())
        }

        /// A minimal stand-in for the local cloud's server: Basic auth, `/pdisk/pswd` prefix.
        async fn serve(
            State(store): State<Shared>,
            method: axum::http::Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> AxumResponse {
            let Some(user) = basic_user(&headers) else {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(
                        "www-authenticate",
                        "Basic realm=\"StratusLab Password Realm\"",
                    )],
                    "",
                )
                    .into_response();
            };
            let Some(path) = uri.path().strip_prefix("/pdisk/pswd") else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let accept = headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let lookup = |id: i64| {
                (id == 42).then(|| VmView {
                    id,
                    owner: "joe".into(),
                    host: Some("node-1".into()),
                    running: true,
                })
            };
            let reply = store.lock().unwrap().handle(
                &user,
                method.as_str(),
                path,
                uri.query().unwrap_or(""),
                &body,
                accept.as_deref(),
                &lookup,
            );
            let status = StatusCode::from_u16(reply.status).unwrap();
            (status, [("content-type", reply.content_type)], reply.body).into_response()
        }

        async fn start() -> (String, Shared) {
            let store = Arc::new(Mutex::new(PdiskStore::new("pdisk")));
            let app = axum::Router::new()
                .fallback(serve)
                .with_state(Arc::clone(&store));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            let compute = format!("http://{address}/one-proxy/xmlrpc");
            (pdisk_base_url(None, &compute, false).unwrap(), store)
        }

        fn client(base: &str, user: &str, password: &str) -> PdiskClient {
            let http = HttpClient::new(HttpOptions::default()).unwrap();
            PdiskClient::new(
                base.to_owned(),
                Some((user.to_owned(), password.to_owned())),
                http,
                "local".to_owned(),
            )
        }

        #[tokio::test]
        async fn create_list_attach_delete_detach() {
            let (base, store) = start().await;
            assert!(base.ends_with("/pdisk/pswd"), "{base}");
            let joe = client(&base, "joe", "secret");

            let tag = r#"my "big" disk\data"#;
            let uuid = joe.create(10, tag, Visibility::Private).await.unwrap();
            let list = joe.list().await.unwrap();
            assert_eq!(list.len(), 1);
            assert_eq!(
                (
                    list[0].uuid.as_str(),
                    list[0].tag.as_str(),
                    list[0].size,
                    list[0].count
                ),
                (uuid.as_str(), tag, 10, 0)
            );
            let disk = joe.describe(&uuid).await.unwrap();
            assert_eq!(
                (
                    disk.visibility.as_str(),
                    disk.disk_type.as_str(),
                    disk.owner.as_str()
                ),
                ("PRIVATE", "DATA_IMAGE_RAW_READ_WRITE", "joe")
            );

            assert_eq!(joe.attach(&uuid, "node-1", 42).await.unwrap(), "vdz");
            assert_eq!(
                joe.mounts(&uuid).await.unwrap(),
                vec![Mount {
                    vm_id: 42,
                    device: "vdz".into()
                }]
            );
            assert_eq!(joe.describe(&uuid).await.unwrap().count, 1);

            let refused = joe.delete(&uuid).await.unwrap_err();
            assert_eq!(refused.kind(), Kind::Provider);
            assert_eq!(
                (refused.http_status(), refused.service_code()),
                (Some(409), Some(409))
            );
            assert_eq!(
                refused.to_string(),
                format!("pdisk answered HTTP 409: disk ({uuid}) is in use and can't be deleted")
            );

            assert_eq!(joe.detach(&uuid, 42).await.unwrap(), "vdz");
            joe.delete(&uuid).await.unwrap();
            let gone = joe.describe(&uuid).await.unwrap_err();
            assert_eq!(gone.http_status(), Some(404));
            assert!(joe.list().await.unwrap().is_empty());
            assert!(store.lock().unwrap().disks().is_empty());
        }

        #[tokio::test]
        async fn refusals_reach_the_caller_classified() {
            let (base, _store) = start().await;
            let joe = client(&base, "joe", "secret");
            let uuid = joe.create(1, "", Visibility::Public).await.unwrap();

            let e = joe.attach(&uuid, "node-1", 99).await.unwrap_err();
            assert_eq!((e.kind(), e.http_status()), (Kind::Provider, Some(500)));
            assert_eq!(
                e.to_string(),
                "pdisk answered HTTP 500: Unable to attach persistent disk: VM 99 does not exist"
            );
            let e = joe.detach(&uuid, 42).await.unwrap_err();
            assert_eq!(e.http_status(), Some(404));

            let ann = client(&base, "ann", "secret");
            assert_eq!(ann.describe(&uuid).await.unwrap().visibility, "PUBLIC");
            let e = ann.delete(&uuid).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("pdisk answered HTTP 403: insufficient rights to delete disk ({uuid})")
            );

            let intruder = client(&base, "joe", "wrong");
            let e = intruder.list().await.unwrap_err();
            assert_eq!((e.kind(), e.http_status()), (Kind::InvalidCreds, Some(401)));
            assert!(!format!("{e} {intruder:?}").contains("wrong"));

            let e = joe.create(0, "x", Visibility::Private).await.unwrap_err();
            assert_eq!(e.kind(), Kind::InvalidArgument);
            let e = joe.describe("../disks").await.unwrap_err();
            assert_eq!(e.kind(), Kind::InvalidArgument);
        }
    }
}
