//! Round trips per request on the deployment DESIGN 8 describes: sessions,
//! counters and challenges on Redis (a throwaway `redis-server`, so every
//! command it sees, through `MONITOR`, is this test's), users and the rest on
//! PostgreSQL. `authenticate` with a warm snapshot is one Redis command and no
//! user-store call. Needs `DATABASE_URL` and `redis-server`; without them it
//! skips, unless `CI=true`, where it fails.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "a failed unwrap is a failed test; the counts are printed"
)]

mod support;

#[path = "../../auth-store-postgres/tests/support/mod.rs"]
mod pg_support;

use std::sync::Arc;

use auth_core::conformance::{Harness, Stores};
use auth_core::{AuthError, Password};
use auth_store_redis::{RedisAttemptStore, RedisChallengeStore, RedisSessionStore};
use support::{CountingUsers, Monitor};
use time::Duration;

const PW: &str = "purple otter sings";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authenticate_is_one_redis_command_and_no_user_read_when_warm() {
    if !support::have_redis_server() {
        return;
    }
    let Some(database_url) = pg_support::database_url() else {
        return;
    };
    let server = support::Server::start(&[]);
    let (_, schema) = pg_support::fresh_schema(&database_url).await;
    let db = Arc::new(
        pg_support::test_pool()
            .connect_with(schema)
            .await
            .unwrap_or_else(|e| panic!("connecting the store: {e:?}")),
    );
    db.migrate().await.unwrap();
    let users = Arc::new(CountingUsers::new(db.clone()));
    let conn = support::connect(&server.url(), &support::fresh_prefix());
    let sessions = Arc::new(RedisSessionStore::new(conn.clone()));
    let h = Harness::new(Stores {
        users: users.clone(),
        passwords: db.clone(),
        totp: db.clone(),
        recovery_codes: db.clone(),
        tokens: db.clone(),
        audit: db,
        sessions: sessions.clone(),
        session_cache: Some(sessions),
        challenges: Arc::new(RedisChallengeStore::new(conn.clone())),
        attempts: Arc::new(RedisAttemptStore::new(conn)),
    });
    h.verified_user("counted@example.com", PW).await;
    // Once through every path, so the scripts are loaded (a first EVALSHA
    // of a script costs a SCRIPT LOAD and a retry) and the connection is open.
    let first = h.login("counted@example.com", PW).await;
    h.auth.authenticate(&first).await.unwrap();
    h.clock.advance(Duration::minutes(2));
    h.auth.authenticate(&first).await.unwrap();
    let _ = h
        .auth
        .login(
            "counted@example.com",
            &Password::new("not the password"),
            false,
            &Harness::ctx(2),
        )
        .await;

    let mut redis = Monitor::start(&server);
    users.take();
    let token = h.login("counted@example.com", PW).await;
    let login = redis.take();
    eprintln!(
        "successful login: Redis {login:?}, user store {}",
        users.take()
    );

    let wrong = h
        .auth
        .login(
            "counted@example.com",
            &Password::new("not the password"),
            false,
            &Harness::ctx(1),
        )
        .await;
    assert!(
        matches!(wrong, Err(AuthError::InvalidCredentials)),
        "{wrong:?}"
    );
    let failed = redis.take();
    eprintln!(
        "failed login: Redis {failed:?}, user store {}",
        users.take()
    );

    // Cold: the session, then the user from PostgreSQL, kept as the snapshot.
    h.auth.authenticate(&token).await.unwrap();
    assert_eq!(users.take(), 1, "a cold snapshot reads the user once");
    assert_eq!(redis.take(), ["hgetall", "evalsha"], "read, then keep");

    // Warm: one command, no user read, as long as no touch is due.
    for _ in 0..3 {
        let found = h.auth.authenticate(&token).await.unwrap();
        assert_eq!(found.user.email.normalized(), "counted@example.com");
        assert_eq!(redis.take(), ["hgetall"], "one round trip");
        assert_eq!(users.take(), 0, "no user-store call with a warm snapshot");
    }

    // Past the touch interval the idle deadline is written back: the read,
    // the touch script and the index score, still no user read.
    h.clock.advance(Duration::minutes(2));
    h.auth.authenticate(&token).await.unwrap();
    assert_eq!(users.take(), 0);
    assert_eq!(redis.take(), ["hgetall", "evalsha", "zadd"]);
}
