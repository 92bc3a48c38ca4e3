//! [`RoleStore`] on the `user_roles` table.

use async_trait::async_trait;
use auth_core::store::{Role, RoleStore, StoreError, UserId};
use time::OffsetDateTime;

use crate::PgStore;
use crate::error::InvalidRow;

/// Of concurrent grants of one role, the primary key lets exactly one insert.
pub(crate) const GRANT_ROLE: &str = "\
INSERT INTO {schema}.user_roles (user_id, role, granted_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id, role) DO NOTHING";

pub(crate) const REVOKE_ROLE: &str =
    "DELETE FROM {schema}.user_roles WHERE user_id = $1 AND role = $2";

/// In the primary key's order ("C" collation: `Role`'s order).
pub(crate) const USER_ROLES: &str =
    "SELECT role FROM {schema}.user_roles WHERE user_id = $1 ORDER BY role";

#[async_trait]
impl RoleStore for PgStore {
    async fn grant_role(
        &self,
        user: UserId,
        role: &Role,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .run_for_user(
                sqlx::query(self.sql.grant_role.clone())
                    .bind(user.0)
                    .bind(role.as_str())
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_role(&self, user: UserId, role: &Role) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.revoke_role.clone())
                    .bind(user.0)
                    .bind(role.as_str())
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn user_roles(&self, user: UserId) -> Result<Vec<Role>, StoreError> {
        let names: Vec<String> = self
            .run(
                sqlx::query_scalar(self.sql.user_roles.clone())
                    .bind(user.0)
                    .fetch_all(&self.pool),
            )
            .await?;
        names
            .into_iter()
            .map(|name| Role::new(name.as_str()).map_err(|_| InvalidRow::error("role", &name)))
            .collect()
    }
}
