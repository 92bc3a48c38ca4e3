//! PostgreSQL stops under a running server, then comes back: meanwhile requests
//! answer 503 with `Retry-After` within the pool's acquire timeout (never a hang,
//! never a 500), and afterwards they succeed on the same process.
//!
//! This test stops the real PostgreSQL of `DATABASE_URL` (which must be the
//! local cluster `pg_ctlcluster` manages, on 127.0.0.1:5432), so it lives in a
//! test binary of its own: cargo runs test binaries one after another, so no
//! other test is using the database meanwhile. A guard starts PostgreSQL again
//! whatever happens. Without `DATABASE_URL` it skips; with `CI=true` it fails.

#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code; a skip says why"
)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::services::{TestDatabase, in_ci};
use support::{Mailbox, Server, assert_no_secrets, token_of};

/// The `pg_ctlcluster` cluster (version, name) serving port 5432.
fn local_cluster() -> Option<(String, String)> {
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.get(2) == Some(&"5432")).then(|| (f[0].to_owned(), f[1].to_owned()))
        })
}

fn pg_ctl(cluster: &(String, String), action: &str) -> bool {
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.args(["--skip-systemctl-redirect", &cluster.0, &cluster.1, action]);
    if action == "stop" {
        cmd.args(["-m", "fast"]);
    }
    cmd.status().is_ok_and(|s| s.success())
}

fn pg_ready() -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts PostgreSQL again when dropped, even when the test fails midway.
struct Restart((String, String));

impl Drop for Restart {
    fn drop(&mut self) {
        if !pg_ready() {
            pg_ctl(&self.0, "start");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pg_ready() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn requests_answer_503_while_postgres_is_down_and_recover_after() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let Some(cluster) = local_cluster() else {
        assert!(
            !in_ci(),
            "CI=true but no local PostgreSQL cluster on port 5432 to restart"
        );
        eprintln!("SKIPPED: no pg_ctlcluster cluster on port 5432 to stop and start");
        return;
    };
    let public_url = "http://auth-e2e.localhost:8999";
    let server = Server::start_with(
        &["--migrate"],
        &[("PUBLIC_URL", public_url), ("DATABASE_URL", &database.url)],
    );
    let (email, password) = ("restart@example.com", "survives a restart");
    let mut c = server.client();
    let r = c.post(
        "/api/v1/auth/register",
        &json!({"email": email, "password": password}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let token = token_of(&Mailbox::Console(&server).link(email, "/verify-email", &mut Vec::new()));
    assert_eq!(
        c.post("/api/v1/auth/verify-email", &json!({"token": token}))
            .status,
        200
    );
    let r = c.post(
        "/api/v1/auth/login",
        &json!({"email": email, "password": password}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = c.cookie.clone().expect("session cookie");

    let guard = Restart(cluster);
    assert!(pg_ctl(&guard.0, "stop"), "could not stop PostgreSQL");
    assert!(!pg_ready());
    for (method, path, body) in [
        ("GET", "/api/v1/users/me", None),
        ("GET", "/readyz", None),
        (
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": email, "password": password})),
        ),
    ] {
        let started = Instant::now();
        let r = c.request(method, path, body.as_ref());
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{method} {path}: {}", r.body);
        assert_eq!(r.code(), "unavailable", "{}", r.body);
        assert!(r.header("retry-after").is_some(), "{method} {path}");
        // The pool's acquire timeout (5 s) bounds the wait; generous for a busy CI.
        assert!(
            took < Duration::from_secs(15),
            "{method} {path} took {took:?}"
        );
    }
    assert!(
        c.cookie.as_deref() == Some(cookie.as_str()),
        "the cookie survives"
    );

    drop(guard);
    assert!(pg_ready(), "PostgreSQL did not come back");
    // The same process recovers once the pool reconnects.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.get("/api/v1/users/me");
        if r.status == 200 {
            assert_eq!(r.json()["email"], email);
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            Instant::now() < deadline,
            "no recovery after PostgreSQL came back"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(c.get("/readyz").status, 200);
    let secrets = [
        password.to_owned(),
        token,
        cookie.split_once('=').unwrap().1.to_owned(),
    ];
    assert_no_secrets(&server.logs(), &secrets);
    let logs = server.logs();
    assert!(
        logs.contains("\"status\":503"),
        "the request log has statuses"
    );
    assert!(
        !logs.contains("\"status\":500"),
        "no 500 while the database was down"
    );
    assert!(server.stop().success());
}
