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
    AuthMethod, NewToken, NewUser, PasswordStore, Role, RoleStore, SessionId, SessionRecord,
    SessionStore, StoreError, TokenCheck, TokenStore, UserId, UserStore,
};
use auth_core::{EmailAddress, PasswordHashString, TokenHash, TokenPurpose};
use auth_store_postgres::sqlx::postgres::PgPoolOptions;
use auth_store_postgres::sqlx::{self, Connection, PgPool};
use auth_store_postgres::{MIGRATOR, PgSchema, PgStore, SchemaError};
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
    "relation(r) auth.users",
    "relation(r) auth.one_time_tokens",
    "relation(r) auth.sessions",
    "relation(r) auth.attempt_counters",
    "relation(r) auth.audit_log",
    "relation(S) auth.audit_log_id_seq",
    "relation(i) auth.users_email_normalized_key",
    "relation(i) auth.sessions_token_hash_key",
    "relation(i) auth.sessions_user_id_created_at_idx",
    "relation(i) auth.one_time_tokens_pkey",
    "relation(i) auth.one_time_tokens_user_id_purpose_idx",
    "relation(i) auth.attempt_counters_pkey",
    "relation(i) auth.attempt_counters_expires_at_idx",
    "relation(i) auth.audit_log_user_id_created_at_idx",
    "type auth.users",
    "constraint auth.sessions_user_id_fkey",
    "constraint auth.one_time_tokens_user_id_fkey",
    "constraint auth.one_time_tokens_expiry_after_creation",
    "constraint auth.sessions_idle_within_absolute",
    "constraint auth.sessions_authenticated_after_creation",
    "relation(r) auth.password_credentials",
    "relation(r) auth.totp_credentials",
    "relation(r) auth.recovery_codes",
    "relation(r) auth.challenges",
    "relation(i) auth.password_credentials_pkey",
    "relation(i) auth.totp_credentials_pkey",
    "relation(i) auth.recovery_codes_pkey",
    "relation(i) auth.challenges_pkey",
    "relation(i) auth.challenges_expires_at_idx",
    "constraint auth.password_credentials_user_id_fkey",
    "constraint auth.totp_credentials_user_id_fkey",
    "constraint auth.totp_credentials_step_when_confirmed",
    "constraint auth.recovery_codes_user_id_fkey",
    "constraint auth.recovery_codes_hash_length",
    "constraint auth.challenges_user_id_fkey",
    "constraint auth.challenges_hash_length",
    "constraint auth.challenges_expiry_after_creation",
    "constraint auth.sessions_methods_present",
    "relation(r) auth.user_roles",
    "relation(i) auth.user_roles_pkey",
    "constraint auth.user_roles_user_id_fkey",
    "constraint auth.user_roles_role_name",
];

/// What the migrations must have removed.
const GONE: &[&str] = &["constraint auth.users_password_hash_present"];

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
    let store = PgStore::from_pool(pool.clone(), PgSchema::default());
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

    store.migrate().await.unwrap();
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

    store.undo(0).await.unwrap();
    let down = objects(&pool).await;
    // The schema stays, with the (empty) history the migrator keeps there.
    let mut expected = before.clone();
    expected.insert("schema auth".to_owned());
    let left: Vec<_> = down.difference(&expected).collect();
    assert!(
        left.is_empty(),
        "left behind by the down migrations: {left:#?}"
    );
    assert_eq!(down, expected);
    assert_eq!(store.applied_migrations().await.unwrap(), Vec::<i64>::new());
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Behind { .. })
    ));

    store.migrate().await.unwrap();
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

    let deleted = sqlx::query(support::in_schema(
        &store,
        "DELETE FROM {schema}.users WHERE id = $1",
    ))
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
    let left: i64 = sqlx::query_scalar(support::in_schema(
        &store,
        "SELECT (SELECT count(*) FROM {schema}.one_time_tokens) \
         + (SELECT count(*) FROM {schema}.sessions)",
    ))
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

