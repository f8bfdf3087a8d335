//! Attacks through client ID metadata documents (MCP-AUTH AS-6, MCP security best practices
//! *SSRF*): documents that lie about themselves, oversized or redirecting answers, unreachable
//! hosts, and client ids whose names resolve to internal addresses. Every failure is an error page
//! at `/authorize` (never a redirect) or an `invalid_client` at `/token`.
//!
//! The SSRF tests swap the server's upstream resolver for a fake one (names resolve to 10.0.0.1,
//! 169.254.169.254, … without DNS) and put a gate in front of the connector that records, and
//! refuses, every address it is handed: the test sees the guard's refusal and an empty gate, and
//! no connection to a non-loopback address is ever attempted even if the guard were broken.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mcp_oauth::oauth::cimd::ssrf::ConnectGate;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{Value, json};

use crate::cimd::{DocServer, Reply, authorize_page, document};
use crate::support::{Options, TestServer, http, start_with};

fn assert_page(status: StatusCode, page: &str, code: &str, why: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains(code), "expected {code}: {page}");
    assert!(page.contains(why), "expected {why:?}: {page}");
}

#[tokio::test]
async fn lying_incomplete_and_mismatched_documents_are_refused_on_a_page() {
    let docs = DocServer::start().await;
    let s = start_with(docs.options("")).await;

    let id = docs.url("/mismatch.json");
    docs.serve(
        "/mismatch.json",
        Reply::json(&document(&docs.url("/someone-else.json"))),
    );
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "does not equal its URL");

    let id = docs.url("/nameless.json");
    let mut doc = document(&id);
    doc.as_object_mut().unwrap().remove("client_name");
    docs.serve("/nameless.json", Reply::json(&doc));
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "has no client_name");

    let id = docs.url("/no-redirects.json");
    let mut doc = document(&id);
    doc.as_object_mut().unwrap().remove("redirect_uris");
    docs.serve("/no-redirects.json", Reply::json(&doc));
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "has no redirect_uris");

    let id = docs.url("/secret.json");
    let mut doc = document(&id);
    doc["client_secret"] = json!("published-secret");
    docs.serve("/secret.json", Reply::json(&doc));
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "client_secret");

    // A redirect URI the document does not list: refused, and never redirected to.
    let id = docs.serve_document("/good.json");
    let params = crate::support::with(
        &s.ep.auth_params(&id),
        "redirect_uri",
        Some("https://attacker.example/cb"),
    );
    let r = s.ep.authorize(&crate::support::browser(), &params).await;
    assert!(r.headers().get("location").is_none());
    let (status, page) = (r.status(), r.text().await.unwrap());
    assert_page(
        status,
        &page,
        "invalid_request",
        "not listed in the application",
    );

    // An invalid client id URL is an invalid_request, before any fetch.
    let before = docs.total_hits();
    for bad in [
        format!("https://localhost:{}/", docs.port),
        format!("https://localhost:{}/a/../b.json", docs.port),
        format!("https://127.0.0.1:{}/client.json", docs.port),
    ] {
        let (status, page) = authorize_page(&s, &bad).await;
        assert_page(
            status,
            &page,
            "invalid_request",
            "client metadata document URL",
        );
    }
    assert_eq!(
        docs.total_hits(),
        before,
        "no fetch for a malformed client id"
    );
}

