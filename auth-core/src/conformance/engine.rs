//! Engine checks over a [`Stores`] bundle: the flows whose guarantees depend on
//! the stores (S3, S4, S5, S6), concurrency included.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::Duration;

use super::Stores;
use crate::clock::{Clock, MockClock};
use crate::mail::{CapturingMailer, MessageKind, OutboxConfig};
use crate::password::{HashParams, PasswordHasher};
use crate::store::{AttemptKey, AttemptScope, AuditKind, AuthMethod, Role, UserId};
use crate::{
    Auth, AuthBuilder, AuthConfig, AuthError, OpaqueToken, Password, RequestContext, SecretKey,
};

/// The engine checks take the bundle as is.
#[must_use]
pub fn fixture(stores: Stores) -> Stores {
    stores
}

/// An engine over a [`Stores`] bundle with a [`MockClock`], a
/// [`CapturingMailer`] and cheap hashing parameters: the harness of the engine
/// checks, and of engine tests in general.
pub struct Harness {
    /// The engine.
    pub auth: Auth,
    /// Its clock.
    pub clock: MockClock,
    /// Its mailer.
    pub mailer: CapturingMailer,
    /// Its stores.
    pub stores: Stores,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// The default configuration with a fast outbox.
    #[must_use]
    pub fn config() -> AuthConfig {
        AuthConfig {
            outbox: OutboxConfig {
                initial_backoff: StdDuration::from_millis(5),
                ..OutboxConfig::default()
            },
            ..AuthConfig::default()
        }
    }

    /// A harness with [`Self::config`].
    ///
    /// # Panics
    /// If the engine cannot be built (a bug in the harness).
    #[must_use]
    pub fn new(stores: Stores) -> Self {
        Self::with_config(stores, Self::config())
    }

    /// A harness with a configuration of your own.
    ///
    /// # Panics
    /// If the configuration is refused.
    #[must_use]
    pub fn with_config(stores: Stores, config: AuthConfig) -> Self {
        Self::with_builder(stores, config, |builder| builder)
    }

    /// A harness whose engine builder `extra` completes (lifecycle hooks, a
    /// session cache, ...) after the harness has set its stores, clock,
    /// mailer and hasher.
    ///
    /// # Panics
    /// If the configuration is refused.
    #[must_use]
    pub fn with_builder(
        stores: Stores,
        config: AuthConfig,
        extra: impl FnOnce(AuthBuilder) -> AuthBuilder,
    ) -> Self {
        let clock = MockClock::default();
        let mailer = CapturingMailer::new();
        let hasher = PasswordHasher::builder()
            .params(HashParams::insecure_for_tests(64, 1, 1).unwrap_or_else(|e| panic!("{e}")))
            .max_queued(4096)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let auth = Auth::builder()
            .config(config)
            .users(Arc::clone(&stores.users))
            .passwords(Arc::clone(&stores.passwords))
            .totp(Arc::clone(&stores.totp))
            .recovery_codes(Arc::clone(&stores.recovery_codes))
            .challenges(Arc::clone(&stores.challenges))
            .tokens(Arc::clone(&stores.tokens))
            .sessions(Arc::clone(&stores.sessions))
            .attempts(Arc::clone(&stores.attempts))
            .audit(Arc::clone(&stores.audit))
            .roles(Arc::clone(&stores.roles))
            .mailer(Arc::new(mailer.clone()))
            .clock(Arc::new(clock.clone()))
            .hasher(hasher)
            .secret_key(SecretKey::new([42u8; 32]).unwrap_or_else(|e| panic!("{e}")));
        let auth = match &stores.session_cache {
            Some(cache) => auth.session_cache(Arc::clone(cache)),
            None => auth,
        };
        let auth = match &stores.accounts {
            Some(accounts) => auth.accounts(Arc::clone(accounts)),
            None => auth,
        };
        let auth = extra(auth).build().unwrap_or_else(|e| panic!("{e}"));
        Self {
            auth,
            clock,
            mailer,
            stores,
        }
    }

