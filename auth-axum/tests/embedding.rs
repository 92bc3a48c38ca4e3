//! Embedding in an existing application: route groups under their own
//! prefixes, the envelope on the library's routes only, the guards for the
//! application's routes, and registration profiles over HTTP.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use std::net::SocketAddr;

use auth_axum::{CurrentUser, RequireAuth};
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::{get, post};
use serde_json::json;
use support::{Api, PEER, PW};

const EMAIL: &str = "embedder@example.com";

async fn own_health() -> &'static str {
    "the application's own health"
}

async fn greet(user: Option<CurrentUser>) -> String {
    match user {
        Some(CurrentUser(user)) => format!("hello {}", user.email),
        None => "hello visitor".to_owned(),
    }
}

/// An application with its own `/healthz`, fallback and empty error
/// responses, with the library's API and pages mounted beside them.
fn existing_app(api: &mut Api) {
    let mine = Router::new()
        .route("/healthz", get(own_health))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route("/", get(greet))
        .route("/dashboard", get(greet).layer(RequireAuth::redirect()))
        .route(
            "/api/orders",
            get(|| async { "orders" })
                .post(|| async { "created" })
                .layer(RequireAuth::api()),
        )
        .route(
            "/orders/new",
            post(|| async { "created" }).layer(RequireAuth::redirect()),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "the application's own 404") });
    api.app = api
        .state
        .wrap(mine.merge(api.state.routes()))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
}

fn with_login_page() -> Api {
    let mut api = Api::with(|_, web| web.login_page = Some("/login".into()));
    existing_app(&mut api);
    api
}

#[tokio::test]
async fn an_app_with_its_own_healthz_mounts_the_library_without_a_clash() {
    let api = with_login_page();
    let own = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(own.text, "the application's own health");
    // The library's routes are there under their prefixes.
    api.verified(EMAIL).await;
    let page = api
        .call(Method::GET, "/auth/verify-email", None, None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("/auth/assets/auth-pages.js"));
    let script = api
        .call(Method::GET, "/auth/assets/auth-pages.js", None, None)
        .await;
    assert_eq!(script.status, StatusCode::OK);
    // No probe of the library's, and nothing else of it at the root.
    let ready = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.text, "the application's own 404");
}

#[tokio::test]
async fn the_envelope_covers_the_library_s_routes_only_unless_the_app_opts_in() {
    let api = with_login_page();
    // The application's own empty errors and its fallback stay its own.
    let teapot = api.call(Method::GET, "/teapot", None, None).await;
    assert_eq!((teapot.status.as_u16(), teapot.text.as_str()), (418, ""));
    let unknown = api.call(Method::GET, "/nope", None, None).await;
    assert_eq!(unknown.text, "the application's own 404");
    // The library's unknown paths and methods answer in the envelope.
    let lib_unknown = api.get("/nope", None).await;
    assert_eq!(
        (lib_unknown.status.as_u16(), lib_unknown.code()),
        (404, "not_found")
    );
    assert!(lib_unknown.body["error"]["request_id"].is_string());
    let wrong_method = api
        .call(Method::PUT, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(
        (wrong_method.status.as_u16(), wrong_method.code()),
        (405, "method_not_allowed")
    );

    let mut everywhere = Api::with(|_, web| web.envelope_for_all_routes = true);
    existing_app(&mut everywhere);
    let teapot = everywhere.call(Method::GET, "/teapot", None, None).await;
    assert_eq!(teapot.status.as_u16(), 418);
    assert_eq!(teapot.code(), "invalid_request");
}

#[tokio::test]
async fn probes_are_a_group_of_their_own_with_a_prefix() {
    let mut api = Api::with(|_, web| web.probes_prefix = "/internal/auth".into());
    api.app = api
        .state
        .wrap(Router::new().merge(api.state.probe_routes()))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
    for path in ["/internal/auth/healthz", "/internal/auth/readyz"] {
        let probe = api.call(Method::GET, path, None, None).await;
        assert_eq!(probe.status, StatusCode::OK, "{path}");
    }
    let doc = api.state.openapi();
    let paths = serde_json::to_value(&doc).unwrap()["paths"].clone();
    assert!(paths.get("/internal/auth/healthz").is_some(), "{paths}");
    assert!(paths.get("/healthz").is_none());
    // The whole server (`app`) still serves them, under the prefix.
    let whole = api
        .state
        .app()
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
    api.app = whole;
    let probe = api
        .call(Method::GET, "/internal/auth/readyz", None, None)
        .await;
    assert_eq!(probe.status, StatusCode::OK);
}

#[tokio::test]
async fn option_current_user_tells_visitors_from_users() {
    let api = with_login_page();
    let visitor = api.call(Method::GET, "/", None, None).await;
    assert_eq!(visitor.text, "hello visitor");
    // A cookie that names no session is a visitor too, not an error.
    let forged = api
        .call(Method::GET, "/", None, Some("__Host-session=forged"))
        .await;
    assert_eq!(forged.text, "hello visitor");
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let user = api.call(Method::GET, "/", None, Some(&cookie)).await;
    assert_eq!(user.text, format!("hello {EMAIL}"));
}

#[tokio::test]
async fn option_current_user_reports_an_outage_instead_of_a_visitor() {
    let api = with_login_page();
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    api.users.mode.store(1, std::sync::atomic::Ordering::SeqCst);
    let down = api.call(Method::GET, "/", None, Some(&cookie)).await;
    assert_eq!((down.status.as_u16(), down.code()), (503, "unavailable"));
}

#[tokio::test]
async fn require_auth_answers_401_for_apis_and_redirects_pages_to_the_login_page() {
    let api = with_login_page();
    let refused = api.call(Method::GET, "/api/orders", None, None).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (401, "unauthenticated")
    );
    let refused = api
        .call(Method::POST, "/api/orders", Some(json!({})), None)
        .await;
    assert_eq!(refused.status.as_u16(), 401);

    let redirect = api
        .call(Method::GET, "/dashboard?tab=a&b=c", None, None)
        .await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(
        redirect.headers[header::LOCATION],
        "/login?next=/dashboard%3Ftab%3Da%26b%3Dc"
    );
    // A form post is not replayed after sign-in: 401, no redirect.
    let post = api
        .call(Method::POST, "/orders/new", Some(json!({})), None)
        .await;
    assert_eq!(
        (post.status.as_u16(), post.code()),
        (401, "unauthenticated")
    );

    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let orders = api
        .call(Method::GET, "/api/orders", None, Some(&cookie))
        .await;
    assert_eq!(
        (orders.status, orders.text.as_str()),
        (StatusCode::OK, "orders")
    );
    let page = api
        .call(Method::GET, "/dashboard", None, Some(&cookie))
        .await;
    assert_eq!(page.text, format!("hello {EMAIL}"));
}

