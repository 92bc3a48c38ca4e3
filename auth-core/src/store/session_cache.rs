use async_trait::async_trait;

use super::{SessionRecord, StoreError, UserId};
use crate::token::TokenHash;

/// A session read together with the cached snapshot of its user, in one
/// round trip ([`SessionUserCache::cached_session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedSession {
    /// The session, whatever its state (the engine judges expiry and
    /// revocation).
    pub session: SessionRecord,
    /// The snapshot of the user the engine last stored for this session, in
    /// the engine's own encoding; `None` when there is none (never stored, or
    /// dropped by [`SessionUserCache::invalidate_user`]).
    pub snapshot: Option<Vec<u8>>,
    /// The session's snapshot stamp as of this read: what
    /// [`SessionUserCache::put_snapshot`] must be given so that a snapshot
    /// read from the user store before an invalidation is never stored after
    /// it.
    pub stamp: u64,
}

impl CachedSession {
    /// A read of `session` with its snapshot and stamp.
    #[must_use]
    pub fn new(session: SessionRecord, snapshot: Option<Vec<u8>>, stamp: u64) -> Self {
        Self {
            session,
            snapshot,
            stamp,
        }
    }
}

/// A session store that also keeps, with each session, a snapshot of its
/// user, so that authenticating a request needs one read of this store and
/// none of the user store (DESIGN 8).
///
/// A capability of its own rather than a part of [`super::SessionStore`]: a
/// backend where reading the user is already cheap (in process) does not
/// implement it, and the engine then reads the user store on every request.
///
/// The snapshot is opaque bytes the engine writes and reads; the backend only
/// persists it. The guarantee the engine builds on: once
/// [`Self::invalidate_user`] has returned, no session of that user has a
/// snapshot stored before it, and no [`Self::put_snapshot`] with a stamp read
/// before it succeeds.
#[async_trait]
pub trait SessionUserCache: Send + Sync {
    /// The session with this token hash, its user's snapshot and its stamp,
    /// in one read.
    ///
    /// # Errors
    /// Backend failures only; an unknown hash is `Ok(None)`.
    async fn cached_session(&self, hash: &TokenHash) -> Result<Option<CachedSession>, StoreError>;

    /// Stores `snapshot` with the session of this token hash, only if its
    /// stamp is still `stamp` and it is not revoked (a compare-and-set, in
    /// one step). Returns whether it was stored.
    ///
    /// # Errors
    /// Backend failures only.
    async fn put_snapshot(
        &self,
        hash: &TokenHash,
        stamp: u64,
        snapshot: &[u8],
    ) -> Result<bool, StoreError>;

    /// Drops the snapshot of every session of the user and moves each
    /// session's stamp on, so that a snapshot read from the user store
    /// before this call can no longer be stored.
    ///
    /// # Errors
    /// Backend failures only.
    async fn invalidate_user(&self, user_id: UserId) -> Result<(), StoreError>;
}