/// A pool whose `search_path` is a fresh schema, as a deployment from before
/// the schema setting had, and a store told that schema; or `None` when the
/// tests skip.
async fn fresh_pool() -> Option<(PgPool, PgStore)> {
    let url = support::database_url()?;
    let (schema, options) = support::fresh_schema(&url).await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let store = PgStore::from_pool(pool.clone(), PgSchema::new(schema).unwrap());
    Some((pool, store))
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
    let Some((pool, store)) = fresh_pool().await else {
        return;
    };
    let first = MIGRATOR.iter().map(|m| m.version).min().unwrap();
    MIGRATOR.run_to(first, &pool).await.unwrap();
    let user = insert_early_user(&pool, "early@example.com", "$argon2id$early", t0()).await;
    insert_early_session(&pool, 3, user, false).await;
    store.migrate().await.unwrap();
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
    let Some((pool, store)) = fresh_pool().await else {
        return;
    };
    let credentials = version_of("credentials");
    let previous = version_before(credentials);
    MIGRATOR.run_to(previous, &pool).await.unwrap();
    let changed = t0() + Duration::days(3);
    let alice = insert_early_user(&pool, "alice@example.com", "$argon2id$alice", changed).await;
    let bob = insert_early_user(&pool, "bob@example.com", "$2b$12$bob", t0()).await;
    insert_early_session(&pool, 4, alice, true).await;

    store.migrate().await.unwrap();
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
    store.undo(previous).await.unwrap();
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

    store.migrate().await.unwrap();
    assert_eq!(store.password(carol).await.unwrap(), None);
    assert_eq!(
        store.password(bob).await.unwrap().unwrap().hash,
        PasswordHashString::new("$2b$12$bob")
    );
    pool.close().await;
}

/// A fresh database (the library's default schema name is then free) and a
/// pool on it with the server's default `search_path`, as an application's;
/// or `None` when the tests skip. [`drop_database`] removes it.
async fn fresh_database() -> Option<(String, PgPool)> {
    let url = support::database_url()?;
    support::clean_up_once(&url).await;
    let base = support::base_options(&url);
    let name = support::unique_name(support::DATABASE_PREFIX);
    let mut admin = support::connect(&base).await;
    support::ddl(
        &mut admin,
        format!("CREATE DATABASE {}", support::ident(&name)),
    )
    .await;
    admin.close().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(base.database(&name))
        .await
        .unwrap();
    Some((name, pool))
}

async fn drop_database(name: &str, pool: PgPool) {
    pool.close().await;
    let url = support::database_url().unwrap();
    let mut admin = support::connect(&support::base_options(&url)).await;
    support::ddl(
        &mut admin,
        format!("DROP DATABASE {} WITH (FORCE)", support::ident(name)),
    )
    .await;
    admin.close().await.unwrap();
}

