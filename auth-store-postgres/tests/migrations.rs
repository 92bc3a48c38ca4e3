//! The migrations: up, down, up on a fresh database, with the down leaving no
//! table, index, sequence, type, constraint or function behind; and the schema
//! rules the store relies on (unique normalised email, cascades, expiry CHECKs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed check panics"
)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use auth_core::store::{
    AuthMethod, NewToken, NewUser, PasswordStore, SessionId, SessionRecord, SessionStore,
    StoreError, TokenCheck, TokenStore, UserId, UserStore,
};
use auth_core::{EmailAddress, PasswordHashString, TokenHash, TokenPurpose};
use auth_store_postgres::sqlx::postgres::PgPoolOptions;
use auth_store_postgres::sqlx::{self, Connection, PgPool};
use auth_store_postgres::{MIGRATOR, PgStore, SchemaError};
use time::{Duration, OffsetDateTime};

/// Every object outside the system schemas, but sqlx's own migration history.
const OBJECTS: &str = "
SELECT o.kind || ' ' || o.name FROM (
    SELECT 'relation(' || c.relkind::text || ')' AS kind, n.nspname || '.' || c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'type', n.nspname || '.' || t.typname
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    UNION ALL
    SELECT 'constraint', n.nspname || '.' || co.conname
      FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
    UNION ALL
    SELECT 'function', n.nspname || '.' || p.proname
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    UNION ALL
    SELECT 'trigger', tg.tgrelid::regclass::text || '.' || CASE
        WHEN tg.tgisinternal THEN 'internal ' || tg.tgfoid::regproc::text  -- named by oid
        ELSE tg.tgname END
      FROM pg_trigger tg
    UNION ALL
    SELECT 'schema', n.nspname FROM pg_namespace n
    UNION ALL
    SELECT 'extension', e.extname FROM pg_extension e
    UNION ALL
    SELECT 'collation', n.nspname || '.' || cl.collname
      FROM pg_collation cl JOIN pg_namespace n ON n.oid = cl.collnamespace
) AS o
WHERE o.name NOT LIKE 'pg\\_catalog.%'
  AND o.name NOT LIKE 'information\\_schema.%'
  AND o.name NOT LIKE 'pg\\_toast%'
  AND o.name NOT LIKE 'pg\\_temp%'
  AND o.name NOT LIKE '%\\_sqlx\\_migrations%'
ORDER BY 1";

