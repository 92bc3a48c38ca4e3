//! The mailer the environment asks for: SMTP (`SMTP_URL`, feature `smtp`) or the
//! console.

use std::sync::Arc;

use auth_core::mail::{ConsoleMailer, Mailer};

use crate::Error;
use crate::cli::ServeArgs;

pub(crate) fn from_args(args: &ServeArgs) -> Result<Arc<dyn Mailer>, Error> {
    match &args.smtp_url {
        Some(url) => smtp(url, &args.email_sender),
        None => {
            tracing::info!("mail: printed to standard output (set SMTP_URL to send it)");
            Ok(Arc::new(ConsoleMailer))
        }
    }
}

#[cfg(not(feature = "smtp"))]
fn smtp(_url: &str, _sender: &str) -> Result<Arc<dyn Mailer>, Error> {
    Err("SMTP_URL is set, but this build lacks the `smtp` feature (cargo run -p example-server --features smtp)".into())
}

#[cfg(feature = "smtp")]
fn smtp(url: &str, sender: &str) -> Result<Arc<dyn Mailer>, Error> {
    let mailer = auth_mailer_smtp::SmtpMailer::new(url, sender)?;
    tracing::info!(?mailer, "mail: SMTP");
    Ok(Arc::new(mailer))
}
