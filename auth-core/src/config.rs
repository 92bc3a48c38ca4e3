//! Engine settings, with documented defaults, checked once when the engine is
//! built.

use time::{Duration, OffsetDateTime};

use crate::ConfigError;
use crate::log_sampling::LogSampling;
use crate::mail::{Locale, OutboxConfig};
use crate::store::AttemptState;

/// Exponential backoff over a counter (S6): once `threshold` attempts are
/// counted, each further attempt must wait `base x 2^(count - threshold)` after
/// the previous one, at most `cap`. The counter expires `window` after the last
/// counted attempt.
///
/// ```
/// use auth_core::BackoffPolicy;
/// use time::Duration;
///
/// let p = BackoffPolicy::ACCOUNT_LOGIN; // 5 failures, 5 s doubling, 15 min cap
/// assert_eq!(p.delay(4), None);
/// assert_eq!(p.delay(5), Some(Duration::seconds(5)));
/// assert_eq!(p.delay(6), Some(Duration::seconds(10)));
/// assert_eq!(p.delay(40), Some(Duration::minutes(15)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Attempts allowed before any wait.
    pub threshold: u32,
    /// First wait.
    pub base: Duration,
    /// Longest wait.
    pub cap: Duration,
    /// How long a counter lives after its last counted attempt.
    pub window: Duration,
}

impl BackoffPolicy {
    /// Failed logins per account: 5, then 5 s doubling up to 15 min; forgotten
    /// after 24 h without a failure.
    pub const ACCOUNT_LOGIN: Self = Self {
        threshold: 5,
        base: Duration::seconds(5),
        cap: Duration::minutes(15),
        window: Duration::hours(24),
    };
    /// Failed logins per IP, across accounts (credential stuffing): 20, then 1 s
    /// doubling up to 15 min; forgotten after 1 h.
    pub const IP_LOGIN: Self = Self {
        threshold: 20,
        base: Duration::seconds(1),
        cap: Duration::minutes(15),
        window: Duration::hours(1),
    };
    /// Registrations, reset requests and verification resends per IP: 10, then
    /// 30 s doubling up to 1 h; forgotten after 1 h.
    pub const IP_REQUESTS: Self = Self {
        threshold: 10,
        base: Duration::seconds(30),
        cap: Duration::hours(1),
        window: Duration::hours(1),
    };
    /// Failed logins per IPv6 /48 network, across its /64s and accounts: 200
    /// (ten times [`Self::IP_LOGIN`]'s, room for a site's many users), then
    /// the same 1 s doubling up to 15 min; forgotten after 1 h.
    pub const NETWORK_LOGIN: Self = Self {
        threshold: 200,
        ..Self::IP_LOGIN
    };
    /// Registrations, reset requests and resends per IPv6 /48 network: 100
    /// (ten times [`Self::IP_REQUESTS`]'s), then the same 30 s doubling up to
    /// 1 h; forgotten after 1 h.
    pub const NETWORK_REQUESTS: Self = Self {
        threshold: 100,
        ..Self::IP_REQUESTS
    };
    /// Mail per account (reset links, verification resends, notices of a
    /// registration of a taken address; each kind its own counter): 3 mails,
    /// then 1 min doubling up to 1 h after the last mail sent; forgotten after
    /// 24 h. Only mails sent are counted, so a refused request never extends
    /// the wait (S6): the owner always gets the next mail at most 1 h after the
    /// last one. Over the limit, requests still answer "accepted" but send no
    /// mail (no mail bombing, no enumeration).
    pub const ACCOUNT_REQUESTS: Self = Self {
        threshold: 3,
        base: Duration::minutes(1),
        cap: Duration::hours(1),
        window: Duration::hours(24),
    };

    /// The wait required after `count` counted attempts, if any.
    #[must_use]
    pub fn delay(&self, count: u32) -> Option<Duration> {
        let mut delay = self.base;
        for _ in 0..count.checked_sub(self.threshold)? {
            if delay >= self.cap {
                break;
            }
            delay = delay.saturating_mul(2);
        }
        Some(delay.min(self.cap))
    }

