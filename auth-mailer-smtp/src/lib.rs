#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

use auth_core::redact_url;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::BoxError;
use auth_core::mail::{EmailMessage, MailError, Mailer};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Longest wait for one SMTP exchange: a stalled server holds up the outbox
/// for no longer (its other messages wait behind the one being sent).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends each [`EmailMessage`] over SMTP as plain text and HTML
/// alternatives, from one sender address, over a pooled async transport.
///
/// `Debug` shows the sender and the server's scheme and host, never the user
/// or password of the URL (S10).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

/// Why an [`SmtpMailer`] could not be made. The messages never repeat the
/// URL, which may hold a password (S10).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpConfigError {
    /// The URL is not `smtp://host[:port]` (optionally `?tls=required` or
    /// `?tls=opportunistic`) or `smtps://host[:port]`.
    #[error(
        "the SMTP URL is not a valid smtp://host[:port][?tls=required|opportunistic] \
         or smtps://host[:port] URL"
    )]
    InvalidUrl,
    /// The sender is not a mailbox such as `no-reply@example.com` or
    /// `Example <no-reply@example.com>`.
    #[error("the sender is not a valid mailbox such as \"Example <no-reply@example.com>\"")]
    InvalidSender,
    /// The URL carries a user and password but would send them without TLS
    /// or over a TLS that a network attacker can strip (`smtp://` without
    /// `?tls=required`): use `smtps://` or `?tls=required` (S10).
    #[error(
        "the SMTP URL has credentials but no required TLS: use smtps:// or smtp://...?tls=required"
    )]
    CredentialsWithoutTls,
    /// Called outside a tokio runtime: the connection pool runs a task on
    /// the current one.
    #[error("SmtpMailer::new must be called inside a tokio runtime")]
    NoRuntime,
}

impl SmtpMailer {
    /// A mailer for the server at `url` that sends from `sender`.
    ///
    /// Nothing connects yet: the first message opens the first pooled
    /// connection, so a server that is down at start-up only delays mail
    /// (the outbox retries it). Call it inside the tokio runtime that will
    /// send: the pool's upkeep task runs there.
    ///
    /// # Errors
    /// [`SmtpConfigError::InvalidUrl`] for a URL of another form (or with
    /// user info that is not percent-encoded UTF-8),
    /// [`SmtpConfigError::CredentialsWithoutTls`] for a user and password
    /// over plain or opportunistic TLS,
    /// [`SmtpConfigError::InvalidSender`] for a sender that is not a
    /// mailbox, [`SmtpConfigError::NoRuntime`] outside a tokio runtime.
    pub fn new(url: &str, sender: &str) -> Result<Self, SmtpConfigError> {
        tokio::runtime::Handle::try_current().map_err(|_| SmtpConfigError::NoRuntime)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| SmtpConfigError::InvalidUrl)?
            .timeout(Some(TIMEOUT))
            .build();
        if credentials_in_clear(url) {
            return Err(SmtpConfigError::CredentialsWithoutTls);
        }
        let from = sender.parse().map_err(|_| SmtpConfigError::InvalidSender)?;
        Ok(Self {
            transport,
            from,
            server: redact_url(url),
        })
    }
}

