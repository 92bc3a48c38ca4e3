//! Lifecycle hooks: how an embedding application keeps its own rows (a
//! profile, a tenant membership, ...) in step with the library's users.
//!
//! Each hook runs after the change it reports is stored, in the task that
//! made it: a hook failure is logged with the request id and never undoes
//! or fails the change, so hooks should be idempotent and quick. Registration
//! with enumeration protection (S3) creates the account off the request path,
//! and its `registered` hook runs there too.

use std::fmt;

use async_trait::async_trait;

use crate::error::BoxError;
use crate::store::{SessionRecord, User, UserId};

/// An application's own data sent with a registration: one JSON object, kept
/// as text for the hooks to parse into the application's own type.
/// [`LifecycleHooks::check_profile`] accepts or refuses it before anything is
/// stored or hashed. `Debug` shows only its size: it may hold personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile(String);

impl Profile {
    /// A profile from its JSON text.
    #[must_use]
    pub fn from_json(json: impl Into<String>) -> Self {
        Self(json.into())
    }

    /// The JSON text.
    #[must_use]
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Profile({} bytes)", self.0.len())
    }
}

/// Why a registration's profile was refused; its message is shown to the
/// client (422 `invalid_profile`), so it must not echo secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProfileRejected(String);

impl ProfileRejected {
    /// A refusal with a message fit to show the user.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// What an application hears of its users' lifecycle. Every method has a
/// default that does nothing, except [`Self::check_profile`], which refuses
/// every profile, so a service that takes none never drops one silently.
///
/// ```
/// use async_trait::async_trait;
/// use auth_core::hooks::{LifecycleHooks, Profile, ProfileRejected};
/// use auth_core::store::User;
///
/// /// Creates the application's own row for each new account.
/// struct Profiles;
///
/// #[async_trait]
/// impl LifecycleHooks for Profiles {
///     fn check_profile(&self, profile: &Profile) -> Result<(), ProfileRejected> {
///         // An application parses it into its own type (serde_json) here.
///         if profile.as_json().contains("\"display_name\"") {
///             Ok(())
///         } else {
///             Err(ProfileRejected::new("display_name is required"))
///         }
///     }
///
///     async fn registered(
///         &self,
///         user: &User,
///         profile: Option<&Profile>,
///     ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///         // INSERT INTO app_profiles (user_id, ...) VALUES (user.id, ...)
///         let _ = (user.id, profile);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait LifecycleHooks: Send + Sync {
    /// Accepts or refuses a registration's profile, on the request path,
    /// before the password is hashed or anything stored; a refusal answers
    /// [`crate::AuthError::InvalidProfile`]. It must not depend on whether
    /// the address is registered (S3). Default: every profile is refused.
    ///
    /// # Errors
    /// The refusal, with a message for the client.
    fn check_profile(&self, profile: &Profile) -> Result<(), ProfileRejected> {
        let _ = profile;
        Err(ProfileRejected::new("this service takes no profile"))
    }

    /// An account was created, with the profile its registration carried.
    ///
    /// # Errors
    /// Any; logged, the account stays.
    async fn registered(&self, user: &User, profile: Option<&Profile>) -> Result<(), BoxError> {
        let _ = (user, profile);
        Ok(())
    }

    /// The user verified their email address.
    ///
    /// # Errors
    /// Any; logged.
    async fn email_verified(&self, user: &User) -> Result<(), BoxError> {
        let _ = user;
        Ok(())
    }

    /// The user signed in: a session was created ([`crate::Auth::sign_in`]).
    ///
    /// # Errors
    /// Any; logged, the session stays.
    async fn signed_in(&self, user: &User, session: &SessionRecord) -> Result<(), BoxError> {
        let _ = (user, session);
        Ok(())
    }

    /// The user's password was changed or reset.
    ///
    /// # Errors
    /// Any; logged.
    async fn password_changed(&self, user: &User) -> Result<(), BoxError> {
        let _ = user;
        Ok(())
    }

    /// The account was deleted ([`crate::Auth::delete_user`], or the purge
    /// of accounts never verified).
    ///
    /// # Errors
    /// Any; logged.
    async fn user_deleted(&self, user: UserId) -> Result<(), BoxError> {
        let _ = user;
        Ok(())
    }
}

/// The hooks of an engine built without any: each does nothing (and every
/// profile is refused).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl LifecycleHooks for NoHooks {}
