//! [`AttemptStore`] on Redis: one hash per counter, incremented by a script.

use std::sync::LazyLock;

use async_trait::async_trait;
use auth_core::StoreError;
use auth_core::log_sampling::{LogSampler, LogSampling};
use auth_core::store::{AttemptKey, AttemptState, AttemptStore};
use redis::Script;
use time::{Duration, OffsetDateTime};
use tracing::Level;

use crate::codec::{Malformed, OutOfRange, nanos, parse_nanos, ttl_ms};
use crate::conn::{RedisConnection, Retry};

/// What the counters answer while Redis is unavailable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnavailablePolicy {
    /// Fail with [`StoreError::Unavailable`], which the engine answers with 503 and
    /// `Retry-After` (the default): no login is checked without its lockout.
    #[default]
    FailClosed,
    /// Answer as if nothing had been counted (zero), logging a warning each time:
    /// logins keep working while Redis is down, without lockout or rate limits.
    FailOpen,
}

/// Fields: `c` count, `la` last increment (exact, nanoseconds), `es`/`en` when the
/// counter expires (whole seconds and nanoseconds of the second, compared exactly).
/// A counter past its expiry at the caller's `now` starts again from zero; Redis's
/// own TTL (the window, from the latest increment) then removes it from memory.
static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
local now_s, now_n = tonumber(ARGV[1]), tonumber(ARGV[2])
local exp = redis.call('HMGET', key, 'es', 'en')
if exp[1] then
  local es, en = tonumber(exp[1]), tonumber(exp[2])
  if es < now_s or (es == now_s and en <= now_n) then
    redis.call('DEL', key)
  end
end
local count = redis.call('HINCRBY', key, 'c', 1)
redis.call('HSET', key, 'la', ARGV[3], 'es', ARGV[4], 'en', ARGV[5])
redis.call('PEXPIRE', key, ARGV[6])
return count
",
    )
});

/// The compare-and-swap: adds one only if the live counter (zero when absent or
/// expired at `now`) still has count `ARGV[7]` and last time `ARGV[8]` (exact
/// nanoseconds, empty for none); answers -1 otherwise.
static INCREMENT_IF_UNCHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
local now_s, now_n = tonumber(ARGV[1]), tonumber(ARGV[2])
local f = redis.call('HMGET', key, 'c', 'la', 'es', 'en')
local count, last = 0, ''
if f[1] then
  local es, en = tonumber(f[3]), tonumber(f[4])
  if es > now_s or (es == now_s and en > now_n) then
    count, last = tonumber(f[1]), f[2]
  end
end
if count ~= tonumber(ARGV[7]) or last ~= ARGV[8] then
  return -1
end
redis.call('DEL', key)
redis.call('HSET', key, 'c', count + 1, 'la', ARGV[3], 'es', ARGV[4], 'en', ARGV[5])
redis.call('PEXPIRE', key, ARGV[6])
return count + 1
",
    )
});

/// Failure counters for lockout and rate limits (S6) on Redis.
///
/// Each counter is one hash, `<prefix>:att:<scope>:a:<email>`,
/// `<prefix>:att:<scope>:ip:<addr>` or `<prefix>:att:<scope>:net:<addr>/48`.
/// An increment is one script: it resets a
/// counter that expired at the caller's `now`, adds one, records the time and sets
/// the expiry, in one round trip and atomically, so concurrent increments are
/// never lost. Expiry is judged on the engine's clock (`now`), and Redis's TTL
/// (the window after the latest increment) frees the memory.
#[derive(Debug, Clone)]
pub struct RedisAttemptStore {
    conn: RedisConnection,
    policy: UnavailablePolicy,
    /// Samples the fail-open warning, one per call while Redis is down (S9).
    log: LogSampler,
}

