//! Bounded admission to the hashing workers (S13).
//!
//! A permit is one CPU of hashing work: at most `permits` hashing threads run at
//! once (a hash takes one permit per thread it runs on); at most `max_waiting`
//! callers wait for permits. A caller beyond that is told
//! [`HashError::Unavailable`] at once, so a login flood costs neither unbounded
//! memory nor unbounded latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HashError;

#[derive(Debug)]
pub(crate) struct Limiter {
    semaphore: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Limiter {
    pub(crate) fn new(permits: usize, max_waiting: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// `n` permits now, a place in the queue, or `Unavailable` when the queue is
    /// full. `n` must not exceed the number of permits (the caller caps it), or
    /// the wait would never end.
    pub(crate) async fn acquire(&self, n: u32) -> Result<OwnedSemaphorePermit, HashError> {
        if let Ok(permit) = Arc::clone(&self.semaphore).try_acquire_many_owned(n) {
            return Ok(permit);
        }
        let _place = QueuePlace::take(&self.waiting, self.max_waiting)?;
        Arc::clone(&self.semaphore)
            .acquire_many_owned(n)
            .await
            .map_err(|_| HashError::Unavailable)
    }

    /// Whether a caller arriving now would be refused: every permit busy and the
    /// queue full. A hint (it may change a moment later) for refusing early.
    pub(crate) fn is_full(&self) -> bool {
        self.semaphore.available_permits() == 0 && self.waiting() >= self.max_waiting
    }

    /// Callers waiting for a permit right now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }
}

/// A place in the wait queue, given back when dropped (also when the waiting
/// future is cancelled).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, max: usize) -> Result<Self, HashError> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| Self(waiting))
            .map_err(|_| HashError::Unavailable)
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
