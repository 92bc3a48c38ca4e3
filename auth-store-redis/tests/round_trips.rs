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
use support::{CountingDb, Monitor};
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
    let (schema, options) = pg_support::fresh_store_schema(&database_url).await;
    let db = Arc::new(
        pg_support::test_pool()
            .schema(schema)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("connecting the store: {e:?}")),
    );
    db.migrate().await.unwrap();
    let pg = Arc::new(CountingDb::new(db.clone()));
    let conn = support::connect(&server.url(), &support::fresh_prefix());
    let sessions = Arc::new(RedisSessionStore::new(conn.clone()));
    let h = Harness::new(Stores {
        users: pg.clone(),
        accounts: Some(pg.clone()),
        passwords: pg.clone(),
        totp: pg.clone(),
        recovery_codes: db.clone(),
        tokens: db.clone(),
        audit: pg.clone(),
        roles: db,
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
    wrong_login(&h, "counted@example.com", 2).await;

    // Two more sessions: the user has three when the counted login starts.
    h.login("counted@example.com", PW).await;
    h.login("counted@example.com", PW).await;

    let mut redis = Monitor::start(&server);
    pg.take();
    let before = redis.reads();
    let token = h.login("counted@example.com", PW).await;
    let round_trips = redis.reads() - before - 1;
    let login = redis.take();
    // The client's and the account's counters (read together), the
    // account's check-and-count (S6), its clear, the index entry (which
    // counts the user's sessions for the cap) and the session (SET NX): six
    // commands in five round trips, however many sessions the user has (the
    // cap used to read each one).
    assert_eq!(
        login,
        ["hmget", "hmget", "evalsha", "del", "evalsha", "set"],
        "successful login"
    );
    assert_eq!(round_trips, 5, "successful login: {login:?}");
    // The account with its password and second factor, again after the
    // session is stored (S5), and the audit event.
    assert_eq!(
        pg.take(),
        ["account_by_email", "account", "record"],
        "successful login"
    );

    // A wrong password, then an unknown address: the same calls in the same
    // round trips (S3).
    for (email, from) in [
        ("counted@example.com", 1),
        ("nobody-counted@example.com", 3),
    ] {
        let before = redis.reads();
        wrong_login(&h, email, from).await;
        let round_trips = redis.reads() - before - 1;
        let failed = redis.take();
        assert_eq!(
            failed,
            ["hmget", "hmget", "evalsha", "evalsha"],
            "failed login of {email}"
        );
        assert_eq!(round_trips, 3, "failed login of {email}: {failed:?}");
        assert_eq!(
            pg.take(),
            ["account_by_email", "record"],
            "failed login of {email}"
        );
    }

    // Cold: the session, then the user from PostgreSQL, kept as the snapshot.
    h.auth.authenticate(&token).await.unwrap();
    assert_eq!(
        pg.take(),
        ["user_by_id"],
        "a cold snapshot reads the user once"
    );
    assert_eq!(redis.take(), ["get", "evalsha"], "read, then keep");

    // Warm: one command, no user read, as long as no touch is due.
    for _ in 0..3 {
        let found = h.auth.authenticate(&token).await.unwrap();
        assert_eq!(found.user.email.normalized(), "counted@example.com");
        assert_eq!(redis.take(), ["get"], "one round trip");
        assert!(
            pg.take().is_empty(),
            "no database call with a warm snapshot"
        );
    }

    // Past the touch interval the idle deadline is written back: the read,
    // the touch script and the index score, still no user read.
    h.clock.advance(Duration::minutes(2));
    h.auth.authenticate(&token).await.unwrap();
    assert!(pg.take().is_empty());
    assert_eq!(redis.take(), ["get", "evalsha", "zadd"]);
}

/// A login with a wrong password from `192.0.2.{from}`: refused alike for
/// known and unknown addresses.
async fn wrong_login(h: &Harness, email: &str, from: u8) {
    let refused = h
        .auth
        .login(
            email,
            &Password::new("not the password"),
            false,
            &Harness::ctx(from),
        )
        .await;
    assert!(
        matches!(refused, Err(AuthError::InvalidCredentials)),
        "{refused:?}"
    );
}

/// Issue 18: Redis memory per live session (`MEMORY USAGE` of its record
/// and of its user's index with that one entry), with Redis's default
/// settings, a snapshot of a verified user and a browser's user agent,
/// printed for docs/PERFORMANCE.md. Target: under 512 bytes. A user agent
/// the record cannot shorten (`agent.rs`) costs its length more, printed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_live_session_is_under_512_bytes() {
    if !support::have_redis_server() {
        return;
    }
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/131.0.0.0 Safari/537.36";
    let browser = session_memory(chrome, "203.0.113.77").await;
    let unknown = session_memory(&"u".repeat(110), "2001:db8::77").await;
    eprintln!(
        "MEMORY USAGE per session (record, index): browser agent, IPv4 {browser:?}; \
         110 bytes of unknown agent, IPv6 {unknown:?}"
    );
    assert!(browser.0 + browser.1 < 512, "{browser:?}");
    assert!(unknown.0 + unknown.1 < 512 + 128, "{unknown:?}");
}

async fn session_memory(user_agent: &str, ip: &str) -> (i64, i64) {
    use auth_core::TokenHash;
    use auth_core::conformance::t0;
    use auth_core::store::{AuthMethod, SessionId, SessionRecord, SessionStore, SessionUserCache};

    let server = support::Server::start(&[]);
    let store = RedisSessionStore::new(support::connect(&server.url(), "auth"));
    let user = auth_core::store::UserId::new_random();
    let hash = TokenHash([0x5c; 32]);
    let session = SessionRecord {
        id: SessionId::new_random(),
        token_hash: hash,
        user_id: user,
        created_at: t0(),
        authenticated_at: t0(),
        methods: vec![AuthMethod::Password],
        last_seen_at: t0(),
        idle_expires_at: t0() + Duration::minutes(30),
        absolute_expires_at: t0() + Duration::hours(24),
        revoked_at: None,
        ip: Some(ip.parse().unwrap()),
        user_agent: Some(user_agent.into()),
    };
    store.create_session(session).await.unwrap();
    // The size of the snapshot the engine writes for a verified user with a
    // 25-byte address: 1 + 16 + 1 + 3 * 12 + 1 + 25 bytes.
    let stamp = store.cached_session(&hash).await.unwrap().unwrap().stamp;
    assert!(store.put_snapshot(&hash, stamp, &[7; 80]).await.unwrap());
    let mut admin = server.admin();
    let mut usage = |key: String| -> i64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query(&mut admin)
            .unwrap()
    };
    (
        usage(format!("auth:{{t:{}}}:r", "5c".repeat(16))),
        usage(format!("auth:{{u:{}}}:ix", user.0.simple())),
    )
}
