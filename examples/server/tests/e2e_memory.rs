//! End to end on the no-environment default: the real binary, the in-process
//! store, the console mailer (links read from the server's standard output).

mod support;

use support::{Mailbox, Server, assert_no_secrets, full_journey};

#[test]
fn the_whole_journey_on_the_default_server() {
    let public_url = "http://auth-e2e.localhost:8999";
    let server = Server::start(&[("PUBLIC_URL", public_url)]);
    let secrets = full_journey(
        &server,
        &Mailbox::Console(&server),
        public_url,
        "journey@example.com",
    );
    // Logs go to standard error; the console mailer's messages to standard output.
    assert_no_secrets(&server.logs(), &secrets);
    assert!(server.stop().success(), "graceful shutdown");
}

#[test]
fn help_lists_every_environment_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_example-server"))
        .arg("--help")
        .output();
    let out = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for var in [
        "BIND_ADDR",
        "PUBLIC_URL",
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "EMAIL_SENDER",
        "COOKIE_SECURE",
        "TRUSTED_PROXIES",
        "LOG_FORMAT",
        "ARGON2_M_COST",
        "HASH_CONCURRENCY",
        "HEADER_READ_TIMEOUT_SECS",
        "BODY_READ_TIMEOUT_SECS",
        "MAX_HEADER_BYTES",
        "MAX_CONNECTIONS",
        "SHUTDOWN_GRACE_SECS",
    ] {
        assert!(out.contains(var), "{var} missing from --help");
    }
}

#[test]
fn a_short_secret_key_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_example-server"))
        .env_clear()
        .env("SECRET_KEY", "too short")
        .env("BIND_ADDR", "127.0.0.1:0")
        .output();
    let out = out.expect("run the server");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
}
