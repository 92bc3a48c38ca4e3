//! Request and response bodies. Requests refuse unknown fields (S11).

use auth_core::store::{AuthMethod, SessionRecord, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /auth/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email address (at most 254 bytes).
    pub email: String,
    /// Password (8 to 128 characters by default).
    pub password: String,
    /// The application's own data for the new account (a JSON object), which
    /// its lifecycle hooks check (422 `invalid_profile` when refused) and
    /// store. A service without such hooks refuses any profile.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /auth/verify-email`.
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the emailed link.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// `POST /auth/password/change`.
#[derive(Deserialize, ToSchema)]
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

/// What `Debug` shows instead of a password or token (S10).
const REDACTED: &str = "[redacted]";

/// `Debug` that shows the listed fields and hides the secret ones (S10): a
/// request or response logged with `{:?}` never carries a password or token.
/// Every field must be listed as shown or hidden: the struct is destructured
/// without `..`, so a field added later does not compile until it is sorted
/// into one of the two lists.
macro_rules! redacted_debug {
    ($ty:ident { shown: [$($shown:ident),*], hidden: [$($hidden:ident),*] }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let Self { $($shown,)* $($hidden: _,)* } = self;
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), $shown))*
                    $(.field(stringify!($hidden), &REDACTED))*
                    .finish()
            }
        }
    };
}

/// `POST /auth/login/second-factor`: the challenge from the login answer and
/// exactly one of a TOTP code or a recovery code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// The challenge from `second_factor_required`.
    pub challenge: String,
    /// The six-digit code from the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// One of the recovery codes (`xxxx-xxxx-xxxx-xxxx`).
    #[serde(default)]
    pub recovery_code: Option<String>,
}

redacted_debug!(SecondFactorRequest {
    shown: [],
    hidden: [challenge, code, recovery_code]
});

/// `POST /users/me/mfa/totp/confirm`: a code from the newly set-up app.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCodeRequest {
    /// The six-digit code.
    pub code: String,
}

redacted_debug!(TotpCodeRequest {
    shown: [],
    hidden: [code]
});

/// `DELETE /users/me/mfa/totp`: the current password and a TOTP code, or a
/// recovery code alone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotpRequest {
    /// The current password (with `code`).
    #[serde(default)]
    pub password: Option<String>,
    /// A TOTP code (with `password`).
    #[serde(default)]
    pub code: Option<String>,
    /// A recovery code (alone).
    #[serde(default)]
    pub recovery_code: Option<String>,
}

redacted_debug!(DisableTotpRequest {
    shown: [],
    hidden: [password, code, recovery_code]
});

/// `POST /users/me/mfa/recovery-codes`: exactly one of a TOTP code or a
/// recovery code, proving the second factor.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorProofRequest {
    /// The six-digit code from the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// One of the recovery codes (`xxxx-xxxx-xxxx-xxxx`).
    #[serde(default)]
    pub recovery_code: Option<String>,
}

redacted_debug!(SecondFactorProofRequest {
    shown: [],
    hidden: [code, recovery_code]
});

/// The login answer when a second factor is due.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorRequired {
    /// The pending sign-in.
    pub second_factor_required: ChallengeView,
}

/// A pending sign-in's challenge.
#[derive(Serialize, ToSchema)]
pub struct ChallengeView {
    /// Send it to `POST /auth/login/second-factor` with a code; single use,
    /// short-lived (5 minutes by default).
    pub challenge: String,
    /// What can answer it: `totp`, `recovery_code`.
    pub methods: Vec<String>,
    /// Until when it can be redeemed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

redacted_debug!(ChallengeView {
    shown: [methods, expires_at],
    hidden: [challenge]
});

/// `POST /auth/login`: signed in, or a second factor is due.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    /// Signed in; the cookie is set.
    SignedIn(SessionResponse),
    /// The password was right; answer the challenge with a second factor.
    SecondFactorRequired(SecondFactorRequired),
}

/// A started TOTP enrolment: for the user's authenticator app, shown once.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolmentView {
    /// The secret in base32, to type into an app.
    pub secret: String,
    /// The `otpauth://totp/...` URI.
    pub otpauth_uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

redacted_debug!(TotpEnrolmentView {
    shown: [],
    hidden: [secret, otpauth_uri, qr_svg]
});

/// New recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesView {
    /// Ten single-use codes.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodesView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecoveryCodesView(<{} redacted>)",
            self.recovery_codes.len()
        )
    }
}

/// The user's second factors.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorsView {
    /// TOTP is on: sign-in asks for a code.
    pub totp_enabled: bool,
    /// An enrolment was started and not confirmed.
    pub totp_pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

