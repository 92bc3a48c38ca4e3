//! [`UserStore`] on the `users` table.

use async_trait::async_trait;
use auth_core::store::{NewUser, StoreError, User, UserId, UserStore};
use auth_core::{EmailAddress, PasswordHashString};
use sqlx::SqlStr;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgStore;

/// The columns of [`UserRow`], as a literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, email, email_normalized, email_verified_at, created_at, updated_at, \
         disabled_at, reset_required_at"
    };
}

/// The user and, when `$4` is not NULL, its password credential, in one
/// statement (both rows or neither): a unique violation on the email fails the
/// whole statement.
pub(crate) const CREATE_USER: &str = concat!(
    "WITH created AS (",
    " INSERT INTO {schema}.users (id, email, email_normalized, created_at, updated_at)",
    " VALUES ($1, $2, $3, $5, $5) RETURNING ",
    user_columns!(),
    "), password AS (",
    " INSERT INTO {schema}.password_credentials (user_id, hash, changed_at)",
    " SELECT id, $4, created_at FROM created WHERE $4::text IS NOT NULL",
    ") SELECT ",
    user_columns!(),
    " FROM created"
);

pub(crate) const USER_BY_ID: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM {schema}.users WHERE id = $1"
);

pub(crate) const USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM {schema}.users WHERE email_normalized = $1"
);

pub(crate) const MARK_EMAIL_VERIFIED: &str = "\
UPDATE {schema}.users SET email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2
WHERE id = $1";

/// Tokens and sessions go with the user (ON DELETE CASCADE); served by the
/// partial index `users_unverified_created_at_idx`.
/// Credentials, tokens, sessions, challenges and roles go with the row
/// (foreign keys `ON DELETE CASCADE`).
/// One batch of the cleanup ($2 rows at most), oldest first through the
/// deadline's index, so each batch starts where the last one ended.
pub(crate) const DELETE_UNVERIFIED: &str = "\
DELETE FROM {schema}.users WHERE id = ANY(ARRAY(
  SELECT id FROM {schema}.users WHERE email_verified_at IS NULL AND created_at < $1
  ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED))
RETURNING id";
pub(crate) const DELETE_USER: &str = "DELETE FROM {schema}.users WHERE id = $1";
pub(crate) const SET_DISABLED: &str =
    "UPDATE {schema}.users SET disabled_at = $2, updated_at = $3 WHERE id = $1";

pub(crate) const SET_RESET_REQUIRED: &str =
    "UPDATE {schema}.users SET reset_required_at = $2, updated_at = $3 WHERE id = $1";

/// A `users` row.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    email_normalized: String,
    email_verified_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    disabled_at: Option<OffsetDateTime>,
    reset_required_at: Option<OffsetDateTime>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: UserId(row.id),
            email: EmailAddress::from_stored(row.email, row.email_normalized),
            email_verified_at: row.email_verified_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            disabled_at: row.disabled_at,
            reset_required_at: row.reset_required_at,
        }
    }
}

/// `Ok` when an update touched a row, else [`StoreError::NotFound`].
fn found(rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl PgStore {
    /// Sets (or clears, with `None`) one of the user's markers (`SET_DISABLED`,
    /// `SET_RESET_REQUIRED`: the statement binds id, marker time, update time).
    async fn set_marker(
        &self,
        statement: SqlStr,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let done = self
            .run(
                sqlx::query(statement)
                    .bind(id.0)
                    .bind(at)
                    .bind(now)
                    .execute(&self.pool),
            )
            .await?;
        found(done.rows_affected())
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn delete_unverified_users(
        &self,
        created_before: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError> {
        let ids = self
            .delete_ids_in_batches(&self.sql.delete_unverified, created_before)
            .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.delete_user.clone())
                    .bind(id.0)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let row: UserRow = self
            .run(
                sqlx::query_as(self.sql.create_user.clone())
                    .bind(user.id.0)
                    .bind(user.email.as_str())
                    .bind(user.email.normalized())
                    .bind(user.password_hash.as_ref().map(PasswordHashString::as_str))
                    .bind(user.created_at)
                    .fetch_one(&self.pool),
            )
            .await?;
        Ok(row.into())
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = self
            .run(
                sqlx::query_as(self.sql.user_by_id.clone())
                    .bind(id.0)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(User::from))
    }

    async fn user_by_email(&self, email_normalized: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = self
            .run(
                sqlx::query_as(self.sql.user_by_email.clone())
                    .bind(email_normalized)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(User::from))
    }

    async fn mark_email_verified(&self, id: UserId, at: OffsetDateTime) -> Result<(), StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.mark_email_verified.clone())
                    .bind(id.0)
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        found(done.rows_affected())
    }

    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.set_marker(self.sql.set_disabled.clone(), id, at, now)
            .await
    }

    async fn set_reset_required(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.set_marker(self.sql.set_reset_required.clone(), id, at, now)
            .await
    }
}