    /// How long to wait at `now` given a counter's state; `None` when allowed.
    #[must_use]
    pub fn retry_after(&self, state: &AttemptState, now: OffsetDateTime) -> Option<Duration> {
        let until = state.last_at? + self.delay(state.count)?;
        (until > now).then(|| until - now)
    }

    fn validate(&self, name: &'static str) -> Result<(), ConfigError> {
        let ok = self.threshold >= 1
            && self.base > Duration::ZERO
            && self.cap >= self.base
            && self.window >= self.cap;
        ok.then_some(()).ok_or(ConfigError::Invalid(name))
    }
}

/// Engine settings. Start from [`AuthConfig::default`] and change what you need;
/// [`crate::Auth::builder`] checks them.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Name in emails and refused as a password (default "Auth").
    pub service_name: String,
    /// Base of every link in emails, for example `https://auth.example.com`; never
    /// taken from a request (default `http://localhost:8080`).
    pub public_url: String,
    /// Path of the page that verifies an email (default `/auth/verify-email`).
    pub verify_path: String,
    /// Path of the page that resets a password (default `/auth/reset-password`).
    pub reset_path: String,
    /// Lifetime of verification tokens (default 24 h).
    pub verification_ttl: Duration,
    /// Lifetime of reset tokens (default 30 min).
    pub reset_ttl: Duration,
    /// A session dies after this long without activity (default 30 min).
    pub session_idle_timeout: Duration,
    /// A session dies this long after login, whatever its activity (default 24 h).
    pub session_lifetime: Duration,
    /// The absolute lifetime of a "remember me" login (default and maximum 30 days).
    pub remember_me_lifetime: Duration,
    /// Activity is written back at most this often per session (default 60 s), so
    /// most authenticated requests cost no store write.
    pub touch_interval: Duration,
    /// Most live sessions per user (default 100): a new sign-in beyond it ends
    /// the oldest sessions.
    pub max_sessions_per_user: usize,
    /// How recent a session's sign-in must be for sensitive operations such as
    /// revoking the other sessions without giving the password again (default
    /// 10 min, S14).
    pub reauthentication_window: Duration,
    /// How long a second-factor challenge can be redeemed after the first
    /// factor passed (default 5 min).
    pub second_factor_ttl: Duration,
    /// Whether login needs a verified email (default true).
    pub require_verified_email: bool,
    /// When true (default), registering a taken email answers like a new one and
    /// mails the owner; when false it answers `email_taken` (S3).
    pub enumeration_protection: bool,
    /// Whether every login mails a new-session notice (default false).
    pub notify_new_session: bool,
    /// Failed logins per account.
    pub account_lockout: BackoffPolicy,
    /// Consecutive failures after which only a password reset unlocks the account
    /// (default 100, per NIST SP 800-63B).
    pub reset_required_after: u32,
    /// Failed logins per client IP.
    pub ip_login_limit: BackoffPolicy,
    /// Registrations, reset requests and resends per client IP.
    pub ip_request_limit: BackoffPolicy,
    /// Failed logins per IPv6 /48 network, on top of `ip_login_limit` per /64
    /// (S6; default [`BackoffPolicy::NETWORK_LOGIN`]). Keep its threshold
    /// above `ip_login_limit`'s (one /64 alone should meet its own limit
    /// first); raising the per-IP limit does not raise this one. IPv4 clients
    /// have no network limit.
    pub network_login_limit: BackoffPolicy,
    /// Registrations, reset requests and resends per IPv6 /48 network, on top
    /// of `ip_request_limit` (S6; default [`BackoffPolicy::NETWORK_REQUESTS`]).
    /// Keep its threshold above `ip_request_limit`'s.
    pub network_request_limit: BackoffPolicy,
    /// Mail per account (reset, resend, owner notices); time-based (S6).
    pub account_request_limit: BackoffPolicy,
    /// The mail outbox.
    pub outbox: OutboxConfig,
    /// The language of every email (default [`Locale::ENGLISH`]). The engine
    /// keeps no per-user locale yet, so every recipient gets this one; the
    /// email templates must support it, which the builder checks.
    pub default_locale: Locale,
    /// An account whose email is still unverified this long after registration
    /// is deleted by [`crate::Auth::purge_expired`], freeing its address for
    /// its real owner (S3; default 7 days; `None` keeps them). At least
    /// `verification_ttl`.
    pub unverified_account_ttl: Option<Duration>,
    /// Refused requests (per-IP limits) are audited as one record per kind,
    /// client and detail per window of this length, with a count (S12; default
    /// 1 min).
    pub audit_aggregation_window: Duration,
    /// Audit events older than this are deleted by
    /// [`crate::Auth::purge_expired`] (S12; default 400 days, a year and a
    /// margin; `None` keeps them).
    pub audit_retention: Option<Duration>,
    /// Sampling of log lines that repeat under a flood or an outage (S9): the
    /// engine's (a failing audit sink or store in background work, dropped
    /// work or mail, a request without a client address) and the web layer's
    /// 5xx lines. Per reason, the first line per second in full, then
    /// summaries that count the rest and list their request ids.
    pub log_sampling: LogSampling,
}

