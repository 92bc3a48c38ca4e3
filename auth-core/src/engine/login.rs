//! The password method: login, and the password check it shares with
//! password change and re-authentication (S2, S3, S5, S6).

use std::sync::Arc;

use super::limits::{ClientLimits, Reservation};
use super::sign_in::{LoginOutcome, SignIn};
use super::{Auth, Engine, RequestContext};
use crate::error::AuthError;
use crate::password::NormalizedPassword;

use crate::store::{Account, AttemptKey, AttemptScope, AttemptState, AuditKind, AuthMethod, User};
use crate::{EmailAddress, Password, PasswordHashString};

/// The outcome of checking a password under the account's lockout.
pub(super) enum PasswordCheck {
    /// Right password for this account, with the hash it matched.
    Valid(Account, PasswordHashString, NormalizedPassword),
    /// Wrong password, unknown account, no password, or one over the caps.
    Invalid(Option<User>),
}

impl Auth {
    /// Logs in with email and password: the password method's first factor.
    /// A user without a second factor is signed in ([`Auth::sign_in`]); one
    /// with TOTP gets a [`super::SecondFactorChallenge`] to redeem with
    /// [`Auth::complete_second_factor`].
    ///
    /// Unknown email, wrong password and a password over the caps take the same
    /// path: one argon2 computation (a dummy one when there is no hash to check),
    /// one failure counted for the normalised email (known or not) and the client
    /// IP, and [`AuthError::InvalidCredentials`] (S3). While the account is locked,
    /// attempts are refused with the same hashing work and are not counted, so they
    /// do not extend the lock (S6). A success clears the account's counter and
    /// upgrades an outdated hash (S2); the session (or challenge) is bound to
    /// the hash that was checked (S5).
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`], [`AuthError::Locked`],
    /// [`AuthError::RateLimited`] (per IP), [`AuthError::EmailNotVerified`] (right
    /// password, unverified address), [`AuthError::Unavailable`].
    #[tracing::instrument(name = "login", skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AuthError> {
        let e = &self.inner;
        // Under a flood, refuse before any store round trip (S13).
        e.hasher.check_capacity()?;
        let email = EmailAddress::parse(email);
        // The client's counters and the account's, read in one store call.
        let key = email.as_ref().ok().map(|e| login_key(e.normalized()));
        let read = e
            .check_client(
                AttemptScope::Login,
                ClientLimits::login(&e.config),
                ctx,
                key.as_ref(),
            )
            .await?;
        let Ok(email) = email else {
            // No account can have this address: same work and answer as an
            // unknown one. The failure is counted for the client before the
            // hash, so a caller that stops waiting cannot skip the count (S6).
            let place = e.hasher.reserve()?;
            e.count_ip(AttemptScope::Login, ClientLimits::login(&e.config), ctx)
                .await?;
            place.verify_dummy().await?;
            e.audit(
                AuditKind::LoginFailed,
                ctx,
                None,
                None,
                Some("invalid_email"),
            )
            .await;
            return Err(AuthError::InvalidCredentials);
        };
        let account = e.accounts.account_by_email(email.normalized()).await?;
        let (account, hash, password) = match e
            .check_password(email.normalized(), account, password, read, ctx)
            .await?
        {
            PasswordCheck::Valid(account, hash, password) => (account, hash, password),
            PasswordCheck::Invalid(user) => {
                let id = user.as_ref().map(|u| u.id);
                let reason = if id.is_some() {
                    "wrong_password"
                } else {
                    "unknown_account"
                };
                e.audit(
                    AuditKind::LoginFailed,
                    ctx,
                    id,
                    Some(email.normalized()),
                    Some(reason),
                )
                .await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        let user = &account.user;
        if user.disabled_at.is_some() {
            e.audit(
                AuditKind::LoginFailed,
                ctx,
                Some(user.id),
                None,
                Some("disabled"),
            )
            .await;
            return Err(AuthError::InvalidCredentials);
        }
        if e.config.require_verified_email && user.email_verified_at.is_none() {
            e.audit(
                AuditKind::LoginFailed,
                ctx,
                Some(user.id),
                None,
                Some("email_not_verified"),
            )
            .await;
            return Err(AuthError::EmailNotVerified);
        }
        // Bound to the hash now stored, which a rehash may just have replaced.
        let hash = e.rehash_if_needed(user, hash, &password, ctx).await;
        let proof = SignIn::new(vec![AuthMethod::Password])
            .remember_me(remember_me)
            .bound_to(e.password_binding(&hash))
            .second_factor_read(account.second_factor);
        self.sign_in(user.id, proof, ctx).await
    }
}

/// The counter of password attempts at an account (S6).
fn login_key(email_normalized: &str) -> AttemptKey {
    AttemptKey::Account(AttemptScope::Login, email_normalized.to_owned())
}

impl Engine {
    /// Checks a password for the account keyed by `email_normalized` (the user may
    /// not exist) under its lockout, doing exactly one argon2 computation on every
    /// path. Failures are counted; a success clears the counter. `read` is the
    /// account counter's state when the caller read it already. The check runs
    /// to its end even when the caller stops waiting ([`Engine::to_the_end`]).
    ///
    /// # Errors
    /// [`AuthError::Locked`] while locked or after the hard limit,
    /// [`AuthError::Unavailable`].
    pub(super) async fn check_password(
        self: &Arc<Self>,
        email_normalized: &str,
        account: Option<Account>,
        password: &Password,
        read: Option<AttemptState>,
        ctx: &RequestContext,
    ) -> Result<PasswordCheck, AuthError> {
        let email = email_normalized.to_owned();
        // A copy the task owns; zeroed when dropped, as the caller's is.
        let password = Password::new(password.expose_secret());
        let ctx = ctx.clone();
        self.to_the_end(move |e| async move {
            e.check_password_counted(&email, account, &password, read, &ctx)
                .await
        })
        .await
    }

    /// [`Engine::check_password`]'s work, from the count to its follow-up.
    async fn check_password_counted(
        &self,
        email_normalized: &str,
        account: Option<Account>,
        password: &Password,
        read: Option<AttemptState>,
        ctx: &RequestContext,
    ) -> Result<PasswordCheck, AuthError> {
        let key = login_key(email_normalized);
        // The hash's place first: an attempt refused for overload (S13) after
        // it was counted would count against the account's owner.
        let place = self.hasher.reserve()?;
        // The attempt is counted before the password is checked, in one atomic
        // step with the lockout's verdict, so concurrent guesses cannot all be
        // checked against one unlocked state (S6).
        let counted = match self
            .reserve_attempt(&key, &self.config.account_lockout, read)
            .await?
        {
            Reservation::Counted(counted) => counted,
            Reservation::Locked(retry_after) => {
                place.verify_dummy().await?;
                // Not counted against the account (that would extend the lock),
                // but against the client's IP: otherwise one address could send
                // unlimited logins, each costing an argon2 run, at a locked
                // account (S6).
                self.count_ip(AttemptScope::Login, ClientLimits::login(&self.config), ctx)
                    .await?;
                let id = account.as_ref().map(|a| a.user.id);
                self.audit(
                    AuditKind::LoginLocked,
                    ctx,
                    id,
                    Some(email_normalized),
                    None,
                )
                .await;
                return Err(AuthError::Locked {
                    retry_after: Some(retry_after),
                });
            }
        };
        let stored = account
            .as_ref()
            .and_then(|a| a.password.as_ref())
            .map(|p| p.hash.clone());
        let normalized = self.policy.normalize(password).ok();
        let verified = match (&stored, normalized) {
            (Some(hash), Some(password)) => {
                place.verify(&password, hash).await?.then_some(password)
            }
            // Unknown account, no password, or over the caps: the same work.
            _ => {
                place.verify_dummy().await?;
                None
            }
        };
        match (account, stored.zip(verified)) {
            (Some(account), Some(_)) if account.user.reset_required_at.is_some() => {
                // The right password is no failed guess; the reset requirement
                // is the lock now.
                self.attempts.clear(&key).await?;
                self.audit(
                    AuditKind::LoginLocked,
                    ctx,
                    Some(account.user.id),
                    None,
                    Some("reset_required"),
                )
                .await;
                Err(AuthError::Locked { retry_after: None })
            }
            (Some(account), Some((hash, password))) => {
                self.attempts.clear(&key).await?;
                Ok(PasswordCheck::Valid(account, hash, password))
            }
            (account, _) => {
                let user = account.map(|a| a.user);
                self.count_failure(counted, user.as_ref(), false, ctx)
                    .await?;
                Ok(PasswordCheck::Invalid(user))
            }
        }
    }

    /// Follows up a failed password check, already counted for the account as
    /// `counted`: counts it for the client IP, mails the owner when the account
    /// locks, and requires a reset at the hard limit.
    pub(super) async fn count_failure(
        &self,
        counted: AttemptState,
        user: Option<&User>,
        second_factor: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let now = self.now();
        self.count_ip(AttemptScope::Login, ClientLimits::login(&self.config), ctx)
            .await?;
        let Some(user) = user else { return Ok(()) };
        if counted.count == self.config.account_lockout.threshold {
            self.send(self.mail.lockout(user.email.as_str(), second_factor));
            self.audit(AuditKind::AccountLocked, ctx, Some(user.id), None, None)
                .await;
        }
        if counted.count >= self.config.reset_required_after && user.reset_required_at.is_none() {
            self.users
                .set_reset_required(user.id, Some(now), now)
                .await?;
            self.user_changed(user.id).await?;
            self.audit(AuditKind::ResetRequired, ctx, Some(user.id), None, None)
                .await;
        }
        Ok(())
    }

    /// Replaces an outdated hash after a successful check (S2), and returns
    /// the hash now stored: the new one, or `hash` when none was needed, the
    /// upgrade failed (logged; the login goes on) or the password changed
    /// meanwhile (then the sign-in's binding check refuses it).
    async fn rehash_if_needed(
        &self,
        user: &User,
        hash: PasswordHashString,
        password: &NormalizedPassword,
        ctx: &RequestContext,
    ) -> PasswordHashString {
        if !self.hasher.needs_rehash(&hash) {
            return hash;
        }
        let result = async {
            let new = self.hasher.hash(password).await?;
            let replaced = self
                .passwords
                .replace_password_hash(user.id, &hash, &new)
                .await?;
            Ok::<_, AuthError>(replaced.then_some(new))
        }
        .await;
        match result {
            Ok(Some(new)) => {
                self.audit(AuditKind::PasswordRehashed, ctx, Some(user.id), None, None)
                    .await;
                new
            }
            Ok(None) => hash,
            Err(err) => {
                tracing::warn!(error = %err, "upgrading a password hash failed");
                hash
            }
        }
    }
}
