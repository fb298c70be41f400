//! Compute endpoint URLs and sessions (spec §2.1, §2.2).
//!
//! Both StratusLab URL generations work:
//! - a bare host `cloud.example.com` → `https://cloud.example.com:2634/pswd/xmlrpc` (first
//!   generation); `host:port` is accepted too (the Python client built a broken URL from it);
//! - a URL `https://host/one-proxy/xmlrpc` → `/pswd/` (or `/cert/`) inserted before the last path
//!   segment → `https://host/one-proxy/pswd/xmlrpc` (second generation). A trailing slash is
//!   ignored (the Python client broke on it), and a URL that already names `/pswd/` or `/cert/`
//!   before its last segment is kept as it is.
//!
//! A direct OpenNebula daemon is a URL whose path ends in `/RPC2`, or the bare host `localhost` /
//! `127.0.0.1` (→ `http://<host>:2633/RPC2`); it gets the session string `user:password` and no
//! proxy path.

use std::fmt;

use super::client::OneError;

/// How the caller authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Password { username: String, password: String },
    Certificate { cert: String, key: String },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            Auth::Certificate { .. } => f.write_str("Certificate"),
        }
    }
}

impl Auth {
    fn is_certificate(&self) -> bool {
        matches!(self, Auth::Certificate { .. })
    }

    /// The session string sent as the first XML-RPC parameter.
    pub fn session(&self) -> String {
        match self {
            Auth::Password { username, password } => format!("{username}:{password}"),
            Auth::Certificate { .. } => "dummy:pass".to_owned(),
        }
    }
}

/// A resolved compute endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeEndpoint {
    /// Full URL of the XML-RPC service (no userinfo).
    pub url: String,
    /// A direct `oned` (no one-proxy): no HTTP Basic, session `user:password`.
    pub direct: bool,
}

fn bad(value: &str, why: &str) -> OneError {
    OneError::BadEndpoint {
        value: value.to_owned(),
        reason: why.to_owned(),
    }
}

/// Resolves the configured `endpoint` value for the given authentication mode.
pub fn compute_endpoint(endpoint: &str, auth: &Auth) -> Result<ComputeEndpoint, OneError> {
    let value = endpoint.trim();
    if value.is_empty() {
        return Err(bad(value, "empty endpoint"));
    }
    let mode = if auth.is_certificate() {
        "cert"
    } else {
        "pswd"
    };
    if !value.starts_with("http://") && !value.starts_with("https://") {
        if value.contains('/') || value.contains('@') || value.contains(char::is_whitespace) {
            return Err(bad(value, "expected a host name or an http(s) URL"));
        }
        if value == "localhost" || value == "127.0.0.1" {
            return Ok(ComputeEndpoint {
                url: format!("http://{value}:2633/RPC2"),
                direct: true,
            });
        }
        let authority = if value.contains(':') {
            value.to_owned()
        } else {
            format!("{value}:2634")
        };
        return Ok(ComputeEndpoint {
            url: format!("https://{authority}/{mode}/xmlrpc"),
            direct: false,
        });
    }
    let url = url::Url::parse(value).map_err(|e| bad(value, &e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "<url with credentials>",
            "credentials belong in username/password, not in the endpoint URL",
        ));
    }
    if url.host_str().is_none() {
        return Err(bad(value, "no host"));
    }
    let path = url.path().trim_end_matches('/');
    if path.ends_with("/RPC2") {
        let mut u = url.clone();
        u.set_path(path);
        return Ok(ComputeEndpoint {
            url: u.to_string(),
            direct: true,
        });
    }
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.pop().unwrap_or("xmlrpc");
    let already = matches!(segments.last(), Some(&"pswd") | Some(&"cert"));
    if already {
        segments.pop();
    }
    segments.push(mode);
    segments.push(last);
    let mut u = url.clone();
    u.set_path(&format!("/{}", segments.join("/")));
    Ok(ComputeEndpoint {
        url: u.to_string(),
        direct: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw() -> Auth {
        Auth::Password {
            username: "u".into(),
            password: "p".into(),
        }
    }
    fn cert() -> Auth {
        Auth::Certificate {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        }
    }

    #[test]
    fn both_generations_and_direct() {
        let cases = [
            (
                "cloud.example.com",
                pw(),
                "https://cloud.example.com:2634/pswd/xmlrpc",
                false,
            ),
            (
                "cloud.example.com",
                cert(),
                "https://cloud.example.com:2634/cert/xmlrpc",
                false,
            ),
            (
                "cloud.example.com:8443",
                pw(),
                "https://cloud.example.com:8443/pswd/xmlrpc",
                false,
            ),
            (
                "https://cloud.example.com/one-proxy/xmlrpc",
                pw(),
                "https://cloud.example.com/one-proxy/pswd/xmlrpc",
                false,
            ),
            (
                "https://cloud.example.com/one-proxy/xmlrpc/",
                cert(),
                "https://cloud.example.com/one-proxy/cert/xmlrpc",
                false,
            ),
            (
                "https://cloud.example.com/one-proxy/pswd/xmlrpc",
                pw(),
                "https://cloud.example.com/one-proxy/pswd/xmlrpc",
                false,
            ),
            (
                "https://cloud.example.com:2634/xmlrpc",
                pw(),
                "https://cloud.example.com:2634/pswd/xmlrpc",
                false,
            ),
            (
                "http://10.0.0.1:9208/lal/one-proxy/xmlrpc",
                pw(),
                "http://10.0.0.1:9208/lal/one-proxy/pswd/xmlrpc",
                false,
            ),
            (
                "https://one.example.org",
                pw(),
                "https://one.example.org/pswd/xmlrpc",
                false,
            ),
            ("localhost", pw(), "http://localhost:2633/RPC2", true),
            ("127.0.0.1", pw(), "http://127.0.0.1:2633/RPC2", true),
            (
                "http://10.1.1.1:2633/RPC2",
                pw(),
                "http://10.1.1.1:2633/RPC2",
                true,
            ),
            (
                "http://10.1.1.1:2633/RPC2/",
                pw(),
                "http://10.1.1.1:2633/RPC2",
                true,
            ),
        ];
        for (input, auth, url, direct) in cases {
            let e = compute_endpoint(input, &auth).unwrap();
            assert_eq!(e.url, url, "{input}");
            assert_eq!(e.direct, direct, "{input}");
        }
    }

    #[test]
    fn bad_endpoints() {
        for input in [
            "",
            "  ",
            "host/path",
            "https://u:p@host/xmlrpc",
            "ftp host",
            "https://",
        ] {
            let e = compute_endpoint(input, &pw());
            assert!(e.is_err(), "{input:?} accepted");
            if input.contains("u:p@") {
                assert!(!e.unwrap_err().to_string().contains("u:p"));
            }
        }
    }

    #[test]
    fn sessions_and_debug_hide_the_password() {
        assert_eq!(pw().session(), "u:p");
        assert_eq!(cert().session(), "dummy:pass");
        assert!(!format!("{:?}", pw()).contains("\"p\""));
    }
}
