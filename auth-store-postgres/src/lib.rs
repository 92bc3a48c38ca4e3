#![doc = include_str!("../README.md")]

mod accounts;
mod attempts;
mod audit;
mod challenges;
mod credentials;
mod error;
mod migrate;
mod purge;
mod roles;
mod schema;
mod sessions;
mod sql;
mod tokens;
mod users;

#[cfg(test)]
mod explain_tests;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_core::store::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use error::{InvalidOptions, SchemaError, TimedOut};
pub use schema::{InvalidSchema, PgSchema};
/// The sqlx version this crate is built on, for building pools and options.
pub use sqlx;

/// The migrations of every table of the store, embedded at build time from
/// `migrations/` (reversible: each `.up.sql` has a `.down.sql`). Their SQL
/// names tables unqualified: [`PgStore::migrate`] runs them in the store's
/// schema, with the history in that schema too. Run them through the store
/// (`MIGRATOR.run(&pool)` would use the pool's `search_path` and the default
/// history table instead).
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a pooled connection must have been idle to be pinged before use,
/// by default ([`PgStoreOptions::check_after_idle`]).
pub const DEFAULT_CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How to build a [`PgStore`]'s pool, with bounds that suit request paths.
///
/// ```
/// use std::time::Duration;
/// use auth_store_postgres::PgStoreOptions;
///
/// let options = PgStoreOptions::new()
///     .max_connections(32)
///     .acquire_timeout(Duration::from_secs(2))
///     .query_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(options.get_acquire_timeout(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    max_connections: u32,
    min_connections: u32,
    acquire_timeout: Duration,
    query_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    test_before_acquire: bool,
    check_after_idle: Duration,
    schema: PgSchema,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl PgStoreOptions {
    /// Defaults: at most 10 connections, none kept open when idle, a 5 s acquire
    /// timeout, a 10 s bound on each store call, idle connections closed after
    /// 10 minutes, a pooled connection idle for a second or more checked before
    /// use, and the schema `auth`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            query_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(600)),
            test_before_acquire: true,
            check_after_idle: DEFAULT_CHECK_AFTER_IDLE,
            schema: PgSchema::default(),
        }
    }

    /// The schema of the store's tables and migration history (default `auth`).
    #[must_use]
    pub fn schema(mut self, schema: PgSchema) -> Self {
        self.schema = schema;
        self
    }

    /// The most connections the pool opens (at least 1).
    #[must_use]
    pub const fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Connections the pool keeps open even when idle (at most `max_connections`).
    #[must_use]
    pub const fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// How long a store call may wait for a connection, including opening a new
    /// one, before it fails with [`StoreError::Unavailable`]. Must be above zero.
    #[must_use]
    pub const fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The configured acquire timeout.
    #[must_use]
    pub const fn get_acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// The longest a whole store call may take (acquiring a connection and
    /// running its statement) before it fails with [`StoreError::Unavailable`]
    /// ([`TimedOut`] as source); `None` for no bound beyond the acquire timeout.
    /// It catches a server that stops answering on an open connection. A call cut
    /// short may still have taken effect on the server.
    #[must_use]
    pub const fn query_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// How long an idle connection stays open (`None`: until its max lifetime).
    #[must_use]
    pub const fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Whether the pool pings a connection that has been idle for
    /// [`Self::check_after_idle`] or more before handing it out (default
    /// true). Turning it off saves that round trip; a connection the server
    /// dropped meanwhile then fails one call with [`StoreError::Unavailable`].
    #[must_use]
    pub const fn test_before_acquire(mut self, test: bool) -> Self {
        self.test_before_acquire = test;
        self
    }

    /// How long a connection must have been idle to be pinged before use
    /// (default [`DEFAULT_CHECK_AFTER_IDLE`]; zero pings every time). One
    /// used more recently is taken as alive, as `HikariCP`'s alive-bypass
    /// window does: under load no call pays a ping, and a server that went
    /// away within the window fails at most one call per pooled connection
    /// with [`StoreError::Unavailable`] (such a connection is closed).
    #[must_use]
    pub const fn check_after_idle(mut self, idle: Duration) -> Self {
        self.check_after_idle = idle;
        self
    }

    fn validate(&self) -> Result<(), StoreError> {
        let problem = if self.max_connections == 0 {
            Some("max_connections must be at least 1")
        } else if self.min_connections > self.max_connections {
            Some("min_connections must not exceed max_connections")
        } else if self.acquire_timeout.is_zero() {
            Some("acquire_timeout must be above zero")
        } else if self.query_timeout.is_some_and(|t| t.is_zero()) {
            Some("query_timeout must be above zero")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(StoreError::Other(Box::new(InvalidOptions(reason)))),
            None => Ok(()),
        }
    }

    fn pool_options(&self) -> PgPoolOptions {
        let options = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            // The pool's own test pings every time; this one only connections
            // idle for the window or more.
            .test_before_acquire(false);
        if !self.test_before_acquire {
            return options;
        }
        let window = self.check_after_idle;
        options.before_acquire(move |conn, meta| {
            Box::pin(async move {
                Ok(meta.idle_for < window || sqlx::Connection::ping(conn).await.is_ok())
            })
        })
    }

    /// Connects to `url` (a `postgres://` URL) and checks that the server answers.
    ///
    /// # Errors
    /// [`StoreError::Other`] for invalid options or URL, [`StoreError::Unavailable`]
    /// when the server cannot be reached within the acquire timeout.
    pub async fn connect(self, url: &str) -> Result<PgStore, StoreError> {
        let options = parse_url(url)?;
        self.connect_with(options).await
    }

    /// Connects with parsed connection options and checks that the server answers.
    ///
    /// # Errors
    /// As [`Self::connect`].
    pub async fn connect_with(self, options: PgConnectOptions) -> Result<PgStore, StoreError> {
        self.validate()?;
        let pool = self
            .pool_options()
            .connect_with(options)
            .await
            .map_err(error::map)?;
        Ok(PgStore::with_pool(pool, self.schema, self.query_timeout))
    }

    /// A store whose pool connects on first use: start-up does not wait for the
    /// server, and calls answer [`StoreError::Unavailable`] until it is reachable.
    ///
    /// # Errors
    /// [`StoreError::Other`] for invalid options or URL.
    pub fn connect_lazy(self, url: &str) -> Result<PgStore, StoreError> {
        let options = parse_url(url)?;
        self.connect_lazy_with(options)
    }

    /// As [`Self::connect_lazy`], with parsed connection options.
    ///
    /// # Errors
    /// [`StoreError::Other`] for invalid options.
    pub fn connect_lazy_with(self, options: PgConnectOptions) -> Result<PgStore, StoreError> {
        self.validate()?;
        let pool = self.pool_options().connect_lazy_with(options);
        Ok(PgStore::with_pool(pool, self.schema, self.query_timeout))
    }
}

fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    url.parse::<PgConnectOptions>()
        .map_err(|e| StoreError::Other(Box::new(e)))
}

/// Every `auth-core` store trait on a PostgreSQL pool, its tables in one
/// schema ([`PgSchema`], default `auth`). Cheap to clone (the pool and the
/// statements are shared); hold it as `Arc<PgStore>` for
/// `Auth::builder().stores(...)`.
///
/// Every statement names the schema, so the pool may be the application's own
/// whatever its `search_path`.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    query_timeout: Option<Duration>,
    schema: PgSchema,
    sql: Arc<sql::Statements>,
    purge_batch: u32,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("pool_size", &self.pool.size())
            .field("query_timeout", &self.query_timeout)
            .field("schema", &self.schema)
            .field("purge_batch", &self.purge_batch)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` with the default [`PgStoreOptions`].
    ///
    /// # Errors
    /// As [`PgStoreOptions::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PgStoreOptions::new().connect(url).await
    }

    /// A store in `schema` on an existing pool (the application's own, say),
    /// with no query timeout of its own: the pool's acquire timeout is then the
    /// only bound (sqlx's default is 30 s).
    #[must_use]
    pub fn from_pool(pool: PgPool, schema: PgSchema) -> Self {
        Self::with_pool(pool, schema, None)
    }

    /// A store in `schema` on an existing pool, each call bounded by
    /// `query_timeout`.
    #[must_use]
    pub fn with_pool(pool: PgPool, schema: PgSchema, query_timeout: Option<Duration>) -> Self {
        Self {
            sql: Arc::new(sql::Statements::new(&schema)),
            pool,
            query_timeout,
            schema,
            purge_batch: purge::DEFAULT_BATCH,
        }
    }

    /// The schema of the store's tables, where an application's foreign keys
    /// point (`<schema>.users(id)`).
    #[must_use]
    pub fn schema(&self) -> &PgSchema {
        &self.schema
    }

    /// The pool, for the embedding application's own queries and health checks.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs one store call within the query timeout, mapping its error.
    async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        self.run_mapped(call, error::map).await
    }

    /// [`Self::run`] for a write of a record that belongs to a user: a
    /// foreign-key violation is [`StoreError::NotFound`] (an unknown user).
    async fn run_for_user<T>(
        &self,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        self.run_mapped(call, error::map_unknown_user).await
    }

    async fn run_mapped<T>(
        &self,
        call: impl Future<Output = Result<T, sqlx::Error>>,
        map: fn(sqlx::Error) -> StoreError,
    ) -> Result<T, StoreError> {
        let Some(limit) = self.query_timeout else {
            return call.await.map_err(map);
        };
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(map),
            Err(_) => Err(StoreError::Unavailable(Box::new(TimedOut { after: limit }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(options: PgStoreOptions) -> &'static str {
        match options.connect_lazy("postgres://localhost/db") {
            Err(StoreError::Other(source)) => source
                .downcast_ref::<InvalidOptions>()
                .map_or("other error", |e| e.0),
            Err(_) => "other error",
            Ok(_) => "accepted",
        }
    }

    #[tokio::test]
    async fn options_that_cannot_work_are_refused_at_build_time() {
        let zero = Duration::ZERO;
        assert_eq!(
            refused(PgStoreOptions::new().max_connections(0)),
            "max_connections must be at least 1"
        );
        assert_eq!(
            refused(PgStoreOptions::new().min_connections(11)),
            "min_connections must not exceed max_connections"
        );
        assert_eq!(
            refused(PgStoreOptions::new().acquire_timeout(zero)),
            "acquire_timeout must be above zero"
        );
        assert_eq!(
            refused(PgStoreOptions::new().query_timeout(Some(zero))),
            "query_timeout must be above zero"
        );
        assert_eq!(refused(PgStoreOptions::new()), "accepted");
        assert!(matches!(
            PgStoreOptions::new().connect_lazy("postgres://host:notaport/db"),
            Err(StoreError::Other(_))
        ));
    }
}
