//! Login, and the password check it shares with password change (S2, S3, S5, S6).

use super::limits::{ClientLimits, Reservation};
use super::{Auth, Engine, LoginSuccess, RequestContext};
use crate::error::AuthError;
use crate::password::NormalizedPassword;
use crate::store::{AttemptKey, AttemptScope, AttemptState, AuditKind, User};
use crate::{EmailAddress, Password};

/// The outcome of checking a password under the account's lockout.
pub(super) enum PasswordCheck {
    /// Right password for this user.
    Valid(User, NormalizedPassword),
    /// Wrong password, unknown account, or a password over the caps.
    Invalid(Option<User>),
}

impl Auth {
    /// Logs in with email and password and creates a session.
    ///
    /// Unknown email, wrong password and a password over the caps take the same
    /// path: one argon2 computation (a dummy one when there is no hash to check),
    /// one failure counted for the normalised email (known or not) and the client
    /// IP, and [`AuthError::InvalidCredentials`] (S3). While the account is locked,
    /// attempts are refused with the same hashing work and are not counted, so they
    /// do not extend the lock (S6). A success clears the account's counter,
    /// upgrades an outdated hash (S2) and creates a session with a fresh token (S5).
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
    ) -> Result<LoginSuccess, AuthError> {
        let e = &self.inner;
        // Under a flood, refuse before any store round trip (S13).
        e.hasher.check_capacity()?;
        e.check_ip(AttemptScope::Login, ClientLimits::login(&e.config), ctx)
            .await?;
        let Ok(email) = EmailAddress::parse(email) else {
            // No account can have this address: same work and answer as an unknown one.
            e.hasher.verify_dummy().await?;
            e.count_ip(AttemptScope::Login, ClientLimits::login(&e.config), ctx)
                .await?;
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
        let user = e.users.user_by_email(email.normalized()).await?;
        let (user, password) = match e
            .check_password(email.normalized(), user, password, ctx)
            .await?
        {
            PasswordCheck::Valid(user, password) => (user, password),
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
        let session = e
            .start_session(user.id, &user.password_hash, remember_me, ctx)
            .await?;
        // After the session, whose check compares the hash it was proved with.
        e.rehash_if_needed(&user, &password, ctx).await;
        e.audit(AuditKind::LoginSucceeded, ctx, Some(user.id), None, None)
            .await;
        if e.config.notify_new_session {
            e.send(
                e.templates
                    .new_session(user.email.as_str(), ctx.ip, ctx.user_agent.as_deref()),
            );
        }
        Ok(LoginSuccess { user, session })
    }
}

impl Engine {
    /// Checks a password for the account keyed by `email_normalized` (the user may
    /// not exist) under its lockout, doing exactly one argon2 computation on every
    /// path. Failures are counted; a success clears the counter.
    ///
    /// # Errors
    /// [`AuthError::Locked`] while locked or after the hard limit,
    /// [`AuthError::Unavailable`].
    pub(super) async fn check_password(
        &self,
        email_normalized: &str,
        user: Option<User>,
        password: &Password,
        ctx: &RequestContext,
    ) -> Result<PasswordCheck, AuthError> {
        let key = AttemptKey::Account(AttemptScope::Login, email_normalized.to_owned());
        // The attempt is counted before the password is checked, in one atomic
        // step with the lockout's verdict, so concurrent guesses cannot all be
        // checked against one unlocked state (S6).
        let counted = match self
            .reserve_attempt(&key, &self.config.account_lockout)
            .await?
        {
            Reservation::Counted(counted) => counted,
            Reservation::Locked(retry_after) => {
                self.hasher.verify_dummy().await?;
                // Not counted against the account (that would extend the lock),
                // but against the client's IP: otherwise one address could send
                // unlimited logins, each costing an argon2 run, at a locked
                // account (S6).
                self.count_ip(AttemptScope::Login, ClientLimits::login(&self.config), ctx)
                    .await?;
                let id = user.as_ref().map(|u| u.id);
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
        let normalized = self.policy.normalize(password).ok();
        let verified = match (&user, normalized) {
            (Some(user), Some(password)) => self
                .hasher
                .verify(&password, &user.password_hash)
                .await?
                .then_some(password),
            _ => {
                self.hasher.verify_dummy().await?;
                None
            }
        };
        match (user, verified) {
            (Some(user), Some(_)) if user.reset_required_at.is_some() => {
                // The right password is no failed guess; the reset requirement
                // is the lock now.
                self.attempts.clear(&key).await?;
                self.audit(
                    AuditKind::LoginLocked,
                    ctx,
                    Some(user.id),
                    None,
                    Some("reset_required"),
                )
                .await;
                Err(AuthError::Locked { retry_after: None })
            }
            (Some(user), Some(password)) => {
                self.attempts.clear(&key).await?;
                Ok(PasswordCheck::Valid(user, password))
            }
            (user, _) => {
                self.count_failure(counted, user.as_ref(), ctx).await?;
                Ok(PasswordCheck::Invalid(user))
            }
        }
    }

    /// Follows up a failed password check, already counted for the account as
    /// `counted`: counts it for the client IP, mails the owner when the account
    /// locks, and requires a reset at the hard limit.
    async fn count_failure(
        &self,
        counted: AttemptState,
        user: Option<&User>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let now = self.now();
        self.count_ip(AttemptScope::Login, ClientLimits::login(&self.config), ctx)
            .await?;
        let Some(user) = user else { return Ok(()) };
        if counted.count == self.config.account_lockout.threshold {
            self.send(self.templates.lockout(user.email.as_str()));
            self.audit(AuditKind::AccountLocked, ctx, Some(user.id), None, None)
                .await;
        }
        if counted.count >= self.config.reset_required_after && user.reset_required_at.is_none() {
            self.users
                .set_reset_required(user.id, Some(now), now)
                .await?;
            self.audit(AuditKind::ResetRequired, ctx, Some(user.id), None, None)
                .await;
        }
        Ok(())
    }

    /// Replaces an outdated hash after a successful check (S2). A failure here is
    /// logged and does not fail the login.
    async fn rehash_if_needed(
        &self,
        user: &User,
        password: &NormalizedPassword,
        ctx: &RequestContext,
    ) {
        if !self.hasher.needs_rehash(&user.password_hash) {
            return;
        }
        let result = async {
            let new = self.hasher.hash(password).await?;
            Ok::<_, AuthError>(
                self.users
                    .replace_password_hash(user.id, &user.password_hash, &new, self.now())
                    .await?,
            )
        }
        .await;
        match result {
            Ok(true) => {
                self.audit(AuditKind::PasswordRehashed, ctx, Some(user.id), None, None)
                    .await;
            }
            Ok(false) => {} // the password changed meanwhile; the new hash is current
            Err(err) => tracing::warn!(error = %err, "upgrading a password hash failed"),
        }
    }
}
