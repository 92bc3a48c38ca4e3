//! Mapping sqlx errors into [`StoreError`] kinds, and this crate's own errors.

use std::time::Duration;

use auth_core::store::StoreError;

/// Maps a sqlx error: a unique violation is a conflict; anything that says the
/// server is unreachable, overloaded, shutting down or timed out is
/// unavailable (retryable), with the sqlx error kept as source; the rest is other.
pub(crate) fn map(error: sqlx::Error) -> StoreError {
    let unavailable = match &error {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
            db.code().is_some_and(|code| unavailable_sqlstate(&code))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Other(Box::new(error))
    }
}

/// As [`map`], for a statement whose only foreign key is to `users`: its
/// violation means the user does not exist, [`StoreError::NotFound`].
pub(crate) fn map_unknown_user(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => map(error),
    }
}

/// SQLSTATE codes after which retrying later may succeed.
fn unavailable_sqlstate(code: &str) -> bool {
    // Class 08: connection exception.
    code.starts_with("08")
        || matches!(
            code,
            "53000" // insufficient_resources
                | "53300" // too_many_connections
                | "57014" // query_canceled (statement_timeout)
                | "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now
                | "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "55P03" // lock_not_available
                | "25006" // read_only_sql_transaction (a failed-over primary)
        )
}

/// A store call took longer than the configured query timeout; the source of a
/// [`StoreError::Unavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("store call timed out after {after:?}")]
pub struct TimedOut {
    /// The configured bound.
    pub after: Duration,
}

/// Pool options that cannot work; the source of a [`StoreError::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid PostgreSQL store options: {0}")]
pub struct InvalidOptions(pub &'static str);

/// A row that does not decode into a record (a value out of range, an unknown
/// name); the source of a [`StoreError::Other`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected value in column {column}: {value}")]
pub(crate) struct InvalidRow {
    pub(crate) column: &'static str,
    pub(crate) value: String,
}

impl InvalidRow {
    pub(crate) fn error(column: &'static str, value: &dyn std::fmt::Display) -> StoreError {
        StoreError::Other(Box::new(Self {
            column,
            value: value.to_string(),
        }))
    }
}

/// Why [`crate::PgStore::check_schema`] refused the database's schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// These migrations are not applied yet: run `PgStore::migrate` (or the
    /// deployment's migration step) first.
    #[error("the database schema is behind: migrations {missing:?} are not applied")]
    Behind {
        /// Versions of the missing migrations, oldest first.
        missing: Vec<i64>,
    },
    /// An applied migration differs from the one this build embeds.
    #[error("applied migration {0} differs from this build's migration of that version")]
    Modified(i64),
    /// A migration failed part way and left the schema in an unknown state.
    #[error("migration {0} is marked as failed; repair the schema by hand")]
    Dirty(i64),
    /// The server could not be asked.
    #[error("could not read the migration history")]
    Store(#[source] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_pool_errors_are_unavailable_and_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        for e in [
            sqlx::Error::Io(io),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            let mapped = map(e);
            assert!(matches!(mapped, StoreError::Unavailable(_)), "{mapped:?}");
            let source = std::error::Error::source(&mapped);
            assert!(source.is_some_and(|s| s.downcast_ref::<sqlx::Error>().is_some()));
        }
    }

    #[test]
    fn other_errors_are_other() {
        let mapped = map(sqlx::Error::RowNotFound);
        assert!(matches!(mapped, StoreError::Other(_)), "{mapped:?}");
    }

    #[test]
    fn retryable_sqlstates() {
        for code in ["08006", "08001", "57P01", "53300", "40001", "57014"] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "23503", "23514", "42P01", "22001"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }
}
