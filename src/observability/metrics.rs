//! `GET /metrics`: the server's counters in the Prometheus text exposition format (version 0.0.4),
//! recorded with the `metrics` crate into a `metrics-exporter-prometheus` recorder that belongs to
//! this server (not the process-global recorder: a library user or a test may run several servers).
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `mcp_oauth_http_requests_total` | `route`, `method`, `status` | requests answered |
//! | `mcp_oauth_http_request_duration_seconds` | `route`, `method` | latency histogram |
//! | `mcp_oauth_tokens_issued_total` | `grant_type` | token responses, by grant |
//! | `mcp_oauth_sign_in_failures_total` | | wrong username or password |
//! | `mcp_oauth_sign_in_refused_total` | `reason` | sign-ins refused before the password check (`too_many_attempts`: the throttle's lockout; `too_many_at_once`: one address's share of the hashing pool) |
//! | `mcp_oauth_login_hashing_queue_depth` | | password checks waiting for a hashing slot |
//! | `mcp_oauth_login_hashing_running` | | password checks running |
//! | `mcp_oauth_login_hashing_slots` | | size of the hashing pool |
//! | `mcp_oauth_db_pool_connections` | `state` (`idle`, `in_use`) | the storage's open connections (backends with a pool) |
//! | `mcp_oauth_db_pool_max_connections` | | the most the storage's pool opens |
//!
//! Labels are bounded: `route` is the matched route template (`unmatched` for anything else, so
//! scanning random paths adds no series), `method` is a standard method or `other`, and no label
//! ever carries a client id, username, token or query (client ids come from open registration and
//! are unbounded).
//!
//! **Who may scrape.** Metrics show how the server is used, so they are not public: with
//! `[server] admin_bind` set they are served only on that listener; otherwise only to a client
//! whose TCP peer is loopback and whose request names no forwarded client (`X-Forwarded-For`,
//! `Forwarded`, `X-Real-IP`), so a reverse proxy on the same host does not expose them either.
//! `[metrics] enabled = false` turns the endpoint off everywhere. Anyone else gets the same 404 as
//! an unknown path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{GrantType, HashingPool, PoolGauge};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::error::{ErrorCode, OAuthError};
use crate::state::AppState;

const REQUESTS: &str = "mcp_oauth_http_requests_total";
const DURATION: &str = "mcp_oauth_http_request_duration_seconds";
const TOKENS: &str = "mcp_oauth_tokens_issued_total";
const SIGN_IN_FAILURES: &str = "mcp_oauth_sign_in_failures_total";
const SIGN_IN_REFUSED: &str = "mcp_oauth_sign_in_refused_total";
const HASHING_QUEUE: &str = "mcp_oauth_login_hashing_queue_depth";
const HASHING_RUNNING: &str = "mcp_oauth_login_hashing_running";
const HASHING_SLOTS: &str = "mcp_oauth_login_hashing_slots";
const DB_POOL: &str = "mcp_oauth_db_pool_connections";
const DB_POOL_MAX: &str = "mcp_oauth_db_pool_max_connections";

/// Latency buckets in seconds: from a cached metadata read to a slow directory sign-in.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a sign-in was refused before its password was checked.
#[derive(Debug, Clone, Copy)]
pub enum SignInRefusal {
    /// The sign-in throttle's lockout (too many failures for the username or address).
    TooManyAttempts,
    /// One address already has its share of the password-hashing pool in flight.
    TooManyAtOnce,
}

impl SignInRefusal {
    fn label(self) -> &'static str {
        match self {
            Self::TooManyAttempts => "too_many_attempts",
            Self::TooManyAtOnce => "too_many_at_once",
        }
    }
}

/// What the gauges are read from at each scrape.
#[derive(Clone, Default)]
pub struct Sources {
    /// The authenticator's password-hashing pool.
    pub hashing: Option<HashingPool>,
    /// The storage's connection pool, when the backend has one.
    pub pool: Option<Arc<dyn PoolGauge>>,
}

/// This server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    sources: Sources,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh recorder; `sources` are read for the gauges at each scrape.
    pub fn new(sources: Sources) -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), LATENCY_BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder,
            handle,
            sources,
        };
        metrics.with(|| {
            metrics::describe_counter!(
                REQUESTS,
                "HTTP requests answered, by route template, method and status"
            );
            metrics::describe_histogram!(
                DURATION,
                metrics::Unit::Seconds,
                "HTTP request latency, by route template and method"
            );
            metrics::describe_counter!(TOKENS, "Token responses issued, by grant type");
            metrics::describe_counter!(
                SIGN_IN_FAILURES,
                "Sign-ins with a wrong username or password"
            );
            metrics::describe_counter!(
                SIGN_IN_REFUSED,
                "Sign-ins refused before the password check, by reason"
            );
            metrics::describe_gauge!(
                HASHING_QUEUE,
                "Password checks waiting for a slot in the hashing pool"
            );
            metrics::describe_gauge!(
                HASHING_RUNNING,
                "Password checks running in the hashing pool"
            );
            metrics::describe_gauge!(HASHING_SLOTS, "Size of the password-hashing pool");
            metrics::describe_gauge!(DB_POOL, "Open storage connections, by state");
            metrics::describe_gauge!(DB_POOL_MAX, "The most connections the storage pool opens");
            // Present from the start, so a dashboard shows 0 rather than nothing.
            metrics::counter!(SIGN_IN_FAILURES).absolute(0);
        });
        Ok(metrics)
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// One answered request (`route` is a template or `unmatched`).
    pub fn request(&self, route: &str, method: &Method, status: u16, latency: Duration) {
        let route = route.to_owned();
        let method = method_label(method);
        self.with(|| {
            metrics::counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => status.to_string())
                .increment(1);
            metrics::histogram!(DURATION, "route" => route, "method" => method)
                .record(latency.as_secs_f64());
        });
    }

    /// A token response was sent for `grant`.
    pub fn token_issued(&self, grant: GrantType) {
        self.with(|| metrics::counter!(TOKENS, "grant_type" => grant.as_str()).increment(1));
    }

    /// A sign-in failed: unknown user or wrong password.
    pub fn sign_in_failed(&self) {
        self.with(|| metrics::counter!(SIGN_IN_FAILURES).increment(1));
    }

    /// A sign-in was refused before its password was checked.
    pub fn sign_in_refused(&self, why: SignInRefusal) {
        self.with(|| metrics::counter!(SIGN_IN_REFUSED, "reason" => why.label()).increment(1));
    }

    /// The exposition text, with the gauges read now.
    pub fn render(&self) -> String {
        if let Some(pool) = &self.sources.pool {
            let u = pool.pool_use();
            self.with(|| {
                metrics::gauge!(DB_POOL, "state" => "idle").set(f64::from(u.idle));
                metrics::gauge!(DB_POOL, "state" => "in_use")
                    .set(f64::from(u.open.saturating_sub(u.idle)));
                metrics::gauge!(DB_POOL_MAX).set(f64::from(u.max));
            });
        }
        if let Some(pool) = &self.sources.hashing {
            let (queued, running, size) = (pool.queued(), pool.running(), pool.size());
            self.with(|| {
                metrics::gauge!(HASHING_QUEUE).set(queued as f64);
                metrics::gauge!(HASHING_RUNNING).set(running as f64);
                metrics::gauge!(HASHING_SLOTS).set(size as f64);
            });
        }
        self.handle.render()
    }
}

