//! [`AttemptStore`] on the `attempt_counters` table.

use async_trait::async_trait;
use auth_core::store::{AttemptKey, AttemptState, AttemptStore, StoreError};
use time::{Duration, OffsetDateTime};

use crate::PgStore;
use crate::error::InvalidRow;

/// One atomic statement: creates the counter at 1, or adds one to it, or
/// restarts it at 1 when it had expired; every increment pushes the expiry to
/// `$3`. Concurrent increments of one key serialise on its row, so none is lost.
/// The count saturates at `i32::MAX`.
pub(crate) const INCREMENT: &str = "\
INSERT INTO {schema}.attempt_counters AS c (counter_key, count, last_at, expires_at)
VALUES ($1, 1, $2, $3)
ON CONFLICT (counter_key) DO UPDATE SET
    count = CASE WHEN c.expires_at <= EXCLUDED.last_at THEN 1
                 ELSE LEAST(c.count, 2147483646) + 1 END,
    last_at = EXCLUDED.last_at,
    expires_at = EXCLUDED.expires_at
RETURNING count, last_at";

/// Compare-and-swap from no live counter: creates it at 1, or restarts an
/// expired one at 1; a live row (another caller counted first) is left alone and
/// no row comes back. Concurrent callers serialise on the key's row.
pub(crate) const INCREMENT_IF_ABSENT: &str = "\
INSERT INTO {schema}.attempt_counters AS c (counter_key, count, last_at, expires_at)
VALUES ($1, 1, $2, $3)
ON CONFLICT (counter_key) DO UPDATE SET
    count = 1, last_at = EXCLUDED.last_at, expires_at = EXCLUDED.expires_at
    WHERE c.expires_at <= EXCLUDED.last_at
RETURNING count, last_at";

/// Compare-and-swap from a live counter at (`$4`, `$5`): under READ COMMITTED a
/// concurrent caller waits on the row lock, then re-checks the condition against
/// the new row and updates nothing.
pub(crate) const INCREMENT_IF_EQUAL: &str = "\
UPDATE {schema}.attempt_counters
SET count = LEAST(count, 2147483646) + 1, last_at = $2, expires_at = $3
WHERE counter_key = $1 AND count = $4 AND last_at = $5 AND expires_at > $2
RETURNING count, last_at";

pub(crate) const ATTEMPTS: &str = "\
SELECT count, last_at FROM {schema}.attempt_counters WHERE counter_key = $1 AND expires_at > $2";

pub(crate) const CLEAR: &str = "DELETE FROM {schema}.attempt_counters WHERE counter_key = $1";

/// One batch of the cleanup ($2 rows at most), oldest first through the
/// deadline's index, so each batch starts where the last one ended.
pub(crate) const DELETE_EXPIRED_ATTEMPTS: &str = "\
DELETE FROM {schema}.attempt_counters WHERE counter_key = ANY(ARRAY(
  SELECT counter_key FROM {schema}.attempt_counters WHERE expires_at <= $1
  ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))";

fn state(count: i32, last_at: OffsetDateTime) -> Result<AttemptState, StoreError> {
    let count = u32::try_from(count).map_err(|_| InvalidRow::error("count", &count))?;
    Ok(AttemptState {
        count,
        last_at: Some(last_at),
    })
}

#[async_trait]
impl AttemptStore for PgStore {
    async fn increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<AttemptState, StoreError> {
        let expires_at = now
            .checked_add(ttl)
            .ok_or_else(|| InvalidRow::error("expires_at", &format_args!("{now} + {ttl}")))?;
        let (count, last_at): (i32, OffsetDateTime) = self
            .run(
                sqlx::query_as(self.sql.increment.clone())
                    .bind(key.storage_key())
                    .bind(now)
                    .bind(expires_at)
                    .fetch_one(&self.pool),
            )
            .await?;
        state(count, last_at)
    }

    async fn increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: AttemptState,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<AttemptState>, StoreError> {
        let expires_at = now
            .checked_add(ttl)
            .ok_or_else(|| InvalidRow::error("expires_at", &format_args!("{now} + {ttl}")))?;
        let query = match (expected.count, expected.last_at) {
            (0, _) | (_, None) => sqlx::query_as(self.sql.increment_if_absent.clone())
                .bind(key.storage_key())
                .bind(now)
                .bind(expires_at),
            (count, Some(last_at)) => sqlx::query_as(self.sql.increment_if_equal.clone())
                .bind(key.storage_key())
                .bind(now)
                .bind(expires_at)
                .bind(i32::try_from(count).unwrap_or(i32::MAX))
                .bind(last_at),
        };
        let row: Option<(i32, OffsetDateTime)> = self.run(query.fetch_optional(&self.pool)).await?;
        row.map(|(count, last_at)| state(count, last_at))
            .transpose()
    }

    async fn attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError> {
        let row: Option<(i32, OffsetDateTime)> = self
            .run(
                sqlx::query_as(self.sql.attempts.clone())
                    .bind(key.storage_key())
                    .bind(now)
                    .fetch_optional(&self.pool),
            )
            .await?;
        match row {
            Some((count, last_at)) => state(count, last_at),
            None => Ok(AttemptState::default()),
        }
    }

    async fn clear(&self, key: &AttemptKey) -> Result<(), StoreError> {
        self.run(
            sqlx::query(self.sql.clear.clone())
                .bind(key.storage_key())
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn delete_expired_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_in_batches(&self.sql.delete_expired_attempts, now)
            .await
    }
}
