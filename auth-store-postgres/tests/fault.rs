//! Fault injection over a real PostgreSQL (S13): the store talks to the server
//! through a small TCP proxy in the test, which can refuse connections (the
//! server is down) or freeze them (the server or network stops answering). Store
//! calls must then fail with `StoreError::Unavailable` within the configured
//! bounds instead of hanging, and the same store (the same pool) must work again
//! once the proxy is back, without being rebuilt.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed check panics"
)]

mod support;

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_core::store::{
    AttemptKey, AttemptScope, AttemptStore, AuditKind, AuditSink, ChallengePurpose, ChallengeStore,
    NewUser, PasswordStore, SessionStore, StoreError, TokenStore, TotpStore, User, UserId,
    UserStore,
};
use auth_core::{EmailAddress, PasswordHashString, TokenHash, TokenPurpose};
use auth_store_postgres::{PgStore, PgStoreOptions, TimedOut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// No call may take longer than this, whatever the fault.
const HARD_BOUND: Duration = Duration::from_secs(10);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A TCP proxy from 127.0.0.1:`port` to the PostgreSQL server.
struct Proxy {
    port: u16,
    upstream: (String, u16),
    frozen: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Reads from the store's side: one per message flight the store sends,
    /// so one per round trip when calls run one at a time.
    flights: Arc<AtomicUsize>,
}

impl Proxy {
    /// Starts on an ephemeral port.
    async fn start(upstream: (String, u16)) -> Self {
        let mut proxy = Self {
            port: 0,
            upstream,
            frozen: watch::channel(false).0,
            accept: None,
            connections: Arc::default(),
            flights: Arc::default(),
        };
        proxy.listen().await;
        proxy
    }

    /// Listens (again) on the proxy's port.
    async fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        let (upstream, frozen, connections, flights) = (
            self.upstream.clone(),
            self.frozen.clone(),
            Arc::clone(&self.connections),
            Arc::clone(&self.flights),
        );
        self.accept = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, frozen) = (upstream.clone(), frozen.subscribe());
                let task = tokio::spawn(forward(client, upstream, frozen, Arc::clone(&flights)));
                connections.lock().unwrap().push(task);
            }
        }));
    }

    /// The server is down: new connections are refused, open ones are cut.
    async fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await; // the listener is closed once this returns
        }
        let open: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for task in open {
            task.abort();
            let _ = task.await;
        }
    }

    /// The server stops answering: bytes are held, connections stay open.
    fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// The store's message flights since the last call.
    fn take_flights(&self) -> usize {
        self.flights.swap(0, Ordering::SeqCst)
    }
}

/// Copies both ways until either side closes; aborting the task closes both.
async fn forward(
    client: TcpStream,
    upstream: (String, u16),
    frozen: watch::Receiver<bool>,
    flights: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, frozen.clone(), Some(flights)) => {}
        () = pump(server_read, client_write, frozen, None) => {}
    }
}

/// Copies one way, holding each chunk while the proxy is frozen, and counts
/// the reads in `reads` when given.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    reads: Option<Arc<AtomicUsize>>,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(reads) = &reads {
            reads.fetch_add(1, Ordering::SeqCst);
        }
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        if to
            .write_all(buf.get(..n).unwrap_or_default())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A migrated schema, and a store reaching it through a new proxy.
async fn setup(options: PgStoreOptions) -> Option<(Proxy, PgStore)> {
    let url = support::database_url()?;
    let (schema, target) = support::fresh_store_schema(&url).await;
    let direct = support::test_pool()
        .schema(schema.clone())
        .connect_with(target.clone())
        .await
        .unwrap();
    direct.migrate().await.unwrap();
    direct.pool().close().await;
    let host = target.get_host().to_owned();
    assert!(
        !host.starts_with('/'),
        "the fault test needs DATABASE_URL to name a TCP host, not a socket"
    );
    let proxy = Proxy::start((host, target.get_port())).await;
    let via = target.host("127.0.0.1").port(proxy.port);
    let store = options.schema(schema).connect_lazy_with(via).unwrap();
    Some((proxy, store))
}

