//! Engine behaviour on the in-process store, with a mock clock: the parts of the
//! flows that do not depend on the backend (those are in the conformance suite).
//! Test names cite the security rules they guard.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::future::Future;
use std::sync::Arc;

use auth_core::conformance::{Harness, Stores};
use auth_core::mail::MessageKind;
use auth_core::password::{HashParams, PasswordHasher};
use auth_core::store::{AttemptKey, AttemptScope, AuditKind};
use auth_core::{AuthConfig, AuthError, OpaqueToken, Password, PasswordHashString, RequestContext};
use auth_store_memory::MemoryStore;
use time::Duration;

const PW: &str = "purple otter sings";
const EMAIL: &str = "alice@example.com";

fn harness() -> Harness {
    Harness::new(Stores::all(Arc::new(MemoryStore::new())))
}

fn harness_with(change: impl FnOnce(&mut AuthConfig)) -> Harness {
    let mut config = Harness::config();
    change(&mut config);
    Harness::with_config(Stores::all(Arc::new(MemoryStore::new())), config)
}

fn pw(s: &str) -> Password {
    Password::new(s)
}

/// A request from no particular IP, so per-IP limits stay out of the way.
/// A request from a client address of its own, so tests of other rules never
/// meet the per-IP limits (S8 needs some address).
fn anon() -> RequestContext {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    RequestContext::from_ip(std::net::Ipv4Addr::from(0x0a00_0000 | n).into())
}

/// The session of a login that needed no second factor.
fn signed_in(outcome: auth_core::LoginOutcome) -> auth_core::LoginSuccess {
    // A second factor here would be a bug of the test: unwrap fails it.
    outcome.signed_in().unwrap()
}

async fn login(h: &Harness, email: &str, password: &str) -> Result<OpaqueToken, AuthError> {
    h.auth
        .login(email, &pw(password), false, &anon())
        .await
        .map(|ok| signed_in(ok).session.token)
}

async fn audit_kinds(h: &Harness, user: auth_core::store::UserId) -> Vec<AuditKind> {
    h.stores
        .audit
        .events_for_user(user, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn login_key(email: &str) -> AttemptKey {
    AttemptKey::Account(AttemptScope::Login, email.into())
}

// ---------------------------------------------------------------- S3 enumeration

#[tokio::test]
async fn s3_unknown_email_and_wrong_password_answer_alike_with_one_hash_each() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    let runs = || h.auth.hasher().metrics().argon2_runs;

    let before = runs();
    let unknown = login(&h, "nobody@example.com", PW).await.unwrap_err();
    assert_eq!(
        runs() - before,
        1,
        "the hasher runs once for an unknown email"
    );
    let before = runs();
    let wrong = login(&h, EMAIL, "not the password").await.unwrap_err();
    assert_eq!(runs() - before, 1, "and once for a wrong password");
    assert_eq!(
        (unknown.code(), wrong.code()),
        ("invalid_credentials", "invalid_credentials")
    );
    assert_eq!(unknown.to_string(), wrong.to_string());

    // Over the caps (Spring CVE-2025-22234): same path, known or not, one dummy hash.
    for email in [EMAIL, "nobody@example.com"] {
        let before = runs();
        let long = login(&h, email, &"x".repeat(10_000)).await.unwrap_err();
        assert_eq!(
            (runs() - before, long.code()),
            (1, "invalid_credentials"),
            "{email}"
        );
    }
    // A malformed email is an unknown account too.
    let before = runs();
    assert_eq!(
        login(&h, "not-an-email", PW).await.unwrap_err().code(),
        "invalid_credentials"
    );
    assert_eq!(runs() - before, 1);
}

#[tokio::test]
async fn s3_locked_accounts_cost_one_hash_and_answer_alike_known_or_not() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    for email in [EMAIL, "ghost@example.com"] {
        for _ in 0..5 {
            login(&h, email, "wrong password!").await.unwrap_err();
        }
    }
    for email in [EMAIL, "ghost@example.com"] {
        let before = h.auth.hasher().metrics().argon2_runs;
        let err = login(&h, email, PW).await.unwrap_err();
        assert_eq!(h.auth.hasher().metrics().argon2_runs - before, 1, "{email}");
        assert!(
            matches!(err, AuthError::Locked { retry_after: Some(d) } if d == Duration::seconds(5)),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn s3_registering_a_taken_email_answers_alike_and_mails_the_owner() {
    let h = harness();
    h.auth
        .register("Owner@Example.com", &pw(PW), &anon())
        .await
        .unwrap();
    h.auth
        .register("owner@example.com", &pw("another passphrase"), &anon())
        .await
        .unwrap();
    let notices = h.mailer.wait_for(2).await;
    let dup = notices
        .iter()
        .find(|m| m.kind == MessageKind::DuplicateRegistration)
        .unwrap();
    assert_eq!(
        dup.to, "Owner@Example.com",
        "mail goes to the stored address (Django CVE-2019-19844)"
    );
    // The hash is computed for the taken email too: same work.
    assert_eq!(h.auth.hasher().metrics().argon2_runs, 2);
}

#[tokio::test]
async fn s3_email_taken_only_when_enumeration_protection_is_off() {
    let h = harness_with(|c| c.enumeration_protection = false);
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    let err = h
        .auth
        .register("ALICE@example.com", &pw(PW), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "email_taken");
}

#[tokio::test]
async fn s3_reset_requests_answer_alike_and_change_nothing() {
    let h = harness();
    let id = h.verified_user(EMAIL, PW).await;
    let before = h.stores.users.user_by_id(id).await.unwrap().unwrap();
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    h.auth
        .request_password_reset("nobody@example.com", &anon())
        .await
        .unwrap();
    h.token(EMAIL, MessageKind::PasswordReset).await;
    assert_eq!(
        h.stores.users.user_by_id(id).await.unwrap().unwrap(),
        before,
        "the request alone changes nothing"
    );
    assert!(
        h.mailer
            .messages_to("nobody@example.com", MessageKind::PasswordReset)
            .is_empty()
    );
    assert!(
        login(&h, EMAIL, PW).await.is_ok(),
        "the old password still works"
    );
}

/// S12: reset requests are audited although the request answers before the
/// lookup: from the background, each one, throttled ones marked and unmailed.
#[tokio::test]
async fn s12_reset_requests_are_audited_from_the_background() {
    let h = harness();
    let id = h.verified_user(EMAIL, PW).await;
    for _ in 0..5 {
        h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    }
    h.auth.shutdown().await;
    let events = h.stores.audit.events_for_user(id, 100).await.unwrap();
    let details: Vec<_> = events
        .iter()
        .filter(|e| e.kind == AuditKind::PasswordResetRequested)
        .map(|e| e.detail.as_deref())
        .collect();
    assert_eq!(details.len(), 5, "{events:?}");
    // The per-account limit mails the first three (threshold 3: three mails,
    // then 1 min after the last); the other two are throttled (S6).
    assert_eq!(
        details.iter().filter(|d| **d == Some("throttled")).count(),
        2,
        "{details:?}"
    );
    assert_eq!(
        h.mailer
            .messages_to(EMAIL, MessageKind::PasswordReset)
            .len(),
        3
    );
}

#[tokio::test]
async fn s3_mail_failures_never_surface_and_are_retried() {
    let h = harness();
    h.mailer.fail_next(2);
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    h.auth
        .request_password_reset("nobody@example.com", &anon())
        .await
        .unwrap();
    let mails = h.mailer.wait_for(1).await;
    assert_eq!(mails[0].kind, MessageKind::Verification);
    assert_eq!(h.mailer.attempts(), 3, "two failures, then delivery");
    assert_eq!(h.auth.mail_dropped(), 0);
}

#[tokio::test]
async fn s3_lookalike_emails_are_other_accounts() {
    let h = harness();
    h.verified_user("mike@example.com", PW).await;
    assert_eq!(
        login(&h, "m\u{131}ke@example.com", PW)
            .await
            .unwrap_err()
            .code(),
        "invalid_credentials"
    );
    h.auth
        .request_password_reset("m\u{131}ke@example.com", &anon())
        .await
        .unwrap();
    h.auth.shutdown().await;
    assert!(
        h.mailer
            .messages_to("mike@example.com", MessageKind::PasswordReset)
            .is_empty()
    );
}

// ---------------------------------------------------------------- S6 lockout

#[tokio::test]
async fn s6_backoff_schedule_doubles_caps_and_is_not_extended_while_locked() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    for _ in 0..5 {
        assert_eq!(
            login(&h, EMAIL, "wrong password!")
                .await
                .unwrap_err()
                .code(),
            "invalid_credentials"
        );
    }
    let retry = |e: AuthError| e.retry_after().unwrap();
    assert_eq!(
        retry(login(&h, EMAIL, PW).await.unwrap_err()),
        Duration::seconds(5)
    );
    // Attempts while locked do not count and do not extend the lock.
    h.clock.advance(Duration::seconds(3));
    for _ in 0..10 {
        assert_eq!(
            retry(login(&h, EMAIL, "wrong password!").await.unwrap_err()),
            Duration::seconds(2)
        );
    }
    assert_eq!(
        h.stores
            .attempts
            .attempts(&login_key(EMAIL), h.auth_now())
            .await
            .unwrap()
            .count,
        5
    );
    // Each further failure after the lock doubles the next lock, up to 15 minutes.
    let mut expected = 5;
    for _ in 0..10 {
        h.clock.advance(Duration::seconds(expected));
        login(&h, EMAIL, "wrong password!").await.unwrap_err();
        expected = (expected * 2).min(900);
        assert_eq!(
            retry(login(&h, EMAIL, PW).await.unwrap_err()),
            Duration::seconds(expected)
        );
    }
    assert_eq!(expected, 900);
    // A success after the lock resets the counter.
    h.clock.advance(Duration::seconds(900));
    login(&h, EMAIL, PW).await.unwrap();
    assert_eq!(
        h.stores
            .attempts
            .attempts(&login_key(EMAIL), h.auth_now())
            .await
            .unwrap()
            .count,
        0
    );
}

#[tokio::test]
async fn s6_after_100_consecutive_failures_only_a_reset_unlocks() {
    let h = harness();
    let id = h.verified_user(EMAIL, PW).await;
    for _ in 0..100 {
        h.clock.advance(Duration::minutes(16)); // past any lock
        login(&h, EMAIL, "wrong password!").await.unwrap_err();
    }
    h.clock.advance(Duration::minutes(16));
    let err = login(&h, EMAIL, PW).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Locked { retry_after: None }),
        "{err:?}"
    );
    assert!(
        audit_kinds(&h, id)
            .await
            .contains(&AuditKind::ResetRequired)
    );
    // The counter expiring does not lift it.
    h.clock.advance(Duration::days(2));
    assert!(matches!(
        login(&h, EMAIL, PW).await,
        Err(AuthError::Locked { retry_after: None })
    ));
    // Password reset works for a locked account and unlocks it.
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    let token = h.token(EMAIL, MessageKind::PasswordReset).await;
    h.auth
        .reset_password(&token, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap();
    login(&h, EMAIL, "fresh new passphrase").await.unwrap();
}

#[tokio::test]
async fn s6_reset_unlocks_a_temporarily_locked_account() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    for _ in 0..6 {
        let _ = login(&h, EMAIL, "wrong password!").await;
    }
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    let token = h.token(EMAIL, MessageKind::PasswordReset).await;
    h.auth
        .reset_password(&token, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap();
    login(&h, EMAIL, "fresh new passphrase").await.unwrap();
}

#[tokio::test]
async fn s6_a_wrong_current_password_on_change_counts_and_lockout_applies() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    let session = login(&h, EMAIL, PW).await.unwrap();
    for _ in 0..5 {
        let err = h
            .auth
            .change_password(
                &session,
                &pw("wrong password!"),
                &pw("new passphrase here"),
                &anon(),
            )
            .await;
        assert_eq!(err.unwrap_err().code(), "invalid_credentials");
    }
    // Locked now, on every path that checks a password (Keycloak CVE-2026-9798).
    let err = h
        .auth
        .change_password(&session, &pw(PW), &pw("new passphrase here"), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "locked");
    assert_eq!(login(&h, EMAIL, PW).await.unwrap_err().code(), "locked");
}

