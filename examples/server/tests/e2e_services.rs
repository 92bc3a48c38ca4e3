//! End to end on real services: the server binary on PostgreSQL, Redis and SMTP
//! into a MailDev sink whose HTTP API the test reads; then two server processes
//! sharing one PostgreSQL and one Redis, as two instances of a deployment.
//!
//! Needs `DATABASE_URL`, `REDIS_URL`, `SMTP_SINK_URL` and `SMTP_SINK_API_URL`
//! (`.ci/run` sets them); without them each test skips with the reason printed,
//! and with `CI=true` it fails instead.

#![cfg(all(feature = "postgres", feature = "redis", feature = "smtp"))]

mod support;

use serde_json::json;
use support::services::Services;
use support::{Mailbox, Server, assert_no_secrets, full_journey, token_of};

const PUBLIC_URL: &str = "http://auth-e2e.localhost:8999";

/// The whole journey (register, mail, verify, login, change, forgot, mail,
/// reset, lockout, logout) on PostgreSQL + Redis + SMTP; no secret in the logs.
#[test]
fn the_whole_journey_on_postgres_redis_and_smtp() {
    let Some(services) = Services::get() else {
        return;
    };
    let server = Server::start_with(&["--migrate"], &services.env(PUBLIC_URL));
    let logs = server.logs();
    assert!(logs.contains("PostgreSQL migrations applied"), "{logs}");
    assert!(logs.contains("storage: Redis"), "{logs}");
    let email = format!("{}@example.com", support::services::unique("journey"));
    let secrets = full_journey(
        &server,
        &Mailbox::MailDev(services.maildev),
        PUBLIC_URL,
        &email,
    );
    // The lockout notice went out over SMTP too.
    let subjects = Mailbox::MailDev(services.maildev).subjects(&email);
    assert!(subjects.len() >= 3, "{subjects:?}");
    assert_no_secrets(&server.output(), &secrets);
    assert!(server.stop().success(), "graceful shutdown");
}

/// S5, S6 across processes: two servers on one PostgreSQL and one Redis. A
/// lockout reached on one is enforced on the other, a session from one works on
/// the other, and a logout on one is seen by the other at once.
#[test]
fn two_servers_share_lockouts_sessions_and_logouts() {
    let Some(services) = Services::get() else {
        return;
    };
    let env = services.env(PUBLIC_URL);
    let a = Server::start_with(&["--migrate"], &env);
    let b = Server::start(&env);
    let mail = Mailbox::MailDev(services.maildev);
    let password = "two servers one truth";
    let mut secrets = vec![password.to_owned()];
    let mut seen = Vec::new();

    let mut users = Vec::new();
    for name in ["roamer", "target"] {
        let email = format!("{}@example.com", support::services::unique(name));
        let mut c = a.client();
        let r = c.post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password}),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        // Verified through the other server.
        let token = token_of(&mail.link(&email, "/verify-email", &mut seen));
        secrets.push(token.clone());
        let r = b
            .client()
            .post("/api/v1/auth/verify-email", &json!({"token": token}));
        assert_eq!(r.status, 200, "{}", r.body);
        users.push(email);
    }
    let (roamer, target) = (&users[0], &users[1]);

    // A session made on A works on B.
    let mut on_a = a.client();
    let r = on_a.post(
        "/api/v1/auth/login",
        &json!({"email": roamer, "password": password}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = on_a.cookie.clone().expect("session cookie");
    secrets.push(cookie.split_once('=').unwrap().1.to_owned());
    let mut on_b = b.client();
    on_b.cookie = Some(cookie.clone());
    let r = on_b.get("/api/v1/users/me");
    assert_eq!(
        (r.status, r.json()["email"].as_str()),
        (200, Some(roamer.as_str()))
    );

    // A lockout reached on A is enforced on B, even for the right password.
    let mut attacker = a.client();
    for _ in 0..5 {
        let r = attacker.post(
            "/api/v1/auth/login",
            &json!({"email": target, "password": "wrong password!"}),
        );
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = b.client().post(
        "/api/v1/auth/login",
        &json!({"email": target, "password": password}),
    );
    assert_eq!((r.status, r.code().as_str()), (429, "locked"), "{}", r.body);
    assert!(r.header("retry-after").is_some());

    // A logout on B is seen by A at once.
    let r = on_b.post("/api/v1/auth/logout", &json!({}));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(on_a.get("/api/v1/users/me").status, 401);

    for server in [&a, &b] {
        assert_no_secrets(&server.logs(), &secrets);
    }
    assert!(a.stop().success() && b.stop().success());
}
