//! [`TokenStore`] on the `one_time_tokens` table.

use async_trait::async_trait;
use auth_core::store::{NewToken, StoreError, TokenCheck, TokenStore, UserId};
use auth_core::{TokenHash, TokenPurpose};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgStore;

pub(crate) const INSERT_TOKEN: &str = "\
INSERT INTO {schema}.one_time_tokens (token_hash, purpose, user_id, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5)";

/// Uses the token up if it is unused and `$3 <= expires_at`, in one statement:
/// of concurrent consumers, the row lock lets exactly one update it; the others
/// re-check `consumed_at IS NULL` after it commits and find nothing. `expired`
/// (read from the statement's snapshot, by the same unique hash) tells an unused
/// but expired token from an unknown or used one.
pub(crate) const CONSUME_TOKEN: &str = "\
WITH used AS (
    UPDATE {schema}.one_time_tokens SET consumed_at = $3
    WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at >= $3
    RETURNING user_id
)
SELECT (SELECT user_id FROM used) AS used_by,
       COALESCE((SELECT expires_at < $3 FROM {schema}.one_time_tokens
                 WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL), false)
           AS expired";

pub(crate) const PEEK_TOKEN: &str = "\
SELECT user_id, expires_at >= $3 AS live FROM {schema}.one_time_tokens
WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL";

pub(crate) const REVOKE_TOKENS: &str = "\
UPDATE {schema}.one_time_tokens SET consumed_at = $3
WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL";

/// Tokens are valid through `expires_at` itself, so only strictly older ones go.
/// One batch of the cleanup of expired tokens ($2 rows at most, oldest first
/// through the deadline's index, so each batch starts where the last one
/// ended; rows another call holds are left for the next purge).
pub(crate) const DELETE_EXPIRED_TOKENS: &str = "\
DELETE FROM {schema}.one_time_tokens WHERE token_hash = ANY(ARRAY(
  SELECT token_hash FROM {schema}.one_time_tokens WHERE expires_at < $1
  ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))";

/// One batch of the cleanup of used tokens, as [`DELETE_EXPIRED_TOKENS`]
/// through the index of use times. (One statement with `OR` would read both
/// indexes whole for every batch: a bitmap scan does not stop at a limit.)
pub(crate) const DELETE_CONSUMED_TOKENS: &str = "\
DELETE FROM {schema}.one_time_tokens WHERE token_hash = ANY(ARRAY(
  SELECT token_hash FROM {schema}.one_time_tokens WHERE consumed_at <= $1
  ORDER BY consumed_at LIMIT $2 FOR UPDATE SKIP LOCKED))";

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError> {
        self.run(
            sqlx::query(self.sql.insert_token.clone())
                .bind(token.hash.0)
                .bind(token.purpose.as_str())
                .bind(token.user_id.0)
                .bind(token.created_at)
                .bind(token.expires_at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn consume_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenCheck, StoreError> {
        let (used_by, expired): (Option<Uuid>, bool) = self
            .run(
                sqlx::query_as(self.sql.consume_token.clone())
                    .bind(hash.0)
                    .bind(purpose.as_str())
                    .bind(now)
                    .fetch_one(&self.pool),
            )
            .await?;
        Ok(match (used_by, expired) {
            (Some(id), _) => TokenCheck::Valid(UserId(id)),
            (None, true) => TokenCheck::Expired,
            (None, false) => TokenCheck::Invalid,
        })
    }

    async fn peek_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenCheck, StoreError> {
        let row: Option<(Uuid, bool)> = self
            .run(
                sqlx::query_as(self.sql.peek_token.clone())
                    .bind(hash.0)
                    .bind(purpose.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(match row {
            Some((id, true)) => TokenCheck::Valid(UserId(id)),
            Some((_, false)) => TokenCheck::Expired,
            None => TokenCheck::Invalid,
        })
    }

    async fn revoke_tokens(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.revoke_tokens.clone())
                    .bind(user_id.0)
                    .bind(purpose.as_str())
                    .bind(now)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let expired = self
            .delete_in_batches(&self.sql.delete_expired_tokens, before)
            .await?;
        let consumed = self
            .delete_in_batches(&self.sql.delete_consumed_tokens, before)
            .await?;
        Ok(expired + consumed)
    }
}
