//! Migrations in the store's schema, and the move of a layout that predates it.
//!
//! The migration files name their tables unqualified, so they run on a
//! connection of their own whose `search_path` is the store's schema alone;
//! that connection is closed afterwards instead of going back to the pool, so
//! the application's pool never sees the changed setting. sqlx's history table
//! is named with the schema (`"<schema>"._sqlx_migrations`).
//!
//! Deployments from before the schema setting (v0.1) have every table and
//! `_sqlx_migrations` wherever their `search_path` pointed (usually `public`).
//! [`PgStore::migrate`] finds that history through the pool's `search_path`, as
//! the old migrator did, and moves the store's tables and its rows of history
//! into the schema in one transaction before running what is pending, so the
//! data (and the foreign keys, indexes and sequences, which move with their
//! tables) carry over.

use auth_core::store::StoreError;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Postgres};

use crate::error::{self, SchemaError};
use crate::{MIGRATOR, PgStore};

/// The tables of the migrations released before the schema setting, in an
/// order that moves none before a table it references (the move keeps foreign
/// keys either way; the order only keeps the statements readable).
const LEGACY_TABLES: &[&str] = &[
    "users",
    "password_credentials",
    "totp_credentials",
    "recovery_codes",
    "challenges",
    "one_time_tokens",
    "sessions",
    "attempt_counters",
    "audit_log",
];

/// sqlx's history table, unqualified.
const HISTORY: &str = "_sqlx_migrations";

/// The schema of the history table the connection's `search_path` finds, if
/// any: where a deployment from before the schema setting keeps it.
const FIND_LEGACY_HISTORY: &str = "\
SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass('_sqlx_migrations')";

/// Quotes any identifier (a schema name read from the catalog may hold
/// anything).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The versions of the up migrations this build embeds.
fn our_versions() -> Vec<i64> {
    MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect()
}

impl PgStore {
    /// `"<schema>"._sqlx_migrations`.
    fn history_table(&self) -> String {
        format!("{}.{HISTORY}", self.schema.quoted())
    }

    /// [`MIGRATOR`] writing its history into the store's schema, creating the
    /// schema if needed.
    fn migrator(&self) -> Migrator {
        let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
        migrator.dangerous_set_table_name(self.history_table());
        migrator.create_schema(self.schema.quoted());
        migrator
    }

    /// A connection of the pool that is closed instead of returned, under
    /// sqlx's migration lock (the one [`Migrator`] takes, which nests).
    async fn migration_connection(&self) -> Result<PoolConnection<Postgres>, MigrateError> {
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        conn.lock().await?;
        Ok(conn)
    }

    /// Makes the store's schema the only one `conn` resolves names in.
    async fn enter_schema(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let set = format!("SET search_path TO {}", self.schema.quoted());
        sqlx::query(AssertSqlSafe(set)).execute(conn).await?;
        Ok(())
    }

