//! Records an earlier version of this crate wrote, still in Redis when a new
//! version starts (sessions outlive deployments): they read back, and keep
//! working, with what the missing fields meant when they were written.

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
use auth_core::store::{AuthMethod, SessionId, SessionStore, UserId};
use auth_store_redis::RedisSessionStore;
use time::{Duration, OffsetDateTime};

fn ns(t: OffsetDateTime) -> String {
    t.unix_timestamp_nanos().to_string()
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// A session written before sessions recorded their sign-in methods (no `me`
/// field) was signed in with a password, the only method there was: it reads
/// back as such, is listed, and a touch keeps it so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_methods_reads_as_a_password_sign_in() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let prefix = support::fresh_prefix();
    let _cleanup = support::Cleanup::new(&url, &prefix);
    let (user, id) = (UserId::new_random(), SessionId::new_random());
    let (u, s) = (user.0.simple().to_string(), id.0.simple().to_string());
    let hash = TokenHash([0x5a; 32]);
    let (created, idle, absolute) = (
        t0(),
        t0() + Duration::minutes(30),
        t0() + Duration::hours(24),
    );

    // Exactly what the previous version's create wrote, key by key.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection_with_timeout(StdDuration::from_secs(2))
        .unwrap();
    let session_key = format!("{prefix}:{{u:{u}}}:s:{s}");
    let () = redis::cmd("HSET")
        .arg(&session_key)
        .arg(&[
            ("id", s.clone()),
            ("th", "5a".repeat(32)),
            ("uid", u.clone()),
            ("ca", ns(created)),
            ("au", ns(created)),
            ("ls", ns(created)),
            ("ie", ns(idle)),
            ("ae", ns(absolute)),
            ("iem", ms(idle).to_string()),
            ("aem", ms(absolute).to_string()),
            ("ip", "192.0.2.1".to_owned()),
        ])
        .arg("ua")
        .arg("old/1")
        .query::<i64>(&mut conn)
        .map(drop)
        .unwrap();
    let () = redis::cmd("ZADD")
        .arg(format!("{prefix}:{{u:{u}}}:idx"))
        .arg(ms(idle))
        .arg(&s)
        .query::<i64>(&mut conn)
        .map(drop)
        .unwrap();
    for (key, value) in [
        (
            format!("{prefix}:tok:{}", "5a".repeat(32)),
            format!("{u}:{s}"),
        ),
        (format!("{prefix}:sid:{s}"), u.clone()),
    ] {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query::<String>(&mut conn)
            .map(drop)
            .unwrap();
    }

    let store = RedisSessionStore::new(support::connect(&url, &prefix));
    let read = store.session_by_token(&hash).await.unwrap().unwrap();
    assert_eq!(read.methods, vec![AuthMethod::Password]);
    assert_eq!(
        (
            read.id,
            read.user_id,
            read.created_at,
            read.authenticated_at
        ),
        (id, user, created, created)
    );
    assert_eq!(read.user_agent.as_deref(), Some("old/1"));

    let listed = store.list_user_sessions(user, t0()).await.unwrap();
    assert_eq!(listed, vec![read.clone()]);

    let seen = t0() + Duration::minutes(10);
    store
        .touch_session(id, seen, seen + Duration::minutes(30))
        .await
        .unwrap();
    let touched = store.session_by_token(&hash).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, seen);
    assert_eq!(touched.methods, vec![AuthMethod::Password]);

    assert!(store.revoke_session(user, id, seen).await.unwrap());
}