async fn objects(pool: &PgPool) -> BTreeSet<String> {
    sqlx::query_scalar(OBJECTS)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// What the migrations must create (a sample of every kind).
const EXPECTED: &[&str] = &[
    "relation(r) public.users",
    "relation(r) public.one_time_tokens",
    "relation(r) public.sessions",
    "relation(r) public.attempt_counters",
    "relation(r) public.audit_log",
    "relation(S) public.audit_log_id_seq",
    "relation(i) public.users_email_normalized_key",
    "relation(i) public.sessions_token_hash_key",
    "relation(i) public.sessions_user_id_created_at_idx",
    "relation(i) public.one_time_tokens_pkey",
    "relation(i) public.one_time_tokens_user_id_purpose_idx",
    "relation(i) public.attempt_counters_pkey",
    "relation(i) public.attempt_counters_expires_at_idx",
    "relation(i) public.audit_log_user_id_created_at_idx",
    "type public.users",
    "constraint public.sessions_user_id_fkey",
    "constraint public.one_time_tokens_user_id_fkey",
    "constraint public.one_time_tokens_expiry_after_creation",
    "constraint public.sessions_idle_within_absolute",
    "constraint public.sessions_authenticated_after_creation",
    "relation(r) public.password_credentials",
    "relation(r) public.totp_credentials",
    "relation(r) public.recovery_codes",
    "relation(r) public.challenges",
    "relation(i) public.password_credentials_pkey",
    "relation(i) public.totp_credentials_pkey",
    "relation(i) public.recovery_codes_pkey",
    "relation(i) public.challenges_pkey",
    "relation(i) public.challenges_expires_at_idx",
    "constraint public.password_credentials_user_id_fkey",
    "constraint public.totp_credentials_user_id_fkey",
    "constraint public.totp_credentials_step_when_confirmed",
    "constraint public.recovery_codes_user_id_fkey",
    "constraint public.recovery_codes_hash_length",
    "constraint public.challenges_user_id_fkey",
    "constraint public.challenges_hash_length",
    "constraint public.challenges_expiry_after_creation",
    "constraint public.sessions_methods_present",
];

/// What the migrations must have removed.
const GONE: &[&str] = &["constraint public.users_password_hash_present"];

/// S-rule: every migration has a down migration, and up, down, up works on a
/// fresh database; the down leaves nothing of ours behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_down_up_on_a_fresh_database() {
    let Some(url) = support::database_url() else {
        return;
    };
    support::clean_up_once(&url).await;
    let base = support::base_options(&url);
    let name = support::unique_name(support::DATABASE_PREFIX);
    let mut admin = support::connect(&base).await;
    support::ddl(
        &mut admin,
        format!("CREATE DATABASE {}", support::ident(&name)),
    )
    .await;

    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(base.clone().database(&name))
        .await
        .unwrap();
    let store = PgStore::from_pool(pool.clone());
    let versions: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    assert!(!versions.is_empty());
    assert!(
        MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_down_migration())
            .count()
            == versions.len(),
        "every up migration has a down migration"
    );

    let before = objects(&pool).await;
    match store.check_schema().await {
        Err(SchemaError::Behind { missing }) => assert_eq!(missing, versions),
        other => panic!("a fresh database is behind: {other:?}"),
    }

    MIGRATOR.run(&pool).await.unwrap();
    let up = objects(&pool).await;
    for expected in EXPECTED {
        assert!(
            up.contains(*expected),
            "missing after up: {expected}\n{up:#?}"
        );
    }
    for gone in GONE {
        assert!(!up.contains(*gone), "still there after up: {gone}");
    }
    store.check_schema().await.unwrap();

    MIGRATOR.undo(&pool, 0).await.unwrap();
    let down = objects(&pool).await;
    let left: Vec<_> = down.difference(&before).collect();
    assert!(
        left.is_empty(),
        "left behind by the down migrations: {left:#?}"
    );
    assert_eq!(down, before);
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Behind { .. })
    ));

    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(
        objects(&pool).await,
        up,
        "the second up builds the same schema"
    );
    store.check_schema().await.unwrap();
    // And it works.
    let user = store
        .create_user(new_user("after@example.com"))
        .await
        .unwrap();
    assert!(store.user_by_id(user.id).await.unwrap().is_some());

    pool.close().await;
    support::ddl(
        &mut admin,
        format!("DROP DATABASE {} WITH (FORCE)", support::ident(&name)),
    )
    .await;
    admin.close().await.unwrap();
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::new_random(),
        email: EmailAddress::parse(email).unwrap(),
        password_hash: Some(PasswordHashString::new(
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
        )),
        created_at: t0(),
    }
}

fn t0() -> OffsetDateTime {
    auth_core::conformance::t0()
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
        ip: Some("2001:db8::7".parse().unwrap()),
        user_agent: None,
    }
}

fn is_check_violation(e: &StoreError) -> bool {
    let StoreError::Other(source) = e else {
        return false;
    };
    source
        .downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .is_some_and(sqlx::error::DatabaseError::is_check_violation)
}

