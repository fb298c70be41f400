//! The Marketplace metadata client: `GET <endpoint>/metadata…` with `Accept: application/xml`
//! (spec §5.1–§5.4). Reading needs no credentials.

use reqwest::Method;

use super::identifier::is_valid_identifier;
use super::rdf::{parse_listing, ImageEntry};
use super::MarketplaceError;
use crate::http::{HttpClient, Request, Response};
use bytes::Bytes;

/// The server's message for a filtered query without result (HTTP 404).
pub const NO_MATCH_MESSAGE: &str = "no metadata matching query found";

/// Sanitises a configured endpoint: surrounding space and trailing slashes removed; a value
/// without scheme gets `https://`. Deviation from the Python client, which turned a bare host
/// into `https://<host>:80` (port 80 with TLS, a quirk no server answers): we use the scheme's
/// default port. Only `http` and `https` are accepted, with no credentials, query or fragment.
pub fn sanitize_endpoint(endpoint: &str) -> Result<String, MarketplaceError> {
    let bad = |detail: &str| MarketplaceError::BadEndpoint {
        endpoint: redact(endpoint),
        detail: detail.to_owned(),
    };
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The endpoint as text safe to show: any `user:password@` part is replaced by `***@`.
fn redact(endpoint: &str) -> String {
    let trimmed = endpoint.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), trimmed),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => trimmed.to_owned(),
    }
}

/// The `status` query parameter of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// In date and not deprecated (the server's default).
    #[default]
    Valid,
    /// Past its `dcterms:valid` and not deprecated.
    Expired,
    /// Carrying `slterms:deprecated`.
    Deprecated,
    /// No status filter (the server treats any other value so; we send `all`).
    All,
}

impl StatusFilter {
    /// The query-parameter value.
    pub fn as_param(self) -> &'static str {
        match self {
            StatusFilter::Valid => "valid",
            StatusFilter::Expired => "expired",
            StatusFilter::Deprecated => "deprecated",
            StatusFilter::All => "all",
        }
    }
}

/// Server-side filters of a listing (os/arch filtering is the caller's, client side).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Validity/deprecation selection (default: valid).
    pub status: StatusFilter,
    /// Image identifier.
    pub identifier: Option<String>,
    /// Endorser e-mail.
    pub email: Option<String>,
    /// Endorsement date `yyyy-MM-ddTHH:mm:ssZ` (selects that version, not only the latest).
    pub created: Option<String>,
}

/// A client of one site's Marketplace. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MarketplaceClient {
    base: String,
    http: HttpClient,
    site: String,
}

impl MarketplaceClient {
    /// A client of `endpoint` (sanitised by [`sanitize_endpoint`]) for the named site.
    pub fn new(endpoint: &str, http: HttpClient, site: &str) -> Result<Self, MarketplaceError> {
        Ok(MarketplaceClient {
            base: sanitize_endpoint(endpoint)?,
            http,
            site: site.to_owned(),
        })
    }

    /// The sanitised endpoint (no trailing slash).
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// `<endpoint>/metadata/<id>`: what a VM template names as the root-disk source (spec §3.1).
    pub fn entry_url(&self, identifier: &str) -> String {
        format!("{}/metadata/{identifier}", self.base)
    }

    /// The listing URL of a query, parameters percent-encoded.
    pub fn list_url(&self, query: &ListQuery) -> String {
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("status", query.status.as_param());
        for (key, value) in [
            ("identifier", &query.identifier),
            ("email", &query.email),
            ("created", &query.created),
        ] {
            if let Some(value) = value {
                params.append_pair(key, value);
            }
        }
        format!("{}/metadata?{}", self.base, params.finish())
    }

    async fn get_xml(&self, url: String, operation: &str) -> Result<Response, MarketplaceError> {
        let label = format!("site '{}' marketplace {operation}", self.site);
        let request = Request::new(Method::GET, url, label).accept("application/xml");
        Ok(self.http.send(request).await?)
    }