redacted_debug!(RegisterRequest {
    shown: [email],
    hidden: [password, profile]
});
redacted_debug!(VerifyEmailRequest {
    shown: [],
    hidden: [token]
});
redacted_debug!(LoginRequest {
    shown: [email, remember_me],
    hidden: [password]
});
redacted_debug!(ResetPasswordRequest {
    shown: [],
    hidden: [token, new_password]
});
redacted_debug!(ChangePasswordRequest {
    shown: [],
    hidden: [current_password, new_password]
});
redacted_debug!(ConfirmPasswordRequest {
    shown: [],
    hidden: [password]
});

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
    /// How: `password`, `totp`, `recovery_code`, ...
    pub methods: Vec<String>,
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
            methods: s.methods.iter().map(AuthMethod::to_storage).collect(),
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
#[derive(Serialize, ToSchema)]
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

/// Shows whether a token was handed out, never the token (S10).
impl std::fmt::Debug for SessionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            user,
            session,
            token,
        } = self;
        f.debug_struct("SessionResponse")
            .field("user", user)
            .field("session", session)
            .field("token", &token.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: [&str; 3] = [
        "hunter2-correct-horse",
        "zG9tZS1zZWNyZXQtdG9rZW4tdGhhdC1pcy00My1jaGFycw",
        "new-secret-battery-staple",
    ];

    fn assert_hidden(debug: &str) {
        for secret in SECRETS {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains(REDACTED), "{debug}");
    }

    /// S10: `{:?}` of every request and response that holds a password or
    /// token shows none of it.
    #[test]
    fn s10_debug_of_dtos_hides_passwords_and_tokens() {
        let [pw, token, new_pw] = SECRETS.map(str::to_owned);
        let email = "someone@example.com".to_owned();
        let register = RegisterRequest {
            email: email.clone(),
            password: pw.clone(),
            profile: serde_json::from_str(&format!(r#"{{"secret": "{token}"}}"#)).ok(),
        };
        let debug = format!("{register:?}");
        assert_hidden(&debug);
        assert!(debug.contains(&email), "the address stays visible: {debug}");
        assert_hidden(&format!(
            "{:?}",
            VerifyEmailRequest {
                token: token.clone()
            }
        ));
        assert_hidden(&format!(
            "{:?}",
            LoginRequest {
                email,
                password: pw.clone(),
                remember_me: true,
            }
        ));
        assert_hidden(&format!(
            "{:?}",
            ResetPasswordRequest {
                token: token.clone(),
                new_password: new_pw.clone(),
            }
        ));
        assert_hidden(&format!(
            "{:#?}",
            ChangePasswordRequest {
                current_password: pw.clone(),
                new_password: new_pw,
            }
        ));
        assert_hidden(&format!(
            "{:?}",
            ConfirmPasswordRequest {
                password: pw.clone()
            }
        ));

        let now = OffsetDateTime::UNIX_EPOCH;
        let response = SessionResponse {
            user: UserView {
                id: Uuid::nil(),
                email: "someone@example.com".to_owned(),
                email_verified: true,
                created_at: now,
            },
            session: SessionView {
                id: Uuid::nil(),
                created_at: now,
                authenticated_at: now,
                methods: vec!["password".to_owned()],
                last_seen_at: now,
                idle_expires_at: now,
                expires_at: now,
                ip: None,
                user_agent: None,
                current: true,
            },
            token: Some(token.clone()),
        };
        assert_hidden(&format!("{response:?}"));

        // The second-factor requests and answers (S15).
        assert_hidden(&format!(
            "{:?}",
            SecondFactorRequest {
                challenge: token.clone(),
                code: Some(pw.clone()),
                recovery_code: Some(pw.clone()),
            }
        ));
        assert_hidden(&format!("{:?}", TotpCodeRequest { code: pw.clone() }));
        assert_hidden(&format!(
            "{:?}",
            DisableTotpRequest {
                password: Some(pw.clone()),
                code: Some(pw.clone()),
                recovery_code: None,
            }
        ));
        assert_hidden(&format!(
            "{:?}",
            SecondFactorProofRequest {
                code: None,
                recovery_code: Some(pw.clone()),
            }
        ));
        assert_hidden(&format!(
            "{:?}",
            ChallengeView {
                challenge: token,
                methods: vec!["totp".to_owned()],
                expires_at: now,
            }
        ));
        assert_hidden(&format!(
            "{:?}",
            TotpEnrolmentView {
                secret: pw.clone(),
                otpauth_uri: pw.clone(),
                qr_svg: pw,
            }
        ));
    }
}
