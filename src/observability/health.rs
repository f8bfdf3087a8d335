//! Health probes: `GET /healthz` (liveness: the process answers) and `GET /readyz` (readiness: the
//! storage and the user directory answer; 503 when either does not).
//!
//! The provider API has no ping, so readiness uses the cheapest read every store has,
//! `KeyStore::list_keys` (a handful of rows), and asks the authenticator through
//! `UserAuthenticator::check_health` (a no-op for local accounts; the LDAP authenticator searches
//! one entry as its service account, or opens a connection in direct mode). Each check is bounded
//! by `[health] readiness_timeout`. A result is reused for `[health] readiness_cache`, and probes
//! arriving while a check runs wait for it, so `/readyz` cannot be used to hammer the database.
//! Why a check failed is logged (warn), never sent: the body says only which part is down.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::config::HealthSettings;
use crate::state::AppState;

/// The state of one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Ok,
    Unavailable,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report {
    pub storage: Check,
    pub directory: Check,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.storage == Check::Ok && self.directory == Check::Ok
    }
}

/// The readiness checker with its cached last result.
#[derive(Debug)]
pub struct Readiness {
    cache_for: Duration,
    timeout: Duration,
    last: Mutex<Option<(Instant, Report)>>,
}

impl Readiness {
    pub fn new(settings: &HealthSettings) -> Self {
        Self {
            cache_for: settings.readiness_cache,
            timeout: settings.readiness_timeout,
            last: Mutex::new(None),
        }
    }

    /// The last result while it is fresh, else a new one (one check at a time).
    pub async fn report(&self, state: &AppState) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = *last
            && at.elapsed() < self.cache_for
        {
            return report;
        }
        let report = self.check(state).await;
        *last = Some((Instant::now(), report));
        report
    }

    async fn check(&self, state: &AppState) -> Report {
        let storage = async {
            match tokio::time::timeout(self.timeout, state.provider.keys().list_keys()).await {
                Ok(Ok(_)) => Check::Ok,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness: the storage is unavailable");
                    Check::Unavailable
                }
                Err(_) => {
                    tracing::warn!(timeout = ?self.timeout, "readiness: the storage did not answer in time");
                    Check::Unavailable
                }
            }
        };
        let directory = async {
            match tokio::time::timeout(self.timeout, state.provider.authenticator().check_health())
                .await
            {
                Ok(Ok(())) => Check::Ok,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness: the user directory is unavailable");
                    Check::Unavailable
                }
                Err(_) => {
                    tracing::warn!(timeout = ?self.timeout, "readiness: the user directory did not answer in time");
                    Check::Unavailable
                }
            }
        };
        let (storage, directory) = tokio::join!(storage, directory);
        Report { storage, directory }
    }
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz_get() -> Response {
    no_store(Json(serde_json::json!({ "status": "ok" })).into_response())
}

/// `GET /readyz`: 200 when the storage and the directory answer, else 503; the body names which.
pub async fn readyz_get(State(state): State<AppState>) -> Response {
    let report = state.observability.readiness.report(&state).await;
    let (status, word) = if report.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let body = serde_json::json!({
        "status": word,
        "checks": { "storage": report.storage, "directory": report.directory },
    });
    no_store((status, Json(body)).into_response())
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
