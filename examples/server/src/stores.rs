//! The stores the environment names: the in-process store by default,
//! PostgreSQL with `DATABASE_URL` (feature `postgres`), Redis for sessions,
//! attempt counters and sign-in challenges with `REDIS_URL` (feature `redis`). Connection URLs are
//! never logged: they may carry passwords.

use std::sync::Arc;

use auth_core::AuthBuilder;
use auth_store_memory::MemoryStore;

use crate::Error;
use crate::cli::ServeArgs;

/// Puts every store on `builder`, as `args` names them.
///
/// # Errors
/// A URL set for a backend this binary was built without, an unreachable
/// service, or a PostgreSQL schema that is not migrated.
pub(crate) async fn wire(builder: AuthBuilder, args: &ServeArgs) -> Result<AuthBuilder, Error> {
    let builder = match &args.database_url {
        Some(url) => postgres::wire(builder, url, args).await?,
        None => {
            tracing::info!("storage: in-process memory store (nothing survives a restart)");
            builder.stores(Arc::new(MemoryStore::new()))
        }
    };
    match &args.redis_url {
        Some(url) => {
            if args.database_url.is_none() {
                tracing::warn!(
                    "REDIS_URL without DATABASE_URL: users stay in this process, so other \
                     instances do not share them"
                );
            }
            redis::wire(builder, url, args).await
        }
        None => Ok(builder),
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    //! PostgreSQL for every store, and the `migrate` command.

    use std::sync::Arc;

    use auth_core::AuthBuilder;
    use auth_store_postgres::{MIGRATOR, PgSchema, PgStoreOptions};

    use crate::Error;
    use crate::cli::{MigrateAction, ServeArgs};

    /// Every store on PostgreSQL; migrates first with `--migrate`, and refuses a
    /// schema that is behind the binary's migrations.
    pub(super) async fn wire(
        builder: AuthBuilder,
        url: &str,
        args: &ServeArgs,
    ) -> Result<AuthBuilder, Error> {
        let store = PgStoreOptions::new()
            .max_connections(args.database_max_connections)
            .schema(schema(&args.database_schema)?)
            .connect(url)
            .await
            .map_err(|e| format!("PostgreSQL at DATABASE_URL: {e}"))?;
        if args.migrate {
            store.migrate().await?;
            tracing::info!("PostgreSQL migrations applied");
        }
        store
            .check_schema()
            .await
            .map_err(|e| format!("{e}; run `example-server migrate up` or start with --migrate"))?;
        tracing::info!(
            schema = %store.schema(),
            "storage: PostgreSQL (users, tokens, audit, sessions, counters)"
        );
        Ok(builder.stores(Arc::new(store)))
    }

    /// `DATABASE_SCHEMA`, checked before anything connects.
    fn schema(name: &str) -> Result<PgSchema, Error> {
        PgSchema::new(name).map_err(|e| format!("DATABASE_SCHEMA: {e}").into())
    }

    /// Runs `example-server migrate <action>` against `url`, in `schema`.
    ///
    /// # Errors
    /// An invalid schema name, PostgreSQL unreachable, or a migration that fails.
    pub(crate) async fn migrate(
        url: &str,
        schema: &str,
        action: MigrateAction,
    ) -> Result<(), Error> {
        let store = PgStoreOptions::new()
            .max_connections(1)
            .schema(self::schema(schema)?)
            .connect(url)
            .await
            .map_err(|e| format!("PostgreSQL at DATABASE_URL: {e}"))?;
        match action {
            MigrateAction::Up => {
                store.migrate().await?;
                say("every migration is applied");
            }
            MigrateAction::Down { all } => {
                let applied = store.applied_migrations().await?;
                let target = match (all, applied.as_slice()) {
                    (_, []) => {
                        say("nothing to revert");
                        return Ok(());
                    }
                    (true, _) | (false, [_]) => 0,
                    (false, [.., previous, _]) => *previous,
                };
                store.undo(target).await?;
                say(&format!("reverted every migration after version {target}"));
            }
            MigrateAction::Status => {
                let applied = store.applied_migrations().await?;
                for migration in MIGRATOR
                    .iter()
                    .filter(|m| m.migration_type.is_up_migration())
                {
                    let state = if applied.contains(&migration.version) {
                        "applied"
                    } else {
                        "pending"
                    };
                    say(&format!(
                        "{} {:<8} {}",
                        migration.version, state, migration.description
                    ));
                }
            }
        }
        store.pool().close().await;
        Ok(())
    }

    #[allow(clippy::print_stdout, reason = "the answer of a command-line command")]
    fn say(line: &str) {
        println!("{line}");
    }
}

#[cfg(not(feature = "postgres"))]
pub(crate) mod postgres {
    //! Without the `postgres` feature: a clear refusal.

    use auth_core::AuthBuilder;

    use crate::Error;
    use crate::cli::{MigrateAction, ServeArgs};

    const MISSING: &str = "DATABASE_URL is set, but this binary was built without PostgreSQL \
                           support: build it with `--features postgres`";

    pub(super) async fn wire(_: AuthBuilder, _: &str, _: &ServeArgs) -> Result<AuthBuilder, Error> {
        Err(MISSING.into())
    }

    pub(crate) async fn migrate(_: &str, _: &str, _: MigrateAction) -> Result<(), Error> {
        Err(MISSING.into())
    }
}

#[cfg(feature = "redis")]
mod redis {
    //! Sessions, attempt counters and sign-in challenges on Redis.

    use std::sync::Arc;

    use auth_core::AuthBuilder;
    use auth_store_redis::{
        RedisAttemptStore, RedisChallengeStore, RedisConfig, RedisSessionStore, UnavailablePolicy,
    };

    use crate::Error;
    use crate::cli::{RedisUnavailable, ServeArgs};

    /// Sessions, counters and challenges on Redis; checks that it answers
    /// before serving.
    pub(super) async fn wire(
        builder: AuthBuilder,
        url: &str,
        args: &ServeArgs,
    ) -> Result<AuthBuilder, Error> {
        let conn = RedisConfig::new(url)
            .key_prefix(args.redis_key_prefix.clone())
            .build()
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        conn.ping()
            .await
            .map_err(|e| format!("Redis at REDIS_URL: {e}"))?;
        let policy = match args.redis_unavailable {
            RedisUnavailable::Closed => UnavailablePolicy::FailClosed,
            RedisUnavailable::Open => UnavailablePolicy::FailOpen,
        };
        tracing::info!(
            ?policy,
            "storage: Redis for sessions, attempt counters and sign-in challenges"
        );
        // One store for both: the user snapshot lives in the session's hash,
        // so `authenticate` is one round trip (DESIGN 8).
        let sessions = Arc::new(RedisSessionStore::new(conn.clone()));
        Ok(builder
            .sessions(sessions.clone())
            .session_cache(sessions)
            .challenges(Arc::new(RedisChallengeStore::new(conn.clone())))
            .attempts(Arc::new(
                RedisAttemptStore::new(conn).with_unavailable_policy(policy),
            )))
    }
}

#[cfg(not(feature = "redis"))]
mod redis {
    //! Without the `redis` feature: a clear refusal.

    use auth_core::AuthBuilder;

    use crate::Error;
    use crate::cli::ServeArgs;

    pub(super) async fn wire(_: AuthBuilder, _: &str, _: &ServeArgs) -> Result<AuthBuilder, Error> {
        Err(
            "REDIS_URL is set, but this binary was built without Redis support: build it \
             with `--features redis`"
                .into(),
        )
    }
}
