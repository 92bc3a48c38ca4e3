//! Reused argon2 working memory.
//!
//! Each hashing worker borrows a [`Workspace`] of the hasher's backend, sized for
//! the current parameters, and gives it back afterwards, so a hash costs no
//! allocation and no page faults once the pool is warm. Only permit holders
//! borrow, so the pool never holds more than `permits` workspaces: the hashing
//! memory bound is `permits x m` KiB, whichever backend runs.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use super::HashError;
use super::backend::{HashBackend, Workspace};

pub(crate) struct MemoryPool {
    backend: HashBackend,
    /// The current parameters: every pooled workspace is sized for them.
    params: argon2::Params,
    free: Mutex<Vec<Workspace>>,
}

impl MemoryPool {
    pub(crate) fn new(backend: HashBackend, params: argon2::Params) -> Self {
        Self {
            backend,
            params,
            free: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` over a workspace big enough for `params`, allowed to run lanes on
    /// `threads` threads (the permits the caller holds). A request larger than
    /// the pooled size (a stored hash made with more memory than the current
    /// parameters) gets a one-off workspace that is freed afterwards, so no
    /// stored hash can grow the pool.
    pub(crate) fn with_workspace<T>(
        &self,
        params: &argon2::Params,
        threads: u32,
        f: impl FnOnce(&mut Workspace) -> Result<T, HashError>,
    ) -> Result<T, HashError> {
        if params.block_count() > self.params.block_count() {
            let mut one_off = Workspace::new(self.backend, params)?;
            one_off.set_threads(threads);
            return f(&mut one_off);
        }
        let pooled = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut workspace = match pooled {
            Some(workspace) => workspace,
            None => Workspace::new(self.backend, &self.params)?,
        };
        workspace.set_threads(threads);
        let result = f(&mut workspace);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(workspace);
        result
    }

    /// Workspaces allocated and idle right now.
    pub(crate) fn idle(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The backend, the size and the idle count; never the memory itself, which
/// holds material derived from passwords.
impl fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPool")
            .field("backend", &self.backend)
            .field("blocks", &self.params.block_count())
            .field("idle", &self.idle())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> Vec<MemoryPool> {
        let params = argon2::Params::new(64, 1, 1, Some(32)).unwrap();
        vec![
            MemoryPool::new(HashBackend::RustCrypto, params.clone()),
            #[cfg(feature = "fast-argon2")]
            MemoryPool::new(HashBackend::Fast, params),
        ]
    }

    #[test]
    fn oversized_requests_never_enter_the_pool() {
        let big = argon2::Params::new(128, 1, 1, Some(32)).unwrap();
        let small = argon2::Params::new(32, 1, 1, Some(32)).unwrap();
        for pool in pools() {
            pool.with_workspace(&big, 1, |w| {
                assert_eq!(w.backend(), pool.backend);
                Ok(())
            })
            .unwrap();
            assert_eq!(pool.idle(), 0);
            pool.with_workspace(&small, 1, |_| Ok(())).unwrap();
            pool.with_workspace(&small, 2, |_| Ok(())).unwrap();
            assert_eq!(pool.idle(), 1);
        }
    }

    #[test]
    fn debug_shows_no_memory() {
        for pool in pools() {
            pool.with_workspace(&pool.params.clone(), 1, |_| Ok(()))
                .unwrap();
            let printed = format!("{pool:?}");
            assert!(printed.contains("blocks: 64"), "{printed}");
            assert!(printed.len() < 100, "{printed}");
        }
    }
}
