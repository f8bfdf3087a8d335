//! sqlx errors → [`ProviderError`]: unreachable or overloaded databases are `Unavailable` (the server
//! answers 503 `temporarily_unavailable` and recovers by itself), unique violations are `Conflict`,
//! everything else is `Backend`.

use mcp_oauth_provider::ProviderError;

/// Maps an sqlx error, naming the operation that failed.
pub fn map_err(operation: &'static str, err: sqlx::Error) -> ProviderError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => ProviderError::Conflict(format!(
            "{operation}: a record with that key already exists"
        )),
        sqlx::Error::Database(db) if is_transient_code(db.code().as_deref()) => {
            ProviderError::unavailable(operation, err)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => ProviderError::unavailable(operation, err),
        _ => ProviderError::backend(operation, err),
    }
}

/// Database error codes that mean "try again later".
///
/// Postgres SQLSTATE classes 08 (connection exception), 53 (insufficient resources), 57P0x (operator
/// intervention: shutdown, cannot connect now), 40001/40P01 (serialization failure, deadlock).
/// SQLite primary result codes 5 (BUSY) and 6 (LOCKED), possibly extended (low byte).
fn is_transient_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    if code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || code == "40001"
        || code == "40P01"
    {
        return true;
    }
    code.parse::<i64>()
        .map(|n| matches!(n & 0xff, 5 | 6))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(is_transient_code(Some("08006")));
        assert!(is_transient_code(Some("57P01")));
        assert!(is_transient_code(Some("5")));
        assert!(is_transient_code(Some("517")));
        assert!(!is_transient_code(Some("23505")));
        assert!(!is_transient_code(Some("1")));
        assert!(!is_transient_code(None));
        assert!(map_err("x", sqlx::Error::PoolTimedOut).is_unavailable());
    }
}
