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

/// A URL without what may be a credential, for `Debug` output and logs
/// (S10): the user info
/// (`smtps://user:pass@host`) and the query (`?password=...`) are replaced.
/// When an `@` follows the first `?` or `#`, a password may hold a raw `?` or
/// `#` (which URL parsers read differently), so everything after the scheme
/// is replaced: shown too little rather than a secret.
#[must_use]
pub fn redact_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (before_query, query) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    if query.contains('@') {
        return format!("{scheme}{REDACTED}");
    }
    let host_and_path = match before_query.rsplit_once('@') {
        Some((_, host_and_path)) => format!("{REDACTED}@{host_and_path}"),
        None => before_query.to_owned(),
    };
    let query = if query.is_empty() { "" } else { "?[redacted]" };
    format!("{scheme}{host_and_path}{query}")
}

#[cfg(test)]
mod url_tests {
    /// S10: user info and queries never show; what identifies the server does.
    #[test]
    fn s10_urls_lose_their_credentials() {
        for (url, shown) in [
            ("smtp://127.0.0.1:1025", "smtp://127.0.0.1:1025"),
            // A raw '/' in a password: the user info ends at the last '@'.
            (
                "postgres://app:pa/ss@db:5432/auth",
                "postgres://[redacted]@db:5432/auth",
            ),
            // A raw '?' in a password: nothing after the scheme is shown.
            ("redis://:pa?ss@cache:6379", "redis://[redacted]"),
            ("smtp://mailer:pa#ss@smtp.example.com", "smtp://[redacted]"),
            ("user:pass@host:25", "[redacted]@host:25"),
            (
                "postgresql:///auth?host=/run/postgresql",
                "postgresql:///auth?[redacted]",
            ),
        ] {
            assert_eq!(super::redact_url(url), shown, "{url}");
        }
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
