//! The argon2id tag computation: one seam, one or two implementations.
//!
//! Everything around the tag is shared and lives in `argon.rs`: PHC strings,
//! parameters, salts, the pepper and its key id, the constant-time comparison. A
//! backend only turns (parameters, secret, password, salt, associated data) into
//! tag bytes, over memory that a worker reuses from hash to hash ([`Workspace`]).

use argon2::Block;

use super::HashError;
use super::argon;

/// Which argon2id implementation computes the tags of a
/// [`PasswordHasher`](super::PasswordHasher).
///
/// Both compute argon2id version 0x13 exactly as RFC 9106 and the reference
/// implementation do, so a hash made by one verifies with the other, byte for byte:
/// the PHC string, the parameters, the salt and the pepper (argon2's secret input,
/// with its key id in the string) are handled by the same code whichever backend
/// runs. Deployments with and without the `fast-argon2` feature share their
/// stored hashes.
///
/// - [`HashBackend::RustCrypto`]: the `argon2` crate of the `RustCrypto` project,
///   portable safe Rust. Each worker reuses a heap buffer of `m` KiB (4 KiB pages
///   unless the system turns transparent huge pages on for everything).
/// - `HashBackend::Fast` (feature `fast-argon2`): the `argon2-rust` crate, a port
///   of the reference implementation with runtime-selected AVX-512, AVX2, SSE2 or
///   NEON code. About twice as fast at the same parameters (see
///   `docs/PERFORMANCE.md`). Each worker reuses an `argon2-rust` arena: on Linux an
///   anonymous mapping with `MADV_HUGEPAGE` (2 MiB pages where the kernel grants
///   them), wiped after every hash. A hash with `p` > 1 lanes runs them on
///   `min(p, max_concurrent)` threads and takes that many hashing permits, so a
///   permit stays one CPU and the hashing threads never outnumber the permits.
///   The default backend runs every lane on one thread with one permit.
///
/// The default is `Fast` when the `fast-argon2` feature is on, and
/// [`HashBackend::RustCrypto`] otherwise.
///
/// ```
/// use auth_core::password::{HashBackend, PasswordHasher};
///
/// let hasher = PasswordHasher::builder()
///     .backend(HashBackend::RustCrypto)
///     .build()?;
/// assert_eq!(hasher.backend(), HashBackend::RustCrypto);
/// # Ok::<(), auth_core::password::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashBackend {
    /// The `argon2` crate of the `RustCrypto` project (always available).
    RustCrypto,
    /// The `argon2-rust` crate: SIMD and a huge-page arena (feature `fast-argon2`).
    #[cfg(feature = "fast-argon2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fast-argon2")))]
    Fast,
}

impl HashBackend {
    /// Threads, and so hashing permits, one hash with `lanes` lanes runs on when
    /// the hasher has `permits` permits.
    pub(crate) fn threads(self, lanes: u32, permits: u32) -> u32 {
        match self {
            Self::RustCrypto => {
                let _ = (lanes, permits);
                1
            }
            #[cfg(feature = "fast-argon2")]
            Self::Fast => lanes.min(permits).max(1),
        }
    }
}

impl Default for HashBackend {
    /// `Fast` with the `fast-argon2` feature, `RustCrypto` without it.
    fn default() -> Self {
        #[cfg(feature = "fast-argon2")]
        {
            Self::Fast
        }
        #[cfg(not(feature = "fast-argon2"))]
        {
            Self::RustCrypto
        }
    }
}

/// One worker's reusable argon2 memory, for one backend.
pub(crate) enum Workspace {
    /// Blocks handed to `argon2`'s `hash_password_into_with_memory`.
    RustCrypto(Vec<Block>),
    /// An `argon2-rust` hasher, which keeps its arena mapped between hashes, and
    /// the threads the current borrower may run lanes on.
    #[cfg(feature = "fast-argon2")]
    Fast {
        /// The hasher and its arena.
        hasher: argon2_rust::Hasher,
        /// Threads for the lanes of the next hash: the permits the borrower holds.
        threads: u32,
    },
}

