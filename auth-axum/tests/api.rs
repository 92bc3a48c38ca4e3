//! Every route of the REST API in process, on the memory store: happy paths,
//! every error code with its status, cookies, rotation, CSRF (S7), client IP (S8),
//! the envelope (S9) and input limits (S11).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use auth_axum::TrustedProxy;
use auth_core::mail::MessageKind;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use std::sync::atomic::Ordering;
use support::{Api, PW};
use time::Duration;

const EMAIL: &str = "alice@example.com";

#[tokio::test]
async fn the_whole_journey_over_http() {
    let api = Api::new();
    api.verified(EMAIL).await;

    let login = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["user"]["email"], EMAIL);
    assert_eq!(login.body["user"]["email_verified"], true);
    assert_eq!(login.body["session"]["current"], true);
    assert!(
        login.body.get("token").is_none(),
        "no token in the body unless bearer tokens are on"
    );
    let cookie = login.cookie().unwrap();

    let me = api.get("/users/me", Some(&cookie)).await;
    assert_eq!(
        (me.status, me.body["email"].as_str()),
        (StatusCode::OK, Some(EMAIL))
    );
    let sessions = api.get("/users/me/sessions", Some(&cookie)).await;
    assert_eq!(sessions.body.as_array().unwrap().len(), 1);
    assert_eq!(sessions.body[0]["ip"], "203.0.113.5");

    let changed = api
        .post_with(
            "/auth/password/change",
            json!({"current_password": PW, "new_password": "second passphrase"}),
            &cookie,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let new_cookie = changed.cookie().unwrap();
    assert_ne!(new_cookie, cookie, "S5: the session is reissued");
    assert_eq!(
        api.get("/users/me", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/users/me", Some(&new_cookie)).await.status,
        StatusCode::OK
    );

    assert_eq!(
        api.post("/auth/password/forgot", json!({"email": EMAIL}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let token = api.h.token(EMAIL, MessageKind::PasswordReset).await;
    let reset = api
        .post(
            "/auth/password/reset",
            json!({"token": token.expose_secret(), "new_password": "third passphrase"}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert!(
        reset.headers.get(header::SET_COOKIE).is_none(),
        "S5: no automatic login"
    );
    assert_eq!(
        api.get("/users/me", Some(&new_cookie)).await.status,
        StatusCode::UNAUTHORIZED,
        "S5: reset revokes all"
    );

    let cookie = api.login(EMAIL, "third passphrase").await;
    let out = api.post_with("/auth/logout", json!({}), &cookie).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.set_cookie().contains("Max-Age=0"),
        "{}",
        out.set_cookie()
    );
    assert_eq!(
        api.get("/users/me", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED,
        "S5: server-side revocation"
    );
}

#[tokio::test]
async fn s5_cookie_attributes() {
    let api = Api::new();
    api.verified(EMAIL).await;
    let login = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    let set = login.set_cookie();
    assert!(set.starts_with("__Host-session="), "{set}");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain"), "{set}");
    assert!(
        !set.contains("Max-Age"),
        "a session cookie unless remember-me: {set}"
    );
    let value = login.cookie().unwrap();
    assert_eq!(
        value.len(),
        "__Host-session=".len() + 43,
        "an opaque 256-bit token"
    );

    let remember = api
        .post(
            "/auth/login",
            json!({"email": EMAIL, "password": PW, "remember_me": true}),
        )
        .await;
    assert!(
        remember.set_cookie().contains("Max-Age=2592000"),
        "{}",
        remember.set_cookie()
    );
}

#[tokio::test]
async fn s5_each_login_gets_a_new_session_id() {
    let api = Api::new();
    api.verified(EMAIL).await;
    let (a, b) = (api.login(EMAIL, PW).await, api.login(EMAIL, PW).await);
    assert_ne!(a, b);
    assert_eq!(
        api.get("/users/me/sessions", Some(&a))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// S5 (shared browser): a login that presents a session cookie revokes that
/// session, so the previous user's session does not outlive the next sign-in.
#[tokio::test]
async fn s5_a_login_presenting_a_session_cookie_revokes_that_session() {
    let api = Api::new();
    api.verified(EMAIL).await;
    api.verified("bob@example.com").await;
    let alice = api.login(EMAIL, PW).await;
    let bob = api
        .post_with(
            "/auth/login",
            json!({"email": "bob@example.com", "password": PW}),
            &alice,
        )
        .await;
    assert_eq!(bob.status, StatusCode::OK, "{}", bob.text);
    let bob = bob.cookie().unwrap();
    assert_ne!(bob, alice);
    assert_eq!(
        api.get("/users/me", Some(&alice)).await.status,
        StatusCode::UNAUTHORIZED,
        "the presented session ended"
    );
    assert_eq!(
        api.get("/users/me", Some(&bob)).await.status,
        StatusCode::OK
    );
    // A failed login leaves the presented session alone.
    let failed = api
        .post_with(
            "/auth/login",
            json!({"email": EMAIL, "password": "wrong password!"}),
            &bob,
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.get("/users/me", Some(&bob)).await.status,
        StatusCode::OK
    );
}

/// S14: `DELETE /users/me/sessions` needs a recent sign-in or the current
/// password in the body; without either it answers 403
/// `reauthentication_required`, with a wrong one 401, and nothing is revoked.
#[tokio::test]
async fn s14_revoking_other_sessions_needs_a_recent_sign_in_or_the_password() {
    let api = Api::new();
    api.verified(EMAIL).await;
    let (current, other) = (api.login(EMAIL, PW).await, api.login(EMAIL, PW).await);
    for _ in 0..11 {
        api.h.clock.advance(Duration::minutes(1));
        for cookie in [&current, &other] {
            assert_eq!(
                api.get("/users/me", Some(cookie)).await.status,
                StatusCode::OK
            );
        }
    }
    let revoke = |body| {
        api.call(
            Method::DELETE,
            "/api/v1/users/me/sessions",
            body,
            Some(&current),
        )
    };
    let r = revoke(None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "reauthentication_required")
    );
    let r = revoke(Some(json!({"password": "wrong password!"}))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let r = revoke(Some(json!({"password": PW, "extra": 1}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        api.get("/users/me", Some(&other)).await.status,
        StatusCode::OK
    );
    let r = revoke(Some(json!({"password": PW}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        api.get("/users/me", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let sessions = api.get("/users/me/sessions", Some(&current)).await;
    let listed = sessions.body.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0]["authenticated_at"].is_string(),
        "{}",
        sessions.text
    );
}

#[tokio::test]
async fn s9_every_error_code_with_its_status_in_the_envelope() {
    let api = Api::with(|c, _| c.enumeration_protection = false);
    api.verified(EMAIL).await;
    let cases = [
        (
            api.post(
                "/auth/login",
                json!({"email": EMAIL, "password": "wrong password!"}),
            )
            .await,
            401,
            "invalid_credentials",
        ),
        (api.get("/users/me", None).await, 401, "unauthenticated"),
        (
            api.post("/auth/verify-email", json!({"token": "nope"}))
                .await,
            400,
            "token_invalid",
        ),
        (
            api.post("/auth/register", json!({"email": "bad", "password": PW}))
                .await,
            422,
            "invalid_email",
        ),
        (
            api.post(
                "/auth/register",
                json!({"email": "b@example.com", "password": "short"}),
            )
            .await,
            422,
            "weak_password",
        ),
        (
            api.post("/auth/register", json!({"email": EMAIL, "password": PW}))
                .await,
            409,
            "email_taken",
        ),
    ];
    for (reply, status, code) in cases {
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (status, code),
            "{}",
            reply.text
        );
        assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(
            reply.body["error"]["request_id"].as_str(),
            reply.headers["x-request-id"].to_str().ok()
        );
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    }
    let weak = api
        .post(
            "/auth/register",
            json!({"email": "c@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(weak.body["error"]["rule"], "common_password");

    // Unverified with the right password.
    api.post(
        "/auth/register",
        json!({"email": "new@example.com", "password": PW}),
    )
    .await;
    let unverified = api
        .post(
            "/auth/login",
            json!({"email": "new@example.com", "password": PW}),
        )
        .await;
    assert_eq!(
        (unverified.status.as_u16(), unverified.code()),
        (403, "email_not_verified")
    );

    // Expired token.
    api.post("/auth/password/forgot", json!({"email": EMAIL}))
        .await;
    let token = api.h.token(EMAIL, MessageKind::PasswordReset).await;
    api.h.clock.advance(Duration::minutes(31));
    let expired = api
        .post(
            "/auth/password/reset",
            json!({"token": token.expose_secret(), "new_password": "x y z w v u"}),
        )
        .await;
    assert_eq!(
        (expired.status.as_u16(), expired.code()),
        (400, "token_expired")
    );
}

#[tokio::test]
async fn s6_lockout_answers_429_with_retry_after() {
    let api = Api::new();
    api.verified(EMAIL).await;
    for _ in 0..5 {
        api.post(
            "/auth/login",
            json!({"email": EMAIL, "password": "wrong password!"}),
        )
        .await;
    }
    let locked = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert_eq!((locked.status.as_u16(), locked.code()), (429, "locked"));
    assert_eq!(locked.headers[header::RETRY_AFTER], "5");
    assert_eq!(locked.body["error"]["retry_after"], 5);
    assert!(
        locked.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again later")
    );
}

#[tokio::test]
async fn s6_rate_limited_ip_answers_429() {
    let api = Api::new();
    for i in 0..20 {
        api.post(
            "/auth/login",
            json!({"email": format!("u{i}@example.com"), "password": PW}),
        )
        .await;
    }
    let limited = api
        .post(
            "/auth/login",
            json!({"email": "x@example.com", "password": PW}),
        )
        .await;
    assert_eq!(
        (limited.status.as_u16(), limited.code()),
        (429, "rate_limited")
    );
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

/// S10: a body of the wrong type answers 422 naming the field, never the
/// value sent (a password sent as a number, say).
#[tokio::test]
async fn s10_a_422_does_not_echo_the_value_sent() {
    let api = Api::new();
    for password in [json!(987_654_321), json!(true), json!(["s3cret-in-array"])] {
        let reply = api
            .post(
                "/auth/login",
                json!({"email": "a@example.com", "password": password}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert!(reply.text.contains("password"), "{}", reply.text);
        for secret in ["987654321", "s3cret"] {
            assert!(!reply.text.contains(secret), "{}", reply.text);
        }
    }
}

/// S13: a registration answered 202 is not lost to a passing store outage:
/// the account is created in the background, trying again while the user
/// store is unavailable.
#[tokio::test]
async fn s13_an_accepted_registration_survives_a_store_blip() {
    let api = Api::new();
    api.users.mode.store(3, Ordering::SeqCst);
    let email = "blip@example.com";
    let reply = api
        .post("/auth/register", json!({"email": email, "password": PW}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    api.h.auth.settle().await;
    assert_eq!(api.users.mode.load(Ordering::SeqCst), 0, "the blip was hit");
    let user = api.h.stores.users.user_by_email(email).await.unwrap();
    assert!(user.is_some(), "the accepted registration was kept");
}

#[tokio::test]
async fn s13_store_outage_is_503_with_retry_after_and_recovers() {
    let api = Api::new();
    api.users.mode.store(1, Ordering::SeqCst);
    let down = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert_eq!((down.status.as_u16(), down.code()), (503, "unavailable"));
    assert_eq!(down.headers[header::RETRY_AFTER], "1");
    let ready = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    api.users.mode.store(2, Ordering::SeqCst);
    let broken = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert_eq!((broken.status.as_u16(), broken.code()), (500, "internal"));
    assert!(
        !broken.text.contains("secret detail"),
        "S9: no internals in messages"
    );
    api.users.mode.store(0, Ordering::SeqCst);
    assert_eq!(
        api.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.post("/auth/login", json!({"email": EMAIL, "password": PW}))
            .await
            .code(),
        "invalid_credentials"
    );
}

#[tokio::test]
async fn s7_cross_site_state_changes_are_refused() {
    let api = Api::new();
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let post = |origin: Option<&'static str>, site: Option<&'static str>| {
        let mut r = Request::post("/api/v1/auth/logout").header(header::COOKIE, cookie.clone());
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        r.body(Body::empty()).unwrap()
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (None, Some("cross-site")),
        (None, Some("same-site")),
        (Some("null"), None),
    ] {
        let reply = api.send(post(origin, site)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (403, "forbidden_origin"),
            "{origin:?} {site:?}"
        );
    }
    assert_eq!(
        api.get("/users/me", Some(&cookie)).await.status,
        StatusCode::OK,
        "nothing happened"
    );
    // The configured public origin passes.
    let ok = api
        .send(post(Some("http://localhost:8080"), Some("same-origin")))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn s11_bad_input_gets_a_4xx_envelope_and_stores_nothing() {
    let api = Api::new();
    let raw = |body: Vec<u8>, content_type: Option<&str>| {
        let mut r = Request::post("/api/v1/auth/register");
        if let Some(ct) = content_type {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        r.body(Body::from(body)).unwrap()
    };
    let json_ct = Some("application/json");
    let cases = [
        (raw(b"{not json".to_vec(), json_ct), 400, "malformed_json"),
        (raw(vec![0xff, 0xfe, 0x00], json_ct), 400, "malformed_json"),
        (
            raw(
                br#"{"email":"a@example.com","password":"x"}"#.to_vec(),
                Some("text/plain"),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            raw(
                br#"{"email":"a@example.com","password":"x"}"#.to_vec(),
                None,
            ),
            415,
            "unsupported_media_type",
        ),
        (
            raw(
                br#"{"email":"a@example.com","password":"long enough pw","admin":true}"#.to_vec(),
                json_ct,
            ),
            422,
            "invalid_request",
        ),
        (
            raw(br#"{"email":"a@example.com"}"#.to_vec(), json_ct),
            422,
            "invalid_request",
        ),
        (
            raw(br#"{"email":1,"password":2}"#.to_vec(), json_ct),
            422,
            "invalid_request",
        ),
        (
            raw(vec![b' '; 20 * 1024], json_ct),
            413,
            "payload_too_large",
        ),
        (
            raw(
                format!(
                    r#"{{"email":"{}@example.com","password":"long enough pw"}}"#,
                    "a".repeat(15_000)
                )
                .into_bytes(),
                json_ct,
            ),
            422,
            "invalid_email",
        ),
        (
            raw(
                br#"{"email":"a\u0000b@example.com","password":"long enough pw"}"#.to_vec(),
                json_ct,
            ),
            422,
            "invalid_email",
        ),
    ];
    for (request, status, code) in cases {
        let reply = api.send(request).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (status, code),
            "{}",
            reply.text
        );
        assert!(reply.body["error"]["request_id"].is_string());
    }
    let big = api.send(raw(vec![b'x'; 10 * 1024 * 1024], json_ct)).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    api.h.auth.shutdown().await;
    assert!(api.h.mailer.messages().is_empty(), "nothing was registered");
}

#[tokio::test]
async fn s8_forwarded_for_is_ignored_from_untrusted_peers_and_used_from_trusted_ones() {
    for (trusted, expected) in [
        (None, "203.0.113.5"),
        (Some("203.0.113.0/24"), "198.51.100.77"),
    ] {
        let api = Api::with(|_, w| {
            w.trusted_proxies = trusted
                .map(|t| TrustedProxy::parse(t).unwrap())
                .into_iter()
                .collect();
        });
        api.verified(EMAIL).await;
        let request = Request::post("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", "10.9.9.9, 198.51.100.77")
            .body(Body::from(
                json!({"email": EMAIL, "password": PW}).to_string(),
            ))
            .unwrap();
        let reply = api.send(request).await;
        assert_eq!(
            reply.body["session"]["ip"], expected,
            "trusted: {trusted:?}"
        );
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    // Echoed only from a trusted proxy (tests/hardening.rs has the other peers).
    let api = Api::with(|_, w| {
        w.trusted_proxies = vec![TrustedProxy::parse("203.0.113.0/24").unwrap()];
    });
    let request = Request::get("/api/v1/users/me")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let reply = api.send(request).await;
    assert_eq!(reply.headers["x-request-id"], "abc-123");
    assert_eq!(reply.body["error"]["request_id"], "abc-123");
    let bad = Request::get("/api/v1/users/me")
        .header("x-request-id", "has spaces and <html>")
        .body(Body::empty())
        .unwrap();
    let reply = api.send(bad).await;
    assert_ne!(reply.headers["x-request-id"], "has spaces and <html>");
    assert_eq!(reply.headers["x-request-id"].len(), 32);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope() {
    let api = Api::new();
    let missing = api.get("/nope", None).await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "not_found")
    );
    let method = api
        .call(Method::PUT, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(
        (method.status.as_u16(), method.code()),
        (405, "method_not_allowed")
    );
}

#[tokio::test]
async fn users_manage_their_sessions() {
    let api = Api::new();
    api.verified(EMAIL).await;
    api.verified("bob@example.com").await;
    let (a, b) = (api.login(EMAIL, PW).await, api.login(EMAIL, PW).await);
    let bob = api.login("bob@example.com", PW).await;
    let bob_id = api.get("/users/me/sessions", Some(&bob)).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = api.get("/users/me/sessions", Some(&a)).await.body;
    let other = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let api = &api;
    let del = |id: String, cookie: String| async move {
        api.call(
            Method::DELETE,
            &format!("/api/v1/users/me/sessions/{id}"),
            None,
            Some(&cookie),
        )
        .await
    };
    assert_eq!(
        del(bob_id, a.clone()).await.status,
        StatusCode::NOT_FOUND,
        "not yours"
    );
    assert_eq!(
        api.get("/users/me", Some(&bob)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        del("not-a-uuid".into(), a.clone()).await.code(),
        "invalid_request"
    );
    assert_eq!(del(other, a.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/users/me", Some(&b)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let c = api.login(EMAIL, PW).await;
    let all = api
        .call(Method::DELETE, "/api/v1/users/me/sessions", None, Some(&a))
        .await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/users/me", Some(&c)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/users/me", Some(&a)).await.status,
        StatusCode::OK,
        "the current one stays"
    );
}

#[tokio::test]
async fn resend_verification_is_accepted_alike() {
    let api = Api::new();
    api.post("/auth/register", json!({"email": EMAIL, "password": PW}))
        .await;
    for email in [EMAIL, "nobody@example.com"] {
        let r = api
            .post("/auth/verify-email/resend", json!({"email": email}))
            .await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::ACCEPTED, Some("accepted"))
        );
    }
    api.h.auth.shutdown().await;
    assert_eq!(
        api.h
            .mailer
            .messages_to(EMAIL, MessageKind::Verification)
            .len(),
        2
    );
}

/// S3: the answer to a reset or resend request must not wait for the account
/// lookup, or its time tells a known address from an unknown one. With the user
/// store down, both still answer 202 alike (the lookup runs, and fails, in the
/// background, where the failure is logged, and no link is mailed).
#[tokio::test]
async fn s3_reset_and_resend_answer_before_looking_the_account_up() {
    let api = Api::new();
    api.post("/auth/register", json!({"email": EMAIL, "password": PW}))
        .await;
    api.users.mode.store(1, Ordering::SeqCst);
    for path in ["/auth/password/forgot", "/auth/verify-email/resend"] {
        for email in [EMAIL, "nobody@example.com"] {
            let r = api.post(path, json!({"email": email})).await;
            assert_eq!(
                (r.status, r.body["status"].as_str()),
                (StatusCode::ACCEPTED, Some("accepted")),
                "{path} for {email} during a user store outage: {}",
                r.text
            );
        }
    }
    api.h.auth.shutdown().await;
    assert!(
        api.h
            .mailer
            .messages_to(EMAIL, MessageKind::PasswordReset)
            .is_empty()
    );
}

#[tokio::test]
async fn emailed_links_open_pages_that_change_nothing() {
    let api = Api::new();
    api.post("/auth/register", json!({"email": EMAIL, "password": PW}))
        .await;
    let token = api.h.token(EMAIL, MessageKind::Verification).await;
    for path in ["/auth/verify-email", "/auth/reset-password"] {
        let page = api
            .call(
                Method::GET,
                &format!("{path}?token={}", token.expose_secret()),
                None,
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(page.text.contains("<form>") && !page.text.contains(token.expose_secret()));
    }
    let script = api
        .call(Method::GET, "/auth/assets/auth-pages.js", None, None)
        .await;
    assert!(script.text.contains("fetch("));
    // Opening the link verified nothing: the token still works, once.
    let verify = api
        .post(
            "/auth/verify-email",
            json!({"token": token.expose_secret()}),
        )
        .await;
    assert_eq!(verify.status, StatusCode::OK);
}

#[tokio::test]
async fn bearer_tokens_when_enabled() {
    let api = Api::with(|_, w| w.bearer_tokens = true);
    api.verified(EMAIL).await;
    let login = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    let token = login.body["token"].as_str().unwrap().to_owned();
    let bearer = |method: Method, path: &str, origin: Option<&str>| {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(Body::empty()).unwrap()
    };
    assert_eq!(
        api.send(bearer(Method::GET, "/api/v1/users/me", None))
            .await
            .status,
        StatusCode::OK
    );
    // A bearer request skips the CSRF check: no page can attach the header.
    let out = api
        .send(bearer(
            Method::POST,
            "/api/v1/auth/logout",
            Some("https://evil.example"),
        ))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.send(bearer(Method::GET, "/api/v1/users/me", None))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Off by default: the header is ignored.
    let off = Api::new();
    off.verified(EMAIL).await;
    let cookie = off.login(EMAIL, PW).await;
    let value = cookie.split_once('=').unwrap().1.to_owned();
    let r = Request::get("/api/v1/users/me")
        .header(header::AUTHORIZATION, format!("Bearer {value}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(off.send(r).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn probes_answer() {
    let api = Api::new();
    for path in ["/healthz", "/readyz"] {
        let r = api.call(Method::GET, path, None, None).await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::OK, Some("ok")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn insecure_cookies_only_for_localhost() {
    let api = Api::with(|_, w| w.cookie_secure = false);
    api.verified(EMAIL).await;
    let login = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert!(
        login.set_cookie().starts_with("session="),
        "no __Host- prefix without Secure"
    );
    assert!(!login.set_cookie().contains("Secure"));
    let h = auth_core::conformance::Harness::with_config(
        auth_core::conformance::Stores::all(std::sync::Arc::new(
            auth_store_memory::MemoryStore::new(),
        )),
        auth_core::AuthConfig {
            public_url: "https://auth.example.com".into(),
            ..auth_core::conformance::Harness::config()
        },
    );
    let web = auth_axum::WebConfig {
        cookie_secure: false,
        ..auth_axum::WebConfig::default()
    };
    assert!(auth_axum::AuthState::new(h.auth, web).is_err());
}

/// S15 over HTTP: enrol TOTP, then a login answers `second_factor_required`
/// without a cookie, and the second step signs in with both methods on the
/// session; bad second steps answer in the envelope.
#[tokio::test]
async fn s15_two_step_sign_in_over_http() {
    use auth_core::clock::Clock as _;
    use auth_core::conformance::engine::totp_code;
    let api = Api::new();
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let start = api
        .post_with("/users/me/mfa/totp", json!({}), &cookie)
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    let secret = start.body["secret"].as_str().unwrap().to_owned();
    assert!(start.body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        start.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let code = totp_code(&secret, api.h.clock.now());
    let confirm = api
        .post_with("/users/me/mfa/totp/confirm", json!({"code": code}), &cookie)
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    assert_eq!(confirm.body["recovery_codes"].as_array().unwrap().len(), 10);
    let status = api.get("/users/me/mfa", Some(&cookie)).await;
    assert_eq!(status.body["totp_enabled"], json!(true));
    api.h.clock.advance(Duration::seconds(30));

    let first = api
        .post("/auth/login", json!({"email": EMAIL, "password": PW}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert!(
        first.cookie().is_none(),
        "no session before the second factor"
    );
    let pending = &first.body["second_factor_required"];
    assert_eq!(pending["methods"], json!(["totp", "recovery_code"]));
    let challenge = pending["challenge"].as_str().unwrap().to_owned();

    let both = api
        .post(
            "/auth/login/second-factor",
            json!({"challenge": challenge, "code": "123456", "recovery_code": "x"}),
        )
        .await;
    assert_eq!(
        (both.status, both.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
    );
    let wrong = api
        .post(
            "/auth/login/second-factor",
            json!({"challenge": challenge, "code": "000000"}),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "invalid_code")
    );
    let code = totp_code(&secret, api.h.clock.now());
    let ok = api
        .post(
            "/auth/login/second-factor",
            json!({"challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["session"]["methods"], json!(["password", "totp"]));
    let session = ok.cookie().unwrap();
    assert_eq!(
        api.get("/users/me", Some(&session)).await.status,
        StatusCode::OK
    );
    let again = api
        .post(
            "/auth/login/second-factor",
            json!({"challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::BAD_REQUEST, "token_invalid")
    );

    // New recovery codes need a code too (S15): none is a 422, a wrong one
    // is refused, a recovery code works.
    let path = "/users/me/mfa/recovery-codes";
    let none = api.post_with(path, json!({}), &session).await;
    assert_eq!(
        none.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        none.text
    );
    let wrong = api
        .post_with(path, json!({"code": "000000"}), &session)
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "invalid_code")
    );
    let recovery = confirm.body["recovery_codes"][0].as_str().unwrap();
    let fresh = api
        .post_with(path, json!({"recovery_code": recovery}), &session)
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    assert_eq!(fresh.body["recovery_codes"].as_array().unwrap().len(), 10);
}
