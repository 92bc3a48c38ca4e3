//! Time, injectable so that expiry and backoff are tested without sleeping.

use std::fmt;

use time::OffsetDateTime;

#[cfg(feature = "test-util")]
pub use mock::MockClock;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[cfg(feature = "test-util")]
mod mock {
    use std::sync::{Arc, Mutex, PoisonError};

    use time::{Duration, OffsetDateTime};

    use super::Clock;

    /// A clock that only moves when told to (feature `test-util`). Clones share the
    /// same time.
    ///
    /// ```
    /// use auth_core::clock::{Clock, MockClock};
    /// use time::Duration;
    ///
    /// let clock = MockClock::default();
    /// let before = clock.now();
    /// clock.advance(Duration::minutes(30));
    /// assert_eq!(clock.now() - before, Duration::minutes(30));
    /// ```
    #[derive(Debug, Clone)]
    pub struct MockClock(Arc<Mutex<OffsetDateTime>>);

    impl MockClock {
        /// A clock stopped at `at`.
        #[must_use]
        pub fn at(at: OffsetDateTime) -> Self {
            Self(Arc::new(Mutex::new(at)))
        }

        /// Moves the clock forward (or back, with a negative duration).
        pub fn advance(&self, by: Duration) {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
        }

        /// Sets the clock.
        pub fn set(&self, at: OffsetDateTime) {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
        }
    }

    impl Default for MockClock {
        /// 2030-01-01 00:00:00 UTC: a fixed, round starting point.
        fn default() -> Self {
            Self::at(
                OffsetDateTime::from_unix_timestamp(1_893_456_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            )
        }
    }

    impl Clock for MockClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
