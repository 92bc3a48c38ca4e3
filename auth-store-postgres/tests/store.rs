//! Behaviour of the PostgreSQL store beyond what the shared suite can observe:
//! what the statements leave in the rows, cleanup of used and revoked records,
//! boundaries, and the schema check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed check panics"
)]

mod support;

use auth_core::store::{
    AttemptKey, AttemptScope, AttemptState, AttemptStore, AuditEvent, AuditKind, AuditSink,
    NewToken, NewUser, SessionId, SessionRecord, SessionStore, TokenCheck, TokenStore, UserId,
    UserStore,
};
use auth_core::{EmailAddress, PasswordHashString, TokenHash, TokenPurpose};
use auth_store_postgres::{PgStore, SchemaError};
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    auth_core::conformance::t0()
}

async fn user(store: &PgStore) -> UserId {
    let id = UserId::new_random();
    let new = NewUser {
        id,
        email: EmailAddress::parse(&format!("{}@store.example.com", id.0.simple())).unwrap(),
        password_hash: PasswordHashString::new("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"),
        created_at: t0(),
    };
    store.create_user(new).await.unwrap().id
}

fn session(n: u8, user: UserId) -> SessionRecord {
    SessionRecord {
        id: SessionId::new_random(),
        token_hash: TokenHash([n; 32]),
        user_id: user,
        created_at: t0(),
        authenticated_at: t0(),
        methods: vec![AuthMethod::Password],
        last_seen_at: t0(),
        idle_expires_at: t0() + Duration::minutes(30),
        absolute_expires_at: t0() + Duration::hours(24),
        revoked_at: None,
        ip: None,
        user_agent: None,
    }
}

/// A touch of a revoked session changes nothing in its row (not only "it stays
/// revoked"): the statement matches live sessions only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_leaves_a_revoked_session_untouched() {
    let Some(store) = support::store().await else {
        return;
    };
    let s = session(1, user(&store).await);
    store.create_session(s.clone()).await.unwrap();
    assert!(store.revoke_session(s.user_id, s.id, t0()).await.unwrap());
    let later = t0() + Duration::minutes(5);
    store
        .touch_session(s.id, later, later + Duration::minutes(30))
        .await
        .unwrap();
    let got = store
        .session_by_token(&s.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.last_seen_at, got.idle_expires_at, got.revoked_at),
        (s.last_seen_at, s.idle_expires_at, Some(t0()))
    );
    // Revoke-all skips it too: it was already revoked.
    assert_eq!(
        store
            .revoke_user_sessions(s.user_id, None, later)
            .await
            .unwrap(),
        0
    );
}

/// Cleanup removes revoked sessions and used tokens as well as expired ones, and
/// reports how many rows went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_revoked_sessions_and_used_tokens() {
    let Some(store) = support::store().await else {
        return;
    };
    let owner = user(&store).await;
    let (live, revoked) = (session(2, owner), session(3, owner));
    store.create_session(live.clone()).await.unwrap();
    store.create_session(revoked.clone()).await.unwrap();
    store.revoke_session(owner, revoked.id, t0()).await.unwrap();
    let now = t0() + Duration::minutes(1);
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 1);
    assert_eq!(
        store.session_by_token(&revoked.token_hash).await.unwrap(),
        None
    );
    assert_eq!(
        store.session_by_token(&live.token_hash).await.unwrap(),
        Some(live)
    );

    for n in [4, 5] {
        let token = NewToken {
            hash: TokenHash([n; 32]),
            purpose: TokenPurpose::PasswordReset,
            user_id: owner,
            created_at: t0(),
            expires_at: t0() + Duration::minutes(30),
        };
        store.insert_token(token).await.unwrap();
    }
    let used = TokenHash([4; 32]);
    assert_eq!(
        store
            .consume_token(TokenPurpose::PasswordReset, &used, t0())
            .await
            .unwrap(),
        TokenCheck::Valid(owner)
    );
    assert_eq!(store.delete_expired_tokens(now).await.unwrap(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM one_time_tokens")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the unused, unexpired token is left");
}

/// At the exact expiry instant a counter reads as zero and the next increment
/// restarts it, consistently (`expires_at <= now` is expired in both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_is_expired_at_its_expiry_instant() {
    let Some(store) = support::store().await else {
        return;
    };
    let key = AttemptKey::Ip(AttemptScope::Register, "192.0.2.1".parse().unwrap());
    let ttl = Duration::minutes(10);
    store.increment(&key, t0(), ttl).await.unwrap();
    store.increment(&key, t0(), ttl).await.unwrap();
    let edge = t0() + ttl;
    let just_before = edge - Duration::seconds(1);
    assert_eq!(store.attempts(&key, just_before).await.unwrap().count, 2);
    assert_eq!(
        store.attempts(&key, edge).await.unwrap(),
        AttemptState::default()
    );
    assert_eq!(
        store.increment(&key, edge, ttl).await.unwrap(),
        AttemptState {
            count: 1,
            last_at: Some(edge)
        }
    );
    assert_eq!(store.delete_expired_attempts(edge).await.unwrap(), 0);
    assert_eq!(store.delete_expired_attempts(edge + ttl).await.unwrap(), 1);
}

/// An event with nothing but its kind and time comes back exactly, and one with
/// a version 6 IP address and a detail too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_round_trip_with_and_without_optional_fields() {
    let Some(store) = support::store().await else {
        return;
    };
    let id = user(&store).await;
    let bare = AuditEvent {
        at: t0(),
        kind: AuditKind::AccountDisabled,
        user_id: Some(id),
        email: None,
        ip: None,
        user_agent: None,
        request_id: None,
        detail: None,
        count: 1,
    };
    let full = AuditEvent {
        at: t0() + Duration::seconds(1),
        kind: AuditKind::PasswordChangeFailed,
        email: Some("someone@example.com".into()),
        ip: Some("2001:db8::1".parse().unwrap()),
        user_agent: Some("agent \"quoted\" \u{e9}".into()),
        request_id: Some("req-1".into()),
        detail: Some("weak_password".into()),
        ..bare.clone()
    };
    store.record(bare.clone()).await.unwrap();
    store.record(full.clone()).await.unwrap();
    assert_eq!(store.events_for_user(id, 10).await.unwrap(), [full, bare]);
    assert!(store.events_for_user(id, 0).await.unwrap().is_empty());
}

/// The schema check names a changed or failed migration, not only a missing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_schema_reports_a_modified_or_failed_history() {
    let Some(store) = support::store().await else {
        return;
    };
    store.check_schema().await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = $1")
        .bind(version)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Modified(v)) if v == version
    ));
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(version)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Dirty(v)) if v == version
    ));
}