/// Whether `name` (schema-qualified) is a relation.
async fn exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A deployment from before the schema setting (every table and
/// `_sqlx_migrations` in `public`) keeps its data: `migrate` moves the tables
/// and the history into `auth` and applies what is pending there; users,
/// password hashes (S1), sessions (S5) and tokens (S4) are then found in the
/// new schema, `public` holds nothing of the library, and the store works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_from_before_the_schema_setting_moves_with_its_data() {
    let Some((name, pool)) = fresh_database().await else {
        return;
    };
    let released = version_of("credentials");
    MIGRATOR.run_to(released, &pool).await.unwrap();
    let alice = UserId::new_random();
    let setup = [
        "INSERT INTO users (id, email, email_normalized, created_at, updated_at)
         VALUES ($1, 'alice@example.com', 'alice@example.com', $2, $2)",
        "INSERT INTO password_credentials (user_id, hash, changed_at)
         VALUES ($1, '$argon2id$alice', $2)",
        "INSERT INTO sessions (id, token_hash, user_id, created_at, authenticated_at, methods,
                               last_seen_at, idle_expires_at, absolute_expires_at)
         VALUES (gen_random_uuid(), '\\x0909090909090909090909090909090909090909090909090909090909090909',
                 $1, $2, $2, '{password}', $2, $2 + interval '30 minutes', $2 + interval '1 day')",
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at)
         VALUES ('\\x0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a',
                 'password_reset', $1, $2, $2 + interval '30 minutes')",
    ];
    for sql in setup {
        sqlx::query(sql)
            .bind(alice.0)
            .bind(t0())
            .execute(&pool)
            .await
            .unwrap();
    }

    let store = PgStore::from_pool(pool.clone(), PgSchema::default());
    assert!(matches!(
        store.check_schema().await,
        Err(SchemaError::Behind { .. })
    ));
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();

    for table in [
        "users",
        "sessions",
        "password_credentials",
        "_sqlx_migrations",
    ] {
        assert!(!exists(&pool, &format!("public.{table}")).await, "{table}");
        assert!(exists(&pool, &format!("auth.{table}")).await, "{table}");
    }
    let user = store.user_by_id(alice).await.unwrap().unwrap();
    assert_eq!(user.email.normalized(), "alice@example.com");
    assert_eq!(
        store.password(alice).await.unwrap().unwrap().hash,
        PasswordHashString::new("$argon2id$alice")
    );
    let session = store
        .session_by_token(&TokenHash([9; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.user_id, alice);
    assert_eq!(
        store
            .peek_token(TokenPurpose::PasswordReset, &TokenHash([10; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Valid(alice)
    );
    // The moved tables keep their constraints and cascades.
    assert!(matches!(
        store.create_user(new_user("alice@example.com")).await,
        Err(StoreError::Conflict)
    ));
    let bob = store
        .create_user(new_user("bob@example.com"))
        .await
        .unwrap();
    assert!(store.user_by_id(bob.id).await.unwrap().is_some());
    // And the pending migration ran in the schema, next to the moved tables.
    let admin = Role::new("admin").unwrap();
    assert!(store.grant_role(alice, &admin, t0()).await.unwrap());
    assert_eq!(store.user_roles(alice).await.unwrap(), [admin]);
    // A second start finds everything in place.
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();

    drop_database(&name, pool).await;
}

/// An application with its own `public.users (id bigint, display_name)` and
/// the library migrated next to it on the application's own pool: no clash,
/// both usable, and the application's rows link to `auth.users(id)` with a
/// foreign key that follows the library's deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_lives_next_to_an_applications_own_users_table() {
    let Some((name, pool)) = fresh_database().await else {
        return;
    };
    for sql in [
        "CREATE TABLE users (id bigint PRIMARY KEY, display_name text)",
        "INSERT INTO users (id, display_name) VALUES (1, 'Ada')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let store = PgStore::from_pool(pool.clone(), PgSchema::default());
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
    sqlx::query(
        "CREATE TABLE profiles (
             app_user_id bigint PRIMARY KEY REFERENCES users (id),
             auth_user_id uuid NOT NULL UNIQUE REFERENCES auth.users (id) ON DELETE CASCADE
         )",
    )
    .execute(&pool)
    .await
    .unwrap();

    let user = store
        .create_user(new_user("ada@example.com"))
        .await
        .unwrap();
    sqlx::query("INSERT INTO profiles (app_user_id, auth_user_id) VALUES (1, $1)")
        .bind(user.id.0)
        .execute(&pool)
        .await
        .unwrap();
    let greeted: String = sqlx::query_scalar(
        "SELECT u.display_name FROM users u JOIN profiles p ON p.app_user_id = u.id
         WHERE p.auth_user_id = $1",
    )
    .bind(user.id.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(greeted, "Ada");
    assert!(store.user_by_id(user.id).await.unwrap().is_some());
    // A link to no library user is refused.
    assert!(
        sqlx::query("INSERT INTO profiles (app_user_id, auth_user_id) VALUES (1, $1)")
            .bind(UserId::new_random().0)
            .execute(&pool)
            .await
            .is_err()
    );
    // The pool's own connections were never moved off the application's
    // search_path.
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(path, "\"$user\", public");
    sqlx::query("DELETE FROM auth.users WHERE id = $1")
        .bind(user.id.0)
        .execute(&pool)
        .await
        .unwrap();
    let profiles: i64 = sqlx::query_scalar("SELECT count(*) FROM profiles")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(profiles, 0);
    let app_users: i64 = sqlx::query_scalar("SELECT count(*) FROM public.users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(app_users, 1);

    drop_database(&name, pool).await;
}
