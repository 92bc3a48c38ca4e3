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
    AuthMethod, ChallengePurpose, ChallengeStore, NewChallenge, NewToken, NewUser, PasswordStore,
    RecoveryCodeStore, SealedSecret, SessionId, SessionRecord, SessionStore, StoreError,
    TokenCheck, TokenStore, TotpStore, UserId, UserStore,
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
        password_hash: Some(PasswordHashString::new(
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
        )),
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
        .touch_session(&s.token_hash, later, later + Duration::minutes(30))
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
    let rows: i64 = sqlx::query_scalar(support::in_schema(
        &store,
        "SELECT count(*) FROM {schema}.one_time_tokens",
    ))
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
    let bare = support::bare_event(id, t0(), AuditKind::AccountDisabled);
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
    let version: i64 = sqlx::query_scalar(support::in_schema(
        &store,
        "SELECT max(version) FROM {schema}._sqlx_migrations",
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    sqlx::query(support::in_schema(
        &store,
        "UPDATE {schema}._sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = $1",
    ))
    .bind(version)
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Modified(v)) if v == version
    ));
    sqlx::query(support::in_schema(
        &store,
        "UPDATE {schema}._sqlx_migrations SET success = false WHERE version = $1",
    ))
    .bind(version)
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Dirty(v)) if v == version
    ));
}

/// Counts the rows of `table` (a name from this file).
async fn rows(store: &PgStore, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {{schema}}.{table}");
    sqlx::query_scalar(support::in_schema(store, &sql))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// A user is created with its password in one statement: a user without a
/// password has no credential row, and a creation refused for a taken email
/// writes no password (the existing user's stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_its_password_are_created_together() {
    let Some(store) = support::store().await else {
        return;
    };
    let email = EmailAddress::parse("together@store.example.com").unwrap();
    let first = NewUser {
        id: UserId::new_random(),
        email: email.clone(),
        password_hash: None,
        created_at: t0(),
    };
    let created = store.create_user(first).await.unwrap();
    assert_eq!(store.password(created.id).await.unwrap(), None);
    assert_eq!(rows(&store, "password_credentials").await, 0);
    let taken = NewUser {
        id: UserId::new_random(),
        email,
        password_hash: Some(PasswordHashString::new("$argon2id$taken")),
        created_at: t0(),
    };
    assert!(matches!(
        store.create_user(taken).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(rows(&store, "password_credentials").await, 0);
    // A password can be added later (the next sign-in methods need it).
    store
        .set_password(
            created.id,
            &PasswordHashString::new("$argon2id$later"),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(rows(&store, "password_credentials").await, 1);
}

/// Deleting a user deletes its credentials and its challenges; challenges of
/// nobody stay. Replacing recovery codes of an unknown user says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_deletion_removes_credentials_and_challenges() {
    let Some(store) = support::store().await else {
        return;
    };
    let owner = user(&store).await;
    let secret = SealedSecret {
        key_id: "k1".into(),
        sealed: vec![1; 40],
    };
    assert!(store.put_pending_totp(owner, &secret, t0()).await.unwrap());
    store
        .replace_recovery_codes(owner, &[TokenHash([1; 32]), TokenHash([2; 32])], t0())
        .await
        .unwrap();
    let challenge = |n: u8, user_id| NewChallenge {
        hash: TokenHash([n; 32]),
        purpose: ChallengePurpose::SECOND_FACTOR,
        user_id,
        payload: vec![n],
        created_at: t0(),
        expires_at: t0() + Duration::minutes(5),
    };
    store
        .insert_challenge(challenge(3, Some(owner)))
        .await
        .unwrap();
    store.insert_challenge(challenge(4, None)).await.unwrap();
    store.create_session(session(5, owner)).await.unwrap();

    sqlx::query(support::in_schema(
        &store,
        "DELETE FROM {schema}.users WHERE id = $1",
    ))
    .bind(owner.0)
    .execute(store.pool())
    .await
    .unwrap();
    for table in [
        "password_credentials",
        "totp_credentials",
        "recovery_codes",
        "sessions",
    ] {
        assert_eq!(rows(&store, table).await, 0, "{table}");
    }
    assert_eq!(
        rows(&store, "challenges").await,
        1,
        "a challenge of nobody stays"
    );
    assert!(matches!(
        store
            .replace_recovery_codes(owner, &[TokenHash([6; 32])], t0())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.put_pending_totp(owner, &secret, t0()).await,
        Err(StoreError::NotFound)
    ));
}

/// An expired challenge is refused and deleted by the take that found it;
/// cleanup reports how many expired ones went and keeps the live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_challenges_are_refused_and_cleaned_up() {
    let Some(store) = support::store().await else {
        return;
    };
    let purpose = ChallengePurpose::SECOND_FACTOR;
    for (n, minutes) in [(1, 5), (2, 5), (3, 60)] {
        let new = NewChallenge {
            hash: TokenHash([n; 32]),
            purpose,
            user_id: None,
            payload: Vec::new(),
            created_at: t0(),
            expires_at: t0() + Duration::minutes(minutes),
        };
        store.insert_challenge(new).await.unwrap();
    }
    let late = t0() + Duration::minutes(6);
    assert_eq!(
        store
            .take_challenge(purpose, &TokenHash([1; 32]), late)
            .await
            .unwrap(),
        None
    );
    assert_eq!(rows(&store, "challenges").await, 2);
    assert_eq!(store.delete_expired_challenges(late).await.unwrap(), 1);
    let live = store
        .take_challenge(purpose, &TokenHash([3; 32]), late)
        .await
        .unwrap()
        .unwrap();
    assert!(live.payload.is_empty());
}

/// Session methods round-trip through `text[]` in order, and a value that is
/// not a method is an error, not a silently dropped method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_methods_round_trip_and_unknown_ones_are_errors() {
    let Some(store) = support::store().await else {
        return;
    };
    let mut s = session(7, user(&store).await);
    s.methods = vec![
        AuthMethod::Password,
        AuthMethod::RecoveryCode,
        AuthMethod::Oidc {
            issuer: "https://id.example.com/a,b{c}".into(),
        },
    ];
    store.create_session(s.clone()).await.unwrap();
    let got = store
        .session_by_token(&s.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.methods, s.methods);
    sqlx::query(support::in_schema(
        &store,
        "UPDATE {schema}.sessions SET methods = '{password,sms}'",
    ))
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.session_by_token(&s.token_hash).await,
        Err(StoreError::Other(_))
    ));
}

