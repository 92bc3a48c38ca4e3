//! Two application instances: two `Auth` engines built separately, each with its
//! own Redis connection and its own PostgreSQL pool, over the same Redis
//! (counters, sessions and challenges) and the same PostgreSQL schema (users,
//! credentials, tokens and the audit trail), as two processes of one deployment
//! are. Both engines use the harness's fixed secret key (so they hash session
//! and challenge tokens alike), and their clocks are moved together.
//!
//! They need `REDIS_URL` and `DATABASE_URL`; without either they skip, unless
//! `CI=true`, where they fail.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a failed unwrap is a failed test"
)]

mod support;

// The PostgreSQL store's own test support: fresh migrated schemas, the CI policy
// and the cleanup of schemas left by earlier runs.
#[path = "../../auth-store-postgres/tests/support/mod.rs"]
mod pg_support;

use std::sync::Arc;

use auth_core::clock::Clock;
use auth_core::conformance::Harness;
use auth_core::conformance::engine::totp_code;
use auth_core::mail::MessageKind;
use auth_core::store::{AttemptKey, AttemptScope, AuthMethod};
use auth_core::{AuthConfig, AuthError, LoginOutcome, OpaqueToken, Password, SecondFactorCode};
use time::Duration;

use support::Cleanup;

const PW: &str = "purple otter sings";

struct Pair {
    a: Harness,
    b: Harness,
    url: String,
    cleanup: Arc<Cleanup>,
}

impl Pair {
    async fn new() -> Option<Self> {
        Self::with_config(Harness::config()).await
    }

    async fn with_config(config: AuthConfig) -> Option<Self> {
        let url = support::redis_url()?;
        let database_url = pg_support::database_url()?;
        let prefix = support::fresh_prefix();
        let cleanup = Cleanup::new(&url, &prefix);
        // One schema, migrated once; each instance gets a pool of its own.
        let (schema, options) = pg_support::fresh_store_schema(&database_url).await;
        let instance = async || {
            let pool = pg_support::test_pool()
                .schema(schema.clone())
                .connect_with(options.clone())
                .await;
            Arc::new(pool.unwrap_or_else(|e| panic!("connecting the store: {e:?}")))
        };
        let (db_a, db_b) = (instance().await, instance().await);
        db_a.migrate().await.unwrap();
        let pair = Self {
            a: Harness::with_config(
                support::bundle_on(&url, &prefix, &cleanup, &db_a),
                config.clone(),
            ),
            b: Harness::with_config(support::bundle_on(&url, &prefix, &cleanup, &db_b), config),
            url,
            cleanup,
        };
        assert_eq!(pair.a.clock.now(), pair.b.clock.now());
        Some(pair)
    }

    fn advance(&self, by: Duration) {
        self.a.clock.advance(by);
        self.b.clock.advance(by);
    }

    /// How many sessions hold a user snapshot (the record's flags byte, its
    /// second, has bit 2: the layout of `record.rs`).
    fn snapshots(&self) -> usize {
        let mut conn = redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys = self.cleanup.keys().unwrap();
        keys.iter()
            .filter(|k| k.contains(":{t:"))
            .filter(|k| {
                let record: Vec<u8> = redis::cmd("GET").arg(k.as_str()).query(&mut conn).unwrap();
                record.get(1).is_some_and(|flags| flags & 2 != 0)
            })
            .count()
    }

    /// Authenticates `token` on B until B answers from a snapshot (the first
    /// request stores it), so B's next request would not read PostgreSQL.
    async fn warm_on_b(&self, token: &OpaqueToken) {
        let before = self.snapshots();
        self.b.auth.authenticate(token).await.unwrap();
        self.b.auth.authenticate(token).await.unwrap();
        assert!(self.snapshots() >= before.max(1), "B holds a warm snapshot");
    }

    async fn unauthenticated(h: &Harness, token: &OpaqueToken) -> bool {
        matches!(
            h.auth.authenticate(token).await,
            Err(AuthError::Unauthenticated)
        )
    }
}

