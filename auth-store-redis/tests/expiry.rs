//! What lands in Redis: the documented keys, each with a TTL computed from the
//! times the engine passes (never Redis's clock): sessions follow the idle
//! deadline and never pass the absolute one, challenges live as long as they
//! are valid, so nothing grows without bound.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::time::Duration as StdDuration;

use auth_core::TokenHash;
use auth_core::conformance::t0;
use auth_core::store::{
    AttemptKey, AttemptScope, AttemptStore, AuthMethod, ChallengePurpose, ChallengeStore,
    NewChallenge, SessionId, SessionRecord, SessionStore, UserId,
};
use auth_store_redis::{RedisAttemptStore, RedisChallengeStore, RedisSessionStore};
use time::Duration;

fn pttl(url: &str, key: &str) -> i64 {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(StdDuration::from_secs(2))
        .unwrap();
    redis::cmd("PTTL").arg(key).query(&mut conn).unwrap()
}

/// Asserts a TTL of `expected` give or take what the test itself took.
fn assert_ttl(url: &str, key: &str, expected: Duration) {
    let expected = i64::try_from(expected.whole_milliseconds()).unwrap();
    let got = pttl(url, key);
    assert!(
        (expected - 10_000..=expected).contains(&got),
        "{key}: TTL {got} ms, expected about {expected} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_keys_expire_with_the_idle_deadline_capped_by_the_absolute_one() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let prefix = support::fresh_prefix();
    let cleanup = support::Cleanup::new(&url, &prefix);
    let store = RedisSessionStore::new(support::connect(&url, &prefix));
    let (user, id) = (UserId::new_random(), SessionId::new_random());
    let u = user.0.simple();
    let session = SessionRecord {
        id,
        token_hash: TokenHash([0xab; 32]),
        user_id: user,
        created_at: t0(),
        authenticated_at: t0(),
        methods: vec![AuthMethod::Password],
        last_seen_at: t0(),
        idle_expires_at: t0() + Duration::minutes(30),
        absolute_expires_at: t0() + Duration::hours(2),
        revoked_at: None,
        ip: None,
        user_agent: None,
    };
    store.create_session(session.clone()).await.unwrap();

    let hash = format!("{prefix}:{{t:{}}}:r", "ab".repeat(16));
    let index = format!("{prefix}:{{u:{u}}}:ix");
    let mut keys = cleanup.keys().unwrap();
    keys.sort();
    let mut expected = vec![hash.clone(), index.clone()];
    expected.sort();
    assert_eq!(keys, expected, "the documented layout");
    assert_ttl(&url, &hash, Duration::minutes(30));
    // A touch does not write the index's TTL: it lives to the absolute deadline.
    assert_ttl(&url, &index, Duration::hours(2));

    // Activity 1 h 45 min in: the idle deadline would pass the absolute one, so
    // the session lives 15 minutes more, not 30.
    let seen = t0() + Duration::minutes(105);
    store
        .touch_session(&session.token_hash, seen, seen + Duration::minutes(30))
        .await
        .unwrap();
    assert_ttl(&url, &hash, Duration::minutes(15));
    assert_ttl(&url, &index, Duration::hours(2)); // never shortened
    let got = store.session_by_token(&session.token_hash).await.unwrap();
    let got = got.unwrap();
    assert_eq!(got.last_seen_at, seen);
    assert_eq!(
        got.idle_expires_at, session.absolute_expires_at,
        "the idle deadline is capped by the absolute one"
    );

    // Activity 10 minutes in: 30 minutes from then.
    let (id2, hash2) = {
        let id2 = SessionId::new_random();
        let s2 = SessionRecord {
            id: id2,
            token_hash: TokenHash([0xcd; 32]),
            absolute_expires_at: t0() + Duration::hours(24),
            ..session.clone()
        };
        store.create_session(s2).await.unwrap();
        (id2, format!("{prefix}:{{t:{}}}:r", "cd".repeat(16)))
    };
    let seen = t0() + Duration::minutes(10);
    store
        .touch_session(&TokenHash([0xcd; 32]), seen, seen + Duration::minutes(30))
        .await
        .unwrap();
    assert_ttl(&url, &hash2, Duration::minutes(30));
    assert_ttl(&url, &index, Duration::hours(24));

    // A revoked session keeps its record (marked) until its TTL ends.
    assert!(store.revoke_session(user, id2, seen).await.unwrap());
    assert_ttl(&url, &hash2, Duration::minutes(30));
    let revoked = store
        .session_by_token(&TokenHash([0xcd; 32]))
        .await
        .unwrap();
    assert_eq!(revoked.unwrap().revoked_at, Some(seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_expire_a_window_after_the_latest_increment() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let prefix = support::fresh_prefix();
    let cleanup = support::Cleanup::new(&url, &prefix);
    let store = RedisAttemptStore::new(support::connect(&url, &prefix));
    let key = AttemptKey::Ip(AttemptScope::Register, "2001:db8::1".parse().unwrap());
    store
        .increment(&key, t0(), Duration::hours(24))
        .await
        .unwrap();
    store
        .increment(&key, t0() + Duration::hours(1), Duration::minutes(15))
        .await
        .unwrap();
    let name = format!("{prefix}:att:register:ip:2001:db8::1");
    assert_eq!(cleanup.keys().unwrap(), std::slice::from_ref(&name));
    assert_ttl(&url, &name, Duration::minutes(15));
    store.clear(&key).await.unwrap();
    assert!(cleanup.keys().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_deletes_dead_sessions_with_their_index_entries() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let prefix = support::fresh_prefix();
    let cleanup = support::Cleanup::new(&url, &prefix);
    let store = RedisSessionStore::new(support::connect(&url, &prefix));
    let user = UserId::new_random();
    let make = |n: u8, created| SessionRecord {
        id: SessionId::new_random(),
        token_hash: TokenHash([n; 32]),
        user_id: user,
        created_at: created,
        authenticated_at: created,
        methods: vec![AuthMethod::Password],
        last_seen_at: created,
        idle_expires_at: created + Duration::minutes(30),
        absolute_expires_at: created + Duration::hours(24),
        revoked_at: None,
        ip: None,
        user_agent: None,
    };
    let (dead, revoked, live) = (
        make(1, t0()),
        make(2, t0() + Duration::hours(1)),
        make(3, t0() + Duration::hours(1)),
    );
    for s in [&dead, &revoked, &live] {
        store.create_session(s.clone()).await.unwrap();
    }
    let now = t0() + Duration::hours(1);
    assert!(store.revoke_session(user, revoked.id, now).await.unwrap());
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 2);
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 0);
    let keys = cleanup.keys().unwrap();
    assert_eq!(keys.len(), 2, "the live session and its index: {keys:?}");
    assert!(keys.iter().all(|k| !k.contains(&"01".repeat(16))));
    let index = keys.iter().find(|k| k.ends_with(":ix")).unwrap();
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<Vec<u8>> = redis::cmd("ZRANGE")
        .arg(index)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        entries,
        [[&live.id.0.as_bytes()[..], &[3; 16]].concat()],
        "only the live session stays listed"
    );
    assert_eq!(
        store.session_by_token(&live.token_hash).await.unwrap(),
        Some(live)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_is_one_key_named_by_its_hash_that_expires_with_it() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let prefix = support::fresh_prefix();
    let cleanup = support::Cleanup::new(&url, &prefix);
    let store = RedisChallengeStore::new(support::connect(&url, &prefix));
    let challenge = NewChallenge {
        hash: TokenHash([0xef; 32]),
        purpose: ChallengePurpose::SECOND_FACTOR,
        user_id: Some(UserId::new_random()),
        payload: b"pending sign-in".to_vec(),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(5),
    };
    store.insert_challenge(challenge.clone()).await.unwrap();
    let key = format!("{prefix}:ch:{}", "ef".repeat(32));
    assert_eq!(cleanup.keys().unwrap(), std::slice::from_ref(&key));
    assert_ttl(&url, &key, Duration::minutes(5));
    // The keyed hash is the only trace of the token; the payload is as given.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection_with_timeout(StdDuration::from_secs(2))
        .unwrap();
    let (purpose, payload): (String, Vec<u8>) = redis::cmd("HMGET")
        .arg(&key)
        .arg("p")
        .arg("d")
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        (purpose.as_str(), payload),
        ("second_factor", challenge.payload)
    );

    // Nothing to purge: Redis expires challenges itself.
    let later = t0() + Duration::hours(1);
    assert_eq!(store.delete_expired_challenges(later).await.unwrap(), 0);
    // A take past the deadline finds it expired and deletes it.
    let late = store
        .take_challenge(ChallengePurpose::SECOND_FACTOR, &challenge.hash, later)
        .await
        .unwrap();
    assert_eq!(late, None);
    assert!(cleanup.keys().unwrap().is_empty());
}
