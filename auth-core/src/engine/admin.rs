//! Administrative actions: unlock, disable, enable (S5, S6).

use super::{Auth, RequestContext};
use crate::EmailAddress;
use crate::error::AuthError;
use crate::store::{AttemptKey, AttemptScope, AuditKind, UserId};
use crate::token::TokenPurpose;

impl Auth {
    /// Clears an account's lockout: its password and second-factor failure
    /// counters and, if it reached the hard limit, the reset requirement.
    ///
    /// # Errors
    /// [`AuthError::InvalidEmail`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "unlock", skip_all)]
    pub async fn unlock(&self, email: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        let e = &self.inner;
        let email = EmailAddress::parse(email)?;
        e.attempts
            .clear(&AttemptKey::Account(
                AttemptScope::Login,
                email.normalized().to_owned(),
            ))
            .await?;
        let user = e.users.user_by_email(email.normalized()).await?;
        if let Some(user) = &user {
            e.attempts
                .clear(&AttemptKey::Account(
                    AttemptScope::SecondFactor,
                    user.id.to_string(),
                ))
                .await?;
            if user.reset_required_at.is_some() {
                e.users.set_reset_required(user.id, None, e.now()).await?;
                e.user_changed(user.id).await?;
            }
        }
        e.audit(
            AuditKind::AccountUnlocked,
            ctx,
            user.map(|u| u.id),
            Some(email.normalized()),
            None,
        )
        .await;
        Ok(())
    }

    /// Disables an account: it can no longer log in, every session is revoked
    /// at once, and its outstanding reset and verification links die (S5).
    ///
    /// # Errors
    /// [`AuthError::Internal`] for an unknown id, [`AuthError::Unavailable`].
    #[tracing::instrument(name = "disable_user", skip_all)]
    pub async fn disable_user(
        &self,
        user_id: UserId,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let now = e.now();
        e.users.set_disabled(user_id, Some(now), now).await?;
        e.user_changed(user_id).await?;
        for purpose in [TokenPurpose::PasswordReset, TokenPurpose::EmailVerification] {
            e.tokens.revoke_tokens(user_id, purpose, now).await?;
        }
        e.sessions.revoke_user_sessions(user_id, None, now).await?;
        e.audit(AuditKind::AccountDisabled, ctx, Some(user_id), None, None)
            .await;
        Ok(())
    }

    /// Deletes an account and everything the stores keep of it (its sessions
    /// end first, wherever they are stored); its address is free again.
    /// Audited; [`crate::hooks::LifecycleHooks::user_deleted`] tells the
    /// application. Whether the account existed.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "delete_user", skip_all)]
    pub async fn delete_user(
        &self,
        user_id: UserId,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        let e = &self.inner;
        // The row goes first: a sign-in racing the deletion then finds no
        // user when it re-reads the account, and a session made before it
        // ends here, with its cached snapshot (S5).
        let existed = e.users.delete_user(user_id).await?;
        e.sessions
            .revoke_user_sessions(user_id, None, e.now())
            .await?;
        e.user_changed(user_id).await?;
        if !existed {
            return Ok(false);
        }
        e.audit(AuditKind::AccountDeleted, ctx, Some(user_id), None, None)
            .await;
        e.hook("user_deleted", ctx, e.hooks.user_deleted(user_id))
            .await;
        Ok(true)
    }

    /// Removes a user's second factor (TOTP and recovery codes) on an
    /// administrator's behalf, for an owner who lost both the authenticator
    /// and the codes, once the administrator has checked who they are by other
    /// means. The owner is mailed; the next sign-in needs the password alone.
    /// Whether the user had one.
    ///
    /// # Errors
    /// [`AuthError::TokenInvalid`] for an unknown user, [`AuthError::Unavailable`].
    #[tracing::instrument(name = "remove_second_factor", skip_all)]
    pub async fn remove_second_factor(
        &self,
        user_id: UserId,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        let e = &self.inner;
        let user = e
            .users
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::TokenInvalid)?;
        e.remove_second_factor(&user, ctx, "admin").await
    }

    /// Enables a disabled account again (its old sessions stay revoked).
    ///
    /// # Errors
    /// [`AuthError::Internal`] for an unknown id, [`AuthError::Unavailable`].
    #[tracing::instrument(name = "enable_user", skip_all)]
    pub async fn enable_user(
        &self,
        user_id: UserId,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        e.users.set_disabled(user_id, None, e.now()).await?;
        e.user_changed(user_id).await?;
        e.audit(
            AuditKind::AccountUnlocked,
            ctx,
            Some(user_id),
            None,
            Some("enabled"),
        )
        .await;
        Ok(())
    }

    /// Ends every session of every user (incident response, for example after
    /// a leak of session tokens). Returns how many. Sessions created while it
    /// runs may survive on backends that revoke user by user (Redis); call it
    /// again once the cause is fixed.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "revoke_all_sessions", skip_all)]
    pub async fn revoke_all_sessions(&self, ctx: &RequestContext) -> Result<u64, AuthError> {
        let e = &self.inner;
        let revoked = e.sessions.revoke_all_sessions(e.now()).await?;
        let count = revoked.to_string();
        e.audit(AuditKind::AllSessionsRevoked, ctx, None, None, Some(&count))
            .await;
        Ok(revoked)
    }

    /// Starts a password reset for a user on an administrator's behalf (ASVS
    /// 6.4.6): mails a reset link to the address on the account, as a user's
    /// own request would (older links die). With `require`, the current
    /// password also stops working at once: the account must reset (as after
    /// the hard lockout) and every session ends.
    ///
    /// # Errors
    /// [`AuthError::TokenInvalid`] for an unknown or disabled user,
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "start_password_reset", skip_all)]
    pub async fn start_password_reset(
        &self,
        user_id: UserId,
        require: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let user = e
            .users
            .user_by_id(user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or(AuthError::TokenInvalid)?;
        if require {
            let now = e.now();
            e.users.set_reset_required(user_id, Some(now), now).await?;
            e.user_changed(user_id).await?;
            e.sessions.revoke_user_sessions(user_id, None, now).await?;
        }
        self.send_reset(&user).await?;
        let detail = if require { "required" } else { "offered" };
        e.audit(
            AuditKind::PasswordResetStartedByAdmin,
            ctx,
            Some(user_id),
            None,
            Some(detail),
        )
        .await;
        Ok(())
    }
}