/// S6: a lockout reached through one instance is enforced by the other, and a
/// success on the other clears it for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lockout_reached_through_one_is_enforced_by_the_other() {
    let Some(p) = Pair::new().await else { return };
    p.a.verified_user("shared@example.com", PW).await;
    let threshold = Harness::config().account_lockout.threshold;
    for i in 0..threshold {
        let r =
            p.a.auth
                .login(
                    "shared@example.com",
                    &Password::new("wrong password!"),
                    false,
                    &Harness::ctx(u8::try_from(i).unwrap()),
                )
                .await;
        assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    }
    // The right password, through the other instance, from another address.
    let locked =
        p.b.auth
            .login(
                "shared@example.com",
                &Password::new(PW),
                false,
                &Harness::ctx(200),
            )
            .await;
    assert!(
        matches!(
            locked,
            Err(AuthError::Locked {
                retry_after: Some(_)
            })
        ),
        "{locked:?}"
    );
    // Once the backoff has passed, a success on B clears the counter A reads.
    let key = AttemptKey::Account(AttemptScope::Login, "shared@example.com".into());
    let count = |h: &Harness| {
        let (attempts, now) = (h.stores.attempts.clone(), h.clock.now());
        let key = key.clone();
        async move { attempts.attempts(&key, now).await.unwrap().count }
    };
    assert_eq!(count(&p.a).await, threshold);
    p.advance(Duration::minutes(1));
    p.b.login("shared@example.com", PW).await;
    assert_eq!(count(&p.a).await, 0);
}

/// S5: a session created by one instance authenticates on the other, and activity
/// recorded by one is seen by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_created_by_one_authenticates_on_the_other() {
    let Some(p) = Pair::new().await else { return };
    let id = p.a.verified_user("roam@example.com", PW).await;
    let token = p.a.login("roam@example.com", PW).await;
    let on_b = p.b.auth.authenticate(&token).await.unwrap();
    assert_eq!(on_b.user.id, id);
    let listed = p.a.auth.list_sessions(id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, on_b.session.id);

    // Activity on B (past the touch interval) moves the idle deadline for A.
    p.advance(Duration::minutes(20));
    p.b.auth.authenticate(&token).await.unwrap();
    let seen = &p.a.auth.list_sessions(id).await.unwrap()[0];
    assert_eq!(seen.last_seen_at, p.a.clock.now());
    // 40 minutes after login, past the first idle deadline: alive thanks to B.
    p.advance(Duration::minutes(20));
    assert_eq!(p.a.auth.authenticate(&token).await.unwrap().user.id, id);
}

/// S5: a logout on one instance is seen by the other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_on_one_is_seen_by_the_other_at_once() {
    let Some(p) = Pair::new().await else { return };
    p.a.verified_user("bye@example.com", PW).await;
    let (token, other) = (
        p.a.login("bye@example.com", PW).await,
        p.b.login("bye@example.com", PW).await,
    );
    assert!(p.b.auth.authenticate(&token).await.is_ok());
    p.a.auth.logout(&token, &Harness::ctx(1)).await.unwrap();
    assert!(Pair::unauthenticated(&p.b, &token).await);
    // Only that session ended.
    assert!(p.a.auth.authenticate(&other).await.is_ok());
    assert!(p.b.auth.authenticate(&other).await.is_ok());
}

/// S5: revoke-all (and revoking one session by id) on one instance is seen by the
/// other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_on_one_are_seen_by_the_other_at_once() {
    let Some(p) = Pair::new().await else { return };
    let id = p.a.verified_user("all@example.com", PW).await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        let h = if i % 2 == 0 { &p.a } else { &p.b };
        tokens.push(h.login("all@example.com", PW).await);
    }
    // One by id, through B, of a session A authenticates.
    let first = p.a.auth.authenticate(&tokens[0]).await.unwrap().session.id;
    assert!(
        p.b.auth
            .revoke_session(id, first, &Harness::ctx(1))
            .await
            .unwrap()
    );
    assert!(Pair::unauthenticated(&p.a, &tokens[0]).await);
    assert_eq!(p.a.auth.list_sessions(id).await.unwrap().len(), 2);

    // All the others, through B; A sees none left.
    assert_eq!(p.b.auth.logout_all(id, &Harness::ctx(1)).await.unwrap(), 2);
    for token in &tokens {
        assert!(Pair::unauthenticated(&p.a, token).await);
    }
    assert!(p.a.auth.list_sessions(id).await.unwrap().is_empty());
}