    /// Applies every pending migration of [`MIGRATOR`] in the store's schema
    /// (creating it), under sqlx's advisory lock, so concurrent starts are safe.
    /// A deployment from before the schema setting is moved into the schema
    /// first (see the module notes), in one transaction.
    ///
    /// # Errors
    /// The migration failure: an unreachable server, an applied migration that was
    /// edited since, or a failed statement.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        let mut conn = self.migration_connection().await?;
        self.adopt_legacy_layout(&mut conn).await?;
        self.enter_schema(&mut conn).await?;
        self.migrator().run_direct(None, &mut *conn, false).await?;
        conn.unlock().await?;
        conn.close().await?;
        Ok(())
    }

    /// Reverts every applied migration newer than `target` (0: all of them),
    /// newest first. The schema and its (then empty) history stay.
    ///
    /// # Errors
    /// As [`Self::migrate`].
    pub async fn undo(&self, target: i64) -> Result<(), MigrateError> {
        let mut conn = self.migration_connection().await?;
        self.enter_schema(&mut conn).await?;
        self.migrator().undo(&mut *conn, target).await?;
        conn.unlock().await?;
        conn.close().await?;
        Ok(())
    }

    /// Moves a history and tables from before the schema setting into the
    /// schema, when the schema has no history yet and the pool's `search_path`
    /// finds one elsewhere that holds migrations of this store. Rows of other
    /// migrations (an application's own, sharing the table) stay where they
    /// are; the old table goes when nothing is left in it.
    async fn adopt_legacy_layout(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let history = self.history_table();
        let ours: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&history)
            .fetch_one(&mut *conn)
            .await?;
        if ours.is_some() {
            return Ok(());
        }
        let legacy: Option<String> = sqlx::query_scalar(FIND_LEGACY_HISTORY)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(legacy) = legacy.filter(|schema| schema != self.schema.as_str()) else {
            return Ok(());
        };
        let old = quote(&legacy);
        let versions = our_versions();
        let mut tx = conn.begin().await?;
        let count = format!("SELECT count(*) FROM {old}.{HISTORY} WHERE version = ANY($1)");
        let applied: i64 = sqlx::query_scalar(AssertSqlSafe(count))
            .bind(&versions)
            .fetch_one(&mut *tx)
            .await?;
        if applied == 0 {
            return Ok(());
        }
        let new = self.schema.quoted();
        let mut statements = vec![
            format!("CREATE SCHEMA IF NOT EXISTS {new}"),
            format!("CREATE TABLE {history} (LIKE {old}.{HISTORY} INCLUDING ALL)"),
        ];
        for table in LEGACY_TABLES {
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(format!("{old}.{table}"))
                .fetch_one(&mut *tx)
                .await?;
            if exists {
                statements.push(format!("ALTER TABLE {old}.{table} SET SCHEMA {new}"));
            }
        }
        for sql in statements {
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
        let copy = format!(
            "WITH moved AS (DELETE FROM {old}.{HISTORY} WHERE version = ANY($1) RETURNING *) \
             INSERT INTO {history} SELECT * FROM moved"
        );
        sqlx::query(AssertSqlSafe(copy))
            .bind(&versions)
            .execute(&mut *tx)
            .await?;
        let left = format!("SELECT EXISTS (SELECT 1 FROM {old}.{HISTORY})");
        let left: bool = sqlx::query_scalar(AssertSqlSafe(left))
            .fetch_one(&mut *tx)
            .await?;
        if !left {
            let drop = format!("DROP TABLE {old}.{HISTORY}");
            sqlx::query(AssertSqlSafe(drop)).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// The history rows of the store's schema: (version, success, checksum).
    async fn history(&self) -> Result<Vec<(i64, bool, Vec<u8>)>, StoreError> {
        let history = self.history_table();
        let table: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&history)
            .fetch_one(&self.pool)
            .await
            .map_err(error::map)?;
        if table.is_none() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT version, success, checksum FROM {history} ORDER BY version");
        sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)
    }

    /// The versions of the migrations applied in the store's schema, oldest
    /// first (none before the first [`Self::migrate`]).
    ///
    /// # Errors
    /// [`StoreError`] when the server cannot be asked.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let history = self.history().await?;
        Ok(history
            .into_iter()
            .filter(|(_, success, _)| *success)
            .map(|(version, _, _)| version)
            .collect())
    }

    /// Checks that every migration of [`MIGRATOR`] is applied in the store's
    /// schema and unchanged, so a server started against an old schema refuses
    /// to run instead of failing at request time.
    ///
    /// # Errors
    /// [`SchemaError::Behind`] naming the missing versions,
    /// [`SchemaError::Modified`] or [`SchemaError::Dirty`] for a history that does
    /// not match, [`SchemaError::Store`] when the server cannot be asked.
    pub async fn check_schema(&self) -> Result<(), SchemaError> {
        let applied = self.history().await.map_err(SchemaError::Store)?;
        if let Some((version, _, _)) = applied.iter().find(|(_, success, _)| !success) {
            return Err(SchemaError::Dirty(*version));
        }
        let mut missing = Vec::new();
        for migration in MIGRATOR.iter() {
            if migration.migration_type.is_down_migration() {
                continue;
            }
            match applied.iter().find(|(v, _, _)| *v == migration.version) {
                None => missing.push(migration.version),
                Some((_, _, checksum)) if checksum.as_slice() != &*migration.checksum => {
                    return Err(SchemaError::Modified(migration.version));
                }
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SchemaError::Behind { missing })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_identifier_is_quoted() {
        assert_eq!(quote("public"), "\"public\"");
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
    }
}
