//! The engine's hot paths, per backend: `authenticate` (every authenticated
//! request), `login` at test cost and at the OWASP default, `register`, and a
//! verification token issued and consumed. Backends: the memory store always;
//! `postgres` (every store on PostgreSQL, in a schema of its own that is dropped
//! afterwards) when `DATABASE_URL` is set; `postgres+redis` (sessions and
//! counters on Redis, under a key prefix of its own) when `REDIS_URL` is too.
#![allow(
    missing_docs,
    reason = "criterion_main! generates an undocumented main"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failing bench should stop loudly"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auth_core::conformance::{Harness, Stores};
use auth_core::mail::MessageKind;
use auth_core::password::{HashParams, PasswordHasher};
use auth_core::store::{NewToken, TokenCheck};
use auth_core::{Auth, OpaqueToken, Password, RequestContext, SecretKey, TokenHash, TokenPurpose};
use auth_store_memory::MemoryStore;
use auth_store_postgres::sqlx::postgres::PgConnectOptions;
use auth_store_postgres::sqlx::{self, AssertSqlSafe, Connection, PgConnection};
use auth_store_postgres::{PgStore, PgStoreOptions};
use auth_store_redis::{RedisAttemptStore, RedisConfig, RedisSessionStore};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const PW: &str = "correct horse battery staple";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The backends to measure, by name.
fn backends(rt: &Runtime) -> Vec<(&'static str, Stores)> {
    let mut all = vec![("memory", Stores::all(Arc::new(MemoryStore::new())))];
    let Some(db) = rt.block_on(postgres()) else {
        return all;
    };
    all.push(("postgres", Stores::all(db.clone())));
    if let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
        let conn = RedisConfig::new(url)
            .key_prefix(format!("authbench{}", std::process::id()))
            .build()
            .unwrap();
        let mut stores = Stores::all(db);
        stores.sessions = Arc::new(RedisSessionStore::new(conn.clone()));
        stores.attempts = Arc::new(RedisAttemptStore::new(conn));
        all.push(("postgres+redis", stores));
    }
    all
}

/// The schema the PostgreSQL backend works in, dropped when the bench ends.
fn bench_schema() -> String {
    format!("authbench_{}", std::process::id())
}

/// A migrated store in a fresh schema of `DATABASE_URL`, or `None` without it.
async fn postgres() -> Option<Arc<PgStore>> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let options: PgConnectOptions = url.parse().unwrap();
    let schema = bench_schema();
    let mut admin = PgConnection::connect_with(&options).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    let store = PgStoreOptions::new()
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some(Arc::new(store))
}

/// Drops the PostgreSQL backend's schema, if there is one.
async fn drop_bench_schema() {
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        return;
    };
    let options: PgConnectOptions = url.parse().unwrap();
    let mut admin = PgConnection::connect_with(&options).await.unwrap();
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", bench_schema());
    sqlx::query(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// An engine with the given hashing parameters and no rate limits in the way.
fn engine(stores: &Stores, params: HashParams, mailer: auth_core::mail::CapturingMailer) -> Auth {
    let mut config = Harness::config();
    config.account_lockout.threshold = u32::MAX - 1;
    config.reset_required_after = u32::MAX;
    config.ip_request_limit.threshold = u32::MAX;
    config.ip_login_limit.threshold = u32::MAX;
    let builder = Auth::builder()
        .config(config)
        .users(stores.users.clone())
        .passwords(stores.passwords.clone())
        .totp(stores.totp.clone());
    let builder = match &stores.accounts {
        Some(accounts) => builder.accounts(accounts.clone()),
        None => builder,
    };
    builder
        .recovery_codes(stores.recovery_codes.clone())
        .challenges(stores.challenges.clone())
        .tokens(stores.tokens.clone())
        .sessions(stores.sessions.clone())
        .attempts(stores.attempts.clone())
        .audit(stores.audit.clone())
        .roles(stores.roles.clone())
        .mailer(Arc::new(mailer))
        .hasher(
            PasswordHasher::builder()
                .params(params)
                .max_queued(4096)
                .build()
                .unwrap(),
        )
        .secret_key(SecretKey::new([7u8; 32]).unwrap())
        .build()
        .unwrap()
}

fn hot_paths(c: &mut Criterion) {
    let rt = runtime();
    let cheap = HashParams::insecure_for_tests(64, 1, 1).unwrap();
    let counter = AtomicU64::new(0);
    let ctx = RequestContext::from_ip([192, 0, 2, 1].into());
    for (name, stores) in backends(&rt) {
        let mailer = auth_core::mail::CapturingMailer::new();
        let (auth, owasp) = rt.block_on(async {
            (
                engine(&stores, cheap, mailer.clone()),
                engine(&stores, HashParams::OWASP, mailer.clone()),
            )
        });
        let pid = std::process::id();
        let (cheap_user, owasp_user) = (
            format!("cheap-{name}-{pid}@example.com"),
            format!("owasp-{name}-{pid}@example.com"),
        );
        let session = rt.block_on(async {
            for (engine, email) in [(&auth, &cheap_user), (&owasp, &owasp_user)] {
                engine
                    .register(email, &Password::new(PW), &ctx)
                    .await
                    .unwrap();
                let token = loop {
                    if let Some(t) = mailer.token_for(email, MessageKind::Verification) {
                        break OpaqueToken::new(t);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                engine.verify_email(&token, &ctx).await.unwrap();
            }
            auth.login(&cheap_user, &Password::new(PW), false, &ctx)
                .await
                .unwrap()
                .signed_in()
                .expect("no second factor")
                .session
                .token
        });
        let me = rt.block_on(auth.authenticate(&session)).unwrap().user.id;

        let mut group = c.benchmark_group("engine");
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("authenticate", name), |b| {
            b.to_async(&rt)
                .iter(|| async { auth.authenticate(&session).await.unwrap() });
        });
        group.bench_function(BenchmarkId::new("login_test_cost", name), |b| {
            b.to_async(&rt).iter(|| async {
                auth.login(&cheap_user, &Password::new(PW), false, &ctx)
                    .await
                    .unwrap()
            });
        });
        group.bench_function(BenchmarkId::new("login_owasp", name), |b| {
            b.to_async(&rt).iter(|| async {
                owasp
                    .login(&owasp_user, &Password::new(PW), false, &ctx)
                    .await
                    .unwrap()
            });
        });
        group.bench_function(BenchmarkId::new("register_test_cost", name), |b| {
            b.to_async(&rt).iter(|| async {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let email = format!("reg-{name}-{}-{n}@example.com", std::process::id());
                auth.register(&email, &Password::new(PW), &ctx)
                    .await
                    .unwrap();
            });
        });
        group.bench_function(BenchmarkId::new("token_issue_consume", name), |b| {
            b.to_async(&rt).iter(|| async {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&n.to_le_bytes());
                bytes[8..12].copy_from_slice(&pid.to_le_bytes());
                let hash = TokenHash(bytes);
                let now = time::OffsetDateTime::now_utc();
                let token = NewToken {
                    hash,
                    purpose: TokenPurpose::PasswordReset,
                    user_id: me,
                    created_at: now,
                    expires_at: now + time::Duration::minutes(30),
                };
                stores.tokens.insert_token(token).await.unwrap();
                let used = stores
                    .tokens
                    .consume_token(TokenPurpose::PasswordReset, &hash, now)
                    .await
                    .unwrap();
                assert!(matches!(used, TokenCheck::Valid(_)));
            });
        });
        group.finish();
    }
    rt.block_on(drop_bench_schema());
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
