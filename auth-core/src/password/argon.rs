//! argon2id hashing and verification over a worker's reused memory, the PHC string
//! format, and the `RustCrypto` backend's tag computation.
//!
//! This is the one code path for PHC strings, parameters, salts and the pepper,
//! whichever [`HashBackend`](super::HashBackend) computes the tag (through
//! [`Workspace::compute`]). Everything here is synchronous and CPU-bound;
//! [`super::PasswordHasher`] runs it on its worker threads.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::HashError;
use super::backend::Workspace;
use super::params::{OUTPUT_LEN, SALT_LEN};

/// An argon2id hash read from a PHC string.
pub(crate) struct StoredArgon2 {
    pub(crate) params: Params,
    pub(crate) salt: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

impl StoredArgon2 {
    /// Parses `$argon2id$v=19$m=..,t=..,p=..[,keyid=..]$salt$tag`. Other argon2
    /// variants and versions are refused: this library never wrote them.
    pub(crate) fn parse(phc: &str) -> Result<Self, HashError> {
        let hash = PasswordHash::new(phc).map_err(|_| HashError::MalformedHash)?;
        if hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
        {
            return Err(HashError::MalformedHash);
        }
        let params = Params::try_from(&hash).map_err(|_| HashError::MalformedHash)?;
        let (Some(salt), Some(tag)) = (hash.salt, hash.hash) else {
            return Err(HashError::MalformedHash);
        };
        Ok(Self {
            params,
            salt: salt.to_vec(),
            tag: tag.as_bytes().to_vec(),
        })
    }

    /// Recomputes the tag for `password` and compares it in constant time.
    pub(crate) fn verify(
        &self,
        password: &[u8],
        secret: Option<&[u8]>,
        workspace: &mut Workspace,
    ) -> Result<bool, HashError> {
        let mut out = Zeroizing::new(vec![0u8; self.tag.len()]);
        workspace.compute(&self.params, secret, password, &self.salt, &mut out)?;
        Ok(bool::from(out.ct_eq(&self.tag)))
    }
}

/// The `RustCrypto` backend: argon2id (version 0x13) with the `argon2` crate over
/// caller-owned memory, which must hold at least `params.block_count()` blocks.
pub(crate) fn compute(
    params: &Params,
    secret: Option<&[u8]>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut [Block],
) -> Result<(), HashError> {
    let ctx = match secret {
        Some(secret) => {
            Argon2::new_with_secret(secret, Algorithm::Argon2id, Version::V0x13, params.clone())
        }
        None => Ok(Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
        )),
    }
    .map_err(HashError::Argon2)?;
    ctx.hash_password_into_with_memory(password, salt, out, memory)
        .map_err(HashError::Argon2)
}

/// Hashes `password` with a fresh random salt and returns the PHC string.
pub(crate) fn hash(
    params: &Params,
    secret: Option<&[u8]>,
    password: &[u8],
    workspace: &mut Workspace,
) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| HashError::Randomness)?;
    let mut tag = [0u8; OUTPUT_LEN];
    workspace.compute(params, secret, password, &salt, &mut tag)?;
    encode(params, &salt, &tag)
}

/// Writes the PHC string of an argon2id hash.
pub(crate) fn encode(params: &Params, salt: &[u8], tag: &[u8]) -> Result<String, HashError> {
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|_| HashError::MalformedHash)?,
        salt: Some(Salt::new(salt).map_err(|_| HashError::MalformedHash)?),
        hash: Some(Output::new(tag).map_err(|_| HashError::MalformedHash)?),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::HashBackend;

    /// Reused memory of every compiled-in backend, for `blocks` blocks.
    fn workspaces(blocks: u32) -> Vec<Workspace> {
        let params = Params::new(blocks, 1, 1, None).unwrap();
        vec![
            Workspace::new(HashBackend::RustCrypto, &params).unwrap(),
            #[cfg(feature = "fast-argon2")]
            Workspace::new(HashBackend::Fast, &params).unwrap(),
        ]
    }

    /// The reference implementation's argon2id test vector ("password", "somesalt"),
    /// on every backend.
    #[test]
    fn reference_phc_vector_verifies() {
        let phc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        let stored = StoredArgon2::parse(phc).unwrap();
        for mut workspace in workspaces(65_536) {
            assert!(stored.verify(b"password", None, &mut workspace).unwrap());
            assert!(!stored.verify(b"passwore", None, &mut workspace).unwrap());
        }
    }

    #[test]
    fn phc_strings_round_trip() {
        let params = Params::new(64, 1, 1, Some(32)).unwrap();
        for mut workspace in workspaces(64) {
            let phc = hash(&params, None, b"pw", &mut workspace).unwrap();
            let stored = StoredArgon2::parse(&phc).unwrap();
            assert_eq!(
                encode(&stored.params, &stored.salt, &stored.tag).unwrap(),
                phc
            );
            assert_eq!(stored.salt.len(), SALT_LEN);
        }
    }

    #[test]
    fn other_variants_and_garbage_are_malformed() {
        for bad in [
            "",
            "not a hash",
            "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
            "$argon2id$v=19$m=65536,t=2,p=1,x=3$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        ] {
            assert!(
                matches!(StoredArgon2::parse(bad), Err(HashError::MalformedHash)),
                "{bad}"
            );
        }
    }
}
