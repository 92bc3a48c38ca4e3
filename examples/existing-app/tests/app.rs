//! The existing application with the library, over HTTP in process, on a
//! fresh PostgreSQL database of its own (its `public.users` next to the
//! library's `auth` schema) and with the library in memory: every guard,
//! the profile hook and the application's own `/healthz`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a failed unwrap or index is a failed test"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use auth_core::conformance::service_url;
use auth_core::mail::{CapturingMailer, MessageKind};
use auth_core::store::Role;
use auth_core::{RequestContext, SecretKey};
use auth_store_postgres::sqlx::{self, AssertSqlSafe, PgPool};
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use example_existing_app::{AuthData, app, auth};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

const ORIGIN: &str = "http://localhost:3000";

struct Fixture {
    app: Router,
    db: PgPool,
    auth: auth_axum::AuthState,
    mailer: CapturingMailer,
    admin_url: String,
    name: String,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Fixture {
    /// A fresh database, or `None` when PostgreSQL is not configured (a skip
    /// locally, a failure under CI).
    async fn new(data: AuthData) -> Option<Self> {
        let admin_url = service_url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")?;
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "existing_app_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let admin = PgPool::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let db = PgPool::connect(&format!("{base}/{name}")).await.unwrap();
        let mailer = CapturingMailer::new();
        let auth = auth(
            &db,
            data,
            Arc::new(mailer.clone()),
            SecretKey::generate().unwrap(),
            ORIGIN,
        )
        .await
        .unwrap();
        let app =
            app(db.clone(), &auth).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 7], 5000))));
        Some(Self {
            app,
            db,
            auth,
            mailer,
            admin_url,
            name,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        cookie: Option<&str>,
        origin: &str,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ORIGIN, origin);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.call(Method::GET, path, None, cookie, ORIGIN).await
    }

    async fn post(&self, path: &str, body: serde_json::Value, cookie: Option<&str>) -> Reply {
        self.call(Method::POST, path, Some(body), cookie, ORIGIN)
            .await
    }

    /// Registers with a display name, verifies and logs in; the cookie.
    async fn sign_up(&self, email: &str, name: &str) -> String {
        let pw = "correct horse battery staple";
        let r = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": pw, "profile": {"display_name": name}}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        self.auth.auth().settle().await;
        let token = self
            .mailer
            .token_for(email, MessageKind::Verification)
            .expect("a verification mail");
        let r = self
            .post("/api/v1/auth/verify-email", json!({"token": token}), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": pw}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let set = r.headers[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }

    async fn drop_database(self) {
        let Self {
            db,
            auth,
            admin_url,
            name,
            ..
        } = self;
        auth.auth().shutdown().await;
        db.close().await;
        let admin = PgPool::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}

async fn every_guard_on(data: AuthData) {
    let Some(f) = Fixture::new(data).await else {
        return;
    };
    // The application keeps its own /healthz; the library added none.
    assert_eq!(f.get("/healthz", None).await.text, "ok");
    assert!(f.get("/", None).await.text.contains("Hello, visitor"));

    // The profile hook refuses a bad profile before anything is stored.
    let refused = f.post("/api/v1/auth/register", json!({"email": "x@example.com", "password": "correct horse battery staple", "profile": {"display_name": ""}}), None).await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.text);
    assert!(refused.text.contains("invalid_profile"));

    let ada = f.sign_up("ada@example.com", "Ada <Lovelace>").await;
    // The greeting reads the application's own table, escaped.
    let home = f.get("/", Some(&ada)).await;
    assert!(
        home.text.contains("Hello, Ada &lt;Lovelace&gt;"),
        "{}",
        home.text
    );
    let (id, name): (i64, String) = sqlx::query_as("SELECT id, display_name FROM public.users")
        .fetch_one(&f.db)
        .await
        .unwrap();
    assert!(id >= 1 && name == "Ada <Lovelace>");

    // RequireAuth::redirect: a visitor goes to the login page with next=.
    let page = f.get("/account?tab=1", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers[header::LOCATION],
        "/login?next=/account%3Ftab%3D1"
    );
    assert_eq!(f.get("/account", Some(&ada)).await.status, StatusCode::OK);

    // RequireAuth::api: 401 in the envelope; CSRF on the app's own POST (S7).
    let rename = json!({"display_name": "Countess"});
    let anonymous = f.post("/account/name", rename.clone(), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.text.contains("\"unauthenticated\""));
    let cross = f
        .call(
            Method::POST,
            "/account/name",
            Some(rename.clone()),
            Some(&ada),
            "https://evil.example",
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.post("/account/name", rename, Some(&ada)).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        f.get("/", Some(&ada))
            .await
            .text
            .contains("Hello, Countess")
    );

    // The admin-only route: 401 without a session, 403 without the role.
    assert_eq!(
        f.get("/admin/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let forbidden = f.get("/admin/users", Some(&ada)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert!(
        forbidden.text.contains("\"forbidden\""),
        "{}",
        forbidden.text
    );
    let me = f
        .auth
        .auth()
        .authenticate(&auth_core::OpaqueToken::new(ada.split_once('=').unwrap().1))
        .await
        .unwrap();
    let ctx = RequestContext::from_ip([192, 0, 2, 1].into());
    f.auth
        .auth()
        .grant_role(me.user.id, &Role::new("admin").unwrap(), &ctx)
        .await
        .unwrap();
    let users = f.get("/admin/users", Some(&ada)).await;
    assert_eq!(users.status, StatusCode::OK);
    assert_eq!(users.text, format!("[[{id},\"Countess\"]]"));
    f.drop_database().await;
}

#[tokio::test]
async fn every_guard_with_the_library_in_postgres() {
    every_guard_on(AuthData::Postgres).await;
}

#[tokio::test]
async fn every_guard_with_the_library_in_memory() {
    every_guard_on(AuthData::Memory).await;
}

#[tokio::test]
async fn the_library_s_tables_sit_in_their_own_schema_next_to_the_app_s_users() {
    let Some(f) = Fixture::new(AuthData::Postgres).await else {
        return;
    };
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_name = 'users' ORDER BY 1",
    )
    .fetch_all(&f.db)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            ("auth".into(), "users".into()),
            ("public".into(), "users".into())
        ]
    );
    let ada = f.sign_up("ada@example.com", "Ada").await;
    assert!(!ada.is_empty());
    // The application's row follows the account (ON DELETE CASCADE).
    sqlx::query("DELETE FROM auth.users")
        .execute(&f.db)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM public.users")
        .fetch_one(&f.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    f.drop_database().await;
}
