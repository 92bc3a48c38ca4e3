//! Extractors for the embedding application's handlers, with rejections in the
//! error envelope.

use auth_core::store::{SessionRecord, User};
use auth_core::{AuthError, Authenticated, OpaqueToken};
use axum::extract::{
    FromRequest, FromRequestParts, OptionalFromRequest, OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::cookie;
use crate::error::ApiError;
use crate::state::AuthState;

/// The authenticated session of a request: from the session cookie or, when
/// enabled, an `Authorization: Bearer` header. Rejects with 401
/// `unauthenticated`. Authenticating records activity (at most once a minute).
///
/// ```
/// use auth_axum::AuthSession;
///
/// async fn whoami(session: AuthSession) -> String {
///     format!("{} via session {}", session.user.email, session.session.id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct AuthSession {
    /// The user.
    pub user: User,
    /// The session.
    pub session: SessionRecord,
    pub(crate) token: OpaqueToken,
}

impl AuthSession {
    /// The session token (for flows that take it, like password change).
    #[must_use]
    pub fn token(&self) -> &OpaqueToken {
        &self.token
    }

    /// The user and session, as the engine's sensitive operations take them.
    #[must_use]
    pub fn authenticated(&self) -> Authenticated {
        Authenticated {
            user: self.user.clone(),
            session: self.session.clone(),
        }
    }
}

/// The authenticated user of a request; see [`AuthSession`].
///
/// ```
/// use auth_axum::CurrentUser;
///
/// async fn hello(CurrentUser(user): CurrentUser) -> String {
///     format!("hello {}", user.email)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The session token a request carries, if any: the cookie first, then (when
/// enabled) a bearer header.
pub(crate) fn session_token(headers: &HeaderMap, state: &AuthState) -> Option<OpaqueToken> {
    cookie::read(headers, &state.web.cookie_name)
        .or_else(|| {
            state
                .web
                .bearer_tokens
                .then(|| bearer_token(headers).map(str::to_owned))
                .flatten()
        })
        .map(OpaqueToken::new)
}

impl<S: Send + Sync> FromRequestParts<S> for AuthSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if let Some(cached) = parts.extensions.get::<Self>() {
            return Ok(cached.clone());
        }
        let state = AuthState::from_parts(parts)?;
        let token = session_token(&parts.headers, &state).ok_or(AuthError::Unauthenticated)?;
        let found = state.auth.authenticate(&token).await?;
        let session = Self {
            user: found.user,
            session: found.session,
            token,
        };
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        <AuthSession as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|s| Self(s.user))
    }
}

/// No session is `None`; a store failure still answers (503), so a handler
/// never mistakes an outage for a signed-out visitor.
impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(session) => Ok(Some(session)),
            Err(err) if err.status() == StatusCode::UNAUTHORIZED => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// `Option<CurrentUser>`: `None` for a visitor without a session, as
/// `Option<AuthSession>`.
///
/// ```
/// use auth_axum::CurrentUser;
///
/// async fn home(user: Option<CurrentUser>) -> String {
///     match user {
///         Some(CurrentUser(user)) => format!("welcome back, {}", user.email),
///         None => "welcome, visitor".to_owned(),
///     }
/// }
/// ```
impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        <AuthSession as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|s| s.map(|s| Self(s.user)))
    }
}

/// A JSON body whose rejections (wrong content type, malformed JSON, unknown
/// fields, too large) answer in the envelope (S11).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// An optional JSON body: none when the request has no `Content-Type`, else
/// parsed as [`ApiJson`].
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            <Self as FromRequest<S>>::from_request(request, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match <axum::Json<T> as FromRequest<S>>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::from_json(&rejection)),
        }
    }
}
