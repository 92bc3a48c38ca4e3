use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{StoreError, UserId};
use crate::token::TokenHash;

/// What a challenge is for. A string, so that a sign-in method in another crate
/// (OpenID Connect state, WebAuthn ceremonies) names its own purposes; a
/// challenge is only ever taken for the purpose it was stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChallengePurpose(&'static str);

impl ChallengePurpose {
    /// The second step of a sign-in: a first factor passed, a second is due.
    pub const SECOND_FACTOR: Self = Self("second_factor");

    /// A purpose of a sign-in method's own: lowercase ASCII letters, digits and
    /// `_`, at most 32 bytes (it is stored as is).
    ///
    /// # Panics
    /// At compile time (in a `const`) or at once, when `name` breaks that rule.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        let mut rest = name.as_bytes();
        assert!(!rest.is_empty() && rest.len() <= 32, "purpose length");
        while let [b, tail @ ..] = rest {
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_',
                "purpose characters"
            );
            rest = tail;
        }
        Self(name)
    }

    /// Its stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ChallengePurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A short-lived, single-use challenge to store: a second-factor step, OAuth
/// state, a WebAuthn challenge. Only the keyed hash of its token is stored
/// (S4); the payload is opaque to the store.
#[derive(Clone)]
pub struct NewChallenge {
    /// The keyed hash of the challenge token handed to the client.
    pub hash: TokenHash,
    /// What it is for.
    pub purpose: ChallengePurpose,
    /// Whom it is bound to, when it is.
    pub user_id: Option<UserId>,
    /// What the method needs back when the challenge is taken.
    pub payload: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last instant at which it can be taken.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for NewChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewChallenge")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("payload_len", &self.payload.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A challenge taken from the store.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Whom it was bound to.
    pub user_id: Option<UserId>,
    /// Its payload, as stored.
    pub payload: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Its deadline.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("user_id", &self.user_id)
            .field("payload_len", &self.payload.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Short-lived single-use challenges of every sign-in method (DESIGN 6).
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores a challenge.
    ///
    /// # Errors
    /// Backend failures ([`StoreError::Conflict`] on a hash collision).
    async fn insert_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError>;

    /// Removes and returns the challenge with this hash if it was stored for
    /// `purpose` and `now <= expires_at`, atomically: of many concurrent calls,
    /// at most one gets it. A challenge of another purpose is left alone; an
    /// expired one is `None` (and may be deleted).
    ///
    /// # Errors
    /// Backend failures only.
    async fn take_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Challenge>, StoreError>;

    /// Deletes challenges past their deadline at `now`. Returns how many
    /// (backends with native expiry may answer 0).
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