    /// A request from `192.0.2.{n}`.
    #[must_use]
    pub fn ctx(n: u8) -> RequestContext {
        RequestContext {
            ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))),
            user_agent: Some("harness/1.0".into()),
            request_id: Some(format!("req-{n}")),
        }
    }

    /// The token of the newest message of `kind` to `to`, waiting for it.
    ///
    /// # Panics
    /// If no such message arrives within 5 seconds.
    pub async fn token(&self, to: &str, kind: MessageKind) -> OpaqueToken {
        let wait = async {
            loop {
                // Count first, then look: a message landing between the two is
                // then either seen now or counted in `n`, so the wait below
                // cannot miss it.
                let n = self.mailer.messages().len();
                if let Some(token) = self.mailer.token_for(to, kind) {
                    return OpaqueToken::new(token);
                }
                self.mailer.wait_for(n + 1).await;
            }
        };
        tokio::time::timeout(StdDuration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no {kind:?} mail to {to}"))
    }

    /// Requests a password reset for `email` and returns the token of the new
    /// reset mail it sends (not of an earlier one).
    ///
    /// # Panics
    /// If the request fails or no new mail arrives within 5 seconds.
    pub async fn reset_token(&self, email: &str) -> OpaqueToken {
        let kind = MessageKind::PasswordReset;
        let before = self.mailer.messages_to(email, kind).len();
        self.auth
            .request_password_reset(email, &Self::ctx(9))
            .await
            .unwrap_or_else(|e| panic!("reset request: {e}"));
        let wait = async {
            loop {
                let n = self.mailer.messages().len();
                if self.mailer.messages_to(email, kind).len() > before
                    && let Some(token) = self.mailer.token_for(email, kind)
                {
                    return OpaqueToken::new(token);
                }
                self.mailer.wait_for(n + 1).await;
            }
        };
        tokio::time::timeout(StdDuration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no new reset mail to {email}"))
    }

    /// Registers and verifies an account; returns its id.
    ///
    /// # Panics
    /// If any step fails.
    pub async fn verified_user(&self, email: &str, password: &str) -> UserId {
        let ctx = Self::ctx(1);
        self.auth
            .register(email, &Password::new(password), &ctx)
            .await
            .unwrap_or_else(|e| panic!("register: {e}"));
        let token = self.token(email, MessageKind::Verification).await;
        self.auth
            .verify_email(&token, &ctx)
            .await
            .unwrap_or_else(|e| panic!("verify: {e}"))
    }

    /// Logs in and returns the session token.
    ///
    /// # Panics
    /// If the login fails.
    pub async fn login(&self, email: &str, password: &str) -> OpaqueToken {
        let ok = self
            .auth
            .login(email, &Password::new(password), false, &Self::ctx(1))
            .await;
        let outcome = ok.unwrap_or_else(|e| panic!("login: {e}"));
        let Some(ok) = outcome.signed_in() else {
            panic!("login: a second factor is due");
        };
        ok.session.token
    }
}

const PW: &str = "purple otter sings";

/// Register, verify, login, authenticate, logout, with the audit trail.
pub async fn full_journey(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("journey@example.com", PW).await;
    let token = h.login("journey@example.com", PW).await;
    let me = h.auth.authenticate(&token).await.unwrap();
    assert_eq!(
        (me.user.id, me.user.email.as_str()),
        (id, "journey@example.com")
    );
    assert!(me.user.email_verified_at.is_some());
    assert_eq!(h.auth.list_sessions(id).await.unwrap().len(), 1);
    h.auth.logout(&token, &Harness::ctx(1)).await.unwrap();
    assert!(matches!(
        h.auth.authenticate(&token).await,
        Err(AuthError::Unauthenticated)
    ));
    let kinds: Vec<_> = h
        .stores
        .audit
        .events_for_user(id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        AuditKind::Registered,
        AuditKind::EmailVerified,
        AuditKind::LoginSucceeded,
        AuditKind::Logout,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing from {kinds:?}");
    }
}

/// S6: 50 concurrent wrong logins against a threshold of 5: the check and the
/// count are one atomic step, so exactly 5 passwords are verified and counted
/// (no lost update, Devise CVE-2019-5421; no guess past the lock), the other 45
/// answer `Locked` without being counted, and the account is locked afterwards.
pub async fn fifty_concurrent_failed_logins_verify_exactly_the_threshold(stores: Stores) {
    let h = Harness::new(stores);
    h.verified_user("victim@example.com", PW).await;
    concurrent_failed_logins_lock_every_engine(&[&h], "victim@example.com", PW).await;
}

/// The check of [`fifty_concurrent_failed_logins_verify_exactly_the_threshold`], with
/// the 50 wrong logins spread over several engines on the same stores (as over
/// several application instances), for an existing verified account `email`
/// whose password is `password`. Every engine refuses the right password
/// afterwards.
///
/// # Panics
/// When the check fails.
pub async fn concurrent_failed_logins_lock_every_engine(
    engines: &[&Harness],
    email: &str,
    password: &str,
) {
    let tasks: Vec<_> = (0..50_u8)
        .zip(engines.iter().cycle())
        .map(|(i, h)| {
            let (auth, email) = (h.auth.clone(), email.to_owned());
            tokio::spawn(async move {
                auth.login(
                    &email,
                    &Password::new("wrong password!"),
                    false,
                    &Harness::ctx(i),
                )
                .await
            })
        })
        .collect();
    let (mut invalid, mut locked_answers) = (0_u32, 0_u32);
    for t in tasks {
        match t.await.unwrap() {
            Err(AuthError::InvalidCredentials) => invalid += 1,
            Err(AuthError::Locked { .. }) => locked_answers += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(invalid + locked_answers, 50);
    let Some(first) = engines.first() else {
        panic!("no engine given");
    };
    let key = AttemptKey::Account(AttemptScope::Login, email.to_owned());
    let counted = first
        .stores
        .attempts
        .attempts(&key, first.clock.now())
        .await
        .unwrap()
        .count;
    let threshold = first.auth.config().account_lockout.threshold;
    assert_eq!(
        (invalid, counted),
        (threshold, threshold),
        "exactly the threshold of passwords is checked and counted"
    );
    for h in engines {
        let locked = h
            .auth
            .login(email, &Password::new(password), false, &Harness::ctx(60))
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
    }
}

/// S6: bursts of concurrent guesses, one after each lock window, cannot push
/// the account to the hard (reset-required) limit: each window lets through
/// one verified guess, so after two bursts of 60 the owner's right password
/// still signs in once the lock has passed.
pub async fn bursts_after_each_lock_cannot_reach_the_hard_limit(stores: Stores) {
    let h = Harness::new(stores);
    let email = "burst@example.com";
    h.verified_user(email, PW).await;
    let mut wait = Duration::ZERO;
    for burst in 0..2_u8 {
        h.clock.advance(wait);
        let tasks: Vec<_> = (0..60_u8)
            .map(|i| {
                let auth = h.auth.clone();
                let ctx = Harness::ctx(burst * 60 + i);
                tokio::spawn(async move {
                    auth.login(email, &Password::new("wrong password!"), false, &ctx)
                        .await
                })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Err(AuthError::InvalidCredentials) => {}
                Err(AuthError::Locked {
                    retry_after: Some(after),
                }) => wait = wait.max(after),
                other => panic!("burst {burst}: unexpected answer {other:?}"),
            }
        }
    }
    let key = AttemptKey::Account(AttemptScope::Login, email.to_owned());
    let counted = h
        .stores
        .attempts
        .attempts(&key, h.clock.now())
        .await
        .unwrap();
    assert_eq!(
        counted.count, 6,
        "5 before the first lock, then 1 per window"
    );
    h.clock.advance(Duration::minutes(16));
    let signed_in = h
        .auth
        .login(email, &Password::new(PW), false, &Harness::ctx(200))
        .await;
    assert!(signed_in.is_ok(), "{signed_in:?}");
}

/// A configuration whose per-account mail limit lets every trial of a race
/// have its own reset mail.
fn many_reset_mails() -> AuthConfig {
    let mut config = Harness::config();
    config.account_request_limit.threshold = 100;
    config
}

/// S5: an attacker who knows the old password and logs in back to back while
/// the owner resets it keeps no session: every session their logins got is
/// dead once the reset has completed and their logins have stopped, whichever
/// way each login interleaved with the reset.
pub async fn logins_racing_a_reset_leave_no_session(stores: Stores) {
    let h = Harness::with_config(stores, many_reset_mails());
    let email = "raced@example.com";
    let id = h.verified_user(email, PW).await;
    for trial in 0..5_u8 {
        let old = if trial == 0 {
            PW.to_owned()
        } else {
            format!("reset passphrase {}", trial - 1)
        };
        let token = h.reset_token(email).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let attackers: Vec<_> = (0..4_u8)
            .map(|a| {
                let (auth, stop, old) = (h.auth.clone(), Arc::clone(&stop), old.clone());
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    // Bounded: a few logins after the reset is done.
                    let mut after = 0;
                    while after < 5 {
                        if stop.load(std::sync::atomic::Ordering::SeqCst) {
                            after += 1;
                        }
                        let ctx = Harness::ctx(100 + a);
                        if let Ok(ok) = auth.login(email, &Password::new(&old), false, &ctx).await {
                            got.extend(ok.signed_in().map(|ok| ok.session.token));
                        }
                        tokio::task::yield_now().await;
                    }
                    got
                })
            })
            .collect();
        let new = format!("reset passphrase {trial}");
        h.auth
            .reset_password(&token, &Password::new(&new), &Harness::ctx(trial))
            .await
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for a in attackers {
            for token in a.await.unwrap() {
                assert!(
                    matches!(
                        h.auth.authenticate(&token).await,
                        Err(AuthError::Unauthenticated)
                    ),
                    "trial {trial}: a session from the old password survived the reset"
                );
            }
        }
        assert!(
            h.auth.list_sessions(id).await.unwrap().is_empty(),
            "trial {trial}: the owner's list shows a session"
        );
    }
}

/// S5: a password change that started before a reset cannot overwrite it: when
/// the reset succeeds, its password is the one that works, the changer's does
/// not, and the changer keeps no session, whichever order the two land in. (A
/// change that completes first kills the reset link instead, S4.)
pub async fn a_change_racing_a_reset_leaves_the_resets_password(stores: Stores) {
    let h = Harness::with_config(stores, many_reset_mails());
    let email = "contested@example.com";
    h.verified_user(email, PW).await;
    let mut current = PW.to_owned();
    for trial in 0..6_u8 {
        let session = h.login(email, &current).await;
        let token = h.reset_token(email).await;
        let reset_pw = format!("owner reset passphrase {trial}");
        let change_pw = format!("attacker new passphrase {trial}");
        let change = {
            let (auth, old, new) = (h.auth.clone(), current.clone(), change_pw.clone());
            tokio::spawn(async move {
                auth.change_password(
                    &session,
                    &Password::new(old),
                    &Password::new(new),
                    &Harness::ctx(150),
                )
                .await
            })
        };
        let reset = {
            let (auth, new) = (h.auth.clone(), reset_pw.clone());
            tokio::spawn(async move {
                auth.reset_password(&token, &Password::new(new), &Harness::ctx(151))
                    .await
            })
        };
        let (reset, change) = (reset.await.unwrap(), change.await.unwrap());
        let login = |pw: String| {
            let auth = h.auth.clone();
            async move {
                auth.login(email, &Password::new(pw), false, &Harness::ctx(152))
                    .await
            }
        };
        match reset {
            Ok(()) => {
                if let Ok(changed) = change {
                    assert!(
                        h.auth.authenticate(&changed.session.token).await.is_err(),
                        "trial {trial}: the change's session survived the reset"
                    );
                }
                assert!(
                    login(change_pw).await.is_err(),
                    "trial {trial}: the change overwrote the reset"
                );
                assert!(
                    login(reset_pw.clone()).await.is_ok(),
                    "trial {trial}: the reset's password does not work"
                );
                current = reset_pw;
            }
            // The change landed first and killed the older reset link (S4).
            Err(AuthError::TokenInvalid) => {
                assert!(change.is_ok(), "trial {trial}: neither won: {change:?}");
                current = change_pw;
            }
            Err(other) => panic!("trial {trial}: unexpected {other:?}"),
        }
    }
}

/// S5: disabling an account kills its outstanding reset links, and a reset
/// link of a disabled account is refused, leaving the password as it was.
pub async fn a_disabled_accounts_reset_link_is_refused(stores: Stores) {
    let h = Harness::new(stores);
    let email = "disabled@example.com";
    let id = h.verified_user(email, PW).await;
    h.auth
        .request_password_reset(email, &Harness::ctx(1))
        .await
        .unwrap();
    let token = h.token(email, MessageKind::PasswordReset).await;
    h.auth.disable_user(id, &Harness::ctx(1)).await.unwrap();
    let used = h
        .auth
        .reset_password(
            &token,
            &Password::new("takeover passphrase"),
            &Harness::ctx(2),
        )
        .await;
    assert!(matches!(used, Err(AuthError::TokenInvalid)), "{used:?}");
    h.auth.enable_user(id, &Harness::ctx(1)).await.unwrap();
    // Enabling again does not revive the link, and the password is unchanged.
    let used = h
        .auth
        .reset_password(
            &token,
            &Password::new("takeover passphrase"),
            &Harness::ctx(2),
        )
        .await;
    assert!(matches!(used, Err(AuthError::TokenInvalid)), "{used:?}");
    h.login(email, PW).await;
}

/// S5: a user has at most `max_sessions_per_user` live sessions; a sign-in
/// beyond it ends the oldest.
pub async fn sign_ins_beyond_the_cap_end_the_oldest_sessions(stores: Stores) {
    let config = AuthConfig {
        max_sessions_per_user: 3,
        ..Harness::config()
    };
    let h = Harness::with_config(stores, config);
    let email = "many@example.com";
    let id = h.verified_user(email, PW).await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(h.login(email, PW).await);
        h.clock.advance(Duration::seconds(1));
    }
    assert_eq!(h.auth.list_sessions(id).await.unwrap().len(), 3);
    for (i, token) in tokens.iter().enumerate() {
        let live = h.auth.authenticate(token).await.is_ok();
        assert_eq!(live, i >= 2, "session {i}");
    }
}

