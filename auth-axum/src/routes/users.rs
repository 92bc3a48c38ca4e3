//! `/users/me`: the current user and their sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;

use auth_core::store::SessionId;

use auth_core::Password;

use crate::dto::{ConfirmPasswordRequest, SessionView, UserView};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, AuthSession};
use crate::meta::ClientContext;
use crate::state::AuthState;

/// The current user.
#[utoipa::path(get, path = "/users/me", tag = "users",
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 401, description = "unauthenticated", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn me(session: AuthSession) -> Json<UserView> {
    Json(UserView::from(&session.user))
}

/// The current user's active sessions, newest first.
#[utoipa::path(get, path = "/users/me/sessions", tag = "users",
    responses(
        (status = 200, description = "Active sessions", body = Vec<SessionView>),
        (status = 401, description = "unauthenticated", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn sessions(
    State(state): State<AuthState>,
    session: AuthSession,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let list = state.auth.list_sessions(session.user.id).await?;
    Ok(Json(
        list.iter()
            .map(|s| SessionView::new(s, s.id == session.session.id))
            .collect(),
    ))
}

/// Revoke one of the current user's sessions.
#[utoipa::path(delete, path = "/users/me/sessions/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The session's public id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "unauthenticated", body = ErrorEnvelope),
        (status = 403, description = "Cross-site request refused", body = ErrorEnvelope),
        (status = 404, description = "No such live session of yours", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn revoke_session(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed session id",
        )
    })?;
    if state
        .auth
        .revoke_session(session.user.id, SessionId(id), &ctx)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Revoke every session of the current user but the current one.
///
/// A sensitive operation (S14): it needs a sign-in within the last 10 minutes
/// (by default), or the current password in the body.
#[utoipa::path(delete, path = "/users/me/sessions", tag = "users",
    request_body(content = Option<ConfirmPasswordRequest>,
        description = "The current password; needed when the sign-in is not recent"),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed JSON", body = ErrorEnvelope),
        (status = 401, description = "unauthenticated, or invalid_credentials (wrong password)", body = ErrorEnvelope),
        (status = 403, description = "reauthentication_required, or a cross-site request", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 422, description = "Unknown or missing fields", body = ErrorEnvelope),
        (status = 429, description = "locked, with Retry-After", body = ErrorEnvelope),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "unavailable, with Retry-After", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn revoke_other_sessions(
    State(state): State<AuthState>,
    ClientContext(ctx): ClientContext,
    session: AuthSession,
    body: Option<ApiJson<ConfirmPasswordRequest>>,
) -> Result<StatusCode, ApiError> {
    let password = body.map(|ApiJson(b)| Password::new(b.password));
    state
        .auth
        .revoke_other_sessions(&session.authenticated(), password.as_ref(), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
