//! What a sign-in reads of an account, in one call where the backend keeps
//! users and credentials together.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::{PasswordCredential, PasswordStore, StoreError, TotpStore, User, UserId, UserStore};

/// A user with what a sign-in checks of their credentials: the password, and
/// whether a second factor is on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// The user.
    pub user: User,
    /// Their password, if they have one.
    pub password: Option<PasswordCredential>,
    /// Whether a confirmed second factor (TOTP) protects the account; a
    /// pending enrolment is not one.
    pub second_factor: bool,
}

impl Account {
    /// An account record.
    #[must_use]
    pub fn new(user: User, password: Option<PasswordCredential>, second_factor: bool) -> Self {
        Self {
            user,
            password,
            second_factor,
        }
    }
}

/// Reads [`Account`]s: the user, their password and their second factor at
/// once, as a login reads them before its hash and a sign-in again after its
/// session is stored (S5).
///
/// A backend that keeps users and credentials together answers each call with
/// one query; the engine reads a deployment that keeps them apart through
/// [`UserStore`], [`PasswordStore`] and [`TotpStore`] one by one instead
/// ([`SeparateAccounts`]).
#[async_trait]
pub trait AccountReader: Send + Sync {
    /// The account with this normalised email.
    ///
    /// An unknown address must cost what a known one does (S3): backends
    /// answer both with the same query.
    ///
    /// # Errors
    /// Backend failures only; a missing user is `Ok(None)`.
    async fn account_by_email(&self, email_normalized: &str)
    -> Result<Option<Account>, StoreError>;

    /// The account with this id.
    ///
    /// # Errors
    /// Backend failures only; a missing user is `Ok(None)`.
    async fn account(&self, id: UserId) -> Result<Option<Account>, StoreError>;
}

/// [`AccountReader`] over the three stores that hold an account's parts: a
/// user read, then a password read and a TOTP read. For an unknown address
/// the two credential reads still run (for a nil id), so known and unknown
/// addresses cost the same round trips (S3).
#[derive(Clone)]
pub struct SeparateAccounts {
    users: Arc<dyn UserStore>,
    passwords: Arc<dyn PasswordStore>,
    totp: Arc<dyn TotpStore>,
}

impl std::fmt::Debug for SeparateAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeparateAccounts").finish_non_exhaustive()
    }
}

impl SeparateAccounts {
    /// Accounts read from these stores.
    #[must_use]
    pub fn new(
        users: Arc<dyn UserStore>,
        passwords: Arc<dyn PasswordStore>,
        totp: Arc<dyn TotpStore>,
    ) -> Self {
        Self {
            users,
            passwords,
            totp,
        }
    }

    /// The credentials of `user`, read for a nil id when there is none.
    async fn complete(&self, user: Option<User>) -> Result<Option<Account>, StoreError> {
        let id = user.as_ref().map_or(UserId(Uuid::nil()), |u| u.id);
        let password = self.passwords.password(id).await?;
        let second_factor = self.totp.totp(id).await?.is_some_and(|t| t.is_confirmed());
        Ok(user.map(|user| Account::new(user, password, second_factor)))
    }
}

#[async_trait]
impl AccountReader for SeparateAccounts {
    async fn account_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<Account>, StoreError> {
        let user = self.users.user_by_email(email_normalized).await?;
        self.complete(user).await
    }

    async fn account(&self, id: UserId) -> Result<Option<Account>, StoreError> {
        let user = self.users.user_by_id(id).await?;
        self.complete(user).await
    }
}
