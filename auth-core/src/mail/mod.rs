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

/// Sends email (SMTP, an HTTP API, the console...).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one message.
    ///
    /// # Errors
    /// Any delivery failure; the outbox retries it.
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError>;
}