/// Issue 18: every cleanup deletes in bounded batches, one statement each,
/// and loops until nothing dead is left: with a batch of 3, each call here
/// takes several statements (sessions: one per heap page, over about 30 pages
/// of rows made wide by their user agents) and still deletes every dead row
/// and no live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_in_batches_until_nothing_dead_is_left() {
    let Some(store) = support::store().await else {
        return;
    };
    let store = store.purge_batch_size(3);
    let owner = user(&store).await;
    let agent = "a".repeat(1000);
    for n in 0..200_u8 {
        let mut dead = session(n, owner);
        dead.user_agent = Some(agent.clone());
        store.create_session(dead).await.unwrap();
    }
    let mut live = session(250, owner);
    live.idle_expires_at = t0() + Duration::days(2);
    live.absolute_expires_at = t0() + Duration::days(2);
    store.create_session(live.clone()).await.unwrap();
    for n in 0..10_u8 {
        let expires_at = t0() + Duration::minutes(if n == 0 { 120 } else { 30 });
        let token = NewToken {
            hash: TokenHash([n; 32]),
            purpose: TokenPurpose::PasswordReset,
            user_id: owner,
            created_at: t0(),
            expires_at,
        };
        store.insert_token(token).await.unwrap();
        let challenge = NewChallenge {
            hash: TokenHash([n; 32]),
            purpose: ChallengePurpose::SECOND_FACTOR,
            user_id: Some(owner),
            payload: vec![n],
            created_at: t0(),
            expires_at,
        };
        store.insert_challenge(challenge).await.unwrap();
        let key = AttemptKey::Account(AttemptScope::Login, format!("{n}@batch.example"));
        let ttl = expires_at - t0();
        store.increment(&key, t0(), ttl).await.unwrap();
        let at = t0() - Duration::minutes(if n == 0 { 0 } else { 10 });
        store
            .record(support::bare_event(owner, at, AuditKind::AccountDisabled))
            .await
            .unwrap();
    }
    let unverified: Vec<UserId> = {
        let mut ids = Vec::new();
        for n in 0..7 {
            let new = NewUser {
                id: UserId::new_random(),
                email: EmailAddress::parse(&format!("unverified{n}@batch.example")).unwrap(),
                password_hash: None,
                created_at: t0() - Duration::days(3),
            };
            ids.push(store.create_user(new).await.unwrap().id);
        }
        ids
    };

    let later = t0() + Duration::hours(1);
    assert_eq!(store.delete_expired_sessions(later).await.unwrap(), 200);
    assert_eq!(
        store.session_by_token(&live.token_hash).await.unwrap(),
        Some(live)
    );
    assert_eq!(store.delete_expired_tokens(later).await.unwrap(), 9);
    assert_eq!(store.delete_expired_challenges(later).await.unwrap(), 9);
    assert_eq!(store.delete_expired_attempts(later).await.unwrap(), 9);
    assert_eq!(
        store
            .delete_events_before(t0() - Duration::minutes(1))
            .await
            .unwrap(),
        9
    );
    let mut gone = store
        .delete_unverified_users(t0() - Duration::days(1))
        .await
        .unwrap();
    gone.sort_by_key(|u| u.0);
    let mut expected = unverified;
    expected.sort_by_key(|u| u.0);
    assert_eq!(gone, expected);
    // What is left is live: the owner (unverified too, but created after the
    // cut-off) and its token that expires later.
    assert!(store.user_by_id(owner).await.unwrap().is_some());
    assert!(matches!(
        store
            .consume_token(TokenPurpose::PasswordReset, &TokenHash([0; 32]), later)
            .await,
        Ok(TokenCheck::Valid(_))
    ));
}
