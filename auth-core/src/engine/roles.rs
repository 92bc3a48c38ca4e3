//! Roles (placeholder until the role store lands).

use super::Auth;
use crate::error::AuthError;
use crate::store::{Role, UserId};

impl Auth {
    /// The user's roles.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    pub async fn roles(&self, _user: UserId) -> Result<Vec<Role>, AuthError> {
        Ok(Vec::new())
    }
}
