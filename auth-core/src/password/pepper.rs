//! Pepper keys: a server-side secret passed to argon2 as its secret input (S1).
//!
//! The id of the key that made a hash is recorded in the hash's PHC string as the
//! standard argon2 `keyid` parameter, so keys can rotate: new hashes use the current
//! key, old hashes still verify with the key they name, and
//! [`PasswordHasher::needs_rehash`](super::PasswordHasher::needs_rehash) reports
//! them until the next successful login rewrites them.

use std::fmt;

use zeroize::Zeroizing;

use super::ConfigError;

/// Smallest pepper secret accepted, in bytes.
pub const MIN_PEPPER_LEN: usize = 32;

/// Longest key id, in bytes (argon2's `keyid` limit).
pub const MAX_KEY_ID_LEN: usize = argon2::Params::MAX_KEYID_LEN;

/// One pepper secret and its id.
///
/// The id is 1 to 8 ASCII letters, digits, `-` or `_` (for example `"2026a"`).
/// `Debug` shows the id only.
pub struct PepperKey {
    id: String,
    secret: Zeroizing<Vec<u8>>,
}

impl PepperKey {
    /// A key with its id.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKeyId`] for a malformed id and
    /// [`ConfigError::PepperTooShort`] for a secret under [`MIN_PEPPER_LEN`] bytes.
    pub fn new(id: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let id = id.into();
        let secret = Zeroizing::new(secret.into());
        let id_ok = !id.is_empty()
            && id.len() <= MAX_KEY_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ConfigError::InvalidKeyId { id });
        }
        if secret.len() < MIN_PEPPER_LEN {
            return Err(ConfigError::PepperTooShort {
                id,
                len: secret.len(),
            });
        }
        Ok(Self { id, secret })
    }

    /// The key's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl fmt::Debug for PepperKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PepperKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The current pepper key plus older keys that still verify existing hashes.
///
/// ```
/// use auth_core::password::{Pepper, PepperKey};
///
/// let pepper = Pepper::new(PepperKey::new("k2", [7u8; 32])?)
///     .with_previous(PepperKey::new("k1", [9u8; 32])?)?;
/// assert_eq!(pepper.current().id(), "k2");
/// # Ok::<(), auth_core::password::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Pepper {
    current: PepperKey,
    previous: Vec<PepperKey>,
}

impl Pepper {
    /// A pepper with one key, used for new hashes.
    #[must_use]
    pub fn new(current: PepperKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds an older key, kept only to verify hashes made with it.
    ///
    /// # Errors
    /// [`ConfigError::DuplicateKeyId`] when the id is already taken.
    pub fn with_previous(mut self, key: PepperKey) -> Result<Self, ConfigError> {
        if self.keys().any(|k| k.id == key.id) {
            return Err(ConfigError::DuplicateKeyId { id: key.id });
        }
        self.previous.push(key);
        Ok(self)
    }

    /// The key new hashes are made with.
    #[must_use]
    pub fn current(&self) -> &PepperKey {
        &self.current
    }

    /// The key with this id, current or previous.
    pub(crate) fn find(&self, id: &[u8]) -> Option<&PepperKey> {
        self.keys().find(|k| k.id.as_bytes() == id)
    }

    fn keys(&self) -> impl Iterator<Item = &PepperKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_short_and_plain() {
        assert!(PepperKey::new("k1", [0u8; 32]).is_ok());
        assert!(PepperKey::new("2026-a_b", [0u8; 32]).is_ok());
        for bad in ["", "123456789", "k 1", "k$1", "ключ"] {
            assert!(
                matches!(
                    PepperKey::new(bad, [0u8; 32]),
                    Err(ConfigError::InvalidKeyId { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            PepperKey::new("k1", [0u8; 31]),
            Err(ConfigError::PepperTooShort { len: 31, .. })
        ));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let pepper = Pepper::new(PepperKey::new("k1", [1u8; 32]).unwrap());
        let dup = pepper.with_previous(PepperKey::new("k1", [2u8; 32]).unwrap());
        assert!(matches!(dup, Err(ConfigError::DuplicateKeyId { .. })));
    }

    #[test]
    fn debug_shows_the_id_and_never_the_secret() {
        let key = PepperKey::new("k1", b"super-secret-pepper-value-0123456789".to_vec()).unwrap();
        let printed = format!("{:?}", Pepper::new(key));
        assert!(printed.contains("k1"));
        assert!(!printed.contains("super-secret"), "{printed}");
        assert!(!printed.contains("115, 117"), "{printed}"); // no byte dump either
    }
}
