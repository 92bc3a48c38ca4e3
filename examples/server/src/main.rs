//! The example server: the whole REST API of `auth-axum` over the stores the
//! environment names. With no environment at all it runs on the in-process store
//! and prints the emails it would send (links included) to standard output; logs
//! go to standard error.
//!
//! `example-server --help` lists every option and environment variable.

mod cli;
mod http;
mod mailer;
mod stores;

use std::net::SocketAddr;
use std::time::Duration;

use auth_axum::{AuthState, TrustedProxy, WebConfig};
use auth_core::password::{HashParams, PasswordHasher};
use auth_core::{Auth, AuthConfig, SecretKey};
use clap::Parser;
use tokio::net::TcpListener;

use cli::{Cli, Command, LogFormat, ServeArgs};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(cli.serve.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err.into()),
    };
    let run = async {
        match cli.command {
            Some(Command::Migrate { action }) => {
                let url = cli
                    .serve
                    .database_url
                    .as_deref()
                    .ok_or("migrate needs DATABASE_URL")?;
                stores::postgres::migrate(url, &cli.serve.database_schema, action).await
            }
            None => serve(cli.serve).await,
        }
    };
    match runtime.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the last word of a failed start, logs may be off"
)]
fn fail(err: &Error) -> std::process::ExitCode {
    tracing::error!(error = %err, "example-server stopped");
    eprintln!("error: {err}");
    std::process::ExitCode::FAILURE
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn serve(args: ServeArgs) -> Result<(), Error> {
    let listener = TcpListener::bind(args.bind).await?;
    let bound = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{}", bound.port()));
    let auth = build_engine(&args, &public_url).await?;
    let web = WebConfig {
        cookie_secure: args
            .cookie_secure
            .unwrap_or(!public_url.starts_with("http://")),
        trusted_proxies: args
            .trusted_proxies
            .iter()
            .map(|p| TrustedProxy::parse(p))
            .collect::<Result<_, _>>()?,
        bearer_tokens: args.bearer_tokens,
        ..WebConfig::default()
    };
    let state = AuthState::new(auth.clone(), web)?;
    let cleanup = tokio::spawn(cleanup_timer(
        auth.clone(),
        Duration::from_secs(args.cleanup_interval_secs.max(1)),
    ));

    announce(bound, &public_url);
    http::serve(listener, state.app(), limits(&args), shutdown_signal()).await;
    tracing::info!("draining the mail outbox");
    cleanup.abort();
    auth.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

#[allow(
    clippy::print_stdout,
    reason = "where the server listens is for the person who started it"
)]
fn announce(bound: SocketAddr, public_url: &str) {
    println!(
        "example-server {} listening on http://{bound}",
        env!("CARGO_PKG_VERSION")
    );
    println!("links in emails point at {public_url}");
}

/// The connection limits of the arguments (S13).
fn limits(args: &ServeArgs) -> http::Limits {
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    http::Limits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
        max_header_bytes: size(args.max_header_bytes),
        max_connections: size(args.max_connections),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
    }
}

async fn build_engine(args: &ServeArgs, public_url: &str) -> Result<Auth, Error> {
    let config = AuthConfig {
        service_name: args.service_name.clone(),
        public_url: public_url.trim_end_matches('/').to_owned(),
        ..AuthConfig::default()
    };
    let params = HashParams::new(args.argon2_m_cost, args.argon2_t_cost, args.argon2_p_cost)?;
    let mut hasher = PasswordHasher::builder().params(params);
    if let Some(n) = args.hash_concurrency {
        hasher = hasher.max_concurrent(n);
    }
    let hasher = hasher.build()?;
    tracing::info!(backend = ?hasher.backend(), %params, "hashing: argon2id");
    let builder = Auth::builder()
        .config(config)
        .hasher(hasher)
        .secret_key(secret_key(args.secret_key.as_deref())?)
        .mailer(mailer::from_args(args)?);
    let builder = stores::wire(builder, args).await?;
    Ok(builder.build()?)
}

/// The token secret: from `SECRET_KEY` (at least 32 bytes), or, in debug builds
/// only, a fresh random one with a loud warning (S10).
fn secret_key(configured: Option<&str>) -> Result<SecretKey, Error> {
    match configured {
        Some(key) => Ok(SecretKey::new(key.as_bytes().to_vec())
            .map_err(|_| "SECRET_KEY must be at least 32 bytes (try: openssl rand -base64 48)")?),
        None if cfg!(debug_assertions) => {
            tracing::warn!(
                "SECRET_KEY is not set: using an ephemeral random key. Every token and session dies \
                 with this process. This is a debug build; a release build refuses to start."
            );
            Ok(SecretKey::generate()?)
        }
        None => Err("SECRET_KEY is required in release builds (at least 32 bytes; try: openssl rand -base64 48)".into()),
    }
}

async fn cleanup_timer(auth: Auth, every: Duration) {
    let mut timer = tokio::time::interval(every);
    timer.tick().await;
    loop {
        timer.tick().await;
        match auth.purge_expired().await {
            Ok(purged) => tracing::debug!(?purged, "purged expired records"),
            Err(err) => tracing::warn!(error = %err, "purging expired records failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