#[tokio::test]
async fn oversized_redirecting_and_unreachable_documents_are_refused() {
    let docs = DocServer::start().await;
    let s = start_with(docs.options("cimd_max_bytes = 1024\n")).await;

    let id = docs.url("/big.json");
    let mut doc = document(&id);
    doc["padding"] = json!("x".repeat(2000));
    docs.serve("/big.json", Reply::json(&doc));
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "larger than 1024 bytes");
    // The same without Content-Length: the cap applies while reading.
    let id = docs.url("/big-chunked.json");
    let mut doc = document(&id);
    doc["padding"] = json!("x".repeat(2000));
    let mut reply = Reply::json(&doc);
    reply.chunked = true;
    docs.serve("/big-chunked.json", reply);
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "larger than 1024 bytes");
    // A chunked document within the cap is read whole.
    let id = docs.url("/chunked.json");
    let mut reply = Reply::json(&document(&id));
    reply.chunked = true;
    docs.serve("/chunked.json", reply);
    assert_eq!(authorize_page(&s, &id).await.0, StatusCode::FOUND);

    let id = docs.url("/moved.json");
    docs.serve(
        "/moved.json",
        Reply {
            status: 302,
            headers: vec![(
                "location",
                format!("http://localhost:{}/client.json", docs.port),
            )],
            body: vec![],
            chunked: false,
        },
    );
    docs.serve_document("/client.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(
        status,
        &page,
        "invalid_client",
        "redirects are not followed",
    );
    assert_eq!(
        docs.hits("/client.json"),
        0,
        "the redirect was not followed"
    );

    let id = docs.url("/missing.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "answered HTTP 404");

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let id = format!("https://localhost:{closed}/client.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "could not be reached");

    // At the token endpoint the same failures are invalid_client JSON.
    let r = http()
        .post(s.ep.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &docs.url("/big.json")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_client"));
}

/// Names to fixed addresses, no DNS; counts lookups.
struct FakeResolver {
    table: Vec<(&'static str, IpAddr)>,
    lookups: Arc<Mutex<Vec<String>>>,
}

impl Resolve for FakeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        self.lookups.lock().unwrap().push(host.clone());
        let addrs: Vec<SocketAddr> = self
            .table
            .iter()
            .filter(|(n, _)| *n == host)
            .map(|(_, ip)| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move {
            if addrs.is_empty() {
                return Err("unknown name".into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Records every address handed to the connector and refuses them all: nothing connects.
#[derive(Default)]
struct RecordingGate(Mutex<Vec<SocketAddr>>);

impl ConnectGate for RecordingGate {
    fn before_connect(&self, _host: &str, addrs: &[SocketAddr]) -> Result<(), String> {
        self.0.lock().unwrap().extend_from_slice(addrs);
        Err("test gate: no connections".into())
    }
}

async fn ssrf_server() -> (TestServer, Arc<Mutex<Vec<String>>>, Arc<RecordingGate>) {
    let s = start_with(Options::default()).await;
    let lookups = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(RecordingGate::default());
    s.state
        .cimd
        .set_network(
            Arc::new(FakeResolver {
                table: vec![
                    ("loopback.test", "127.0.0.1".parse().unwrap()),
                    ("private.test", "10.0.0.1".parse().unwrap()),
                    ("metadata.test", "169.254.169.254".parse().unwrap()),
                    ("ipv6-loopback.test", "::1".parse().unwrap()),
                    ("mapped.test", "::ffff:10.0.0.1".parse().unwrap()),
                    ("cgnat.test", "100.64.0.1".parse().unwrap()),
                    ("mixed.test", "93.184.215.14".parse().unwrap()),
                    ("mixed.test", "192.168.0.1".parse().unwrap()),
                    ("public.test", "93.184.215.14".parse().unwrap()),
                ],
                lookups: lookups.clone(),
            }),
            Some(gate.clone()),
        )
        .unwrap();
    (s, lookups, gate)
}

#[tokio::test]
async fn names_resolving_to_internal_addresses_are_refused_before_any_connection() {
    let (s, lookups, gate) = ssrf_server().await;
    for (host, why) in [
        ("loopback.test", "a loopback address (127.0.0.1)"),
        ("private.test", "a private address (10.0.0.1)"),
        ("metadata.test", "a link-local address (169.254.169.254)"),
        ("ipv6-loopback.test", "a loopback address (::1)"),
        ("mapped.test", "a private address (::ffff:10.0.0.1)"),
        ("cgnat.test", "a shared (CGNAT) address"),
        ("mixed.test", "a private address (192.168.0.1)"),
    ] {
        let id = format!("https://{host}/client.json");
        let (status, page) = authorize_page(&s, &id).await;
        assert_page(status, &page, "invalid_client", why);
        assert!(
            lookups.lock().unwrap().iter().any(|h| h == host),
            "{host} went through the injected resolver"
        );
    }
    assert!(
        gate.0.lock().unwrap().is_empty(),
        "the connector was handed {:?}",
        gate.0.lock().unwrap()
    );
    // The gate is live: a public address passes the guard and reaches it (and is refused there,
    // so the test connects nowhere).
    let (status, page) = authorize_page(&s, "https://public.test/client.json").await;
    assert_page(status, &page, "invalid_client", "could not be reached");
    let reached: Vec<IpAddr> = gate.0.lock().unwrap().iter().map(SocketAddr::ip).collect();
    assert_eq!(reached, vec!["93.184.215.14".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn loopback_documents_need_the_test_switch() {
    let docs = DocServer::start().await;
    // The CA is trusted but cimd_allow_loopback stays off: localhost is refused before connecting.
    let s = start_with(Options {
        extra_toml: Some(format!(
            "[registration]\ncimd_ca_file = \"{}\"\n",
            docs.ca_path().display()
        )),
        ..Options::default()
    })
    .await;
    let id = docs.serve_document("/client.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(status, &page, "invalid_client", "a loopback address");
    assert_eq!(docs.total_hits(), 0);
}

#[tokio::test]
async fn host_policy_and_per_host_budget() {
    let docs = DocServer::start().await;
    let s = start_with(docs.options("cimd_allowed_hosts = [\"*.clients.example\"]\n")).await;
    let id = docs.serve_document("/client.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(
        status,
        &page,
        "invalid_client",
        "not among the client hosts",
    );
    assert_eq!(docs.total_hits(), 0, "refused before any fetch");

    let docs = DocServer::start().await;
    let s = start_with(docs.options("cimd_fetches_per_minute_per_host = 2\n")).await;
    for path in ["/a.json", "/b.json"] {
        let id = docs.serve_document(path);
        assert_eq!(authorize_page(&s, &id).await.0, StatusCode::FOUND);
    }
    let id = docs.serve_document("/c.json");
    let (status, page) = authorize_page(&s, &id).await;
    assert_page(
        status,
        &page,
        "invalid_client",
        "too many client metadata document fetches",
    );
    assert_eq!(docs.total_hits(), 2);
}

/// RFC 7523 §3 item 7: a `jti` is accepted once, across every server on the store. An assertion
/// accepted by A and replayed to B (a second instance on the same database) is refused. The
/// assertion's `aud` lists both token endpoints, since the two test servers have their own issuers.
#[tokio::test]
async fn attack_an_assertion_replayed_to_another_instance_is_refused() {
    let docs = DocServer::start().await;
    let dir = crate::processes::TempDir::new("mcp-oauth-cimd-replay");
    let (a, b) = docs.two_servers(&dir, "").await;
    let (key, jwk) = crate::cimd::es256_key("k1");
    let id = docs.url("/signed.json");
    let mut doc = document(&id);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["jwks"] = json!({"keys": [jwk]});
    docs.serve("/signed.json", Reply::json(&doc));
    let aud = json!([a.ep.url("/token"), b.ep.url("/token")]);
    let signed = crate::cimd::assertion_for(&key, &id, &aud, "jti-shared");
    let exchange = |s: &TestServer, code: String, assertion: String| {
        let url = s.ep.url("/token");
        let resource = s.ep.resource.clone();
        async move {
            http()
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", crate::support::REDIRECT),
                    ("code_verifier", crate::support::VERIFIER),
                    ("resource", resource.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let code = a.ep.obtain_code(&id).await;
    let r = exchange(&a, code, signed.clone()).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);

    let code = b.ep.obtain_code(&id).await;
    let r = exchange(&b, code.clone(), signed.clone()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_client"), "{v}");
    assert!(
        v["error_description"].as_str().unwrap().contains("jti"),
        "{v}"
    );
    // The same assertion is good at B with a fresh jti (B accepts such assertions at all).
    let fresh = crate::cimd::assertion_for(&key, &id, &aud, "jti-fresh");
    let r = exchange(&b, code, fresh).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
}

/// A server's host policy and size cap hold even when another server on the store, with wider
/// ones, has cached the document: the policy applies before the shared cache is read, and a cached
/// body over this server's cap is not used (the fetch then refuses it).
#[tokio::test]
async fn attack_a_document_cached_by_a_laxer_server_is_still_refused_by_host_policy() {
    let docs = DocServer::start().await;
    let dir = crate::processes::TempDir::new("mcp-oauth-cimd-policy");
    let storage = format!("kind = \"sqlite\"\ndata_dir = \"{}\"", dir.path().display());
    let mut lax = docs.options("");
    lax.storage = Some(storage.clone());
    let lax = start_with(lax).await;
    let mut small = docs.options("cimd_max_bytes = 1024\n");
    small.storage = Some(storage.clone());
    let mut strict = docs.options("cimd_allowed_hosts = [\"app.example\"]\n");
    strict.storage = Some(storage);
    let strict = start_with(strict).await;

    let id = docs.serve_document("/client.json");
    assert_eq!(authorize_page(&lax, &id).await.0, StatusCode::FOUND);
    assert_eq!(docs.hits("/client.json"), 1);
    let (status, page) = authorize_page(&strict, &id).await;
    assert_page(
        status,
        &page,
        "invalid_client",
        "not among the client hosts",
    );
    assert_eq!(docs.hits("/client.json"), 1, "nothing fetched");

    let small = start_with(small).await;
    let big = docs.url("/big.json");
    let mut doc = document(&big);
    doc["padding"] = json!("x".repeat(3000));
    docs.serve("/big.json", Reply::json(&doc));
    assert_eq!(authorize_page(&lax, &big).await.0, StatusCode::FOUND);
    let (status, page) = authorize_page(&small, &big).await;
    assert_page(status, &page, "invalid_client", "larger than 1024 bytes");
    assert_eq!(docs.hits("/big.json"), 2, "the cached copy was not used");
}
