//! [`SessionStore`] checks (S5).

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{Fixture, t0};
use crate::TokenHash;
use crate::store::{AuthMethod, SessionId, SessionRecord, SessionStore, UserId, UserStore};

/// What the session checks take.
pub type SessionFixture = Fixture<dyn SessionStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: SessionStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> SessionFixture {
    Fixture::new(store, users)
}

/// A session of `user` made at `created`, idle 30 min, absolute 24 h.
pub(super) fn session(n: u8, user: UserId, created: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        id: SessionId::new_random(),
        token_hash: TokenHash([n; 32]),
        user_id: user,
        created_at: created,
        // Later than creation, so a backend that drops the field is caught.
        authenticated_at: created + Duration::seconds(1),
        methods: vec![
            AuthMethod::Password,
            AuthMethod::Totp,
            AuthMethod::Oidc {
                issuer: "https://id.example.com".into(),
            },
        ],
        last_seen_at: created,
        idle_expires_at: created + Duration::minutes(30),
        absolute_expires_at: created + Duration::hours(24),
        revoked_at: None,
        ip: Some(
            "192.0.2.7"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        ),
        user_agent: Some("conformance/1.0".into()),
    }
}

async fn stored(f: &SessionFixture, n: u8) -> Option<SessionRecord> {
    f.store.session_by_token(&TokenHash([n; 32])).await.unwrap()
}

async fn active(f: &SessionFixture, n: u8) -> bool {
    stored(f, n).await.is_some_and(|s| s.is_active(t0()))
}

