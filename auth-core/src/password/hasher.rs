//! The asynchronous password hashing service.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use super::argon::{self, StoredArgon2};
use super::memory::MemoryPool;
use super::workers::{Place, Workers};
use super::{ConfigError, HashBackend, HashError, HashParams, NormalizedPassword, Pepper, legacy};
use crate::PasswordHashString;

/// Default callers allowed to wait for a hashing permit, per permit.
pub const DEFAULT_QUEUE_PER_PERMIT: usize = 32;

/// The fixed input of [`PasswordHasher::verify_dummy`].
const DUMMY_PASSWORD: &[u8] = b"dummy password for an account that does not exist";

/// Hashes and verifies passwords with argon2id off the async runtime (S1, S2, S13).
///
/// - Work runs on `max_concurrent` threads of the hasher's own (default: the
///   number of CPUs), one permit each; a hash takes one permit per thread it
///   runs on. At most `max_queued` callers wait for permits (default 32 per
///   permit), served in arrival order; beyond that a call fails at once with
///   [`HashError::Unavailable`], which the web layer answers with 503 and
///   `Retry-After`. The threads end when the last clone is dropped.
/// - Each worker reuses its argon2 memory, so hashing memory is bounded by
///   `max_concurrent x m` KiB ([`Self::memory_bound_bytes`]) and a warm hasher
///   takes no page faults per hash.
/// - The tag is computed by a [`HashBackend`]: the `argon2` crate (`RustCrypto`), or
///   with the `fast-argon2` feature (then the default) `argon2-rust`, about twice
///   as fast. Both write and read the same PHC strings. The fast backend runs the
///   lanes of a hash with `p` > 1 on `min(p, max_concurrent)` threads and holds
///   as many permits meanwhile.
/// - With a [`Pepper`], hashes record the key id; verification picks the key by id.
/// - [`Self::needs_rehash`] reports hashes made with other parameters, another key,
///   or bcrypt; the caller rehashes after a successful verification.
///
/// Cloning is cheap and clones share the permits, the queue and the memory.
///
/// ```
/// use auth_core::{Password, PasswordHashString};
/// use auth_core::password::{PasswordHasher, PasswordPolicy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hasher = PasswordHasher::builder().build()?; // OWASP: m=19456 KiB, t=2, p=1
/// let policy = PasswordPolicy::default();
///
/// let new = policy.validate_new(&Password::new("purple otter sings"), &Default::default())?;
/// let stored: PasswordHashString = hasher.hash(&new).await?;
/// assert!(stored.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
///
/// let attempt = policy.normalize(&Password::new("purple otter sings"))?;
/// assert!(hasher.verify(&attempt, &stored).await?);
/// assert!(!hasher.needs_rehash(&stored));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    params: HashParams,
    backend: HashBackend,
    /// The argon2 parameters of a new hash, including the current key id.
    current: argon2::Params,
    pepper: Option<Pepper>,
    permits: usize,
    workers: Workers,
    memory: MemoryPool,
    argon2_runs: AtomicU64,
    bcrypt_runs: AtomicU64,
    rejected: AtomicU64,
}

impl Inner {
    /// Threads, and permits, for one hash with `lanes` lanes.
    fn threads(&self, lanes: u32) -> u32 {
        let permits = u32::try_from(self.permits).unwrap_or(u32::MAX);
        self.backend.threads(lanes, permits)
    }

    /// The pepper secret of new hashes, if a pepper is configured.
    fn current_secret(&self) -> Option<&[u8]> {
        self.pepper.as_ref().map(|p| p.current().secret())
    }

    /// The pepper secret a stored hash names: none for an empty key id.
    fn secret(&self, key_id: &[u8]) -> Result<Option<&[u8]>, HashError> {
        if key_id.is_empty() {
            return Ok(None);
        }
        let key = self.pepper.as_ref().and_then(|p| p.find(key_id));
        key.map(|k| Some(k.secret()))
            .ok_or_else(|| HashError::UnknownPepperKey {
                key_id: String::from_utf8_lossy(key_id).into_owned(),
            })
    }
}

/// A place in the hashing queue for one verification, from
/// [`PasswordHasher::reserve`]: [`Self::verify`] or [`Self::verify_dummy`]
/// uses it and is never refused for capacity.
pub struct HashPlace {
    hasher: PasswordHasher,
    place: Place,
}

impl std::fmt::Debug for HashPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPlace").finish_non_exhaustive()
    }
}