#[tokio::test]
async fn s6_one_ip_failing_across_many_accounts_is_throttled() {
    let h = harness();
    let ctx = Harness::ctx(9);
    for i in 0..20 {
        let r = h
            .auth
            .login(&format!("user{i}@example.com"), &pw(PW), false, &ctx)
            .await;
        assert_eq!(r.unwrap_err().code(), "invalid_credentials");
    }
    let err = h
        .auth
        .login("user99@example.com", &pw(PW), false, &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::RateLimited { retry_after } if retry_after == Duration::seconds(1)),
        "{err:?}"
    );
    // Another IP is unaffected.
    let other = h
        .auth
        .login("user99@example.com", &pw(PW), false, &Harness::ctx(10))
        .await
        .unwrap_err();
    assert_eq!(other.code(), "invalid_credentials");
}

/// S6: an IPv6 client is counted by its /64, so rotating through the addresses
/// it holds does not escape the per-IP limit; the next /64 is someone else.
#[tokio::test]
async fn s6_an_ipv6_client_rotating_within_its_64_is_throttled() {
    let h = harness();
    let from = |host: u16| RequestContext {
        ip: Some(format!("2001:db8:5:6:{host:x}::1").parse().unwrap()),
        ..RequestContext::default()
    };
    for i in 0..20 {
        let r = h
            .auth
            .login(&format!("user{i}@example.com"), &pw(PW), false, &from(i))
            .await;
        assert_eq!(r.unwrap_err().code(), "invalid_credentials");
    }
    let err = h
        .auth
        .login("user99@example.com", &pw(PW), false, &from(999))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::RateLimited { .. }), "{err:?}");
    let other = RequestContext {
        ip: Some("2001:db8:5:7::1".parse().unwrap()),
        ..RequestContext::default()
    };
    let r = h
        .auth
        .login("user99@example.com", &pw(PW), false, &other)
        .await;
    assert_eq!(r.unwrap_err().code(), "invalid_credentials");
}

/// The refused requests the engine hands its audit sink to aggregate, kept
/// beside the memory store it forwards everything to.
#[derive(Debug, Default)]
struct AggregatedEvents {
    inner: MemoryStore,
    events: std::sync::Mutex<Vec<auth_core::store::AuditEvent>>,
}

#[async_trait::async_trait]
impl auth_core::store::AuditSink for AggregatedEvents {
    async fn record(
        &self,
        event: auth_core::store::AuditEvent,
    ) -> Result<(), auth_core::StoreError> {
        self.inner.record(event).await
    }
    async fn record_aggregated(
        &self,
        event: auth_core::store::AuditEvent,
        window: Duration,
    ) -> Result<(), auth_core::StoreError> {
        self.events.lock().unwrap().push(event.clone());
        self.inner.record_aggregated(event, window).await
    }
    async fn delete_events_before(
        &self,
        before: time::OffsetDateTime,
    ) -> Result<u64, auth_core::StoreError> {
        self.inner.delete_events_before(before).await
    }
    async fn events_for_user(
        &self,
        user_id: auth_core::store::UserId,
        limit: usize,
    ) -> Result<Vec<auth_core::store::AuditEvent>, auth_core::StoreError> {
        self.inner.events_for_user(user_id, limit).await
    }
}

