//! Shared by the integration tests: where Redis is (or why the tests skip), a
//! fresh key prefix per test with its keys deleted afterwards, and throwaway
//! `redis-server` processes.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a part of this module"
)]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::indexing_slicing,
    reason = "test support: a failed unwrap is a failed test; skips are printed"
)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth_core::conformance::Stores;
use auth_core::store::{
    Account, AccountReader, AttemptKey, AttemptState, AttemptStore, AuditEvent, AuditSink,
    CachedSession, Challenge, ChallengePurpose, ChallengeStore, NewChallenge, PasswordCredential,
    PasswordStore, RecoveryCodeStore, RoleStore, SealedSecret, SessionId, SessionRecord,
    SessionStore, SessionUserCache, StoreError, TokenStore, TotpCredential, TotpStore, UserId,
    UserStore,
};
use auth_core::{PasswordHashString, TokenHash};
use auth_store_memory::MemoryStore;
use auth_store_redis::{
    RedisAttemptStore, RedisChallengeStore, RedisConfig, RedisConnection, RedisSessionStore,
};
use time::OffsetDateTime;

/// Whether this is a CI run (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Skips a test (with the reason printed) or, in CI, fails it.
pub fn skip(reason: &str) {
    assert!(
        !in_ci(),
        "CI=true but {reason}: this test must not be skipped in CI"
    );
    eprintln!("SKIPPED: {reason}");
}

/// `REDIS_URL`, or `None` after printing why the test skips (panics in CI).
pub fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            skip("REDIS_URL is not set (e.g. REDIS_URL=redis://127.0.0.1:6379)");
            None
        }
    }
}

/// A key prefix no other test uses.
pub fn fresh_prefix() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// A connection under `prefix` with short bounds, as a test wants them.
pub fn connect(url: &str, prefix: &str) -> RedisConnection {
    RedisConfig::new(url)
        .key_prefix(prefix)
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Deletes every key under a prefix when dropped (after the test is done with
/// them), so runs leave nothing behind.
#[derive(Debug)]
pub struct Cleanup {
    url: String,
    prefix: String,
}

impl Cleanup {
    pub fn new(url: &str, prefix: &str) -> Arc<Self> {
        Arc::new(Self {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The keys under the prefix.
    pub fn keys(&self) -> redis::RedisResult<Vec<String>> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut keys = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    fn delete(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        for key in self.keys()? {
            let _: i64 = redis::cmd("DEL").arg(key).query(&mut conn)?;
        }
        Ok(())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            eprintln!("could not delete the keys under {}: {e}", self.prefix);
        }
    }
}

/// A store whose keys are deleted once the last holder drops it.
#[derive(Debug)]
pub struct Cleaned<T> {
    pub inner: T,
    pub cleanup: Arc<Cleanup>,
}

#[async_trait]
impl AttemptStore for Cleaned<RedisAttemptStore> {
    async fn increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<AttemptState, StoreError> {
        self.inner.increment(key, now, ttl).await
    }
    async fn increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: AttemptState,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<AttemptState>, StoreError> {
        self.inner
            .increment_if_unchanged(key, expected, now, ttl)
            .await
    }
    async fn attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError> {
        self.inner.attempts(key, now).await
    }
    async fn clear(&self, key: &AttemptKey) -> Result<(), StoreError> {
        self.inner.clear(key).await
    }
    async fn delete_expired_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.delete_expired_attempts(now).await
    }
}

#[async_trait]
impl SessionStore for Cleaned<RedisSessionStore> {
    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.inner.create_session(session).await
    }
    async fn session_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.session_by_token(hash).await
    }
    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.inner
            .touch_session(hash, last_seen_at, idle_expires_at)
            .await
    }
    async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.revoke_session(user_id, id, at).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.inner.revoke_user_sessions(user_id, except, at).await
    }
    async fn revoke_all_sessions(&self, at: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.revoke_all_sessions(at).await
    }
    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.inner.list_user_sessions(user_id, now).await
    }
    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.delete_expired_sessions(before).await
    }
}

#[async_trait]
impl SessionUserCache for Cleaned<RedisSessionStore> {
    async fn cached_session(&self, hash: &TokenHash) -> Result<Option<CachedSession>, StoreError> {
        self.inner.cached_session(hash).await
    }
    async fn put_snapshot(
        &self,
        hash: &TokenHash,
        stamp: u64,
        snapshot: &[u8],
    ) -> Result<bool, StoreError> {
        self.inner.put_snapshot(hash, stamp, snapshot).await
    }
    async fn invalidate_user(&self, user_id: UserId) -> Result<(), StoreError> {
        self.inner.invalidate_user(user_id).await
    }
}

