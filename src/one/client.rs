//! The OpenNebula XML-RPC client of one site (through one-proxy or straight to `oned`).
//!
//! Every method answers `[ok, value-or-message, code]` (spec §2.3): `ok = false` becomes
//! [`OneError::Refused`] (or [`OneError::Unauthorized`] for code 256), an XML-RPC fault becomes
//! [`OneError::Fault`], an HTTP 401 from the proxy [`OneError::Unauthorized`].

use std::sync::Arc;

use reqwest::Method;
use tokio::sync::OnceCell;

use super::endpoint::{compute_endpoint, Auth, ComputeEndpoint};
use super::vm::{self, VmRecord, VmXmlError};
use crate::error::{Classify, Kind};
use crate::http::{HttpClient, Request, TransportError};
use crate::xmlrpc::{self, RawItem, RawResponse, Value, XmlRpcError};

/// OpenNebula error codes (spec §2.4; codes seen in the 3.8.5 captures).
pub const ONE_AUTHENTICATION: i64 = 0x0100;
pub const ONE_AUTHORIZATION: i64 = 0x0200;
pub const ONE_NO_EXISTS: i64 = 0x0400;
pub const ONE_ACTION: i64 = 0x0800;
pub const ONE_INTERNAL: i64 = 0x2000;

/// Compute-layer failures.
#[derive(Debug, thiserror::Error)]
pub enum OneError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("authentication refused ({detail})")]
    Unauthorized { detail: String },
    #[error("HTTP {status}: {excerpt}")]
    Http { status: u16, excerpt: String },
    #[error("{0}")]
    XmlRpc(#[from] XmlRpcError),
    /// `[false, message, code]` from OpenNebula.
    #[error("OpenNebula refused (code {code}): {message}")]
    Refused { code: i64, message: String },
    /// A reply that is valid XML-RPC but not the `[ok, value, code]` shape.
    #[error("unexpected reply: {detail}")]
    UnexpectedReply { detail: String },
    /// The VM document inside the reply could not be read.
    #[error("unreadable VM document: {detail}")]
    Document { detail: String },
    #[error("invalid compute endpoint {value}: {reason}")]
    BadEndpoint { value: String, reason: String },
}

impl Classify for OneError {
    fn kind(&self) -> Kind {
        match self {
            OneError::Transport(e) => e.kind(),
            OneError::Unauthorized { .. } => Kind::InvalidCreds,
            OneError::Http { .. } => Kind::Provider,
            OneError::XmlRpc(e) => e.kind(),
            OneError::Refused { .. } => Kind::Provider,
            OneError::UnexpectedReply { .. } | OneError::Document { .. } => Kind::Malformed,
            OneError::BadEndpoint { .. } => Kind::Config,
        }
    }
    fn http_status(&self) -> Option<u16> {
        match self {
            OneError::Http { status, .. } => Some(*status),
            OneError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
    fn service_code(&self) -> Option<i64> {
        match self {
            OneError::Refused { code, .. } => Some(*code),
            OneError::XmlRpc(e) => e.service_code(),
            _ => None,
        }
    }
}

/// An OpenNebula version as `one.system.version` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `"3.8.5"`, `"4.14"`, `"5.12.0.1"`; unparsable parts count as 0.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.').map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u32>()
                .ok()
        });
        let major = parts.next().flatten()?;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What a daemon without `one.system.version` is taken for.
pub const VERSION_WITHOUT_SYSTEM_VERSION: Version = Version {
    major: 3,
    minor: 2,
    patch: 0,
};

/// The pool filters of `one.vmpool.info` (spec §2.3).
pub const POOL_MINE: i64 = -3;
pub const POOL_ALL: i64 = -2;
/// Every state but DONE.
pub const POOL_STATE_NOT_DONE: i64 = -1;
/// Every state, DONE included.
pub const POOL_STATE_ANY: i64 = -2;

/// One site's compute client. Cheap to clone; shares its HTTP pool and cached version.
#[derive(Clone)]
pub struct OneClient {
    inner: Arc<Inner>,
}

struct Inner {
    site: String,
    endpoint: ComputeEndpoint,
    auth: Auth,
    http: HttpClient,
    version: OnceCell<Version>,
}

