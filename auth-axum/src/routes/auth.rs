//! `/auth/*`: registration, verification, login, logout, password reset and change.

use auth_core::hooks::Profile;
use auth_core::store::AuthMethod;
use auth_core::{LoginOutcome, OpaqueToken, Password, RequestContext, SecondFactorCode};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::{cleared_cookie, session_cookie};
use crate::dto::{
    Accepted, ChallengeView, ChangePasswordRequest, EmailRequest, LoginRequest, LoginResponse,
    RegisterRequest, ResetPasswordRequest, SecondFactorRequest, SecondFactorRequired,
    SessionResponse, SessionView, UserView, Verified, VerifyEmailRequest,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, AuthSession, session_token};
use crate::meta::ClientContext;
use crate::state::AuthState;

type ApiResult<T> = Result<T, ApiError>;

/// Register an account; a verification email follows.
///
/// The answer is the same whether or not the address is taken (the owner of a
/// taken address gets a notice instead), unless enumeration protection is off.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 202, description = "Accepted; check your email", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 409, description = "email_taken (only without enumeration protection)", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "invalid_email, weak_password (with the rule), invalid_profile (the application refused the profile), or unknown fields", body = ErrorEnvelope),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn register(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let profile = body
        .profile
        .map(|p| Profile::from_json(serde_json::Value::Object(p).to_string()));
    state
        .auth
        .register_with_profile(&body.email, &Password::new(body.password), profile, &ctx)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::VALUE)))
}

/// Verify an email address with the token from the emailed link.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Verified", body = Verified),
        (status = 400, description = "token_invalid, token_expired, malformed JSON", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown or missing fields", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn verify_email(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    ApiJson(body): ApiJson<VerifyEmailRequest>,
) -> ApiResult<Json<Verified>> {
    state
        .auth
        .verify_email(&OpaqueToken::new(body.token), &ctx)
        .await?;
    Ok(Json(Verified { status: "verified" }))
}

/// Send a new verification link. Always accepted for a valid address.
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "auth", request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "invalid_email, unknown fields", body = ErrorEnvelope),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn resend_verification(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    ApiJson(body): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    state.auth.resend_verification(&body.email, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::VALUE)))
}

/// Log in with email and password. Without a second factor: sets the session
/// cookie (and returns the token when bearer tokens are enabled). With TOTP
/// on: answers `second_factor_required` with a challenge for
/// `POST /auth/login/second-factor`, and no cookie yet. A session the request
/// already carried is revoked once the new one exists (S5: on a shared
/// browser, the previous user's session does not outlive the next sign-in).
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in (Set-Cookie carries the session), or second_factor_required", body = LoginResponse,
            headers(("Set-Cookie" = String, description = "__Host-session=...; Path=/; HttpOnly; SameSite=Lax; Secure (only when signed in)"))),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "invalid_credentials (unknown email, wrong password alike)", body = ErrorEnvelope),
        (status = 403, description = "email_not_verified, or a cross-site request", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown or missing fields", body = ErrorEnvelope),
        (status = 429, description = "locked or rate_limited, with Retry-After", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn login(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    let outcome = state
        .auth
        .login(
            &body.email,
            &Password::new(body.password),
            body.remember_me,
            &ctx,
        )
        .await?;
    match outcome {
        LoginOutcome::SignedIn(ok) => {
            let (cookie, body) = signed_in(&state, &ctx, &headers, &ok).await?;
            Ok((cookie, Json(LoginResponse::SignedIn(body.0))))
        }
        LoginOutcome::SecondFactorRequired(challenge) => {
            // The right password ends the session the browser carried, as a
            // completed sign-in would: an abandoned second step must not
            // leave the previous user of a shared browser signed in (S5).
            if let Some(previous) = session_token(&headers, &state) {
                state.auth.logout(&previous, &ctx).await?;
            }
            let view = ChallengeView {
                challenge: challenge.token.expose_secret().to_owned(),
                methods: challenge
                    .methods
                    .iter()
                    .map(AuthMethod::to_storage)
                    .collect(),
                expires_at: challenge.expires_at,
            };
            let body = SecondFactorRequired {
                second_factor_required: view,
            };
            Ok((
                HeaderMap::new(),
                Json(LoginResponse::SecondFactorRequired(body)),
            ))
        }
    }
}

/// The answer to a completed sign-in: the new session's cookie and body,
/// after revoking the session the request carried, if any (S5).
async fn signed_in(
    state: &AuthState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    ok: &auth_core::LoginSuccess,
) -> ApiResult<(HeaderMap, Json<SessionResponse>)> {
    if let Some(previous) = session_token(headers, state) {
        state.auth.logout(&previous, ctx).await?;
    }
    Ok((
        session_cookie(state, &ok.session),
        Json(session_response(state, ok)),
    ))
}

/// Complete a sign-in with a second factor: the challenge from the login
/// answer and a TOTP code or a recovery code (exactly one). A wrong code
/// leaves the challenge usable until it expires; wrong codes are locked out
/// like passwords (S15).
#[utoipa::path(post, path = "/auth/login/second-factor", tag = "auth", request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "Signed in; Set-Cookie carries the session", body = SessionResponse,
            headers(("Set-Cookie" = String, description = "__Host-session=...; Path=/; HttpOnly; SameSite=Lax; Secure"))),
        (status = 400, description = "token_invalid (unknown, used or expired challenge), malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "invalid_code, or invalid_credentials (the password changed meanwhile)", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown fields, or not exactly one of code and recovery_code", body = ErrorEnvelope),
        (status = 429, description = "locked or rate_limited, with Retry-After", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn second_factor(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecondFactorRequest>,
) -> ApiResult<(HeaderMap, Json<SessionResponse>)> {
    let code = one_code(body.code, body.recovery_code)?;
    let ok = state
        .auth
        .complete_second_factor(&OpaqueToken::new(body.challenge), &code, &ctx)
        .await?;
    signed_in(&state, &ctx, &headers, &ok).await
}

/// Exactly one of a TOTP code and a recovery code, else 422.
pub(crate) fn one_code(
    code: Option<String>,
    recovery_code: Option<String>,
) -> ApiResult<SecondFactorCode> {
    match (code, recovery_code) {
        (Some(code), None) => Ok(SecondFactorCode::totp(code)),
        (None, Some(code)) => Ok(SecondFactorCode::recovery_code(code)),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "give exactly one of code and recovery_code",
        )),
    }
}

