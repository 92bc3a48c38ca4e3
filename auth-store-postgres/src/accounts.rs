//! [`AccountReader`] on PostgreSQL: the user, their password and whether a
//! second factor is confirmed, in one statement (three primary-key or unique
//! index probes) where reading them through the three stores takes three.

use async_trait::async_trait;
use auth_core::PasswordHashString;
use auth_core::store::{Account, AccountReader, PasswordCredential, StoreError, User, UserId};
use sqlx::SqlStr;
use time::OffsetDateTime;

use crate::PgStore;
use crate::users::UserRow;

/// The statement's head: the columns of [`AccountRow`], from a user joined
/// with its credentials.
macro_rules! account_select {
    () => {
        "SELECT u.id, u.email, u.email_normalized, u.email_verified_at, u.created_at, \
         u.updated_at, u.disabled_at, u.reset_required_at, p.hash, p.changed_at, \
         t.confirmed_at IS NOT NULL AS second_factor \
         FROM {schema}.users u \
         LEFT JOIN {schema}.password_credentials p ON p.user_id = u.id \
         LEFT JOIN {schema}.totp_credentials t ON t.user_id = u.id "
    };
}

pub(crate) const ACCOUNT_BY_EMAIL: &str =
    concat!(account_select!(), "WHERE u.email_normalized = $1");

pub(crate) const ACCOUNT_BY_ID: &str = concat!(account_select!(), "WHERE u.id = $1");

/// A user row with its credentials' columns.
#[derive(sqlx::FromRow)]
struct AccountRow {
    #[sqlx(flatten)]
    user: UserRow,
    hash: Option<String>,
    changed_at: Option<OffsetDateTime>,
    second_factor: bool,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
        let password = row
            .hash
            .zip(row.changed_at)
            .map(|(hash, changed_at)| PasswordCredential {
                hash: PasswordHashString::new(hash),
                changed_at,
            });
        Account::new(User::from(row.user), password, row.second_factor)
    }
}

impl PgStore {
    async fn account_where(
        &self,
        statement: SqlStr,
        bind: impl for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = self
            .run(
                sqlx::query_as(statement)
                    .bind(bind)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(Account::from))
    }
}

#[async_trait]
impl AccountReader for PgStore {
    async fn account_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<Account>, StoreError> {
        self.account_where(
            self.sql.account_by_email.clone(),
            email_normalized.to_owned(),
        )
        .await
    }

    async fn account(&self, id: UserId) -> Result<Option<Account>, StoreError> {
        self.account_where(self.sql.account_by_id.clone(), id.0)
            .await
    }
}
