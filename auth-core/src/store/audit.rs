use std::net::IpAddr;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::{StoreError, UserId};

/// What happened (S12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditKind {
    /// A new account was created.
    Registered,
    /// Someone tried to register an existing email; the owner was told.
    RegistrationDuplicate,
    /// An email address was verified.
    EmailVerified,
    /// A verification email was sent again.
    VerificationResent,
    /// A login succeeded.
    LoginSucceeded,
    /// A login failed (wrong password, unknown account, disabled, unverified).
    LoginFailed,
    /// A login was refused because the account is locked.
    LoginLocked,
    /// A request was refused by a per-IP rate limit.
    RateLimited,
    /// An account reached the lockout threshold.
    AccountLocked,
    /// An account reached the hard limit and now needs a password reset.
    ResetRequired,
    /// A stored hash was upgraded to the current parameters.
    PasswordRehashed,
    /// A session was ended by logout.
    Logout,
    /// Every session of a user was ended by the user.
    LogoutAll,
    /// A password reset was requested.
    PasswordResetRequested,
    /// A password was reset with a token.
    PasswordReset,
    /// A password was changed by its owner.
    PasswordChanged,
    /// A password change was refused (wrong current password, weak new one).
    PasswordChangeFailed,
    /// A session was revoked by its owner.
    SessionRevoked,
    /// An administrator unlocked an account.
    AccountUnlocked,
    /// An administrator disabled an account.
    AccountDisabled,
    /// An account was deleted, with everything the stores kept of it.
    AccountDeleted,
    /// A sensitive operation's password confirmation failed (S14).
    ReauthenticationFailed,
    /// An administrator ended every session of every user.
    AllSessionsRevoked,
    /// An administrator started a password reset for a user.
    PasswordResetStartedByAdmin,
    /// A first factor passed and a second-factor challenge was issued.
    SecondFactorRequired,
    /// A second-factor code was refused (S15).
    SecondFactorFailed,
    /// TOTP enrolment started (a pending secret).
    TotpEnrolmentStarted,
    /// TOTP was confirmed and turned on.
    TotpEnabled,
    /// TOTP was turned off.
    TotpDisabled,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    /// A role was granted to a user (the detail names it).
    RoleGranted,
    /// A role was revoked from a user (the detail names it).
    RoleRevoked,
}

impl AuditKind {
    /// Every kind, for backends that read names back ([`AuditKind::from_name`]).
    pub const ALL: [Self; 33] = [
        Self::Registered,
        Self::RegistrationDuplicate,
        Self::EmailVerified,
        Self::VerificationResent,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginLocked,
        Self::RateLimited,
        Self::AccountLocked,
        Self::ResetRequired,
        Self::PasswordRehashed,
        Self::Logout,
        Self::LogoutAll,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::PasswordChangeFailed,
        Self::SessionRevoked,
        Self::AccountUnlocked,
        Self::AccountDisabled,
        Self::AccountDeleted,
        Self::ReauthenticationFailed,
        Self::AllSessionsRevoked,
        Self::PasswordResetStartedByAdmin,
        Self::SecondFactorRequired,
        Self::SecondFactorFailed,
        Self::TotpEnrolmentStarted,
        Self::TotpEnabled,
        Self::TotpDisabled,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRegenerated,
        Self::RoleGranted,
        Self::RoleRevoked,
    ];

    /// The kind whose [`AuditKind::as_str`] is `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A stable name for storage and log queries.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::RegistrationDuplicate => "registration_duplicate",
            Self::EmailVerified => "email_verified",
            Self::VerificationResent => "verification_resent",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginLocked => "login_locked",
            Self::RateLimited => "rate_limited",
            Self::AccountLocked => "account_locked",
            Self::ResetRequired => "reset_required",
            Self::PasswordRehashed => "password_rehashed",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::PasswordChangeFailed => "password_change_failed",
            Self::SessionRevoked => "session_revoked",
            Self::AccountUnlocked => "account_unlocked",
            Self::AccountDisabled => "account_disabled",
            Self::AccountDeleted => "account_deleted",
            Self::ReauthenticationFailed => "reauthentication_failed",
            Self::AllSessionsRevoked => "all_sessions_revoked",
            Self::PasswordResetStartedByAdmin => "password_reset_started_by_admin",
            Self::SecondFactorRequired => "second_factor_required",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::TotpEnrolmentStarted => "totp_enrolment_started",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::RoleGranted => "role_granted",
            Self::RoleRevoked => "role_revoked",
        }
    }
}

