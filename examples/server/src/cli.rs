//! Command line and environment.

use auth_core::redact_url;
use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

/// Every environment variable, for `--help`.
const ENV_HELP: &str = "\
Environment (each option above also reads its variable):
  BIND_ADDR              address to listen on (default 127.0.0.1:8080)
  PUBLIC_URL             base of the links in emails (default http://localhost:<port>)
  SECRET_KEY             token and session key, >= 32 bytes; required in release builds
  DATABASE_URL           PostgreSQL (feature postgres) for users, tokens, audit and,
                         without REDIS_URL, sessions and counters; without it, the
                         in-process store
  DATABASE_MAX_CONNECTIONS  PostgreSQL pool size (default 10)
  DATABASE_SCHEMA        PostgreSQL schema of the library's tables and migration
                         history (default auth; a-z, 0-9, _)
  REDIS_URL              Redis (feature redis) for sessions and attempt counters
  REDIS_KEY_PREFIX       prefix of every Redis key (default auth)
  REDIS_UNAVAILABLE      closed (default: 503 while Redis is down) or open (counters
                         read as zero, with a warning; sessions still need Redis)
  SMTP_URL               SMTP server, e.g. smtp://127.0.0.1:1025 or smtps://user:pass@host;
                         without it, emails are printed to standard output
  EMAIL_SENDER           From: header (default \"Auth <no-reply@localhost>\")
  COOKIE_SECURE          true/false; default true unless PUBLIC_URL is http://
  TRUSTED_PROXIES        comma-separated proxies whose X-Forwarded-For is believed
  BEARER_TOKENS          accept Authorization: Bearer and return tokens at login
  LOG_FORMAT             pretty (default) or json; RUST_LOG filters (default info)
  SERVICE_NAME           name in emails (default Auth)
  ARGON2_M_COST, ARGON2_T_COST, ARGON2_P_COST
                         hashing cost (default 19456 KiB, 2, 1; below OWASP is refused)
  HASH_CONCURRENCY       hashes at once (default: CPUs)
  CLEANUP_INTERVAL_SECS  how often expired records are purged (default 300)
  HEADER_READ_TIMEOUT_SECS  time to send a whole request head, also the idle
                         keep-alive timeout (default 10)
  BODY_READ_TIMEOUT_SECS time to send a request body after its head (default 30)
  MAX_HEADER_BYTES       largest request head; larger gets 431 (default 16384)
  MAX_CONNECTIONS        connections open at once; new ones beyond are closed
                         (default 1024)
  SHUTDOWN_GRACE_SECS    after SIGTERM, time for requests in progress before the
                         connections are closed and the outbox flushed (default 10)";

/// An authentication server: the REST API of auth-axum over auth-core.
#[derive(Debug, Parser)]
#[command(name = "example-server", version, after_help = ENV_HELP)]
pub(crate) struct Cli {
    /// Without a command, the server runs.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manages the PostgreSQL schema of the database URL (feature postgres).
    Migrate {
        /// What to do with the migrations.
        #[command(subcommand)]
        action: MigrateAction,
    },
}

/// A migration action.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum MigrateAction {
    /// Applies every pending migration.
    Up,
    /// Reverts the latest applied migration (with --all, every one).
    Down {
        /// Revert every applied migration: drops all the library's tables.
        #[arg(long)]
        all: bool,
    },
    /// Lists the migrations and whether each is applied.
    Status,
}

/// What the attempt counters do while Redis is unreachable.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RedisUnavailable {
    /// Answer 503 with Retry-After: no login without its lockout check.
    Closed,
    /// Count nothing and log a warning: logins go on without lockout.
    Open,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Settings of the server. `Debug` is hand-written: it hides the secret key
/// and the credentials URLs may carry (S10).
#[derive(Parser)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,
    /// Base of the links in emails; never taken from a request.
    #[arg(long, env = "PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Token and session key (at least 32 bytes).
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Apply pending PostgreSQL migrations before serving.
    #[arg(long)]
    pub(crate) migrate: bool,
    /// PostgreSQL pool size.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub(crate) database_max_connections: u32,
    /// PostgreSQL schema of the library's tables and migration history.
    #[arg(long, env = "DATABASE_SCHEMA", default_value = "auth")]
    pub(crate) database_schema: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub(crate) redis_url: Option<String>,
    /// Prefix of every Redis key.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "auth")]
    pub(crate) redis_key_prefix: String,
    /// What the attempt counters do while Redis is unreachable.
    #[arg(long, env = "REDIS_UNAVAILABLE", value_enum, default_value = "closed")]
    pub(crate) redis_unavailable: RedisUnavailable,
    /// SMTP URL.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub(crate) smtp_url: Option<String>,
    /// From: header of emails.
    #[arg(
        long,
        env = "EMAIL_SENDER",
        default_value = "Auth <no-reply@localhost>"
    )]
    pub(crate) email_sender: String,
    /// Secure cookies (default: true unless the public URL is http://).
    #[arg(long, env = "COOKIE_SECURE")]
    pub(crate) cookie_secure: Option<bool>,
    /// Proxies whose X-Forwarded-For is believed (addresses or CIDR networks).
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub(crate) trusted_proxies: Vec<String>,
    /// Accept bearer tokens.
    #[arg(long, env = "BEARER_TOKENS", default_value_t = false)]
    pub(crate) bearer_tokens: bool,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub(crate) log_format: LogFormat,
    /// Name in emails.
    #[arg(long, env = "SERVICE_NAME", default_value = "Auth")]
    pub(crate) service_name: String,
    /// argon2id memory cost in KiB.
    #[arg(long, env = "ARGON2_M_COST", default_value_t = 19_456)]
    pub(crate) argon2_m_cost: u32,
    /// argon2id passes.
    #[arg(long, env = "ARGON2_T_COST", default_value_t = 2)]
    pub(crate) argon2_t_cost: u32,
    /// argon2id lanes.
    #[arg(long, env = "ARGON2_P_COST", default_value_t = 1)]
    pub(crate) argon2_p_cost: u32,
    /// Hashes at once (default: CPUs).
    #[arg(long, env = "HASH_CONCURRENCY")]
    pub(crate) hash_concurrency: Option<usize>,
    /// Seconds between purges of expired records.
    #[arg(long, env = "CLEANUP_INTERVAL_SECS", default_value_t = 300)]
    pub(crate) cleanup_interval_secs: u64,
    /// Seconds to receive a whole request head (also the idle keep-alive
    /// timeout: the clock starts when a connection waits for its next request).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) header_read_timeout_secs: u64,
    /// Seconds to receive a request body, from the end of its head.
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) body_read_timeout_secs: u64,
    /// Largest request head (request line and headers) in bytes.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1024..=1_048_576))]
    pub(crate) max_header_bytes: u64,
    /// Connections open at once; new ones beyond are closed at once.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_connections: u64,
    /// Seconds that requests in progress get after a shutdown signal.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub(crate) shutdown_grace_secs: u64,
}