/// The CHECKs refuse records whose deadlines are out of order, and a purpose
/// that is not a stored-token purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_refuse_deadlines_out_of_order() {
    let Some(store) = support::store().await else {
        return;
    };
    let user = store
        .create_user(new_user("check@example.com"))
        .await
        .unwrap();
    let token = |n: u8, purpose, expires_at| NewToken {
        hash: TokenHash([n; 32]),
        purpose,
        user_id: user.id,
        created_at: t0(),
        expires_at,
    };
    let reset = TokenPurpose::PasswordReset;
    for bad in [
        token(1, reset, t0()),
        token(2, reset, t0() - Duration::seconds(1)),
        token(3, TokenPurpose::Session, t0() + Duration::minutes(5)),
    ] {
        let e = store.insert_token(bad).await.unwrap_err();
        assert!(is_check_violation(&e), "{e:?}");
    }
    let mut s = session(4, user.id);
    s.absolute_expires_at = s.created_at;
    s.idle_expires_at = s.created_at;
    assert!(is_check_violation(
        &store.create_session(s).await.unwrap_err()
    ));
    let mut s = session(5, user.id);
    s.idle_expires_at = s.absolute_expires_at + Duration::seconds(1);
    assert!(is_check_violation(
        &store.create_session(s).await.unwrap_err()
    ));
    // A touch past the absolute deadline is clamped to it, not refused.
    let s = session(6, user.id);
    store.create_session(s.clone()).await.unwrap();
    store
        .touch_session(
            &s.token_hash,
            t0() + Duration::hours(23),
            t0() + Duration::hours(30),
        )
        .await
        .unwrap();
    let got = store
        .session_by_token(&s.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.idle_expires_at, s.absolute_expires_at);
    assert_eq!(got.ip, s.ip, "IPv6 addresses round-trip through inet");
}

/// Deleting a user deletes its tokens and sessions; a session or token hash is
/// unique (a collision is a conflict, not an overwrite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_deletion_cascades_and_hashes_are_unique() {
    let Some(store) = support::store().await else {
        return;
    };
    let store = Arc::new(store);
    let user = store
        .create_user(new_user("gone@example.com"))
        .await
        .unwrap();
    let other = store
        .create_user(new_user("stays@example.com"))
        .await
        .unwrap();
    let token = NewToken {
        hash: TokenHash([7; 32]),
        purpose: TokenPurpose::EmailVerification,
        user_id: user.id,
        created_at: t0(),
        expires_at: t0() + Duration::hours(24),
    };
    store.insert_token(token.clone()).await.unwrap();
    assert!(matches!(
        store.insert_token(token).await,
        Err(StoreError::Conflict)
    ));
    store.create_session(session(8, user.id)).await.unwrap();
    assert!(matches!(
        store.create_session(session(8, other.id)).await,
        Err(StoreError::Conflict)
    ));

    let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user.id.0)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    assert_eq!(
        store
            .peek_token(TokenPurpose::EmailVerification, &TokenHash([7; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Invalid
    );
    assert_eq!(
        store.session_by_token(&TokenHash([8; 32])).await.unwrap(),
        None
    );
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM one_time_tokens) + (SELECT count(*) FROM sessions)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(left, 0);
}

/// A `users` row as the schema before the credentials migration holds it
/// (the password on the row), written directly: the store's own statements
/// follow the newest schema.
async fn insert_early_user(
    pool: &PgPool,
    email: &str,
    hash: &str,
    changed_at: OffsetDateTime,
) -> UserId {
    let id = UserId::new_random();
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, password_changed_at,
                            created_at, updated_at)
         VALUES ($1, $2, $2, $3, $4, $5, $5)",
    )
    .bind(id.0)
    .bind(email)
    .bind(hash)
    .bind(changed_at)
    .bind(t0())
    .execute(pool)
    .await
    .unwrap();
    id
}

/// A session row with the columns every schema version has, and its
/// sign-in time when the schema has one.
async fn insert_early_session(pool: &PgPool, n: u8, user: UserId, signed_in: bool) {
    let columns = if signed_in { ", authenticated_at" } else { "" };
    let values = if signed_in { ", $4" } else { "" };
    let sql = format!(
        "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at,
                               idle_expires_at, absolute_expires_at{columns})
         VALUES ($1, $2, $3, $4, $4, $5, $6{values})"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(SessionId::new_random().0)
        .bind([n; 32])
        .bind(user.0)
        .bind(t0())
        .bind(t0() + Duration::minutes(30))
        .bind(t0() + Duration::hours(24))
        .execute(pool)
        .await
        .unwrap();
}

