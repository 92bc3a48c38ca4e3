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
use crate::store::{AttemptKey, AttemptScope, AuditKind, UserId};
use crate::{Auth, AuthConfig, AuthError, OpaqueToken, Password, RequestContext, SecretKey};

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
            .tokens(Arc::clone(&stores.tokens))
            .sessions(Arc::clone(&stores.sessions))
            .attempts(Arc::clone(&stores.attempts))
            .audit(Arc::clone(&stores.audit))
            .mailer(Arc::new(mailer.clone()))
            .clock(Arc::new(clock.clone()))
            .hasher(hasher)
            .secret_key(SecretKey::new([42u8; 32]).unwrap_or_else(|e| panic!("{e}")))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
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
        ok.unwrap_or_else(|e| panic!("login: {e}")).session.token
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
                            got.push(ok.session.token);
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
