//! Verification of bcrypt hashes imported from another system (S2).
//!
//! bcrypt only reads the first 72 bytes of a password. Many implementations
//! silently ignore the rest, so `"A" * 72 + anything` verifies (Spring
//! CVE-2025-22228). We verify with `bcrypt::non_truncating_verify`: a password
//! of 72 bytes or more (71 plus bcrypt's NUL terminator fill its 72-byte input)
//! never matches a bcrypt hash. A user who chose such a
//! password in the old system cannot log in with it and resets it instead; that is
//! the price of never accepting a password we did not fully check. We never create
//! bcrypt hashes: everything we hash ourselves is argon2id, which reads the whole
//! password, and over-long input is refused by the policy's caps, never truncated.

/// Whether a stored hash is a bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
pub(crate) fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// Verifies a password against a bcrypt hash without truncating it.
#[cfg(feature = "bcrypt")]
pub(crate) fn verify(password: &[u8], stored: &str) -> Result<bool, super::HashError> {
    match bcrypt::non_truncating_verify(password, stored) {
        Ok(matches) => Ok(matches),
        Err(bcrypt::BcryptError::Truncation(_)) => Ok(false),
        Err(_) => Err(super::HashError::MalformedHash),
    }
}

/// Without the `bcrypt` feature, imported bcrypt hashes cannot be verified.
#[cfg(not(feature = "bcrypt"))]
pub(crate) fn verify(_password: &[u8], _stored: &str) -> Result<bool, super::HashError> {
    Err(super::HashError::MalformedHash)
}

#[cfg(all(test, feature = "bcrypt"))]
mod tests {
    use super::*;

    /// The OpenBSD and Openwall test vector.
    #[test]
    fn published_vector_verifies() {
        let stored = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert!(is_bcrypt(stored));
        assert!(verify(b"U*U", stored).unwrap());
        assert!(!verify(b"U*V", stored).unwrap());
    }

    #[test]
    fn s1_no_truncation_at_72_bytes() {
        let long = "x".repeat(100);
        // A truncating system hashed a 100-byte password: only 72 bytes counted.
        let stored = bcrypt::hash(&long, 4).unwrap();
        assert!(!verify(long.as_bytes(), &stored).unwrap());
        assert!(!verify(&long.as_bytes()[..72], &stored).unwrap());
        // Up to 71 bytes (72 with bcrypt's NUL terminator) bcrypt reads everything.
        let fits = &long[..71];
        assert!(verify(fits.as_bytes(), &bcrypt::hash(fits, 4).unwrap()).unwrap());
    }
}
