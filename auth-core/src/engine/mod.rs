//! The engine: every flow, over the store traits.
//!
//! Flows live in one file each (`register.rs`, `login.rs`, `session.rs`,
//! `password.rs`, `admin.rs`); this file holds the shared machinery: the builder,
//! the request context, auditing, token issue, rate-limit checks and session
//! creation.

mod admin;
mod background;
mod builder;
mod limits;
mod login;
mod password;
mod recovery_codes;
mod register;
mod roles;
mod second_factor;
mod session;
mod sign_in;
mod snapshot;
mod totp;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::{Instrument as _, Level};

pub use builder::AuthBuilder;
pub use recovery_codes::RecoveryCodes;
pub use register::Registration;
pub use second_factor::SecondFactorCode;
pub use session::Authenticated;
pub use sign_in::{LoginOutcome, SecondFactorChallenge, SignIn};
pub use totp::{SecondFactorStatus, TotpEnrolment};

use limits::{ClientCounter, ClientLimits, Reservation};

use crate::AuthConfig;
use crate::clock::Clock;
use crate::email::EmailAddress;
use crate::error::{AuthError, StoreError};
use crate::hooks::LifecycleHooks;
use crate::log_sampling::LogSampler;
use crate::mail::{Composer, EmailMessage, Outbox};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::store::{
    AccountReader, AttemptKey, AttemptScope, AttemptState, AttemptStore, AuditEvent, AuditKind,
    AuditSink, ChallengeStore, NewToken, PasswordStore, RecoveryCodeStore, RoleStore,
    SessionRecord, SessionStore, SessionUserCache, TokenStore, TotpStore, User, UserId, UserStore,
};
use crate::token::{OpaqueToken, SecretKey, TokenHash, TokenPurpose};
use background::Background;

/// Who is asking: used for rate limits and the audit trail. Build it from the
/// request (the web adapter decides which IP to trust, S8).
///
/// Flows that apply per-IP limits (login, registration, reset and resend
/// requests, password confirmation) refuse a context without `ip` with
/// [`AuthError::Internal`] rather than run without their limits (S8); a
/// caller outside the web, such as a command-line tool, names its own
/// address ([`RequestContext::from_ip`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Client IP; required by flows with per-IP limits.
    pub ip: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id, joined with the logs.
    pub request_id: Option<String>,
}

impl RequestContext {
    /// A context for a request from `ip`, with no user agent or request id.
    #[must_use]
    pub fn from_ip(ip: IpAddr) -> Self {
        Self {
            ip: Some(ip),
            ..Self::default()
        }
    }
}

/// A request reached a flow with per-IP limits without a client address (S8).
#[derive(Debug, thiserror::Error)]
#[error(
    "no client address in the request context: per-IP limits cannot apply \
     (behind axum, serve with into_make_service_with_connect_info::<SocketAddr>())"
)]
pub struct MissingClientAddress;

/// A new session: the token to hand to the client once, and its record.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session token for the cookie or bearer header. Never store or log it.
    pub token: OpaqueToken,
    /// The stored session.
    pub session: SessionRecord,
    /// Whether it is a "remember me" session, which a client should keep across
    /// browser restarts (a persistent cookie).
    pub remember_me: bool,
}

/// A successful login or password change.
#[derive(Debug, Clone)]
pub struct LoginSuccess {
    /// The user.
    pub user: User,
    /// The new session.
    pub session: NewSession,
}

/// How many expired records a cleanup removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// Tokens.
    pub tokens: u64,
    /// Sessions.
    pub sessions: u64,
    /// Attempt counters.
    pub attempts: u64,
    /// Challenges (second-factor steps and the like).
    pub challenges: u64,
    /// Accounts never verified within `unverified_account_ttl` (S3).
    pub unverified_users: u64,
    /// Audit events older than `audit_retention` (S12).
    pub audit_events: u64,
}