#[tokio::test]
async fn the_redirect_s_next_is_never_another_site() {
    // `//evil.example/x` as a request target is a path here, but as a
    // `next` a browser would leave for evil.example: it is dropped.
    let request = Request::builder()
        .uri("//evil.example/dashboard")
        .body(Body::empty())
        .unwrap();
    let mut api2 = Api::with(|_, web| web.login_page = Some("/login".into()));
    api2.app = api2
        .state
        .wrap(Router::new().fallback(get(greet).layer(RequireAuth::redirect())))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
    let redirect = api2.send(request).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(redirect.headers[header::LOCATION], "/login");
}

#[tokio::test]
async fn the_redirect_s_next_keeps_the_prefix_of_a_nested_router() {
    let mut api = Api::with(|_, web| web.login_page = Some("/login".into()));
    let pages = Router::new().route("/page", get(greet).layer(RequireAuth::redirect()));
    api.app = api
        .state
        .wrap(Router::new().nest("/app", pages))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
    let redirect = api.call(Method::GET, "/app/page?x=1", None, None).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(
        redirect.headers[header::LOCATION],
        "/login?next=/app/page%3Fx%3D1"
    );
}

#[tokio::test]
async fn a_redirect_guard_without_a_login_page_is_a_logged_500_not_an_open_door() {
    let mut api = Api::new();
    existing_app(&mut api);
    let refused = api.call(Method::GET, "/dashboard", None, None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (500, "internal"));
}

#[tokio::test]
async fn a_login_page_must_be_a_path_on_this_site() {
    use auth_axum::{AuthState, WebConfig};
    use auth_core::conformance::{Harness, Stores};
    use auth_store_memory::MemoryStore;
    let h = Harness::new(Stores::all(std::sync::Arc::new(MemoryStore::new())));
    for bad in ["https://evil.example/login", "//evil.example", "login"] {
        let web = WebConfig {
            login_page: Some(bad.into()),
            ..WebConfig::default()
        };
        assert!(AuthState::new(h.auth.clone(), web).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_profile_the_service_does_not_take_answers_422_over_http_and_stores_nothing() {
    let api = Api::new();
    let refused = api
        .post(
            "/auth/register",
            json!({"email": EMAIL, "password": PW, "profile": {"display_name": "Em"}}),
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "invalid_profile")
    );
    api.h.auth.settle().await;
    assert!(api.h.mailer.messages().is_empty());
    // A profile that is not an object is malformed input, also a 422.
    let wrong = api
        .post(
            "/auth/register",
            json!({"email": EMAIL, "password": PW, "profile": "text"}),
        )
        .await;
    assert_eq!(wrong.status.as_u16(), 422);
}

/// Roles from another source than the stores: everyone at example.com is staff.
#[derive(Debug)]
struct StaffByDomain;

impl auth_axum::RoleSource for StaffByDomain {
    fn roles<'a>(
        &'a self,
        _auth: &'a auth_core::Auth,
        user: &'a auth_core::store::User,
    ) -> auth_axum::RolesFuture<'a> {
        Box::pin(async move {
            let staff = user.email.as_str().ends_with("@example.com");
            Ok(if staff {
                vec![auth_core::store::Role::new("staff").unwrap()]
            } else {
                Vec::new()
            })
        })
    }
}

