//! # auth-axum
//!
//! A thin [axum](https://docs.rs/axum) adapter over `auth-core`: the versioned
//! REST API (`/api/v1/auth/*`, `/api/v1/users/me*`), the session cookie, the
//! [`CurrentUser`] and [`AuthSession`] extractors, one error envelope, CSRF and
//! client-IP policies, the pages emailed links open, health probes and the
//! OpenAPI 3.1 document.
//!
//! An application with a protected handler of its own:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use auth_axum::{AuthState, CurrentUser, WebConfig};
//! use auth_core::{Auth, SecretKey, mail::ConsoleMailer};
//! use auth_store_memory::MemoryStore;
//! use axum::{Router, routing::get};
//!
//! async fn dashboard(CurrentUser(user): CurrentUser) -> String {
//!     format!("hello {}", user.email)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Auth::builder()
//!     .stores(Arc::new(MemoryStore::new()))
//!     .mailer(Arc::new(ConsoleMailer))
//!     .secret_key(SecretKey::generate()?)
//!     .build()?;
//! let state = AuthState::new(auth, WebConfig::default())?;
//! let app = Router::new()
//!     .route("/dashboard", get(dashboard)) // 401 in the envelope without a session
//!     .merge(state.routes()); // the API, pages, probes, OpenAPI
//! let app = state.wrap(app); // request ids, the envelope, the extractors' state
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! Serve with `into_make_service_with_connect_info::<SocketAddr>()`: the client
//! IP (rate limits, audit) comes from the socket, or from `X-Forwarded-For` only
//! when the peer is a configured trusted proxy (S8). Without it, requests that
//! need the client IP answer 500 and the log names this fix: no request runs
//! without its per-IP limits.
//!
//! State-changing routes of your own that a session cookie authenticates need
//! [`refuse_cross_site`] (S7), as the library's routes have.
//!
//! `axum::serve` has no header, body or idle timeout and no connection cap:
//! behind no proxy that has them, slow clients can starve the server (S13).
//! docs/CONFIGURATION.md, "Slow clients and connection limits (embedding)",
//! has a recipe with hyper's HTTP/1 builder; the example server uses it.

mod config;
mod cookie;
pub mod csrf;
mod dto;
mod error;
mod extract;
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
pub use meta::ClientContext;
pub use middleware::{REQUEST_ID, RequestId};
pub use state::AuthState;

/// The Rust examples of the workspace README, compiled (and run where they can
/// be) as doctests, so the README cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

impl AuthState {
    /// The API under the configured prefix, the pages emailed links open, the
    /// probes and the OpenAPI document, with their per-route policies: body limit
    /// (S11), cross-site refusal (S7), `Cache-Control: no-store`. Wrap the final
    /// application with [`Self::wrap`].
    pub fn routes(&self) -> Router {
        let (api, _) = self.documented().split_for_parts();
        let config = self.auth.config();
        let pages = Router::new()
            .route(&config.verify_path, get(pages::verify))
            .route(&config.reset_path, get(pages::reset))
            .route(pages::SCRIPT_PATH, get(pages::script));
        api.merge(pages)
            .layer(DefaultBodyLimit::max(self.web.body_limit))
            .layer(axum::middleware::from_fn(refuse_cross_site))
            .layer(axum::middleware::from_fn(routes::no_store))
            .layer(Extension(self.clone()))
            .with_state(self.clone())
    }

    /// Adds what every route of the application needs: request ids and the
    /// envelope's rendering, one log line per request, and the state the
    /// extractors read.
    pub fn wrap<S: Clone + Send + Sync + 'static>(&self, app: Router<S>) -> Router<S> {
        app.layer(axum::middleware::from_fn(middleware::request_context))
            .layer(Extension(self.clone()))
    }

    /// The OpenAPI 3.1 document of [`Self::routes`].
    #[must_use]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = self.documented().into_openapi();
        openapi::Runtime(self).modify(&mut doc);
        doc
    }

    fn documented(&self) -> OpenApiRouter<Self> {
        use routes::{auth, meta, mfa, users};
        let api = OpenApiRouter::new()
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
            .routes(routes!(openapi::document));
        OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
            .nest(&self.web.api_prefix, api)
            .routes(routes!(meta::healthz))
            .routes(routes!(meta::readyz))
    }
}
