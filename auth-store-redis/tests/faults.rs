//! Redis unreachable, hung, killed mid-connection and restarted: the configured
//! policy answers within the bound, and the stores recover by themselves.
//!
//! The unreachable and hung cases need no Redis at all; the others start a
//! throwaway `redis-server` on a free port (skipped without the binary, failing
//! in CI).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use auth_core::conformance::{Harness, Stores, t0};
use auth_core::store::{
    AttemptKey, AttemptScope, AttemptState, AttemptStore, AuthMethod, ChallengePurpose,
    ChallengeStore, NewChallenge, SessionId, SessionRecord, SessionStore, StoreError, UserId,
};
use auth_core::{AuthError, LoginOutcome, Password, TokenHash, UNAVAILABLE_RETRY_AFTER};
use auth_store_memory::MemoryStore;
use auth_store_redis::{
    RedisAttemptStore, RedisChallengeStore, RedisConfig, RedisConnection, RedisSessionStore,
    UnavailablePolicy,
};
use time::Duration;

/// The operation bound the fault tests configure.
const BOUND: StdDuration = StdDuration::from_millis(600);
/// What a call may take beyond it (scheduling on a busy machine).
const SLACK: StdDuration = StdDuration::from_millis(900);

fn connection(url: &str) -> RedisConnection {
    RedisConfig::new(url)
        .key_prefix(support::fresh_prefix())
        .connect_timeout(StdDuration::from_millis(200))
        .response_timeout(StdDuration::from_millis(300))
        .operation_timeout(BOUND)
        .build()
        .unwrap()
}

fn key() -> AttemptKey {
    AttemptKey::Account(AttemptScope::Login, "fault@example.com".into())
}

fn session() -> SessionRecord {
    SessionRecord {
        id: SessionId::new_random(),
        token_hash: TokenHash([3; 32]),
        user_id: UserId::new_random(),
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

fn challenge() -> NewChallenge {
    NewChallenge {
        hash: TokenHash([5; 32]),
        purpose: ChallengePurpose::SECOND_FACTOR,
        user_id: Some(UserId::new_random()),
        payload: vec![1, 2, 3],
        created_at: t0(),
        expires_at: t0() + Duration::minutes(5),
    }
}

/// Runs `call`, checks it answered within the bound, and returns its answer.
async fn timed<T>(what: &str, call: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = call.await;
    let took = start.elapsed();
    assert!(took < BOUND + SLACK, "{what} took {took:?}");
    out
}

fn unavailable<T: std::fmt::Debug>(what: &str, r: &Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}

/// A listener that accepts connections and never answers: a hung Redis.
fn hung_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let accept = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = accept.accept() {
            held.push(stream); // never read, never written, never closed
        }
    });
    (listener, url)
}

/// Every store call fails closed within the bound; the engine answers 503.
async fn check_fail_closed(url: &str) {
    let conn = connection(url);
    let attempts = RedisAttemptStore::new(conn.clone());
    assert_eq!(attempts.unavailable_policy(), UnavailablePolicy::FailClosed);
    let sessions = RedisSessionStore::new(conn.clone());
    unavailable(
        "increment",
        &timed(
            "increment",
            attempts.increment(&key(), t0(), Duration::hours(1)),
        )
        .await,
    );
    unavailable(
        "attempts",
        &timed("attempts", attempts.attempts(&key(), t0())).await,
    );
    unavailable("clear", &timed("clear", attempts.clear(&key())).await);
    unavailable(
        "create",
        &timed("create", sessions.create_session(session())).await,
    );
    unavailable(
        "session_by_token",
        &timed(
            "session_by_token",
            sessions.session_by_token(&TokenHash([3; 32])),
        )
        .await,
    );
    check_challenges_fail_closed(&conn).await;
    unavailable("ping", &timed("ping", conn.ping()).await);

    // Through the engine: 503 with Retry-After, not a hang or an internal error.
    let login = login_through_engine(&conn, attempts, "fault@example.com").await;
    match login {
        Err(e @ AuthError::Unavailable { .. }) => {
            assert_eq!(e.retry_after(), Some(UNAVAILABLE_RETRY_AFTER));
        }
        other => panic!("login: {other:?}"),
    }
}

