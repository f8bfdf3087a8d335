//! Integration tests of the client against a server that is not ours (an authorization server and
//! an MCP server written here with axum, laid out differently from mcp-oauth), the store, and the
//! callback server. Everything on 127.0.0.1, bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod callback;
mod custom_store;
mod fake;
mod not_ours;
mod proxy;
mod store;

/// The ring TLS provider (building a reqwest client without one panics).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A temp directory removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}",
            mcp_oauth_client::secret::random_urlsafe().unwrap()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
