//! User roles: grants and revocations, audited (S12), and the roles an
//! authorization check reads.

use super::{Auth, Engine, RequestContext};
use crate::error::AuthError;
use crate::store::{AuditKind, Role, UserId};

/// A change of a user's roles.
#[derive(Debug, Clone, Copy)]
enum RoleChange {
    Grant,
    Revoke,
}

impl Auth {
    /// Grants `role` to `user`: `true` when newly granted, `false` when the
    /// user had it. Audited either way, with the role as detail (S12).
    ///
    /// # Errors
    /// [`AuthError::Internal`] for an unknown user, [`AuthError::Unavailable`].
    #[tracing::instrument(name = "grant_role", skip_all, fields(user.id = %user, role = %role))]
    pub async fn grant_role(
        &self,
        user: UserId,
        role: &Role,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        self.inner
            .change_role(RoleChange::Grant, user, role, ctx)
            .await
    }

    /// Revokes `role` from `user`: `true` when the user had it. Audited either
    /// way, with the role as detail (S12).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "revoke_role", skip_all, fields(user.id = %user, role = %role))]
    pub async fn revoke_role(
        &self,
        user: UserId,
        role: &Role,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        self.inner
            .change_role(RoleChange::Revoke, user, role, ctx)
            .await
    }

    /// The user's roles, sorted (empty for an unknown user).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    pub async fn roles(&self, user: UserId) -> Result<Vec<Role>, AuthError> {
        Ok(self.inner.roles.user_roles(user).await?)
    }
}

impl Engine {
    /// The one place a user's roles change: the write, then its audit event.
    async fn change_role(
        &self,
        change: RoleChange,
        user: UserId,
        role: &Role,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        let (changed, kind) = match change {
            RoleChange::Grant => (
                self.roles.grant_role(user, role, self.now()).await?,
                AuditKind::RoleGranted,
            ),
            RoleChange::Revoke => (
                self.roles.revoke_role(user, role).await?,
                AuditKind::RoleRevoked,
            ),
        };
        self.audit(kind, ctx, Some(user), None, Some(role.as_str()))
            .await;
        Ok(changed)
    }
}
