//! [`SessionUserCache`] checks (DESIGN 8): snapshots live with their session,
//! and a snapshot read before an invalidation is never stored after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sessions::session;
use super::{Fixture, t0};
use crate::TokenHash;
use crate::store::{SessionStore, SessionUserCache, UserStore};

/// A session store that keeps user snapshots: what the checks take.
pub trait CachingSessionStore: SessionStore + SessionUserCache {}

impl<T: SessionStore + SessionUserCache + ?Sized> CachingSessionStore for T {}

/// What the session-cache checks take.
pub type SessionCacheFixture = Fixture<dyn CachingSessionStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: SessionStore + SessionUserCache + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> SessionCacheFixture {
    Fixture::new(store, users)
}

async fn snapshot(f: &SessionCacheFixture, n: u8) -> Option<Vec<u8>> {
    f.store
        .cached_session(&TokenHash([n; 32]))
        .await
        .unwrap()
        .and_then(|c| c.snapshot)
}

async fn stamp(f: &SessionCacheFixture, n: u8) -> u64 {
    f.store
        .cached_session(&TokenHash([n; 32]))
        .await
        .unwrap()
        .unwrap()
        .stamp
}

async fn fill(f: &SessionCacheFixture, n: u8, bytes: &[u8]) -> bool {
    let stamp = stamp(f, n).await;
    f.store
        .put_snapshot(&TokenHash([n; 32]), stamp, bytes)
        .await
        .unwrap()
}

/// A session reads back with no snapshot until one is put, then with it, in
/// the same read as the record; a put for an unknown session stores nothing.
pub async fn snapshots_are_kept_with_their_session(f: SessionCacheFixture) {
    let s = session(1, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    let first = f
        .store
        .cached_session(&s.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.session, first.snapshot), (s.clone(), None));
    assert!(fill(&f, 1, b"\x01snapshot\x00\xff").await);
    let read = f
        .store
        .cached_session(&s.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.session, s);
    assert_eq!(read.snapshot.as_deref(), Some(&b"\x01snapshot\x00\xff"[..]));
    assert!(
        f.store
            .cached_session(&TokenHash([2; 32]))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !f.store
            .put_snapshot(&TokenHash([2; 32]), 0, b"x")
            .await
            .unwrap()
    );
    assert!(
        f.store
            .cached_session(&TokenHash([2; 32]))
            .await
            .unwrap()
            .is_none()
    );
}

/// A put with a stamp read before an invalidation is refused; one with the
/// stamp read after it is stored.
pub async fn a_put_with_an_old_stamp_is_refused(f: SessionCacheFixture) {
    let s = session(3, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    let before = stamp(&f, 3).await;
    f.store.invalidate_user(s.user_id).await.unwrap();
    assert!(
        !f.store
            .put_snapshot(&s.token_hash, before, b"old")
            .await
            .unwrap()
    );
    assert_eq!(snapshot(&f, 3).await, None);
    assert!(fill(&f, 3, b"new").await);
    assert_eq!(snapshot(&f, 3).await.as_deref(), Some(&b"new"[..]));
}

/// Invalidation drops the snapshot of every session of the user, and only of
/// that user.
pub async fn invalidation_reaches_every_session_of_the_user_only(f: SessionCacheFixture) {
    let (user, other) = (f.user().await, f.user().await);
    for (n, owner) in [(4, user), (5, user), (6, user), (7, other)] {
        f.store
            .create_session(session(n, owner, t0()))
            .await
            .unwrap();
        assert!(fill(&f, n, &[n]).await);
    }
    f.store.invalidate_user(user).await.unwrap();
    for n in 4..=6 {
        assert_eq!(snapshot(&f, n).await, None, "session {n}");
    }
    assert_eq!(snapshot(&f, 7).await, Some(vec![7]));
    // A user without sessions is not an error.
    f.store.invalidate_user(f.user().await).await.unwrap();
}

/// S5: a revoked session keeps no snapshot and takes none.
pub async fn revoked_sessions_keep_no_snapshot(f: SessionCacheFixture) {
    let s = session(8, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    assert!(fill(&f, 8, b"live").await);
    assert!(f.store.revoke_session(s.user_id, s.id, t0()).await.unwrap());
    let read = f.store.cached_session(&s.token_hash).await.unwrap();
    if let Some(read) = read {
        assert!(read.session.revoked_at.is_some());
        assert_eq!(read.snapshot, None);
        let stamp = read.stamp;
        assert!(
            !f.store
                .put_snapshot(&s.token_hash, stamp, b"x")
                .await
                .unwrap()
        );
    }
}

/// DESIGN 8: a stale snapshot can never outlive the change. Fillers read the
/// session's stamp, then the "user" (a version counter standing for the user
/// store), then put what they read; a writer changes the user, then
/// invalidates, concurrently, round after round. Once both are done, a
/// stored snapshot is always of the latest version.
pub async fn a_stale_snapshot_can_never_outlive_the_change(f: SessionCacheFixture) {
    let s = session(9, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    let version = Arc::new(AtomicU64::new(0));
    for round in 0..100 {
        let mut fillers = Vec::new();
        for lag in 0..6 {
            let (store, version, hash) = (Arc::clone(&f.store), Arc::clone(&version), s.token_hash);
            fillers.push(tokio::spawn(async move {
                let read = store.cached_session(&hash).await.unwrap().unwrap();
                let seen = version.load(Ordering::SeqCst);
                // Fillers that take longer between their user read and their
                // write (as a slow user store makes them), so that some write
                // lands after the invalidation whatever the backend's speed.
                for _ in 0..lag {
                    store.cached_session(&hash).await.unwrap();
                }
                store
                    .put_snapshot(&hash, read.stamp, &seen.to_be_bytes())
                    .await
                    .unwrap()
            }));
        }
        let (store, changed, user) = (Arc::clone(&f.store), Arc::clone(&version), s.user_id);
        let hash = s.token_hash;
        let writer = tokio::spawn(async move {
            // The change lands among the fillers' user reads, not before them.
            for _ in 0..round % 3 + 1 {
                store.cached_session(&hash).await.unwrap();
            }
            changed.fetch_add(1, Ordering::SeqCst);
            store.invalidate_user(user).await.unwrap();
        });
        for filler in fillers {
            filler.await.unwrap();
        }
        writer.await.unwrap();
        let latest = version.load(Ordering::SeqCst).to_be_bytes();
        if let Some(kept) = snapshot(&f, 9).await {
            assert_eq!(
                kept, latest,
                "round {round}: a snapshot from before the change survived it"
            );
        }
    }
}
