//! [`AttemptStore`] checks (S6).

use std::sync::Arc;

use time::Duration;

use super::t0;
use crate::store::{AttemptKey, AttemptScope, AttemptState, AttemptStore, UserStore};

/// Holds a store as the checks take it.
pub fn fixture<S: AttemptStore + 'static>(
    store: Arc<S>,
    _users: Option<Arc<dyn UserStore>>,
) -> Arc<dyn AttemptStore> {
    store
}

fn account(email: &str) -> AttemptKey {
    AttemptKey::Account(AttemptScope::Login, email.to_owned())
}

const TTL: Duration = Duration::hours(1);

/// Each increment adds one and records its time.
pub async fn increment_counts_and_records_the_time(store: Arc<dyn AttemptStore>) {
    let key = account("a@example.com");
    assert_eq!(
        store.attempts(&key, t0()).await.unwrap(),
        AttemptState::default()
    );
    for n in 1..=3_u32 {
        let at = t0() + Duration::seconds(i64::from(n));
        let state = store.increment(&key, at, TTL).await.unwrap();
        assert_eq!(
            state,
            AttemptState {
                count: n,
                last_at: Some(at)
            }
        );
    }
    let at = t0() + Duration::seconds(3);
    assert_eq!(
        store.attempts(&key, at).await.unwrap(),
        AttemptState {
            count: 3,
            last_at: Some(at)
        }
    );
}

/// S6: 50 concurrent increments from zero end at exactly 50 (Devise CVE-2019-5421).
pub async fn fifty_concurrent_increments_count_fifty(store: Arc<dyn AttemptStore>) {
    let key = account("race@example.com");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, key) = (Arc::clone(&store), key.clone());
            tokio::spawn(async move { store.increment(&key, t0(), TTL).await.unwrap().count })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<u32>>(),
        "every increment saw its own count"
    );
    assert_eq!(store.attempts(&key, t0()).await.unwrap().count, 50);
}

/// S6: a counter expires `ttl` after its last increment, and counts from zero after.
pub async fn counters_expire_ttl_after_the_last_increment(store: Arc<dyn AttemptStore>) {
    let key = account("ttl@example.com");
    store.increment(&key, t0(), TTL).await.unwrap();
    let second = t0() + Duration::minutes(30);
    store.increment(&key, second, TTL).await.unwrap();
    // One hour after the first increment, but not after the last: still counting.
    assert_eq!(store.attempts(&key, t0() + TTL).await.unwrap().count, 2);
    let expired = second + TTL + Duration::seconds(1);
    assert_eq!(
        store.attempts(&key, expired).await.unwrap(),
        AttemptState::default()
    );
    assert_eq!(store.increment(&key, expired, TTL).await.unwrap().count, 1);
}

/// S6: the compare-and-swap counts only from the state it was given: from
/// nothing (absent or expired) and from the live state, never from a stale one.
pub async fn increment_if_unchanged_counts_only_from_the_expected_state(
    store: Arc<dyn AttemptStore>,
) {
    let key = account("cas@example.com");
    let none = AttemptState::default();
    let first = store
        .increment_if_unchanged(&key, none, t0(), TTL)
        .await
        .unwrap();
    let one = AttemptState {
        count: 1,
        last_at: Some(t0()),
    };
    assert_eq!(first, Some(one));
    let at = t0() + Duration::seconds(1);
    assert_eq!(
        store
            .increment_if_unchanged(&key, none, at, TTL)
            .await
            .unwrap(),
        None,
        "a live counter is not the empty state"
    );
    let stale_time = AttemptState {
        count: 1,
        last_at: Some(at),
    };
    assert_eq!(
        store
            .increment_if_unchanged(&key, stale_time, at, TTL)
            .await
            .unwrap(),
        None,
        "the last time is compared too"
    );
    let second = store
        .increment_if_unchanged(&key, one, at, TTL)
        .await
        .unwrap();
    assert_eq!(
        second,
        Some(AttemptState {
            count: 2,
            last_at: Some(at)
        })
    );
    assert_eq!(store.attempts(&key, at).await.unwrap().count, 2);
    // Expired: it reads as nothing, and counts from nothing again.
    let expired = at + TTL;
    assert_eq!(store.attempts(&key, expired).await.unwrap(), none);
    assert_eq!(
        store
            .increment_if_unchanged(&key, second.unwrap(), expired, TTL)
            .await
            .unwrap(),
        None,
        "an expired counter is not its old state"
    );
    assert_eq!(
        store
            .increment_if_unchanged(&key, none, expired, TTL)
            .await
            .unwrap()
            .map(|s| s.count),
        Some(1)
    );
}