/// Standard methods by name; anything else is `other` (extension methods are unbounded).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Whether a request on the main listener may read `/metrics` (see the module docs).
pub fn may_scrape(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    state.observability.metrics_enabled
        && !state.observability.admin_listener
        && local_and_direct(peer, headers)
}

/// The TCP peer is loopback and the request names no forwarded client.
fn local_and_direct(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let loopback = peer.is_some_and(|p| p.ip().to_canonical().is_loopback());
    loopback && !forwarded
}

/// `GET /metrics` on the main listener.
pub async fn metrics_get(State(state): State<AppState>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    if !may_scrape(&state, peer, req.headers()) {
        return OAuthError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    }
    exposition(&state)
}

/// `GET /metrics` on the admin listener.
pub async fn admin_metrics_get(State(state): State<AppState>) -> Response {
    if !state.observability.metrics_enabled {
        return OAuthError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    }
    exposition(&state)
}

fn exposition(state: &AppState) -> Response {
    let mut resp = state.observability.metrics.render().into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn records_requests_tokens_and_sign_ins_in_prometheus_text() {
        struct Fixed;
        impl PoolGauge for Fixed {
            fn pool_use(&self) -> mcp_oauth_provider::PoolUse {
                mcp_oauth_provider::PoolUse {
                    open: 3,
                    idle: 1,
                    max: 8,
                }
            }
        }
        let m = Metrics::new(Sources {
            hashing: Some(HashingPool::new(3)),
            pool: Some(Arc::new(Fixed)),
        })
        .unwrap();
        m.request("/token", &Method::POST, 200, Duration::from_millis(12));
        m.request("/token", &Method::POST, 200, Duration::from_millis(30));
        m.request(
            "unmatched",
            &Method::from_bytes(b"BREW").unwrap(),
            404,
            Duration::ZERO,
        );
        m.token_issued(GrantType::AuthorizationCode);
        m.sign_in_failed();
        m.sign_in_refused(SignInRefusal::TooManyAttempts);
        let text = m.render();
        assert!(
            text.contains(
                r#"mcp_oauth_http_requests_total{route="/token",method="POST",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"mcp_oauth_http_requests_total{route="unmatched",method="other",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"mcp_oauth_http_request_duration_seconds_bucket{route="/token",method="POST",le="0.025"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"mcp_oauth_http_request_duration_seconds_count{route="/token",method="POST"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_oauth_tokens_issued_total{grant_type="authorization_code"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("mcp_oauth_sign_in_failures_total 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_oauth_sign_in_refused_total{reason="too_many_attempts"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("mcp_oauth_login_hashing_queue_depth 0"),
            "{text}"
        );
        assert!(text.contains("mcp_oauth_login_hashing_slots 3"), "{text}");
        assert!(
            text.contains("# HELP mcp_oauth_tokens_issued_total"),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_oauth_db_pool_connections{state="in_use"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_oauth_db_pool_connections{state="idle"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("mcp_oauth_db_pool_max_connections 8"),
            "{text}"
        );
    }

    #[test]
    fn only_direct_loopback_requests_may_scrape_the_main_listener() {
        let peer = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        let none = HeaderMap::new();
        assert!(local_and_direct(peer("127.0.0.1:5000"), &none));
        assert!(local_and_direct(peer("[::1]:5000"), &none));
        assert!(local_and_direct(peer("[::ffff:127.0.0.1]:5000"), &none));
        assert!(!local_and_direct(peer("192.0.2.10:5000"), &none));
        assert!(!local_and_direct(peer("[2001:db8::1]:5000"), &none));
        assert!(!local_and_direct(None, &none));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        assert!(!local_and_direct(peer("127.0.0.1:5000"), &proxied));
    }

    #[test]
    fn two_servers_keep_their_own_counts() {
        let a = Metrics::new(Sources::default()).unwrap();
        let b = Metrics::new(Sources::default()).unwrap();
        a.sign_in_failed();
        assert!(a.render().contains("mcp_oauth_sign_in_failures_total 1"));
        assert!(b.render().contains("mcp_oauth_sign_in_failures_total 0"));
    }
}
