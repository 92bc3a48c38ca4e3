//! Health probes.

use axum::Json;
use axum::extract::State;

use crate::dto::Health;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AuthState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health), (status = 500, description = "internal", body = ErrorEnvelope)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: every store answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 500, description = "internal", body = ErrorEnvelope),
        (status = 503, description = "A store is unreachable, with Retry-After", body = ErrorEnvelope),
    ))]
pub(crate) async fn readyz(State(state): State<AuthState>) -> Result<Json<Health>, ApiError> {
    state.auth.check_ready().await?;
    Ok(Json(Health { status: "ok" }))
}
