//! Command line and environment.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

/// Every environment variable, for `--help`.
const ENV_HELP: &str = "\
Environment (each option above also reads its variable):
  BIND_ADDR              address to listen on (default 127.0.0.1:8080)
  PUBLIC_URL             base of the links in emails (default http://localhost:<port>)
  SECRET_KEY             token and session key, >= 32 bytes; required in release builds
  DATABASE_URL           PostgreSQL; without it, the in-process store
  REDIS_URL              Redis for sessions and attempt counters
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
  CLEANUP_INTERVAL_SECS  how often expired records are purged (default 300)";

/// An authentication server: the REST API of auth-axum over auth-core.
#[derive(Debug, Parser)]
#[command(name = "example-server", version, after_help = ENV_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Settings of the server.
#[derive(Debug, Parser)]
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
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub(crate) redis_url: Option<String>,
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
}
