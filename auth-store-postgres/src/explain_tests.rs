//! EXPLAIN of the hot queries, exactly as the store sends them, on tables with
//! enough rows (and fresh statistics) for the planner to choose between a scan
//! and an index: each must use the index meant for it.
//!
//! Needs `DATABASE_URL` like the integration tests (skips without it, fails under
//! `CI=true`). It works in a schema of its own and drops it at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "test code: a failed check panics; plans are printed for the record"
)]

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor, SqlStr};

use crate::{PgSchema, PgStore};

fn database_url() -> Option<String> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        return Some(url);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "CI is set but DATABASE_URL is not: this test must run in CI"
    );
    // Past the test harness's output capture, so the reason shows.
    let _ = writeln!(
        std::io::stderr(),
        "skipping the EXPLAIN test: DATABASE_URL is not set (a PostgreSQL URL runs it)"
    );
    None
}

/// Rows per table: enough that a sequential scan costs far more than an index
/// probe, so the plans show what the planner really picks.
const SEED: &[&str] = &[
    "INSERT INTO users (id, email, email_normalized, created_at, updated_at)
     SELECT gen_random_uuid(), 'u' || g || '@example.com', 'u' || g || '@example.com',
            now(), now()
     FROM generate_series(1, 5000) AS g",
    "INSERT INTO password_credentials (user_id, hash, changed_at)
     SELECT id, '$argon2id$seed', now() FROM users",
    "INSERT INTO totp_credentials (user_id, key_id, sealed, created_at, confirmed_at, last_step)
     SELECT id, 'k1', sha256(('k' || id)::text::bytea), now(), now(), 1 FROM users",
    "INSERT INTO recovery_codes (user_id, code_hash, created_at)
     SELECT id, sha256(('r' || g || id)::text::bytea), now()
     FROM users, generate_series(1, 10) AS g",
    "INSERT INTO challenges (hash, purpose, user_id, payload, created_at, expires_at)
     SELECT sha256(('c' || id)::text::bytea), 'second_factor', id, '\\x00', now(),
            now() + interval '5 minutes'
     FROM users",
    "INSERT INTO sessions (id, token_hash, user_id, created_at, authenticated_at, methods,
                           last_seen_at, idle_expires_at, absolute_expires_at)
     SELECT gen_random_uuid(), sha256(('s' || id)::text::bytea), id, now(), now(), '{password}',
            now(),
            now() + interval '30 minutes', now() + interval '1 day'
     FROM users",
    "INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at)
     SELECT sha256(('t' || id)::text::bytea), 'password_reset', id, now(), now() + interval '30 minutes'
     FROM users",
    "INSERT INTO attempt_counters (counter_key, count, last_at, expires_at)
     SELECT 'login:a:' || email_normalized, 1, now(), now() + interval '1 hour' FROM users",
    "INSERT INTO audit_log (user_id, event, created_at)
     SELECT id, 'login_succeeded', now() FROM users",
    "ANALYZE",
];

/// The plan of `sql` with its parameters bound to values from the seeded rows.
async fn explain(pool: &PgPool, name: &str, sql: &SqlStr, binds: Binds) -> String {
    let sql = sql.as_str();
    let text = format!("EXPLAIN {sql}");
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(text));
    let now = time::OffsetDateTime::now_utc();
    for bind in binds.0 {
        query = match *bind {
            Bind::SessionHash => query.bind(sha256_of(pool, "s").await),
            Bind::TokenHash => query.bind(sha256_of(pool, "t").await),
            Bind::ChallengeHash => query.bind(sha256_of(pool, "c").await),
            Bind::Step => query.bind(2_i64),
            Bind::SecondFactor => query.bind("second_factor"),
            Bind::UserId => query.bind(any_user(pool).await),
            Bind::Email => query.bind("u42@example.com"),
            Bind::CounterKey => query.bind("login:a:u42@example.com"),
            Bind::Purpose => query.bind("password_reset"),
            Bind::Now => query.bind(now),
            Bind::NoId => query.bind(Option::<uuid::Uuid>::None),
            Bind::Limit => query.bind(10_i64),
        };
    }
    let plan = query.fetch_all(pool).await.unwrap().join("\n");
    println!("--- {name}\n{sql}\n{plan}\n");
    plan
}

