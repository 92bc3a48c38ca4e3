//! Hardening of the web layer (issue 14): the client IP behind proxies and
//! without a socket address (S8), CSRF on the application's own routes (S7),
//! and request ids only from trusted proxies (S9, S12).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::net::SocketAddr;

use auth_axum::{CurrentUser, TrustedProxy, refuse_cross_site};
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use serde_json::json;
use support::{Api, Captured, PEER, PW};

const EMAIL: &str = "alice@example.com";

fn trusting(nets: &'static [&'static str]) -> Api {
    Api::with(|_, w| {
        w.trusted_proxies = nets
            .iter()
            .map(|t| TrustedProxy::parse(t).unwrap())
            .collect();
    })
}

fn login_via(forwarded: &str, password: &str) -> Request<Body> {
    Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", forwarded)
        .body(Body::from(
            json!({"email": EMAIL, "password": password}).to_string(),
        ))
        .unwrap()
}

#[tokio::test]
async fn s8_junk_in_forwarded_for_does_not_let_the_client_choose_its_ip() {
    // A trusted proxy that appends: the client sent "10.9.9.9, junk", the proxy
    // added the address it saw.
    let api = trusting(&["203.0.113.0/24"]);
    api.verified(EMAIL).await;
    let reply = api
        .send(login_via("10.9.9.9, junk, 198.51.100.77", PW))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["session"]["ip"], "198.51.100.77");
    // Junk right of the forged entry, straight from the proxy: the proxy's view.
    let reply = api.send(login_via("10.9.9.9, junk", PW)).await;
    assert_eq!(reply.body["session"]["ip"], "203.0.113.5");
}

#[tokio::test]
async fn s8_rotating_the_left_most_entry_does_not_escape_the_ip_limit() {
    let api = trusting(&["203.0.113.0/24"]);
    let mut statuses = Vec::new();
    for i in 0..25 {
        let forwarded = format!("10.9.{i}.9, junk, 198.51.100.77");
        let body = json!({"email": format!("u{i}@example.com"), "password": PW}).to_string();
        let request = Request::post("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", forwarded)
            .body(Body::from(body))
            .unwrap();
        let reply = api.send(request).await;
        statuses.push((reply.status.as_u16(), reply.code().to_owned()));
    }
    assert!(
        statuses
            .iter()
            .any(|(s, c)| *s == 429 && c == "rate_limited"),
        "{statuses:?}"
    );
    assert_eq!(statuses.last().unwrap().0, 429, "{statuses:?}");
}

#[tokio::test]
async fn s8_ipv4_mapped_proxy_peer_matches_an_ipv4_range() {
    // A dual-stack listener reports an IPv4 proxy as ::ffff:10.0.0.5.
    let mut api = trusting(&["10.0.0.0/8"]);
    let mapped: SocketAddr = "[::ffff:10.0.0.5]:40000".parse().unwrap();
    api.app = api.state.app().layer(MockConnectInfo(mapped));
    api.verified(EMAIL).await;
    let reply = api.send(login_via("198.51.100.77", PW)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["session"]["ip"], "198.51.100.77");
}

