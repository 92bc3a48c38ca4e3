//! The mailer against real SMTP servers: a MailDev sink (`SMTP_SINK_URL`,
//! `SMTP_SINK_API_URL`, which `.ci/run` starts), read back through its HTTP
//! API; without those variables the test skips with the reason printed, and
//! with `CI=true` it fails instead. MailDev accepts every recipient, so the
//! refusals come from a scripted SMTP peer on a local port (fault
//! injection): the answers go through lettre's real client and our mapping.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code: a failure is a failed test; a skip says why"
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auth_core::mail::{EmailContent, EmailMessage, Locale, Mailer, MessageKind};
use auth_mailer_smtp::SmtpMailer;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// Whether this is a CI run, where a missing sink fails the test.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The variable `name`, or `None` after printing why the test skips (a
/// failure in CI).
fn required_env(name: &str, example: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            assert!(
                !in_ci(),
                "CI=true but {name} is not set: this test must run in CI (e.g. {name}={example})"
            );
            eprintln!("SKIPPED: {name} is not set (e.g. {name}={example})");
            None
        }
    }
}

/// An address no other test or run uses, so a shared sink tells them apart.
fn unique_address() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("smtp-{nanos}-{}@example.com", std::process::id())
}

fn message(to: &str) -> EmailMessage {
    let link = "https://auth.example.com/reset-password?token=t0ken&x=1";
    let content = EmailContent::from_paragraphs(
        "Acme <Cloud>",
        "reset your password",
        &["Open this link within 30 minutes to choose a new password."],
        Some(link),
    );
    EmailMessage::new(MessageKind::PasswordReset, to, Locale::ENGLISH, content)
        .with_link(Some(link.to_owned()))
}

/// The body of `GET path` on MailDev's HTTP API (plain or chunked).
fn get(api: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_owned();
    }
    let mut decoded = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return decoded;
        }
        decoded.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// A message to a fresh address reaches the sink with its subject, both
/// alternatives (text and HTML, escaped as the template wrote it) and that
/// recipient alone.
#[tokio::test]
async fn a_message_arrives_with_subject_text_and_html_for_its_recipient() {
    let Some(url) = required_env("SMTP_SINK_URL", "smtp://127.0.0.1:1025") else {
        return;
    };
    let Some(api) = required_env("SMTP_SINK_API_URL", "http://127.0.0.1:1080") else {
        return;
    };
    let api: SocketAddr = api
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("SMTP_SINK_API_URL must be http://IP:PORT: {e}"));
    let mailer = SmtpMailer::new(&url, "Acme <no-reply@example.com>").unwrap();
    let to = unique_address();
    let sent = message(&to);
    mailer.send(&sent).await.unwrap();
    // Through the pool's reused connection too.
    let second = unique_address();
    mailer.send(&message(&second)).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        let all: serde_json::Value = serde_json::from_str(&get(api, "/api/email")).unwrap();
        let found = all.as_array().unwrap().iter().find(|m| {
            m["to"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["address"] == to.as_str()))
        });
        if let Some(mail) = found {
            break mail.clone();
        }
        assert!(Instant::now() < deadline, "no mail to {to} in the sink");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mail["subject"], "Acme <Cloud>: reset your password");
    let recipients = mail["to"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{recipients:?}");
    assert_eq!(mail["from"][0]["address"], "no-reply@example.com");
    assert_eq!(mail["text"].as_str().unwrap().trim_end(), sent.text);
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains("Acme &lt;Cloud&gt;"), "{html}");
    assert!(html.contains("token=t0ken&amp;x=1"), "{html}");
    // Both bodies as alternatives of one message, not two attachments.
    let id = mail["id"].as_str().unwrap();
    let source = get(api, &format!("/api/email/{id}/source"));
    assert!(
        source.contains("Content-Type: multipart/alternative;"),
        "{source}"
    );
    assert!(source.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(source.contains("Content-Type: text/html; charset=utf-8"));
}

/// A scripted SMTP server on a local port that answers `rcpt` to `RCPT TO`
/// and accepts the rest of a session.
async fn scripted_server(rcpt: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 scripted ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer = match verb.as_str() {
                        "EHLO" | "HELO" => "250 scripted\r\n".to_owned(),
                        "RCPT" => format!("{rcpt}\r\n"),
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => "250 OK\r\n".to_owned(),
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A recipient the server refuses with 550 is a permanent failure, which
/// the outbox never retries; a 451 is transient, retried.
#[tokio::test]
async fn a_refused_recipient_is_permanent_and_a_4xx_is_transient() {
    for (answer, permanent) in [
        ("550 5.1.1 no such user", true),
        ("451 4.3.0 try again later", false),
    ] {
        let addr = scripted_server(answer).await;
        let mailer = SmtpMailer::new(&format!("smtp://{addr}"), "no-reply@example.com").unwrap();
        let err = mailer
            .send(&message("nobody@example.com"))
            .await
            .unwrap_err();
        assert_eq!(err.is_permanent(), permanent, "{answer}: {err}");
        let shown = err.to_string();
        assert!(shown.contains(&answer[..3]), "{shown}");
        assert!(
            !shown.contains("t0ken"),
            "the error carries no token (S10): {shown}"
        );
    }
}

/// No server listening is transient (it may come back); an address that
/// cannot be a mailbox is permanent, before any connection.
#[tokio::test]
async fn a_server_that_is_down_is_transient_and_a_bad_address_permanent() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mailer = SmtpMailer::new(&format!("smtp://{addr}"), "no-reply@example.com").unwrap();
    let err = mailer
        .send(&message("someone@example.com"))
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    let err = mailer.send(&message("not an address")).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
}
