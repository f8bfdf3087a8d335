//! What operators watch (issue 12): health probes, Prometheus metrics, the access log and the
//! logging set-up.
//!
//! - [`health`]: `GET /healthz` (liveness) and `GET /readyz` (storage and user directory reachable,
//!   results cached for `[health] readiness_cache`).
//! - [`metrics`]: `GET /metrics` in the Prometheus text exposition format, recorded with the
//!   `metrics` crate into a recorder owned by each server (no process-global state, so several
//!   servers in one process keep their own counts). Never public: see [`metrics::may_scrape`].
//! - [`access_log`]: one line per request (method, path without the query, status, latency, client
//!   address) and the request counters and latency histograms, labelled by route template.
//! - [`logging`]: `[log] level` / `RUST_LOG` and `[log] format = "text" | "json"`.
//! - [`admin`]: the optional second listener (`[server] admin_bind`) that serves only the probes
//!   and the metrics.

pub mod access_log;
pub mod admin;
pub mod health;
pub mod logging;
pub mod metrics;
