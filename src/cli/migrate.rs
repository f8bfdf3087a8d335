//! `mcp-oauth migrate` (apply pending migrations) and `mcp-oauth migrate status`.

use clap::Subcommand;

use crate::config::Settings;
use crate::registry::Registry;

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// List applied and pending migrations.
    Status,
}

pub async fn run(
    command: Option<MigrateCommand>,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    let (factory, ctx) = registry.storage_factory(settings)?;
    match command {
        Some(MigrateCommand::Status) => {
            let status = factory.schema_status(&ctx).await?;
            crate::say!("storage: {}", factory.kind());
            for m in &status.applied {
                crate::say!("  applied  {:04}_{}", m.version, m.name);
            }
            for m in &status.pending {
                crate::say!("  pending  {:04}_{}", m.version, m.name);
            }
            for m in &status.unknown {
                crate::say!(
                    "  UNKNOWN  {:04}_{} (applied by another version, or edited)",
                    m.version,
                    m.name
                );
            }
            if status.applied.is_empty() && status.pending.is_empty() && status.unknown.is_empty() {
                crate::say!("  (this backend has no schema)");
            }
            Ok(())
        }
        None => {
            let applied = factory.migrate(&ctx).await?;
            if applied.is_empty() {
                crate::say!("schema is up to date");
            }
            for m in applied {
                crate::say!("applied {:04}_{}", m.version, m.name);
            }
            Ok(())
        }
    }
}
