//! Credentials, kept apart from identity ([`super::User`]): a user may have a
//! password, a TOTP secret and recovery codes, or none of them (a user who
//! signs in through another method). One small trait per kind, so a backend
//! implements what it stores.

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{StoreError, UserId};
use crate::PasswordHashString;
use crate::token::TokenHash;

/// A user's password credential. `Debug` shows no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredential {
    /// The PHC string.
    pub hash: PasswordHashString,
    /// When the user last chose it (a transparent rehash does not move it).
    pub changed_at: OffsetDateTime,
}

/// Password hashes, by user.
#[async_trait]
pub trait PasswordStore: Send + Sync {
    /// The user's password, if they have one.
    ///
    /// # Errors
    /// Backend failures only.
    async fn password(&self, user: UserId) -> Result<Option<PasswordCredential>, StoreError>;

    /// Sets the password the user chose (creates it if they had none);
    /// `changed_at` becomes `at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    async fn set_password(
        &self,
        user: UserId,
        hash: &PasswordHashString,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// [`PasswordStore::set_password`], only if the hash is still `expected`
    /// (the one the user's current password was checked against): returns
    /// whether it was set. A change whose check went stale (a reset or another
    /// change landed since) must not overwrite the newer password (S5).
    ///
    /// # Errors
    /// Backend failures only; an unknown user or one without a password is
    /// `Ok(false)`.
    async fn set_password_if(
        &self,
        user: UserId,
        expected: &PasswordHashString,
        hash: &PasswordHashString,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Replaces the hash with a rehash of the same password (S2) only if it is
    /// still `old`, so a rehash never undoes a concurrent change. Returns
    /// whether it replaced it; `changed_at` does not move.
    ///
    /// # Errors
    /// Backend failures only.
    async fn replace_password_hash(
        &self,
        user: UserId,
        old: &PasswordHashString,
        new: &PasswordHashString,
    ) -> Result<bool, StoreError>;
}

/// A secret sealed with an AEAD under a key derived from the server key (S15):
/// unreadable in the store without that key. `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Which key sealed it, so keys can rotate.
    pub key_id: String,
    /// Nonce and ciphertext (with its tag), as the engine wrote them.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A user's TOTP credential (S15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCredential {
    /// The shared secret, sealed.
    pub secret: SealedSecret,
    /// When enrolment started.
    pub created_at: OffsetDateTime,
    /// When the user proved their authenticator has it; until then the
    /// credential is pending and signs nobody in.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The last time step whose code was accepted: a code is accepted once.
    pub last_step: Option<i64>,
}

impl TotpCredential {
    /// Whether enrolment was confirmed: only then is it a second factor.
    #[must_use]
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// TOTP secrets, by user: at most one per user, pending or confirmed.
#[async_trait]
pub trait TotpStore: Send + Sync {
    /// The user's TOTP credential, pending or confirmed.
    ///
    /// # Errors
    /// Backend failures only.
    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError>;

    /// Stores a pending secret, replacing a pending one. Returns false, and
    /// changes nothing, when the user has a confirmed one.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user (backends with foreign keys).
    async fn put_pending_totp(
        &self,
        user: UserId,
        secret: &SealedSecret,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Confirms the pending secret, only if it is still `secret` (the one the
    /// code was checked against), recording `step` as accepted. Returns
    /// whether it did.
    ///
    /// # Errors
    /// Backend failures only.
    async fn confirm_totp(
        &self,
        user: UserId,
        secret: &SealedSecret,
        step: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records `step` as accepted, only for a confirmed secret and a step
    /// later than the last accepted one, atomically: of concurrent uses of one
    /// code, exactly one is accepted (S15).
    ///
    /// # Errors
    /// Backend failures only.
    async fn accept_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError>;

    /// Removes the user's TOTP credential. Returns whether there was one.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_totp(&self, user: UserId) -> Result<bool, StoreError>;
}

/// Single-use recovery codes, stored as keyed hashes (S15).
#[async_trait]
pub trait RecoveryCodeStore: Send + Sync {
    /// Replaces every code of the user with `codes` (none: the user has no
    /// codes left).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user (backends with foreign keys).
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Uses up the code with this hash, atomically: of concurrent uses of one
    /// code, exactly one gets `true`.
    ///
    /// # Errors
    /// Backend failures only.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// How many unused codes the user has.
    ///
    /// # Errors
    /// Backend failures only.
    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError>;
}