fn session_response(state: &AuthState, ok: &auth_core::LoginSuccess) -> SessionResponse {
    SessionResponse {
        user: UserView::from(&ok.user),
        session: SessionView::new(&ok.session.session, true),
        token: state
            .web
            .bearer_tokens
            .then(|| ok.session.token.expose_secret().to_owned()),
    }
}

/// Log out: revokes the session server-side and expires the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Logged out (also when there was no session)",
            headers(("Set-Cookie" = String, description = "The expired session cookie"))),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security((), ("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn logout(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, HeaderMap)> {
    if let Some(token) = session_token(&headers, &state) {
        state.auth.logout(&token, &ctx).await?;
    }
    Ok((StatusCode::NO_CONTENT, cleared_cookie(&state)))
}

/// Email a password-reset link. Always accepted for a valid address.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "auth", request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "invalid_email, unknown fields", body = ErrorEnvelope),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn forgot_password(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    ApiJson(body): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    state.auth.request_password_reset(&body.email, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::VALUE)))
}

/// Set a new password with the emailed token. Every session is revoked and none
/// is created.
#[utoipa::path(post, path = "/auth/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password reset; log in with the new one"),
        (status = 400, description = "token_invalid, token_expired, malformed JSON", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "weak_password (with the rule), unknown fields", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn reset_password(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let token = OpaqueToken::new(body.token);
    state
        .auth
        .reset_password(&token, &Password::new(body.new_password), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password (the current one is required). Every other session is
/// revoked and the current one is replaced: the response sets a new cookie.
#[utoipa::path(post, path = "/auth/password/change", tag = "auth", request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; Set-Cookie carries the new session", body = SessionResponse),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "unauthenticated, or invalid_credentials (wrong current password)", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "weak_password (with the rule), unknown fields", body = ErrorEnvelope),
        (status = 429, description = "locked, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn change_password(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<(HeaderMap, Json<SessionResponse>)> {
    let (current, new) = (
        Password::new(body.current_password),
        Password::new(body.new_password),
    );
    let ok = state
        .auth
        .change_password(session.token(), &current, &new, &ctx)
        .await?;
    Ok((
        session_cookie(&state, &ok.session),
        Json(session_response(&state, &ok)),
    ))
}
