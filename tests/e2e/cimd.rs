//! Client ID Metadata Documents end to end: a document served by a test https server on 127.0.0.1
//! (its own CA, trusted by the server under test through `[registration] cimd_ca_file`, and
//! `cimd_allow_loopback` on), a URL client through the whole flow, refresh, revocation and
//! introspection; the cache; `private_key_jwt`; and the document errors of MCP-AUTH AS-6.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{Either, Full};
use hyper::body::Bytes;
use hyper::{Request, Response as HyperResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{
    Options, PASSWORD, REDIRECT, TestServer, USER, VERIFIER, browser, http, location, query_param,
    start_with,
};

/// One canned answer of the document server.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Sent in 100-byte chunks with no Content-Length (chunked transfer encoding).
    pub chunked: bool,
}

/// A body of unknown length: hyper sends it chunked, so only a cap applied while reading stops it.
struct Chunked(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

impl Reply {
    pub fn json(v: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: v.to_string().into_bytes(),
            chunked: false,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// An https server on 127.0.0.1 with a certificate for `localhost` from a CA of its own; answers
/// each path with its [`Reply`] and counts requests per path.
pub struct DocServer {
    pub port: u16,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
    ca_file: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

impl DocServer {
    pub async fn start() -> Self {
        crate::support::install_crypto_provider();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mcp-oauth test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let ca_file = std::env::temp_dir().join(format!(
            "mcp-oauth-cimd-ca-{}.pem",
            mcp_oauth::oauth::secrets::new_secret()
        ));
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let replies: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let total = Arc::new(AtomicUsize::new(0));
        let (r, h, t) = (replies.clone(), hits.clone(), total.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let (r, h, t) = (r.clone(), h.clone(), t.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let path = req.uri().path().to_string();
                        t.fetch_add(1, Ordering::SeqCst);
                        *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let reply = r.lock().unwrap().get(&path).cloned();
                        async move {
                            let reply = reply.unwrap_or(Reply {
                                status: 404,
                                headers: vec![],
                                body: b"not found".to_vec(),
                                chunked: false,
                            });
                            let body = if reply.chunked {
                                Either::Right(Chunked(
                                    reply.body.chunks(100).map(Bytes::copy_from_slice).collect(),
                                ))
                            } else {
                                Either::Left(Full::new(Bytes::from(reply.body)))
                            };
                            let mut resp = HyperResponse::new(body);
                            *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
                            for (k, v) in reply.headers {
                                resp.headers_mut().append(k, v.parse().unwrap());
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            port,
            replies,
            hits,
            total,
            ca_file,
            task,
        }
    }

    /// `https://localhost:<port><path>`: the client id of the document at `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn serve(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.to_string(), reply);
    }

    /// A valid document for the client at `path`, listing the test redirect URI.
    pub fn serve_document(&self, path: &str) -> String {
        let id = self.url(path);
        self.serve(path, Reply::json(&document(&id)));
        id
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// The PEM file of this server's CA.
    pub fn ca_path(&self) -> &std::path::Path {
        &self.ca_file
    }

    /// Two servers on one SQLite database (as several instances behind a load balancer share one
    /// store), both trusting this CA; `dir` holds the database.
    pub async fn two_servers(
        &self,
        dir: &crate::processes::TempDir,
        extra: &str,
    ) -> (TestServer, TestServer) {
        let storage = format!("kind = \"sqlite\"\ndata_dir = \"{}\"", dir.path().display());
        let mut a = self.options(extra);
        a.storage = Some(storage.clone());
        let a = start_with(a).await;
        let mut b = self.options(extra);
        b.storage = Some(storage);
        (a, start_with(b).await)
    }

    /// The server options that trust this CA and allow loopback documents.
    pub fn options(&self, extra: &str) -> Options {
        Options {
            extra_toml: Some(format!(
                "[registration]\ncimd_allow_loopback = true\ncimd_ca_file = \"{}\"\n{extra}",
                self.ca_file.display()
            )),
            ..Options::default()
        }
    }
}

pub fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Doc <Client>",
        "client_uri": "https://app.example",
        "redirect_uris": [REDIRECT],
    })
}

/// GET /authorize for `client_id`: the status and the body (an error page, or empty for a
/// redirect to the login page).
pub async fn authorize_page(s: &TestServer, client_id: &str) -> (StatusCode, String) {
    let r =
        s.ep.authorize(&browser(), &s.ep.auth_params(client_id))
            .await;
    (r.status(), r.text().await.unwrap())
}

async fn token_json(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    r.json().await.unwrap()
}

#[tokio::test]
async fn url_client_full_flow_refresh_revocation_and_introspection() {
    let docs = DocServer::start().await;
    let s = start_with(docs.options("")).await;
    let meta: Value = http()
        .get(s.ep.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["client_id_metadata_document_supported"], json!(true));
    let oidc: Value = http()
        .get(s.ep.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc["client_id_metadata_document_supported"], json!(true));
    // Document clients may use private_key_jwt; RFC 8414 §2 then wants its algorithms listed.
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{methods}");
    let algs = meta["token_endpoint_auth_signing_alg_values_supported"].to_string();
    assert!(algs.contains("ES256") && !algs.contains("HS256"), "{algs}");

    let id = docs.serve_document("/client.json");
    // Consent shows the document's host prominently, its name, and the loopback-only warning.
    let b = browser();
    let (tx, csrf, _) = s.ep.start_login(&b, &s.ep.auth_params(&id)).await;
    let r = s.ep.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    let html = r.text().await.unwrap();
    assert!(html.contains("Allow access?"), "{html}");
    assert!(
        html.contains(&format!(
            "Application from <strong><code>localhost:{}</code>",
            docs.port
        )),
        "{html}"
    );
    assert!(html.contains("Doc &lt;Client&gt;"), "name escaped: {html}");
    assert!(
        html.contains("only returns to addresses on your own"),
        "{html}"
    );
    let r = s.ep.post_consent(&b, &tx, &csrf, "approve", false).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let code = query_param(&location(&r), "code").unwrap();

    let tokens = token_json(s.ep.exchange(&id, &code).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let info = s.ep.introspect(&access).await;
    assert_eq!(info["active"], json!(true));
    assert_eq!(
        info["client_id"],
        json!(id),
        "the grant's client_id is the URL"
    );

    let rotated = token_json(s.ep.refresh(&id, &refresh).await).await;
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);

    let r = http()
        .post(s.ep.url("/revoke"))
        .form(&[("token", refresh2.as_str()), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, error) = crate::support::error_of(s.ep.refresh(&id, &refresh2).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // The whole flow (authorize, login, consent, token, refresh, revoke) fetched the document once.
    assert_eq!(
        docs.hits("/client.json"),
        1,
        "served from the cache after the first fetch"
    );
}

#[tokio::test]
async fn the_cache_follows_max_age_within_bounds() {
    let docs = DocServer::start().await;
    // min TTL 1s so an uncacheable document is fetched again after a second.
    let s = start_with(docs.options("cimd_cache_min_ttl = \"1s\"\n")).await;
    let cached = docs.url("/cached.json");
    docs.serve(
        "/cached.json",
        Reply::json(&document(&cached)).with_header("cache-control", "max-age=300"),
    );
    let fresh = docs.url("/fresh.json");
    docs.serve(
        "/fresh.json",
        Reply::json(&document(&fresh)).with_header("cache-control", "no-store"),
    );
    for _ in 0..2 {
        assert_eq!(authorize_page(&s, &cached).await.0, StatusCode::FOUND);
        assert_eq!(authorize_page(&s, &fresh).await.0, StatusCode::FOUND);
    }
    assert_eq!(
        docs.hits("/cached.json"),
        1,
        "max-age=300: a second flow does not fetch"
    );
    // Entries expire at whole seconds, rounded up: a 1s entry lives between 1s and 2s.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(authorize_page(&s, &cached).await.0, StatusCode::FOUND);
    assert_eq!(authorize_page(&s, &fresh).await.0, StatusCode::FOUND);
    assert_eq!(docs.hits("/cached.json"), 1, "still within max-age");
    assert_eq!(
        docs.hits("/fresh.json"),
        2,
        "no-store: kept for the minimum only"
    );
}

#[tokio::test]
async fn documents_are_off_when_disabled() {
    let docs = DocServer::start().await;
    let s = start_with(docs.options("client_id_metadata_documents = false\n")).await;
    let meta: Value = http()
        .get(s.ep.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["client_id_metadata_document_supported"], json!(false));
    assert!(
        !meta["token_endpoint_auth_methods_supported"]
            .to_string()
            .contains("private_key_jwt")
            && meta["token_endpoint_auth_signing_alg_values_supported"].is_null(),
        "{meta}"
    );
    let id = docs.serve_document("/client.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not registered"), "{page}");
    assert_eq!(docs.total_hits(), 0, "nothing fetched");
}

/// An ES256 key pair for private_key_jwt: the signing key and its public JWK.
pub fn es256_key(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let der = secret.to_pkcs8_der().unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256)
            .unwrap();
    jwk.common.key_id = Some(kid.to_string());
    (encoding, serde_json::to_value(jwk).unwrap())
}

pub fn assertion(key: &jsonwebtoken::EncodingKey, client_id: &str, aud: &str, jti: &str) -> String {
    assertion_for(key, client_id, &json!(aud), jti)
}

/// An assertion whose `aud` is any JSON value (a list names several servers).
pub fn assertion_for(
    key: &jsonwebtoken::EncodingKey,
    client_id: &str,
    aud: &Value,
    jti: &str,
) -> String {
    let now = mcp_oauth::state::now();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(
        &header,
        &json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti}),
        key,
    )
    .unwrap()
}

#[tokio::test]
async fn private_key_jwt_client_authenticates_once_per_jti() {
    let docs = DocServer::start().await;
    let s = start_with(docs.options("")).await;
    let (key, jwk) = es256_key("k1");
    let id = docs.url("/signed.json");
    let mut doc = document(&id);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["jwks"] = json!({"keys": [jwk]});
    docs.serve("/signed.json", Reply::json(&doc));
    let token_endpoint = s.ep.url("/token");

    let code = s.ep.obtain_code(&id).await;
    // Without an assertion the client is refused: the document says it authenticates.
    let (status, error) = crate::support::error_of(s.ep.exchange(&id, &code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    let code = s.ep.obtain_code(&id).await;
    let signed = assertion(&key, &id, &token_endpoint, "jti-1");
    let form = |code: &str, assertion: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_verifier".into(), VERIFIER.into()),
            ("resource".into(), s.ep.resource.clone()),
            (
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion".into(), assertion.into()),
        ]
    };
    let r = http()
        .post(&token_endpoint)
        .form(&form(&code, &signed))
        .send()
        .await
        .unwrap();
    let tokens = token_json(r).await;
    assert!(tokens["access_token"].is_string());

    // The same assertion (same jti) again: refused, even with a fresh code.
    let code = s.ep.obtain_code(&id).await;
    let r = http()
        .post(&token_endpoint)
        .form(&form(&code, &signed))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_client"));
    assert!(
        v["error_description"].as_str().unwrap().contains("jti"),
        "{v}"
    );

    // A new jti works with that code (the refused attempt did not consume it)…
    let r = http()
        .post(&token_endpoint)
        .form(&form(
            &code,
            &assertion(&key, &id, &token_endpoint, "jti-2"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // …and an assertion signed by another key, or for another audience, does not.
    let other = jsonwebtoken::EncodingKey::from_ec_der(
        p256::pkcs8::EncodePrivateKey::to_pkcs8_der(
            &p256::SecretKey::from_slice(&[9u8; 32]).unwrap(),
        )
        .unwrap()
        .as_bytes(),
    );
    for bad in [
        assertion(&other, &id, &token_endpoint, "jti-3"),
        assertion(&key, &id, "https://elsewhere.example/token", "jti-4"),
    ] {
        let code = s.ep.obtain_code(&id).await;
        let r = http()
            .post(&token_endpoint)
            .form(&form(&code, &bad))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_blocked_url_client_is_refused_at_authorize_and_token() {
    let docs = DocServer::start().await;
    let dir = crate::processes::TempDir::new("mcp-oauth-cimd-block");
    let mut opts = docs.options("");
    opts.storage = Some(format!(
        "kind = \"sqlite\"\ndata_dir = \"{}\"",
        dir.path().display()
    ));
    let s = start_with(opts).await;
    let id = docs.serve_document("/client.json");
    let code = s.ep.obtain_code(&id).await;
    let tokens = token_json(s.ep.exchange(&id, &code).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    let data_dir = dir.path().display().to_string();
    let env = [("MCP_OAUTH__STORAGE__DATA_DIR", data_dir.as_str())];
    let (ok, out, err) =
        crate::processes::run_cli(None, &["clients", "block", &id], &env, None).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("blocked client") && out.contains("1 grant(s)"),
        "{out}"
    );

    let fetched = docs.total_hits();
    let (status, page) = authorize_page(&s, &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("invalid_client") && page.contains("blocked"),
        "{page}"
    );
    let r = s.ep.refresh(&id, &refresh).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_client"));
    assert_eq!(s.ep.introspect(&access).await["active"], json!(false));
    assert_eq!(
        docs.total_hits(),
        fetched,
        "a blocked client is not fetched"
    );

    let (ok, out, _) =
        crate::processes::run_cli(None, &["clients", "block", &id], &env, None).await;
    assert!(ok && out.contains("already blocked"), "{out}");
    let (ok, _, err) = crate::processes::run_cli(
        None,
        &["clients", "block", "https://app.example/"],
        &env,
        None,
    )
    .await;
    assert!(!ok && err.contains("must have a path"), "{err}");
    // Deleting the block lets the client in again.
    let (ok, _, err) =
        crate::processes::run_cli(None, &["clients", "delete", &id], &env, None).await;
    assert!(ok, "{err}");
    assert_eq!(authorize_page(&s, &id).await.0, StatusCode::FOUND);
}

#[tokio::test]
async fn instances_on_one_store_share_the_document_cache() {
    let docs = DocServer::start().await;
    let dir = crate::processes::TempDir::new("mcp-oauth-cimd-shared");
    // min TTL 1s: an entry of the shared cache expires for both servers at once.
    let (a, b) = docs
        .two_servers(&dir, "cimd_cache_min_ttl = \"1s\"\n")
        .await;
    let cached = docs.url("/cached.json");
    docs.serve(
        "/cached.json",
        Reply::json(&document(&cached)).with_header("cache-control", "max-age=300"),
    );
    let short = docs.url("/short.json");
    docs.serve(
        "/short.json",
        Reply::json(&document(&short)).with_header("cache-control", "no-store"),
    );
    assert_eq!(authorize_page(&a, &cached).await.0, StatusCode::FOUND);
    assert_eq!(authorize_page(&a, &short).await.0, StatusCode::FOUND);
    assert_eq!(authorize_page(&b, &cached).await.0, StatusCode::FOUND);
    assert_eq!(authorize_page(&b, &short).await.0, StatusCode::FOUND);
    assert_eq!(
        (docs.hits("/cached.json"), docs.hits("/short.json")),
        (1, 1),
        "the second server is answered from the cache the first one filled"
    );
    // A full flow at B (sign-in, consent, token) fetches nothing either.
    let code = b.ep.obtain_code(&cached).await;
    token_json(b.ep.exchange(&cached, &code).await).await;
    assert_eq!(docs.hits("/cached.json"), 1);

    // A changed document takes effect, on both servers, when the shared entry expires: B fetches
    // it once, and A (whose own copy expires with the shared entry) reads what B stored.
    let mut changed = document(&short);
    changed["client_name"] = json!("Renamed <Client>");
    docs.serve(
        "/short.json",
        Reply::json(&changed).with_header("cache-control", "no-store"),
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(authorize_page(&b, &short).await.0, StatusCode::FOUND);
    assert_eq!(docs.hits("/short.json"), 2, "expired: fetched again");
    let doc = mcp_oauth::oauth::cimd::find_client(&a.state, &short)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        doc.client().client_name.as_deref(),
        Some("Renamed <Client>"),
        "A sees the changed document B fetched"
    );
    assert_eq!(docs.hits("/short.json"), 2, "without fetching it itself");
    assert_eq!(docs.hits("/cached.json"), 1, "max-age=300 still holds");
}

#[tokio::test]
async fn the_periodic_purge_removes_expired_claims_and_documents() {
    use mcp_oauth_provider::CachedDocument;
    let s = crate::support::start().await;
    let shared = s.state.provider.shared_state();
    let t = mcp_oauth::state::now();
    // Live when claimed (at t - 10), expired for the purge (at t or later).
    assert!(
        shared
            .claim_once("cimd-jti:purge-test", t, t - 10)
            .await
            .unwrap()
    );
    let old = CachedDocument {
        body: b"{}".to_vec(),
        expires_at: t,
    };
    shared
        .put_document("https://app.example/old.json", &old)
        .await
        .unwrap();
    assert!(
        !shared
            .claim_once("cimd-jti:purge-test", t, t - 9)
            .await
            .unwrap()
    );
    mcp_oauth::app::purge_once(&s.state).await;
    assert!(
        shared
            .claim_once("cimd-jti:purge-test", t, t - 8)
            .await
            .unwrap(),
        "the purge removed the expired claim"
    );
    assert_eq!(
        shared
            .get_document("https://app.example/old.json", t - 8)
            .await
            .unwrap(),
        None,
        "the purge removed the expired document"
    );
}