impl HashPlace {
    /// [`PasswordHasher::verify`] in this place.
    ///
    /// # Errors
    /// As [`PasswordHasher::verify`], but never [`HashError::Unavailable`].
    pub async fn verify(
        self,
        password: &NormalizedPassword,
        stored: &PasswordHashString,
    ) -> Result<bool, HashError> {
        self.hasher
            .verify_in(Some(self.place), password, stored)
            .await
    }

    /// [`PasswordHasher::verify_dummy`] in this place.
    ///
    /// # Errors
    /// Only on internal failure.
    pub async fn verify_dummy(self) -> Result<(), HashError> {
        self.hasher.verify_dummy_in(Some(self.place)).await
    }
}

/// Counters of a [`PasswordHasher`], for metrics and for tests that prove how often
/// the expensive work ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HasherMetrics {
    /// argon2id computations started (hashes, verifications and dummy verifications).
    pub argon2_runs: u64,
    /// bcrypt verifications started.
    pub bcrypt_runs: u64,
    /// Calls refused with [`HashError::Unavailable`] because the queue was full.
    pub rejected: u64,
    /// Callers waiting for a permit right now.
    pub waiting: usize,
    /// Worker buffers allocated and idle right now.
    pub idle_buffers: usize,
}

impl PasswordHasher {
    /// A builder with the OWASP defaults, no pepper, one permit per CPU.
    #[must_use]
    pub fn builder() -> PasswordHasherBuilder {
        PasswordHasherBuilder::default()
    }

    /// The parameters of new hashes.
    #[must_use]
    pub fn params(&self) -> HashParams {
        self.inner.params
    }

    /// The argon2 implementation that computes tags.
    #[must_use]
    pub fn backend(&self) -> HashBackend {
        self.inner.backend
    }

    /// Hashes run at once at most.
    #[must_use]
    pub fn max_concurrent(&self) -> usize {
        self.inner.permits
    }

    /// The most memory the hashing workers hold for hashes at the current
    /// parameters: `max_concurrent x m` KiB, in bytes.
    #[must_use]
    pub fn memory_bound_bytes(&self) -> usize {
        self.inner.permits * self.inner.params.memory_bytes()
    }

    /// Refuses at once when a hash or verification started now would be refused:
    /// every permit busy and the wait queue full (S13). Flows call it before
    /// their store reads, so that under a flood a refusal costs no round trip.
    /// The check is a hint: a caller it lets through may still be refused later.
    ///
    /// # Errors
    /// [`HashError::Unavailable`] (counted in [`HasherMetrics::rejected`]).
    pub fn check_capacity(&self) -> Result<(), HashError> {
        if self.inner.workers.is_full() {
            self.inner.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(HashError::Unavailable);
        }
        Ok(())
    }

    /// Takes a place in the hashing queue for one verification that follows
    /// some work of the caller's, so that the verification is never refused
    /// once that work is done: a login counts its attempt against the
    /// account before it verifies (S6), and an attempt refused for overload
    /// after being counted would count against its owner. Refuses at once,
    /// as [`Self::check_capacity`] would, when every permit and every place
    /// in the queue is taken (S13). Dropping the place unused gives it back.
    ///
    /// # Errors
    /// [`HashError::Unavailable`] (counted in [`HasherMetrics::rejected`]).
    pub fn reserve(&self) -> Result<HashPlace, HashError> {
        match self.inner.workers.reserve() {
            Some(place) => Ok(HashPlace {
                hasher: self.clone(),
                place,
            }),
            None => {
                self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                Err(HashError::Unavailable)
            }
        }
    }

    /// Current counters.
    #[must_use]
    pub fn metrics(&self) -> HasherMetrics {
        let i = &self.inner;
        HasherMetrics {
            argon2_runs: i.argon2_runs.load(Ordering::Relaxed),
            bcrypt_runs: i.bcrypt_runs.load(Ordering::Relaxed),
            rejected: i.rejected.load(Ordering::Relaxed),
            waiting: i.workers.waiting(),
            idle_buffers: i.memory.idle(),
        }
    }

