use async_trait::async_trait;
use time::OffsetDateTime;

use super::{StoreError, UserId};
use crate::token::{TokenHash, TokenPurpose};

/// A single-use token to store (S4).
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its keyed hash; the token itself is never stored.
    pub hash: TokenHash,
    /// What it is for ([`TokenPurpose::EmailVerification`] or
    /// [`TokenPurpose::PasswordReset`]).
    pub purpose: TokenPurpose,
    /// Whose it is.
    pub user_id: UserId,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last instant at which it is still valid.
    pub expires_at: OffsetDateTime,
}

/// What a token lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token is valid (and, from [`TokenStore::consume_token`], now used up).
    Valid(UserId),
    /// The token exists, unused, but `now` is past `expires_at`.
    Expired,
    /// No unused token of this purpose has this hash (never issued, used, or
    /// revoked).
    Invalid,
}

/// Single-use, purpose-bound, expiring tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a token.
    ///
    /// # Errors
    /// Backend failures ([`StoreError::Conflict`] on a hash collision).
    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError>;

    /// Atomically uses up the token if it is unused and `now <= expires_at`: of
    /// many concurrent calls with one token, exactly one gets `Valid`.
    ///
    /// # Errors
    /// Backend failures only.
    async fn consume_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenCheck, StoreError>;

    /// What [`Self::consume_token`] would answer at `now`, without using the token
    /// up (the engine checks a new password before it spends a reset token).
    ///
    /// # Errors
    /// Backend failures only.
    async fn peek_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenCheck, StoreError>;

    /// Marks every unused token of the user and purpose as used, so older tokens
    /// die when a newer one is issued or the password changes. Returns how many.
    ///
    /// # Errors
    /// Backend failures only.
    async fn revoke_tokens(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Deletes tokens that expired or were used before `before`. Returns how many.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_expired_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