impl Workspace {
    /// Memory for hashes at `params` (and at any parameters needing no more
    /// blocks), allocated now.
    ///
    /// # Errors
    /// [`HashError::FastArgon2`] when `argon2-rust` cannot map its arena or
    /// refuses the parameters.
    pub(crate) fn new(backend: HashBackend, params: &argon2::Params) -> Result<Self, HashError> {
        match backend {
            HashBackend::RustCrypto => {
                Ok(Self::RustCrypto(vec![Block::new(); params.block_count()]))
            }
            #[cfg(feature = "fast-argon2")]
            HashBackend::Fast => {
                fast::workspace(params).map(|hasher| Self::Fast { hasher, threads: 1 })
            }
        }
    }

    /// Lets the next hashes run their lanes on up to `threads` threads: the
    /// hashing permits the borrower holds (see [`HashBackend::threads`]).
    pub(crate) fn set_threads(&mut self, threads: u32) {
        match self {
            Self::RustCrypto(_) => {
                let _ = threads;
            }
            #[cfg(feature = "fast-argon2")]
            Self::Fast { threads: t, .. } => *t = threads.max(1),
        }
    }

    /// The backend this memory belongs to.
    #[cfg(test)]
    pub(crate) fn backend(&self) -> HashBackend {
        match self {
            Self::RustCrypto(_) => HashBackend::RustCrypto,
            #[cfg(feature = "fast-argon2")]
            Self::Fast { .. } => HashBackend::Fast,
        }
    }

    /// Computes the argon2id (version 0x13) tag of `password` into `out`: the tag
    /// length is `out.len()`, the associated data is `params.data()`, and the
    /// secret is the pepper, if any. `params` must need no more blocks than this
    /// workspace was made for.
    pub(crate) fn compute(
        &mut self,
        params: &argon2::Params,
        secret: Option<&[u8]>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        match self {
            Self::RustCrypto(memory) => argon::compute(params, secret, password, salt, out, memory),
            #[cfg(feature = "fast-argon2")]
            Self::Fast { hasher, threads } => {
                fast::compute(hasher, *threads, params, secret, password, salt, out)
            }
        }
    }
}

#[cfg(feature = "fast-argon2")]
mod fast {
    //! argon2id through `argon2-rust`, from the `argon2` crate's parameters.

    use argon2_rust::params::{Memory, TagLen};
    use argon2_rust::{Algorithm, Argon2, Hasher, Params, Version};

    use super::HashError;

