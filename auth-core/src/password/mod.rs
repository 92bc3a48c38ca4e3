//! Password hashing and policy (S1, S2, S3, S13).
//!
//! - [`PasswordPolicy`] checks the byte and length caps on the raw input, applies
//!   NFKC, and for new passwords refuses short, common and context-word ones.
//! - [`PasswordHasher`] hashes and verifies with argon2id ([`HashParams`], OWASP by
//!   default) on worker threads of its own with bounded concurrency and reused memory, an
//!   optional [`Pepper`] with rotating key ids, and imported bcrypt hashes (feature
//!   `bcrypt`). A [`HashBackend`] computes the tags: the `argon2` crate (`RustCrypto`),
//!   or `argon2-rust` with the `fast-argon2` feature; both give the same hashes.
//!
//! The hasher only accepts a [`NormalizedPassword`], which only the policy makes,
//! so no password reaches argon2 without passing the caps and normalisation.

mod argon;
mod backend;
mod blocklist;
mod hasher;
mod legacy;
mod memory;
mod params;
mod pepper;
mod policy;
mod workers;

#[cfg(test)]
mod properties;

pub use crate::error::ConfigError;
pub use backend::HashBackend;
pub use hasher::{
    DEFAULT_QUEUE_PER_PERMIT, HashPlace, HasherMetrics, PasswordHasher, PasswordHasherBuilder,
};
pub use params::{HashParams, OUTPUT_LEN, OWASP_MINIMUMS, SALT_LEN};
pub use pepper::{MAX_KEY_ID_LEN, MIN_PEPPER_LEN, Pepper, PepperKey};
pub use policy::{
    ContextKind, ContextWords, DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, MAX_BYTES_LIMIT,
    NormalizedPassword, PasswordPolicy, PasswordPolicyBuilder, PolicyViolation,
};

/// A hashing or verification call that could not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Every hashing permit is busy and the wait queue is full: retry shortly (503).
    #[error("password hashing is at capacity; retry shortly")]
    Unavailable,
    /// The stored value is not a hash this build can verify.
    #[error("the stored password hash is malformed or of an unsupported kind")]
    MalformedHash,
    /// The stored hash names a pepper key that is not configured.
    #[error("the stored password hash names pepper key {key_id:?}, which is not configured")]
    UnknownPepperKey {
        /// The key id recorded in the hash.
        key_id: String,
    },
    /// argon2 refused its inputs.
    #[error("argon2 failed")]
    Argon2(#[source] argon2::Error),
    /// The `argon2-rust` backend ([`HashBackend`]`::Fast`) refused its inputs or
    /// could not map its memory.
    #[cfg(feature = "fast-argon2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fast-argon2")))]
    #[error("argon2 failed")]
    FastArgon2(#[source] argon2_rust::Error),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Randomness,
    /// The hashing job panicked.
    #[error("the hashing task failed")]
    Task,
}
