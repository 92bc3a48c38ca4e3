//! User roles: a simple table of (user, role) pairs an application's
//! authorization reads.

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{StoreError, UserId};

/// The most bytes a role name has.
const MAX_LEN: usize = 64;

/// A role name, validated: 1..=64 bytes of `[a-z0-9_.:-]`, starting with
/// `[a-z0-9]` (`admin`, `billing:read`, `org.42.owner`).
///
/// ```
/// use auth_core::store::Role;
///
/// assert_eq!(Role::new("billing:read").unwrap().as_str(), "billing:read");
/// assert!(Role::new("Admin").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Role(String);

/// A role name outside [`Role`]'s rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid role name: use 1 to 64 characters of a-z, 0-9, _, ., : and -, \
     starting with a letter or digit"
)]
pub struct InvalidRole;

impl Role {
    /// Checks `name`.
    ///
    /// # Errors
    /// [`InvalidRole`] for a name outside the rules.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidRole> {
        let name = name.into();
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = (1..=MAX_LEN).contains(&name.len())
            && name.bytes().next().is_some_and(allowed)
            && name
                .bytes()
                .all(|b| allowed(b) || matches!(b, b'_' | b'.' | b':' | b'-'));
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidRole)
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The roles of each user. A role belongs to an existing user and goes when
/// the user is deleted.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Grants; Ok(true) when newly granted, Ok(false) when the user had it;
    /// [`StoreError::NotFound`] for an unknown user. Of concurrent grants of one
    /// role to one user, exactly one answers `true`.
    async fn grant_role(
        &self,
        user: UserId,
        role: &Role,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Revokes; Ok(true) when the user had it.
    async fn revoke_role(&self, user: UserId, role: &Role) -> Result<bool, StoreError>;

    /// The user's roles, sorted, no duplicates (empty for an unknown user).
    async fn user_roles(&self, user: UserId) -> Result<Vec<Role>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let longest = "a".repeat(64);
        for good in ["admin", "0", "billing:read", "org.42.owner-x_y", &longest] {
            assert_eq!(Role::new(good).unwrap().as_str(), good);
        }
        let too_long = "a".repeat(65);
        for bad in [
            "", "Admin", "_admin", ".a", ":a", "-a", "a b", "é", "a/b", &too_long,
        ] {
            assert_eq!(Role::new(bad), Err(InvalidRole), "{bad:?}");
        }
        let mut roles = [Role::new("b").unwrap(), Role::new("a").unwrap()];
        roles.sort();
        assert_eq!(roles[0].to_string(), "a");
    }
}