/// S6: of 50 concurrent compare-and-swaps from one state exactly one counts,
/// from nothing and from a live counter alike (the engine's lockout relies on
/// it: Devise CVE-2019-5421).
pub async fn fifty_concurrent_increments_if_unchanged_have_one_winner(
    store: Arc<dyn AttemptStore>,
) {
    let key = account("cas-race@example.com");
    let mut expected = AttemptState::default();
    for round in 0..2_i64 {
        let at = t0() + Duration::seconds(round);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (store, key) = (Arc::clone(&store), key.clone());
                tokio::spawn(async move {
                    store
                        .increment_if_unchanged(&key, expected, at, TTL)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            won.extend(t.await.unwrap());
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        expected = won[0];
        assert_eq!(store.attempts(&key, at).await.unwrap(), expected);
    }
    assert_eq!(expected.count, 2);
}

/// Clearing resets to zero.
pub async fn clear_resets_to_zero(store: Arc<dyn AttemptStore>) {
    let key = account("clear@example.com");
    store.increment(&key, t0(), TTL).await.unwrap();
    store.clear(&key).await.unwrap();
    assert_eq!(
        store.attempts(&key, t0()).await.unwrap(),
        AttemptState::default()
    );
    store.clear(&key).await.unwrap(); // clearing nothing is fine
}

/// Scopes, accounts, IPs and IPv6 networks count separately; a network's
/// counter is not the counter of its first address.
pub async fn keys_are_independent(store: Arc<dyn AttemptStore>) {
    let ip = "198.51.100.4"
        .parse()
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let net: std::net::Ipv6Addr = "2001:db8:1::".parse().unwrap();
    let keys = [
        account("k@example.com"),
        account("l@example.com"),
        AttemptKey::Account(AttemptScope::ResetRequest, "k@example.com".into()),
        AttemptKey::Ip(AttemptScope::Login, ip),
        AttemptKey::Ip(AttemptScope::Register, ip),
        AttemptKey::Ip(AttemptScope::Login, net.into()),
        AttemptKey::Network(AttemptScope::Login, net),
        AttemptKey::Network(AttemptScope::Register, net),
    ];
    for (i, key) in keys.iter().enumerate() {
        for _ in 0..=i {
            store.increment(key, t0(), TTL).await.unwrap();
        }
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.attempts(key, t0()).await.unwrap().count as usize,
            i + 1,
            "{key:?}"
        );
    }
}

/// Cleanup forgets expired counters only.
pub async fn delete_expired_forgets_only_expired_counters(store: Arc<dyn AttemptStore>) {
    let (old, live) = (account("old@example.com"), account("live@example.com"));
    store.increment(&old, t0(), TTL).await.unwrap();
    store.increment(&live, t0() + TTL, TTL).await.unwrap();
    let now = t0() + TTL + Duration::minutes(1);
    store.delete_expired_attempts(now).await.unwrap();
    assert_eq!(store.attempts(&old, now).await.unwrap().count, 0);
    assert_eq!(store.attempts(&live, now).await.unwrap().count, 1);
}

/// Reading several counters at once answers, in order, what reading each
/// does: live, expired, absent and repeated keys alike.
pub async fn counters_read_together_read_as_each_alone(store: Arc<dyn AttemptStore>) {
    let (live, expired, absent) = (
        account("together-live@example.com"),
        AttemptKey::client(AttemptScope::Login, "192.0.2.90".parse().unwrap()),
        account("together-absent@example.com"),
    );
    for _ in 0..3 {
        store.increment(&live, t0(), TTL).await.unwrap();
    }
    store.increment(&expired, t0() - TTL, TTL).await.unwrap();
    let keys = [live.clone(), expired.clone(), absent.clone(), live.clone()];
    let together = store.attempts_of(&keys, t0()).await.unwrap();
    let mut alone = Vec::new();
    for key in &keys {
        alone.push(store.attempts(key, t0()).await.unwrap());
    }
    assert_eq!(together, alone);
    assert_eq!(
        together.iter().map(|s| s.count).collect::<Vec<_>>(),
        [3, 0, 0, 3]
    );
    assert!(store.attempts_of(&[], t0()).await.unwrap().is_empty());
}