/// S6: 50 concurrent wrong logins through both instances count atomically in
/// the one shared counter, and lock the account on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_through_both_count_once_each_and_lock_both() {
    let Some(p) = Pair::new().await else { return };
    p.a.verified_user("stuffed@example.com", PW).await;
    auth_core::conformance::engine::concurrent_failed_logins_lock_every_engine(
        &[&p.a, &p.b],
        "stuffed@example.com",
        PW,
    )
    .await;
}

/// S4, S15: the challenge a password sign-in answers on one instance is
/// redeemed with a TOTP code on the other, once; the session it creates records
/// both methods for both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_started_on_one_is_completed_on_the_other() {
    let Some(p) = Pair::new().await else { return };
    let email = "two-step@example.com";
    p.a.verified_user(email, PW).await;
    // TOTP enrolled through A.
    let token = p.a.login(email, PW).await;
    let me = p.a.auth.authenticate(&token).await.unwrap();
    let enrolment = p.a.auth.start_totp(&me, &Harness::ctx(1)).await.unwrap();
    let secret = enrolment.secret.to_string();
    let code = totp_code(&secret, p.a.clock.now());
    p.a.auth
        .confirm_totp(&me, &code, &Harness::ctx(1))
        .await
        .unwrap();
    // The next step, so its code was never accepted.
    p.advance(Duration::seconds(30));

    let outcome =
        p.a.auth
            .login(email, &Password::new(PW), false, &Harness::ctx(2))
            .await
            .unwrap();
    let LoginOutcome::SecondFactorRequired(challenge) = outcome else {
        panic!("TOTP is on: a challenge was due");
    };
    let code = SecondFactorCode::totp(totp_code(&secret, p.b.clock.now()));
    let signed_in =
        p.b.auth
            .complete_second_factor(&challenge.token, &code, &Harness::ctx(2))
            .await
            .unwrap();
    let on_a =
        p.a.auth
            .authenticate(&signed_in.session.token)
            .await
            .unwrap();
    assert_eq!(
        on_a.session.methods,
        [AuthMethod::Password, AuthMethod::Totp]
    );
    // Taken: neither instance accepts the challenge again.
    for h in [&p.a, &p.b] {
        let again = h
            .auth
            .complete_second_factor(&challenge.token, &code, &Harness::ctx(2))
            .await;
        assert!(matches!(again, Err(AuthError::TokenInvalid)), "{again:?}");
    }
}

/// DESIGN 8: a disable on one instance is seen by the other's very next
/// request, though the other answers from a warm user snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disable_on_one_is_seen_by_the_others_next_request() {
    let Some(p) = Pair::new().await else { return };
    let id = p.a.verified_user("off@example.com", PW).await;
    let token = p.b.login("off@example.com", PW).await;
    p.warm_on_b(&token).await;
    p.a.auth.disable_user(id, &Harness::ctx(1)).await.unwrap();
    assert!(Pair::unauthenticated(&p.b, &token).await);
}

/// DESIGN 8, S5: a password change on one instance ends the other sessions
/// for the other instance's very next request, snapshot or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_on_one_is_seen_by_the_others_next_request() {
    let Some(p) = Pair::new().await else { return };
    p.a.verified_user("change@example.com", PW).await;
    let (current, other) = (
        p.a.login("change@example.com", PW).await,
        p.b.login("change@example.com", PW).await,
    );
    p.warm_on_b(&other).await;
    p.a.auth
        .change_password(
            &current,
            &Password::new(PW),
            &Password::new("a brand new secret"),
            &Harness::ctx(1),
        )
        .await
        .unwrap();
    assert!(Pair::unauthenticated(&p.b, &other).await);
}