/// One audit record: who, what, when, from where (S12). It never holds a
/// password, token, session id or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When, in UTC.
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: AuditKind,
    /// The account, when known.
    pub user_id: Option<UserId>,
    /// The normalised email the request named, for events about an account that
    /// may not exist (failed logins, reset requests).
    pub email: Option<String>,
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The request id, to join with the logs.
    pub request_id: Option<String>,
    /// A short machine-readable detail, such as the reason of a failure.
    pub detail: Option<String>,
    /// How many occurrences the record stands for: 1, or more for an
    /// aggregated record of refused requests (S12), whose other fields are
    /// those of the first occurrence in its window.
    pub count: u32,
}

impl AuditEvent {
    /// The aggregation key of a refused request: kind, client address and
    /// detail, and the start of the fixed window of length `window` that
    /// `at` falls in. Occurrences with the same key are one record (S12).
    #[must_use]
    pub fn aggregate_key(&self, window: Duration) -> String {
        let window_s = window.whole_seconds().max(1);
        let start = self.at.unix_timestamp().div_euclid(window_s) * window_s;
        let ip = self.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let detail = self.detail.as_deref().unwrap_or_default();
        format!("{}|{ip}|{detail}|{start}", self.kind.as_str())
    }
}

/// Where audit events go.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Records an event.
    ///
    /// # Errors
    /// Backend failures only.
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError>;

    /// Records an occurrence of a refused request, aggregated (S12): the first
    /// occurrence of [`AuditEvent::aggregate_key`] in its window is stored with
    /// `count` 1, each later one adds one to that record's `count`, so a flood
    /// writes one record per key and window and cannot evict or drown other
    /// evidence.
    ///
    /// # Errors
    /// Backend failures only.
    async fn record_aggregated(
        &self,
        event: AuditEvent,
        window: Duration,
    ) -> Result<(), StoreError>;

    /// Deletes the events recorded before `before` (the retention setting,
    /// S12). Returns how many.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// The most recent events of a user, newest first, at most `limit`.
    ///
    /// # Errors
    /// Backend failures only.
    async fn events_for_user(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::AuditKind;

    /// A new kind must join [`AuditKind::ALL`], or backends that store names
    /// cannot read its events back: this match stops compiling until the kind
    /// is named here, next to the list.
    #[test]
    fn every_kind_is_listed_once_and_reads_back() {
        for kind in AuditKind::ALL {
            match kind {
                AuditKind::Registered
                | AuditKind::RegistrationDuplicate
                | AuditKind::EmailVerified
                | AuditKind::VerificationResent
                | AuditKind::LoginSucceeded
                | AuditKind::LoginFailed
                | AuditKind::LoginLocked
                | AuditKind::RateLimited
                | AuditKind::AccountLocked
                | AuditKind::ResetRequired
                | AuditKind::PasswordRehashed
                | AuditKind::Logout
                | AuditKind::LogoutAll
                | AuditKind::PasswordResetRequested
                | AuditKind::PasswordReset
                | AuditKind::PasswordChanged
                | AuditKind::PasswordChangeFailed
                | AuditKind::SessionRevoked
                | AuditKind::AccountUnlocked
                | AuditKind::AccountDisabled
                | AuditKind::AccountDeleted
                | AuditKind::ReauthenticationFailed
                | AuditKind::AllSessionsRevoked
                | AuditKind::PasswordResetStartedByAdmin
                | AuditKind::SecondFactorRequired
                | AuditKind::SecondFactorFailed
                | AuditKind::TotpEnrolmentStarted
                | AuditKind::TotpEnabled
                | AuditKind::TotpDisabled
                | AuditKind::RecoveryCodeUsed
                | AuditKind::RecoveryCodesRegenerated
                | AuditKind::RoleGranted
                | AuditKind::RoleRevoked => {}
            }
            assert_eq!(AuditKind::from_name(kind.as_str()), Some(kind));
        }
        let mut names: Vec<_> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditKind::ALL.len());
        assert_eq!(AuditKind::from_name("no_such_event"), None);
    }
}
