use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{EmailMessage, Mailer};
use crate::ConfigError;

/// Settings of the mail outbox.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Messages that may wait; when full, new messages are dropped and logged
    /// (default 1024).
    pub capacity: usize,
    /// Tries per message, the first included (default 5).
    pub max_attempts: u32,
    /// Wait before the first retry; it doubles per retry (default 1 s).
    pub initial_backoff: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

/// A bounded queue drained by one background task.
#[derive(Debug)]
pub(crate) struct Outbox {
    sender: Mutex<Option<mpsc::Sender<EmailMessage>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    dropped: Arc<AtomicU64>,
}

impl Outbox {
    /// Starts the sending task on the current tokio runtime.
    pub(crate) fn start(
        mailer: Arc<dyn Mailer>,
        config: &OutboxConfig,
    ) -> Result<Self, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        if config.capacity == 0 || config.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "outbox capacity and max_attempts must be positive",
            ));
        }
        let (sender, receiver) = mpsc::channel(config.capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let worker = runtime.spawn(run(mailer, receiver, config.clone(), Arc::clone(&dropped)));
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            worker: Mutex::new(Some(worker)),
            dropped,
        })
    }

    /// Queues a message without waiting. A full or closed queue drops it, logs a
    /// warning and counts it.
    pub(crate) fn enqueue(&self, message: EmailMessage) {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let queued = sender.map(|s| s.try_send(message));
        if !matches!(queued, Some(Ok(()))) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("mail outbox full or closed; message dropped");
        }
    }

    /// Messages dropped or given up on so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops accepting messages and waits until every queued one was sent or
    /// given up on.
    pub(crate) async fn drain(&self) {
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker
            && let Err(err) = worker.await
        {
            tracing::error!(error = %err, "mail outbox task failed");
        }
    }
}

async fn run(
    mailer: Arc<dyn Mailer>,
    mut receiver: mpsc::Receiver<EmailMessage>,
    config: OutboxConfig,
    dropped: Arc<AtomicU64>,
) {
    while let Some(message) = receiver.recv().await {
        let mut backoff = config.initial_backoff;
        for attempt in 1..=config.max_attempts {
            match mailer.send(&message).await {
                Ok(()) => break,
                Err(err) if attempt < config.max_attempts => {
                    tracing::warn!(kind = ?message.kind, attempt, error = %err, "sending mail failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(err) => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(kind = ?message.kind, attempt, error = %err, "sending mail failed; giving up");
                }
            }
        }
    }
}