    /// The same computation in `argon2-rust`'s terms. Only `m`, `t`, `p` and the
    /// tag length enter the tag; `threads` (what the caller's permits allow) only
    /// decides how many threads run the lanes and wipe the arena.
    fn argon2(params: &argon2::Params, tag_len: usize, threads: u32) -> Result<Argon2, HashError> {
        let tag_len = u64::try_from(tag_len)
            .map_err(|_| HashError::FastArgon2(argon2_rust::Error::OutputTooLong))?;
        let params = Params::builder()
            .memory(Memory::kib(u64::from(params.m_cost())))
            .passes(params.t_cost())
            .lanes(params.p_cost())
            .threads(threads)
            .tag_len(TagLen::bytes(tag_len))
            .build()
            .map_err(HashError::FastArgon2)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A hasher whose arena is mapped now, sized for `params`.
    pub(super) fn workspace(params: &argon2::Params) -> Result<Hasher, HashError> {
        let tag_len = params
            .output_len()
            .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
        let mut hasher = argon2(params, tag_len, 1)?.hasher();
        hasher.reserve().map_err(HashError::FastArgon2)?;
        Ok(hasher)
    }

    pub(super) fn compute(
        hasher: &mut Hasher,
        threads: u32,
        params: &argon2::Params,
        secret: Option<&[u8]>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        // Never grows the arena: the pool hands out a workspace only for
        // parameters that fit it, and makes a one-off workspace otherwise.
        hasher.set_argon2(argon2(params, out.len(), threads)?);
        hasher
            .hash_into_with_ad(password, salt, secret.unwrap_or(&[]), params.data(), out)
            .map_err(HashError::FastArgon2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn backends() -> Vec<HashBackend> {
        vec![
            HashBackend::RustCrypto,
            #[cfg(feature = "fast-argon2")]
            HashBackend::Fast,
        ]
    }

    /// RFC 9106 §5.3: argon2id, m=32, t=3, p=4, with secret and associated data,
    /// through the seam of every compiled-in backend.
    #[test]
    fn rfc9106_argon2id_vector_on_every_backend() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .output_len(32)
            .build()
            .unwrap();
        // Workspaces sized for more than the vector needs, as reused worker memory
        // usually is.
        let big = argon2::Params::new(64, 1, 1, Some(32)).unwrap();
        for backend in backends() {
            let mut workspace = Workspace::new(backend, &big).unwrap();
            assert_eq!(workspace.backend(), backend);
            // One thread, then one per lane (the fast backend runs lanes in
            // parallel then; the tag must not change).
            for threads in [1, 4, 1] {
                workspace.set_threads(threads);
                let mut out = [0u8; 32];
                workspace
                    .compute(&params, Some(&[3u8; 8]), &[1u8; 32], &[2u8; 16], &mut out)
                    .unwrap();
                assert_eq!(
                    hex(&out),
                    "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
                    "{backend:?}"
                );
            }
        }
    }

    #[test]
    fn default_backend_follows_the_feature() {
        #[cfg(feature = "fast-argon2")]
        assert_eq!(HashBackend::default(), HashBackend::Fast);
        #[cfg(not(feature = "fast-argon2"))]
        assert_eq!(HashBackend::default(), HashBackend::RustCrypto);
    }

    /// Random inputs, including associated data and tag lengths other than 32,
    /// give the same tag on both backends through the seam, over one reused
    /// workspace each.
    #[cfg(feature = "fast-argon2")]
    #[test]
    fn backends_agree_through_the_seam() {
        fn random(max: usize) -> Vec<u8> {
            let mut len = [0u8; 2];
            getrandom::fill(&mut len).unwrap();
            let mut v = vec![0u8; usize::from(u16::from_le_bytes(len)) % (max + 1)];
            getrandom::fill(&mut v).unwrap();
            v
        }
        let big = argon2::Params::new(256, 1, 1, Some(32)).unwrap();
        let mut rc = Workspace::new(HashBackend::RustCrypto, &big).unwrap();
        let mut fast = Workspace::new(HashBackend::Fast, &big).unwrap();
        for (m, t, p) in [(8, 1, 1), (16, 2, 2), (64, 1, 3), (96, 3, 4), (256, 2, 1)] {
            for (i, tag_len) in [4usize, 16, 32, 64].into_iter().enumerate() {
                // Lanes on one thread, or on up to one thread per lane.
                fast.set_threads(if i % 2 == 0 { 1 } else { p });
                let mut salt = random(48);
                salt.resize(salt.len().max(8), 0x5a);
                let (password, secret, ad) = (random(200), random(64), random(32));
                let mut builder = argon2::ParamsBuilder::new();
                builder.m_cost(m).t_cost(t).p_cost(p).output_len(tag_len);
                if !ad.is_empty() {
                    builder.data(argon2::AssociatedData::new(&ad).unwrap());
                }
                let params = builder.build().unwrap();
                let secret = (!secret.is_empty()).then_some(&secret[..]);
                let (mut a, mut b) = (vec![0u8; tag_len], vec![1u8; tag_len]);
                rc.compute(&params, secret, &password, &salt, &mut a)
                    .unwrap();
                fast.compute(&params, secret, &password, &salt, &mut b)
                    .unwrap();
                assert_eq!(hex(&a), hex(&b), "m={m} t={t} p={p} len={tag_len}");
            }
        }
        // The fast workspace never grew beyond what it was made for.
        let Workspace::Fast { hasher, .. } = &fast else {
            unreachable!()
        };
        assert_eq!(hasher.reserved_blocks(), big.block_count());
    }
}