impl std::fmt::Debug for OneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneClient")
            .field("site", &self.inner.site)
            .field("url", &self.inner.endpoint.url)
            .field("auth", &self.inner.auth)
            .finish()
    }
}

impl OneClient {
    pub fn new(site: &str, endpoint: &str, auth: Auth, http: HttpClient) -> Result<Self, OneError> {
        let endpoint = compute_endpoint(endpoint, &auth)?;
        Ok(OneClient {
            inner: Arc::new(Inner {
                site: site.to_owned(),
                endpoint,
                auth,
                http,
                version: OnceCell::new(),
            }),
        })
    }

    pub fn url(&self) -> &str {
        &self.inner.endpoint.url
    }

    pub fn site(&self) -> &str {
        &self.inner.site
    }

    /// A direct `oned` endpoint (session string, no one-proxy).
    pub fn is_direct(&self) -> bool {
        self.inner.endpoint.direct
    }

    /// Calls `method(session, params…)` and returns element 1 of a successful reply.
    pub async fn call(
        &self,
        method: &str,
        params: Vec<Value>,
        idempotent: bool,
    ) -> Result<Value, OneError> {
        let body = self.send(method, params, idempotent).await?;
        unpack(xmlrpc::decode_response(&body)?)
    }

    /// Sends `method(session, params…)`; the body of a 2xx reply, undecoded.
    async fn send(
        &self,
        method: &str,
        params: Vec<Value>,
        idempotent: bool,
    ) -> Result<bytes::Bytes, OneError> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(self.inner.auth.session()));
        all.extend(params);
        let body = xmlrpc::encode_call(method, &all);
        let mut request = Request::new(
            Method::POST,
            self.inner.endpoint.url.as_str(),
            format!("site '{}' {method}", self.inner.site),
        )
        .body("text/xml", body)
        .idempotent(idempotent);
        if let (false, Auth::Password { username, password }) =
            (self.inner.endpoint.direct, &self.inner.auth)
        {
            request = request.basic_auth(username, password);
        }
        let response = self.inner.http.send(request).await?;
        if response.status == 401 {
            return Err(OneError::Unauthorized {
                detail: format!("HTTP 401 from {}", self.inner.endpoint.url),
            });
        }
        if !response.is_success() {
            return Err(OneError::Http {
                status: response.status,
                excerpt: response.excerpt(200),
            });
        }
        Ok(response.body)
    }

    /// `one.system.version`, asked once per client. A daemon without that method (StratusLab's
    /// OpenNebula 3.2 answers fault -506) is taken for 3.2.
    pub async fn version(&self) -> Result<Version, OneError> {
        let v = self
            .inner
            .version
            .get_or_try_init(|| async {
                let v = match self.call("one.system.version", Vec::new(), true).await {
                    Ok(v) => v,
                    Err(OneError::XmlRpc(XmlRpcError::Fault { code, .. }))
                        if code == i64::from(xmlrpc::FAULT_NO_SUCH_METHOD) =>
                    {
                        return Ok(VERSION_WITHOUT_SYSTEM_VERSION);
                    }
                    Err(e) => return Err(e),
                };
                let text = v.as_str().ok_or_else(|| OneError::UnexpectedReply {
                    detail: format!("version is a {}", v.type_name()),
                })?;
                Version::parse(text).ok_or_else(|| OneError::UnexpectedReply {
                    detail: format!(
                        "unreadable version '{}'",
                        crate::http::excerpt(text.as_bytes(), 80)
                    ),
                })
            })
            .await?;
        Ok(*v)
    }

    /// `one.vmpool.info(filter, -1, -1, state)`: the raw `VM_POOL` document.
    pub async fn vm_pool(&self, filter: i64, state: i64) -> Result<String, OneError> {
        let v = self
            .call(
                "one.vmpool.info",
                vec![
                    Value::Int(filter),
                    Value::Int(-1),
                    Value::Int(-1),
                    Value::Int(state),
                ],
                true,
            )
            .await?;
        into_string(v, "one.vmpool.info")
    }

    /// The pool with every VM's whole document, `USER_TEMPLATE` included:
    /// `one.vmpool.infoextended` from OpenNebula 5.10 on (its `one.vmpool.info` answers a short
    /// body without the user template, `VirtualMachine::to_xml_short`), `one.vmpool.info`
    /// before, and also when the daemon has no `infoextended` (fault -506).
    pub async fn vm_pool_full(&self, filter: i64, state: i64) -> Result<String, OneError> {
        let version = self.version().await?;
        if (version.major, version.minor) >= (5, 10) {
            let params = vec![
                Value::Int(filter),
                Value::Int(-1),
                Value::Int(-1),
                Value::Int(state),
            ];
            match self.call("one.vmpool.infoextended", params, true).await {
                Ok(v) => return into_string(v, "one.vmpool.infoextended"),
                Err(OneError::XmlRpc(XmlRpcError::Fault { code, .. }))
                    if code == i64::from(xmlrpc::FAULT_NO_SUCH_METHOD) => {}
                Err(e) => return Err(e),
            }
        }
        self.vm_pool(filter, state).await
    }

    /// Gives back a reply's body its reader is done with ([`HttpClient::recycle`]).
    pub fn recycle(&self, body: bytes::Bytes) {
        self.inner.http.recycle(body);
    }

    /// The raw reply of `one.vmpool.info(filter, -1, -1, state)`, for [`read_pool_reply`].
    pub async fn vm_pool_reply(&self, filter: i64, state: i64) -> Result<bytes::Bytes, OneError> {
        let params = vec![
            Value::Int(filter),
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(state),
        ];
        self.send("one.vmpool.info", params, true).await
    }

    /// `one.vm.info(id)`: the raw `VM` document.
    pub async fn vm_info(&self, id: i64) -> Result<String, OneError> {
        let v = self.call("one.vm.info", vec![Value::Int(id)], true).await?;
        into_string(v, "one.vm.info")
    }

    /// `one.vm.allocate(template)`: the new VM id. Never retried.
    pub async fn allocate(&self, template: &str) -> Result<i64, OneError> {
        let v = self
            .call("one.vm.allocate", vec![Value::from(template)], false)
            .await?;
        v.as_i64().ok_or_else(|| OneError::UnexpectedReply {
            detail: format!("one.vm.allocate returned a {}", v.type_name()),
        })
    }

    /// `one.vm.action(action, id)`. Never retried.
    pub async fn action(&self, action: &str, id: i64) -> Result<(), OneError> {
        self.call(
            "one.vm.action",
            vec![Value::from(action), Value::Int(id)],
            false,
        )
        .await
        .map(|_| ())
    }
}