    /// Hashes a password with the current parameters, a fresh 16-byte salt and the
    /// current pepper key.
    ///
    /// # Errors
    /// [`HashError::Unavailable`] when hashing is saturated; other variants only on
    /// internal failure.
    pub async fn hash(
        &self,
        password: &NormalizedPassword,
    ) -> Result<PasswordHashString, HashError> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let threads = self.inner.threads(self.inner.current.p_cost());
        self.run(threads, None, move |inner| {
            let secret = inner.current_secret();
            inner.argon2_runs.fetch_add(1, Ordering::Relaxed);
            inner
                .memory
                .with_workspace(&inner.current, threads, |workspace| {
                    argon::hash(&inner.current, secret, &password, workspace)
                })
        })
        .await
        .map(PasswordHashString::new)
    }

    /// Checks a password against a stored hash: argon2id (with the pepper key the
    /// hash names) or, with the `bcrypt` feature, an imported bcrypt hash.
    ///
    /// Returns `Ok(false)` for a wrong password.
    ///
    /// # Errors
    /// [`HashError::Unavailable`] when hashing is saturated,
    /// [`HashError::MalformedHash`] for a stored value this build cannot verify,
    /// [`HashError::UnknownPepperKey`] when the hash names a key that is not
    /// configured.
    pub async fn verify(
        &self,
        password: &NormalizedPassword,
        stored: &PasswordHashString,
    ) -> Result<bool, HashError> {
        self.verify_in(None, password, stored).await
    }

    async fn verify_in(
        &self,
        place: Option<Place>,
        password: &NormalizedPassword,
        stored: &PasswordHashString,
    ) -> Result<bool, HashError> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        if legacy::is_bcrypt(stored.as_str()) {
            let stored = stored.clone();
            return self
                .run(1, place, move |inner| {
                    inner.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
                    legacy::verify(&password, stored.as_str())
                })
                .await;
        }
        let parsed = StoredArgon2::parse(stored.as_str())?;
        let key_id = parsed.params.keyid().to_vec();
        self.inner.secret(&key_id)?; // an unknown key fails before taking a permit
        let threads = self.inner.threads(parsed.params.p_cost());
        self.run(threads, place, move |inner| {
            let secret = inner.secret(&key_id)?;
            inner.argon2_runs.fetch_add(1, Ordering::Relaxed);
            inner
                .memory
                .with_workspace(&parsed.params, threads, |workspace| {
                    parsed.verify(&password, secret, workspace)
                })
        })
        .await
    }

    /// Does the work of one verification at the current parameters and pepper
    /// without any real hash, for a login whose account does not exist (or whose
    /// password was refused by the caps), so that it costs the same as a real one
    /// (S3).
    ///
    /// # Errors
    /// [`HashError::Unavailable`] when hashing is saturated, exactly as a real
    /// verification would be.
    pub async fn verify_dummy(&self) -> Result<(), HashError> {
        self.verify_dummy_in(None).await
    }

    async fn verify_dummy_in(&self, place: Option<Place>) -> Result<(), HashError> {
        let threads = self.inner.threads(self.inner.current.p_cost());
        self.run(threads, place, move |inner| {
            let secret = inner.current_secret();
            inner.argon2_runs.fetch_add(1, Ordering::Relaxed);
            let salt = [0u8; super::params::SALT_LEN];
            let mut out = [0u8; super::params::OUTPUT_LEN];
            inner
                .memory
                .with_workspace(&inner.current, threads, |workspace| {
                    workspace.compute(&inner.current, secret, DUMMY_PASSWORD, &salt, &mut out)
                })
        })
        .await
    }

    /// Whether a stored hash should be replaced after the next successful
    /// verification: bcrypt, another argon2 variant or version, other parameters,
    /// a short salt, or a pepper key id other than the current one (including a hash
    /// made before a pepper was configured). Unparseable values also answer `true`.
    #[must_use]
    pub fn needs_rehash(&self, stored: &PasswordHashString) -> bool {
        match StoredArgon2::parse(stored.as_str()) {
            Ok(parsed) => {
                parsed.params != self.inner.current || parsed.salt.len() < super::params::SALT_LEN
            }
            Err(_) => true,
        }
    }

    /// Runs a job on the hashing workers while holding `permits` permits (one
    /// per thread the job runs on; at most `max_concurrent`). A job that has
    /// started keeps its permits to the end, even if its caller gives up.
    async fn run<T, F>(&self, permits: u32, place: Option<Place>, job: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, HashError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let permits = usize::try_from(permits).unwrap_or(usize::MAX);
        match self
            .inner
            .workers
            .run(permits, place, move || job(&inner))
            .await
        {
            Ok(result) => result,
            Err(HashError::Unavailable) => {
                self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                Err(HashError::Unavailable)
            }
            Err(err) => Err(err),
        }
    }
}

