//! The state the routes, middleware and extractors share.

use std::sync::Arc;

use auth_core::{Auth, ConfigError};
use axum::Router;
use axum::http::request::Parts;

use crate::config::{SameSite, TrustedProxy, WebConfig, is_local_url, origin_of};
use crate::error::ApiError;

/// The engine and the validated web settings. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthState {
    pub(crate) auth: Auth,
    pub(crate) web: Arc<Web>,
}

/// Validated web settings.
#[derive(Debug)]
pub(crate) struct Web {
    pub(crate) api_prefix: String,
    pub(crate) cookie_name: String,
    pub(crate) cookie_secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) trusted_proxies: Vec<TrustedProxy>,
    pub(crate) bearer_tokens: bool,
    pub(crate) body_limit: usize,
}

impl AuthState {
    /// Checks the web settings against the engine's.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when cookies are not `Secure` for a public URL
    /// other than localhost, the API prefix is malformed or the body limit is
    /// under 1 KiB.
    pub fn new(auth: Auth, config: WebConfig) -> Result<Self, ConfigError> {
        let public_url = auth.config().public_url.clone();
        if !config.cookie_secure && !is_local_url(&public_url) {
            return Err(ConfigError::Invalid(
                "cookie_secure may be off only when the public URL is http://localhost or a loopback address",
            ));
        }
        let prefix = config.api_prefix.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') {
            return Err(ConfigError::Invalid("api_prefix must start with '/'"));
        }
        if config.body_limit < 1024 {
            return Err(ConfigError::Invalid(
                "body_limit must be at least 1024 bytes",
            ));
        }
        let cookie_name = if config.cookie_secure && !config.cookie_name.starts_with("__Host-") {
            format!("__Host-{}", config.cookie_name)
        } else {
            config.cookie_name.clone()
        };
        let allowed_origins = if config.allowed_origins.is_empty() {
            vec![origin_of(&public_url)]
        } else {
            config
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect()
        };
        let web = Web {
            api_prefix: prefix,
            cookie_name,
            cookie_secure: config.cookie_secure,
            same_site: config.same_site,
            allowed_origins,
            trusted_proxies: config.trusted_proxies,
            bearer_tokens: config.bearer_tokens,
            body_limit: config.body_limit,
        };
        Ok(Self {
            auth,
            web: Arc::new(web),
        })
    }

    /// The engine.
    #[must_use]
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The session cookie's name (with the `__Host-` prefix when `Secure`).
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.web.cookie_name
    }

    /// The whole application: [`Self::routes`] wrapped by [`Self::wrap`].
    pub fn app(&self) -> Router {
        self.wrap(self.routes())
    }

    /// The state of a request, put there by [`Self::wrap`].
    pub(crate) fn from_parts(parts: &Parts) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::internal("AuthState missing: wrap the router with AuthState::wrap")
        })
    }
}