/// The authentication engine. Cheap to clone (an `Arc` inside); build it with
/// [`Auth::builder`] inside a tokio runtime.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Engine>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Engine {
    pub(crate) config: AuthConfig,
    pub(crate) users: Arc<dyn UserStore>,
    /// A user with their password and second factor, in one call where the
    /// backend can.
    pub(crate) accounts: Arc<dyn AccountReader>,
    pub(crate) passwords: Arc<dyn PasswordStore>,
    pub(crate) totp: Arc<dyn TotpStore>,
    pub(crate) recovery_codes: Arc<dyn RecoveryCodeStore>,
    pub(crate) challenges: Arc<dyn ChallengeStore>,
    pub(crate) tokens: Arc<dyn TokenStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    /// The sessions' user snapshots, when the session store keeps them
    /// (DESIGN 8); without it every request reads the user store.
    pub(crate) session_cache: Option<Arc<dyn SessionUserCache>>,
    pub(crate) attempts: Arc<dyn AttemptStore>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) roles: Arc<dyn RoleStore>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) policy: PasswordPolicy,
    pub(crate) key: SecretKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) outbox: Outbox,
    /// Builds each message from the templates and the configured links.
    pub(crate) mail: Composer,
    pub(crate) background: Background,
    /// Samples the lines that repeat under a flood or an outage (S9).
    pub(crate) log: LogSampler,
    /// The application's lifecycle hooks.
    pub(crate) hooks: Arc<dyn LifecycleHooks>,
}

