//! Every curl example in README.md runs as printed against the real server and
//! answers the status its comment promises. Only the address is substituted,
//! and `VERIFY_TOKEN` / `RESET_TOKEN` by the tokens of the links the server
//! printed, as a reader would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::process::Command;

use support::{Mailbox, Server, token_of};

/// (expected status, command) for each example, in order.
fn examples() -> Vec<(Option<u16>, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("<!-- curl-examples:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- curl-examples:end -->").next())
        .expect("README.md has the curl-examples markers");
    let mut expected = None;
    let mut out = Vec::new();
    for line in block.lines().map(str::trim) {
        if let Some(comment) = line.strip_prefix('#') {
            expected = comment
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 3)
                .and_then(|w| w.parse().ok());
        } else if line.starts_with("curl ") {
            out.push((expected, line.to_owned()));
        }
    }
    out
}

#[test]
fn every_curl_example_in_the_readme_works_as_printed() {
    let server = Server::start(&[]);
    let mail = Mailbox::Console(&server);
    let dir = std::env::temp_dir().join(format!("auth-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = format!("http://{}", server.addr);
    let mut seen = Vec::new();
    let examples = examples();
    assert!(
        examples.len() >= 14,
        "found only {} examples",
        examples.len()
    );
    for (expected, command) in examples {
        let mut command = command.replace("http://localhost:8080", &base);
        if command.contains("VERIFY_TOKEN") {
            let token = token_of(&mail.link("alice@example.com", "/verify-email", &mut seen));
            command = command.replace("VERIFY_TOKEN", &token);
        }
        if command.contains("RESET_TOKEN") {
            let token = token_of(&mail.link("alice@example.com", "/reset-password", &mut seen));
            command = command.replace("RESET_TOKEN", &token);
        }
        let out = Command::new("bash")
            .arg("-c")
            .arg(&command)
            .current_dir(&dir)
            .output()
            .expect("run curl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if command.contains(" -i ") {
            let status: u16 = stdout
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            assert_eq!(Some(status), expected, "{command}\n{stdout}");
        } else {
            assert!(stdout.contains("\"openapi\""), "{command}\n{stdout}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
