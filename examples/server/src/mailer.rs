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
    let mailer = smtp::SmtpMailer::new(url, sender)?;
    tracing::info!("mail: SMTP");
    Ok(Arc::new(mailer))
}

#[cfg(feature = "smtp")]
mod smtp {
    use async_trait::async_trait;
    use auth_core::BoxError;
    use auth_core::mail::{EmailMessage, MailError, Mailer};
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    /// Sends mail over SMTP with lettre (plain text and HTML alternatives).
    pub(crate) struct SmtpMailer {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    }

    impl SmtpMailer {
        pub(crate) fn new(url: &str, sender: &str) -> Result<Self, crate::Error> {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|_| "SMTP_URL is not a valid smtp:// or smtps:// URL")?
                .timeout(Some(std::time::Duration::from_secs(10)))
                .build();
            let from = sender
                .parse()
                .map_err(|_| "EMAIL_SENDER is not a valid mailbox")?;
            Ok(Self { transport, from })
        }
    }

    #[async_trait]
    impl Mailer for SmtpMailer {
        /// An address lettre cannot parse, a message it cannot build and an
        /// SMTP 5xx answer are permanent failures (never retried); the rest
        /// (connection, TLS, timeout, 4xx) are transient.
        async fn send(&self, m: &EmailMessage) -> Result<(), MailError> {
            let to = m.to.parse::<Mailbox>().map_err(MailError::permanent)?;
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.subject.clone())
                .multipart(MultiPart::alternative_plain_html(
                    m.text.clone(),
                    m.html.clone(),
                ))
                .map_err(MailError::permanent)?;
            self.transport
                .send(message)
                .await
                .map_err(|err| classify(err.is_permanent(), err))?;
            Ok(())
        }
    }

    /// Permanent when the server said so (5xx), transient otherwise.
    fn classify(permanent: bool, err: impl Into<BoxError>) -> MailError {
        if permanent {
            MailError::permanent(err)
        } else {
            MailError::transient(err)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::classify;

        #[test]
        fn five_hundreds_are_permanent_and_the_rest_transient() {
            assert!(classify(true, "550 5.1.1 no such user").is_permanent());
            assert!(!classify(false, "421 4.7.0 try again later").is_permanent());
        }
    }
}