/// A harness whose audit sink keeps the aggregated events.
fn harness_keeping_refusals(
    change: impl FnOnce(&mut AuthConfig),
) -> (Harness, Arc<AggregatedEvents>) {
    let audit = Arc::new(AggregatedEvents::default());
    let stores = Stores {
        audit: audit.clone(),
        ..Stores::all(Arc::new(MemoryStore::new()))
    };
    let mut config = Harness::config();
    change(&mut config);
    (Harness::with_config(stores, config), audit)
}

/// The distinct aggregation keys, and the (address, detail) pairs, of the
/// refusals an audit sink was handed.
fn refusal_records(audit: &AggregatedEvents) -> (usize, Vec<(String, String)>) {
    let events = audit.events.lock().unwrap();
    let mut keys: Vec<_> = events
        .iter()
        .map(|e| e.aggregate_key(Duration::minutes(1)))
        .collect();
    keys.sort();
    keys.dedup();
    let mut seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                e.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    (keys.len(), seen)
}

/// S12: a client refused by its /64's limit that goes on from a fresh
/// address of that /64 for each request is still one aggregated audit
/// record: refusals are recorded under the counter's address (the /64), not
/// the request's, or rotating addresses would flood the trail again.
#[tokio::test]
async fn s12_refusals_while_rotating_within_a_64_are_one_record() {
    let (h, audit) = harness_keeping_refusals(|_| {});
    let from = |host: u16| RequestContext {
        ip: Some(format!("2001:db8:9:1:{host:x}::1").parse().unwrap()),
        ..RequestContext::default()
    };
    let mut refused = 0;
    for host in 0..60 {
        match h
            .auth
            .request_password_reset("nobody@example.com", &from(host))
            .await
        {
            Ok(()) => {}
            Err(AuthError::RateLimited { .. }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        refused, 50,
        "10 admitted (the /64's threshold), then refused"
    );
    let (records, seen) = refusal_records(&audit);
    assert_eq!(records, 1, "{seen:?}");
    assert_eq!(seen, [("2001:db8:9:1::".to_owned(), "reset".to_owned())]);
}

/// S12: the same when the /48's limit refuses a client moving from /64 to
/// /64: one record, under the /48, with a detail that says so.
#[tokio::test]
async fn s12_refusals_while_rotating_within_a_48_are_one_record() {
    let (h, audit) = harness_keeping_refusals(|c| {
        c.network_request_limit.threshold = c.ip_request_limit.threshold;
    });
    let from = |subnet: u16| RequestContext {
        ip: Some(format!("2001:db8:9:{subnet:x}::1").parse().unwrap()),
        ..RequestContext::default()
    };
    let mut refused = 0;
    for subnet in 0..60 {
        match h
            .auth
            .request_password_reset("nobody@example.com", &from(subnet))
            .await
        {
            Ok(()) => {}
            Err(AuthError::RateLimited { .. }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 50);
    let (records, seen) = refusal_records(&audit);
    assert_eq!(records, 1, "{seen:?}");
    assert_eq!(seen, [("2001:db8:9::".to_owned(), "reset/48".to_owned())]);
}

/// S6: logins at an account that is already locked are not counted against the
/// account, but are counted against the client's IP, which gets throttled.
#[tokio::test]
async fn s6_one_ip_hammering_a_locked_account_is_throttled() {
    let h = harness();
    h.verified_user("locked@example.com", PW).await;
    for i in 0..5 {
        let r = h
            .auth
            .login(
                "locked@example.com",
                &pw("wrong password!"),
                false,
                &Harness::ctx(100 + i),
            )
            .await;
        assert_eq!(r.unwrap_err().code(), "invalid_credentials");
    }
    let ctx = Harness::ctx(9);
    for _ in 0..20 {
        let r = h
            .auth
            .login("locked@example.com", &pw(PW), false, &ctx)
            .await;
        assert_eq!(r.unwrap_err().code(), "locked");
    }
    let err = h
        .auth
        .login("locked@example.com", &pw(PW), false, &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::RateLimited { .. }), "{err:?}");
}

#[tokio::test]
async fn s6_failures_for_an_unknown_email_expire_and_do_not_block_its_registration() {
    let h = harness();
    for _ in 0..5 {
        login(&h, "future@example.com", PW).await.unwrap_err();
    }
    h.auth
        .register("future@example.com", &pw(PW), &anon())
        .await
        .unwrap();
    let token = h
        .token("future@example.com", MessageKind::Verification)
        .await;
    h.auth.verify_email(&token, &anon()).await.unwrap();
    assert_eq!(
        login(&h, "future@example.com", PW)
            .await
            .unwrap_err()
            .code(),
        "locked"
    );
    h.clock.advance(Duration::hours(25)); // the counter's window
    assert_eq!(
        h.stores
            .attempts
            .attempts(&login_key("future@example.com"), h.auth_now())
            .await
            .unwrap()
            .count,
        0
    );
    login(&h, "future@example.com", PW).await.unwrap();
}

#[tokio::test]
async fn s6_unlock_clears_the_counter_and_the_reset_requirement() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    for _ in 0..7 {
        let _ = login(&h, EMAIL, "wrong password!").await;
    }
    h.auth.unlock(EMAIL, &anon()).await.unwrap();
    login(&h, EMAIL, PW).await.unwrap();
}

#[tokio::test]
async fn s6_a_lockout_mails_the_owner_once() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    for _ in 0..5 {
        let _ = login(&h, EMAIL, "wrong password!").await;
    }
    h.auth.shutdown().await;
    assert_eq!(h.mailer.messages_to(EMAIL, MessageKind::Lockout).len(), 1);
}

// ---------------------------------------------------------------- S4 tokens

#[tokio::test]
async fn s4_reset_token_valid_at_exactly_its_ttl_and_not_one_second_after() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    h.verified_user("bob@example.com", PW).await;
    for email in [EMAIL, "bob@example.com"] {
        h.auth.request_password_reset(email, &anon()).await.unwrap();
    }
    let (on_time, late) = (
        h.token(EMAIL, MessageKind::PasswordReset).await,
        h.token("bob@example.com", MessageKind::PasswordReset).await,
    );
    h.clock.advance(Duration::minutes(30));
    h.auth
        .reset_password(&on_time, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(1));
    let err = h
        .auth
        .reset_password(&late, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "token_expired");
}

#[tokio::test]
async fn s4_a_newer_reset_token_or_a_password_change_kills_older_ones() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    let first = h.token(EMAIL, MessageKind::PasswordReset).await;
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    h.mailer.wait_for(3).await; // verification + two resets
    let second = h.token(EMAIL, MessageKind::PasswordReset).await;
    assert_ne!(first, second);
    let err = h
        .auth
        .reset_password(&first, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "token_invalid");
    // A password change kills the outstanding second one.
    let session = login(&h, EMAIL, PW).await.unwrap();
    h.auth
        .change_password(&session, &pw(PW), &pw("changed passphrase"), &anon())
        .await
        .unwrap();
    let err = h
        .auth
        .reset_password(&second, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "token_invalid");
}

#[tokio::test]
async fn s4_tokens_are_purpose_bound_and_malformed_ones_are_invalid() {
    let h = harness();
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    let verify = h.token(EMAIL, MessageKind::Verification).await;
    let err = h
        .auth
        .reset_password(&verify, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "token_invalid");
    for bad in [
        "",
        "x",
        &"A".repeat(43),
        &"!".repeat(43),
        &"a".repeat(10_000),
    ] {
        let t = OpaqueToken::new(bad);
        assert_eq!(
            h.auth.verify_email(&t, &anon()).await.unwrap_err().code(),
            "token_invalid"
        );
        assert_eq!(
            h.auth.authenticate(&t).await.unwrap_err().code(),
            "unauthenticated"
        );
    }
    h.auth.verify_email(&verify, &anon()).await.unwrap();
}

#[tokio::test]
async fn s4_a_weak_new_password_does_not_spend_the_reset_token() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    let token = h.token(EMAIL, MessageKind::PasswordReset).await;
    let err = h
        .auth
        .reset_password(&token, &pw("password"), &anon())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "weak_password");
    h.auth
        .reset_password(&token, &pw("fresh new passphrase"), &anon())
        .await
        .unwrap();
}