fn new_user() -> NewUser {
    let id = UserId::new_random();
    NewUser {
        id,
        email: EmailAddress::parse(&format!("{}@fault.example.com", id.0.simple())).unwrap(),
        password_hash: Some(PasswordHashString::new(
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
        )),
        created_at: auth_core::conformance::t0(),
    }
}

/// Runs `call`, which must fail with `Unavailable` well within [`HARD_BOUND`];
/// returns the error and how long it took.
async fn unavailable<T: Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> (StoreError, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(HARD_BOUND, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {HARD_BOUND:?}"));
    let took = started.elapsed();
    match result {
        Err(e @ StoreError::Unavailable(_)) => (e, took),
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

/// Every kind of store call, each of which must answer `Unavailable`.
async fn every_call_is_unavailable(store: &PgStore, user: &User) -> Vec<(StoreError, Duration)> {
    let now = auth_core::conformance::t0();
    let key = AttemptKey::Account(AttemptScope::Login, "fault@example.com".into());
    let event = support::bare_event(user.id, now, AuditKind::LoginFailed);
    vec![
        unavailable("user_by_id", store.user_by_id(user.id)).await,
        unavailable("create_user", store.create_user(new_user())).await,
        unavailable("password", store.password(user.id)).await,
        unavailable("accept_totp_step", store.accept_totp_step(user.id, 1)).await,
        unavailable(
            "take_challenge",
            store.take_challenge(ChallengePurpose::SECOND_FACTOR, &TokenHash([3; 32]), now),
        )
        .await,
        unavailable(
            "session_by_token",
            store.session_by_token(&TokenHash([1; 32])),
        )
        .await,
        unavailable(
            "consume_token",
            store.consume_token(TokenPurpose::PasswordReset, &TokenHash([2; 32]), now),
        )
        .await,
        unavailable(
            "increment",
            store.increment(&key, now, time::Duration::hours(1)),
        )
        .await,
        unavailable("record", store.record(event)).await,
    ]
}

/// Connecting at start-up to a server that is not there answers `Unavailable`
/// within the acquire timeout (this test needs no database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_dead_server_is_unavailable_within_the_bound() {
    let port = {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let options = PgStoreOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
    let (error, took) = unavailable("connect", options.connect(&url)).await;
    assert!(took < ACQUIRE_TIMEOUT * 3, "took {took:?}: {error:?}");
}

/// S13: with the server unreachable, calls answer `Unavailable` within the
/// acquire timeout; when it is back, the same store works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_unavailable_within_the_bound_and_the_pool_recovers() {
    let options = PgStoreOptions::new()
        .max_connections(3)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .query_timeout(None);
    let Some((mut proxy, store)) = setup(options).await else {
        return;
    };
    let user = store.create_user(new_user()).await.unwrap();

    proxy.stop().await;
    for (error, took) in every_call_is_unavailable(&store, &user).await {
        assert!(took < ACQUIRE_TIMEOUT * 3, "took {took:?}: {error:?}");
        let source = std::error::Error::source(&error).unwrap();
        assert!(
            source.downcast_ref::<sqlx::Error>().is_some(),
            "the sqlx error is kept as source: {source:?}"
        );
    }

    proxy.listen().await;
    let again = store.user_by_id(user.id).await.unwrap();
    assert_eq!(again, Some(user));
    store.create_user(new_user()).await.unwrap();
}

/// S13: with the server silent (connections open, no answers), a call on an
/// open connection answers `Unavailable` within the query timeout and new
/// connections within the acquire timeout; when it answers again, the same store
/// works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_unavailable_within_the_bound_and_the_pool_recovers() {
    let options = PgStoreOptions::new()
        .max_connections(3)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .query_timeout(Some(QUERY_TIMEOUT))
        // Hand out the idle connection without a ping, so the statement itself
        // meets the silent server.
        .test_before_acquire(false);
    let Some((proxy, store)) = setup(options).await else {
        return;
    };
    let user = store.create_user(new_user()).await.unwrap();
    // The pool checks a released connection in the background; freeze only once
    // it is back among the idle ones, so the next call takes it.
    let waiting = Instant::now();
    while store.pool().num_idle() == 0 {
        assert!(
            waiting.elapsed() < HARD_BOUND,
            "the connection never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    proxy.freeze();
    let (error, took) = unavailable(
        "user_by_id on an open connection",
        store.user_by_id(user.id),
    )
    .await;
    let source = std::error::Error::source(&error).unwrap();
    assert_eq!(
        source.downcast_ref::<TimedOut>(),
        Some(&TimedOut {
            after: QUERY_TIMEOUT
        }),
        "{source:?}"
    );
    assert!(
        took >= QUERY_TIMEOUT && took < QUERY_TIMEOUT * 2,
        "took {took:?}"
    );
    for (error, took) in every_call_is_unavailable(&store, &user).await {
        assert!(took < QUERY_TIMEOUT * 2, "took {took:?}: {error:?}");
    }

    proxy.thaw();
    let again = tokio::time::timeout(HARD_BOUND, store.user_by_id(user.id))
        .await
        .expect("answers once the server does")
        .unwrap();
    assert_eq!(again, Some(user));
    store.create_user(new_user()).await.unwrap();
}

/// Round trips of `calls` sequential reads on a one-connection pool, the
/// pool's release check of the last one included.
async fn round_trips(proxy: &Proxy, store: &PgStore, user: UserId, calls: usize) -> usize {
    let released = || store.pool().num_idle() == 1;
    while !released() {
        tokio::task::yield_now().await;
    }
    proxy.take_flights();
    for _ in 0..calls {
        assert!(store.user_by_id(user).await.unwrap().is_some());
    }
    let waiting = Instant::now();
    while !released() {
        assert!(
            waiting.elapsed() < HARD_BOUND,
            "the connection never came back"
        );
        tokio::task::yield_now().await;
    }
    proxy.take_flights()
}

/// Issue 18: a pooled connection used within `check_after_idle` is handed
/// out without a ping, so a call costs its statement and the pool's check
/// on release, two round trips; with the window at zero (a ping before
/// every use, the pool's own default) three; and a connection idle for
/// longer than the window is pinged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_used_within_the_window_is_not_pinged() {
    let window = Duration::from_millis(500);
    for (check_after, per_call) in [(window, 2), (Duration::ZERO, 3)] {
        let options = PgStoreOptions::new()
            .max_connections(1)
            .check_after_idle(check_after);
        let Some((proxy, store)) = setup(options).await else {
            return;
        };
        let user = store.create_user(new_user()).await.unwrap().id;
        // The connection's first run of the statement prepares it.
        round_trips(&proxy, &store, user, 1).await;
        assert_eq!(
            round_trips(&proxy, &store, user, 5).await,
            5 * per_call,
            "window {check_after:?}"
        );
        if check_after == window {
            tokio::time::sleep(window + Duration::from_millis(200)).await;
            assert_eq!(
                round_trips(&proxy, &store, user, 1).await,
                3,
                "after the window"
            );
        }
    }
}

/// S13: with the window, a server that went away and came back within it
/// fails at most one call per pooled connection with `Unavailable`; the
/// next finds a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_within_the_window_fails_one_call_then_recovers() {
    let options = PgStoreOptions::new()
        .max_connections(1)
        .check_after_idle(Duration::from_secs(60));
    let Some((mut proxy, store)) = setup(options).await else {
        return;
    };
    let user = store.create_user(new_user()).await.unwrap();
    round_trips(&proxy, &store, user.id, 1).await;
    proxy.stop().await;
    proxy.listen().await;
    unavailable("user_by_id", store.user_by_id(user.id)).await;
    assert_eq!(store.user_by_id(user.id).await.unwrap(), Some(user));
}