fn into_string(v: Value, method: &str) -> Result<String, OneError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(OneError::UnexpectedReply {
            detail: format!("{method} returned a {}", other.type_name()),
        }),
    }
}

/// `[ok, value, code]` → value, or the refusal.
pub(crate) fn unpack(value: Value) -> Result<Value, OneError> {
    let Value::Array(items) = value else {
        return Err(OneError::UnexpectedReply {
            detail: format!("expected [ok, value, code], got a {}", value.type_name()),
        });
    };
    let mut items = items.into_iter();
    let ok = items.next().and_then(|v| v.as_bool());
    let value = items.next();
    let code = items.next().and_then(|v| v.as_i64());
    match (ok, value) {
        (Some(true), Some(value)) => Ok(value),
        (Some(false), value) => {
            let message = value
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_owned();
            let code = code.unwrap_or(0);
            if code == ONE_AUTHENTICATION {
                Err(OneError::Unauthorized { detail: message })
            } else {
                Err(OneError::Refused { code, message })
            }
        }
        _ => Err(OneError::UnexpectedReply {
            detail: "expected [ok, value, code]".to_owned(),
        }),
    }
}

/// What [`read_pool_reply`] hands over.
pub enum PoolPiece {
    /// The next records, in pool order.
    Records(Vec<VmRecord>),
    /// Forget every record handed over so far (the whole pool follows, read another way).
    Discard,
}

/// Where [`read_pool_reply`] sends what it reads (from any thread that reads a piece).
pub type PoolSink = std::sync::Arc<dyn Fn(PoolPiece) + Send + Sync>;

