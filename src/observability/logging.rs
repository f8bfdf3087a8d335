//! The process's log subscriber: `[log] level` (a `tracing` EnvFilter; `RUST_LOG` wins when set)
//! and `[log] format` (`text` lines or one JSON object per line), written to stderr.
//!
//! Whatever the level, sqlx's query log and rmcp's protocol structures (which rmcp prints at info
//! and debug) stay at warn unless a directive names those crates.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{DEFAULT_LOG_LEVEL, LogFormat, LogSettings};

/// Crates held at `warn` unless a directive names them: sqlx logs every query at info, and rmcp
/// prints whole protocol structures (`Debug` of requests, peer info) at info and debug.
const QUIET: &[&str] = &["sqlx", "rmcp"];

/// The filter in force: `RUST_LOG` when it is set and parses, else `[log] level`, else the default;
/// the `QUIET` crates stay at `warn` unless the directives name them.
pub fn filter(settings: &LogSettings, rust_log: Option<&str>) -> EnvFilter {
    let chosen = rust_log
        .filter(|d| !d.trim().is_empty() && EnvFilter::builder().parse(d).is_ok())
        .unwrap_or(&settings.level);
    let mut directives = chosen.trim().to_owned();
    for name in QUIET {
        if !directives.contains(name) {
            directives.push_str(&format!(",{name}=warn"));
        }
    }
    EnvFilter::builder()
        .parse(&directives)
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_LEVEL))
}

/// A subscriber writing to `writer` as `settings` say (ANSI colours only for text on a terminal).
pub fn subscriber<W>(
    settings: &LogSettings,
    rust_log: Option<&str>,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(settings, rust_log))
        .with_writer(writer);
    match settings.format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_ansi(false)
                .finish(),
        ),
    }
}

/// Installs the process-wide subscriber on stderr (once; later calls change nothing).
pub fn init(settings: &LogSettings) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing::subscriber::set_global_default(subscriber(
        settings,
        rust_log.as_deref(),
        std::io::stderr,
        ansi,
    ));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(settings: &LogSettings, rust_log: Option<&str>, emit: impl FnOnce()) -> String {
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = subscriber(settings, rust_log, move || writer.clone(), false);
        tracing::subscriber::with_default(sub, emit);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn rmcp_and_sqlx_chatter_stays_out_at_the_default_level() {
        let out = logged(&LogSettings::default(), None, || {
            tracing::info!(target: "rmcp::service", request = "ClientRequest { .. }", "received");
            tracing::info!(target: "sqlx::query", "SELECT 1");
            tracing::info!(target: "mcp_oauth::access", "kept");
            tracing::debug!(target: "mcp_oauth::app", "not at info");
        });
        assert!(out.contains("kept"), "{out}");
        assert!(!out.contains("ClientRequest"), "{out}");
        assert!(!out.contains("SELECT 1"), "{out}");
        assert!(!out.contains("not at info"), "{out}");
    }

    #[test]
    fn rmcp_stays_quiet_at_a_plain_level_unless_named() {
        let plain = LogSettings {
            level: "debug".into(),
            ..LogSettings::default()
        };
        let out = logged(&plain, Some("info"), || {
            tracing::info!(target: "rmcp::service", peer = "PeerInfo { .. }", "initialized");
            tracing::info!(target: "mcp_oauth::app", "ours");
        });
        assert!(out.contains("ours") && !out.contains("PeerInfo"), "{out}");
        let named = logged(&plain, Some("info,rmcp=info"), || {
            tracing::info!(target: "rmcp::service", peer = "PeerInfo { .. }", "initialized");
        });
        assert!(named.contains("PeerInfo"), "asked for by name: {named}");
    }

    #[test]
    fn rust_log_wins_over_the_configured_level() {
        let settings = LogSettings {
            level: "warn".into(),
            ..LogSettings::default()
        };
        let quiet = logged(&settings, None, || tracing::info!("an info event"));
        assert!(quiet.is_empty(), "{quiet}");
        let loud = logged(&settings, Some("debug"), || {
            tracing::debug!("a debug event")
        });
        assert!(loud.contains("a debug event"), "{loud}");
    }

    #[test]
    fn json_format_writes_one_object_per_line() {
        let settings = LogSettings {
            format: LogFormat::Json,
            ..LogSettings::default()
        };
        let out = logged(&settings, None, || {
            tracing::info!(target: "mcp_oauth::access", status = 200u16, path = "/token", "request");
            tracing::warn!("second");
        });
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["path"], "/token");
        assert_eq!(lines[0]["target"], "mcp_oauth::access");
        assert_eq!(lines[1]["level"], "WARN");
    }
}
