//! The error types of the engine, its stores and its configuration.

use std::error::Error as StdError;

use time::Duration;

use crate::InvalidEmail;
use crate::password::{HashError, PolicyViolation};

/// A boxed error from a backend, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a store call can fail with. Backends map their native errors into these
/// kinds; the engine decides what each means for a flow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint was violated (for example a second user with the same
    /// normalised email).
    #[error("conflict with an existing record")]
    Conflict,
    /// The record to update does not exist.
    #[error("record not found")]
    NotFound,
    /// The backend cannot be reached or timed out; retrying later may succeed.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("store error")]
    Other(#[source] BoxError),
}

/// How long clients are told to wait after a 503.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::seconds(1);

/// The public error of every flow. Each variant has a stable machine code
/// ([`Self::code`]); messages are fit to show users and never carry internals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong email or password, or an account that cannot log in. Identical for
    /// unknown and known accounts (S3).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The password was right but the email address is not verified yet.
    #[error("verify your email address before logging in")]
    EmailNotVerified,
    /// Too many failed attempts for this account (S6). `retry_after` is `None`
    /// when only a password reset unlocks it.
    #[error("{}", locked_message(*.retry_after))]
    Locked {
        /// How long until another attempt is allowed.
        retry_after: Option<Duration>,
    },
    /// Too many requests from this client (S6).
    #[error("too many requests; try again later")]
    RateLimited {
        /// How long until another request is allowed.
        retry_after: Duration,
    },
    /// The token is unknown, already used, revoked, or malformed.
    #[error("the link or token is invalid or has already been used")]
    TokenInvalid,
    /// The token expired.
    #[error("the link or token has expired; request a new one")]
    TokenExpired,
    /// The new password breaks a policy rule.
    #[error("{0}")]
    WeakPassword(#[source] PolicyViolation),
    /// The email address is not valid.
    #[error("{0}")]
    InvalidEmail(#[source] InvalidEmail),
    /// The application refused a registration's profile
    /// ([`crate::hooks::LifecycleHooks::check_profile`]).
    #[error("{0}")]
    InvalidProfile(#[source] crate::hooks::ProfileRejected),
    /// The email address is registered (only when enumeration protection is off).
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// No valid session.
    #[error("authentication required")]
    Unauthenticated,
    /// A second-factor code (TOTP or recovery code) was wrong, already used,
    /// or there was nothing to confirm (S15).
    #[error("the code is invalid or has already been used")]
    InvalidCode,
    /// Two-step sign-in is already on; turn it off first to enrol again.
    #[error("two-step sign-in is already on")]
    SecondFactorAlreadyEnabled,
    /// Two-step sign-in is not on.
    #[error("two-step sign-in is not on")]
    SecondFactorNotEnabled,
    /// A sensitive operation needs a recent sign-in or the current password
    /// (S14).
    #[error("confirm your password to continue")]
    ReauthenticationRequired,
    /// Hashing is saturated or a store is unreachable (S13).
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable {
        /// How long clients should wait.
        retry_after: Duration,
        /// What was unavailable, for the log.
        #[source]
        source: Option<BoxError>,
    },
    /// A bug or an unexpected backend failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

fn locked_message(retry_after: Option<Duration>) -> &'static str {
    match retry_after {
        Some(_) => "too many failed attempts; try again later",
        None => "too many failed attempts; reset your password to continue",
    }
}

impl AuthError {
    /// The stable machine-readable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::EmailNotVerified => "email_not_verified",
            Self::Locked { .. } => "locked",
            Self::RateLimited { .. } => "rate_limited",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::WeakPassword(_) => "weak_password",
            Self::InvalidEmail(_) => "invalid_email",
            Self::InvalidProfile(_) => "invalid_profile",
            Self::EmailTaken => "email_taken",
            Self::Unauthenticated => "unauthenticated",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::InvalidCode => "invalid_code",
            Self::SecondFactorAlreadyEnabled => "second_factor_already_enabled",
            Self::SecondFactorNotEnabled => "second_factor_not_enabled",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// How long the client should wait before retrying, where that applies.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Locked { retry_after } => *retry_after,
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    pub(crate) fn internal(err: impl Into<BoxError>) -> Self {
        Self::Internal(err.into())
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(source) => Self::Unavailable {
                retry_after: UNAVAILABLE_RETRY_AFTER,
                source: Some(source),
            },
            other => Self::internal(other),
        }
    }
}

impl From<HashError> for AuthError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Unavailable => Self::Unavailable {
                retry_after: UNAVAILABLE_RETRY_AFTER,
                source: Some(Box::new(HashError::Unavailable)),
            },
            other => Self::internal(other),
        }
    }
}

impl From<PolicyViolation> for AuthError {
    fn from(v: PolicyViolation) -> Self {
        Self::WeakPassword(v)
    }
}

impl From<InvalidEmail> for AuthError {
    fn from(e: InvalidEmail) -> Self {
        Self::InvalidEmail(e)
    }
}

/// A setting refused when it is built, so that a bad configuration fails at
/// start-up, never at request time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Weaker than every OWASP row.
    #[error(
        "argon2id m={m_cost} KiB, t={t_cost}, p={p_cost} is below the OWASP minimum \
         (m=19456,t=2 or an equal-strength row)"
    )]
    WeakParams {
        /// Memory cost in KiB.
        m_cost: u32,
        /// Passes.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
    /// argon2 itself refuses the parameters.
    #[error("invalid argon2 parameters")]
    InvalidParams(#[source] argon2::Error),
    /// A pepper key id that is empty, too long or not plain ASCII.
    #[error("pepper key id {id:?} must be 1 to 8 ASCII letters, digits, '-' or '_'")]
    InvalidKeyId {
        /// The refused id.
        id: String,
    },
    /// A pepper secret shorter than [`crate::password::MIN_PEPPER_LEN`].
    #[error("pepper key {id:?} is {len} bytes; at least 32 are required")]
    PepperTooShort {
        /// The key's id.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Two pepper keys share an id.
    #[error("pepper key id {id:?} is used twice")]
    DuplicateKeyId {
        /// The id.
        id: String,
    },
    /// A password policy bound out of range.
    #[error("password policy: {0}")]
    PolicyRange(&'static str),
    /// `max_concurrent(0)`.
    #[error("the hasher needs at least one permit")]
    ZeroConcurrency,
    /// The operating system refused to start the hashing worker threads.
    #[error("the hashing worker threads could not be started")]
    Workers(#[source] std::io::Error),
    /// A token secret key shorter than 32 bytes.
    #[error("the secret key is {len} bytes; at least 32 are required")]
    SecretKeyTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Randomness,
    /// An engine setting out of range; the message names it.
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
    /// The builder lacks a component.
    #[error("the engine needs a {0}")]
    Missing(&'static str),
    /// The engine was built outside a tokio runtime (its mail outbox runs as a task).
    #[error("the engine must be built inside a tokio runtime")]
    NoRuntime,
}
