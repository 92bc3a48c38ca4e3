//! Redacting newtypes for secrets (S10).
//!
//! None of these types implements `Display`, and their `Debug` output never
//! contains the secret, so a secret cannot reach a log line or an error message by
//! accident. Their memory is zeroed when they are dropped.

use std::fmt;

use zeroize::Zeroizing;

/// A password as the user typed it: not yet checked, not yet normalised.
///
/// ```
/// use auth_core::Password;
///
/// let pw = Password::new("correct horse battery staple");
/// assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
/// ```
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The password itself, for the code that checks and hashes it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A stored password hash: a PHC string (`$argon2id$...`) or an imported bcrypt hash.
///
/// A hash is not a secret in the sense a password is, but it is offline-crackable
/// material, so it stays out of logs and `Debug` output too.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(String);

impl PasswordHashString {
    /// Wraps a hash read from a store.
    pub fn new(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash, for the store that persists it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash, for the store that persists it.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The algorithm identifier is useful in diagnostics and reveals nothing.
        let algorithm = self.0.split('$').nth(1).unwrap_or("?");
        write!(f, "PasswordHashString(${algorithm}$<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_a_password_contains_no_secret() {
        let pw = Password::new("hunter2-is-my-secret");
        let printed = format!("{pw:?} {pw:#?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn debug_output_of_a_hash_shows_only_its_algorithm() {
        let h = PasswordHashString::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g");
        let printed = format!("{h:?}");
        assert_eq!(printed, "PasswordHashString($argon2id$<redacted>)");
    }
}
