//! Outgoing mail: the [`Mailer`] trait, the messages the flows send, and the
//! bounded outbox that sends them off the request path (S3).
//!
//! Flows never wait for a mailer and a mailer failure never changes a response:
//! the engine puts each message in a bounded queue that a background task drains,
//! retrying failures with exponential backoff. Links are built from the configured
//! public URL only, never from a request's `Host` header.

mod console;
mod outbox;
mod templates;

#[cfg(feature = "test-util")]
mod capture;

use std::fmt;

use async_trait::async_trait;

#[cfg(feature = "test-util")]
pub use capture::CapturingMailer;
pub use console::ConsoleMailer;
pub(crate) use outbox::Outbox;
pub use outbox::OutboxConfig;
pub(crate) use templates::Templates;

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
}

/// One email. `Debug` omits the bodies, which may carry a link with a token.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Which message.
    pub kind: MessageKind,
    /// Recipient: the address stored for the account.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl fmt::Debug for EmailMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailMessage")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl MessageKind {
    /// Whether the message is account mail a user waits for (a verification
    /// or reset link, a password-change or second-factor notice, which only
    /// the account's own actions cause) rather than a notice anyone can
    /// trigger. The outbox keeps room for account mail that notices cannot
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