#[async_trait]
impl ChallengeStore for Cleaned<RedisChallengeStore> {
    async fn insert_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError> {
        self.inner.insert_challenge(challenge).await
    }
    async fn take_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Challenge>, StoreError> {
        self.inner.take_challenge(purpose, hash, now).await
    }
    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.delete_expired_challenges(now).await
    }
}

/// Counters under a fresh prefix, or `None` (skip).
pub async fn attempts() -> Option<Cleaned<RedisAttemptStore>> {
    let url = redis_url()?;
    let prefix = fresh_prefix();
    Some(Cleaned {
        inner: RedisAttemptStore::new(connect(&url, &prefix)),
        cleanup: Cleanup::new(&url, &prefix),
    })
}

/// Sessions under a fresh prefix, or `None` (skip).
pub async fn sessions() -> Option<Cleaned<RedisSessionStore>> {
    let url = redis_url()?;
    let prefix = fresh_prefix();
    Some(Cleaned {
        inner: RedisSessionStore::new(connect(&url, &prefix)),
        cleanup: Cleanup::new(&url, &prefix),
    })
}

/// Challenges under a fresh prefix, or `None` (skip).
pub async fn challenges() -> Option<Cleaned<RedisChallengeStore>> {
    let url = redis_url()?;
    let prefix = fresh_prefix();
    Some(Cleaned {
        inner: RedisChallengeStore::new(connect(&url, &prefix)),
        cleanup: Cleanup::new(&url, &prefix),
    })
}

/// What a deployment keeps in its database rather than in Redis: users with
/// their credentials and roles, tokens and the audit trail.
pub trait Database:
    UserStore
    + AccountReader
    + PasswordStore
    + TotpStore
    + RecoveryCodeStore
    + TokenStore
    + AuditSink
    + RoleStore
{
}

impl<D> Database for D where
    D: UserStore
        + AccountReader
        + PasswordStore
        + TotpStore
        + RecoveryCodeStore
        + TokenStore
        + AuditSink
        + RoleStore
{
}

/// The stores of one application instance: counters, sessions and challenges
/// on Redis over a connection of its own to `url` under `prefix`; users,
/// credentials, tokens and audit from `db` (credentials stay with the users: a
/// user and their password are created together).
pub fn bundle_on<D: Database + 'static>(
    url: &str,
    prefix: &str,
    cleanup: &Arc<Cleanup>,
    db: &Arc<D>,
) -> Stores {
    let conn = connect(url, prefix);
    let sessions = Arc::new(Cleaned {
        inner: RedisSessionStore::new(conn.clone()),
        cleanup: cleanup.clone(),
    });
    Stores {
        users: db.clone(),
        accounts: Some(db.clone()),
        passwords: db.clone(),
        totp: db.clone(),
        recovery_codes: db.clone(),
        tokens: db.clone(),
        audit: db.clone(),
        roles: db.clone(),
        session_cache: Some(sessions.clone()),
        sessions,
        challenges: Arc::new(Cleaned {
            inner: RedisChallengeStore::new(conn.clone()),
            cleanup: cleanup.clone(),
        }),
        attempts: Arc::new(Cleaned {
            inner: RedisAttemptStore::new(conn),
            cleanup: cleanup.clone(),
        }),
    }
}

/// Redis counters, sessions and challenges under a fresh prefix with users,
/// credentials, tokens and audit in memory, or `None` (skip).
pub async fn bundle() -> Option<Stores> {
    let url = redis_url()?;
    let prefix = fresh_prefix();
    let cleanup = Cleanup::new(&url, &prefix);
    Some(bundle_on(
        &url,
        &prefix,
        &cleanup,
        &Arc::new(MemoryStore::new()),
    ))
}

/// A port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether `redis-server` can be run; if not, skips (or fails in CI).
pub fn have_redis_server() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip("the redis-server binary is not on PATH");
    }
    ok
}

