//! `mcp-oauth backup DIR`: a consistent copy of the store, taken while servers keep running, plus
//! the key-encryption key file the copy needs (the signing keys in it open only with that key).
//!
//! Restore: stop the server, then point `[storage] data_dir` at the directory (or copy its files
//! into the data directory) and start it. Stores without a backup of their own say what to use
//! instead (Postgres: `pg_dump`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Settings;
use crate::oauth::key_encryption::KEK_FILE;
use crate::registry::{KeySource, Registry, key_encryption_key_source};

pub async fn run(dir: &Path, settings: &Settings, registry: &Registry) -> anyhow::Result<()> {
    registry.check_settings(settings).await?;
    let key_source = key_encryption_key_source(settings, registry)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: back up into a new or empty directory",
            dir.display()
        );
    }
    let created = !dir.exists();
    mcp_oauth_provider::files::create_private_dir(dir)?;
    let (factory, ctx) = registry.storage_factory(settings)?;
    let mut written: Vec<PathBuf> = match factory.backup(&ctx, dir).await {
        Ok(written) => written,
        Err(err) => {
            if created {
                // Leave nothing behind (the directory is empty: nothing was written).
                let _ = std::fs::remove_dir(dir);
            }
            return Err(err).with_context(|| format!("backing up the {} store", factory.kind()));
        }
    };
    match key_source {
        KeySource::File(data_dir) => {
            let (from, to) = (data_dir.join(KEK_FILE), dir.join(KEK_FILE));
            if from.exists() {
                copy_private(&from, &to)?;
                written.push(to);
            } else {
                // `serve` creates the key with the first signing key: a store it never ran on
                // holds nothing sealed yet.
                println!(
                    "note: no {KEK_FILE} in {} yet (no server has run on this store), so none is \
                     copied",
                    data_dir.display()
                );
            }
        }
        KeySource::Configured => println!(
            "note: the signing keys in this backup open only with your [keys] encryption_key; keep \
             it with the backup (it is not written here)"
        ),
        KeySource::Random => {}
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "restore: stop the server, then use {} as [storage] data_dir (or copy these files into \
         the data directory) and start it",
        dir.display()
    );
    Ok(())
}

/// Copies a secret file owner-only (0600), never readable by others in between.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)
            .and_then(|mut f| f.write_all(&bytes))
            .with_context(|| format!("writing {}", to.display()))?;
    }
    #[cfg(not(unix))]
    std::fs::write(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}
