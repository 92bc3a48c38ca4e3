//! `/users/me/mfa`: the current user's second factors (S14, S15).

use auth_core::Password;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::one_code;
use crate::dto::{
    DisableTotpRequest, RecoveryCodesView, SecondFactorProofRequest, SecondFactorsView,
    TotpCodeRequest, TotpEnrolmentView,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, AuthSession};
use crate::meta::ClientContext;
use crate::state::AuthState;

type ApiResult<T> = Result<T, ApiError>;

fn codes_view(codes: &auth_core::RecoveryCodes) -> RecoveryCodesView {
    RecoveryCodesView {
        recovery_codes: codes
            .expose_secret()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// The current user's second factors.
#[utoipa::path(get, path = "/users/me/mfa", tag = "mfa",
    responses(
        (status = 200, description = "Second factors", body = SecondFactorsView),
        (status = 401, description = "unauthenticated", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn status(
    State(state): State<AuthState>,
    session: AuthSession,
) -> ApiResult<Json<SecondFactorsView>> {
    let s = state.auth.second_factor_status(session.user.id).await?;
    Ok(Json(SecondFactorsView {
        totp_enabled: s.totp_enabled,
        totp_pending: s.totp_pending,
        recovery_codes_left: s.recovery_codes_left,
    }))
}

/// Start TOTP enrolment: a new secret for the authenticator app (also as an
/// `otpauth://` URI and its QR code), pending until confirmed. Needs a recent
/// sign-in (S14).
#[utoipa::path(post, path = "/users/me/mfa/totp", tag = "mfa",
    responses(
        (status = 200, description = "The secret, shown once", body = TotpEnrolmentView),
        (status = 401, description = "unauthenticated", body = ErrorEnvelope),
        (status = 403, description = "reauthentication_required, or a cross-site request", body = ErrorEnvelope),
        (status = 409, description = "second_factor_already_enabled", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn start_totp(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
) -> ApiResult<Json<TotpEnrolmentView>> {
    let enrolment = state
        .auth
        .start_totp(&session.authenticated(), &ctx)
        .await?;
    Ok(Json(TotpEnrolmentView {
        secret: enrolment.secret.to_string(),
        otpauth_uri: enrolment.otpauth_uri.to_string(),
        qr_svg: enrolment.qr_svg,
    }))
}

/// Confirm TOTP with a code from the app: TOTP is on, and ten recovery codes
/// are returned once.
#[utoipa::path(post, path = "/users/me/mfa/totp/confirm", tag = "mfa", request_body = TotpCodeRequest,
    responses(
        (status = 200, description = "On; the recovery codes, shown once", body = RecoveryCodesView),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "unauthenticated, or invalid_code", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown or missing fields", body = ErrorEnvelope),
        (status = 429, description = "locked, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn confirm_totp(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
    ApiJson(body): ApiJson<TotpCodeRequest>,
) -> ApiResult<Json<RecoveryCodesView>> {
    let codes = state
        .auth
        .confirm_totp(&session.authenticated(), &body.code, &ctx)
        .await?;
    Ok(Json(codes_view(&codes)))
}

/// Turn TOTP off: with the current password and a TOTP code, or with a
/// recovery code alone. The recovery codes go too.
#[utoipa::path(delete, path = "/users/me/mfa/totp", tag = "mfa", request_body = DisableTotpRequest,
    responses(
        (status = 204, description = "Off"),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "unauthenticated, invalid_credentials or invalid_code", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 409, description = "second_factor_not_enabled", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown fields, or not exactly one of code and recovery_code", body = ErrorEnvelope),
        (status = 429, description = "locked, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn disable_totp(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
    ApiJson(body): ApiJson<DisableTotpRequest>,
) -> ApiResult<StatusCode> {
    let code = one_code(body.code, body.recovery_code)?;
    let password = body.password.map(Password::new);
    state
        .auth
        .disable_totp(&session.authenticated(), password.as_ref(), &code, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes, replacing the old ones: needs a recent sign-in (S14)
/// and a TOTP code or an unused recovery code (S15); the owner is mailed.
#[utoipa::path(post, path = "/users/me/mfa/recovery-codes", tag = "mfa", request_body = SecondFactorProofRequest,
    responses(
        (status = 200, description = "The new codes, shown once", body = RecoveryCodesView),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "unauthenticated, or invalid_code", body = ErrorEnvelope),
        (status = 403, description = "reauthentication_required, or a cross-site request", body = ErrorEnvelope),
        (status = 409, description = "second_factor_not_enabled", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown fields, or not exactly one of code and recovery_code", body = ErrorEnvelope),
        (status = 429, description = "locked, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn regenerate_recovery_codes(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
    ApiJson(body): ApiJson<SecondFactorProofRequest>,
) -> ApiResult<Json<RecoveryCodesView>> {
    let code = one_code(body.code, body.recovery_code)?;
    let codes = state
        .auth
        .regenerate_recovery_codes(&session.authenticated(), &code, &ctx)
        .await?;
    Ok(Json(codes_view(&codes)))
}