/// A pool on a fresh schema, or `None` when the tests skip.
async fn fresh_pool() -> Option<PgPool> {
    let url = support::database_url()?;
    let (_, options) = support::fresh_schema(&url).await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    Some(pool)
}

/// The version of the up migration named `name`.
fn version_of(name: &str) -> i64 {
    MIGRATOR
        .iter()
        .find(|m| !m.migration_type.is_down_migration() && m.description == name)
        .unwrap_or_else(|| panic!("no migration named {name}"))
        .version
}

/// The newest up migration older than `version`.
fn version_before(version: i64) -> i64 {
    MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && m.version < version)
        .map(|m| m.version)
        .max()
        .unwrap()
}

/// The session sign-in time (S14) arrives by a migration of its own: the
/// sessions that existed before it are taken as signed in when they were
/// created, and stay usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_sessions_get_their_creation_as_sign_in_time() {
    let Some(pool) = fresh_pool().await else {
        return;
    };
    let first = MIGRATOR.iter().map(|m| m.version).min().unwrap();
    MIGRATOR.run_to(first, &pool).await.unwrap();
    let store = PgStore::from_pool(pool.clone());
    let user = insert_early_user(&pool, "early@example.com", "$argon2id$early", t0()).await;
    insert_early_session(&pool, 3, user, false).await;
    MIGRATOR.run(&pool).await.unwrap();
    store.check_schema().await.unwrap();
    let carried = store
        .session_by_token(&TokenHash([3; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carried.authenticated_at, carried.created_at);
    assert!(carried.is_active(t0()));
    pool.close().await;
}

/// Credentials leave `users` by a migration of their own (S1, S5, S15): every
/// existing user keeps the password hash and change time they had, and every
/// existing session reads as a password sign-in. The down migration puts the
/// hashes back on `users` (a user without a password gets the unusable '!'),
/// and the next up leaves that user without a password again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_users_keep_their_password_hashes() {
    let Some(pool) = fresh_pool().await else {
        return;
    };
    let credentials = version_of("credentials");
    let previous = version_before(credentials);
    MIGRATOR.run_to(previous, &pool).await.unwrap();
    let store = PgStore::from_pool(pool.clone());
    let changed = t0() + Duration::days(3);
    let alice = insert_early_user(&pool, "alice@example.com", "$argon2id$alice", changed).await;
    let bob = insert_early_user(&pool, "bob@example.com", "$2b$12$bob", t0()).await;
    insert_early_session(&pool, 4, alice, true).await;

    MIGRATOR.run(&pool).await.unwrap();
    store.check_schema().await.unwrap();
    for (user, hash, at) in [
        (alice, "$argon2id$alice", changed),
        (bob, "$2b$12$bob", t0()),
    ] {
        let password = store.password(user).await.unwrap().unwrap();
        assert_eq!(
            (password.hash, password.changed_at),
            (PasswordHashString::new(hash), at)
        );
        assert!(store.user_by_id(user).await.unwrap().is_some());
    }
    let session = store
        .session_by_token(&TokenHash([4; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.methods, [AuthMethod::Password]);

    // A user without a password, then down: the hashes are back on `users`.
    let carol = store
        .create_user(NewUser {
            password_hash: None,
            ..new_user("carol@example.com")
        })
        .await
        .unwrap()
        .id;
    store
        .set_password(alice, &PasswordHashString::new("$argon2id$new"), changed)
        .await
        .unwrap();
    MIGRATOR.undo(&pool, previous).await.unwrap();
    let rows: Vec<(uuid::Uuid, String, OffsetDateTime)> =
        sqlx::query_as("SELECT id, password_hash, password_changed_at FROM users ORDER BY email")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (alice.0, "$argon2id$new".to_owned(), changed),
            (bob.0, "$2b$12$bob".to_owned(), t0()),
            (carol.0, "!".to_owned(), t0()),
        ]
    );

    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(store.password(carol).await.unwrap(), None);
    assert_eq!(
        store.password(bob).await.unwrap().unwrap().hash,
        PasswordHashString::new("$2b$12$bob")
    );
    pool.close().await;
}