/// Builds a [`PasswordHasher`]; every setting is checked in [`Self::build`].
#[derive(Debug, Default)]
pub struct PasswordHasherBuilder {
    params: HashParams,
    backend: HashBackend,
    pepper: Option<Pepper>,
    max_concurrent: Option<usize>,
    max_queued: Option<usize>,
}

impl PasswordHasherBuilder {
    /// Parameters of new hashes (default [`HashParams::OWASP`]).
    #[must_use]
    pub fn params(mut self, params: HashParams) -> Self {
        self.params = params;
        self
    }

    /// The argon2 implementation (default [`HashBackend::default`]: the fast one
    /// when the `fast-argon2` feature is on). Hashes do not depend on it.
    #[must_use]
    pub fn backend(mut self, backend: HashBackend) -> Self {
        self.backend = backend;
        self
    }

    /// A pepper: new hashes use its current key, old ones verify with the key they
    /// name.
    #[must_use]
    pub fn pepper(mut self, pepper: Pepper) -> Self {
        self.pepper = Some(pepper);
        self
    }

    /// Hashes run at once at most (default: available parallelism).
    #[must_use]
    pub fn max_concurrent(mut self, permits: usize) -> Self {
        self.max_concurrent = Some(permits);
        self
    }

    /// Callers that may wait for a permit before further calls are refused
    /// (default: 32 per permit; 0 refuses every call that cannot start at once).
    #[must_use]
    pub fn max_queued(mut self, waiting: usize) -> Self {
        self.max_queued = Some(waiting);
        self
    }

