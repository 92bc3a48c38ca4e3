use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Level;

use super::{EmailMessage, Mailer};
use crate::ConfigError;
use crate::log_sampling::LogSampler;

/// Settings of the mail outbox.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Account mail (verification and reset links, password-change notices)
    /// that may wait; when full, new messages are dropped and logged (default
    /// 1024).
    pub capacity: usize,
    /// Notices (duplicate registration, new sign-in, lockout) that may wait, in
    /// a queue of their own, so a flood of notices never takes the room of
    /// account mail (S3; default 256). Account mail is sent first.
    pub notice_capacity: usize,
    /// Tries per message, the first included (default 5). A permanent failure
    /// (see [`super::MailError`]) is never retried.
    pub max_attempts: u32,
    /// Wait before the first retry; it doubles per retry (default 1 s). A message
    /// waiting for its retry does not hold up the others.
    pub initial_backoff: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            notice_capacity: 256,
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

/// Two bounded queues (account mail first, then notices) drained by one
/// background task, which keeps failed messages aside until their retry is due.
#[derive(Debug)]
pub(crate) struct Outbox {
    senders: Mutex<Option<Senders>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    counts: Arc<Counts>,
    log: LogSampler,
}

#[derive(Debug, Clone)]
struct Senders {
    account: mpsc::Sender<EmailMessage>,
    notices: mpsc::Sender<EmailMessage>,
}

#[derive(Debug, Default)]
struct Counts {
    dropped: AtomicU64,
    /// Messages queued or waiting for a retry.
    pending: AtomicUsize,
    idle: Notify,
}

