use std::net::IpAddr;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::StoreError;

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AttemptScope {
    /// Failed logins (and failed current-password checks on change).
    Login,
    /// Registrations.
    Register,
    /// Password-reset requests.
    ResetRequest,
    /// Verification-email resends.
    VerificationResend,
}

impl AttemptScope {
    /// A stable name, used in storage keys.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::ResetRequest => "reset",
            Self::VerificationResend => "resend",
        }
    }
}

/// A counter's key: a scope and either an account (normalised email, whether or
/// not it exists, so unknown emails are limited alike) or a client IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttemptKey {
    /// Per account, by normalised email.
    Account(AttemptScope, String),
    /// Per client IP.
    Ip(AttemptScope, IpAddr),
}

impl AttemptKey {
    /// A stable text form, for key-value backends: `scope:a:email` or `scope:ip:addr`.
    #[must_use]
    pub fn storage_key(&self) -> String {
        match self {
            Self::Account(scope, email) => format!("{}:a:{email}", scope.as_str()),
            Self::Ip(scope, ip) => format!("{}:ip:{ip}", scope.as_str()),
        }
    }
}

/// A counter's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptState {
    /// Attempts counted since the counter was last cleared or expired.
    pub count: u32,
    /// When the last one was counted.
    pub last_at: Option<OffsetDateTime>,
}

/// Atomic counters with expiry, for lockout and rate limits (S6).
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Atomically adds one and returns the new state. The counter then expires
    /// `ttl` after `now` (each increment pushes the expiry out), so concurrent
    /// increments are never lost: 50 concurrent calls from zero end at 50.
    ///
    /// # Errors
    /// Backend failures only.
    async fn increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<AttemptState, StoreError>;

    /// The current state; zero once expired.
    ///
    /// # Errors
    /// Backend failures only.
    async fn attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError>;

    /// Resets the counter to zero.
    ///
    /// # Errors
    /// Backend failures only.
    async fn clear(&self, key: &AttemptKey) -> Result<(), StoreError>;

    /// Forgets expired counters (backends with native expiry may do nothing).
    /// Returns how many were removed.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_expired_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