#[derive(Clone, Copy)]
enum Bind {
    SessionHash,
    TokenHash,
    ChallengeHash,
    Step,
    SecondFactor,
    UserId,
    Email,
    CounterKey,
    Purpose,
    Now,
    NoId,
    Limit,
}

struct Binds(&'static [Bind]);

async fn sha256_of(pool: &PgPool, prefix: &'static str) -> Vec<u8> {
    let sql = match prefix {
        "s" => "SELECT sha256(('s' || id)::text::bytea) FROM users ORDER BY email LIMIT 1",
        "c" => "SELECT sha256(('c' || id)::text::bytea) FROM users ORDER BY email LIMIT 1",
        _ => "SELECT sha256(('t' || id)::text::bytea) FROM users ORDER BY email LIMIT 1",
    };
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn any_user(pool: &PgPool) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM users ORDER BY email LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Asserts the plan reads through `index` and scans no table sequentially.
fn assert_uses(plan: &str, index: &str) {
    assert!(
        plan.contains(&format!("Index Scan using {index} "))
            || plan.contains(&format!("Index Only Scan using {index} "))
            || plan.contains(&format!("Bitmap Index Scan on {index}")),
        "expected an index scan on {index}:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "sequential scan in:\n{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_queries_use_their_indexes() {
    let Some(url) = database_url() else { return };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The integration tests' cleanup also removes this schema if the test dies.
    let schema = format!("authpg_s{secs}_{}_explain", std::process::id());
    let options = url
        .parse::<PgConnectOptions>()
        .unwrap()
        .options([("search_path", schema.as_str())])
        .application_name(&schema);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
    pool.execute(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .await
        .unwrap();
    let store = PgStore::from_pool(pool.clone(), PgSchema::new(schema.as_str()).unwrap());
    store.migrate().await.unwrap();
    let sql = &store.sql;
    for sql in SEED {
        pool.execute(*sql).await.unwrap();
    }

    use Bind::*;
    // authenticate: the session by token hash, then its user by id.
    let plan = explain(
        &pool,
        "session_by_token",
        &sql.session_by_token,
        Binds(&[SessionHash]),
    )
    .await;
    assert_uses(&plan, "sessions_token_hash_key");
    let plan = explain(&pool, "user_by_id", &sql.user_by_id, Binds(&[UserId])).await;
    assert_uses(&plan, "users_pkey");
    let plan = explain(
        &pool,
        "touch_session",
        &sql.touch_session,
        Binds(&[SessionHash, Now, Now]),
    )
    .await;
    assert_uses(&plan, "sessions_token_hash_key");
    // Token consumption: both the UPDATE and the expiry probe go by hash.
    let plan = explain(
        &pool,
        "consume_token",
        &sql.consume_token,
        Binds(&[TokenHash, Purpose, Now]),
    )
    .await;
    assert_uses(&plan, "one_time_tokens_pkey");
    assert_eq!(plan.matches("one_time_tokens_pkey").count(), 2, "{plan}");
    let plan = explain(
        &pool,
        "revoke_tokens",
        &sql.revoke_tokens,
        Binds(&[UserId, Purpose, Now]),
    )
    .await;
    assert_uses(&plan, "one_time_tokens_user_id_purpose_idx");
    // Login: the user by normalised email, and the counters.
    let plan = explain(&pool, "user_by_email", &sql.user_by_email, Binds(&[Email])).await;
    assert_uses(&plan, "users_email_normalized_key");
    let plan = explain(&pool, "password", &sql.password, Binds(&[UserId])).await;
    assert_uses(&plan, "password_credentials_pkey");
    // The account a login reads before its hash, and again after its
    // session is stored: the user and its two credentials, one probe each.
    let plan = explain(
        &pool,
        "account_by_email",
        &sql.account_by_email,
        Binds(&[Email]),
    )
    .await;
    for index in [
        "users_email_normalized_key",
        "password_credentials_pkey",
        "totp_credentials_pkey",
    ] {
        assert_uses(&plan, index);
    }
    let plan = explain(&pool, "account", &sql.account_by_id, Binds(&[UserId])).await;
    for index in [
        "users_pkey",
        "password_credentials_pkey",
        "totp_credentials_pkey",
    ] {
        assert_uses(&plan, index);
    }
    let plan = explain(
        &pool,
        "increment",
        &sql.increment,
        Binds(&[CounterKey, Now, Now]),
    )
    .await;
    assert!(
        plan.contains("Conflict Arbiter Indexes: attempt_counters_pkey"),
        "{plan}"
    );
    // The second factor: the challenge taken by hash, the TOTP step and the
    // recovery code by user.
    let plan = explain(
        &pool,
        "take_challenge",
        &sql.take_challenge,
        Binds(&[ChallengeHash, SecondFactor, Now]),
    )
    .await;
    assert_uses(&plan, "challenges_pkey");
    let plan = explain(
        &pool,
        "accept_totp_step",
        &sql.accept_totp_step,
        Binds(&[UserId, Step]),
    )
    .await;
    assert_uses(&plan, "totp_credentials_pkey");
    let plan = explain(
        &pool,
        "use_recovery_code",
        &sql.use_recovery_code,
        Binds(&[UserId, ChallengeHash, Now]),
    )
    .await;
    assert_uses(&plan, "recovery_codes_pkey");
    // Session management and the audit trail, by user.
    let plan = explain(
        &pool,
        "list_user_sessions",
        &sql.list_user_sessions,
        Binds(&[UserId, Now]),
    )
    .await;
    assert_uses(&plan, "sessions_user_id_created_at_idx");
    let plan = explain(
        &pool,
        "revoke_user_sessions",
        &sql.revoke_user_sessions,
        Binds(&[UserId, NoId, Now]),
    )
    .await;
    assert_uses(&plan, "sessions_user_id_created_at_idx");
    let plan = explain(
        &pool,
        "events_for_user",
        &sql.events_for_user,
        Binds(&[UserId, Limit]),
    )
    .await;
    assert_uses(&plan, "audit_log_user_id_created_at_idx");
    // Cleanup, a bounded batch per statement: found through the deadline
    // indexes, deleted through the primary keys.
    let plan = explain(
        &pool,
        "delete_expired_tokens",
        &sql.delete_expired_tokens,
        Binds(&[Now, Limit]),
    )
    .await;
    assert_uses(&plan, "one_time_tokens_expires_at_idx");
    assert_uses(&plan, "one_time_tokens_pkey");
    let plan = explain(
        &pool,
        "delete_consumed_tokens",
        &sql.delete_consumed_tokens,
        Binds(&[Now, Limit]),
    )
    .await;
    assert_uses(&plan, "one_time_tokens_consumed_at_idx");
    assert_uses(&plan, "one_time_tokens_pkey");
    let plan = explain(
        &pool,
        "delete_expired_challenges",
        &sql.delete_expired_challenges,
        Binds(&[Now, Limit]),
    )
    .await;
    assert_uses(&plan, "challenges_expires_at_idx");
    assert_uses(&plan, "challenges_pkey");
    let plan = explain(
        &pool,
        "delete_expired_attempts",
        &sql.delete_expired_attempts,
        Binds(&[Now, Limit]),
    )
    .await;
    assert_uses(&plan, "attempt_counters_expires_at_idx");
    assert_uses(&plan, "attempt_counters_pkey");
    let plan = explain(
        &pool,
        "delete_before",
        &sql.delete_before,
        Binds(&[Now, Limit]),
    )
    .await;
    assert_uses(&plan, "audit_log_created_at_idx");
    assert_uses(&plan, "audit_log_pkey");
    let plan = explain(
        &pool,
        "delete_unverified",
        &sql.delete_unverified,
        Binds(&[Now, Limit]),
    )
    .await;
    assert_uses(&plan, "users_unverified_created_at_idx");
    assert_uses(&plan, "users_pkey");
    // Sessions have no deadline index (every touch would update it): the
    // sweep reads one range of pages per statement, never the whole table.
    let plan = explain(
        &pool,
        "delete_expired_sessions",
        &sql.delete_expired_sessions,
        Binds(&[Now, Step, Step]),
    )
    .await;
    assert!(
        plan.contains("Tid Range Scan"),
        "expected a TID range scan:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "sequential scan in:\n{plan}");

    pool.execute(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .await
        .unwrap();
    pool.close().await;
}
