//! Opaque tokens and session ids (S4, S5).
//!
//! A token is 32 bytes from the operating system's CSPRNG, given to the user as 43
//! characters of unpadded base64url. Stores only ever see its [`TokenHash`]:
//! HMAC-SHA256 under the server's [`SecretKey`] over a purpose tag and the token's
//! bytes, so a token of one purpose can never be looked up as another, and a copy
//! of the database alone cannot produce valid tokens. Lookups compare hashes, never
//! the tokens themselves; a timing difference in the store's lookup reveals at
//! most a prefix of an HMAC the attacker cannot steer.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bytes of randomness in every token and session id.
pub const TOKEN_BYTES: usize = 32;
/// Length of a token's text form.
pub const TOKEN_CHARS: usize = 43;
/// Smallest server secret accepted, in bytes.
pub const MIN_SECRET_KEY_LEN: usize = 32;

/// What a token is for; part of its keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Proves control of an email address (emailed at registration).
    EmailVerification,
    /// Authorises one password reset (emailed on request).
    PasswordReset,
    /// Identifies a login session (cookie or bearer token).
    Session,
}

impl TokenPurpose {
    /// A stable name, used in storage and audit records.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::PasswordReset => "password_reset",
            Self::Session => "session",
        }
    }
}

/// The server's secret for keyed token hashes. At least 32 bytes; `Debug` hides it.
///
/// It keeps the HMAC state keyed once, not the key bytes, and clones it per hash.
#[derive(Clone)]
pub struct SecretKey(hmac::Hmac<sha2::Sha256>);

impl SecretKey {
    /// Wraps a secret.
    ///
    /// # Errors
    /// [`crate::ConfigError::SecretKeyTooShort`] under [`MIN_SECRET_KEY_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, crate::ConfigError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.len() < MIN_SECRET_KEY_LEN {
            return Err(crate::ConfigError::SecretKeyTooShort { len: bytes.len() });
        }
        let mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&bytes)
            .map_err(|_| crate::ConfigError::SecretKeyTooShort { len: bytes.len() })?;
        Ok(Self(mac))
    }

    /// A fresh random key, for tests and development servers that accept losing
    /// every token and session on restart.
    ///
    /// # Errors
    /// [`crate::ConfigError::Randomness`] if the system CSPRNG fails.
    pub fn generate() -> Result<Self, crate::ConfigError> {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut bytes).map_err(|_| crate::ConfigError::Randomness)?;
        Self::new(std::mem::take(&mut *bytes))
    }

    /// The keyed hash of a token for a purpose.
    pub(crate) fn hash(&self, purpose: TokenPurpose, token: &[u8; TOKEN_BYTES]) -> TokenHash {
        self.hash_tagged(purpose.as_str(), token)
    }

    /// The keyed hash of any secret under a domain tag (challenge tokens of a
    /// purpose, recovery codes): `HMAC(key, tag || 0 || data)`. Tags never
    /// contain a zero byte, so no two (tag, data) pairs share an input.
    pub(crate) fn hash_tagged(&self, tag: &str, data: &[u8]) -> TokenHash {
        let mut mac = self.0.clone();
        mac.update(tag.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        TokenHash(mac.finalize().into_bytes().into())
    }

    /// A 256-bit key for another use (sealing TOTP secrets), derived under a
    /// label that no token purpose uses.
    pub(crate) fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.hash_tagged(&format!("derive:{label}"), &[]).0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A token or session id as handed to the user. `Debug` hides it; it has no
/// `Display`. Put it in the email, cookie or response body with
/// [`Self::expose_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(Zeroizing<String>);

impl OpaqueToken {
    /// A fresh token and its raw bytes.
    pub(crate) fn generate() -> Result<(Self, [u8; TOKEN_BYTES]), getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok((Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes))), bytes))
    }

    /// Wraps a token received from a client (a cookie, a header, a request body).
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }

    /// The token's text.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The token's bytes, if it has the shape of a token we issue (43 base64url
    /// characters). Anything else is rejected without touching a store.
    pub(crate) fn decode(&self) -> Option<[u8; TOKEN_BYTES]> {
        if self.0.len() != TOKEN_CHARS {
            return None;
        }
        let mut out = [0u8; TOKEN_BYTES];
        let decoded = URL_SAFE_NO_PAD
            .decode_slice(self.0.as_bytes(), &mut out)
            .ok()?;
        (decoded == TOKEN_BYTES).then_some(out)
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(<redacted>)")
    }
}

/// The keyed hash under which a token is stored.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Consistent with the constant-time `PartialEq`: equal bytes, equal hashes.
        self.0.hash(state);
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s4_tokens_are_256_bit_base64url_and_unique() {
        let (a, bytes) = OpaqueToken::generate().unwrap();
        let (b, _) = OpaqueToken::generate().unwrap();
        assert_eq!(a.expose_secret().len(), TOKEN_CHARS);
        assert_ne!(a, b);
        assert_eq!(a.decode(), Some(bytes));
        assert!(
            a.expose_secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn s4_hashes_are_keyed_and_purpose_bound() {
        let key = SecretKey::new([1u8; 32]).unwrap();
        let other = SecretKey::new([2u8; 32]).unwrap();
        let t = [7u8; TOKEN_BYTES];
        let reset = key.hash(TokenPurpose::PasswordReset, &t);
        assert_eq!(reset, key.hash(TokenPurpose::PasswordReset, &t));
        assert_ne!(reset, key.hash(TokenPurpose::EmailVerification, &t));
        assert_ne!(reset, other.hash(TokenPurpose::PasswordReset, &t));
        assert_ne!(reset.0, t);
    }

    #[test]
    fn wrongly_shaped_tokens_do_not_decode() {
        for bad in [
            "",
            "short",
            &"a".repeat(42),
            &"a".repeat(44),
            &"!".repeat(43),
            &"a\0".repeat(22),
        ] {
            assert_eq!(OpaqueToken::new(bad).decode(), None, "{bad:?}");
        }
    }

    #[test]
    fn s10_secrets_are_redacted() {
        let (t, _) = OpaqueToken::generate().unwrap();
        let key = SecretKey::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        let printed = format!(
            "{t:?} {key:?} {:?}",
            key.hash(TokenPurpose::Session, &[0; 32])
        );
        assert!(!printed.contains(t.expose_secret()));
        assert!(!printed.contains("0123456789"));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SecretKey::new([0u8; 31]).is_err());
    }
}
