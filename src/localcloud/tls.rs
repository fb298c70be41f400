//! Optional TLS for the local cloud: a CA and a server certificate for `127.0.0.1`/`localhost`
//! generated at start (rcgen), written as PEM files in a private temporary directory, client
//! certificates issued on demand, and a rustls acceptor with OPTIONAL client authentication (the
//! `/pswd` contexts work without a certificate, the `/cert` contexts require one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::cloud::LocalCloudError;

/// Organisation placed in every generated certificate's subject.
const ORGANISATION: &str = "StratusLab Local Cloud";

/// The generated PKI of one running local cloud.
pub struct TlsMaterial {
    dir: PathBuf,
    ca_pem_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    acceptor: TlsAcceptor,
    /// DER of every client certificate issued → its subject DN (RFC 2253, as one-proxy sees it).
    issued: Mutex<HashMap<Vec<u8>, String>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn tls_error(what: &str, err: impl std::fmt::Display) -> LocalCloudError {
    LocalCloudError::Tls {
        message: format!("{what}: {err}"),
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), LocalCloudError> {
    std::fs::write(path, text).map_err(|source| LocalCloudError::Io {
        path: path.to_owned(),
        source,
    })
}

impl TlsMaterial {
    /// Generates the CA (`ca.pem`), the server certificate and key, and the acceptor.
    pub fn generate() -> Result<TlsMaterial, LocalCloudError> {
        let dir = std::env::temp_dir().join(format!(
            "stratuslab-localcloud-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|source| LocalCloudError::Io {
            path: dir.clone(),
            source,
        })?;

        let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| tls_error("CA parameters", e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::OrganizationName, ORGANISATION);
        ca_name.push(DnType::CommonName, "StratusLab Local Cloud CA");
        ca_params.distinguished_name = ca_name;
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| tls_error("CA certificate", e))?;
        let ca_der = ca_cert.der().clone();
        let ca_pem_path = dir.join("ca.pem");
        write_file(&ca_pem_path, &ca_cert.pem())?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(|e| tls_error("server key", e))?;
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(|e| tls_error("server parameters", e))?;
        let mut server_name = DistinguishedName::new();
        server_name.push(DnType::OrganizationName, ORGANISATION);
        server_name.push(DnType::CommonName, "localhost");
        server_params.distinguished_name = server_name;
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(|e| tls_error("server certificate", e))?;
        write_file(&dir.join("server.pem"), &server_cert.pem())?;
        write_file(&dir.join("server-key.pem"), &server_key.serialize_pem())?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(ca_der.clone())
            .map_err(|e| tls_error("CA root", e))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_error("client verifier", e))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone(), ca_der], key)
            .map_err(|e| tls_error("server configuration", e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(TlsMaterial {
            dir,
            ca_pem_path,
            issuer,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate (PEM) that clients must trust.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// The acceptor wrapping accepted TCP connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The subject DN of a client certificate this CA issued (`None` for any other certificate).
    pub fn subject_of(&self, der: &[u8]) -> Option<String> {
        self.issued
            .lock()
            .ok()
            .and_then(|issued| issued.get(der).cloned())
    }

    /// Issues a client certificate for `user` (subject `CN=<user>,O=StratusLab Local Cloud`);
    /// returns the certificate and key PEM paths.
    pub fn issue_client_cert(&self, user: &str) -> Result<(PathBuf, PathBuf), LocalCloudError> {
        if user.is_empty() || user.contains([',', '=', '+', '"', '\\', '<', '>', ';', '/']) {
            return Err(LocalCloudError::InvalidOption {
                message: format!(
                    "client certificate user {user:?} must be non-empty and without DN specials"
                ),
            });
        }
        let key = KeyPair::generate().map_err(|e| tls_error("client key", e))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| tls_error("client parameters", e))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, ORGANISATION);
        name.push(DnType::CommonName, user);
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| tls_error("client certificate", e))?;
        let stem = format!("client-{}", uuid::Uuid::new_v4().simple());
        let cert_path = self.dir.join(format!("{stem}.pem"));
        let key_path = self.dir.join(format!("{stem}-key.pem"));
        write_file(&cert_path, &cert.pem())?;
        write_file(&key_path, &key.serialize_pem())?;
        let dn = format!("CN={user},O={ORGANISATION}");
        if let Ok(mut issued) = self.issued.lock() {
            issued.insert(cert.der().to_vec(), dn);
        }
        Ok((cert_path, key_path))
    }
}

impl Drop for TlsMaterial {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The DER of a connection's client certificate, if it presented one.
pub fn peer_certificate(conn: &rustls::ServerConnection) -> Option<CertificateDer<'static>> {
    conn.peer_certificates()
        .and_then(|certs| certs.first())
        .map(|c| c.clone().into_owned())
}
