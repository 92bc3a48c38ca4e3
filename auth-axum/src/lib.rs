#![doc = include_str!("../README.md")]

mod authz;
mod config;
mod cookie;
pub mod csrf;
mod dto;
mod error;
mod extract;
mod guard;
mod meta;
mod middleware;
mod openapi;
mod pages;
mod routes;
mod state;

#[cfg(test)]
mod properties;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Extension, Router};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use authz::{Permissions, RoleSource, RolesFuture, StoredRoles};
pub use config::{SameSite, TrustedProxy, WebConfig};
pub use csrf::refuse_cross_site;
pub use dto::{
    Accepted, ChallengeView, ChangePasswordRequest, ConfirmPasswordRequest, DisableTotpRequest,
    EmailRequest, Health, LoginRequest, LoginResponse, RecoveryCodesView, RegisterRequest,
    ResetPasswordRequest, SecondFactorProofRequest, SecondFactorRequest, SecondFactorRequired,
    SecondFactorsView, SessionResponse, SessionView, TotpCodeRequest, TotpEnrolmentView, UserView,
    Verified, VerifyEmailRequest,
};
pub use error::{ApiError, ErrorBody, ErrorEnvelope};
pub use extract::{ApiJson, AuthSession, CurrentUser};
pub use guard::{Guarded, RequireAuth, safe_next};
pub use meta::ClientContext;
pub use middleware::{REQUEST_ID, RequestId};
pub use state::AuthState;

/// The Rust examples of the workspace README, compiled (and run where they can
/// be) as doctests, so the README cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

impl AuthState {
    /// The JSON API and its OpenAPI document under [`WebConfig::api_prefix`]
    /// (default `/api/v1`), with their per-route policies: body limit (S11),
    /// cross-site refusal (S7), `Cache-Control: no-store`, and the envelope for
    /// every error (an unknown path under the prefix included).
    pub fn api_routes(&self) -> Router {
        let (api, _) = self.api_operations().split_for_parts();
        let api = api.fallback(routes::not_found).with_state(self.clone());
        self.library(Router::new().nest(&self.web.api_prefix, api))
    }

    /// The pages emailed links open, at `AuthConfig::verify_path` and
    /// `AuthConfig::reset_path` (default `/auth/verify-email` and
    /// `/auth/reset-password`), and their script beside them
    /// ([`Self::pages_script_path`]).
    pub fn page_routes(&self) -> Router {
        let config = self.auth.config();
        let pages = Router::new()
            .route(&config.verify_path, get(pages::verify))
            .route(&config.reset_path, get(pages::reset))
            .route(&self.web.script_path, get(pages::script))
            .with_state(self.clone());
        self.library(pages)
    }

    /// The probes `/healthz` (alive) and `/readyz` (every store answers) under
    /// [`WebConfig::probes_prefix`] (default: none).
    pub fn probe_routes(&self) -> Router {
        let (probes, _) = Self::probe_operations().split_for_parts();
        let probes = probes.with_state(self.clone());
        let probes = if self.web.probes_prefix.is_empty() {
            probes
        } else {
            Router::new().nest(&self.web.probes_prefix, probes)
        };
        self.library(probes)
    }

    /// The API and the pages ([`Self::api_routes`] and [`Self::page_routes`]):
    /// what an application mounts next to its own routes. The probes are left
    /// to [`Self::probe_routes`], so an application with its own `/healthz`
    /// keeps it. Wrap the final application with [`Self::wrap`].
    pub fn routes(&self) -> Router {
        self.api_routes().merge(self.page_routes())
    }

    /// The path of the pages' script: `assets/auth-pages.js` beside the
    /// verification page (`/auth/assets/auth-pages.js` by default).
    #[must_use]
    pub fn pages_script_path(&self) -> &str {
        &self.web.script_path
    }

    /// A group of the library's routes with their policies; its responses are
    /// marked as the library's, so the envelope covers their empty errors
    /// (an unknown method, ...) and never the application's own (S9).
    fn library(&self, group: Router) -> Router {
        group
            .layer(DefaultBodyLimit::max(self.web.body_limit))
            .layer(axum::middleware::from_fn(refuse_cross_site))
            .layer(axum::middleware::from_fn(routes::no_store))
            .layer(axum::middleware::from_fn(middleware::mark_library_response))
            .layer(Extension(self.clone()))
    }

    /// Adds what every route of the application needs: request ids, the
    /// rendering of [`ApiError`]s in the envelope, one log line per request,
    /// and the state the extractors read. Empty error responses of the
    /// library's routes get the envelope; those of the application's own
    /// routes are left as they are unless [`WebConfig::envelope_for_all_routes`]
    /// is set.
    pub fn wrap<S: Clone + Send + Sync + 'static>(&self, app: Router<S>) -> Router<S> {
        app.layer(axum::middleware::from_fn(middleware::request_context))
            .layer(Extension(self.clone()))
    }

    /// The OpenAPI 3.1 document of every route group, at the paths this
    /// configuration mounts them.
    #[must_use]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = self.api_documented().into_openapi();
        doc.merge(self.probes_documented().into_openapi());
        openapi::Runtime(self).modify(&mut doc);
        doc
    }

    fn api_documented(&self) -> OpenApiRouter<Self> {
        OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
            .nest(&self.web.api_prefix, self.api_operations())
    }

    /// The API's routes and operations, at their paths under the prefix.
    fn api_operations(&self) -> OpenApiRouter<Self> {
        use routes::{auth, mfa, users};
        OpenApiRouter::new()
            .routes(routes!(auth::register))
            .routes(routes!(auth::verify_email))
            .routes(routes!(auth::resend_verification))
            .routes(routes!(auth::login))
            .routes(routes!(auth::second_factor))
            .routes(routes!(mfa::status))
            .routes(routes!(mfa::start_totp, mfa::disable_totp))
            .routes(routes!(mfa::confirm_totp))
            .routes(routes!(mfa::regenerate_recovery_codes))
            .routes(routes!(auth::logout))
            .routes(routes!(auth::forgot_password))
            .routes(routes!(auth::reset_password))
            .routes(routes!(auth::change_password))
            .routes(routes!(users::me))
            .routes(routes!(users::sessions, users::revoke_other_sessions))
            .routes(routes!(users::revoke_session))
            .routes(routes!(openapi::document))
    }

    fn probes_documented(&self) -> OpenApiRouter<Self> {
        let probes = Self::probe_operations();
        if self.web.probes_prefix.is_empty() {
            probes
        } else {
            OpenApiRouter::new().nest(&self.web.probes_prefix, probes)
        }
    }

    /// The probes' routes and operations, at their paths under the prefix.
    fn probe_operations() -> OpenApiRouter<Self> {
        use routes::meta;
        OpenApiRouter::new()
            .routes(routes!(meta::healthz))
            .routes(routes!(meta::readyz))
    }
}