    /// Checks the settings, starts the worker threads and builds the hasher. No
    /// hashing memory is allocated until the first hash.
    ///
    /// # Errors
    /// [`ConfigError::ZeroConcurrency`] for `max_concurrent(0)`;
    /// [`ConfigError::Workers`] if the worker threads cannot be started;
    /// [`ConfigError::InvalidParams`] if the key id cannot be encoded.
    pub fn build(self) -> Result<PasswordHasher, ConfigError> {
        let permits = self
            .max_concurrent
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
        if permits == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        let max_queued = self
            .max_queued
            .unwrap_or(permits * DEFAULT_QUEUE_PER_PERMIT);
        let key_id = self
            .pepper
            .as_ref()
            .map_or(&[][..], |p| p.current().id().as_bytes());
        let current = self
            .params
            .argon2_params(key_id)
            .map_err(ConfigError::InvalidParams)?;
        Ok(PasswordHasher {
            inner: Arc::new(Inner {
                params: self.params,
                backend: self.backend,
                memory: MemoryPool::new(self.backend, current.clone()),
                current,
                pepper: self.pepper,
                permits,
                workers: Workers::start(permits, max_queued).map_err(ConfigError::Workers)?,
                argon2_runs: AtomicU64::new(0),
                bcrypt_runs: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Password;
    use crate::password::PasswordPolicy;

    fn pw(s: &str) -> NormalizedPassword {
        PasswordPolicy::default()
            .normalize(&Password::new(s))
            .unwrap()
    }

    #[tokio::test]
    async fn s13_saturation_with_a_full_queue_is_unavailable_at_once() {
        let hasher = PasswordHasher::builder()
            .max_concurrent(1)
            .max_queued(0)
            .build()
            .unwrap();
        // Hold the only permit, as a long-running hash would.
        let held = hasher.inner.workers.hold(1);
        assert!(matches!(
            hasher.hash(&pw("whatever-pass")).await,
            Err(HashError::Unavailable)
        ));
        assert!(matches!(
            hasher.verify_dummy().await,
            Err(HashError::Unavailable)
        ));
        assert_eq!(hasher.metrics().rejected, 2);
        assert_eq!(hasher.metrics().argon2_runs, 0);
        assert!(matches!(
            hasher.check_capacity(),
            Err(HashError::Unavailable)
        ));
        assert_eq!(hasher.metrics().rejected, 3);
        drop(held);
        assert!(hasher.check_capacity().is_ok());
        assert!(hasher.verify_dummy().await.is_ok());
    }

    #[tokio::test]
    async fn s13_the_queue_holds_exactly_max_queued_waiters() {
        let hasher = PasswordHasher::builder()
            .max_concurrent(1)
            .max_queued(2)
            .build()
            .unwrap();
        let held = hasher.inner.workers.hold(1);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let h = hasher.clone();
                tokio::spawn(async move { h.verify_dummy().await })
            })
            .collect();
        while hasher.metrics().waiting < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.verify_dummy().await,
            Err(HashError::Unavailable)
        ));
        drop(held);
        for w in waiters {
            assert!(w.await.unwrap().is_ok());
        }
        assert_eq!(hasher.metrics().waiting, 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_gives_its_place_back() {
        let hasher = PasswordHasher::builder()
            .max_concurrent(1)
            .max_queued(1)
            .build()
            .unwrap();
        let held = hasher.inner.workers.hold(1);
        let waiter = {
            let h = hasher.clone();
            tokio::spawn(async move { h.verify_dummy().await })
        };
        while hasher.metrics().waiting < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(hasher.metrics().waiting, 0);
        drop(held);
        assert!(hasher.verify_dummy().await.is_ok());
    }

    fn backends() -> Vec<HashBackend> {
        vec![
            HashBackend::RustCrypto,
            #[cfg(feature = "fast-argon2")]
            HashBackend::Fast,
        ]
    }

    #[tokio::test]
    async fn workers_reuse_their_memory() {
        for backend in backends() {
            let hasher = PasswordHasher::builder()
                .backend(backend)
                .max_concurrent(2)
                .build()
                .unwrap();
            for _ in 0..3 {
                hasher.verify_dummy().await.unwrap();
            }
            // Sequential calls share one buffer; never more buffers than permits.
            assert_eq!(hasher.metrics().idle_buffers, 1);
            let (a, b, c) = tokio::join!(
                hasher.verify_dummy(),
                hasher.verify_dummy(),
                hasher.verify_dummy()
            );
            assert!(a.is_ok() && b.is_ok() && c.is_ok());
            assert!(hasher.metrics().idle_buffers <= 2);
            assert_eq!(hasher.memory_bound_bytes(), 2 * 19_456 * 1024);
        }
    }

    /// One permit per hashing thread: with two permits, a hash with four lanes
    /// needs both on the fast backend (its lanes run on two threads) and one on
    /// the default backend (one thread); a one-lane hash needs one on either.
    #[tokio::test]
    async fn s13_a_hash_takes_one_permit_per_thread() {
        for backend in backends() {
            for lanes in [1, 4] {
                let hasher = PasswordHasher::builder()
                    .backend(backend)
                    .params(HashParams::new(19_456, 2, lanes).unwrap())
                    .max_concurrent(2)
                    .max_queued(0)
                    .build()
                    .unwrap();
                let held = hasher.inner.workers.hold(1);
                let threads = backend.threads(lanes, 2);
                let with_one_left = hasher.verify_dummy().await;
                assert_eq!(with_one_left.is_ok(), threads == 1, "{backend:?} p={lanes}");
                drop(held);
                assert!(hasher.verify_dummy().await.is_ok());
                let stored = hasher.hash(&pw("four lanes or one")).await.unwrap();
                assert!(
                    hasher
                        .verify(&pw("four lanes or one"), &stored)
                        .await
                        .unwrap()
                );
                assert_eq!(hasher.inner.workers.free(), 2);
            }
        }
        #[cfg(feature = "fast-argon2")]
        assert_eq!(HashBackend::Fast.threads(4, 2), 2);
        #[cfg(feature = "fast-argon2")]
        assert_eq!(HashBackend::Fast.threads(3, 8), 3);
        assert_eq!(HashBackend::RustCrypto.threads(4, 2), 1);
    }

    #[test]
    fn the_builder_defaults_to_the_default_backend() {
        let hasher = PasswordHasher::builder().build().unwrap();
        assert_eq!(hasher.backend(), HashBackend::default());
        for backend in backends() {
            let hasher = PasswordHasher::builder().backend(backend).build().unwrap();
            assert_eq!(hasher.backend(), backend);
        }
    }

    #[test]
    fn debug_output_stays_small() {
        // The pool's Debug names the backend and sizes, never the memory.
        let hasher = PasswordHasher::builder().build().unwrap();
        let printed = format!("{hasher:?}");
        assert!(printed.contains("backend"), "{printed}");
        assert!(printed.len() < 2_000, "{}", printed.len());
    }

    #[test]
    fn zero_permits_are_refused() {
        assert!(matches!(
            PasswordHasher::builder().max_concurrent(0).build(),
            Err(ConfigError::ZeroConcurrency)
        ));
    }
}
