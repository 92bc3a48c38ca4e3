//! Roles (placeholder until the role store lands).

use std::fmt;

/// A role name, validated: 1..=64 bytes of `[a-z0-9_.:-]`, starting with `[a-z0-9]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Role(String);

/// A role name that is not valid.
#[derive(Debug, thiserror::Error)]
#[error(
    "a role name is 1 to 64 characters of a-z, 0-9, '_', '.', ':' or '-', starting with a letter or digit"
)]
pub struct InvalidRole;

impl Role {
    /// Validates a role name.
    ///
    /// # Errors
    /// [`InvalidRole`].
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidRole> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
        if ok { Ok(Self(name)) } else { Err(InvalidRole) }
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
