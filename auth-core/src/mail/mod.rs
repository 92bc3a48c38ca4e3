//! Outgoing mail: the [`Mailer`] trait, the messages the flows send, and the
//! bounded outbox that sends them off the request path (S3).
//!
//! Flows never wait for a mailer and a mailer failure never changes a response:
//! the engine puts each message in a bounded queue that a background task drains,
//! retrying failures with exponential backoff. Links are built from the configured
//! public URL only, never from a request's `Host` header.
//!
//! The text of each message comes from an [`EmailTemplates`] implementation
//! ([`DefaultTemplates`], English, unless `AuthBuilder::templates` says
//! otherwise), rendered in `AuthConfig::default_locale`: the engine keeps no
//! per-user locale yet. An SMTP [`Mailer`] is in the `auth-mailer-smtp` crate.

mod console;
mod locale;
mod outbox;
mod templates;

#[cfg(feature = "test-util")]
mod capture;

use std::fmt;

use async_trait::async_trait;

#[cfg(feature = "test-util")]
pub use capture::CapturingMailer;
pub use console::ConsoleMailer;
pub use locale::{InvalidLocale, Locale};
pub(crate) use outbox::Outbox;
pub use outbox::OutboxConfig;
pub(crate) use templates::Composer;
pub use templates::{DefaultTemplates, EmailContent, EmailTemplates, escape_html};

use crate::error::BoxError;

/// Which message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// Verify your address (with a link).
    Verification,
    /// Someone tried to register with your address.
    DuplicateRegistration,
    /// Reset your password (with a link).
    PasswordReset,
    /// Your password was changed or reset.
    PasswordChanged,
    /// A new sign-in to your account.
    NewSession,
    /// Your account was locked after failed attempts.
    Lockout,
    /// Two-step sign-in was turned on or off for your account (S15).
    SecondFactorChanged,
    /// One of your recovery codes was used to sign in (S15).
    RecoveryCodeUsed,
    /// New recovery codes replaced your old ones (S15).
    RecoveryCodesReplaced,
}

/// One email, as the engine hands it to the [`Mailer`].
///
/// `Debug` omits the bodies and the link: a verification or reset link
/// carries a single-use token (S10).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailMessage {
    /// Which message.
    pub kind: MessageKind,
    /// Recipient: the address stored for the account, never one typed in a
    /// request (S3).
    pub to: String,
    /// The language the message is written in.
    pub locale: Locale,
    /// The link the message asks the recipient to open, as it appears in
    /// the bodies: for [`MessageKind::Verification`] and
    /// [`MessageKind::PasswordReset`] it carries the single-use token (a
    /// secret: never log it); notices link to the reset page; `None` for
    /// messages without a link. Built from the configured public URL only.
    pub link: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl EmailMessage {
    /// A message of `kind` to `to` with what a template wrote, without a link.
    #[must_use]
    pub fn new(
        kind: MessageKind,
        to: impl Into<String>,
        locale: Locale,
        content: EmailContent,
    ) -> Self {
        Self {
            kind,
            to: to.into(),
            locale,
            link: None,
            subject: content.subject,
            text: content.text,
            html: content.html,
        }
    }

    /// The same message with `link` as its link.
    #[must_use]
    pub fn with_link(mut self, link: Option<String>) -> Self {
        self.link = link;
        self
    }
}

impl fmt::Debug for EmailMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailMessage")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .field("locale", &self.locale)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl MessageKind {
    /// Whether the message is account mail a user waits for (a verification
    /// or reset link, a password-change, second-factor or recovery-code
    /// notice, which only the account's own actions cause) rather than a
    /// notice anyone can trigger. The outbox keeps room for account mail that notices cannot
    /// take (S3).
    #[must_use]
    pub const fn is_account_mail(self) -> bool {
        matches!(
            self,
            Self::Verification
                | Self::PasswordReset
                | Self::PasswordChanged
                | Self::SecondFactorChanged
                | Self::RecoveryCodeUsed
                | Self::RecoveryCodesReplaced
        )
    }
}

/// Why a message was not delivered: permanently (the server refused the
/// address or the message: SMTP 5xx, an address that cannot be parsed), which
/// is never retried, or transiently (connection, timeout, SMTP 4xx), which the
/// outbox retries with backoff.
///
/// Any `std::error::Error` converts into a transient failure, so `?` works in
/// a mailer; say [`MailError::permanent`] where the failure cannot go away.
pub struct MailError {
    permanent: bool,
    source: BoxError,
}

impl MailError {
    /// A failure that retrying cannot fix.
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self {
            permanent: true,
            source: source.into(),
        }
    }

    /// A failure that may go away: the outbox retries it.
    pub fn transient(source: impl Into<BoxError>) -> Self {
        Self {
            permanent: false,
            source: source.into(),
        }
    }

    /// Whether retrying cannot help.
    #[must_use]
    pub const fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for MailError {
    fn from(err: E) -> Self {
        Self::transient(err)
    }
}

impl fmt::Debug for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailError")
            .field("permanent", &self.permanent)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.permanent {
            "permanent"
        } else {
            "transient"
        };
        write!(f, "{kind} mail failure: {}", self.source)
    }
}

/// Sends email (SMTP, an HTTP API, the console...).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one message.
    ///
    /// # Errors
    /// A [`MailError`] saying whether the failure is permanent (never retried)
    /// or transient (retried with backoff, without holding up other messages).
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError>;
}

#[cfg(test)]
mod tests {
    use super::{EmailContent, EmailMessage, Locale, MessageKind};

    /// S10: `Debug` of a message shows neither its bodies nor its link, which
    /// carry the token of a verification or reset mail.
    #[test]
    fn debug_leaves_out_the_bodies_and_the_link() {
        let link = "https://auth.example.com/reset-password?token=s3cr3t-t0ken";
        let content = EmailContent::new(
            "Acme: reset",
            format!("open {link}"),
            format!("<a href=\"{link}\">"),
        );
        let m = EmailMessage::new(
            MessageKind::PasswordReset,
            "a@example.com",
            Locale::ENGLISH,
            content,
        )
        .with_link(Some(link.to_owned()));
        let debug = format!("{m:?}");
        assert!(!debug.contains("s3cr3t-t0ken"), "{debug}");
        assert!(debug.contains("PasswordReset") && debug.contains("a@example.com"));
        assert!(debug.contains("Acme: reset") && debug.contains("Locale(en)"));
        assert_eq!(m.link.as_deref(), Some(link));
    }
}
