//! Secrets sealed at rest (S15): XChaCha20-Poly1305 under a key derived from
//! the server key, with a random 192-bit nonce per sealing and the owner and
//! purpose as associated data, so a sealed secret copied to another user's
//! row, or read as another kind of secret, does not open.
//!
//! The key id recorded beside each sealed secret names the server key that
//! sealed it: rotating `SECRET_KEY` makes old secrets unreadable (their users
//! enrol again), and the id turns that into a clear error instead of a
//! silent authentication failure.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::store::{SealedSecret, UserId};
use crate::token::SecretKey;

const NONCE_BYTES: usize = 24;

/// Why a sealed secret did not open.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    /// Sealed under another server key (rotated), or for another user or use.
    #[error("sealed under key {found}, not the current key {current}")]
    OtherKey { found: String, current: String },
    /// The ciphertext was altered, or belongs to another user or purpose.
    #[error("a sealed secret failed authentication")]
    Forged,
    /// The CSPRNG failed.
    #[error("no randomness for a nonce")]
    Randomness,
}

/// Seals and opens secrets of one purpose.
#[derive(Clone)]
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    key_id: String,
    purpose: &'static str,
}

impl Sealer {
    /// A sealer for `purpose` under the server key.
    pub(crate) fn new(key: &SecretKey, purpose: &'static str) -> Self {
        let derived = key.derive(&format!("seal:{purpose}"));
        let id = key.derive("seal-key-id");
        let key_id = id.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(*derived)),
            key_id,
            purpose,
        }
    }

    fn aad(&self, user: UserId) -> Vec<u8> {
        let mut aad = self.purpose.as_bytes().to_vec();
        aad.push(0);
        aad.extend_from_slice(user.0.as_bytes());
        aad
    }

    /// Seals `secret` for `user`.
    pub(crate) fn seal(&self, user: UserId, secret: &[u8]) -> Result<SealedSecret, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Randomness)?;
        let aad = self.aad(user);
        let payload = Payload {
            msg: secret,
            aad: &aad,
        };
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Forged)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(SealedSecret {
            key_id: self.key_id.clone(),
            sealed,
        })
    }

    /// Opens a secret sealed for `user`.
    pub(crate) fn open(
        &self,
        user: UserId,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.key_id != self.key_id {
            return Err(SealError::OtherKey {
                found: sealed.key_id.clone(),
                current: self.key_id.clone(),
            });
        }
        let (nonce, ciphertext) = sealed
            .sealed
            .split_at_checked(NONCE_BYTES)
            .ok_or(SealError::Forged)?;
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Forged)?;
        let aad = self.aad(user);
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        self.cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| SealError::Forged)
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::new([n; 32]).unwrap()
    }

    #[test]
    fn s15_sealed_secrets_open_only_for_their_user_purpose_and_key() {
        let sealer = Sealer::new(&key(1), "totp");
        let (alice, bob) = (UserId::new_random(), UserId::new_random());
        let sealed = sealer.seal(alice, b"twenty bytes secret!").unwrap();
        assert!(
            !sealed
                .sealed
                .windows(20)
                .any(|w| w == b"twenty bytes secret!"),
            "no plaintext at rest"
        );
        assert_eq!(
            &*sealer.open(alice, &sealed).unwrap(),
            b"twenty bytes secret!"
        );
        assert!(matches!(sealer.open(bob, &sealed), Err(SealError::Forged)));
        let other_use = Sealer::new(&key(1), "other");
        assert!(matches!(
            other_use.open(alice, &sealed),
            Err(SealError::Forged)
        ));
        let rotated = Sealer::new(&key(2), "totp");
        assert!(matches!(
            rotated.open(alice, &sealed),
            Err(SealError::OtherKey { .. })
        ));
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.sealed.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            sealer.open(alice, &tampered),
            Err(SealError::Forged)
        ));
        let again = sealer.seal(alice, b"twenty bytes secret!").unwrap();
        assert_ne!(again.sealed, sealed.sealed, "a fresh nonce each time");
    }
}
