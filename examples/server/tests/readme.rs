//! Every curl example in README.md runs as printed against the real server and
//! answers the status its comment promises. Only the address is substituted,
//! `VERIFY_TOKEN` / `RESET_TOKEN` by the tokens of the links the server
//! printed, and `TOTP_CODE`, `CHALLENGE` and `RECOVERY_CODE` by what a reader
//! takes from earlier answers (the code computed from the secret, as an
//! authenticator app would).

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
    let mut taken = Taken::default();
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
        command = taken.substitute(&command);
        let out = Command::new("bash")
            .arg("-c")
            .arg(&command)
            .current_dir(&dir)
            .output()
            .expect("run curl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        taken.take_from(&stdout);
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

/// What a reader copies from earlier answers into later examples.
#[derive(Default)]
struct Taken {
    secret: Option<String>,
    challenge: Option<String>,
    recovery_code: Option<String>,
}

impl Taken {
    fn take_from(&mut self, response: &str) {
        let Some(body) = response.split("\r\n\r\n").nth(1) else {
            return;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
            return;
        };
        let text = |at: &str| json.pointer(at).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(secret) = text("/secret") {
            self.secret = Some(secret);
        }
        if let Some(challenge) = text("/second_factor_required/challenge") {
            self.challenge = Some(challenge);
        }
        if let Some(code) = text("/recovery_codes/0") {
            self.recovery_code = Some(code);
        }
    }

    fn substitute(&self, command: &str) -> String {
        let mut command = command.to_owned();
        if command.contains("TOTP_CODE") {
            let secret = self
                .secret
                .as_deref()
                .expect("an earlier example showed the secret");
            command = command.replace("TOTP_CODE", &support::totp_now(secret));
        }
        for (placeholder, value) in [
            ("CHALLENGE", &self.challenge),
            ("RECOVERY_CODE", &self.recovery_code),
        ] {
            if command.contains(placeholder) {
                let value = value.as_deref().expect("an earlier example answered it");
                command = command.replace(placeholder, value);
            }
        }
        command
    }
}
