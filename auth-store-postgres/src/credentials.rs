//! [`PasswordStore`], [`TotpStore`] and [`RecoveryCodeStore`] on the
//! `password_credentials`, `totp_credentials` and `recovery_codes` tables.
//! Every compare-and-swap or single use is one UPDATE whose WHERE holds the
//! condition: of concurrent writers of one row, the row lock lets one update
//! it, and the others re-check the condition after it commits and find
//! nothing to do.

use async_trait::async_trait;
use auth_core::store::{
    PasswordCredential, PasswordStore, RecoveryCodeStore, SealedSecret, StoreError, TotpCredential,
    TotpStore, UserId,
};
use auth_core::{PasswordHashString, TokenHash};
use time::OffsetDateTime;

use crate::PgStore;

/// The password lookup of every login: one primary-key probe.
pub(crate) const PASSWORD: &str =
    "SELECT hash, changed_at FROM {schema}.password_credentials WHERE user_id = $1";

/// Creates or replaces the user's password (a foreign-key violation: no user).
pub(crate) const SET_PASSWORD: &str = "\
INSERT INTO {schema}.password_credentials (user_id, hash, changed_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, changed_at = EXCLUDED.changed_at";

/// S5: only over the hash the current password was checked against.
pub(crate) const SET_PASSWORD_IF: &str = "\
UPDATE {schema}.password_credentials SET hash = $3, changed_at = $4
WHERE user_id = $1 AND hash = $2";

/// S2: a rehash replaces only the hash it was computed from; `changed_at` stays.
pub(crate) const REPLACE_PASSWORD_HASH: &str = "\
UPDATE {schema}.password_credentials SET hash = $3 WHERE user_id = $1 AND hash = $2";

pub(crate) const TOTP: &str = "\
SELECT key_id, sealed, created_at, confirmed_at, last_step FROM {schema}.totp_credentials
WHERE user_id = $1";

/// A new pending secret, or one replacing a pending (never a confirmed) one.
pub(crate) const PUT_PENDING_TOTP: &str = "\
INSERT INTO {schema}.totp_credentials (user_id, key_id, sealed, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE
SET key_id = EXCLUDED.key_id, sealed = EXCLUDED.sealed, created_at = EXCLUDED.created_at,
    confirmed_at = NULL, last_step = NULL
WHERE totp_credentials.confirmed_at IS NULL";

/// Confirms the pending secret only if it is still the one the code was
/// checked against.
pub(crate) const CONFIRM_TOTP: &str = "\
UPDATE {schema}.totp_credentials SET confirmed_at = $5, last_step = $4
WHERE user_id = $1 AND confirmed_at IS NULL AND key_id = $2 AND sealed = $3";

/// S15: a step is accepted once, and only after the last accepted one.
pub(crate) const ACCEPT_TOTP_STEP: &str = "\
UPDATE {schema}.totp_credentials SET last_step = $2
WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)";

pub(crate) const DELETE_TOTP: &str = "DELETE FROM {schema}.totp_credentials WHERE user_id = $1";

/// Locks the user's row, so concurrent replacements of one user's codes run
/// one after the other and the last one leaves exactly its own codes; no row
/// means no user.
pub(crate) const LOCK_USER: &str = "SELECT 1 FROM {schema}.users WHERE id = $1 FOR NO KEY UPDATE";

pub(crate) const DELETE_RECOVERY_CODES: &str =
    "DELETE FROM {schema}.recovery_codes WHERE user_id = $1";

pub(crate) const INSERT_RECOVERY_CODES: &str = "\
INSERT INTO {schema}.recovery_codes (user_id, code_hash, created_at)
SELECT $1, code, $3 FROM unnest($2::bytea[]) AS code";

/// S15: a code is used once.
pub(crate) const USE_RECOVERY_CODE: &str = "\
UPDATE {schema}.recovery_codes SET used_at = $3
WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";

