//! Runs the existing application on `127.0.0.1:3000`: `DATABASE_URL` names
//! its database (the library's tables go to its `auth` schema); emails go
//! to `SMTP_URL` when it is set, else to standard output.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::SecretKey;
use auth_core::mail::{ConsoleMailer, Mailer};
use auth_mailer_smtp::SmtpMailer;
use auth_store_postgres::sqlx::PgPool;
use example_existing_app::{AuthData, app, auth};

#[tokio::main]
async fn main() -> Result<(), auth_core::BoxError> {
    let db = PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
    // A real deployment reads a fixed key from its secret store, so sessions
    // and tokens survive a restart.
    let key = SecretKey::generate()?;
    let mailer: Arc<dyn Mailer> = match std::env::var("SMTP_URL") {
        Ok(url) => Arc::new(SmtpMailer::new(&url, "App <no-reply@localhost>")?),
        Err(_) => Arc::new(ConsoleMailer),
    };
    let auth = auth(
        &db,
        AuthData::Postgres,
        mailer,
        key,
        "http://localhost:3000",
    )
    .await?;
    // Expired sessions, tokens and counters go now and then.
    let engine = auth.auth().clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            let _ = engine.purge_expired().await;
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // Connect info: the client address the rate limits key on (S8).
    let service = app(db, &auth).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Lets queued mail and background work finish.
    auth.auth().shutdown().await;
    Ok(())
}