#[tokio::test]
async fn s4_links_use_the_configured_public_url() {
    let h = harness_with(|c| c.public_url = "https://auth.example.org".into());
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    let mail = h.mailer.wait_for(1).await.remove(0);
    assert!(
        mail.text
            .contains("https://auth.example.org/auth/verify-email?token="),
        "{}",
        mail.text
    );
    assert!(
        mail.html
            .contains("https://auth.example.org/auth/verify-email?token=")
    );
    let link = mail.link.as_deref().unwrap();
    assert!(
        link.starts_with("https://auth.example.org/auth/verify-email?token=")
            && mail.text.contains(link),
        "the link field is the link of the body"
    );
}

/// Templates an application supplies through the builder write every mail,
/// in the configured default locale; the kinds they leave alone keep the
/// English defaults; the link is still built from the public URL (S3).
#[tokio::test]
async fn s3_custom_templates_write_the_mail_in_the_default_locale() {
    use auth_core::mail::{CapturingMailer, EmailContent, EmailTemplates, Locale};

    struct Portuguese;
    impl EmailTemplates for Portuguese {
        fn supports(&self, locale: &Locale) -> bool {
            locale.language() == "pt"
        }
        fn verification(
            &self,
            locale: &Locale,
            service_name: &str,
            link: &str,
            valid_for: Duration,
        ) -> EmailContent {
            let hours = format!("{locale}: válido por {} horas", valid_for.whole_hours());
            EmailContent::from_paragraphs(
                service_name,
                "confirme o seu e-mail",
                &[&hours],
                Some(link),
            )
        }
    }

    let mut config = Harness::config();
    config.public_url = "https://auth.example.org".into();
    config.default_locale = Locale::new("pt-BR").unwrap();
    let mailer = CapturingMailer::new();
    let auth = auth_core::Auth::builder()
        .config(config)
        .stores(Arc::new(MemoryStore::new()))
        .mailer(Arc::new(mailer.clone()))
        .templates(Arc::new(Portuguese))
        .secret_key(auth_core::SecretKey::generate().unwrap())
        .build()
        .unwrap();
    auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    let mail = mailer.wait_for(1).await.remove(0);
    assert_eq!(mail.kind, MessageKind::Verification);
    assert_eq!(mail.locale.as_str(), "pt-BR");
    assert_eq!(mail.subject, "Auth: confirme o seu e-mail");
    assert!(
        mail.text.contains("pt-BR: válido por 24 horas"),
        "{}",
        mail.text
    );
    let link = mail.link.as_deref().unwrap();
    assert!(link.starts_with("https://auth.example.org/auth/verify-email?token="));
    assert!(mail.text.contains(link));
    let token = mailer.token_for(EMAIL, MessageKind::Verification).unwrap();
    auth.verify_email(&OpaqueToken::new(token), &anon())
        .await
        .unwrap();
    auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    let reset = mailer.wait_for(2).await.remove(1);
    assert_eq!(reset.kind, MessageKind::PasswordReset);
    assert!(
        reset.subject.ends_with("reset your password"),
        "English default kept"
    );
    assert_eq!(reset.locale.as_str(), "pt-BR");
    auth.shutdown().await;
}

/// A default locale the templates do not write fails at start-up, not at
/// the first mail.
#[tokio::test]
async fn a_default_locale_the_templates_do_not_support_fails_the_build() {
    use auth_core::mail::{CapturingMailer, Locale};

    let build = |locale: &str| {
        let config = AuthConfig {
            default_locale: Locale::new(locale).unwrap(),
            ..AuthConfig::default()
        };
        auth_core::Auth::builder()
            .config(config)
            .stores(Arc::new(MemoryStore::new()))
            .mailer(Arc::new(CapturingMailer::new()))
            .secret_key(auth_core::SecretKey::generate().unwrap())
            .build()
    };
    let err = build("de").unwrap_err();
    assert!(err.to_string().contains("default_locale"), "{err}");
    let auth = build("en-GB").unwrap();
    assert_eq!(auth.config().default_locale.as_str(), "en-GB");
    auth.shutdown().await;
}

// ---------------------------------------------------------------- S1, S2 passwords

#[tokio::test]
async fn s1_weak_passwords_are_refused_at_registration_with_their_rule() {
    let h = harness();
    for (password, rule) in [
        ("short", "too_short"),
        ("password1", "common_password"),
        ("alice2024!", "context_word"),
    ] {
        match h.auth.register(EMAIL, &pw(password), &anon()).await {
            Err(AuthError::WeakPassword(v)) => assert_eq!(v.rule(), rule, "{password}"),
            other => panic!("{password}: {other:?}"),
        }
    }
    assert_eq!(
        h.auth
            .register("a@b", &pw(PW), &anon())
            .await
            .unwrap_err()
            .code(),
        "invalid_email"
    );
}

#[tokio::test]
async fn s1_nfc_registration_and_nfd_login_are_the_same_password() {
    let h = harness();
    h.verified_user(EMAIL, "caf\u{e9} au lait tous les jours")
        .await;
    login(&h, EMAIL, "cafe\u{301} au lait tous les jours")
        .await
        .unwrap();
}

#[tokio::test]
async fn s2_login_upgrades_weaker_and_bcrypt_hashes() {
    let h = harness();
    let id = h.verified_user(EMAIL, PW).await;
    // Simulate a hash from a weaker configuration, then one imported from bcrypt.
    let weak = PasswordHasher::builder()
        .params(HashParams::insecure_for_tests(32, 1, 1).unwrap())
        .build()
        .unwrap();
    let normalized = h.auth.policy().normalize(&pw(PW)).unwrap();
    let bcrypt = PasswordHashString::new(bcrypt::hash(PW, 4).unwrap());
    for old in [weak.hash(&normalized).await.unwrap(), bcrypt] {
        h.stores
            .passwords
            .set_password(id, &old, h.auth_now())
            .await
            .unwrap();
        assert!(h.auth.hasher().needs_rehash(&old));
        login(&h, EMAIL, PW).await.unwrap();
        let stored = h.stores.passwords.password(id).await.unwrap().unwrap().hash;
        assert!(
            stored.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored:?}"
        );
        assert!(!h.auth.hasher().needs_rehash(&stored));
        login(&h, EMAIL, PW).await.unwrap();
    }
    assert!(
        audit_kinds(&h, id)
            .await
            .contains(&AuditKind::PasswordRehashed)
    );
}

// ---------------------------------------------------------------- S5 sessions

#[tokio::test]
async fn s5_unverified_accounts_are_told_to_verify_only_with_the_right_password() {
    let h = harness();
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    h.auth.settle().await; // the account is created in the background (S3)
    assert_eq!(
        login(&h, EMAIL, "wrong password!")
            .await
            .unwrap_err()
            .code(),
        "invalid_credentials"
    );
    assert_eq!(
        login(&h, EMAIL, PW).await.unwrap_err().code(),
        "email_not_verified"
    );
}

#[tokio::test]
async fn s5_users_list_and_revoke_their_own_sessions_only() {
    let h = harness();
    let alice = h.verified_user(EMAIL, PW).await;
    let bob = h.verified_user("bob@example.com", PW).await;
    let (a1, a2) = (
        login(&h, EMAIL, PW).await.unwrap(),
        login(&h, EMAIL, PW).await.unwrap(),
    );
    let b1 = login(&h, "bob@example.com", PW).await.unwrap();
    let bob_session = h.auth.authenticate(&b1).await.unwrap().session.id;
    assert!(
        !h.auth
            .revoke_session(alice, bob_session, &anon())
            .await
            .unwrap(),
        "not alice's session"
    );
    assert!(h.auth.authenticate(&b1).await.is_ok());
    let sessions = h.auth.list_sessions(alice).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let me = h.auth.authenticate(&a1).await.unwrap();
    let current = me.session.id;
    assert_eq!(
        h.auth
            .revoke_other_sessions(&me, None, &anon())
            .await
            .unwrap(),
        1
    );
    assert!(h.auth.authenticate(&a1).await.is_ok());
    assert!(h.auth.authenticate(&a2).await.is_err());
    assert!(
        h.auth
            .revoke_session(alice, current, &anon())
            .await
            .unwrap()
    );
    assert!(h.auth.authenticate(&a1).await.is_err());
    let _ = bob;
}