fn guarded(api: &mut Api) {
    use auth_axum::Permissions;
    use auth_core::store::Role;
    let state = api.state.clone().with_permissions(
        Permissions::new()
            .grant(Role::new("editor").unwrap(), ["posts:write"])
            .grant(Role::new("admin").unwrap(), ["posts:write", "posts:delete"]),
    );
    let mine = Router::new()
        .route(
            "/admin",
            get(|| async { "admin" }).layer(RequireAuth::api().role(Role::new("admin").unwrap())),
        )
        .route(
            "/posts",
            post(|| async { "written" }).layer(RequireAuth::api().permission("posts:write")),
        )
        .route(
            "/posts/delete",
            post(|| async { "deleted" }).layer(RequireAuth::api().permission("posts:delete")),
        );
    api.state = state.clone();
    api.app = state
        .wrap(mine.merge(state.routes()))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
}

#[tokio::test]
async fn roles_and_permissions_answer_403_until_granted_and_revocation_is_seen_at_once() {
    use auth_core::conformance::Harness;
    use auth_core::store::Role;
    let mut api = Api::new();
    guarded(&mut api);
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let call = async |method: Method, path: &str| {
        api.call(method, path, Some(json!({})), Some(&cookie)).await
    };
    for (method, path) in [
        (Method::GET, "/admin"),
        (Method::POST, "/posts"),
        (Method::POST, "/posts/delete"),
    ] {
        let refused = call(method, path).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (403, "forbidden"),
            "{path}"
        );
    }
    let user = api
        .h
        .stores
        .users
        .user_by_email(EMAIL)
        .await
        .unwrap()
        .unwrap()
        .id;
    let ctx = Harness::ctx(1);
    let editor = Role::new("editor").unwrap();
    assert!(api.h.auth.grant_role(user, &editor, &ctx).await.unwrap());
    assert_eq!(call(Method::POST, "/posts").await.text, "written");
    assert_eq!(
        call(Method::POST, "/posts/delete").await.status.as_u16(),
        403
    );
    let admin = Role::new("admin").unwrap();
    api.h.auth.grant_role(user, &admin, &ctx).await.unwrap();
    assert_eq!(call(Method::GET, "/admin").await.text, "admin");
    assert_eq!(call(Method::POST, "/posts/delete").await.text, "deleted");
    // A revoked role is refused on the very next request.
    assert!(api.h.auth.revoke_role(user, &admin, &ctx).await.unwrap());
    assert_eq!(call(Method::GET, "/admin").await.status.as_u16(), 403);
    // Without a session: 401, not 403.
    let anonymous = api.call(Method::GET, "/admin", None, None).await;
    assert_eq!(anonymous.status.as_u16(), 401);
}

#[tokio::test]
async fn an_application_s_own_role_source_decides() {
    let mut api = Api::new();
    api.state = api
        .state
        .clone()
        .with_role_source(std::sync::Arc::new(StaffByDomain));
    let state = api.state.clone();
    let mine = Router::new().route(
        "/staff",
        get(|| async { "staff" })
            .layer(RequireAuth::api().role(auth_core::store::Role::new("staff").unwrap())),
    );
    api.app = state
        .wrap(mine.merge(state.routes()))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let staff = api.call(Method::GET, "/staff", None, Some(&cookie)).await;
    assert_eq!(staff.text, "staff");
}

#[tokio::test]
async fn s7_a_guarded_state_change_refuses_cross_site_requests_without_a_csrf_layer() {
    let api = with_login_page();
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let request = Request::post("/api/orders")
        .header(header::COOKIE, cookie.clone())
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let refused = api.send(request).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (403, "forbidden_origin")
    );
    let same = api
        .call(Method::POST, "/api/orders", Some(json!({})), Some(&cookie))
        .await;
    assert_eq!(same.text, "created");
}