/// DESIGN 8, S5: a password reset on one instance is seen by the other's
/// very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_reset_on_one_is_seen_by_the_others_next_request() {
    let Some(p) = Pair::new().await else { return };
    p.a.verified_user("reset@example.com", PW).await;
    let token = p.b.login("reset@example.com", PW).await;
    p.warm_on_b(&token).await;
    let reset = p.a.reset_token("reset@example.com").await;
    p.a.auth
        .reset_password(
            &reset,
            &Password::new("a brand new secret"),
            &Harness::ctx(1),
        )
        .await
        .unwrap();
    assert!(Pair::unauthenticated(&p.b, &token).await);
}

/// DESIGN 8, S15: enabling TOTP on one instance ends the password-only
/// sessions for the other's very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_totp_enable_on_one_is_seen_by_the_others_next_request() {
    let Some(p) = Pair::new().await else { return };
    let email = "totp-on@example.com";
    p.a.verified_user(email, PW).await;
    let (current, other) = (p.a.login(email, PW).await, p.b.login(email, PW).await);
    p.warm_on_b(&other).await;
    let me = p.a.auth.authenticate(&current).await.unwrap();
    let enrolment = p.a.auth.start_totp(&me, &Harness::ctx(1)).await.unwrap();
    let code = totp_code(enrolment.secret.as_ref(), p.a.clock.now());
    p.a.auth
        .confirm_totp(&me, &code, &Harness::ctx(1))
        .await
        .unwrap();
    assert!(Pair::unauthenticated(&p.b, &other).await);
}

/// DESIGN 8: a change that ends no session (here the email verification of
/// an account allowed to sign in unverified) reaches the other instance's
/// very next request only through the snapshot's invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verification_on_one_is_seen_by_the_others_next_request() {
    let mut config = Harness::config();
    config.require_verified_email = false;
    config.unverified_account_ttl = None;
    let Some(p) = Pair::with_config(config).await else {
        return;
    };
    let email = "later@example.com";
    p.a.auth
        .register(email, &Password::new(PW), &Harness::ctx(1))
        .await
        .unwrap();
    let verification = p.a.token(email, MessageKind::Verification).await;
    let token = p.b.login(email, PW).await;
    p.warm_on_b(&token).await;
    let before = p.b.auth.authenticate(&token).await.unwrap();
    assert_eq!(before.user.email_verified_at, None);
    p.a.auth
        .verify_email(&verification, &Harness::ctx(1))
        .await
        .unwrap();
    let after = p.b.auth.authenticate(&token).await.unwrap();
    assert_eq!(after.user.email_verified_at, Some(p.a.clock.now()));
}

/// DESIGN 8: a stale snapshot can never outlive the change, across instances.
/// B keeps authenticating (and so refilling the snapshot from PostgreSQL)
/// while A verifies the address; once A's call has returned, B's next request
/// sees the change, round after round. The window in which a refill read the
/// user before the change and writes after the invalidation is narrow here
/// (this passes even without the stamp's compare-and-set); the conformance
/// check `session_cache::a_stale_snapshot_can_never_outlive_the_change` widens
/// it on purpose and fails without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_refilled_during_a_change_never_outlives_it() {
    let mut config = Harness::config();
    config.require_verified_email = false;
    config.unverified_account_ttl = None;
    let Some(p) = Pair::with_config(config).await else {
        return;
    };
    for round in 0..10 {
        let email = format!("race{round}@example.com");
        p.a.auth
            .register(&email, &Password::new(PW), &Harness::ctx(1))
            .await
            .unwrap();
        let verification = p.a.token(&email, MessageKind::Verification).await;
        let token = p.b.login(&email, PW).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fillers: Vec<_> = (0..3)
            .map(|_| {
                let (auth, token, stop) = (p.b.auth.clone(), token.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        auth.authenticate(&token).await.unwrap();
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        p.a.auth
            .verify_email(&verification, &Harness::ctx(1))
            .await
            .unwrap();
        let seen = p.b.auth.authenticate(&token).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for filler in fillers {
            filler.await.unwrap();
        }
        assert!(
            seen.user.email_verified_at.is_some(),
            "round {round}: B answered from a snapshot older than the change"
        );
        let after = p.b.auth.authenticate(&token).await.unwrap();
        assert!(after.user.email_verified_at.is_some(), "round {round}");
    }
}