/// S14: revoking the other sessions needs a recent sign-in or the current
/// password; a wrong password is refused and counted like a failed login.
pub async fn revoking_other_sessions_needs_a_recent_sign_in(stores: Stores) {
    let h = Harness::new(stores);
    let email = "reauth@example.com";
    let id = h.verified_user(email, PW).await;
    let (current, other) = (h.login(email, PW).await, h.login(email, PW).await);
    // Idle sessions die after 30 min: keep them alive past the 10 min window.
    for _ in 0..11 {
        h.clock.advance(Duration::minutes(1));
        h.auth.authenticate(&current).await.unwrap();
        h.auth.authenticate(&other).await.unwrap();
    }
    let me = h.auth.authenticate(&current).await.unwrap();
    let ctx = Harness::ctx(3);
    let refused = h.auth.revoke_other_sessions(&me, None, &ctx).await;
    assert!(
        matches!(refused, Err(AuthError::ReauthenticationRequired)),
        "{refused:?}"
    );
    let wrong = Password::new("not my password");
    let refused = h.auth.revoke_other_sessions(&me, Some(&wrong), &ctx).await;
    assert!(
        matches!(refused, Err(AuthError::InvalidCredentials)),
        "{refused:?}"
    );
    let key = AttemptKey::Account(AttemptScope::Login, email.to_owned());
    let counted = h
        .stores
        .attempts
        .attempts(&key, h.clock.now())
        .await
        .unwrap();
    assert_eq!(counted.count, 1, "the wrong password counts toward lockout");
    assert!(h.auth.authenticate(&other).await.is_ok());
    let right = Password::new(PW);
    let revoked = h.auth.revoke_other_sessions(&me, Some(&right), &ctx).await;
    assert_eq!(revoked.unwrap(), 1);
    assert!(h.auth.authenticate(&other).await.is_err());
    assert_eq!(h.auth.list_sessions(id).await.unwrap().len(), 1);
    // A fresh sign-in needs no password.
    let fresh = h.login(email, PW).await;
    let fresh = h.auth.authenticate(&fresh).await.unwrap();
    assert_eq!(
        h.auth
            .revoke_other_sessions(&fresh, None, &ctx)
            .await
            .unwrap(),
        1
    );
}

