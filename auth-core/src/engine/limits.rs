//! The lockout's atomic check-and-count, reusable for any counter and policy
//! (S6): passwords today, second factors next.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use time::Duration;
use tracing::Instrument as _;

use super::Engine;
use crate::error::{AuthError, UNAVAILABLE_RETRY_AFTER};
use crate::store::{AttemptKey, AttemptScope, AttemptState, IPV6_SITE_PREFIX};
use crate::{AuthConfig, BackoffPolicy};

/// The per-client limits of one kind of request (S6): per client address (an
/// IPv6 client by its /64) and, for IPv6 clients, per /48 network, whose
/// threshold is higher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientLimits<'a> {
    address: &'a BackoffPolicy,
    network: &'a BackoffPolicy,
}

/// One counter a request from a client is judged by and counted in.
#[derive(Debug)]
pub(crate) struct ClientCounter<'a> {
    pub(crate) key: AttemptKey,
    pub(crate) policy: &'a BackoffPolicy,
    /// The address the counter stands for (the client's IPv4 address, IPv6
    /// /64 or /48): refusals are audited under it, so a client rotating
    /// through the addresses of a network it was refused for still adds to
    /// one aggregated record (S12).
    pub(crate) address: IpAddr,
}

impl<'a> ClientLimits<'a> {
    /// Failed logins.
    pub(crate) fn login(config: &'a AuthConfig) -> Self {
        Self {
            address: &config.ip_login_limit,
            network: &config.network_login_limit,
        }
    }

    /// Registrations, reset requests and resends.
    pub(crate) fn requests(config: &'a AuthConfig) -> Self {
        Self {
            address: &config.ip_request_limit,
            network: &config.network_request_limit,
        }
    }

    /// The counters of a request from `ip` in `scope`: its address's, and for
    /// IPv6 its /48's.
    pub(crate) fn counters(self, scope: AttemptScope, ip: IpAddr) -> Vec<ClientCounter<'a>> {
        let client = AttemptKey::client(scope, ip);
        let network = AttemptKey::network(scope, ip);
        [
            Some((client, self.address)),
            network.map(|key| (key, self.network)),
        ]
        .into_iter()
        .flatten()
        .map(|(key, policy)| ClientCounter {
            address: match key {
                AttemptKey::Network(_, net) => IpAddr::V6(net),
                AttemptKey::Ip(_, address) => address,
                AttemptKey::Account(..) => ip,
            },
            key,
            policy,
        })
        .collect()
    }
}

impl ClientCounter<'_> {
    /// The audit detail of a refusal: the scope (`login`), with the prefix
    /// length for a network counter (`login/48`).
    pub(crate) fn detail(&self) -> String {
        match &self.key {
            AttemptKey::Network(scope, _) => format!("{}/{IPV6_SITE_PREFIX}", scope.as_str()),
            AttemptKey::Ip(scope, _) | AttemptKey::Account(scope, _) => scope.as_str().to_owned(),
        }
    }
}

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
    /// Runs `work` on a task of its own and waits for it, so that a caller
    /// that stops waiting (a client gone, a timeout layer) cannot stop it half
    /// way. Every check that reserves an attempt before it runs goes through
    /// here with its follow-up: dropped between the two, an attempt would stay
    /// counted for the account but never for the client, so one address could
    /// lock accounts, or start hashes against a locked one, without its own
    /// limit ever refusing it (S6).
    ///
    /// # Errors
    /// `work`'s own; [`AuthError::Unavailable`] when the runtime is shutting
    /// down. A panic in `work` resumes in the caller.
    pub(crate) async fn to_the_end<T, F>(
        self: &Arc<Self>,
        work: impl FnOnce(Arc<Self>) -> F,
    ) -> Result<T, AuthError>
    where
        F: Future<Output = Result<T, AuthError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = tokio::spawn(work(Arc::clone(self)).in_current_span());
        match task.await {
            Ok(result) => result,
            Err(err) => match err.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(cancelled) => Err(AuthError::Unavailable {
                    retry_after: UNAVAILABLE_RETRY_AFTER,
                    source: Some(Box::new(cancelled)),
                }),
            },
        }
    }

    /// Judges `key`'s counter under `policy` and, when it allows one more
    /// attempt, counts that attempt, as one atomic step: the count is a
    /// compare-and-swap on the state that was judged, so of N concurrent callers
    /// at most the allowed number are counted, and everyone else is refused
    /// without being counted (a refused attempt never extends the lock).
    ///
    /// A caller that keeps losing the swap gives up after `threshold + 2` reads,
    /// which only happens while others are being counted, and is refused for
    /// the policy's shortest wait. `read` is the counter's state when the
    /// caller read it already: the first judgement uses it. A stale state
    /// that allows the attempt only loses the swap and is read again; one
    /// that refuses it refuses (the lock it shows held a moment ago; only a
    /// reset or an unlock ends one early), without counting.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] and other store failures.
    pub(crate) async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        policy: &BackoffPolicy,
        mut read: Option<AttemptState>,
    ) -> Result<Reservation, AuthError> {
        for _ in 0..policy.threshold.saturating_add(2) {
            let now = self.now();
            let state = match read.take() {
                Some(state) => state,
                None => self.attempts.attempts(key, now).await?,
            };
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