#[tokio::test]
async fn s8_ports_and_brackets_in_forwarded_for() {
    let api = trusting(&["203.0.113.0/24"]);
    api.verified(EMAIL).await;
    for (entry, expected) in [
        ("198.51.100.77:4711", "198.51.100.77"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
    ] {
        let reply = api.send(login_via(&format!("10.9.9.9, {entry}"), PW)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["session"]["ip"], expected, "{entry}");
    }
}

#[tokio::test]
async fn s8_without_a_client_address_requests_fail_closed_and_say_why() {
    let (logs, _guard) = Captured::start(false);

    // Served without into_make_service_with_connect_info: no peer address.
    let mut api = Api::new();
    api.app = api.state.app();
    let reply = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert_eq!((reply.status.as_u16(), reply.code()), (500, "internal"));
    assert!(reply.body["error"]["request_id"].is_string());
    assert!(
        !reply.text.contains("connect_info"),
        "no internals: {}",
        reply.text
    );

    let logs = logs.text();
    let errors: Vec<_> = logs.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{logs}");
    assert!(
        errors[0].contains("into_make_service_with_connect_info"),
        "the log names the fix: {logs}"
    );
    // Probes need no client address.
    let health = api
        .call(axum::http::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(health.status, StatusCode::OK);
}

async fn transfer(CurrentUser(user): CurrentUser) -> String {
    format!("{} moved the money", user.email)
}

#[tokio::test]
async fn s7_the_application_s_own_routes_refuse_cross_site_posts() {
    let mut api = Api::new();
    let mine = Router::new()
        .route("/transfer", post(transfer))
        .layer(axum::middleware::from_fn(refuse_cross_site));
    api.app = api
        .state
        .wrap(mine.merge(api.state.routes()))
        .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let transfer = |origin: &str| {
        Request::post("/transfer")
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let refused = api.send(transfer("https://evil.example")).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (403, "forbidden_origin"),
        "{}",
        refused.text
    );
    assert!(refused.body["error"]["request_id"].is_string());
    let done = api.send(transfer("http://localhost:8080")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.text, format!("{EMAIL} moved the money"));
}

#[tokio::test]
async fn s7_sec_fetch_site_from_a_configured_origin_is_accepted_and_from_others_refused() {
    let api = Api::with(|_, w| {
        w.allowed_origins = vec![
            "http://localhost:8080".to_owned(),
            "https://app.example.com".to_owned(),
        ];
    });
    api.verified(EMAIL).await;
    let post = |cookie: &str, origin: Option<&str>, site: &str| {
        let mut r = Request::post("/api/v1/auth/logout")
            .header(header::COOKIE, cookie)
            .header("sec-fetch-site", site);
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(Body::empty()).unwrap()
    };
    let cookie = api.login(EMAIL, PW).await;
    for (origin, site) in [
        (None, "cross-site"),
        (None, "same-site"),
        (Some("https://evil.example"), "cross-site"),
        (Some("https://other.example.com"), "same-site"),
        (Some("null"), "cross-site"),
    ] {
        let reply = api.send(post(&cookie, origin, site)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (403, "forbidden_origin"),
            "{origin:?} {site}"
        );
    }
    assert_eq!(
        api.get("/users/me", Some(&cookie)).await.status,
        StatusCode::OK,
        "nothing happened"
    );
    // A configured origin is trusted even when the browser says cross-site.
    for site in ["cross-site", "same-site"] {
        let cookie = api.login(EMAIL, PW).await;
        let reply = api
            .send(post(&cookie, Some("https://app.example.com"), site))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "{site}: {}",
            reply.text
        );
        assert_eq!(
            api.get("/users/me", Some(&cookie)).await.status,
            StatusCode::UNAUTHORIZED,
            "logged out"
        );
    }
}

#[tokio::test]
async fn request_ids_only_from_trusted_proxies() {
    let ask = || {
        Request::get("/api/v1/users/me")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap()
    };
    // From any other peer the client's id is ignored: a fresh one is generated.
    let direct = Api::new().send(ask()).await;
    assert_ne!(direct.headers["x-request-id"], "abc-123");
    assert_eq!(direct.headers["x-request-id"].len(), 32);
    assert_eq!(
        direct.body["error"]["request_id"],
        direct.headers["x-request-id"].to_str().unwrap()
    );
    // From a trusted proxy it is kept, so one id follows the request.
    let proxied = trusting(&["203.0.113.0/24"]).send(ask()).await;
    assert_eq!(proxied.headers["x-request-id"], "abc-123");
    assert_eq!(proxied.body["error"]["request_id"], "abc-123");
    // Even a trusted proxy's id must be a plain token.
    let bad = Request::get("/api/v1/users/me")
        .header("x-request-id", "has spaces and <html>")
        .body(Body::empty())
        .unwrap();
    let reply = trusting(&["203.0.113.0/24"]).send(bad).await;
    assert_eq!(reply.headers["x-request-id"].len(), 32);
}

/// S7, found by mutation testing: the bearer exemption needs all three of
/// bearer tokens enabled, an `Authorization: Bearer` header and no session
/// cookie. Without that, a cross-site login (login CSRF, no cookie yet) or a
/// cross-site request that adds a bearer header would skip the check. And a
/// browser's `Sec-Fetch-Site: same-origin` or `none` passes without `Origin`.
#[tokio::test]
async fn s7_the_bearer_exemption_is_narrow_and_same_origin_passes() {
    for bearer_tokens in [false, true] {
        let api = Api::with(|_, w| w.bearer_tokens = bearer_tokens);
        api.verified(EMAIL).await;
        let cross_site = |path: &str, bearer: bool, cookie: Option<&str>| {
            let mut r = Request::post(path)
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/json");
            if bearer {
                r = r.header(header::AUTHORIZATION, "Bearer not-a-session");
            }
            if let Some(c) = cookie {
                r = r.header(header::COOKIE, c);
            }
            r.body(Body::from(
                json!({"email": EMAIL, "password": PW}).to_string(),
            ))
            .unwrap()
        };
        let login = api
            .send(cross_site("/api/v1/auth/login", false, None))
            .await;
        assert_eq!(
            login.status,
            StatusCode::FORBIDDEN,
            "bearer {bearer_tokens}"
        );
        let cookie = api.login(EMAIL, PW).await;
        let both = api
            .send(cross_site("/api/v1/auth/logout", true, Some(&cookie)))
            .await;
        assert_eq!(both.status, StatusCode::FORBIDDEN, "bearer {bearer_tokens}");
        let bearer_only = api
            .send(cross_site("/api/v1/auth/logout", true, None))
            .await;
        if bearer_tokens {
            // Exempt from S7 (a page cannot attach the header); logout answers
            // 204 whether or not the token names a session.
            assert_eq!(bearer_only.status, StatusCode::NO_CONTENT);
        } else {
            assert_eq!(bearer_only.status, StatusCode::FORBIDDEN);
        }
    }
    let api = Api::new();
    api.verified(EMAIL).await;
    for site in ["same-origin", "none"] {
        let cookie = api.login(EMAIL, PW).await;
        let logout = Request::post("/api/v1/auth/logout")
            .header(header::COOKIE, cookie)
            .header("sec-fetch-site", site)
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            api.send(logout).await.status,
            StatusCode::NO_CONTENT,
            "{site}"
        );
    }
}