/// S6: fifty concurrent reset requests from one client admit exactly the
/// per-IP limit: the check and the count of each counter are one atomic step,
/// so a burst cannot pass the check before any count lands.
pub async fn fifty_concurrent_mail_requests_admit_exactly_the_ip_limit(stores: Stores) {
    let h = Harness::new(stores);
    let limit = h.auth.config().ip_request_limit.threshold;
    let tasks: Vec<_> = (0..50_u8)
        .map(|i| {
            let auth = h.auth.clone();
            tokio::spawn(async move {
                let email = format!("nobody{i}@example.com");
                auth.request_password_reset(&email, &Harness::ctx(77)).await
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(AuthError::RateLimited { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, limit, "check and count are one step per counter");
}

/// S3: of 20 concurrent registrations of one email, one makes the account; every
/// caller gets the same answer; the owner is told of the others, within the
/// per-account mail limit.
pub async fn twenty_concurrent_registrations_make_one_user(stores: Stores) {
    let h = Harness::new(stores);
    let tasks: Vec<_> = (0..20_u8)
        .map(|i| {
            let auth = h.auth.clone();
            tokio::spawn(async move {
                auth.register("dup@example.com", &Password::new(PW), &Harness::ctx(i))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // The account is created in the background (S3).
    h.auth.settle().await;
    assert!(
        h.stores
            .users
            .user_by_email("dup@example.com")
            .await
            .unwrap()
            .is_some()
    );
    let mails = h.mailer.messages();
    let count = |kind| mails.iter().filter(|m| m.kind == kind).count();
    // The notices are under the per-account mail limit (S6): 3 at once.
    assert_eq!(count(MessageKind::Verification), 1);
    assert!((1..=3).contains(&count(MessageKind::DuplicateRegistration)));
}

/// S4: 16 concurrent uses of one reset token: exactly one succeeds (Kratos race).
pub async fn sixteen_concurrent_resets_have_one_winner(stores: Stores) {
    let h = Harness::new(stores);
    h.verified_user("reset@example.com", PW).await;
    h.auth
        .request_password_reset("reset@example.com", &Harness::ctx(1))
        .await
        .unwrap();
    let token = h
        .token("reset@example.com", MessageKind::PasswordReset)
        .await;
    let tasks: Vec<_> = (0..16_u8)
        .map(|i| {
            let (auth, token) = (h.auth.clone(), token.clone());
            let pw = Password::new(format!("brand new passphrase {i}"));
            tokio::spawn(async move { auth.reset_password(&token, &pw, &Harness::ctx(i)).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => winners += 1,
            Err(AuthError::TokenInvalid) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
}

/// S5: logout-all racing many authentications leaves no usable session.
pub async fn revoke_all_racing_authenticate_leaves_no_usable_session(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("race@example.com", PW).await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(h.login("race@example.com", PW).await);
    }
    // Past the touch interval, so authentications write activity back.
    h.clock.advance(Duration::minutes(2));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        for token in &tokens {
            let (auth, token) = (h.auth.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                auth.authenticate(&token).await.map(drop)
            }));
        }
    }
    let auth = h.auth.clone();
    let revoke = tokio::spawn(async move { auth.logout_all(id, &Harness::ctx(1)).await });
    for t in tasks {
        let _ = t.await.unwrap(); // either answer is fine while racing
    }
    revoke.await.unwrap().unwrap();
    for token in &tokens {
        assert!(matches!(
            h.auth.authenticate(token).await,
            Err(AuthError::Unauthenticated)
        ));
    }
}

/// S5: a reset revokes every session and logs nobody in (Strapi CVE-2026-22706).
pub async fn reset_revokes_every_session_without_login(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("strapi@example.com", PW).await;
    let sessions = [
        h.login("strapi@example.com", PW).await,
        h.login("strapi@example.com", PW).await,
    ];
    h.auth
        .request_password_reset("strapi@example.com", &Harness::ctx(1))
        .await
        .unwrap();
    let token = h
        .token("strapi@example.com", MessageKind::PasswordReset)
        .await;
    h.auth
        .reset_password(
            &token,
            &Password::new("a whole new passphrase"),
            &Harness::ctx(1),
        )
        .await
        .unwrap();
    for s in &sessions {
        assert!(matches!(
            h.auth.authenticate(s).await,
            Err(AuthError::Unauthenticated)
        ));
    }
    assert!(
        h.auth.list_sessions(id).await.unwrap().is_empty(),
        "no session was created"
    );
    assert!(
        h.auth
            .login(
                "strapi@example.com",
                &Password::new(PW),
                false,
                &Harness::ctx(1)
            )
            .await
            .is_err()
    );
    h.login("strapi@example.com", "a whole new passphrase")
        .await;
}

/// S5: a password change revokes every other session and replaces the current one
/// with a new token.
pub async fn change_rotates_the_session_and_revokes_the_others(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("change@example.com", PW).await;
    let (current, other) = (
        h.login("change@example.com", PW).await,
        h.login("change@example.com", PW).await,
    );
    let before = h.auth.authenticate(&current).await.unwrap().session.id;
    let changed = h
        .auth
        .change_password(
            &current,
            &Password::new(PW),
            &Password::new("another fine passphrase"),
            &Harness::ctx(1),
        )
        .await
        .unwrap();
    let new = changed.session.token;
    assert_ne!(new, current);
    assert_ne!(changed.session.session.id, before);
    assert!(matches!(
        h.auth.authenticate(&current).await,
        Err(AuthError::Unauthenticated)
    ));
    assert!(matches!(
        h.auth.authenticate(&other).await,
        Err(AuthError::Unauthenticated)
    ));
    assert_eq!(h.auth.authenticate(&new).await.unwrap().user.id, id);
    assert_eq!(h.auth.list_sessions(id).await.unwrap().len(), 1);
}

/// S6: case variants of an email share one account and one lockout counter.
pub async fn email_case_variants_share_account_and_counter(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("Mixed.Case@Example.com", PW).await;
    for email in [
        "mixed.case@example.com",
        "MIXED.CASE@EXAMPLE.COM",
        "Mixed.Case@Example.com",
    ] {
        let r = h
            .auth
            .login(
                email,
                &Password::new("not the password"),
                false,
                &Harness::ctx(1),
            )
            .await;
        assert!(matches!(r, Err(AuthError::InvalidCredentials)));
    }
    let key = AttemptKey::Account(AttemptScope::Login, "mixed.case@example.com".into());
    assert_eq!(
        h.stores
            .attempts
            .attempts(&key, h.clock.now())
            .await
            .unwrap()
            .count,
        3
    );
    let ok = h
        .auth
        .login(
            "MIXED.case@example.COM",
            &Password::new(PW),
            false,
            &Harness::ctx(1),
        )
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(ok.user.id, id);
    assert_eq!(
        h.stores
            .attempts
            .attempts(&key, h.clock.now())
            .await
            .unwrap()
            .count,
        0,
        "success resets"
    );
}

/// S5: the idle deadline moves with activity, the absolute one never does.
pub async fn idle_timeout_and_touch(stores: Stores) {
    let h = Harness::new(stores);
    h.verified_user("idle@example.com", PW).await;
    let token = h.login("idle@example.com", PW).await;
    // Active every 20 minutes: alive until the 24 h absolute deadline.
    for _ in 0..71 {
        h.clock.advance(Duration::minutes(20));
        assert!(h.auth.authenticate(&token).await.is_ok());
    }
    h.clock.advance(Duration::minutes(20)); // 24 h since login
    assert!(matches!(
        h.auth.authenticate(&token).await,
        Err(AuthError::Unauthenticated)
    ));

    let idle = h.login("idle@example.com", PW).await;
    h.clock.advance(Duration::minutes(29));
    assert!(h.auth.authenticate(&idle).await.is_ok());
    h.clock.advance(Duration::minutes(30)); // 30 min after the last activity
    assert!(matches!(
        h.auth.authenticate(&idle).await,
        Err(AuthError::Unauthenticated)
    ));
}

/// S4: a verification token is valid at exactly its TTL, expired one second after.
pub async fn verification_token_expiry(stores: Stores) {
    let h = Harness::new(stores);
    let ctx = Harness::ctx(1);
    h.auth
        .register("ontime@example.com", &Password::new(PW), &ctx)
        .await
        .unwrap();
    h.auth
        .register("late@example.com", &Password::new(PW), &ctx)
        .await
        .unwrap();
    let on_time = h
        .token("ontime@example.com", MessageKind::Verification)
        .await;
    let late = h.token("late@example.com", MessageKind::Verification).await;
    h.clock.advance(Duration::hours(24));
    h.auth.verify_email(&on_time, &ctx).await.unwrap();
    h.clock.advance(Duration::seconds(1));
    assert!(matches!(
        h.auth.verify_email(&late, &ctx).await,
        Err(AuthError::TokenExpired)
    ));
    assert!(
        matches!(
            h.auth.verify_email(&on_time, &ctx).await,
            Err(AuthError::TokenInvalid)
        ),
        "single use"
    );
}

/// The code an authenticator app holding `secret` (base32) shows at `at`.
///
/// # Panics
/// On a secret the enrolment could not have produced.
#[must_use]
pub fn totp_code(secret: &str, at: time::OffsetDateTime) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .unwrap_or_else(|e| panic!("secret: {e:?}"))
        .as_ref()
        .to_vec();
    let totp = totp_rs::Builder::new()
        .with_secret(bytes)
        .build()
        .unwrap_or_else(|e| panic!("totp: {e:?}"));
    let at = u64::try_from(at.unix_timestamp()).unwrap_or_else(|e| panic!("{e}"));
    totp.generate(at).to_string()
}

/// The challenge a password login of `email` (with TOTP on) answers.
async fn challenge_for(h: &Harness, email: &str) -> crate::SecondFactorChallenge {
    let outcome = h
        .auth
        .login(email, &Password::new(PW), false, &Harness::ctx(7))
        .await
        .unwrap();
    match outcome {
        crate::LoginOutcome::SecondFactorRequired(c) => c,
        crate::LoginOutcome::SignedIn(_) => panic!("TOTP is on: a challenge was due"),
    }
}

/// Signs `email` in with its password and returns the session, for a user
/// with TOTP (redeeming the challenge with the code at the clock's time).
async fn sign_in_with_totp(h: &Harness, email: &str, secret: &str) -> crate::LoginSuccess {
    let challenge = challenge_for(h, email).await;
    let code = crate::SecondFactorCode::totp(totp_code(secret, h.clock.now()));
    h.auth
        .complete_second_factor(&challenge.token, &code, &Harness::ctx(7))
        .await
        .unwrap()
}

/// Enrols TOTP for a verified, signed-in user; returns the secret and the
/// recovery codes. The clock moves one step on, so the confirming code's
/// step is in the past.
async fn enrol_totp(h: &Harness, email: &str) -> (String, Vec<String>) {
    let token = h.login(email, PW).await;
    let me = h.auth.authenticate(&token).await.unwrap();
    let enrolment = h.auth.start_totp(&me, &Harness::ctx(7)).await.unwrap();
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(enrolment.qr_svg.contains("<svg"));
    let secret = enrolment.secret.to_string();
    let code = totp_code(&secret, h.clock.now());
    let codes = h
        .auth
        .confirm_totp(&me, &code, &Harness::ctx(7))
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(30));
    let codes = codes
        .expose_secret()
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    (secret, codes)
}

/// S15: enrol TOTP, then sign in with password + TOTP (both recorded on the
/// session), then with password + a recovery code; a code and a recovery code
/// are each accepted once; the owner is mailed at each step.
pub async fn totp_sign_in_journey(stores: Stores) {
    let h = Harness::new(stores);
    let email = "twofactor@example.com";
    let id = h.verified_user(email, PW).await;
    let (secret, codes) = enrol_totp(&h, email).await;
    assert_eq!(codes.len(), 10);
    let status = h.auth.second_factor_status(id).await.unwrap();
    assert!(status.totp_enabled && !status.totp_pending);
    assert_eq!(status.recovery_codes_left, 10);
    let stored = h.stores.totp.totp(id).await.unwrap().unwrap();
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    assert!(
        !stored
            .secret
            .sealed
            .windows(raw.as_ref().len())
            .any(|w| w == raw.as_ref()),
        "the secret is sealed at rest"
    );

    let ok = sign_in_with_totp(&h, email, &secret).await;
    assert_eq!(
        ok.session.session.methods,
        [AuthMethod::Password, AuthMethod::Totp]
    );
    let session = h.auth.authenticate(&ok.session.token).await.unwrap();
    assert_eq!(session.session.methods, ok.session.session.methods);

    // The same code again (same step): refused, however it is presented.
    let again = challenge_for(&h, email).await;
    let replay = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let refused = h
        .auth
        .complete_second_factor(&again.token, &replay, &Harness::ctx(7))
        .await;
    assert!(
        matches!(refused, Err(AuthError::InvalidCode)),
        "{refused:?}"
    );

    // A recovery code redeems the same (still live) challenge, once.
    let recovery = crate::SecondFactorCode::recovery_code(codes[3].to_uppercase());
    let ok = h
        .auth
        .complete_second_factor(&again.token, &recovery, &Harness::ctx(7))
        .await
        .unwrap();
    assert_eq!(
        ok.session.session.methods,
        [AuthMethod::Password, AuthMethod::RecoveryCode]
    );
    let used = h
        .auth
        .complete_second_factor(&again.token, &recovery, &Harness::ctx(7))
        .await;
    assert!(matches!(used, Err(AuthError::TokenInvalid)), "{used:?}");
    assert_eq!(
        h.auth
            .second_factor_status(id)
            .await
            .unwrap()
            .recovery_codes_left,
        9
    );
    let mails = |kind| h.mailer.messages_to(email, kind).len();
    h.auth.shutdown().await;
    assert_eq!(mails(MessageKind::SecondFactorChanged), 1);
    assert_eq!(mails(MessageKind::RecoveryCodeUsed), 1);
}

/// S15: two concurrent uses of one TOTP code (two pending sign-ins): exactly
/// one signs in.
pub async fn concurrent_uses_of_one_totp_code_have_one_winner(stores: Stores) {
    let h = Harness::new(stores);
    let email = "race-totp@example.com";
    h.verified_user(email, PW).await;
    let (secret, _) = enrol_totp(&h, email).await;
    let challenges = [
        challenge_for(&h, email).await,
        challenge_for(&h, email).await,
    ];
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let tasks: Vec<_> = challenges
        .into_iter()
        .map(|c| {
            let (auth, code) = (h.auth.clone(), code.clone());
            tokio::spawn(async move {
                auth.complete_second_factor(&c.token, &code, &Harness::ctx(8))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(AuthError::InvalidCode) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
}

/// S15: codes one step off either way are accepted, two steps off refused;
/// wrong codes lock the second factor like passwords (the lock answers
/// without checking the code).
pub async fn totp_skew_and_lockout(stores: Stores) {
    let h = Harness::new(stores);
    let email = "skew@example.com";
    h.verified_user(email, PW).await;
    let (secret, _) = enrol_totp(&h, email).await;

    let redeem = |c: crate::SecondFactorChallenge, at: time::OffsetDateTime| {
        let auth = h.auth.clone();
        let code = crate::SecondFactorCode::totp(totp_code(&secret, at));
        async move {
            auth.complete_second_factor(&c.token, &code, &Harness::ctx(9))
                .await
        }
    };
    // Two steps ahead: refused. One step behind (a later step than any
    // accepted): accepted.
    let now = h.clock.now();
    let c = challenge_for(&h, email).await;
    assert!(matches!(
        redeem(c.clone(), now + Duration::seconds(60)).await,
        Err(AuthError::InvalidCode)
    ));
    h.clock.advance(Duration::seconds(30));
    assert!(
        redeem(c, h.clock.now() - Duration::seconds(30))
            .await
            .is_ok()
    );
    h.clock.advance(Duration::seconds(30));
    let c = challenge_for(&h, email).await;
    assert!(
        redeem(c, h.clock.now() + Duration::seconds(30))
            .await
            .is_ok()
    );
    h.clock.advance(Duration::minutes(2));
    let c = challenge_for(&h, email).await;
    assert!(matches!(
        redeem(c.clone(), h.clock.now() - Duration::seconds(60)).await,
        Err(AuthError::InvalidCode)
    ));
    // Four more wrong codes reach the threshold of 5; the next is locked.
    let wrong = crate::SecondFactorCode::totp("000000");
    for _ in 0..4 {
        let r = h
            .auth
            .complete_second_factor(&c.token, &wrong, &Harness::ctx(9))
            .await;
        assert!(matches!(r, Err(AuthError::InvalidCode)), "{r:?}");
    }
    let locked = redeem(c, h.clock.now()).await;
    assert!(
        matches!(
            locked,
            Err(AuthError::Locked {
                retry_after: Some(_)
            })
        ),
        "{locked:?}"
    );
}

/// S5, S15: a second-factor challenge is single use, expires, and dies with
/// a password change between the two steps.
pub async fn second_factor_challenges_expire_and_bind_the_password(stores: Stores) {
    let h = Harness::new(stores);
    let email = "bound@example.com";
    h.verified_user(email, PW).await;
    let (secret, _) = enrol_totp(&h, email).await;
    let login = || challenge_for(&h, email);
    let expired = login().await;
    h.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let r = h
        .auth
        .complete_second_factor(&expired.token, &code, &Harness::ctx(10))
        .await;
    assert!(matches!(r, Err(AuthError::TokenInvalid)), "{r:?}");

    let pending = login().await;
    let ok = sign_in_with_totp(&h, email, &secret).await;
    h.auth
        .change_password(
            &ok.session.token,
            &Password::new(PW),
            &Password::new("an entirely new passphrase"),
            &Harness::ctx(10),
        )
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(30));
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let r = h
        .auth
        .complete_second_factor(&pending.token, &code, &Harness::ctx(10))
        .await;
    assert!(
        matches!(r, Err(AuthError::InvalidCredentials)),
        "a challenge from the old password: {r:?}"
    );
    let bogus = OpaqueToken::new("not a challenge");
    let r = h
        .auth
        .complete_second_factor(&bogus, &code, &Harness::ctx(10))
        .await;
    assert!(matches!(r, Err(AuthError::TokenInvalid)), "{r:?}");
}

/// S14, S15: enrolment needs a recent sign-in; turning TOTP off needs the
/// password and a code, or a recovery code; both mail the owner.
pub async fn totp_enrolment_needs_a_recent_sign_in_and_off_needs_proof(stores: Stores) {
    let h = Harness::new(stores);
    let email = "offon@example.com";
    let id = h.verified_user(email, PW).await;
    let token = h.login(email, PW).await;
    for _ in 0..11 {
        h.clock.advance(Duration::minutes(1));
        h.auth.authenticate(&token).await.unwrap();
    }
    let old = h.auth.authenticate(&token).await.unwrap();
    let r = h.auth.start_totp(&old, &Harness::ctx(11)).await;
    assert!(
        matches!(r, Err(AuthError::ReauthenticationRequired)),
        "{r:?}"
    );
    let (secret, codes) = enrol_totp(&h, email).await;
    let me = sign_in_with_totp(&h, email, &secret).await;
    let me = h.auth.authenticate(&me.session.token).await.unwrap();
    let r = h.auth.start_totp(&me, &Harness::ctx(11)).await;
    assert!(
        matches!(r, Err(AuthError::SecondFactorAlreadyEnabled)),
        "{r:?}"
    );
    h.clock.advance(Duration::seconds(30));
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let r = h
        .auth
        .disable_totp(&me, None, &code, &Harness::ctx(11))
        .await;
    assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    let wrong = Password::new("not the password");
    let r = h
        .auth
        .disable_totp(&me, Some(&wrong), &code, &Harness::ctx(11))
        .await;
    assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    let recovery = crate::SecondFactorCode::recovery_code(codes[0].clone());
    h.auth
        .disable_totp(&me, None, &recovery, &Harness::ctx(11))
        .await
        .unwrap();
    let status = h.auth.second_factor_status(id).await.unwrap();
    assert!(!status.totp_enabled);
    assert_eq!(status.recovery_codes_left, 0);
    let r = h
        .auth
        .disable_totp(&me, Some(&Password::new(PW)), &code, &Harness::ctx(11))
        .await;
    assert!(matches!(r, Err(AuthError::SecondFactorNotEnabled)), "{r:?}");
    h.login(email, PW).await; // no challenge any more
    h.auth.shutdown().await;
    assert_eq!(
        h.mailer
            .messages_to(email, MessageKind::SecondFactorChanged)
            .len(),
        2
    );
}

/// Redeems `challenge` with `code` from `ctx`.
async fn redeem(
    h: &Harness,
    challenge: &crate::SecondFactorChallenge,
    code: &crate::SecondFactorCode,
    ctx: u8,
) -> Result<crate::LoginSuccess, AuthError> {
    h.auth
        .complete_second_factor(&challenge.token, code, &Harness::ctx(ctx))
        .await
}

/// S14, S15: a stolen session alone cannot mint recovery codes (which would
/// then turn TOTP off): regenerating them needs a TOTP code or an unused
/// recovery code, the old codes stop working, and the owner is mailed.
pub async fn regenerating_recovery_codes_needs_a_code_and_mails_the_owner(stores: Stores) {
    let h = Harness::new(stores);
    let email = "regenerate@example.com";
    h.verified_user(email, PW).await;
    let (secret, old) = enrol_totp(&h, email).await;
    let me = sign_in_with_totp(&h, email, &secret).await;
    let me = h.auth.authenticate(&me.session.token).await.unwrap();
    let wrong = crate::SecondFactorCode::totp("000000");
    let r = h
        .auth
        .regenerate_recovery_codes(&me, &wrong, &Harness::ctx(12))
        .await;
    assert!(matches!(r, Err(AuthError::InvalidCode)), "{r:?}");
    h.clock.advance(Duration::seconds(30));
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let new = h
        .auth
        .regenerate_recovery_codes(&me, &code, &Harness::ctx(12))
        .await
        .unwrap();
    assert_eq!(new.expose_secret().len(), 10);
    let challenge = challenge_for(&h, email).await;
    let old = crate::SecondFactorCode::recovery_code(old[0].clone());
    let r = redeem(&h, &challenge, &old, 12).await;
    assert!(matches!(r, Err(AuthError::InvalidCode)), "{r:?}");
    let fresh = crate::SecondFactorCode::recovery_code(new.expose_secret()[0]);
    redeem(&h, &challenge, &fresh, 12).await.unwrap();
    h.auth.shutdown().await;
    let turned_on = h
        .mailer
        .messages_to(email, MessageKind::SecondFactorChanged);
    assert_eq!(turned_on.len(), 1, "turned on");
    let replaced = h
        .mailer
        .messages_to(email, MessageKind::RecoveryCodesReplaced);
    assert_eq!(replaced.len(), 1, "new codes");
}

/// S6, S15: wrong codes after the right password mail the owner once at the
/// lock (the password is known to whoever tried), and the hard limit requires
/// a reset, as for passwords; an administrator's unlock clears both.
pub async fn second_factor_failures_mail_the_owner_and_reach_the_hard_limit(stores: Stores) {
    let config = AuthConfig {
        reset_required_after: 7,
        ..Harness::config()
    };
    let h = Harness::with_config(stores, config);
    let email = "codeguess@example.com";
    h.verified_user(email, PW).await;
    let (secret, _) = enrol_totp(&h, email).await;
    let wrong = crate::SecondFactorCode::totp("000000");
    let (mut counted, mut n) = (0, 20u8);
    while counted < 7 {
        n += 1;
        let challenge = challenge_for(&h, email).await;
        match redeem(&h, &challenge, &wrong, n).await {
            Err(AuthError::InvalidCode) => counted += 1,
            Err(AuthError::Locked {
                retry_after: Some(wait),
            }) => h.clock.advance(wait),
            other => panic!("unexpected {other:?}"),
        }
    }
    let r = h
        .auth
        .login(email, &Password::new(PW), false, &Harness::ctx(7))
        .await;
    assert!(
        matches!(r, Err(AuthError::Locked { retry_after: None })),
        "the hard limit requires a reset: {r:?}"
    );
    h.auth.unlock(email, &Harness::ctx(7)).await.unwrap();
    h.clock.advance(Duration::seconds(30));
    let ok = sign_in_with_totp(&h, email, &secret).await;
    assert_eq!(ok.user.email.as_str(), email);
    h.auth.shutdown().await;
    assert_eq!(h.mailer.messages_to(email, MessageKind::Lockout).len(), 1);
}

/// S6, S12: while an account's second factor is locked, redemptions are
/// still counted against the client IP (one address cannot keep hammering),
/// and a password reset clears the second-factor lock.
pub async fn a_locked_second_factor_counts_the_ip_and_a_reset_clears_it(stores: Stores) {
    let h = Harness::new(stores);
    let email = "lockedcode@example.com";
    h.verified_user(email, PW).await;
    let (secret, _) = enrol_totp(&h, email).await;
    let wrong = crate::SecondFactorCode::totp("000000");
    let challenge = challenge_for(&h, email).await;
    for _ in 0..5 {
        let r = redeem(&h, &challenge, &wrong, 30).await;
        assert!(matches!(r, Err(AuthError::InvalidCode)), "{r:?}");
    }
    let limit = h.auth.config().ip_login_limit.threshold;
    let mut refused_by_ip = false;
    for _ in 0..=limit {
        match redeem(&h, &challenge, &wrong, 31).await {
            Err(AuthError::Locked { .. }) => {}
            Err(AuthError::RateLimited { .. }) => {
                refused_by_ip = true;
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused_by_ip, "a locked second factor still counts the IP");

    let link = h.reset_token(email).await;
    let new_password = "a brand new passphrase";
    h.auth
        .reset_password(&link, &Password::new(new_password), &Harness::ctx(32))
        .await
        .unwrap();
    let outcome = h
        .auth
        .login(
            email,
            &Password::new(new_password),
            false,
            &Harness::ctx(32),
        )
        .await
        .unwrap();
    let crate::LoginOutcome::SecondFactorRequired(challenge) = outcome else {
        panic!("TOTP stays on after a reset");
    };
    h.clock.advance(Duration::seconds(30));
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    redeem(&h, &challenge, &code, 32).await.unwrap();
}

/// DESIGN 6, S15: the seam itself asks for the second factor. A method that
/// proves a first factor only (OpenID Connect here) gets a challenge, no
/// session; redeeming it records both methods and keeps remember-me. A
/// passkey counts as two factors. A sign-in without methods is refused.
pub async fn the_seam_asks_for_the_second_factor_the_methods_lack(stores: Stores) {
    let h = Harness::new(stores);
    let email = "seam@example.com";
    let id = h.verified_user(email, PW).await;
    let (secret, _) = enrol_totp(&h, email).await;
    let live = |h: &Harness| {
        let sessions = Arc::clone(&h.stores.sessions);
        let now = h.clock.now();
        async move { sessions.list_user_sessions(id, now).await.unwrap().len() }
    };
    let before = live(&h).await;
    let oidc = AuthMethod::Oidc {
        issuer: "https://id.example.com".into(),
    };
    let proof = crate::SignIn::new(vec![oidc.clone()]).remember_me(true);
    let outcome = h.auth.sign_in(id, proof, &Harness::ctx(13)).await.unwrap();
    let crate::LoginOutcome::SecondFactorRequired(challenge) = outcome else {
        panic!("TOTP is on: the seam must ask for it");
    };
    assert_eq!(
        live(&h).await,
        before,
        "no session before the second factor"
    );
    h.clock.advance(Duration::seconds(30));
    let code = crate::SecondFactorCode::totp(totp_code(&secret, h.clock.now()));
    let ok = redeem(&h, &challenge, &code, 13).await.unwrap();
    let session = &ok.session.session;
    assert_eq!(session.methods, [oidc, AuthMethod::Totp]);
    assert_eq!(
        session.absolute_expires_at - session.created_at,
        h.auth.config().remember_me_lifetime
    );
    let passkey = crate::SignIn::new(vec![AuthMethod::Passkey]);
    let outcome = h.auth.sign_in(id, passkey, &Harness::ctx(13)).await;
    assert!(matches!(outcome, Ok(crate::LoginOutcome::SignedIn(_))));
    let none = h
        .auth
        .sign_in(id, crate::SignIn::new(Vec::new()), &Harness::ctx(13))
        .await;
    assert!(matches!(none, Err(AuthError::Internal(_))), "{none:?}");
}

/// S5, S15: the account is checked before the code: a challenge of an
/// account disabled meanwhile spends no recovery code and mails no one.
pub async fn codes_are_not_spent_for_an_account_that_cannot_sign_in(stores: Stores) {
    let h = Harness::new(stores);
    let email = "disabledcode@example.com";
    let id = h.verified_user(email, PW).await;
    let (_, codes) = enrol_totp(&h, email).await;
    let challenge = challenge_for(&h, email).await;
    h.auth.disable_user(id, &Harness::ctx(14)).await.unwrap();
    let code = crate::SecondFactorCode::recovery_code(codes[0].clone());
    let r = redeem(&h, &challenge, &code, 14).await;
    assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    let status = h.auth.second_factor_status(id).await.unwrap();
    assert_eq!(status.recovery_codes_left, 10);
    h.auth.shutdown().await;
    assert!(
        h.mailer
            .messages_to(email, MessageKind::RecoveryCodeUsed)
            .is_empty()
    );
}

/// S5, S15: turning TOTP on ends the user's other sessions, which were signed
/// in with the password alone.
pub async fn enabling_totp_ends_the_other_sessions(stores: Stores) {
    let h = Harness::new(stores);
    let email = "othersessions@example.com";
    h.verified_user(email, PW).await;
    let elsewhere = h.login(email, PW).await;
    h.auth.authenticate(&elsewhere).await.unwrap();
    enrol_totp(&h, email).await;
    let r = h.auth.authenticate(&elsewhere).await;
    assert!(matches!(r, Err(AuthError::Unauthenticated)), "{r:?}");
}

/// S5, S15: the session that turned TOTP on stays signed in (it proved the
/// authenticator), and a password change from it rotates it like any other:
/// the change is stored, a new session replaces it, the owner is mailed.
pub async fn the_session_that_turned_totp_on_can_change_the_password(stores: Stores) {
    let h = Harness::new(stores);
    let email = "enabler@example.com";
    let id = h.verified_user(email, PW).await;
    let token = h.login(email, PW).await;
    let me = h.auth.authenticate(&token).await.unwrap();
    let enrolment = h.auth.start_totp(&me, &Harness::ctx(7)).await.unwrap();
    let code = totp_code(&enrolment.secret, h.clock.now());
    h.auth
        .confirm_totp(&me, &code, &Harness::ctx(7))
        .await
        .unwrap();
    let new_password = "a passphrase after totp";
    let changed = h
        .auth
        .change_password(
            &token,
            &Password::new(PW),
            &Password::new(new_password),
            &Harness::ctx(7),
        )
        .await
        .unwrap_or_else(|e| panic!("the change from the enabling session: {e:?}"));
    assert_eq!(
        h.auth
            .authenticate(&changed.session.token)
            .await
            .unwrap()
            .user
            .id,
        id
    );
    h.auth.shutdown().await;
    assert_eq!(
        h.mailer
            .messages_to(email, MessageKind::PasswordChanged)
            .len(),
        1
    );
    let outcome = h
        .auth
        .login(email, &Password::new(new_password), false, &Harness::ctx(7))
        .await
        .unwrap();
    assert!(
        matches!(outcome, crate::LoginOutcome::SecondFactorRequired(_)),
        "the new password alone still asks for the code"
    );
}

/// S15: an administrator removes the second factor of an owner who lost the
/// authenticator and the codes; the owner is mailed and signs in with the
/// password alone.
pub async fn an_administrator_removes_a_lost_second_factor(stores: Stores) {
    let h = Harness::new(stores);
    let email = "lostphone@example.com";
    let id = h.verified_user(email, PW).await;
    enrol_totp(&h, email).await;
    let ctx = Harness::ctx(15);
    assert!(h.auth.remove_second_factor(id, &ctx).await.unwrap());
    let status = h.auth.second_factor_status(id).await.unwrap();
    assert!(!status.totp_enabled && status.recovery_codes_left == 0);
    assert!(!h.auth.remove_second_factor(id, &ctx).await.unwrap());
    h.login(email, PW).await;
    h.auth.shutdown().await;
    let mails = h
        .mailer
        .messages_to(email, MessageKind::SecondFactorChanged);
    assert_eq!(mails.len(), 2, "turned on, then off");
}

/// S12: granting and revoking a role answer whether they changed anything and
/// each writes an audit event with the user, the role, and the request's IP,
/// user agent and id; the engine lists the roles in order.
pub async fn roles_are_granted_revoked_and_audited(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("roles@example.com", PW).await;
    let (admin, editor) = (Role::new("admin").unwrap(), Role::new("editor").unwrap());
    let ctx = Harness::ctx(21);
    assert!(h.auth.grant_role(id, &editor, &ctx).await.unwrap());
    assert!(h.auth.grant_role(id, &admin, &ctx).await.unwrap());
    assert!(!h.auth.grant_role(id, &admin, &ctx).await.unwrap());
    assert_eq!(
        h.auth.roles(id).await.unwrap(),
        [admin.clone(), editor.clone()]
    );
    assert!(h.auth.revoke_role(id, &editor, &ctx).await.unwrap());
    assert_eq!(
        h.auth.roles(id).await.unwrap(),
        std::slice::from_ref(&admin)
    );
    assert!(matches!(
        h.auth.grant_role(UserId::new_random(), &admin, &ctx).await,
        Err(AuthError::Internal(_))
    ));
    let events = h.stores.audit.events_for_user(id, 20).await.unwrap();
    let role_events: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::RoleGranted | AuditKind::RoleRevoked))
        .collect();
    assert_eq!(role_events.len(), 4, "{role_events:?}");
    let revoked = role_events[0];
    assert_eq!(revoked.kind, AuditKind::RoleRevoked);
    assert_eq!(
        (
            revoked.detail.as_deref(),
            revoked.ip,
            revoked.user_agent.as_deref(),
            revoked.request_id.as_deref()
        ),
        (
            Some("editor"),
            ctx.ip,
            ctx.user_agent.as_deref(),
            ctx.request_id.as_deref()
        )
    );
}
