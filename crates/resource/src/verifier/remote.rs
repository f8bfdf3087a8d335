//! The outbound HTTP side of the remote verifiers: one client policy (timeouts, no redirects), the
//! rule that the authorization server is reached over https or on loopback only, and RFC 8414 §3
//! discovery of the `jwks_uri` and `introspection_endpoint`.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::uri::is_loopback;

/// How long one request to the authorization server may take.
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the authorization server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{what} {url:?} must be https (http is allowed only on a loopback host)")]
    InsecureUrl { what: &'static str, url: String },
    #[error("{what} {url:?} is not an absolute URL")]
    BadUrl { what: &'static str, url: String },
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("fetching {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("metadata at {url} names issuer {found:?}, expected {expected:?} (RFC 8414 §3.3)")]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error("the authorization server {issuer} publishes no {field}")]
    Missing { issuer: String, field: &'static str },
}

/// A URL the verifiers may call: https, or http to a loopback host (development).
pub fn checked_url(what: &'static str, raw: &str) -> Result<Url, RemoteError> {
    let url = Url::parse(raw).map_err(|_| RemoteError::BadUrl {
        what,
        url: raw.to_string(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(RemoteError::InsecureUrl {
            what,
            url: raw.to_string(),
        }),
    }
}

/// The HTTP client the verifiers use: short timeouts, and no redirects (a redirect could lead the
/// request, with its client credentials, to a host nobody checked).
///
/// Needs a rustls crypto provider installed process-wide (the binary installs ring at start-up).
pub fn outbound_client() -> Result<reqwest::Client, RemoteError> {
    reqwest::Client::builder()
        .timeout(OUTBOUND_TIMEOUT)
        .connect_timeout(OUTBOUND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-oauth-resource/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(RemoteError::Client)
}

/// The parts of RFC 8414 authorization server metadata the verifiers need.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

impl AuthorizationServerMetadata {
    pub fn jwks_uri(&self) -> Result<&str, RemoteError> {
        self.jwks_uri
            .as_deref()
            .ok_or_else(|| RemoteError::Missing {
                issuer: self.issuer.clone(),
                field: "jwks_uri",
            })
    }

    pub fn introspection_endpoint(&self) -> Result<&str, RemoteError> {
        self.introspection_endpoint
            .as_deref()
            .ok_or_else(|| RemoteError::Missing {
                issuer: self.issuer.clone(),
                field: "introspection_endpoint",
            })
    }
}

/// RFC 8414 §3.1: the metadata URL of `issuer`, the well-known suffix inserted before its path.
pub fn metadata_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Fetches and checks the metadata of `issuer` (RFC 8414 §3; the `issuer` in the document must be
/// identical to the one asked for, §3.3).
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, RemoteError> {
    let issuer = issuer.trim_end_matches('/');
    let issuer_url = checked_url("issuer", issuer)?;
    let url = metadata_url(&issuer_url);
    let resp = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| RemoteError::Fetch {
            url: url.to_string(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(RemoteError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let meta: AuthorizationServerMetadata =
        resp.json().await.map_err(|source| RemoteError::Fetch {
            url: url.to_string(),
            source,
        })?;
    if meta.issuer.trim_end_matches('/') != issuer {
        return Err(RemoteError::IssuerMismatch {
            url: url.to_string(),
            found: meta.issuer,
            expected: issuer.to_string(),
        });
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback() {
        assert!(checked_url("x", "https://auth.example.com/jwks").is_ok());
        assert!(checked_url("x", "http://127.0.0.1:9000/jwks").is_ok());
        assert!(checked_url("x", "http://localhost:9000/jwks").is_ok());
        assert!(checked_url("x", "http://[::1]:9000/jwks").is_ok());
        assert!(matches!(
            checked_url("x", "http://auth.example.com/jwks"),
            Err(RemoteError::InsecureUrl { .. })
        ));
        assert!(matches!(
            checked_url("x", "ftp://127.0.0.1/jwks"),
            Err(RemoteError::InsecureUrl { .. })
        ));
        assert!(matches!(
            checked_url("x", "/jwks"),
            Err(RemoteError::BadUrl { .. })
        ));
    }

    /// An authorization server on 127.0.0.1 whose metadata names `issuer_in_document` (`None`:
    /// the metadata path answers 404), with a redirect at `/moved` to its real metadata.
    async fn metadata_server(issuer_in_document: Option<&'static str>) -> String {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let named = |path: &str| match issuer_in_document {
            Some("SELF") => format!("{base}{path}"),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let doc = serde_json::json!({
            "issuer": named(""),
            "jwks_uri": format!("{base}/jwks"),
        });
        let moved_doc =
            serde_json::json!({"issuer": named("/moved"), "jwks_uri": format!("{base}/jwks")});
        let mut app = axum::Router::new().route(
            "/.well-known/oauth-authorization-server/moved",
            get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [(axum::http::header::LOCATION, "/elsewhere")],
                )
            }),
        );
        app = app.route(
            "/elsewhere",
            get(move || async move { axum::Json(moved_doc) }),
        );
        if issuer_in_document.is_some() {
            app = app.route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { axum::Json(doc) }),
            );
        }
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[tokio::test]
    async fn discovery_needs_the_exact_issuer_a_success_and_no_redirect() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = outbound_client().unwrap();
        let base = metadata_server(Some("SELF")).await;
        let meta = discover(&http, &format!("{base}/")).await.unwrap();
        assert_eq!(meta.jwks_uri().unwrap(), format!("{base}/jwks"));
        assert!(matches!(
            meta.introspection_endpoint(),
            Err(RemoteError::Missing {
                field: "introspection_endpoint",
                ..
            })
        ));
        // The client never follows a redirect (it could carry credentials to an unchecked host).
        assert!(matches!(
            discover(&http, &format!("{base}/moved")).await,
            Err(RemoteError::Status { status: 302, .. })
        ));

        let impostor = metadata_server(Some("http://127.0.0.1:1")).await;
        assert!(matches!(
            discover(&http, &impostor).await,
            Err(RemoteError::IssuerMismatch { .. })
        ));
        let missing = metadata_server(None).await;
        assert!(matches!(
            discover(&http, &missing).await,
            Err(RemoteError::Status { status: 404, .. })
        ));
    }

    #[test]
    fn metadata_fields_are_read_or_named_as_missing() {
        let meta = AuthorizationServerMetadata {
            issuer: "http://as".into(),
            jwks_uri: None,
            introspection_endpoint: Some("http://as/introspect".into()),
        };
        assert_eq!(
            meta.introspection_endpoint().unwrap(),
            "http://as/introspect"
        );
        assert!(matches!(
            meta.jwks_uri(),
            Err(RemoteError::Missing {
                field: "jwks_uri",
                ..
            })
        ));
    }

    #[test]
    fn metadata_url_inserts_the_well_known_suffix() {
        let u = |s: &str| metadata_url(&Url::parse(s).unwrap()).to_string();
        assert_eq!(
            u("https://auth.example.com"),
            "https://auth.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            u("https://auth.example.com/tenant1"),
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1"
        );
    }
}
