//! Request and response bodies. Requests refuse unknown fields (S11).

use auth_core::store::{SessionRecord, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email address (at most 254 bytes).
    pub email: String,
    /// Password (8 to 128 characters by default).
    pub password: String,
}

/// `POST /auth/verify-email`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The token from the emailed link.
    pub token: String,
}

/// `POST /auth/verify-email/resend` and `POST /auth/password/forgot`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    /// Email address.
    pub email: String,
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Keep the session up to its long lifetime (30 days by default) and set a
    /// persistent cookie.
    #[serde(default)]
    pub remember_me: bool,
}

/// `POST /auth/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the emailed link.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// `POST /auth/password/change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

/// `DELETE /users/me/sessions`: the current password, needed when the
/// session's sign-in is not recent (S14).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPasswordRequest {
    /// The current password.
    pub password: String,
}

impl std::fmt::Debug for ConfirmPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmPasswordRequest")
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A request was accepted; what follows happens by email.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: &'static str,
}

impl Accepted {
    pub(crate) const VALUE: Self = Self { status: "accepted" };
}

/// The email address was verified.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// Always `verified`.
    pub status: &'static str,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Email address.
    pub email: String,
    /// Whether the address is verified.
    pub email_verified: bool,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.0,
            email: u.email.as_str().to_owned(),
            email_verified: u.email_verified_at.is_some(),
            created_at: u.created_at,
        }
    }
}

/// A session as the API shows it (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Public id, for `DELETE /users/me/sessions/{id}`.
    pub id: Uuid,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the user last proved who they are for this session.
    #[serde(with = "time::serde::rfc3339")]
    pub authenticated_at: OffsetDateTime,
    /// Last recorded activity.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Ends if unused until then.
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    /// Ends then at the latest.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Client address at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    pub(crate) fn new(s: &SessionRecord, current: bool) -> Self {
        Self {
            id: s.id.0,
            created_at: s.created_at,
            authenticated_at: s.authenticated_at,
            last_seen_at: s.last_seen_at,
            idle_expires_at: s.idle_expires_at,
            expires_at: s.absolute_expires_at,
            ip: s.ip.map(|ip| ip.to_string()),
            user_agent: s.user_agent.clone(),
            current,
        }
    }
}

/// A new session: after login or password change.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The user.
    pub user: UserView,
    /// The session.
    pub session: SessionView,
    /// The session token, only when bearer tokens are enabled (browsers use the
    /// cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}