impl Counts {
    fn finished(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

impl Outbox {
    /// Starts the sending task on the current tokio runtime; `log` samples
    /// the lines of dropped and failed messages, which repeat under a flood
    /// or a mail server outage (S9).
    pub(crate) fn start(
        mailer: Arc<dyn Mailer>,
        config: &OutboxConfig,
        log: LogSampler,
    ) -> Result<Self, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        if config.capacity == 0 || config.notice_capacity == 0 || config.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "outbox capacity, notice_capacity and max_attempts must be positive",
            ));
        }
        let (account, account_rx) = mpsc::channel(config.capacity);
        let (notices, notices_rx) = mpsc::channel(config.notice_capacity);
        let counts = Arc::new(Counts::default());
        let worker = runtime.spawn(run(
            mailer,
            account_rx,
            notices_rx,
            config.clone(),
            Arc::clone(&counts),
            log.clone(),
        ));
        Ok(Self {
            senders: Mutex::new(Some(Senders { account, notices })),
            worker: Mutex::new(Some(worker)),
            counts,
            log,
        })
    }

    /// Queues a message without waiting. A full or closed queue drops it, logs a
    /// warning and counts it. Notices have their own queue, so they never take
    /// the room of account mail.
    pub(crate) fn enqueue(&self, message: EmailMessage) {
        let senders = self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let kind = message.kind;
        self.counts.pending.fetch_add(1, Ordering::SeqCst);
        let queued = senders.is_some_and(|s| {
            if kind.is_account_mail() {
                s.account.try_send(message).is_ok()
            } else {
                s.notices.try_send(message).is_ok()
            }
        });
        if !queued {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            self.counts.finished();
            const DROPPED: &str = "mail outbox full or closed; message dropped";
            if self.log.sample(Level::WARN, DROPPED, None) {
                tracing::warn!(?kind, "{DROPPED}");
            }
        }
    }

    /// Messages dropped or given up on so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every message queued so far was sent or given up on,
    /// without closing the outbox.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let idle = self.counts.idle.notified();
            if self.counts.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Stops accepting messages and waits until every queued one was sent or
    /// given up on.
    pub(crate) async fn drain(&self) {
        drop(
            self.senders
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

/// A message that failed transiently, set aside until `due`.
struct Retry {
    message: EmailMessage,
    /// Tries so far.
    tries: u32,
    due: Instant,
}

async fn run(
    mailer: Arc<dyn Mailer>,
    mut account: mpsc::Receiver<EmailMessage>,
    mut notices: mpsc::Receiver<EmailMessage>,
    config: OutboxConfig,
    counts: Arc<Counts>,
    log: LogSampler,
) {
    const PERMANENT: &str = "mail refused permanently; not retried";
    const RETRYING: &str = "sending mail failed; retrying";
    const GIVING_UP: &str = "sending mail failed; giving up";
    // Bounded like the queues: beyond that, a failing message is given up on.
    let max_retries = config.capacity.saturating_add(config.notice_capacity);
    let mut retries: VecDeque<Retry> = VecDeque::new();
    let (mut account_open, mut notices_open) = (true, true);
    loop {
        let next_due = retries.iter().map(|r| r.due).min();
        let (message, tries) = tokio::select! {
            biased;
            () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                let now = Instant::now();
                let Some(i) = retries.iter().position(|r| r.due <= now) else { continue };
                let Some(retry) = retries.remove(i) else { continue };
                (retry.message, retry.tries)
            }
            m = account.recv(), if account_open => match m {
                Some(m) => (m, 0),
                None => { account_open = false; continue }
            },
            m = notices.recv(), if notices_open => match m {
                Some(m) => (m, 0),
                None => { notices_open = false; continue }
            },
            else => break,
        };
        let tries = tries.saturating_add(1);
        match mailer.send(&message).await {
            Ok(()) => counts.finished(),
            Err(err) if err.is_permanent() => {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                counts.finished();
                if log.sample(Level::WARN, PERMANENT, None) {
                    tracing::warn!(kind = ?message.kind, error = %err, "{PERMANENT}");
                }
            }
            Err(err) if tries < config.max_attempts && retries.len() < max_retries => {
                let backoff = config
                    .initial_backoff
                    .saturating_mul(1 << (tries - 1).min(16));
                if log.sample(Level::WARN, RETRYING, None) {
                    tracing::warn!(kind = ?message.kind, attempt = tries, error = %err, "{RETRYING}");
                }
                retries.push_back(Retry {
                    message,
                    tries,
                    due: Instant::now() + backoff,
                });
            }
            Err(err) => {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                counts.finished();
                if log.sample(Level::ERROR, GIVING_UP, None) {
                    tracing::error!(kind = ?message.kind, attempt = tries, error = %err, "{GIVING_UP}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::time::Instant;

    use super::{Outbox, OutboxConfig};
    use crate::log_sampling::{LogSampler, LogSampling};
    use crate::mail::{EmailContent, EmailMessage, Locale, MailError, Mailer, MessageKind};

    fn sampler() -> LogSampler {
        LogSampler::new(LogSampling::default())
    }

    fn message(kind: MessageKind, to: &str) -> EmailMessage {
        EmailMessage::new(kind, to, Locale::ENGLISH, EmailContent::new("s", "t", "h"))
    }

    /// Refuses `bad…` addresses, permanently or not; records when each good
    /// message was delivered and how often each address was tried.
    #[derive(Default)]
    struct Picky {
        permanent: bool,
        delivered: Mutex<Vec<(String, Instant)>>,
        tries: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Mailer for Picky {
        async fn send(&self, m: &EmailMessage) -> Result<(), MailError> {
            self.tries.lock().unwrap().push(m.to.clone());
            if m.to.starts_with("bad") {
                // An SMTP round trip that ends in a refusal.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Err(if self.permanent {
                    MailError::permanent("550 no such user")
                } else {
                    MailError::transient("421 try again later")
                });
            }
            self.delivered
                .lock()
                .unwrap()
                .push((m.to.clone(), Instant::now()));
            Ok(())
        }
    }

    async fn reset_after_ten_failures(permanent: bool) -> (Duration, usize) {
        let mailer = Arc::new(Picky {
            permanent,
            ..Picky::default()
        });
        let outbox = Outbox::start(mailer.clone(), &OutboxConfig::default(), sampler()).unwrap();
        let start = Instant::now();
        for i in 0..10 {
            outbox.enqueue(message(
                MessageKind::Verification,
                &format!("bad{i}@x.test"),
            ));
        }
        outbox.enqueue(message(MessageKind::PasswordReset, "owner@x.test"));
        outbox.drain().await;
        let delivered = mailer.delivered.lock().unwrap().clone();
        assert_eq!(delivered.len(), 1);
        let tries = mailer.tries.lock().unwrap().len();
        (delivered[0].1 - start, tries)
    }

    /// Ten permanently failing messages ahead of a reset mail: the reset mail
    /// reaches the mailer within 1 s (virtual time), and no failure is retried.
    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried_and_do_not_delay_others() {
        let (waited, tries) = reset_after_ten_failures(true).await;
        assert!(waited < Duration::from_secs(1), "waited {waited:?}");
        assert_eq!(tries, 11, "each refused message tried once");
    }

    /// Transient failures are retried, but a retry waits aside: the reset mail
    /// behind ten failing messages still goes out within 1 s.
    #[tokio::test(start_paused = true)]
    async fn retries_do_not_hold_up_other_messages() {
        let (waited, tries) = reset_after_ten_failures(false).await;
        assert!(waited < Duration::from_secs(1), "waited {waited:?}");
        assert_eq!(
            tries,
            10 * 5 + 1,
            "each failing message tried max_attempts times"
        );
    }

    /// A flood of notices fills only the notice queue: account mail still finds
    /// room (S3).
    #[tokio::test(start_paused = true)]
    async fn notices_cannot_take_the_room_of_account_mail() {
        let mailer = Arc::new(Picky::default());
        let config = OutboxConfig {
            capacity: 4,
            notice_capacity: 4,
            ..OutboxConfig::default()
        };
        let outbox = Outbox::start(mailer.clone(), &config, sampler()).unwrap();
        // The worker has not run yet (paused, not yielded): the queues fill.
        for i in 0..100 {
            outbox.enqueue(message(
                MessageKind::DuplicateRegistration,
                &format!("n{i}@x.test"),
            ));
        }
        assert_eq!(outbox.dropped(), 96);
        outbox.enqueue(message(MessageKind::PasswordReset, "owner@x.test"));
        assert_eq!(outbox.dropped(), 96, "the reset mail was queued");
        outbox.drain().await;
        let delivered = mailer.delivered.lock().unwrap().clone();
        assert_eq!(delivered.len(), 5);
        assert_eq!(delivered[0].0, "owner@x.test", "account mail goes first");
    }
}
