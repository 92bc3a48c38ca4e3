//! An existing axum application adding the library: it keeps its own
//! `public.users (id bigint, auth_user_id uuid, display_name text)` table and
//! its own state, and gains registration, login, a greeting for the signed-in
//! user, an account page behind a login redirect and an admin-only API. The
//! library's tables live in the `auth` schema of the same database (or in
//! memory), so nothing clashes with the application's `users` or `/healthz`.

use std::sync::Arc;

use async_trait::async_trait;
use auth_axum::{AuthState, CurrentUser, RequireAuth, WebConfig, refuse_cross_site};
use auth_core::hooks::{LifecycleHooks, Profile, ProfileRejected};
use auth_core::store::{Role, User};
use auth_core::{Auth, AuthConfig, BoxError, SecretKey, mail::Mailer};
use auth_store_memory::MemoryStore;
use auth_store_postgres::sqlx::{self, PgPool};
use auth_store_postgres::{PgSchema, PgStore};
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};

/// Where the library keeps its own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthData {
    /// The `auth` schema of the application's database.
    Postgres,
    /// In process (tests, demos).
    Memory,
}

/// The application's own state: its pool, and the library's.
#[derive(Clone, Debug)]
pub struct AppState {
    db: PgPool,
    auth: AuthState,
}

/// The registration profile this application asks for.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUpProfile {
    display_name: String,
}

/// Keeps `public.users` in step with the library's accounts.
struct Profiles(PgPool);

#[async_trait]
impl LifecycleHooks for Profiles {
    fn check_profile(&self, profile: &Profile) -> Result<(), ProfileRejected> {
        let p: SignUpProfile = serde_json::from_str(profile.as_json())
            .map_err(|_| ProfileRejected::new("profile must be {\"display_name\": \"...\"}"))?;
        let n = p.display_name.trim().chars().count();
        if (1..=64).contains(&n) {
            Ok(())
        } else {
            Err(ProfileRejected::new(
                "display_name must be 1 to 64 characters",
            ))
        }
    }

    async fn registered(&self, user: &User, profile: Option<&Profile>) -> Result<(), BoxError> {
        let name = match profile {
            Some(p) => serde_json::from_str::<SignUpProfile>(p.as_json())?.display_name,
            None => user.email.as_str().to_owned(),
        };
        sqlx::query(
            "INSERT INTO users (auth_user_id, display_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user.id.0)
        .bind(name.trim())
        .execute(&self.0)
        .await?;
        Ok(())
    }
}

/// The application's own table; with the library in PostgreSQL its rows
/// follow the library's accounts (`auth.users(id)`).
///
/// # Errors
/// The failed statement.
pub async fn migrate(db: &PgPool, data: AuthData) -> Result<(), sqlx::Error> {
    let link = if data == AuthData::Postgres {
        "REFERENCES auth.users(id) ON DELETE CASCADE"
    } else {
        ""
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS users (id bigserial PRIMARY KEY, \
         auth_user_id uuid NOT NULL UNIQUE {link}, display_name text NOT NULL)"
    )))
    .execute(db)
    .await
    .map(drop)
}

/// The engine and the web state over `data`, with this application's hooks.
///
/// # Errors
/// A migration or configuration failure.
pub async fn auth(
    db: &PgPool,
    data: AuthData,
    mailer: Arc<dyn Mailer>,
    key: SecretKey,
    public_url: &str,
) -> Result<AuthState, BoxError> {
    let config = AuthConfig {
        public_url: public_url.to_owned(),
        ..AuthConfig::default()
    };
    let builder = Auth::builder()
        .config(config)
        .mailer(mailer)
        .secret_key(key)
        .hooks(Arc::new(Profiles(db.clone())));
    let builder = match data {
        AuthData::Postgres => {
            let store = PgStore::from_pool(db.clone(), PgSchema::default());
            store.migrate().await?;
            builder.stores(Arc::new(store))
        }
        AuthData::Memory => builder.stores(Arc::new(MemoryStore::new())),
    };
    migrate(db, data).await?;
    let web = WebConfig {
        cookie_secure: !public_url.starts_with("http://localhost"),
        login_page: Some("/login".into()),
        ..WebConfig::default()
    };
    Ok(AuthState::new(builder.build()?, web)?)
}

/// The whole application: its own routes, guarded, and the library's API and pages.
pub fn app(db: PgPool, auth: &AuthState) -> Router {
    let admin = Role::new("admin").unwrap_or_else(|_| unreachable!("a valid role name"));
    let state = AppState {
        db,
        auth: auth.clone(),
    };
    let mine = Router::new()
        .route("/", get(home))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/login",
            get(|| async { Html("<form>...posts to /api/v1/auth/login...</form>") }),
        )
        .route("/account", get(home).layer(RequireAuth::redirect()))
        .route("/account/name", post(rename).layer(RequireAuth::api()))
        .route(
            "/admin/users",
            get(all_users).layer(RequireAuth::api().role(admin)),
        )
        .layer(middleware::from_fn(refuse_cross_site))
        .with_state(state);
    auth.wrap(mine.merge(auth.routes()))
}

async fn display_name(state: &AppState, user: &User) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT display_name FROM users WHERE auth_user_id = $1")
        .bind(user.id.0)
        .fetch_optional(&state.db)
        .await
        .map(|name: Option<String>| name.unwrap_or_else(|| user.email.as_str().to_owned()))
}

async fn home(State(state): State<AppState>, user: Option<CurrentUser>) -> impl IntoResponse {
    let greeting = match user {
        Some(CurrentUser(user)) => display_name(&state, &user)
            .await
            .map_or_else(|_| "Hello".to_owned(), |n| format!("Hello, {}", escape(&n))),
        None => "Hello, visitor. <a href=\"/login\">Log in</a>".to_owned(),
    };
    Html(format!("<!doctype html><p>{greeting}</p>"))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    display_name: String,
}

async fn rename(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Json(body): Json<Rename>,
) -> axum::http::StatusCode {
    let done = sqlx::query("UPDATE users SET display_name = $2 WHERE auth_user_id = $1")
        .bind(user.id.0)
        .bind(body.display_name.trim())
        .execute(&state.db)
        .await;
    if done.is_ok() {
        axum::http::StatusCode::NO_CONTENT
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn all_users(
    State(state): State<AppState>,
) -> Result<Json<Vec<(i64, String)>>, axum::http::StatusCode> {
    sqlx::query_as("SELECT id, display_name FROM users ORDER BY id")
        .fetch_all(&state.db)
        .await
        .map(Json)
        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl AppState {
    /// The library's state, for the application's own uses of the engine.
    #[must_use]
    pub fn auth(&self) -> &AuthState {
        &self.auth
    }
}

/// The snippets of docs/EMBEDDING.md, compiled as doctests so the guide
/// cannot drift from the API.
#[doc = include_str!("../../../docs/EMBEDDING.md")]
#[cfg(doctest)]
pub struct EmbeddingDoctests;