pub(crate) const RECOVERY_CODES_LEFT: &str =
    "SELECT count(*) FROM {schema}.recovery_codes WHERE user_id = $1 AND used_at IS NULL";

/// A `totp_credentials` row.
#[derive(sqlx::FromRow)]
struct TotpRow {
    key_id: String,
    sealed: Vec<u8>,
    created_at: OffsetDateTime,
    confirmed_at: Option<OffsetDateTime>,
    last_step: Option<i64>,
}

impl From<TotpRow> for TotpCredential {
    fn from(row: TotpRow) -> Self {
        Self {
            secret: SealedSecret {
                key_id: row.key_id,
                sealed: row.sealed,
            },
            created_at: row.created_at,
            confirmed_at: row.confirmed_at,
            last_step: row.last_step,
        }
    }
}

#[async_trait]
impl PasswordStore for PgStore {
    async fn password(&self, user: UserId) -> Result<Option<PasswordCredential>, StoreError> {
        let row: Option<(String, OffsetDateTime)> = self
            .run(
                sqlx::query_as(self.sql.password.clone())
                    .bind(user.0)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(|(hash, changed_at)| PasswordCredential {
            hash: PasswordHashString::new(hash),
            changed_at,
        }))
    }

    async fn set_password(
        &self,
        user: UserId,
        hash: &PasswordHashString,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.run_for_user(
            sqlx::query(self.sql.set_password.clone())
                .bind(user.0)
                .bind(hash.as_str())
                .bind(at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn set_password_if(
        &self,
        user: UserId,
        expected: &PasswordHashString,
        hash: &PasswordHashString,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.set_password_if.clone())
                    .bind(user.0)
                    .bind(expected.as_str())
                    .bind(hash.as_str())
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn replace_password_hash(
        &self,
        user: UserId,
        old: &PasswordHashString,
        new: &PasswordHashString,
    ) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.replace_password_hash.clone())
                    .bind(user.0)
                    .bind(old.as_str())
                    .bind(new.as_str())
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl TotpStore for PgStore {
    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError> {
        let row: Option<TotpRow> = self
            .run(
                sqlx::query_as(self.sql.totp.clone())
                    .bind(user.0)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(TotpCredential::from))
    }

    async fn put_pending_totp(
        &self,
        user: UserId,
        secret: &SealedSecret,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .run_for_user(
                sqlx::query(self.sql.put_pending_totp.clone())
                    .bind(user.0)
                    .bind(secret.key_id.as_str())
                    .bind(secret.sealed.as_slice())
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        secret: &SealedSecret,
        step: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.confirm_totp.clone())
                    .bind(user.0)
                    .bind(secret.key_id.as_str())
                    .bind(secret.sealed.as_slice())
                    .bind(step)
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn accept_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.accept_totp_step.clone())
                    .bind(user.0)
                    .bind(step)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_totp(&self, user: UserId) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.delete_totp.clone())
                    .bind(user.0)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl RecoveryCodeStore for PgStore {
    /// One transaction under the user's row lock: the old codes go, the new
    /// ones come, and nobody sees a mix.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let codes: Vec<Vec<u8>> = codes.iter().map(|c| c.0.to_vec()).collect();
        let replaced = self
            .run_for_user(async {
                let mut tx = self.pool.begin().await?;
                let known = sqlx::query(self.sql.lock_user.clone())
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !known {
                    return Ok(false);
                }
                sqlx::query(self.sql.delete_recovery_codes.clone())
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(self.sql.insert_recovery_codes.clone())
                    .bind(user.0)
                    .bind(&codes)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            })
            .await?;
        if replaced {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.use_recovery_code.clone())
                    .bind(user.0)
                    .bind(code.0)
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        let left: i64 = self
            .run(
                sqlx::query_scalar(self.sql.recovery_codes_left.clone())
                    .bind(user.0)
                    .fetch_one(&self.pool),
            )
            .await?;
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }
}