#[tokio::test]
async fn s5_disabling_an_account_revokes_every_session_and_blocks_login() {
    let h = harness();
    let id = h.verified_user(EMAIL, PW).await;
    let session = login(&h, EMAIL, PW).await.unwrap();
    h.auth.disable_user(id, &anon()).await.unwrap();
    assert!(h.auth.authenticate(&session).await.is_err());
    assert_eq!(
        login(&h, EMAIL, PW).await.unwrap_err().code(),
        "invalid_credentials"
    );
    h.auth.enable_user(id, &anon()).await.unwrap();
    assert!(
        h.auth.authenticate(&session).await.is_err(),
        "old sessions stay revoked"
    );
    login(&h, EMAIL, PW).await.unwrap();
}

#[tokio::test]
async fn s5_remember_me_lives_up_to_its_own_lifetime() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    let ok = signed_in(h.auth.login(EMAIL, &pw(PW), true, &anon()).await.unwrap());
    let s = ok.session.session;
    assert_eq!(s.absolute_expires_at - s.created_at, Duration::days(30));
    assert_eq!(s.idle_expires_at - s.created_at, Duration::minutes(30));
}

#[tokio::test]
async fn s5_authenticate_writes_activity_at_most_once_per_interval() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    let token = login(&h, EMAIL, PW).await.unwrap();
    let first = h.auth.authenticate(&token).await.unwrap().session;
    h.clock.advance(Duration::seconds(59));
    let same = h.auth.authenticate(&token).await.unwrap().session;
    assert_eq!(
        same.last_seen_at, first.last_seen_at,
        "no write within the interval"
    );
    h.clock.advance(Duration::seconds(1));
    let moved = h.auth.authenticate(&token).await.unwrap().session;
    assert_eq!(
        moved.last_seen_at,
        first.last_seen_at + Duration::seconds(60)
    );
    assert_eq!(
        moved.idle_expires_at,
        moved.last_seen_at + Duration::minutes(30)
    );
}

// ---------------------------------------------------------------- S12 audit, S10 secrets

#[tokio::test]
async fn s12_every_outcome_writes_an_audit_event_with_context() {
    let h = harness();
    let ctx = Harness::ctx(7);
    h.auth.register(EMAIL, &pw(PW), &ctx).await.unwrap();
    h.auth.register(EMAIL, &pw(PW), &ctx).await.unwrap();
    let token = h.token(EMAIL, MessageKind::Verification).await;
    let id = h.auth.verify_email(&token, &ctx).await.unwrap();
    h.auth
        .login(EMAIL, &pw("wrong password!"), false, &ctx)
        .await
        .unwrap_err();
    let session = h
        .auth
        .login(EMAIL, &pw(PW), false, &ctx)
        .await
        .map(signed_in)
        .unwrap()
        .session
        .token;
    let changed = h
        .auth
        .change_password(&session, &pw("wrong password!"), &pw("x"), &ctx)
        .await;
    assert!(changed.is_err());
    let session = h
        .auth
        .change_password(&session, &pw(PW), &pw("second passphrase"), &ctx)
        .await
        .unwrap();
    let current = session.session.session.id;
    h.auth.revoke_session(id, current, &ctx).await.unwrap();
    h.auth.request_password_reset(EMAIL, &ctx).await.unwrap();
    let reset = h.token(EMAIL, MessageKind::PasswordReset).await;
    h.auth
        .reset_password(&reset, &pw("third passphrase"), &ctx)
        .await
        .unwrap();
    let token = h
        .auth
        .login(EMAIL, &pw("third passphrase"), false, &ctx)
        .await
        .map(signed_in)
        .unwrap()
        .session
        .token;
    h.auth.logout(&token, &ctx).await.unwrap();
    h.auth.logout_all(id, &ctx).await.unwrap();
    h.auth.unlock(EMAIL, &ctx).await.unwrap();
    h.auth.disable_user(id, &ctx).await.unwrap();

    let events = h.stores.audit.events_for_user(id, 100).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    for kind in [
        AuditKind::Registered,
        AuditKind::RegistrationDuplicate,
        AuditKind::EmailVerified,
        AuditKind::LoginFailed,
        AuditKind::LoginSucceeded,
        AuditKind::PasswordChangeFailed,
        AuditKind::PasswordChanged,
        AuditKind::SessionRevoked,
        AuditKind::PasswordResetRequested,
        AuditKind::PasswordReset,
        AuditKind::Logout,
        AuditKind::LogoutAll,
        AuditKind::AccountUnlocked,
        AuditKind::AccountDisabled,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing from {kinds:?}");
    }
    for e in &events {
        assert_eq!(
            (e.ip, e.user_agent.as_deref(), e.request_id.as_deref()),
            (ctx.ip, Some("harness/1.0"), Some("req-7"))
        );
        assert_eq!(e.at.offset(), time::UtcOffset::UTC);
    }
}