/// Whether `url` (one lettre accepted) holds user info that would travel
/// without a required TLS: `smtp://` sends AUTH in clear, and with
/// `?tls=opportunistic` a network attacker who strips STARTTLS gets it too.
fn credentials_in_clear(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("smtp://") else {
        return false;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let has_user = rest.get(..authority_end).is_some_and(|a| a.contains('@'));
    let query = rest
        .split_once('?')
        .map_or("", |(_, q)| q.split('#').next().unwrap_or_default());
    has_user && !query.split('&').any(|pair| pair == "tls=required")
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    /// An address that cannot be parsed, a message that cannot be built and
    /// an SMTP 5xx answer are permanent failures (never retried); the rest
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
    use super::{SmtpConfigError, SmtpMailer, classify, redact_url};

    /// The mapping the outbox relies on (the MailDev sink accepts every
    /// recipient; tests/smtp.rs checks real 5xx and 4xx answers).
    #[test]
    fn five_hundreds_are_permanent_and_the_rest_transient() {
        assert!(classify(true, "550 5.1.1 no such user").is_permanent());
        assert!(!classify(false, "421 4.7.0 try again later").is_permanent());
    }

    /// S10: `Debug` of the mailer shows neither the user nor the password
    /// of its URL, nor anything in the query.
    #[tokio::test]
    async fn s10_debug_shows_no_credentials_from_the_url() {
        for (url, shown) in [
            (
                "smtps://mailer:smtp-pa55@smtp.example.com:465",
                "smtps://[redacted]@smtp.example.com:465",
            ),
            (
                "smtp://mailer:smtp-pa55@smtp.example.com:587?tls=required",
                "smtp://[redacted]@smtp.example.com:587?[redacted]",
            ),
            (
                "smtp://mailer:pa%3Fss@smtp.example.com?tls=required",
                "smtp://[redacted]@smtp.example.com?[redacted]",
            ),
            ("smtp://127.0.0.1:1025", "smtp://127.0.0.1:1025"),
        ] {
            let mailer = SmtpMailer::new(url, "Example <no-reply@example.com>").unwrap();
            let debug = format!("{mailer:?}");
            assert!(debug.contains(shown), "{debug}");
            assert!(debug.contains("no-reply@example.com"), "{debug}");
            for secret in ["mailer", "smtp-pa55", "pa%3Fss"] {
                assert!(!debug.contains(secret), "{debug}");
            }
        }
        assert_eq!(
            redact_url("smtp://user:p?ss@host"),
            "smtp://[redacted]",
            "an @ after a ? may be part of the password"
        );
    }

    #[tokio::test]
    async fn bad_urls_and_senders_are_refused_without_echoing_them() {
        for url in [
            "http://smtp.example.com",
            "smtp://user:s3cret@",
            "smtp://smtp.example.com?tls=maybe",
            "s3cret",
        ] {
            let err = SmtpMailer::new(url, "no-reply@example.com").unwrap_err();
            assert!(matches!(err, SmtpConfigError::InvalidUrl), "{url}");
            assert!(!err.to_string().contains("s3cret"));
        }
        let err = SmtpMailer::new("smtp://127.0.0.1:1025", "not a mailbox").unwrap_err();
        assert!(matches!(err, SmtpConfigError::InvalidSender), "{err}");
    }

    /// S10: a password is never sent where a network attacker can read it:
    /// credentials need smtps:// or a required STARTTLS.
    #[tokio::test]
    async fn s10_credentials_without_required_tls_are_refused() {
        for url in [
            "smtp://mailer:s3cret@smtp.example.com:587",
            "smtp://mailer:s3cret@smtp.example.com:587?tls=opportunistic",
            "smtp://mailer@smtp.example.com",
        ] {
            let err = SmtpMailer::new(url, "no-reply@example.com").unwrap_err();
            assert!(
                matches!(err, SmtpConfigError::CredentialsWithoutTls),
                "{url}"
            );
            assert!(!err.to_string().contains("s3cret"));
        }
        for url in [
            "smtps://mailer:s3cret@smtp.example.com",
            "smtp://mailer:s3cret@smtp.example.com:587?tls=required",
            "smtp://127.0.0.1:1025",
            "smtp://127.0.0.1:1025?tls=opportunistic",
        ] {
            assert!(
                SmtpMailer::new(url, "no-reply@example.com").is_ok(),
                "{url}"
            );
        }
    }

    /// Outside a runtime the pool could not start its task: an error, not a
    /// panic.
    #[test]
    fn outside_a_runtime_new_is_an_error() {
        let err = SmtpMailer::new("smtp://127.0.0.1:1025", "no-reply@example.com").unwrap_err();
        assert!(matches!(err, SmtpConfigError::NoRuntime), "{err}");
    }
}
