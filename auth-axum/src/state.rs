//! The state the routes, middleware and extractors share.

use std::sync::Arc;

use auth_core::store::{Role, User};
use auth_core::{Auth, AuthError, ConfigError};
use axum::Router;
use axum::http::request::Parts;

use crate::authz::{Permissions, RoleSource, StoredRoles};
use crate::config::{SameSite, TrustedProxy, WebConfig, is_local_url, origin_of};
use crate::error::ApiError;

/// The engine and the validated web settings. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthState {
    pub(crate) auth: Auth,
    pub(crate) web: Arc<Web>,
    roles: Arc<dyn RoleSource>,
    permissions: Arc<Permissions>,
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
    pub(crate) probes_prefix: String,
    pub(crate) script_path: String,
    pub(crate) envelope_for_all_routes: bool,
    pub(crate) login_page: Option<String>,
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
        let probes_prefix = config.probes_prefix.trim_end_matches('/').to_owned();
        if !probes_prefix.is_empty() && !probes_prefix.starts_with('/') {
            return Err(ConfigError::Invalid(
                "probes_prefix must be empty or start with '/'",
            ));
        }
        let login_page = match config.login_page {
            Some(page) if crate::guard::safe_next(&page).is_none() => {
                return Err(ConfigError::Invalid(
                    "login_page must be a path on this site, like /login",
                ));
            }
            page => page,
        };
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
            probes_prefix,
            script_path: script_path(&auth.config().verify_path),
            envelope_for_all_routes: config.envelope_for_all_routes,
            login_page,
        };
        Ok(Self {
            auth,
            web: Arc::new(web),
            roles: Arc::new(StoredRoles),
            permissions: Arc::new(Permissions::new()),
        })
    }

    /// Where [`crate::RequireAuth::role`] and
    /// [`crate::RequireAuth::permission`] read a user's roles (default
    /// [`StoredRoles`]: the stores' user-roles table).
    #[must_use]
    pub fn with_role_source(mut self, source: Arc<dyn RoleSource>) -> Self {
        self.roles = source;
        self
    }

    /// Which permissions each role grants, for
    /// [`crate::RequireAuth::permission`] (default: none).
    #[must_use]
    pub fn with_permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = Arc::new(permissions);
        self
    }

    /// The roles of `user`, from the configured [`RoleSource`].
    ///
    /// # Errors
    /// As the source's ([`AuthError::Unavailable`] when it cannot answer).
    pub async fn roles_of(&self, user: &User) -> Result<Vec<Role>, AuthError> {
        self.roles.roles(&self.auth, user).await
    }

    /// The permissions each role grants.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
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

    /// The library's whole server: every route group ([`Self::routes`] and
    /// [`Self::probe_routes`]), the envelope for unknown paths too, wrapped by
    /// [`Self::wrap`]. The example server serves this.
    pub fn app(&self) -> Router {
        let unknown = self.library(Router::new().fallback(crate::routes::not_found));
        self.wrap(self.routes().merge(self.probe_routes()).merge(unknown))
    }

    /// The state of a request, put there by [`Self::wrap`] (or by a route
    /// group's own layer).
    pub(crate) fn from_parts(parts: &Parts) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::internal("AuthState missing: wrap the router with AuthState::wrap")
        })
    }
}

/// `assets/auth-pages.js` in the folder of the verification page.
fn script_path(verify_path: &str) -> String {
    let folder = verify_path
        .rsplit_once('/')
        .map_or("", |(folder, _)| folder);
    format!("{folder}/assets/auth-pages.js")
}

#[cfg(test)]
mod tests {
    use super::script_path;

    #[test]
    fn the_script_sits_beside_the_verification_page() {
        assert_eq!(
            script_path("/auth/verify-email"),
            "/auth/assets/auth-pages.js"
        );
        assert_eq!(script_path("/verify-email"), "/assets/auth-pages.js");
        assert_eq!(script_path("/a/b/verify"), "/a/b/assets/auth-pages.js");
    }
}
