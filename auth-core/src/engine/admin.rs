//! Administrative actions: unlock, disable, enable (S5, S6).

use super::{Auth, RequestContext};
use crate::EmailAddress;
use crate::error::AuthError;
use crate::store::{AttemptKey, AttemptScope, AuditKind, UserId};

impl Auth {
    /// Clears an account's lockout: its failure counter and, if it reached the
    /// hard limit, the reset requirement.
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
        if let Some(user) = &user
            && user.reset_required_at.is_some()
        {
            e.users.set_reset_required(user.id, None, e.now()).await?;
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

    /// Disables an account: it can no longer log in and every session is revoked
    /// at once.
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
        e.sessions.revoke_user_sessions(user_id, None, now).await?;
        e.audit(AuditKind::AccountDisabled, ctx, Some(user_id), None, None)
            .await;
        Ok(())
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
}