/// Longest "remember me" lifetime accepted.
pub const MAX_SESSION_LIFETIME: Duration = Duration::days(30);

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            service_name: "Auth".to_owned(),
            public_url: "http://localhost:8080".to_owned(),
            verify_path: "/auth/verify-email".to_owned(),
            reset_path: "/auth/reset-password".to_owned(),
            verification_ttl: Duration::hours(24),
            reset_ttl: Duration::minutes(30),
            session_idle_timeout: Duration::minutes(30),
            session_lifetime: Duration::hours(24),
            remember_me_lifetime: MAX_SESSION_LIFETIME,
            touch_interval: Duration::seconds(60),
            max_sessions_per_user: 100,
            reauthentication_window: Duration::minutes(10),
            second_factor_ttl: Duration::minutes(5),
            require_verified_email: true,
            enumeration_protection: true,
            notify_new_session: false,
            account_lockout: BackoffPolicy::ACCOUNT_LOGIN,
            reset_required_after: 100,
            ip_login_limit: BackoffPolicy::IP_LOGIN,
            ip_request_limit: BackoffPolicy::IP_REQUESTS,
            network_login_limit: BackoffPolicy::NETWORK_LOGIN,
            network_request_limit: BackoffPolicy::NETWORK_REQUESTS,
            account_request_limit: BackoffPolicy::ACCOUNT_REQUESTS,
            outbox: OutboxConfig::default(),
            default_locale: Locale::ENGLISH,
            unverified_account_ttl: Some(Duration::days(7)),
            audit_aggregation_window: Duration::minutes(1),
            audit_retention: Some(Duration::days(400)),
            log_sampling: LogSampling::default(),
        }
    }
}

