//! Shared plumbing of the admin commands: open the configured store the way `serve` would (schema
//! checked or migrated first), read secrets from stdin, format times.

use std::io::Read;

use anyhow::Context;
use mcp_oauth_provider::Storage;

use crate::config::Settings;
use crate::registry::Registry;

/// Opens the configured storage for an admin command.
pub async fn open(settings: &Settings, registry: &Registry) -> anyhow::Result<Storage> {
    registry.check_settings(settings).await?;
    registry.ensure_schema_for_serve(settings).await?;
    registry.open_storage(settings).await
}

/// Reads one secret from stdin: everything up to EOF, without the trailing newline. Empty is an
/// error naming `what`.
pub fn read_stdin_secret(what: &str) -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading stdin")?;
    let secret = input
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&input);
    if secret.is_empty() {
        anyhow::bail!("no {what} on stdin (example: printf '%s' 'secret' | mcp-oauth …)");
    }
    Ok(secret.to_string())
}

/// Rows as aligned columns (two spaces apart; the last column is not padded).
pub fn table<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp.
pub fn format_time(unix: i64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm); avoids a date-time dependency for one format.
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let rows = [
            ["ID".to_string(), "NAME".into()],
            ["abcdef".into(), "x".into()],
        ];
        assert_eq!(table(&rows), ["ID      NAME", "abcdef  x"]);
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_795_707_502), "2026-11-26T15:38:22Z");
    }
}