/// Reads a `one.vmpool.info` reply (from [`OneClient::vm_pool_reply`]) into records, handed to
/// `emit` piece by piece, in order ([`vm::PoolPieces`]): the pool document is read where it lies
/// in the reply, still escaped. `share` gets the pieces before they are read, so that another
/// thread can read some ([`crate::pieces::Work::read_one`]). When the fast reading fails midway,
/// `emit` gets [`PoolPiece::Discard`] and then the whole pool as read by
/// [`vm::parse_pool_escaped`], or the error. Refusals are those of [`OneClient::vm_pool`].
/// Gives the body back when done (for [`OneClient::recycle`]).
pub fn read_pool_reply(
    body: bytes::Bytes,
    emit: PoolSink,
    share: &mut dyn FnMut(std::sync::Arc<dyn crate::pieces::Work>),
) -> Result<bytes::Bytes, OneError> {
    let items = match xmlrpc::decode_response_raw(&body)? {
        RawResponse::Array(items) => items,
        RawResponse::Other(value) => {
            unpack(value)?;
            return Err(OneError::UnexpectedReply {
                detail: "expected [ok, value, code]".to_owned(),
            });
        }
    };
    let document = |e: VmXmlError| OneError::Document {
        detail: e.to_string(),
    };
    if let [RawItem::Value(Value::Bool(true)), RawItem::Escaped(doc), ..] = items.as_slice() {
        // The document's place in the body (it is a slice of it: compared by address, not
        // byte by byte).
        let start = (doc.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
        let same = body
            .get(start..start + doc.len())
            .is_some_and(|d| std::ptr::eq(d.as_ptr(), doc.as_ptr()));
        if same {
            let sink = std::sync::Arc::clone(&emit);
            let pieces = std::sync::Arc::new(vm::pool_pieces(
                body.clone(),
                start..start + doc.len(),
                Box::new(move |records| sink(PoolPiece::Records(records))),
            ));
            share(std::sync::Arc::clone(&pieces) as std::sync::Arc<dyn crate::pieces::Work>);
            if pieces.finish() {
                drop(items);
                return Ok(body);
            }
        }
        emit(PoolPiece::Discard);
        let vms = vm::parse_pool_escaped(doc).map_err(document)?;
        emit(PoolPiece::Records(vms));
        drop(items);
        return Ok(body);
    }
    // A refusal or another shape: decoded in full and reported as by `vm_pool`.
    let items = items
        .into_iter()
        .map(RawItem::into_value)
        .collect::<Result<Vec<_>, _>>()?;
    let doc = into_string(unpack(Value::Array(items))?, "one.vmpool.info")?;
    let vms = vm::parse_pool(doc.as_bytes()).map_err(document)?;
    emit(PoolPiece::Records(vms));
    Ok(body)
}

#[cfg(test)]
mod tests {

    /// What `read_pool_reply` hands over, flattened: ids, with `None` for a Discard.
    fn pool_pieces(body: &[u8]) -> Result<Vec<Option<Vec<i64>>>, String> {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&out);
        let mut shared = 0;
        read_pool_reply(
            bytes::Bytes::copy_from_slice(body),
            std::sync::Arc::new(move |piece| {
                sink.lock().unwrap().push(match piece {
                    PoolPiece::Records(vms) => Some(vms.iter().map(|vm| vm.id).collect()),
                    PoolPiece::Discard => None,
                })
            }),
            &mut |_| shared += 1,
        )
        .map_err(|e| e.to_string())?;
        assert!(shared <= 1);
        let out = out.lock().unwrap().clone();
        Ok(out)
    }

    fn pool_reply(doc: &str) -> Vec<u8> {
        xmlrpc::encode_response(&Value::Array(vec![
            Value::Bool(true),
            Value::String(doc.to_owned()),
            Value::Int(0),
        ]))
        .into_bytes()
    }

    /// A pool of `vms` VMs of about 2 KB; `tail(i)` goes in a CDATA section at the end of VM `i`.
    fn big_doc(vms: usize, tail: impl Fn(usize) -> String) -> String {
        let mut doc = String::from("<VM_POOL>");
        for i in 0..vms {
            doc.push_str(&format!(
                "<VM><ID>{i}</ID><NAME>vm-{i}</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE>\
                 <TEMPLATE><CONTEXT><USER_DATA>{}</USER_DATA></CONTEXT></TEMPLATE>\
                 <X><![CDATA[{}]]></X></VM>",
                "u".repeat(2000),
                tail(i)
            ));
        }
        doc.push_str("</VM_POOL>");
        doc
    }

    #[test]
    fn pool_replies_are_read_in_pieces_in_order() {
        let body = pool_reply(&big_doc(3000, |i| format!("t{i}")));
        let pieces = pool_pieces(&body).unwrap();
        assert!(pieces.len() > 2, "{} pieces", pieces.len());
        let ids: Vec<i64> = pieces.into_iter().flat_map(Option::unwrap).collect();
        assert_eq!(ids, (0..3000).collect::<Vec<i64>>());
    }

    #[test]
    fn pool_replies_the_pieces_cannot_read_are_discarded_then_read_whole() {
        // A cut marker inside CDATA at the end of every VM: the first cut falls inside one, the
        // first piece does not read, nothing was handed over before the discard; the whole
        // pool follows.
        let body = pool_reply(&big_doc(3000, |i| format!("x</VM><VM>{i}")));
        let pieces = pool_pieces(&body).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0], None);
        assert_eq!(pieces[1].as_ref().map(Vec::len), Some(3000));
        // A VM the fast reading refuses (an attribute) near the end: pieces were handed over,
        // then the discard, then all.
        let doc = big_doc(3000, |i| format!("t{i}")).replacen(
            "<VM><ID>2990</ID>",
            "<VM a=\"1\"><ID>2990</ID>",
            1,
        );
        let pieces = pool_pieces(&pool_reply(&doc)).unwrap();
        let discard = pieces.iter().position(Option::is_none).unwrap();
        assert!(discard > 0);
        assert_eq!(pieces.len(), discard + 2);
        assert_eq!(
            pieces[discard + 1].clone().unwrap(),
            (0..3000).collect::<Vec<i64>>()
        );
        // A broken pool: the error is the serial one.
        let broken =
            big_doc(3000, |i| format!("t{i}")).replacen("<ID>2999</ID>", "<ID>2999</I>", 1);
        let error = pool_pieces(&pool_reply(&broken)).unwrap_err();
        let serial = vm::parse_pool(broken.as_bytes()).unwrap_err().to_string();
        assert!(error.contains(&serial), "{error} / {serial}");
    }

    #[test]
    fn pool_refusals_are_errors() {
        let refusal = xmlrpc::encode_response(&Value::Array(vec![
            Value::Bool(false),
            Value::String(
                "[VirtualMachinePoolInfo] User couldn't be authenticated, aborting call.".into(),
            ),
            Value::Int(256),
        ]));
        let error = pool_pieces(refusal.as_bytes()).unwrap_err();
        assert!(error.contains("authenticated"), "{error}");
    }

    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            Version::parse("3.8.5"),
            Some(Version {
                major: 3,
                minor: 8,
                patch: 5
            })
        );
        assert_eq!(
            Version::parse("4.14").map(|v| v.to_string()),
            Some("4.14.0".into())
        );
        assert_eq!(Version::parse("5.12.0.1").map(|v| v.minor), Some(12));
        assert_eq!(Version::parse("x"), None);
    }

    #[test]
    fn unpacks_the_captured_shapes() {
        let ok = Value::Array(vec![Value::Bool(true), Value::from("3.8.5"), Value::Int(0)]);
        assert_eq!(unpack(ok).unwrap(), Value::from("3.8.5"));
        let auth = Value::Array(vec![
            Value::Bool(false),
            Value::from("[SystemVersion] User couldn't be authenticated, aborting call."),
            Value::Int(256),
        ]);
        let e = unpack(auth).unwrap_err();
        assert_eq!(e.kind(), Kind::InvalidCreds);
        let refused = Value::Array(vec![
            Value::Bool(false),
            Value::from("[VirtualMachineAction] Wrong state to perform action"),
            Value::Int(2048),
        ]);
        let e = unpack(refused).unwrap_err();
        assert_eq!(e.kind(), Kind::Provider);
        assert_eq!(e.service_code(), Some(2048));
        assert!(e.to_string().contains("Wrong state"));
        assert_eq!(unpack(Value::Int(3)).unwrap_err().kind(), Kind::Malformed);
        assert_eq!(
            unpack(Value::Array(vec![Value::Int(1)]))
                .unwrap_err()
                .kind(),
            Kind::Malformed
        );
    }
}