impl AuthConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check =
            |ok: bool, what: &'static str| ok.then_some(()).ok_or(ConfigError::Invalid(what));
        let url = &self.public_url;
        check(
            (url.starts_with("https://") || url.starts_with("http://"))
                && !url.ends_with('/')
                && !url.contains(['?', '#', ' ']),
            "public_url must be an http(s) URL without a trailing slash, query or fragment",
        )?;
        check(
            self.verify_path.starts_with('/') && self.reset_path.starts_with('/'),
            "verify_path and reset_path must start with '/'",
        )?;
        check(
            !self.service_name.trim().is_empty(),
            "service_name must not be empty",
        )?;
        let positive = [
            self.verification_ttl,
            self.reset_ttl,
            self.session_idle_timeout,
            self.touch_interval,
            self.reauthentication_window,
            self.second_factor_ttl,
            self.audit_aggregation_window,
            self.audit_retention.unwrap_or(Duration::MAX),
        ];
        check(
            positive.iter().all(|d| *d > Duration::ZERO),
            "lifetimes and intervals must be positive",
        )?;
        check(
            self.session_idle_timeout <= self.session_lifetime
                && self.session_lifetime <= self.remember_me_lifetime
                && self.remember_me_lifetime <= MAX_SESSION_LIFETIME,
            "need session_idle_timeout <= session_lifetime <= remember_me_lifetime <= 30 days",
        )?;
        check(
            self.touch_interval < self.session_idle_timeout,
            "touch_interval must be below session_idle_timeout",
        )?;
        check(
            self.max_sessions_per_user >= 1,
            "max_sessions_per_user must be at least 1",
        )?;
        check(
            self.unverified_account_ttl
                .is_none_or(|ttl| ttl >= self.verification_ttl),
            "unverified_account_ttl must be at least verification_ttl",
        )?;
        check(
            self.reset_required_after > self.account_lockout.threshold,
            "reset_required_after must exceed the account lockout threshold",
        )?;
        self.account_lockout
            .validate("account_lockout: need threshold >= 1, 0 < base <= cap <= window")?;
        self.ip_login_limit
            .validate("ip_login_limit: need threshold >= 1, 0 < base <= cap <= window")?;
        self.ip_request_limit
            .validate("ip_request_limit: need threshold >= 1, 0 < base <= cap <= window")?;
        self.log_sampling.validate()?;
        self.network_login_limit
            .validate("network_login_limit: need threshold >= 1, 0 < base <= cap <= window")?;
        self.network_request_limit
            .validate("network_request_limit: need threshold >= 1, 0 < base <= cap <= window")?;
        self.account_request_limit
            .validate("account_request_limit: need threshold >= 1, 0 < base <= cap <= window")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = AuthConfig::default();
        c.validate().unwrap();
        assert_eq!(c.verification_ttl, Duration::hours(24));
        assert_eq!(c.reset_ttl, Duration::minutes(30));
        assert_eq!(c.session_idle_timeout, Duration::minutes(30));
        assert_eq!(c.session_lifetime, Duration::hours(24));
        assert_eq!(c.reset_required_after, 100);
        assert_eq!(c.max_sessions_per_user, 100);
        assert_eq!(c.reauthentication_window, Duration::minutes(10));
        assert_eq!(
            (c.ip_login_limit.threshold, c.network_login_limit.threshold),
            (20, 200)
        );
        assert_eq!(
            (
                c.ip_request_limit.threshold,
                c.network_request_limit.threshold
            ),
            (10, 100)
        );
    }

    #[test]
    fn bad_settings_are_refused_at_build_time() {
        let cases: [fn(&mut AuthConfig); 13] = [
            (|c| c.log_sampling.ids_per_summary = 0),
            (|c| c.network_login_limit.threshold = 0),
            (|c| c.network_request_limit.base = Duration::ZERO),
            (|c| c.public_url = "auth.example.com".into()),
            (|c| c.public_url = "https://auth.example.com/".into()),
            (|c| c.reset_ttl = Duration::ZERO),
            (|c| c.remember_me_lifetime = Duration::days(31)),
            (|c| c.session_idle_timeout = Duration::hours(48)),
            (|c| c.account_lockout.threshold = 0),
            (|c| c.ip_login_limit.cap = Duration::seconds(0)),
            (|c| c.reset_required_after = 3),
            (|c| c.max_sessions_per_user = 0),
            (|c| c.reauthentication_window = Duration::ZERO),
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut c = AuthConfig::default();
            change(&mut c);
            assert!(
                matches!(c.validate(), Err(ConfigError::Invalid(_))),
                "case {i}"
            );
        }
    }

    #[test]
    fn s6_backoff_doubles_from_the_threshold_up_to_the_cap() {
        let p = BackoffPolicy::ACCOUNT_LOGIN;
        let delays: Vec<_> = (4..=14)
            .map(|n| p.delay(n).map(Duration::whole_seconds))
            .collect();
        assert_eq!(
            delays,
            [
                None,
                Some(5),
                Some(10),
                Some(20),
                Some(40),
                Some(80),
                Some(160),
                Some(320),
                Some(640),
                Some(900),
                Some(900)
            ]
        );
        assert_eq!(p.delay(u32::MAX), Some(Duration::minutes(15)));
    }

    #[test]
    fn s6_retry_after_counts_from_the_last_attempt() {
        let p = BackoffPolicy::ACCOUNT_LOGIN;
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let state = AttemptState {
            count: 5,
            last_at: Some(t0),
        };
        assert_eq!(p.retry_after(&state, t0), Some(Duration::seconds(5)));
        assert_eq!(
            p.retry_after(&state, t0 + Duration::seconds(4)),
            Some(Duration::seconds(1))
        );
        assert_eq!(p.retry_after(&state, t0 + Duration::seconds(5)), None);
        assert_eq!(
            p.retry_after(
                &AttemptState {
                    count: 4,
                    last_at: Some(t0)
                },
                t0
            ),
            None
        );
    }
}
