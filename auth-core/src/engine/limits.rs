//! The lockout's atomic check-and-count, reusable for any counter and policy
//! (S6): passwords today, second factors next.

use time::Duration;

use super::Engine;
use crate::BackoffPolicy;
use crate::error::AuthError;
use crate::store::{AttemptKey, AttemptState};

/// What a reservation answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// The attempt was counted in advance (as a failure, until the caller clears
    /// the counter on success); the counter's new state.
    Counted(AttemptState),
    /// The counter is locked: the attempt was not counted; retry after this long.
    Locked(Duration),
}

impl Engine {
    /// Judges `key`'s counter under `policy` and, when it allows one more
    /// attempt, counts that attempt, as one atomic step: the count is a
    /// compare-and-swap on the state that was judged, so of N concurrent callers
    /// at most the allowed number are counted, and everyone else is refused
    /// without being counted (a refused attempt never extends the lock).
    ///
    /// A caller that keeps losing the swap gives up after `threshold + 2` reads,
    /// which only happens while others are being counted, and is refused for
    /// the policy's shortest wait.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] and other store failures.
    pub(crate) async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        policy: &BackoffPolicy,
    ) -> Result<Reservation, AuthError> {
        for _ in 0..policy.threshold.saturating_add(2) {
            let now = self.now();
            let state = self.attempts.attempts(key, now).await?;
            if let Some(wait) = policy.retry_after(&state, now) {
                return Ok(Reservation::Locked(wait));
            }
            if let Some(counted) = self
                .attempts
                .increment_if_unchanged(key, state, now, policy.window)
                .await?
            {
                return Ok(Reservation::Counted(counted));
            }
        }
        Ok(Reservation::Locked(policy.base))
    }
}
