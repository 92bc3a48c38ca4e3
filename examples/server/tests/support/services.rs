//! The real services of the end-to-end tests: PostgreSQL (`DATABASE_URL`; each
//! test gets a database of its own, dropped at the end), Redis (`REDIS_URL`; each
//! test gets a key prefix of its own) and a MailDev SMTP sink (`SMTP_SINK_URL`
//! and `SMTP_SINK_API_URL`, which `.ci/run` starts). Without them the tests skip
//! with the reason printed; with `CI=true` they fail instead.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use auth_store_postgres::sqlx::postgres::PgConnectOptions;
use auth_store_postgres::sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Whether this is a CI run, where a missing service fails the test.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The variable `name`, or `None` after printing why the test skips.
///
/// # Panics
/// In CI, when the variable is missing.
pub(crate) fn required_env(name: &str, example: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            assert!(
                !in_ci(),
                "CI=true but {name} is not set: this end-to-end test must run in CI \
                 (e.g. {name}={example})"
            );
            eprintln!("SKIPPED: {name} is not set (e.g. {name}={example})");
            None
        }
    }
}

/// A name unique across tests, processes and runs.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{secs}_{}_{n}", std::process::id())
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A PostgreSQL database of one test's own, dropped (with its connections) on drop.
pub(crate) struct TestDatabase {
    admin: PgConnectOptions,
    name: String,
    /// Its URL, for the server's `DATABASE_URL`.
    pub(crate) url: String,
}

impl TestDatabase {
    /// A fresh, empty database on the server of `DATABASE_URL`, or `None` (skip).
    pub(crate) fn create() -> Option<Self> {
        let base = required_env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")?;
        let admin: PgConnectOptions = base.parse().unwrap();
        let name = unique("e2e_");
        let sql = format!("CREATE DATABASE \"{name}\"");
        block_on(async {
            let mut conn = PgConnection::connect_with(&admin).await.unwrap();
            auth_store_postgres::sqlx::query(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        });
        // The database is the URL's path: replace it, keep the rest.
        let (head, tail) = base.split_once("://").unwrap();
        let (authority, rest) = tail.split_once('/').unwrap_or((tail, ""));
        let query = rest.split_once('?').map(|(_, q)| format!("?{q}"));
        let url = format!("{head}://{authority}/{name}{}", query.unwrap_or_default());
        Some(Self { admin, name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let admin = self.admin.clone();
        let _ = std::thread::spawn(move || {
            block_on(async {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = auth_store_postgres::sqlx::query(AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Everything a service-backed server needs.
pub(crate) struct Services {
    /// The test's own database.
    pub(crate) database: TestDatabase,
    /// `REDIS_URL`.
    pub(crate) redis_url: String,
    /// The test's own Redis key prefix.
    pub(crate) redis_prefix: String,
    /// MailDev's SMTP side, for the server's `SMTP_URL`.
    pub(crate) smtp_url: String,
    /// MailDev's HTTP API.
    pub(crate) maildev: SocketAddr,
}

impl Services {
    /// All of them, or `None` (skip) when one is not configured.
    pub(crate) fn get() -> Option<Self> {
        let redis_url = required_env("REDIS_URL", "redis://127.0.0.1:6379")?;
        let smtp_url = required_env("SMTP_SINK_URL", "smtp://127.0.0.1:1025")?;
        let api = required_env("SMTP_SINK_API_URL", "http://127.0.0.1:1080")?;
        let maildev = api
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("SMTP_SINK_API_URL must be http://IP:PORT: {e}"));
        Some(Self {
            database: TestDatabase::create()?,
            redis_url,
            redis_prefix: unique("e2e"),
            smtp_url,
            maildev,
        })
    }

    /// The server environment that puts every store and the mail on them.
    pub(crate) fn env<'a>(&'a self, public_url: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("PUBLIC_URL", public_url),
            ("DATABASE_URL", &self.database.url),
            ("REDIS_URL", &self.redis_url),
            ("REDIS_KEY_PREFIX", &self.redis_prefix),
            ("SMTP_URL", &self.smtp_url),
        ]
    }
}