#[tokio::test]
async fn s10_no_secret_appears_in_debug_output_or_audit_records() {
    let h = harness();
    let id = h.verified_user(EMAIL, PW).await;
    let ok = signed_in(h.auth.login(EMAIL, &pw(PW), false, &anon()).await.unwrap());
    let token = ok.session.token.expose_secret().to_owned();
    let hash = h.stores.passwords.password(id).await.unwrap().unwrap().hash;
    let printed = format!(
        "{ok:?} {:?} {:?}",
        h.auth,
        h.stores.audit.events_for_user(id, 50).await.unwrap()
    );
    for secret in [token.as_str(), PW, hash.as_str()] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn shutdown_sends_every_queued_message() {
    let h = harness();
    for i in 0..20 {
        h.auth
            .register(&format!("user{i}@example.com"), &pw(PW), &anon())
            .await
            .unwrap();
    }
    h.auth.shutdown().await;
    assert_eq!(h.mailer.messages().len(), 20);
}

trait Now {
    fn auth_now(&self) -> time::OffsetDateTime;
}

impl Now for Harness {
    fn auth_now(&self) -> time::OffsetDateTime {
        use auth_core::clock::Clock;
        self.clock.now()
    }
}

/// Counts every call to the attempt store it wraps, and injects faults.
#[derive(Debug, Default)]
struct CountingAttempts {
    inner: MemoryStore,
    calls: std::sync::atomic::AtomicUsize,
    /// When set, the next count of an account's attempt first fills this
    /// hasher with a long verification (fault injection: a flood's hashes
    /// arriving between the count and the login's own hash).
    fill: std::sync::Mutex<Option<PasswordHasher>>,
    /// When armed, the next count of an account's attempt holds its flow
    /// until `release` (`counted` says it is held): a caller can stop
    /// waiting exactly between a count and its follow-up.
    armed: std::sync::atomic::AtomicBool,
    counted: tokio::sync::Notify,
    release: tokio::sync::Notify,
    /// Notified when `watched`, a client's counter, is counted.
    watched: std::sync::Mutex<Option<AttemptKey>>,
    client_counted: tokio::sync::Notify,
}

impl CountingAttempts {
    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    /// Holds the next account count, and watches `ctx`'s login counter.
    fn arm(&self, ctx: &RequestContext) {
        let ip = ctx.ip.unwrap();
        *self.watched.lock().unwrap() = Some(AttemptKey::client(AttemptScope::Login, ip));
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl auth_core::store::AttemptStore for CountingAttempts {
    async fn increment(
        &self,
        key: &AttemptKey,
        now: time::OffsetDateTime,
        ttl: Duration,
    ) -> Result<auth_core::store::AttemptState, auth_core::StoreError> {
        self.count();
        let state = self.inner.increment(key, now, ttl).await;
        if self.watched.lock().unwrap().as_ref() == Some(key) {
            self.client_counted.notify_one();
        }
        state
    }
    async fn increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: auth_core::store::AttemptState,
        now: time::OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<auth_core::store::AttemptState>, auth_core::StoreError> {
        self.count();
        let fill = self.fill.lock().unwrap().take();
        if let (Some(hasher), AttemptKey::Account(..)) = (fill, key) {
            let before = hasher.metrics().argon2_runs;
            let flood = {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify_dummy().await })
            };
            // Until the flood's hash runs, or the hasher refused it.
            while hasher.metrics().argon2_runs == before && !flood.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        let state = self
            .inner
            .increment_if_unchanged(key, expected, now, ttl)
            .await;
        if matches!(key, AttemptKey::Account(..))
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.counted.notify_one();
            self.release.notified().await;
        }
        state
    }
    async fn attempts(
        &self,
        key: &AttemptKey,
        now: time::OffsetDateTime,
    ) -> Result<auth_core::store::AttemptState, auth_core::StoreError> {
        self.count();
        self.inner.attempts(key, now).await
    }
    async fn clear(&self, key: &AttemptKey) -> Result<(), auth_core::StoreError> {
        self.count();
        self.inner.clear(key).await
    }
    async fn delete_expired_attempts(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<u64, auth_core::StoreError> {
        self.count();
        self.inner.delete_expired_attempts(now).await
    }
}

/// An engine on `store` and `attempts` whose hasher has one permit, no queue
/// and parameters expensive enough (256 MiB, 3 passes) that one hash holds
/// the permit for about a second.
fn one_slow_permit(store: Arc<MemoryStore>, attempts: Arc<CountingAttempts>) -> auth_core::Auth {
    let hasher = PasswordHasher::builder()
        .params(HashParams::new(262_144, 3, 1).unwrap())
        .max_concurrent(1)
        .max_queued(0)
        .build()
        .unwrap();
    auth_core::Auth::builder()
        .stores(store)
        .attempts(attempts)
        .mailer(Arc::new(auth_core::mail::CapturingMailer::new()))
        .hasher(hasher)
        .secret_key(auth_core::SecretKey::new([7u8; 32]).unwrap())
        .build()
        .unwrap()
}

/// S6, S13: a login's attempt is counted only once the hasher holds a place
/// for its verification. Here the only permit would be taken between the
/// count and the hash (a flood arriving meanwhile): the login still verifies
/// and signs in, and the account's counter ends at zero. Before, the login
/// was refused with 503 after its attempt was counted, so under overload the
/// refusals of correct logins added up to their owner's lockout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_an_overload_after_the_count_never_counts_against_the_owner() {
    use auth_core::store::{NewUser, UserStore};

    let attempts = Arc::new(CountingAttempts::default());
    let store = Arc::new(MemoryStore::new());
    // Verifying the user's cheap hash is quick; the flood's dummy hash holds
    // the only permit for far longer.
    let auth = one_slow_permit(store.clone(), attempts.clone());
    let cheap = PasswordHasher::builder()
        .params(HashParams::insecure_for_tests(64, 1, 1).unwrap())
        .build()
        .unwrap();
    let hash = cheap
        .hash(
            &auth_core::password::PasswordPolicy::default()
                .normalize(&pw(PW))
                .unwrap(),
        )
        .await
        .unwrap();
    let email = auth_core::EmailAddress::parse(EMAIL).unwrap();
    let id = auth_core::store::UserId::new_random();
    let t = time::OffsetDateTime::now_utc();
    store
        .create_user(NewUser {
            id,
            email: email.clone(),
            password_hash: Some(hash),
            created_at: t,
        })
        .await
        .unwrap();
    store.mark_email_verified(id, t).await.unwrap();

    *attempts.fill.lock().unwrap() = Some(auth.hasher().clone());
    let login = auth.login(EMAIL, &pw(PW), false, &Harness::ctx(1)).await;
    assert!(login.is_ok(), "{login:?}");
    let key = AttemptKey::Account(AttemptScope::Login, email.normalized().to_owned());
    let state = auth_core::store::AttemptStore::attempts(&*attempts, &key, t)
        .await
        .unwrap();
    assert_eq!(state.count, 0, "nothing left counted against the owner");
}

/// S13: with every hashing permit busy and no room in the queue, a login or a
/// registration is refused with 503 before any store round trip (their first
/// one is the per-IP counter read), so a flood costs the stores nothing. A
/// password reset or change is refused before its token or session is even
/// looked up: 503, where a store read would have found the bogus token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_a_saturated_hasher_refuses_hashing_flows_before_any_store_call() {
    let attempts = Arc::new(CountingAttempts::default());
    // One dummy verification holds the only permit for far longer than the
    // login below takes.
    let auth = one_slow_permit(Arc::new(MemoryStore::new()), attempts.clone());
    let busy = {
        let hasher = auth.hasher().clone();
        tokio::spawn(async move { hasher.verify_dummy().await })
    };
    // Wait until that verification holds the permit and runs.
    let started = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while auth.hasher().metrics().argon2_runs == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    });
    started.await.unwrap();

    let err = auth
        .login(EMAIL, &pw(PW), false, &Harness::ctx(1))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unavailable { .. }), "{err:?}");
    let err = auth
        .register(EMAIL, &pw(PW), &Harness::ctx(1))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unavailable { .. }), "{err:?}");
    assert_eq!(attempts.calls(), 0, "no store call before the refusals");
    let bogus = OpaqueToken::new("A".repeat(43));
    let err = auth
        .reset_password(&bogus, &pw("new passphrase"), &Harness::ctx(1))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unavailable { .. }), "{err:?}");
    let err = auth
        .change_password(&bogus, &pw(PW), &pw("new passphrase"), &Harness::ctx(1))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unavailable { .. }), "{err:?}");
    busy.await.unwrap().unwrap();
}

// ------------------------------------------- gaps found by mutation testing

/// S6: registrations, and reset requests, from one client address are limited
/// per address: past the threshold the next one is refused with
/// `RateLimited`, while another address is still served. (Without the per-IP
/// limit, every test here still passed.)
#[tokio::test]
async fn s6_mail_requests_and_registrations_are_limited_per_ip() {
    let h = harness();
    let limit = AuthConfig::default().ip_request_limit.threshold;
    let ctx = RequestContext::from_ip([198, 51, 100, 7].into());
    for i in 0..limit {
        h.auth
            .request_password_reset(&format!("u{i}@example.com"), &ctx)
            .await
            .unwrap();
        h.auth
            .register(&format!("r{i}@example.com"), &pw(PW), &ctx)
            .await
            .unwrap();
    }
    let reset = h.auth.request_password_reset(EMAIL, &ctx).await;
    assert!(
        matches!(reset, Err(AuthError::RateLimited { .. })),
        "{reset:?}"
    );
    let register = h.auth.register(EMAIL, &pw(PW), &ctx).await;
    assert!(
        matches!(register, Err(AuthError::RateLimited { .. })),
        "{register:?}"
    );
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
}

/// S5: the incident-response revocation ends every user's sessions and says
/// how many it ended.
#[tokio::test]
async fn s5_revoke_all_sessions_ends_every_session_and_counts_them() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    h.verified_user("bob@example.com", PW).await;
    let alice = login(&h, EMAIL, PW).await.unwrap();
    let alice_again = login(&h, EMAIL, PW).await.unwrap();
    let bob = login(&h, "bob@example.com", PW).await.unwrap();
    assert_eq!(h.auth.revoke_all_sessions(&anon()).await.unwrap(), 3);
    for token in [&alice, &alice_again, &bob] {
        assert!(h.auth.authenticate(token).await.is_err());
    }
    assert_eq!(h.auth.revoke_all_sessions(&anon()).await.unwrap(), 0);
}

