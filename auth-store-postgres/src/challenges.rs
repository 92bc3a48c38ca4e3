//! [`ChallengeStore`] on the `challenges` table.

use async_trait::async_trait;
use auth_core::TokenHash;
use auth_core::store::{
    Challenge, ChallengePurpose, ChallengeStore, NewChallenge, StoreError, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgStore;

pub(crate) const INSERT_CHALLENGE: &str = "\
INSERT INTO {schema}.challenges (hash, purpose, user_id, payload, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)";

/// S4: takes the challenge in one statement. Of concurrent takers, the row
/// lock lets exactly one delete it; the others find it gone. Bound to the
/// purpose, so a challenge of another purpose stays. An expired challenge is
/// deleted too, and `live` (valid through `expires_at` itself) tells the caller
/// not to use it.
pub(crate) const TAKE_CHALLENGE: &str = "\
DELETE FROM {schema}.challenges WHERE hash = $1 AND purpose = $2
RETURNING user_id, payload, created_at, expires_at, expires_at >= $3 AS live";

/// Challenges are valid through `expires_at` itself, so only strictly older
/// ones go.
/// One batch of the cleanup ($2 rows at most), oldest first through the
/// deadline's index, so each batch starts where the last one ended.
pub(crate) const DELETE_EXPIRED_CHALLENGES: &str = "\
DELETE FROM {schema}.challenges WHERE hash = ANY(ARRAY(
  SELECT hash FROM {schema}.challenges WHERE expires_at < $1
  ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))";

/// A row [`TAKE_CHALLENGE`] returns.
#[derive(sqlx::FromRow)]
struct TakenRow {
    user_id: Option<Uuid>,
    payload: Vec<u8>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    live: bool,
}

#[async_trait]
impl ChallengeStore for PgStore {
    async fn insert_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError> {
        self.run(
            sqlx::query(self.sql.insert_challenge.clone())
                .bind(challenge.hash.0)
                .bind(challenge.purpose.as_str())
                .bind(challenge.user_id.map(|u| u.0))
                .bind(challenge.payload)
                .bind(challenge.created_at)
                .bind(challenge.expires_at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Challenge>, StoreError> {
        let row: Option<TakenRow> = self
            .run(
                sqlx::query_as(self.sql.take_challenge.clone())
                    .bind(hash.0)
                    .bind(purpose.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.filter(|r| r.live).map(|r| Challenge {
            user_id: r.user_id.map(UserId),
            payload: r.payload,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }))
    }

    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_in_batches(&self.sql.delete_expired_challenges, now)
            .await
    }
}