impl RedisAttemptStore {
    /// Counters on `conn`, failing closed while Redis is unavailable.
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            policy: UnavailablePolicy::FailClosed,
            log: LogSampler::new(LogSampling::default()),
        }
    }

    /// Sets what the counters answer while Redis is unavailable.
    #[must_use]
    pub fn with_unavailable_policy(mut self, policy: UnavailablePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy in force.
    #[must_use]
    pub fn unavailable_policy(&self) -> UnavailablePolicy {
        self.policy
    }

    /// Applies the policy to a failed call: failing open answers `open`.
    fn answer<T>(
        &self,
        operation: &'static str,
        result: Result<T, StoreError>,
        open: T,
    ) -> Result<T, StoreError> {
        match (self.policy, result) {
            (UnavailablePolicy::FailOpen, Err(StoreError::Unavailable(error))) => {
                const FAIL_OPEN: &str = "Redis unavailable: attempt counters fail open (lockout and rate limits are off)";
                // Every call while Redis is down: the first per second in
                // full, the rest counted (S9).
                if self.log.sample(Level::WARN, FAIL_OPEN, None) {
                    tracing::warn!(operation, error = %error, "{FAIL_OPEN}");
                }
                Ok(open)
            }
            (_, result) => result,
        }
    }

    async fn try_increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<AttemptState, StoreError> {
        let expires = now
            .checked_add(ttl)
            .ok_or_else(|| StoreError::Other(Box::new(OutOfRange("attempt window"))))?;
        let mut invocation = INCREMENT.key(self.conn.keys().attempt(key));
        invocation
            .arg(now.unix_timestamp())
            .arg(now.nanosecond())
            .arg(nanos(now))
            .arg(expires.unix_timestamp())
            .arg(expires.nanosecond())
            .arg(ttl_ms(ttl));
        let count: i64 = self.conn.script(&invocation, Retry::Never).await?;
        Ok(AttemptState {
            count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
            last_at: Some(now),
        })
    }

    async fn try_increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: AttemptState,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<AttemptState>, StoreError> {
        let expires = now
            .checked_add(ttl)
            .ok_or_else(|| StoreError::Other(Box::new(OutOfRange("attempt window"))))?;
        let mut invocation = INCREMENT_IF_UNCHANGED.key(self.conn.keys().attempt(key));
        invocation
            .arg(now.unix_timestamp())
            .arg(now.nanosecond())
            .arg(nanos(now))
            .arg(expires.unix_timestamp())
            .arg(expires.nanosecond())
            .arg(ttl_ms(ttl))
            .arg(expected.count)
            .arg(expected.last_at.map(nanos).unwrap_or_default());
        let count: i64 = self.conn.script(&invocation, Retry::Never).await?;
        Ok((count >= 0).then(|| AttemptState {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_at: Some(now),
        }))
    }

    /// The `HMGET` that reads `key`'s counter.
    fn read_command(&self, key: &AttemptKey) -> redis::Cmd {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.conn.keys().attempt(key))
            .arg("c")
            .arg("la")
            .arg("es")
            .arg("en");
        cmd
    }

    async fn try_attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError> {
        let fields = self
            .conn
            .query(&self.read_command(key), Retry::OnceOnIo)
            .await?;
        state_at(fields, now)
    }

    async fn try_attempts_of(
        &self,
        keys: &[AttemptKey],
        now: OffsetDateTime,
    ) -> Result<Vec<AttemptState>, StoreError> {
        let reads: Vec<redis::Cmd> = keys.iter().map(|key| self.read_command(key)).collect();
        let fields: Vec<CounterFields> = self.conn.query_each(&reads, Retry::OnceOnIo).await?;
        fields.into_iter().map(|f| state_at(f, now)).collect()
    }
}

/// A counter's fields as `HMGET` answers them: count, last time, expiry.
type CounterFields = (Option<i64>, Option<String>, Option<i64>, Option<i64>);

/// The counter's state at `now`: zero when absent or expired.
fn state_at(fields: CounterFields, now: OffsetDateTime) -> Result<AttemptState, StoreError> {
    let malformed = || StoreError::Other(Box::new(Malformed("attempt counter")));
    let (count, last_at, expires) = match fields {
        (None, None, None, None) => return Ok(AttemptState::default()),
        (Some(count), Some(last_at), Some(secs), Some(subsec)) => {
            let expires = i128::from(secs) * 1_000_000_000 + i128::from(subsec);
            (count, parse_nanos(&last_at).ok_or_else(malformed)?, expires)
        }
        _ => return Err(malformed()),
    };
    if expires <= now.unix_timestamp_nanos() {
        return Ok(AttemptState::default());
    }
    Ok(AttemptState {
        count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
        last_at: Some(last_at),
    })
}

#[async_trait]
impl AttemptStore for RedisAttemptStore {
    async fn increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<AttemptState, StoreError> {
        let result = self.try_increment(key, now, ttl).await;
        self.answer("increment", result, AttemptState::default())
    }

    async fn increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: AttemptState,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<AttemptState>, StoreError> {
        let result = self
            .try_increment_if_unchanged(key, expected, now, ttl)
            .await;
        // Failing open answers "counted", as if from zero: `None` would make the
        // engine read and try again until it gives up.
        let counted = AttemptState {
            count: 1,
            last_at: Some(now),
        };
        self.answer("increment_if_unchanged", result, Some(counted))
    }

    async fn attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError> {
        let result = self.try_attempts(key, now).await;
        self.answer("attempts", result, AttemptState::default())
    }

    /// One round trip on one server (a pipeline of `HMGET`s); on a cluster,
    /// where the counters sit on different slots, one read after another.
    async fn attempts_of(
        &self,
        keys: &[AttemptKey],
        now: OffsetDateTime,
    ) -> Result<Vec<AttemptState>, StoreError> {
        let result = self.try_attempts_of(keys, now).await;
        self.answer(
            "attempts_of",
            result,
            vec![AttemptState::default(); keys.len()],
        )
    }

    async fn clear(&self, key: &AttemptKey) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.conn.keys().attempt(key));
        let result = self
            .conn
            .query::<i64>(&cmd, Retry::OnceOnIo)
            .await
            .map(drop);
        self.answer("clear", result, ())
    }

    /// Redis removes counters itself (each carries a TTL of its window), and
    /// expired ones already read as zero: nothing to do.
    async fn delete_expired_attempts(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}
