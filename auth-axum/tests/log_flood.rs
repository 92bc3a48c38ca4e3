//! Logs under a flood (S9, issue 15 item 9): the 5xx lines of one reason are
//! sampled, and every failed request's id is still in the log.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use support::{Api, Captured};

/// A flood of 300 logins while the user store is down: 300 answers of 503,
/// but one line in full and three summaries (of 100, 100 and 99 request
/// ids) instead of 300 lines; each request id is in the log once.
#[tokio::test(start_paused = true)]
async fn s9_a_flood_of_503s_is_sampled_and_every_request_id_is_logged() {
    let (logs, _guard) = Captured::start(true);

    let api = Api::new();
    api.users.mode.store(1, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..300 {
        let reply = api
            .post(
                "/auth/login",
                json!({"email": format!("u{i}@example.com"), "password": "whatever it is"}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text
        );
        ids.push(reply.headers["x-request-id"].to_str().unwrap().to_owned());
    }
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "the paused clock moved during the flood: the counts below assume one window"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let lines = logs.lines();
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request refused: unavailable")
        .collect();
    let summaries: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "repeated log lines suppressed")
        .collect();
    assert_eq!(refused.len(), 1, "one line in full");
    let mut counts: Vec<_> = summaries
        .iter()
        .map(|s| s["fields"]["suppressed"].as_u64().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [99, 100, 100]);
    for summary in &summaries {
        assert_eq!(summary["level"], "WARN");
        let reason = summary["fields"]["reason"].as_str().unwrap();
        assert!(reason.starts_with("503 "), "{reason}");
    }
    let mut logged: Vec<String> = refused
        .iter()
        .map(|l| l["span"]["request_id"].as_str().unwrap().to_owned())
        .chain(summaries.iter().flat_map(|s| {
            s["fields"]["request_ids"]
                .as_str()
                .unwrap()
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }))
        .collect();
    logged.sort();
    ids.sort();
    assert_eq!(logged, ids, "every request id once");
}
