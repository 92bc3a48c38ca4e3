//! What the integration tests share: the database policy (skip locally without
//! `DATABASE_URL`, fail under `CI=true`), a fresh migrated schema per test, and
//! the cleanup of schemas and databases that earlier runs left behind.
//!
//! Isolation: each test gets its own schema `authpg_s<unix secs>_<pid>_<n>` in the
//! `DATABASE_URL` database, as the store's schema setting (so the tables and
//! sqlx's `_sqlx_migrations` land there). The store's connections have it as
//! `application_name` (so a schema in use is visible in `pg_stat_activity`) and
//! a `search_path` that finds nothing, as an application's pool may point
//! anywhere: a statement of the store that left its table unqualified fails.
//! Tests that build the layout from before the schema setting use
//! [`schema_options`], whose `search_path` is the test's schema.
//! Tests whose subject is a whole database (the migration test) create
//! `authpg_d<...>` databases and drop them at the end.
//!
//! Cleanup: the first store of each test process drops every `authpg_s*` schema
//! that no connection uses and that is older than two minutes, and every
//! `authpg_d*` database older than that which nobody is connected to
//! (`DROP DATABASE` refuses one in use). So one run leaves at most its own
//! schemas behind (a few hundred kilobytes), and the next run removes them.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::print_stderr,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: each test binary uses part of it, and a failed setup panics"
)]

use std::io::Write as _;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_store_postgres::sqlx::postgres::{PgConnectOptions, PgConnection};
use auth_store_postgres::sqlx::{self, AssertSqlSafe, Connection};
use auth_store_postgres::{PgSchema, PgStore, PgStoreOptions};
use tokio::sync::OnceCell;

/// Prefix of per-test schemas.
pub const SCHEMA_PREFIX: &str = "authpg_s";
/// Prefix of per-test databases.
pub const DATABASE_PREFIX: &str = "authpg_d";
/// Leftovers younger than this are never dropped (a concurrent run may be
/// setting them up).
const STALE_AFTER_SECS: u64 = 120;

/// `DATABASE_URL`, or `None` (with the reason printed) when the tests should skip.
///
/// # Panics
/// When `CI` is set (and not `false`/`0`) but `DATABASE_URL` is not: CI must run
/// these tests, not skip them.
pub fn database_url() -> Option<String> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        return Some(url);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "CI is set but DATABASE_URL is not: the PostgreSQL store tests must run in CI \
         (for example DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)"
    );
    // Once per test binary, and past the test harness's output capture so the
    // reason shows without --nocapture.
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "skipping the PostgreSQL store tests of this binary: DATABASE_URL is not set \
             (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test runs them; \
             with CI=true they fail instead of skipping)"
        );
    });
    None
}

/// A name unique across tests, processes and runs: `<prefix><unix secs>_<pid>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{secs}_{}_{n}", std::process::id())
}

/// Quotes a name this module generated (only `[a-z0-9_]`), for DDL that takes no
/// bind parameters.
pub fn ident(name: &str) -> String {
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "not a generated name: {name:?}"
    );
    format!("\"{name}\"")
}

/// Parsed `DATABASE_URL`.
pub fn base_options(url: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>()
        .unwrap_or_else(|e| panic!("DATABASE_URL is not a PostgreSQL URL: {e}"))
}

/// Connection options that work inside `schema` and name the connection after it.
pub fn schema_options(base: PgConnectOptions, schema: &str) -> PgConnectOptions {
    base.options([("search_path", schema)])
        .application_name(schema)
}

/// Connection options named after `schema` whose `search_path` finds no table
/// (a schema that does not exist), for a store told its schema.
pub fn app_options(base: PgConnectOptions, schema: &str) -> PgConnectOptions {
    base.options([("search_path", format!("{schema}_app").as_str())])
        .application_name(schema)
}

/// One plain connection (not pooled) to `options`.
pub async fn connect(options: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"))
}

/// Runs a DDL statement built from generated names.
pub async fn ddl(conn: &mut PgConnection, sql: String) {
    sqlx::query(AssertSqlSafe(sql.clone()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Drops leftovers of earlier runs, once per process.
pub async fn clean_up_once(url: &str) {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| clean_up(url)).await;
}

async fn clean_up(url: &str) {
    let mut conn = connect(&base_options(url)).await;
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_namespace n
         WHERE n.nspname LIKE 'authpg\\_s%'
           AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = n.nspname)",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("listing old test schemas: {e}"));
    for schema in schemas.iter().filter(|s| is_stale(s, SCHEMA_PREFIX)) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema));
        if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
            eprintln!("could not drop old test schema {schema}: {e}");
        }
    }
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'authpg\\_d%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("listing old test databases: {e}"));
    for database in databases.iter().filter(|d| is_stale(d, DATABASE_PREFIX)) {
        // Without FORCE: a database someone is connected to stays.
        let sql = format!("DROP DATABASE IF EXISTS {}", ident(database));
        if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
            eprintln!("could not drop old test database {database}: {e}");
        }
    }
    let _ = conn.close().await;
}

/// Whether a generated name is older than [`STALE_AFTER_SECS`].
fn is_stale(name: &str, prefix: &str) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split('_').next())
        .and_then(|secs| secs.parse::<u64>().ok())
        .is_some_and(|secs| now.saturating_sub(secs) > STALE_AFTER_SECS)
}

/// Creates a fresh schema and returns connection options that work inside it
/// through their `search_path`.
pub async fn fresh_schema(url: &str) -> (String, PgConnectOptions) {
    clean_up_once(url).await;
    let schema = unique_name(SCHEMA_PREFIX);
    let options = schema_options(base_options(url), &schema);
    let mut conn = connect(&options).await;
    ddl(&mut conn, format!("CREATE SCHEMA {}", ident(&schema))).await;
    let _ = conn.close().await;
    (schema, options)
}

/// A fresh schema name (not created: the store's migrations create it), and
/// [`app_options`] for it.
pub async fn fresh_store_schema(url: &str) -> (PgSchema, PgConnectOptions) {
    clean_up_once(url).await;
    let schema = unique_name(SCHEMA_PREFIX);
    let options = app_options(base_options(url), &schema);
    (PgSchema::new(schema).unwrap(), options)
}

/// Pool settings for tests: small (many tests run at once), patient.
pub fn test_pool() -> PgStoreOptions {
    PgStoreOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(20))
        .query_timeout(Some(Duration::from_secs(30)))
}

/// A migrated store in a fresh schema, or `None` when the tests skip.
pub async fn store() -> Option<PgStore> {
    let url = database_url()?;
    let (schema, options) = fresh_store_schema(&url).await;
    let store = test_pool()
        .schema(schema)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("connecting the store: {e:?}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrating a fresh schema: {e}"));
    Some(store)
}

/// `sql` with the store's schema in place of `{schema}`, for tests' own
/// statements (the store's pool resolves no unqualified table).
pub fn in_schema(store: &PgStore, sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.replace("{schema}", store.schema().as_str()))
}

/// An audit event of `user` at `at` of `kind`, with nothing else.
pub fn bare_event(
    user: auth_core::store::UserId,
    at: time::OffsetDateTime,
    kind: auth_core::store::AuditKind,
) -> auth_core::store::AuditEvent {
    auth_core::store::AuditEvent {
        at,
        kind,
        user_id: Some(user),
        email: None,
        ip: None,
        user_agent: None,
        request_id: None,
        detail: None,
        count: 1,
    }
}