impl Auth {
    /// A builder; see [`AuthBuilder`].
    pub fn builder() -> AuthBuilder {
        AuthBuilder::default()
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The password hasher (for its metrics, or to hash outside the flows).
    #[must_use]
    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The password policy.
    #[must_use]
    pub fn policy(&self) -> &PasswordPolicy {
        &self.inner.policy
    }

    /// The sampler of log lines that repeat under a flood or an outage
    /// (`AuthConfig::log_sampling`, S9). The engine samples its own with it;
    /// a web layer samples its 5xx lines with it too, so one setting covers
    /// both.
    #[must_use]
    pub fn log_sampler(&self) -> &LogSampler {
        &self.inner.log
    }

    /// Messages the outbox dropped (queue full) or gave up on (retries exhausted).
    #[must_use]
    pub fn mail_dropped(&self) -> u64 {
        self.inner.outbox.dropped()
    }

    /// Removes expired tokens, sessions, counters and challenges from the
    /// stores, old audit events, and the accounts whose email was not verified
    /// within `unverified_account_ttl` (S3). Call it on a timer (the example
    /// server does, every few minutes).
    ///
    /// # Errors
    /// The first store failure.
    pub async fn purge_expired(&self) -> Result<Purged, AuthError> {
        let now = self.inner.now();
        let unverified = match self.inner.config.unverified_account_ttl {
            Some(ttl) => self.inner.users.delete_unverified_users(now - ttl).await?,
            None => Vec::new(),
        };
        // The application's rows for those accounts go too.
        let ctx = RequestContext::default();
        for &user in &unverified {
            let e = &self.inner;
            e.hook("user_deleted", &ctx, e.hooks.user_deleted(user))
                .await;
        }
        Ok(Purged {
            tokens: self.inner.tokens.delete_expired_tokens(now).await?,
            sessions: self.inner.sessions.delete_expired_sessions(now).await?,
            attempts: self.inner.attempts.delete_expired_attempts(now).await?,
            challenges: self.inner.challenges.delete_expired_challenges(now).await?,
            unverified_users: unverified.len() as u64,
            audit_events: match self.inner.config.audit_retention {
                Some(keep) => self.inner.audit.delete_events_before(now - keep).await?,
                None => 0,
            },
        })
    }

    /// Checks that every store answers, with one cheap read on each: for a
    /// readiness probe.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] (or `Internal`) from the first store that fails.
    pub async fn check_ready(&self) -> Result<(), AuthError> {
        let e = &self.inner;
        let (nobody, nothing, now) = (UserId(uuid::Uuid::nil()), TokenHash([0; 32]), e.now());
        e.users.user_by_id(nobody).await?;
        e.tokens
            .peek_token(TokenPurpose::PasswordReset, &nothing, now)
            .await?;
        e.sessions.session_by_token(&nothing).await?;
        e.attempts
            .attempts(
                &AttemptKey::Account(AttemptScope::Login, String::new()),
                now,
            )
            .await?;
        e.audit.events_for_user(nobody, 1).await?;
        Ok(())
    }

    /// Finishes background work and sends every queued email, then stops the
    /// outbox. Call it on graceful shutdown; later flows still work but their mail
    /// is dropped.
    pub async fn shutdown(&self) {
        self.inner.background.wait_idle().await;
        self.inner.outbox.drain().await;
    }

    /// Waits until no background work runs (the account a registration
    /// creates, the mail a reset request prepares, ...) and the outbox has
    /// sent (or given up on) every queued message, without stopping anything:
    /// for tests, and for tools that act on what a flow left to the
    /// background, such as a command-line tool that registers an account and
    /// then uses it. A server never needs it; under steady traffic it may
    /// wait as long as work keeps arriving.
    pub async fn settle(&self) {
        self.inner.background.wait_idle().await;
        self.inner.outbox.wait_idle().await;
    }

    /// Runs `work` in the background with the request's span (its request id);
    /// a failure is logged as `failure`.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when too much work is pending: the request
    /// must not be answered as accepted when its work will never run (S13).
    pub(super) fn in_background<F, Fut>(
        &self,
        ctx: &RequestContext,
        failure: &'static str,
        work: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(Self, RequestContext) -> Fut,
        Fut: Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        let work = work(self.clone(), ctx.clone()).instrument(tracing::Span::current());
        let (log, id) = (self.inner.log.clone(), ctx.request_id.clone());
        let admitted = self
            .inner
            .background
            .spawn(ctx.request_id.as_deref(), async move {
                if let Err(err) = work.await
                    && log.sample(Level::ERROR, failure, id.as_deref())
                {
                    tracing::error!(error = %err, "{failure}");
                }
            });
        if admitted {
            Ok(())
        } else {
            Err(AuthError::Unavailable {
                retry_after: crate::UNAVAILABLE_RETRY_AFTER,
                source: Some("too much background work pending".into()),
            })
        }
    }

    /// A mail request (reset, resend): checks and counts the per-IP limit,
    /// parses the address, then answers, leaving the rest to the background:
    /// the address's own mail limit, then `follow` with the address and
    /// whether it is over that limit (then no mail goes out; the answer is the
    /// same). Nothing before the answer depends on the address, whether an
    /// account has it or how many mails it got (S3: a throttled address would
    /// otherwise skip a counter write and answer sooner); a failure in the
    /// background is logged as `failure`.
    pub(super) async fn answer_mail_request<F, Fut>(
        &self,
        scope: AttemptScope,
        email: &str,
        ctx: &RequestContext,
        failure: &'static str,
        follow: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(Self, EmailAddress, bool, RequestContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        let e = &self.inner;
        e.admit_request(scope, ctx).await?;
        let email = EmailAddress::parse(email)?;
        self.in_background(ctx, failure, move |auth, ctx| async move {
            let key = AttemptKey::Account(scope, email.normalized().to_owned());
            let throttled = !auth.inner.take_mail_slot(&key).await?;
            follow(auth, email, throttled, ctx).await
        })
    }
}

impl Engine {
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The client address of a request that per-IP limits apply to: a request
    /// without one is refused and logged, never served without its limits (S8).
    fn client_address(&self, ctx: &RequestContext) -> Result<IpAddr, AuthError> {
        ctx.ip.ok_or_else(|| {
            const REASON: &str = "request without a client address";
            if self
                .log
                .sample(Level::ERROR, REASON, ctx.request_id.as_deref())
            {
                tracing::error!(request_id = ctx.request_id, "{MissingClientAddress}");
            }
            AuthError::internal(MissingClientAddress)
        })
    }

    /// Writes an audit event. A failing audit sink is logged and does not fail the
    /// flow: the outcome already happened.
    pub(crate) async fn audit(
        &self,
        kind: AuditKind,
        ctx: &RequestContext,
        user_id: Option<UserId>,
        email: Option<&str>,
        detail: Option<&str>,
    ) {
        let event = AuditEvent {
            at: self.now(),
            kind,
            user_id,
            email: email.map(str::to_owned),
            ip: ctx.ip,
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            detail: detail.map(str::to_owned),
            count: 1,
        };
        tracing::info!(event = kind.as_str(), user.id = ?user_id, detail, "audit");
        if let Err(err) = self.audit.record(event).await {
            self.audit_failed(kind, &err, ctx);
        }
    }

    /// Logs a failed audit write, sampled: an audit store outage fails every
    /// request's write (S9).
    fn audit_failed(&self, kind: AuditKind, err: &StoreError, ctx: &RequestContext) {
        const REASON: &str = "writing the audit event failed";
        if self
            .log
            .sample(Level::ERROR, REASON, ctx.request_id.as_deref())
        {
            tracing::error!(event = kind.as_str(), error = %err, "{REASON}");
        }
    }

    /// Audits a refused request, aggregated per kind, client and detail over
    /// `audit_aggregation_window` (S12): a flood of refusals is one record with
    /// a count, not one record each. `client` is the address of the counter
    /// that refused (an IPv6 client's /64 or /48), not the request's own, so
    /// rotating through a network's addresses does not make a record each.
    pub(crate) async fn audit_refused(
        &self,
        kind: AuditKind,
        ctx: &RequestContext,
        client: IpAddr,
        detail: &str,
    ) {
        let event = AuditEvent {
            at: self.now(),
            kind,
            user_id: None,
            email: None,
            ip: Some(client),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            detail: Some(detail.to_owned()),
            count: 1,
        };
        let window = self.config.audit_aggregation_window;
        if let Err(err) = self.audit.record_aggregated(event, window).await {
            self.audit_failed(kind, &err, ctx);
        }
    }

    /// Creates, stores and returns a single-use token.
    pub(crate) async fn issue_token(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
        ttl: time::Duration,
    ) -> Result<OpaqueToken, AuthError> {
        let (token, bytes) = OpaqueToken::generate().map_err(AuthError::internal)?;
        let now = self.now();
        let record = NewToken {
            hash: self.key.hash(purpose, &bytes),
            purpose,
            user_id,
            created_at: now,
            expires_at: now + ttl,
        };
        self.tokens.insert_token(record).await?;
        Ok(token)
    }

    /// The per-account mail limit (S6): whether one more mail may go to the
    /// account keyed by `key` now, counting it if so.
    ///
    /// Time-based: the counter counts mails sent, not requests, so a refused
    /// request changes nothing and the owner can always get the next mail within
    /// the policy's delay after the last one sent (with the defaults: 3 at once,
    /// then 1 min doubling up to 1 h), whatever an attacker sends. Of concurrent
    /// requests that saw the same count, only the one whose increment follows it
    /// directly sends.
    pub(crate) async fn take_mail_slot(&self, key: &AttemptKey) -> Result<bool, AuthError> {
        let policy = &self.config.account_request_limit;
        let now = self.now();
        let before = self.attempts.attempts(key, now).await?;
        if policy.retry_after(&before, now).is_some() {
            return Ok(false);
        }
        let after = self.attempts.increment(key, now, policy.window).await?;
        Ok(after.count == before.count.saturating_add(1))
    }

    /// Refuses the request when the client is over one of its limits for
    /// `scope` (its address, and for IPv6 its /48), with the longer wait.
    pub(crate) async fn check_ip(
        &self,
        scope: AttemptScope,
        limits: ClientLimits<'_>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.check_client(scope, limits, ctx, None).await.map(drop)
    }

    /// [`Engine::check_ip`], reading `also`'s counter in the same store
    /// call (one round trip where the store can), and answering its state.
    pub(crate) async fn check_client(
        &self,
        scope: AttemptScope,
        limits: ClientLimits<'_>,
        ctx: &RequestContext,
        also: Option<&AttemptKey>,
    ) -> Result<Option<AttemptState>, AuthError> {
        let ip = self.client_address(ctx)?;
        let now = self.now();
        let counters = limits.counters(scope, ip);
        let keys: Vec<AttemptKey> = counters
            .iter()
            .map(|c| c.key.clone())
            .chain(also.cloned())
            .collect();
        let mut states = self.attempts.attempts_of(&keys, now).await?;
        if states.len() != keys.len() {
            // A store that answered fewer states would leave a limit unjudged.
            return Err(AuthError::internal(
                "the attempt store answered a state count unlike the keys'",
            ));
        }
        let also = also.and_then(|_| states.pop());
        let mut refused = None;
        for (counter, state) in counters.into_iter().zip(states) {
            if let Some(wait) = counter.policy.retry_after(&state, now)
                && refused.as_ref().is_none_or(|(longest, _)| wait > *longest)
            {
                refused = Some((wait, counter));
            }
        }
        match refused {
            Some((retry_after, counter)) => {
                Err(self.rate_limited(&counter, retry_after, ctx).await)
            }
            None => Ok(also),
        }
    }

    /// Audits a request `counter` refused (aggregated, S12) and returns the
    /// error that answers it.
    async fn rate_limited(
        &self,
        counter: &ClientCounter<'_>,
        retry_after: time::Duration,
        ctx: &RequestContext,
    ) -> AuthError {
        self.audit_refused(
            AuditKind::RateLimited,
            ctx,
            counter.address,
            &counter.detail(),
        )
        .await;
        AuthError::RateLimited { retry_after }
    }

    /// Checks and counts a request from the client against the per-client
    /// request limits (registration, reset and resend requests), each counter
    /// in one atomic step (S6): of concurrent requests, no more than the limit
    /// are admitted.
    pub(crate) async fn admit_request(
        &self,
        scope: AttemptScope,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let ip = self.client_address(ctx)?;
        for counter in ClientLimits::requests(&self.config).counters(scope, ip) {
            if let Reservation::Locked(retry_after) = self
                .reserve_attempt(&counter.key, counter.policy, None)
                .await?
            {
                return Err(self.rate_limited(&counter, retry_after, ctx).await);
            }
        }
        Ok(())
    }

    /// Counts one attempt from the client for `scope`, in each of its counters.
    pub(crate) async fn count_ip(
        &self,
        scope: AttemptScope,
        limits: ClientLimits<'_>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let ip = self.client_address(ctx)?;
        let now = self.now();
        for counter in limits.counters(scope, ip) {
            self.attempts
                .increment(&counter.key, now, counter.policy.window)
                .await?;
        }
        Ok(())
    }

    /// Awaits an application hook; a failure is logged with the request id
    /// (sampled, S9) and never fails the flow, whose change is stored.
    pub(crate) async fn hook(
        &self,
        name: &'static str,
        ctx: &RequestContext,
        hook: impl Future<Output = Result<(), crate::BoxError>>,
    ) {
        const REASON: &str = "a lifecycle hook failed";
        if let Err(err) = hook.await
            && self
                .log
                .sample(Level::ERROR, REASON, ctx.request_id.as_deref())
        {
            tracing::error!(hook = name, error = %err, "{REASON}");
        }
    }

    pub(crate) fn send(&self, message: EmailMessage) {
        self.outbox.enqueue(message);
    }
}