/// A session is found by its token hash with every field; other hashes find nothing.
pub async fn create_and_find_by_token(f: SessionFixture) {
    let s = session(1, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    assert_eq!(stored(&f, 1).await, Some(s));
    assert_eq!(stored(&f, 2).await, None);
}

/// S5 (incident response): revoking every session ends every user's live
/// sessions at once and counts only those that were live.
pub async fn revoke_all_sessions_ends_every_users_sessions(f: SessionFixture) {
    let (alice, bob) = (f.user().await, f.user().await);
    for (n, user) in [(1, alice), (2, alice), (3, bob)] {
        f.store
            .create_session(session(n, user, t0()))
            .await
            .unwrap();
    }
    let gone = session(4, bob, t0());
    f.store.create_session(gone.clone()).await.unwrap();
    assert!(f.store.revoke_session(bob, gone.id, t0()).await.unwrap());
    let at = t0() + Duration::minutes(1);
    assert_eq!(f.store.revoke_all_sessions(at).await.unwrap(), 3);
    for n in 1..=4 {
        let s = stored(&f, n).await;
        assert!(
            s.as_ref().is_none_or(|s| s.revoked_at.is_some()),
            "session {n} still live: {s:?}"
        );
    }
    assert!(
        f.store
            .list_user_sessions(alice, at)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.store
            .list_user_sessions(bob, at)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Touching sets the activity time and the idle deadline.
pub async fn touch_records_activity(f: SessionFixture) {
    let s = session(3, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    let later = t0() + Duration::minutes(10);
    f.store
        .touch_session(&s.token_hash, later, later + Duration::minutes(30))
        .await
        .unwrap();
    let got = stored(&f, 3).await.unwrap();
    assert_eq!(
        (got.last_seen_at, got.idle_expires_at),
        (later, later + Duration::minutes(30))
    );
    assert_eq!(
        got.absolute_expires_at, s.absolute_expires_at,
        "activity never moves the absolute deadline"
    );
}

/// S5: a touch racing a revocation never brings the session back.
pub async fn touch_never_revives_a_revoked_session(f: SessionFixture) {
    let s = session(4, f.user().await, t0());
    f.store.create_session(s.clone()).await.unwrap();
    assert!(f.store.revoke_session(s.user_id, s.id, t0()).await.unwrap());
    f.store
        .touch_session(
            &s.token_hash,
            t0() + Duration::minutes(1),
            t0() + Duration::minutes(31),
        )
        .await
        .unwrap();
    let after = stored(&f, 4).await;
    assert!(
        after
            .as_ref()
            .is_none_or(|s| !s.is_active(t0() + Duration::minutes(1))),
        "{after:?}"
    );
}

/// Revoking by id only works for the session's owner, and only once.
pub async fn revoke_one_is_scoped_to_its_owner(f: SessionFixture) {
    let (owner, other) = (f.user().await, f.user().await);
    let s = session(5, owner, t0());
    f.store.create_session(s.clone()).await.unwrap();
    assert!(!f.store.revoke_session(other, s.id, t0()).await.unwrap());
    assert!(stored(&f, 5).await.unwrap().is_active(t0()));
    assert!(f.store.revoke_session(owner, s.id, t0()).await.unwrap());
    assert!(!f.store.revoke_session(owner, s.id, t0()).await.unwrap());
    assert!(stored(&f, 5).await.is_none_or(|s| !s.is_active(t0())));
}

/// Revoke-all spares only the named session and other users' sessions.
pub async fn revoke_all_but_the_current_one(f: SessionFixture) {
    let (user, other) = (f.user().await, f.user().await);
    let keep = session(6, user, t0());
    for s in [
        keep.clone(),
        session(7, user, t0()),
        session(8, user, t0()),
        session(9, other, t0()),
    ] {
        f.store.create_session(s).await.unwrap();
    }
    assert_eq!(
        f.store
            .revoke_user_sessions(user, Some(keep.id), t0())
            .await
            .unwrap(),
        2
    );
    assert!(active(&f, 6).await && active(&f, 9).await);
    assert!(!active(&f, 7).await && !active(&f, 8).await);
    assert_eq!(
        f.store
            .revoke_user_sessions(user, None, t0())
            .await
            .unwrap(),
        1
    );
    assert!(!active(&f, 6).await);
}

/// Listing shows only active sessions of the user, newest first.
pub async fn list_shows_active_sessions_newest_first(f: SessionFixture) {
    let user = f.user().await;
    let (old, new, revoked) = (
        session(10, user, t0()),
        session(11, user, t0() + Duration::minutes(1)),
        session(12, user, t0()),
    );
    for s in [
        old.clone(),
        new.clone(),
        revoked.clone(),
        session(13, f.user().await, t0()),
    ] {
        f.store.create_session(s).await.unwrap();
    }
    f.store
        .revoke_session(user, revoked.id, t0())
        .await
        .unwrap();
    let now = t0() + Duration::minutes(2);
    let ids: Vec<_> = f
        .store
        .list_user_sessions(user, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [new.id, old.id]);
    assert_eq!(f.store.count_user_sessions(user, now).await.unwrap(), 2);
    // After the idle deadline nothing is active.
    let late = t0() + Duration::minutes(40);
    assert_eq!(f.store.count_user_sessions(user, late).await.unwrap(), 0);
    assert!(
        f.store
            .list_user_sessions(user, late)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Cleanup removes dead sessions and keeps live ones.
pub async fn delete_expired_keeps_live_sessions(f: SessionFixture) {
    let user = f.user().await;
    let old = session(14, user, t0());
    let live = session(15, user, t0() + Duration::hours(2));
    f.store.create_session(old).await.unwrap();
    f.store.create_session(live.clone()).await.unwrap();
    let now = t0() + Duration::hours(2) + Duration::minutes(1);
    assert!(f.store.delete_expired_sessions(now).await.unwrap() >= 1);
    assert!(stored(&f, 14).await.is_none_or(|s| !s.is_active(now)));
    assert_eq!(stored(&f, 15).await, Some(live));
}

/// S5: revoke-all racing many touches leaves no session usable.
pub async fn revoke_all_racing_touches_leaves_no_usable_session(f: SessionFixture) {
    let user = f.user().await;
    let sessions: Vec<_> = (20..30).map(|n| session(n, user, t0())).collect();
    for s in &sessions {
        f.store.create_session(s.clone()).await.unwrap();
    }
    let mut tasks = Vec::new();
    for round in 0..5_i64 {
        for s in &sessions {
            let (store, hash) = (Arc::clone(&f.store), s.token_hash);
            let at = t0() + Duration::seconds(round);
            tasks.push(tokio::spawn(async move {
                store
                    .touch_session(&hash, at, at + Duration::minutes(30))
                    .await
            }));
        }
    }
    let store = Arc::clone(&f.store);
    let revoke = tokio::spawn(async move { store.revoke_user_sessions(user, None, t0()).await });
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    revoke.await.unwrap().unwrap();
    let now = t0() + Duration::seconds(10);
    for n in 20..30 {
        assert!(
            stored(&f, n).await.is_none_or(|s| !s.is_active(now)),
            "session {n} survived"
        );
    }
    assert!(
        f.store
            .list_user_sessions(user, now)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Creating a session answers how many of its user's sessions are active at
/// its creation, itself included, as `count_user_sessions` counts them:
/// revoked and ended sessions and other users' are not counted.
pub async fn creating_a_session_counts_the_users_active_sessions(f: SessionFixture) {
    let (user, other) = (f.user().await, f.user().await);
    let first = session(21, user, t0());
    assert_eq!(
        f.store
            .create_session_and_count(first.clone())
            .await
            .unwrap(),
        1
    );
    let revoked = session(22, user, t0());
    assert_eq!(
        f.store
            .create_session_and_count(revoked.clone())
            .await
            .unwrap(),
        2
    );
    assert!(
        f.store
            .revoke_session(user, revoked.id, t0())
            .await
            .unwrap()
    );
    assert_eq!(
        f.store
            .create_session_and_count(session(23, other, t0()))
            .await
            .unwrap(),
        1
    );
    // Made after the first one's idle deadline: only the new one is active.
    let later = t0() + Duration::minutes(31);
    let third = session(24, user, later);
    assert_eq!(f.store.create_session_and_count(third).await.unwrap(), 1);
    let now = t0() + Duration::minutes(1);
    let fourth = session(25, user, now);
    let counted = f.store.create_session_and_count(fourth).await.unwrap();
    assert_eq!(
        counted,
        f.store.count_user_sessions(user, now).await.unwrap()
    );
    assert_eq!(counted, 3, "the first, the one made later and this one");
    assert!(stored(&f, 25).await.is_some(), "the session is stored too");
}