/// What `Debug` shows instead of a secret.
const REDACTED: &str = "[redacted]";

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("secret_key", &self.secret_key.as_ref().map(|_| REDACTED))
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("migrate", &self.migrate)
            .field("database_max_connections", &self.database_max_connections)
            .field("database_schema", &self.database_schema)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("redis_unavailable", &self.redis_unavailable)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("email_sender", &self.email_sender)
            .field("cookie_secure", &self.cookie_secure)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("bearer_tokens", &self.bearer_tokens)
            .field("log_format", &self.log_format)
            .field("service_name", &self.service_name)
            .field("argon2_m_cost", &self.argon2_m_cost)
            .field("argon2_t_cost", &self.argon2_t_cost)
            .field("argon2_p_cost", &self.argon2_p_cost)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("cleanup_interval_secs", &self.cleanup_interval_secs)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_connections", &self.max_connections)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// S10: `{:?}` of the parsed command line shows no secret key, no
    /// password of a database, Redis or SMTP URL.
    #[test]
    fn s10_debug_of_the_arguments_hides_secrets() {
        let cli = Cli::try_parse_from([
            "example-server",
            "--secret-key",
            "k3y-0f-at-least-thirty-two-bytes-long!!",
            "--database-url",
            "postgres://app:pg-pa55@db.internal:5432/auth?password=pg-query-pa55",
            "--redis-url",
            "redis://:redis-pa55@cache:6379/0",
            "--smtp-url",
            "smtps://mailer:smtp-pa55@smtp.example.com:465",
        ])
        .unwrap();
        let debug = format!("{cli:?}");
        for secret in [
            "k3y-0f-at-least",
            "pg-pa55",
            "pg-query-pa55",
            "redis-pa55",
            "smtp-pa55",
            "mailer",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        for kept in [
            "db.internal:5432/auth",
            "cache:6379/0",
            "smtp.example.com:465",
        ] {
            assert!(debug.contains(kept), "{kept} missing from {debug}");
        }
    }
}
