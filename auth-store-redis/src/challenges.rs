//! [`ChallengeStore`] on Redis: one hash per challenge, created and taken by
//! scripts, freed by its TTL.

use std::sync::LazyLock;

use async_trait::async_trait;
use auth_core::store::{Challenge, ChallengePurpose, ChallengeStore, NewChallenge, UserId};
use auth_core::{StoreError, TokenHash};
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{Malformed, nanos, parse_nanos, ttl_ms};
use crate::conn::{RedisConnection, Retry};

/// KEYS: challenge. ARGV: TTL (ms), then the record's field/value pairs.
/// Refuses (0) a hash that exists, whatever its purpose.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
",
    )
});

/// KEYS: challenge. ARGV: purpose. Deletes the challenge and returns its user
/// (empty for none), payload, creation and deadline, only if it was stored for
/// that purpose; one of another purpose is left alone (nil). Redis runs one
/// script at a time, so of concurrent takers exactly one gets it.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'p', 'u', 'd', 'ca', 'ea')
if not v[1] or v[1] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return {v[2] or '', v[3] or '', v[4] or '', v[5] or ''}
",
    )
});

/// Short-lived single-use challenges (S4) on Redis: second-factor steps today,
/// OAuth state and WebAuthn challenges next, shared by every application
/// instance.
///
/// Each challenge is one hash, `<prefix>:ch:<challenge hash, hex>`, keyed by the
/// keyed hash the engine computes (the token itself never reaches Redis), holding
/// its purpose, user, opaque payload, creation time and deadline. A take is one
/// script on that one key (so it runs on Redis Cluster as is): it deletes and
/// returns the challenge only when it was stored for the purpose asked, so a take
/// for another purpose leaves it in place, and of concurrent takes exactly one
/// gets it. The deadline is judged against the caller's `now`, inclusively; a
/// challenge found past it is deleted and answers `None`.
///
/// Every challenge carries a TTL of its lifetime (deadline minus creation, the
/// engine's times, never Redis's clock), so Redis removes it by itself and
/// [`ChallengeStore::delete_expired_challenges`] has nothing to do. Like the
/// sessions, challenges always fail closed: while Redis is unavailable every
/// call answers [`StoreError::Unavailable`].
#[derive(Debug, Clone)]
pub struct RedisChallengeStore {
    conn: RedisConnection,
}

impl RedisChallengeStore {
    /// Challenges on `conn`.
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }
}

fn malformed() -> StoreError {
    StoreError::Other(Box::new(Malformed("challenge record")))
}

/// The challenge as field/value pairs: `p` purpose, `u` user (absent for none),
/// `d` payload (bytes as stored), `ca` creation and `ea` deadline (nanoseconds).
fn encode(c: &NewChallenge) -> Vec<(&'static str, Vec<u8>)> {
    let mut fields = vec![
        ("p", c.purpose.as_str().as_bytes().to_vec()),
        ("d", c.payload.clone()),
        ("ca", nanos(c.created_at).into_bytes()),
        ("ea", nanos(c.expires_at).into_bytes()),
    ];
    if let Some(user) = c.user_id {
        fields.push(("u", user.0.simple().to_string().into_bytes()));
    }
    fields
}

/// Reads what [`TAKE`] returns: user (empty for none), payload, creation,
/// deadline.
fn decode(taken: Vec<Vec<u8>>) -> Result<Challenge, StoreError> {
    let [user, payload, created, expires]: [Vec<u8>; 4] =
        taken.try_into().map_err(|_| malformed())?;
    let time = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(parse_nanos)
            .ok_or_else(malformed)
    };
    let user_id = match std::str::from_utf8(&user).map_err(|_| malformed())? {
        "" => None,
        id => Some(UserId(Uuid::try_parse(id).map_err(|_| malformed())?)),
    };
    Ok(Challenge {
        user_id,
        payload,
        created_at: time(&created)?,
        expires_at: time(&expires)?,
    })
}

#[async_trait]
impl ChallengeStore for RedisChallengeStore {
    async fn insert_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError> {
        let mut invocation = INSERT.key(self.conn.keys().challenge(&challenge.hash));
        invocation.arg(ttl_ms(challenge.expires_at - challenge.created_at));
        for (field, value) in encode(&challenge) {
            invocation.arg(field).arg(value);
        }
        // Not retried: after a lost answer, a second try would find its own
        // challenge and report a conflict.
        let inserted: i64 = self.conn.script(&invocation, Retry::Never).await?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn take_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Challenge>, StoreError> {
        let mut invocation = TAKE.key(self.conn.keys().challenge(hash));
        invocation.arg(purpose.as_str());
        // Not retried: a take whose answer was lost has consumed the challenge.
        let taken: Option<Vec<Vec<u8>>> = self.conn.script(&invocation, Retry::Never).await?;
        let Some(taken) = taken else {
            return Ok(None);
        };
        let challenge = decode(taken)?;
        Ok((now <= challenge.expires_at).then_some(challenge))
    }

    /// Redis removes challenges itself (each carries a TTL of its lifetime),
    /// and one found past its deadline is refused: nothing to do.
    async fn delete_expired_challenges(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn new(user_id: Option<UserId>) -> NewChallenge {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_893_456_000_123_456_789)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        NewChallenge {
            hash: TokenHash([4; 32]),
            purpose: ChallengePurpose::SECOND_FACTOR,
            user_id,
            payload: vec![0, 255, b',', 0],
            created_at: t,
            expires_at: t + Duration::minutes(5),
        }
    }

    /// What the take script returns for a stored challenge.
    fn as_taken(c: &NewChallenge) -> Vec<Vec<u8>> {
        let field = |name: &str| {
            encode(c)
                .into_iter()
                .find(|(f, _)| *f == name)
                .map(|(_, v)| v)
                .unwrap_or_default()
        };
        vec![field("u"), field("d"), field("ca"), field("ea")]
    }

    #[test]
    fn challenges_round_trip_with_and_without_a_user() {
        for c in [new(Some(UserId::new_random())), new(None)] {
            let taken = decode(as_taken(&c)).ok();
            assert_eq!(
                taken,
                Some(Challenge {
                    user_id: c.user_id,
                    payload: c.payload.clone(),
                    created_at: c.created_at,
                    expires_at: c.expires_at,
                })
            );
        }
    }

    #[test]
    fn damaged_records_are_errors() {
        let good = as_taken(&new(Some(UserId::new_random())));
        let mut bad_user = good.clone();
        bad_user[0] = b"not a uuid".to_vec();
        let mut bad_time = good.clone();
        bad_time[3] = b"soon".to_vec();
        for taken in [bad_user, bad_time, good[..3].to_vec()] {
            assert!(matches!(decode(taken), Err(StoreError::Other(_))));
        }
    }
}