    /// The entries of a listing; one unreadable entry is an inner error and hides no other.
    /// A filtered query without result (404 `no metadata matching query found`) is empty.
    pub async fn list(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<Result<ImageEntry, MarketplaceError>>, MarketplaceError> {
        let Some(body) = self.list_reply(query).await? else {
            return Ok(Vec::new());
        };
        let entries = parse_listing(&body);
        self.http.recycle(body);
        entries
    }

    /// The body of a listing, for [`parse_listing`] or [`super::rdf::listing_pieces`]; `None`
    /// for a filtered query without result (404 `no metadata matching query found`).
    pub async fn list_reply(&self, query: &ListQuery) -> Result<Option<Bytes>, MarketplaceError> {
        let response = self.get_xml(self.list_url(query), "list").await?;
        if response.status == 404 && error_message(&response).contains(NO_MATCH_MESSAGE) {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(http_error(&response));
        }
        Ok(Some(response.body))
    }

    /// Gives back a listing's body its reader is done with ([`HttpClient::recycle`]).
    pub fn recycle(&self, body: Bytes) {
        self.http.recycle(body);
    }

    /// The valid, latest entries of every endorser for an identifier (`GET <endpoint>/metadata/<id>`,
    /// as the Python client's pre-launch check). None → [`MarketplaceError::NotFound`]; if every
    /// entry of the answer is unreadable, the first entry error.
    pub async fn get(&self, identifier: &str) -> Result<Vec<ImageEntry>, MarketplaceError> {
        if !is_valid_identifier(identifier) {
            return Err(MarketplaceError::BadIdentifier {
                value: identifier.to_owned(),
                reason: "an identifier has 27 characters from A-Z a-z 0-9 - _".to_owned(),
            });
        }
        let not_found = || MarketplaceError::NotFound {
            identifier: identifier.to_owned(),
        };
        let response = self.get_xml(self.entry_url(identifier), "get").await?;
        if response.status == 404 {
            return Err(not_found());
        }
        if !response.is_success() {
            return Err(http_error(&response));
        }
        let mut found = Vec::new();
        let mut first_error = None;
        for entry in parse_listing(&response.body)? {
            match entry {
                Ok(e) if e.identifier == identifier => found.push(e),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (found.is_empty(), first_error) {
            (false, _) => Ok(found),
            (true, Some(error)) => Err(error),
            (true, None) => Err(not_found()),
        }
    }
}

/// The message of an error reply: the text of `<error>…</error>` when the server sent its XML
/// form, else the start of the body.
fn error_message(response: &Response) -> String {
    let body = String::from_utf8_lossy(&response.body);
    if let (Some(start), Some(end)) = (body.find("<error>"), body.rfind("</error>")) {
        if start + 7 <= end {
            return body[start + 7..end].trim().to_owned();
        }
    }
    response.excerpt(200).trim().to_owned()
}

fn http_error(response: &Response) -> MarketplaceError {
    MarketplaceError::Http {
        status: response.status,
        message: error_message(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, Kind};

    #[test]
    fn endpoint_forms() {
        assert_eq!(
            sanitize_endpoint("https://marketplace.stratuslab.eu/").unwrap(),
            "https://marketplace.stratuslab.eu"
        );
        assert_eq!(
            sanitize_endpoint(" https://marketplace.stratuslab.eu/marketplace// ").unwrap(),
            "https://marketplace.stratuslab.eu/marketplace"
        );
        // Deviation from the Python client's `https://localhost:80`.
        assert_eq!(sanitize_endpoint("localhost").unwrap(), "https://localhost");
        assert_eq!(
            sanitize_endpoint("mp.example.org:8443").unwrap(),
            "https://mp.example.org:8443"
        );
        assert_eq!(
            sanitize_endpoint("http://127.0.0.1:5000/marketplace").unwrap(),
            "http://127.0.0.1:5000/marketplace"
        );
    }

    #[test]
    fn bad_endpoints() {
        assert!(sanitize_endpoint("").is_err());
        assert!(sanitize_endpoint("ftp://mp.example.org").is_err());
        assert!(sanitize_endpoint("https://mp.example.org/?x=1").is_err());
        let err = sanitize_endpoint("https://joe:s3cret@mp.example.org").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(
            text,
            "invalid Marketplace endpoint 'https://***@mp.example.org': credentials do not belong in the URL"
        );
    }

    fn client(endpoint: &str) -> MarketplaceClient {
        let http = HttpClient::new(crate::http::HttpOptions::default()).unwrap();
        MarketplaceClient::new(endpoint, http, "lal").unwrap()
    }

    #[test]
    fn urls() {
        let c = client("https://mp.example.org/marketplace/");
        assert_eq!(
            c.entry_url("MMZu9WvwKIro-rtBQfDk4PsKO7_"),
            "https://mp.example.org/marketplace/metadata/MMZu9WvwKIro-rtBQfDk4PsKO7_"
        );
        assert_eq!(
            c.list_url(&ListQuery::default()),
            "https://mp.example.org/marketplace/metadata?status=valid"
        );
        let q = ListQuery {
            status: StatusFilter::All,
            identifier: Some("MMZu9WvwKIro-rtBQfDk4PsKO7_".into()),
            email: Some("jane.tester+x@example.org".into()),
            created: Some("2011-01-24T09:59:42Z".into()),
        };
        assert_eq!(
            c.list_url(&q),
            "https://mp.example.org/marketplace/metadata?status=all&identifier=MMZu9WvwKIro-rtBQfDk4PsKO7_&email=jane.tester%2Bx%40example.org&created=2011-01-24T09%3A59%3A42Z"
        );
    }

    /// Serves a catalog under `/marketplace` (and garbage under `/garbage`) on an ephemeral port.
    async fn serve(catalog: crate::localcloud::marketplace::Catalog, now: i64) -> String {
        use axum::body::Body;
        use std::sync::Arc;
        let catalog = Arc::new(catalog);
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let catalog = Arc::clone(&catalog);
            async move {
                let path = request.uri().path().to_owned();
                let query = request.uri().query().unwrap_or("").to_owned();
                let accept = request
                    .headers()
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let reply = match path.strip_prefix("/marketplace") {
                    Some(rest) => catalog.handle(
                        request.method().as_str(),
                        rest,
                        &query,
                        accept.as_deref(),
                        now,
                    ),
                    None if path.starts_with("/garbage") => {
                        crate::localcloud::Reply::new(200, "application/xml", "<metadata><rdf:RDF")
                    }
                    None => crate::localcloud::Reply::new(404, "text/html", "<html>nope</html>"),
                };
                let mut response = axum::http::Response::builder()
                    .status(reply.status)
                    .header("content-type", reply.content_type);
                for (name, value) in reply.headers {
                    response = response.header(name, value);
                }
                response.body(Body::from(reply.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    fn now() -> i64 {
        crate::marketplace::parse_date("2020-01-01T00:00:00Z").unwrap()
    }

    #[tokio::test]
    async fn list_and_get_against_the_local_catalog() {
        use crate::localcloud::marketplace::Catalog;
        let mut catalog = Catalog::with_default_entries();
        let expired = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/marketplace/server-tests/valid-expired-signature.xml"
        ))
        .unwrap();
        catalog.add_document(&expired).unwrap();
        let base = serve(catalog, now()).await;
        let c = client(&format!("{base}/marketplace/"));

        let entries = c.list(&ListQuery::default()).await.unwrap();
        let oses: Vec<String> = entries
            .into_iter()
            .map(|e| e.unwrap().os.unwrap())
            .collect();
        assert_eq!(oses, ["ttylinux", "ubuntu", "centos", "debian"]);

        let deprecated = ListQuery {
            status: StatusFilter::Deprecated,
            ..ListQuery::default()
        };
        let got = c.list(&deprecated).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().os.as_deref(), Some("fedora"));

        let expired_query = ListQuery {
            status: StatusFilter::Expired,
            email: Some("jane.tester@example.org".into()),
            ..ListQuery::default()
        };
        let got = c.list(&expired_query).await.unwrap();
        assert_eq!(
            got[0].as_ref().unwrap().identifier,
            "Ce3uQbAaxJMbTBaCXWO2FZPRFTT"
        );

        let nobody = ListQuery {
            email: Some("nobody@example.org".into()),
            ..ListQuery::default()
        };
        assert!(c.list(&nobody).await.unwrap().is_empty());

        let ubuntu = c.list(&ListQuery::default()).await.unwrap()[1]
            .as_ref()
            .unwrap()
            .identifier
            .clone();
        let got = c.get(&ubuntu).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].format.as_deref(), Some("qcow2"));

        let err = c.get("Ce3uQbAaxJMbTBaCXWO2FZPRFTT").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no valid Marketplace entry with identifier 'Ce3uQbAaxJMbTBaCXWO2FZPRFTT'"
        );
        assert_eq!(err.http_status(), Some(404));

        let err = c.get("not-an-id").await.unwrap_err();
        assert_eq!(err.kind(), Kind::InvalidArgument);
    }

    #[tokio::test]
    async fn errors_from_the_wire() {
        let base = serve(crate::localcloud::marketplace::Catalog::new(), now()).await;
        // Wrong prefix: a 404 that is not the no-match message is an error, not an empty list.
        let err = client(&format!("{base}/wrong"))
            .list(&ListQuery::default())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Marketplace answered HTTP 404: nope");
        assert_eq!((err.kind(), err.http_status()), (Kind::Provider, Some(404)));
        // An empty catalog lists nothing (200, empty wrapper).
        let listing = client(&format!("{base}/marketplace"))
            .list(&ListQuery {
                status: StatusFilter::All,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert!(listing.is_empty());
        let err = client(&format!("{base}/garbage"))
            .list(&ListQuery::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Kind::Malformed);
        // Nobody listening.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let err = client(&format!("http://{address}"))
            .list(&ListQuery::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Kind::Unreachable);
    }

    #[test]
    fn error_message_extraction() {
        let response = Response {
            status: 404,
            content_type: Some("application/xml".into()),
            location: None,
            www_authenticate: None,
            body: bytes::Bytes::from_static(
                b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><error>no metadata matching query found</error>",
            ),
        };
        assert_eq!(error_message(&response), NO_MATCH_MESSAGE);
    }
}