/// ASVS 6.4.6: a reset started by an administrator mails a link to the
/// stored address; with `require`, the password stops working and every
/// session ends at once.
#[tokio::test]
async fn admin_started_reset_mails_a_link_and_can_require_it() {
    let h = harness();
    let user = h.verified_user(EMAIL, PW).await;
    let session = login(&h, EMAIL, PW).await.unwrap();
    let mails = h.mailer.messages().len();
    h.auth
        .start_password_reset(user, false, &anon())
        .await
        .unwrap();
    // Bounded waits: a reset that sends nothing fails here, not by hanging.
    let wait = |n| tokio::time::timeout(std::time::Duration::from_secs(5), h.mailer.wait_for(n));
    wait(mails + 1).await.expect("a reset link is mailed");
    assert!(
        h.mailer
            .token_for(EMAIL, MessageKind::PasswordReset)
            .is_some()
    );
    assert!(h.auth.authenticate(&session).await.is_ok(), "offered only");
    h.auth
        .start_password_reset(user, true, &anon())
        .await
        .unwrap();
    wait(mails + 2)
        .await
        .expect("a second reset link is mailed");
    assert!(h.auth.authenticate(&session).await.is_err());
    assert!(login(&h, EMAIL, PW).await.is_err());
}

/// Expired tokens, sessions and counters are removed by `purge_expired`,
/// which says how many of each.
#[tokio::test]
async fn purge_expired_removes_expired_tokens_sessions_and_counters() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    login(&h, EMAIL, PW).await.unwrap();
    assert!(login(&h, EMAIL, "a wrong password").await.is_err());
    let mails = h.mailer.messages().len();
    h.auth.request_password_reset(EMAIL, &anon()).await.unwrap();
    h.mailer.wait_for(mails + 1).await;
    // Nothing live goes (a consumed verification token may).
    let early = h.auth.purge_expired().await.unwrap();
    assert_eq!((early.sessions, early.attempts), (0, 0), "{early:?}");
    h.clock.advance(Duration::days(31));
    let purged = h.auth.purge_expired().await.unwrap();
    assert!(
        purged.tokens >= 1 && purged.sessions >= 1 && purged.attempts >= 1,
        "{purged:?}"
    );
}

/// The builder keeps the policy it is given (`Auth::policy` answers it), and
/// `Debug` of the engine and its builder names them.
#[tokio::test]
async fn the_builder_keeps_its_policy_and_debug_names_the_engine() {
    let policy = auth_core::password::PasswordPolicy::builder()
        .min_chars(12)
        .build()
        .unwrap();
    let builder = auth_core::Auth::builder()
        .stores(Arc::new(MemoryStore::new()))
        .mailer(Arc::new(auth_core::mail::CapturingMailer::new()))
        .secret_key(auth_core::SecretKey::generate().unwrap())
        .policy(policy);
    assert!(format!("{builder:?}").starts_with("AuthBuilder"));
    let auth = builder.build().unwrap();
    assert_eq!(auth.policy().min_chars(), 12);
    assert!(format!("{auth:?}").starts_with("Auth {"));
}

/// S5: a password change keeps the kind of session it replaces: a remember-me
/// session stays one, with its longer lifetime, and an ordinary one does not
/// become one.
#[tokio::test]
async fn s5_a_password_change_keeps_remember_me_as_it_was() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    let config = AuthConfig::default();
    let passwords = [PW, "first new passphrase", "second new passphrase"];
    for (round, remember) in [false, true].into_iter().enumerate() {
        let (old, new) = (passwords[round], passwords[round + 1]);
        let login = h
            .auth
            .login(EMAIL, &pw(old), remember, &anon())
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        let changed = h
            .auth
            .change_password(&login.session.token, &pw(old), &pw(new), &anon())
            .await
            .unwrap();
        assert_eq!(changed.session.remember_me, remember);
        let record = &changed.session.session;
        let lifetime = record.absolute_expires_at - record.created_at;
        let expected = if remember {
            config.remember_me_lifetime
        } else {
            config.session_lifetime
        };
        assert_eq!(lifetime, expected, "remember me: {remember}");
    }
}

/// S3: a resend mails a new link only to an account that is unverified and
/// enabled, never to a verified or a disabled one (the answer is the same).
#[tokio::test]
async fn s3_resend_mails_only_unverified_enabled_accounts() {
    let h = harness();
    h.verified_user(EMAIL, PW).await;
    for email in ["new@example.com", "off@example.com"] {
        h.auth.register(email, &pw(PW), &anon()).await.unwrap();
    }
    h.auth.settle().await; // the accounts are created in the background (S3)
    let off = h
        .stores
        .users
        .user_by_email("off@example.com")
        .await
        .unwrap()
        .unwrap();
    h.auth.disable_user(off.id, &anon()).await.unwrap();
    for email in ["new@example.com", "off@example.com"] {
        h.token(email, MessageKind::Verification).await;
    }
    let sent = |to: &str| h.mailer.messages_to(to, MessageKind::Verification).len();
    let before = [EMAIL, "new@example.com", "off@example.com"].map(sent);
    for email in [EMAIL, "new@example.com", "off@example.com"] {
        h.auth.resend_verification(email, &anon()).await.unwrap();
    }
    h.auth.shutdown().await;
    let after = [EMAIL, "new@example.com", "off@example.com"].map(sent);
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [0, 1, 0],
        "verified, unverified, disabled"
    );
}

/// A message the mailer refuses until the outbox gives up is counted in
/// `Auth::mail_dropped`, the figure operators watch.
#[tokio::test]
async fn mail_given_up_on_is_counted_in_mail_dropped() {
    let h = harness_with(|c| c.outbox.max_attempts = 1);
    h.mailer.fail_next(1);
    assert_eq!(h.auth.mail_dropped(), 0);
    h.auth.register(EMAIL, &pw(PW), &anon()).await.unwrap();
    h.auth.shutdown().await;
    assert_eq!(h.auth.mail_dropped(), 1);
}

/// An engine on the memory store counting attempts through `held`.
fn harness_held(held: Arc<CountingAttempts>) -> Harness {
    let mut stores = Stores::all(Arc::new(MemoryStore::new()));
    stores.attempts = held;
    Harness::new(stores)
}

/// Drops `flow` as soon as `held` reports an account's attempt counted, then
/// lets whatever still runs go on, and waits (10 s at most) for the client's
/// failure to be counted.
async fn drop_after_the_count<T: std::fmt::Debug>(
    held: &CountingAttempts,
    flow: impl Future<Output = T>,
) {
    tokio::select! {
        ended = flow => panic!("the flow ended before its count was held: {ended:?}"),
        () = held.counted.notified() => {}
    }
    held.release.notify_one();
    let counted = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        held.client_counted.notified(),
    )
    .await;
    assert!(
        counted.is_ok(),
        "S6: the dropped attempt was never counted for its client"
    );
}

/// S6: when a login's caller stops waiting after its attempt was counted for
/// the account (a client that hangs up, a timeout layer), the password check
/// still runs to its end and counts the failure for the client's address. Before, the dropped
/// login left the account's count and never reached the client's, so one
/// address could lock any account, or start hashes against a locked one,
/// without its own limit ever refusing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_a_login_dropped_after_its_count_still_counts_its_client() {
    let held = Arc::new(CountingAttempts::default());
    let h = harness_held(held.clone());
    h.verified_user(EMAIL, PW).await;
    let ctx = Harness::ctx(9);
    held.arm(&ctx);
    drop_after_the_count(
        &held,
        h.auth.login(EMAIL, &pw("not the password"), false, &ctx),
    )
    .await;
}