/// Challenges fail closed within the bound whatever the counters' policy: a
/// second factor is never checked against a challenge that could not be taken.
async fn check_challenges_fail_closed(conn: &RedisConnection) {
    let challenges = RedisChallengeStore::new(conn.clone());
    unavailable(
        "insert_challenge",
        &timed("insert_challenge", challenges.insert_challenge(challenge())).await,
    );
    unavailable(
        "take_challenge",
        &timed(
            "take_challenge",
            challenges.take_challenge(ChallengePurpose::SECOND_FACTOR, &challenge().hash, t0()),
        )
        .await,
    );
}

/// Counters answer zero within the bound; sessions and challenges still fail
/// closed.
async fn check_fail_open(url: &str) {
    let conn = connection(url);
    let attempts =
        RedisAttemptStore::new(conn.clone()).with_unavailable_policy(UnavailablePolicy::FailOpen);
    let sessions = RedisSessionStore::new(conn.clone());
    for _ in 0..2 {
        let state = timed(
            "increment",
            attempts.increment(&key(), t0(), Duration::hours(1)),
        )
        .await;
        assert_eq!(state.unwrap(), AttemptState::default());
    }
    let state = timed("attempts", attempts.attempts(&key(), t0())).await;
    assert_eq!(state.unwrap(), AttemptState::default());
    timed("clear", attempts.clear(&key())).await.unwrap();
    unavailable(
        "create",
        &timed("create", sessions.create_session(session())).await,
    );
    unavailable(
        "touch",
        &timed(
            "touch",
            sessions.touch_session(&TokenHash([3; 32]), t0(), t0()),
        )
        .await,
    );
    check_challenges_fail_closed(&conn).await;

    // Through the engine: a failed login is just a failed login (no 503).
    let login = login_through_engine(&conn, attempts, "nobody@example.com").await;
    assert!(
        matches!(login, Err(AuthError::InvalidCredentials)),
        "{login:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_closed_within_the_bound() {
    let url = format!("redis://127.0.0.1:{}", support::free_port());
    check_fail_closed(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_open_for_counters_when_configured() {
    let url = format!("redis://127.0.0.1:{}", support::free_port());
    check_fail_open(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_fails_closed_within_the_bound() {
    let (_listener, url) = hung_server();
    check_fail_closed(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_fails_open_for_counters_when_configured() {
    let (_listener, url) = hung_server();
    check_fail_open(&url).await;
}

/// Kills every client connection of the server; returns how many.
fn kill_clients(server: &support::Server) -> i64 {
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut server.admin())
        .unwrap()
}

/// Waits (5 s at most) until a client besides the admin's is connected: the
/// store's connection, replaced by itself after a kill.
async fn reconnected(server: &support::Server) {
    let deadline = Instant::now() + StdDuration::from_secs(5);
    loop {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("normal")
            .query(&mut server.admin())
            .unwrap();
        if clients.lines().count() >= 2 {
            return;
        }
        assert!(Instant::now() < deadline, "the store never reconnected");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// A connection killed under the store is replaced by itself: the next read
/// succeeds (retried once on the new connection), and writes go on counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_recovers_without_rebuilding_the_store() {
    if !support::have_redis_server() {
        return;
    }
    let server = support::Server::start(&[]);
    let conn = connection(&server.url());
    let attempts = RedisAttemptStore::new(conn.clone());
    let sessions = RedisSessionStore::new(conn.clone());
    let challenges = RedisChallengeStore::new(conn);
    let s = session();
    sessions.create_session(s.clone()).await.unwrap();
    assert_eq!(
        attempts
            .increment(&key(), t0(), Duration::hours(1))
            .await
            .unwrap()
            .count,
        1
    );

    // Right after the kill, a read is retried once on a new connection.
    assert!(
        kill_clients(&server) >= 1,
        "the store's connection was not killed"
    );
    assert_eq!(attempts.attempts(&key(), t0()).await.unwrap().count, 1);
    assert_eq!(
        attempts
            .increment(&key(), t0(), Duration::hours(1))
            .await
            .unwrap()
            .count,
        2
    );
    assert!(kill_clients(&server) >= 1);
    assert_eq!(
        sessions.session_by_token(&s.token_hash).await.unwrap(),
        Some(s.clone())
    );

    // A write is never retried (it may have been applied), but with RESP3 the
    // client sees the drop as it happens and opens a new connection, which
    // the write then uses.
    for n in 3..6 {
        assert!(kill_clients(&server) >= 1);
        reconnected(&server).await;
        let state = attempts.increment(&key(), t0(), Duration::hours(1)).await;
        assert_eq!(state.unwrap().count, n);
    }
    assert!(kill_clients(&server) >= 1);
    reconnected(&server).await;
    assert!(
        sessions
            .revoke_session(s.user_id, s.id, t0())
            .await
            .unwrap()
    );
    // Challenges too (never retried: a take may have consumed one).
    assert!(kill_clients(&server) >= 1);
    reconnected(&server).await;
    challenges.insert_challenge(challenge()).await.unwrap();
    assert!(kill_clients(&server) >= 1);
    reconnected(&server).await;
    let taken = challenges
        .take_challenge(ChallengePurpose::SECOND_FACTOR, &challenge().hash, t0())
        .await
        .unwrap();
    assert_eq!(taken.map(|c| c.payload), Some(challenge().payload));
}

/// Redis going away answers with the policy within the bound; once it is back
/// (on the same address, empty), the same store works again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_is_used_again_without_rebuilding_the_store() {
    if !support::have_redis_server() {
        return;
    }
    let mut server = support::Server::start(&[]);
    let conn = connection(&server.url());
    let closed = RedisAttemptStore::new(conn.clone());
    let open =
        RedisAttemptStore::new(conn.clone()).with_unavailable_policy(UnavailablePolicy::FailOpen);
    let sessions = RedisSessionStore::new(conn);
    assert_eq!(
        closed
            .increment(&key(), t0(), Duration::hours(1))
            .await
            .unwrap()
            .count,
        1
    );
    assert_eq!(
        open.increment(&key(), t0(), Duration::hours(1))
            .await
            .unwrap()
            .count,
        2
    );

    server.stop();
    unavailable(
        "increment",
        &timed(
            "increment",
            closed.increment(&key(), t0(), Duration::hours(1)),
        )
        .await,
    );
    let zero = timed("attempts", open.attempts(&key(), t0()))
        .await
        .unwrap();
    assert_eq!(zero, AttemptState::default());
    unavailable(
        "session_by_token",
        &timed(
            "session_by_token",
            sessions.session_by_token(&TokenHash([1; 32])),
        )
        .await,
    );

    server.restart();
    // The first calls may still meet the connection being reopened.
    let deadline = Instant::now() + StdDuration::from_secs(5);
    let state = loop {
        match closed.increment(&key(), t0(), Duration::hours(1)).await {
            Ok(state) => break state,
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e:?}"),
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    assert_eq!(state.count, 1, "the restarted server is empty");
    assert_eq!(open.attempts(&key(), t0()).await.unwrap().count, 1);
    let s = session();
    sessions.create_session(s.clone()).await.unwrap();
    assert_eq!(
        sessions.session_by_token(&s.token_hash).await.unwrap(),
        Some(s)
    );
}

/// A `tracing` subscriber that keeps the text of WARN events.
#[derive(Clone, Default)]
struct Warnings(Arc<std::sync::Mutex<Vec<String>>>);

impl Warnings {
    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Failing open is logged without the counter's key (an email): the first
/// time per second in full, later ones in that second counted in a summary
/// (S9). (A current-thread runtime, so the thread-local subscriber sees the
/// events, the summary's included.)
#[tokio::test(flavor = "current_thread")]
async fn failing_open_logs_a_warning_sampled_per_second() {
    let warnings = Warnings::default();
    let _guard = tracing::subscriber::set_default(warnings.clone());
    let url = format!("redis://127.0.0.1:{}", support::free_port());
    let conn = connection(&url);

    let closed = RedisAttemptStore::new(conn.clone());
    assert!(closed.attempts(&key(), t0()).await.is_err());
    assert!(warnings.taken().iter().all(|w| !w.contains("fail open")));

    let open = closed.with_unavailable_policy(UnavailablePolicy::FailOpen);
    open.increment(&key(), t0(), Duration::hours(1))
        .await
        .unwrap();
    open.attempts(&key(), t0()).await.unwrap();
    let mut logged = warnings.taken();
    let ours: Vec<_> = logged.iter().filter(|w| w.contains("fail open")).collect();
    assert_eq!(ours.len(), 1, "{logged:?}");
    assert!(ours[0].contains("increment"), "{ours:?}");
    // The window ends: the summary counts the second call.
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    logged.extend(warnings.taken());
    let summary: Vec<_> = logged
        .iter()
        .filter(|w| w.contains("fail open") && w.contains("suppressed=1"))
        .collect();
    assert_eq!(summary.len(), 1, "{logged:?}");
    assert!(
        logged.iter().all(|w| !w.contains("fault@example.com")),
        "{logged:?}"
    );
}

/// A login for `email` through an engine whose sessions, counters and
/// challenges are Redis stores on `conn` (users, credentials, tokens and audit
/// in memory), bounded like every call in this file.
async fn login_through_engine(
    conn: &RedisConnection,
    attempts: RedisAttemptStore,
    email: &str,
) -> Result<LoginOutcome, AuthError> {
    let db = Arc::new(MemoryStore::new());
    let h = Harness::new(Stores {
        users: db.clone(),
        accounts: Some(db.clone()),
        passwords: db.clone(),
        totp: db.clone(),
        recovery_codes: db.clone(),
        tokens: db.clone(),
        audit: db.clone(),
        roles: db,
        sessions: Arc::new(RedisSessionStore::new(conn.clone())),
        session_cache: None,
        challenges: Arc::new(RedisChallengeStore::new(conn.clone())),
        attempts: Arc::new(attempts),
    });
    timed(
        "login",
        h.auth.login(
            email,
            &Password::new("whatever it is"),
            false,
            &Harness::ctx(1),
        ),
    )
    .await
}

/// S5: a touch whose second step (the index score) did not land leaves the
/// session's entry scored at its old idle deadline. A purge after that
/// deadline keeps the live session, lists it again at its new deadline, and
/// revoke-all still reaches it. Before, the purge took the entry out and
/// deleted the live session, signing its user out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_whose_index_update_failed_keeps_its_session_through_a_purge() {
    if !support::have_redis_server() {
        return;
    }
    let server = support::Server::start(&[]);
    let prefix = support::fresh_prefix();
    let sessions = RedisSessionStore::new(support::connect(&server.url(), &prefix));
    let s = session();
    sessions.create_session(s.clone()).await.unwrap();
    let seen = t0() + Duration::minutes(20);
    sessions
        .touch_session(&s.token_hash, seen, seen + Duration::minutes(30))
        .await
        .unwrap();
    // The entry as the failed second step leaves it: at the first deadline.
    let index = format!("{prefix}:{{u:{}}}:ix", s.user_id.0.simple());
    let member = [s.id.0.as_bytes().as_slice(), &s.token_hash.0[..16]].concat();
    let old_deadline = i64::try_from(s.idle_expires_at.unix_timestamp_nanos() / 1_000_000).unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg(&index)
        .arg(old_deadline)
        .arg(&member)
        .query(&mut server.admin())
        .unwrap();

    let now = t0() + Duration::minutes(35);
    assert_eq!(sessions.delete_expired_sessions(now).await.unwrap(), 0);
    let kept = sessions.session_by_token(&s.token_hash).await.unwrap();
    assert!(
        kept.is_some_and(|k| k.is_active(now)),
        "the live session was purged"
    );
    let listed = sessions.list_user_sessions(s.user_id, now).await.unwrap();
    assert_eq!(listed.iter().map(|l| l.id).collect::<Vec<_>>(), [s.id]);
    assert_eq!(
        sessions
            .revoke_user_sessions(s.user_id, None, now)
            .await
            .unwrap(),
        1
    );
    let revoked = sessions.session_by_token(&s.token_hash).await.unwrap();
    assert!(
        revoked.is_some_and(|r| !r.is_active(now)),
        "revoke-all reached it"
    );
}
