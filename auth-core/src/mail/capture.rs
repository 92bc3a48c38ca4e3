use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{EmailMessage, MailError, Mailer, MessageKind};

/// A mailer that keeps every message in memory, for tests (feature `test-util`).
/// It can also be told to fail its next sends, to test retries and that a mailer
/// failure never changes a response.
#[derive(Debug, Clone, Default)]
pub struct CapturingMailer {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    messages: Mutex<Vec<EmailMessage>>,
    failures_left: AtomicU32,
    refused: Mutex<Vec<String>>,
    attempts: AtomicU32,
    notify: Notify,
}

impl CapturingMailer {
    /// An empty mailer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message delivered so far.
    #[must_use]
    pub fn messages(&self) -> Vec<EmailMessage> {
        self.inner
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Delivered messages of one kind sent to `to`.
    #[must_use]
    pub fn messages_to(&self, to: &str, kind: MessageKind) -> Vec<EmailMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.to == to && m.kind == kind)
            .collect()
    }

    /// Makes the next `n` sends fail.
    pub fn fail_next(&self, n: u32) {
        self.inner.failures_left.store(n, Ordering::SeqCst);
    }

    /// Makes every send to `to` fail permanently (as an SMTP server answering
    /// 550 would).
    pub fn refuse(&self, to: &str) {
        self.inner
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(to.to_owned());
    }

    /// Sends attempted, failed ones included.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages were delivered (the outbox sends in the
    /// background) and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<EmailMessage> {
        loop {
            let notified = self.inner.notify.notified();
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            notified.await;
        }
    }

    /// The token in the link of the newest message of `kind` to `to` (the
    /// value of the link's `token` query parameter).
    #[must_use]
    pub fn token_for(&self, to: &str, kind: MessageKind) -> Option<String> {
        let link = self.messages_to(to, kind).pop()?.link?;
        let (_, query) = link.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_owned)
    }
}

#[async_trait]
impl Mailer for CapturingMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError> {
        self.inner.attempts.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .inner
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let refused = self
            .inner
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&message.to);
        if refused {
            return Err(MailError::permanent(
                "capturing mailer refuses this address",
            ));
        }
        if fail {
            return Err(MailError::transient("capturing mailer told to fail"));
        }
        self.inner
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        self.inner.notify.notify_waiters();
        Ok(())
    }
}
