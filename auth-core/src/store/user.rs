use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use crate::{EmailAddress, PasswordHashString};

/// A user's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl UserId {
    /// A fresh random id.
    #[must_use]
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The id to give it.
    pub id: UserId,
    /// Its email address; the normalised form must be unique.
    pub email: EmailAddress,
    /// Its password hash, stored with the user in the same step (its
    /// `changed_at` is `created_at`); `None` for a user without a password.
    pub password_hash: Option<PasswordHashString>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A stored user: identity and account state. Credentials live apart
/// ([`super::PasswordStore`] and the other credential stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Email address, as given and normalised.
    pub email: EmailAddress,
    /// When the address was verified.
    pub email_verified_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change to the record.
    pub updated_at: OffsetDateTime,
    /// When the account was disabled by an administrator.
    pub disabled_at: Option<OffsetDateTime>,
    /// When the account reached the hard lockout limit; only a password reset (or
    /// an administrator's unlock) clears it (S6).
    pub reset_required_at: Option<OffsetDateTime>,
}

/// Users, keyed by id and by normalised email.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user, and its password credential when `user.password_hash`
    /// is given, in one step.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the normalised email is taken (atomically: of
    /// many concurrent creations of one email, exactly one succeeds).
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;

    /// The user with this id.
    ///
    /// # Errors
    /// Backend failures only; a missing user is `Ok(None)`.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user with this normalised email.
    ///
    /// # Errors
    /// Backend failures only; a missing user is `Ok(None)`.
    async fn user_by_email(&self, email_normalized: &str) -> Result<Option<User>, StoreError>;

    /// Marks the email verified (keeps the first verification time).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    async fn mark_email_verified(&self, id: UserId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Sets or clears `disabled_at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Sets or clears `reset_required_at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    async fn set_reset_required(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Deletes every account whose email was never verified and that was created
    /// before `created_before`, with everything this store keeps of it (as
    /// [`Self::delete_user`]), so an unverified registration cannot hold an
    /// address for ever (S3). Returns their ids.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_unverified_users(
        &self,
        created_before: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError>;

    /// Deletes the account and everything this store keeps of it
    /// (credentials, tokens, sessions, challenges, roles); its address is
    /// free again. Returns whether it existed. Audit events stay.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;
}
