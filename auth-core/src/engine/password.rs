//! Password reset and change (S3, S4, S5, S6).

use super::login::PasswordCheck;
use super::sign_in::SignIn;
use super::{Auth, LoginSuccess, RequestContext};
use crate::error::AuthError;
use crate::password::ContextWords;
use crate::store::{AttemptKey, AttemptScope, AuditKind, TokenCheck, User};
use crate::token::{OpaqueToken, TokenPurpose};
use crate::{EmailAddress, Password};

impl Auth {
    /// Emails a password-reset link, revoking older reset links. Always answers
    /// `Ok` for a valid address, known or not, and whether or not the per-account
    /// limit suppressed the mail. The request itself only checks and counts the
    /// limits, which cost the same for every address; looking the account up,
    /// the audit record, the token and the mail happen in the background, so the
    /// response time cannot tell a known address from an unknown one (S3). The
    /// request alone changes nothing on the account. A locked account can reset.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] (per IP), [`AuthError::InvalidEmail`],
    /// [`AuthError::Unavailable`] (the attempt counters). A store failure in the
    /// background is logged, not returned: the answer is the same either way.
    #[tracing::instrument(name = "request_password_reset", skip_all)]
    pub async fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.answer_mail_request(
            AttemptScope::ResetRequest,
            email,
            ctx,
            "answering a password reset request failed",
            |auth, email, throttled, ctx| async move {
                auth.follow_reset_request(&email, throttled, &ctx).await
            },
        )
        .await
    }

    /// The background half of [`Auth::request_password_reset`]: audit, and mail
    /// a link to a known, enabled account unless the request was throttled.
    async fn follow_reset_request(
        &self,
        email: &EmailAddress,
        throttled: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let user = e
            .users
            .user_by_email(email.normalized())
            .await?
            .filter(|u| u.disabled_at.is_none());
        let detail = match (&user, throttled) {
            (None, _) => Some("unknown_account"),
            (Some(_), true) => Some("throttled"),
            (Some(_), false) => None,
        };
        e.audit(
            AuditKind::PasswordResetRequested,
            ctx,
            user.as_ref().map(|u| u.id),
            Some(email.normalized()),
            detail,
        )
        .await;
        match user {
            Some(user) if !throttled => self.send_reset(&user).await,
            _ => Ok(()),
        }
    }

    pub(super) async fn send_reset(&self, user: &User) -> Result<(), AuthError> {
        let e = &self.inner;
        e.tokens
            .revoke_tokens(user.id, TokenPurpose::PasswordReset, e.now())
            .await?;
        let token = e
            .issue_token(user.id, TokenPurpose::PasswordReset, e.config.reset_ttl)
            .await?;
        // To the stored address, never the submitted string.
        e.send(
            e.mail
                .password_reset(user.email.as_str(), &token, e.config.reset_ttl),
        );
        Ok(())
    }

    /// Sets a new password with a reset token. The new password is checked before
    /// the token is spent; the token is then used up atomically (of concurrent
    /// uses, exactly one succeeds). Every session of the user is revoked, no
    /// session is created (no automatic login), the lockout is cleared, the email
    /// counts as verified (the link proved control of it), and the owner is told
    /// by email. A disabled account's links are refused.
    ///
    /// # Errors
    /// [`AuthError::TokenInvalid`] (also for a disabled account),
    /// [`AuthError::TokenExpired`],
    /// [`AuthError::WeakPassword`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "reset_password", skip_all)]
    pub async fn reset_password(
        &self,
        token: &OpaqueToken,
        new_password: &Password,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        // Under a flood, refuse before any store round trip (S13).
        e.hasher.check_capacity()?;
        let bytes = token.decode().ok_or(AuthError::TokenInvalid)?;
        let hash = e.key.hash(TokenPurpose::PasswordReset, &bytes);
        let user_id = match e
            .tokens
            .peek_token(TokenPurpose::PasswordReset, &hash, e.now())
            .await?
        {
            TokenCheck::Valid(user_id) => user_id,
            TokenCheck::Expired => return Err(AuthError::TokenExpired),
            TokenCheck::Invalid => return Err(AuthError::TokenInvalid),
        };
        // A disabled account cannot be taken back through an old link (S5).
        let user = e
            .users
            .user_by_id(user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or(AuthError::TokenInvalid)?;
        let normalized = e.policy.validate_new(
            new_password,
            &ContextWords::new().email(user.email.as_str()),
        )?;
        let new_hash = e.hasher.hash(&normalized).await?;
        match e
            .tokens
            .consume_token(TokenPurpose::PasswordReset, &hash, e.now())
            .await?
        {
            TokenCheck::Valid(id) if id == user_id => {}
            TokenCheck::Expired => return Err(AuthError::TokenExpired),
            _ => return Err(AuthError::TokenInvalid),
        }
        let now = e.now();
        e.passwords.set_password(user.id, &new_hash, now).await?;
        if user.reset_required_at.is_some() {
            e.users.set_reset_required(user.id, None, now).await?;
        }
        if user.email_verified_at.is_none() {
            e.users.mark_email_verified(user.id, now).await?;
        }
        e.user_changed(user.id).await?;
        e.tokens
            .revoke_tokens(user.id, TokenPurpose::PasswordReset, now)
            .await?;
        e.sessions.revoke_user_sessions(user.id, None, now).await?;
        e.attempts
            .clear(&AttemptKey::Account(
                AttemptScope::Login,
                user.email.normalized().to_owned(),
            ))
            .await?;
        e.attempts
            .clear(&AttemptKey::Account(
                AttemptScope::SecondFactor,
                user.id.to_string(),
            ))
            .await?;
        e.send(e.mail.password_changed(user.email.as_str()));
        e.audit(AuditKind::PasswordReset, ctx, Some(user.id), None, None)
            .await;
        e.hook("password_changed", ctx, e.hooks.password_changed(&user))
            .await;
        Ok(())
    }

    /// Changes the password of the session's user. The current password is
    /// required and checked under the account's lockout (a wrong one counts as a
    /// failed login, S6). On success every session of the user is revoked, the
    /// current one included, and a new session replaces it (a new token: S5, no
    /// fixation) with the same remember-me choice; older reset links die (S4); the
    /// owner is told by email.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`], [`AuthError::InvalidCredentials`] (wrong
    /// current password, or the password was reset or changed after it was
    /// checked), [`AuthError::Locked`], [`AuthError::WeakPassword`],
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "change_password", skip_all)]
    pub async fn change_password(
        &self,
        session_token: &OpaqueToken,
        current_password: &Password,
        new_password: &Password,
        ctx: &RequestContext,
    ) -> Result<LoginSuccess, AuthError> {
        let e = &self.inner;
        // Under a flood, refuse before any store round trip (S13).
        e.hasher.check_capacity()?;
        let current = self.find_session(session_token).await?;
        let normalized_email = current.user.email.normalized().to_owned();
        let account = e.accounts.account(current.user.id).await?;
        let (user, checked) = match e
            .check_password(&normalized_email, account, current_password, None, ctx)
            .await?
        {
            PasswordCheck::Valid(account, hash, _) => (account.user, hash),
            PasswordCheck::Invalid(user) => {
                let id = user.map(|u| u.id);
                e.audit(
                    AuditKind::PasswordChangeFailed,
                    ctx,
                    id,
                    None,
                    Some("wrong_password"),
                )
                .await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        let context = ContextWords::new().email(user.email.as_str());
        let normalized = match e.policy.validate_new(new_password, &context) {
            Ok(normalized) => normalized,
            Err(violation) => {
                e.audit(
                    AuditKind::PasswordChangeFailed,
                    ctx,
                    Some(user.id),
                    None,
                    Some(violation.rule()),
                )
                .await;
                return Err(violation.into());
            }
        };
        let new_hash = e.hasher.hash(&normalized).await?;
        let now = e.now();
        // Only over the hash the current password was checked against: a reset
        // or another change that landed since wins (S5).
        if !e
            .passwords
            .set_password_if(user.id, &checked, &new_hash, now)
            .await?
        {
            e.audit(
                AuditKind::PasswordChangeFailed,
                ctx,
                Some(user.id),
                None,
                Some("credential_changed"),
            )
            .await;
            return Err(AuthError::InvalidCredentials);
        }
        e.user_changed(user.id).await?;
        e.tokens
            .revoke_tokens(user.id, TokenPurpose::PasswordReset, now)
            .await?;
        e.sessions.revoke_user_sessions(user.id, None, now).await?;
        let old = &current.session;
        let remember_me = old.absolute_expires_at - old.created_at > e.config.session_lifetime;
        // A new session (S5) proved like the current one, with the new password.
        let proof = SignIn::new(old.methods.clone())
            .remember_me(remember_me)
            .bound_to(e.password_binding(&new_hash));
        let (session, user) = e.start_session(user.id, &proof, ctx).await?;
        e.send(e.mail.password_changed(user.email.as_str()));
        e.audit(AuditKind::PasswordChanged, ctx, Some(user.id), None, None)
            .await;
        e.hook("password_changed", ctx, e.hooks.password_changed(&user))
            .await;
        Ok(LoginSuccess { user, session })
    }
}