/// S6: the same for a second-factor code: a redemption dropped after its
/// attempt was counted for the account still counts a wrong code for the
/// client's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_a_second_factor_dropped_after_its_count_still_counts_its_client() {
    let held = Arc::new(CountingAttempts::default());
    let h = harness_held(held.clone());
    h.verified_user(EMAIL, PW).await;
    let me = h
        .auth
        .authenticate(&h.login(EMAIL, PW).await)
        .await
        .unwrap();
    let enrolment = h.auth.start_totp(&me, &Harness::ctx(7)).await.unwrap();
    let secret = enrolment.secret.to_string();
    let code = auth_core::conformance::engine::totp_code(&secret, h.auth_now());
    h.auth
        .confirm_totp(&me, &code, &Harness::ctx(7))
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(30));
    let challenge = match h
        .auth
        .login(EMAIL, &pw(PW), false, &Harness::ctx(7))
        .await
        .unwrap()
    {
        auth_core::LoginOutcome::SecondFactorRequired(c) => c,
        auth_core::LoginOutcome::SignedIn(_) => panic!("TOTP is on: a challenge was due"),
    };
    // A code for a time far from now: wrong at every accepted step.
    let wrong =
        auth_core::conformance::engine::totp_code(&secret, h.auth_now() - Duration::hours(1));
    let ctx = Harness::ctx(9);
    held.arm(&ctx);
    let code = auth_core::SecondFactorCode::totp(wrong);
    drop_after_the_count(
        &held,
        h.auth.complete_second_factor(&challenge.token, &code, &ctx),
    )
    .await;
}

/// Reads accounts from the memory store, but by address as from just before
/// their second factor was turned on: a login racing a TOTP enrolment.
struct StaleSecondFactor(Arc<MemoryStore>);

#[async_trait::async_trait]
impl auth_core::store::AccountReader for StaleSecondFactor {
    async fn account_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<auth_core::store::Account>, auth_core::StoreError> {
        let read = self.0.account_by_email(email_normalized).await?;
        Ok(read.map(|mut account| {
            account.second_factor = false;
            account
        }))
    }
    async fn account(
        &self,
        id: auth_core::store::UserId,
    ) -> Result<Option<auth_core::store::Account>, auth_core::StoreError> {
        self.0.account(id).await
    }
}

/// S5, S15: a password login that read the account before its second factor
/// was turned on stores its session, reads the account again, finds the
/// factor, and revokes that session: no session without the second factor
/// survives the race. Without the re-check the login answered `SignedIn`.
#[tokio::test]
async fn s15_a_login_that_read_no_second_factor_is_refused_when_one_was_turned_on() {
    use auth_core::store::AccountReader as _;
    let memory = Arc::new(MemoryStore::new());
    let mut stores = Stores::all(memory.clone());
    stores.accounts = Some(Arc::new(StaleSecondFactor(memory.clone())));
    let h = Harness::new(stores);
    let id = h.verified_user(EMAIL, PW).await;
    let me = h
        .auth
        .authenticate(&h.login(EMAIL, PW).await)
        .await
        .unwrap();
    let enrolment = h.auth.start_totp(&me, &Harness::ctx(7)).await.unwrap();
    let code = auth_core::conformance::engine::totp_code(&enrolment.secret, h.auth_now());
    h.auth
        .confirm_totp(&me, &code, &Harness::ctx(7))
        .await
        .unwrap();
    assert!(memory.account(id).await.unwrap().unwrap().second_factor);

    let raced = h.auth.login(EMAIL, &pw(PW), false, &anon()).await;
    assert!(
        matches!(raced, Err(AuthError::InvalidCredentials)),
        "{raced:?}"
    );
    let live = h.auth.list_sessions(id).await.unwrap();
    assert_eq!(live.len(), 1, "only the session that turned TOTP on");
    assert_eq!(live[0].id, me.session.id);
}

/// S6: a login with an address no account can have costs a hash like any
/// other; a caller that stops waiting during that hash has its failure
/// counted for its client already. Before, the count came after the hash, so
/// one address could start argon2 runs without its limit ever counting them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_a_malformed_address_is_counted_for_the_client_before_its_hash() {
    let attempts = Arc::new(CountingAttempts::default());
    let auth = one_slow_permit(Arc::new(MemoryStore::new()), attempts.clone());
    let ctx = Harness::ctx(9);
    let password = pw(PW);
    let login = auth.login("not an address", &password, false, &ctx);
    let hashing = async {
        while auth.hasher().metrics().argon2_runs == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        ended = login => panic!("the login ended before its hash started: {ended:?}"),
        () = hashing => {}
    }
    // The login is dropped while its hash runs.
    let key = AttemptKey::client(AttemptScope::Login, ctx.ip.unwrap());
    let now = time::OffsetDateTime::now_utc();
    let counted = auth_core::store::AttemptStore::attempts(&*attempts, &key, now)
        .await
        .unwrap();
    assert_eq!(counted.count, 1, "S6: the client's failure was counted");
}

/// A user store that counts its reads by address.
struct CountingUserReads {
    inner: Arc<MemoryStore>,
    by_email: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl auth_core::store::UserStore for CountingUserReads {
    async fn create_user(
        &self,
        user: auth_core::store::NewUser,
    ) -> Result<auth_core::store::User, auth_core::StoreError> {
        self.inner.create_user(user).await
    }
    async fn user_by_id(
        &self,
        id: auth_core::store::UserId,
    ) -> Result<Option<auth_core::store::User>, auth_core::StoreError> {
        self.inner.user_by_id(id).await
    }
    async fn user_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<auth_core::store::User>, auth_core::StoreError> {
        self.by_email
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.user_by_email(email_normalized).await
    }
    async fn mark_email_verified(
        &self,
        id: auth_core::store::UserId,
        at: time::OffsetDateTime,
    ) -> Result<(), auth_core::StoreError> {
        self.inner.mark_email_verified(id, at).await
    }
    async fn set_disabled(
        &self,
        id: auth_core::store::UserId,
        at: Option<time::OffsetDateTime>,
        now: time::OffsetDateTime,
    ) -> Result<(), auth_core::StoreError> {
        self.inner.set_disabled(id, at, now).await
    }
    async fn set_reset_required(
        &self,
        id: auth_core::store::UserId,
        at: Option<time::OffsetDateTime>,
        now: time::OffsetDateTime,
    ) -> Result<(), auth_core::StoreError> {
        self.inner.set_reset_required(id, at, now).await
    }
    async fn delete_unverified_users(
        &self,
        created_before: time::OffsetDateTime,
    ) -> Result<Vec<auth_core::store::UserId>, auth_core::StoreError> {
        self.inner.delete_unverified_users(created_before).await
    }
    async fn delete_user(
        &self,
        id: auth_core::store::UserId,
    ) -> Result<bool, auth_core::StoreError> {
        self.inner.delete_user(id).await
    }
}

/// A user store set after `stores` replaces the backend's account reader
/// too: logins then read accounts through the stores given, one by one, not
/// through a reader of another store's users.
#[tokio::test]
async fn users_set_after_stores_are_the_ones_logins_read() {
    let memory = Arc::new(MemoryStore::new());
    let users = Arc::new(CountingUserReads {
        inner: memory.clone(),
        by_email: std::sync::atomic::AtomicUsize::new(0),
    });
    let auth = auth_core::Auth::builder()
        .stores(memory.clone())
        .users(users.clone())
        .mailer(Arc::new(auth_core::mail::CapturingMailer::new()))
        .hasher(
            PasswordHasher::builder()
                .params(HashParams::insecure_for_tests(64, 1, 1).unwrap())
                .build()
                .unwrap(),
        )
        .secret_key(auth_core::SecretKey::new([7u8; 32]).unwrap())
        .build()
        .unwrap();
    let refused = auth.login(EMAIL, &pw(PW), false, &anon()).await;
    assert!(
        matches!(refused, Err(AuthError::InvalidCredentials)),
        "{refused:?}"
    );
    assert_eq!(
        users.by_email.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the login read the user store it was given"
    );
}