/// A throwaway `redis-server` on a free port, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Server {
    /// Starts a server with no persistence; `extra` are more arguments.
    pub fn start(extra: &[&str]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("auth-store-redis-{}", fresh_prefix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            let pong = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A synchronous connection, to act on the server from outside the store.
    pub fn admin(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was persisted).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The database stores a sign-in touches (users, accounts, passwords, TOTP,
/// audit), recording each call by name: one entry per database round trip,
/// as [`Monitor`] records Redis's.
#[derive(Debug)]
pub struct CountingDb<D> {
    pub inner: Arc<D>,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl<D> CountingDb<D> {
    pub fn new(inner: Arc<D>) -> Self {
        Self {
            inner,
            calls: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The calls since the last take, in order.
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn count(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
}

/// Implements `$store` for [`CountingDb`]: each method a recorded call to
/// `inner`.
macro_rules! recorded {
    ($store:ident { $($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)* }) => {
        #[async_trait]
        impl<D: $store> $store for CountingDb<D> {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
                    self.count(stringify!($name));
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

recorded! {
    AccountReader {
        account_by_email(email_normalized: &str) -> Option<Account>;
        account(id: UserId) -> Option<Account>;
    }
}

recorded! {
    UserStore {
        create_user(user: auth_core::store::NewUser) -> auth_core::store::User;
        user_by_id(id: UserId) -> Option<auth_core::store::User>;
        user_by_email(email_normalized: &str) -> Option<auth_core::store::User>;
        mark_email_verified(id: UserId, at: OffsetDateTime) -> ();
        set_disabled(id: UserId, at: Option<OffsetDateTime>, now: OffsetDateTime) -> ();
        set_reset_required(id: UserId, at: Option<OffsetDateTime>, now: OffsetDateTime) -> ();
        delete_unverified_users(created_before: OffsetDateTime) -> Vec<UserId>;
        delete_user(id: UserId) -> bool;
    }
}

recorded! {
    PasswordStore {
        password(user: UserId) -> Option<PasswordCredential>;
        set_password(user: UserId, hash: &PasswordHashString, at: OffsetDateTime) -> ();
        set_password_if(
            user: UserId,
            expected: &PasswordHashString,
            hash: &PasswordHashString,
            at: OffsetDateTime
        ) -> bool;
        replace_password_hash(user: UserId, old: &PasswordHashString, new: &PasswordHashString) -> bool;
    }
}

recorded! {
    TotpStore {
        totp(user: UserId) -> Option<TotpCredential>;
        put_pending_totp(user: UserId, secret: &SealedSecret, at: OffsetDateTime) -> bool;
        confirm_totp(user: UserId, secret: &SealedSecret, step: i64, at: OffsetDateTime) -> bool;
        accept_totp_step(user: UserId, step: i64) -> bool;
        delete_totp(user: UserId) -> bool;
    }
}

recorded! {
    AuditSink {
        record(event: AuditEvent) -> ();
        record_aggregated(event: AuditEvent, window: time::Duration) -> ();
        delete_events_before(before: OffsetDateTime) -> u64;
        events_for_user(user_id: UserId, limit: usize) -> Vec<AuditEvent>;
    }
}

/// The commands clients send to a Redis server, seen through `MONITOR`:
/// one entry per round trip (the calls a script makes inside the server are
/// not round trips, and are left out).
pub struct Monitor {
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    admin: redis::Connection,
    marks: u64,
}

impl Monitor {
    pub fn start(server: &Server) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                // `+<time> [<db> <client>] "<COMMAND>" ...`
                let Some((_, rest)) = line.split_once(" [") else {
                    continue;
                };
                let Some((client, command)) = rest.split_once("] ") else {
                    continue;
                };
                if client.ends_with(" lua") {
                    continue;
                }
                let name = command.split('"').nth(1).unwrap_or_default().to_lowercase();
                // The monitor's own read counts (`reads`) are not the store's.
                if name == "info" {
                    continue;
                }
                sink.lock().unwrap().push(name);
            }
        });
        let mut monitor = Self {
            seen,
            admin: server.admin(),
            marks: 0,
        };
        monitor.take();
        monitor
    }

    /// The commands sent since the last call, in order.
    pub fn take(&mut self) -> Vec<String> {
        self.marks += 1;
        let mark = format!("mark-{}", self.marks);
        let _: String = redis::cmd("ECHO")
            .arg(&mark)
            .query(&mut self.admin)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            {
                let mut seen = self.seen.lock().unwrap();
                if let Some(at) = seen.iter().position(|c| c == "echo") {
                    let taken: Vec<String> = seen.drain(..=at).collect();
                    return taken[..taken.len() - 1].to_vec();
                }
            }
            assert!(Instant::now() < deadline, "MONITOR saw no {mark}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's read events so far (`INFO stats`,
    /// `total_reads_processed`), this call's own included: commands sent
    /// together in a pipeline arrive in one read, so the reads between two
    /// calls, less one, are the round trips clients made meanwhile.
    pub fn reads(&mut self) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query(&mut self.admin)
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_reads_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    }
}
