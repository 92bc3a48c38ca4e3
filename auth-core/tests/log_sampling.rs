//! Sampling of repeated log lines (S9), read back from a captured JSON log.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::log_sampling::{LogSampler, LogSampling, OTHER_REASONS};
use serde_json::Value;
use tracing::Level;

/// Every line written while its guard lives, as JSON.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(Level::TRACE)
            .with_writer(move || sink.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// Sends `n` lines of `reason`, writing those the sampler lets through as
/// the caller would (with their id); answers the ids.
fn flood(sampler: &LogSampler, reason: &str, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<_> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for id in &ids {
        if sampler.sample(Level::WARN, reason, Some(id)) {
            tracing::warn!(request_id = %id, reason, "request refused: unavailable");
        }
    }
    ids
}

fn summaries(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == "repeated log lines suppressed")
        .collect()
}

/// Every id in a full line or a summary, each exactly once.
fn logged_ids(lines: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for line in lines {
        let fields = &line["fields"];
        if let Some(id) = fields["request_id"].as_str() {
            ids.push(id.to_owned());
        }
        if let Some(list) = fields["request_ids"].as_str() {
            ids.extend(list.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        }
    }
    ids.sort();
    ids
}

/// S9: of 250 identical lines in one second, one is written in full; the
/// others are counted in summaries of at most 100 ids, the last when the
/// second ends. Another reason is sampled apart. Every request id is in the
/// log exactly once, and the next second starts with a full line again.
#[tokio::test(start_paused = true)]
async fn s9_first_line_per_reason_per_second_in_full_the_rest_summarised_with_their_ids() {
    let (logs, _guard) = Captured::start();
    let sampler = LogSampler::new(LogSampling::default());
    let mut sent = flood(&sampler, "503 store unavailable", "a", 250);
    sent.extend(flood(&sampler, "500 internal", "b", 3));
    // Before the second ends: the two full lines and the two full summaries.
    let lines = logs.lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lines = logs.lines();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    let summaries = summaries(&lines);
    let mut counts: Vec<_> = summaries
        .iter()
        .map(|s| {
            (
                s["fields"]["reason"].as_str().unwrap(),
                s["fields"]["suppressed"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        [
            ("500 internal", 2),
            ("503 store unavailable", 49),
            ("503 store unavailable", 100),
            ("503 store unavailable", 100),
        ]
    );
    assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), 249 + 2);
    for summary in &summaries {
        assert_eq!(summary["level"], "WARN");
        assert!(
            summary.get("span").is_none(),
            "summaries carry no request span: {summary}"
        );
    }
    sent.sort();
    assert_eq!(logged_ids(&lines), sent, "every id once");

    // The next second: in full again.
    flood(&sampler, "503 store unavailable", "c", 2);
    let lines = logs.lines();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[6]["fields"]["request_id"], "c0");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(logged_ids(&logs.lines()).len(), 253 + 2);
}

/// S9: reasons beyond `max_reasons` share one entry, so a flood of ever
/// different reasons is still sampled; the first of them is written in full.
#[tokio::test(start_paused = true)]
async fn s9_reasons_beyond_the_cap_share_one_entry() {
    let (logs, _guard) = Captured::start();
    let mut config = LogSampling::default();
    config.max_reasons = 2;
    let sampler = LogSampler::new(config);
    let written: Vec<bool> = ["a", "b", "c", "d", "e", "a"]
        .iter()
        .map(|reason| sampler.sample(Level::ERROR, reason, Some(&format!("id-{reason}"))))
        .collect();
    assert_eq!(written, [true, true, true, false, false, false]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lines = logs.lines();
    let reasons: Vec<_> = summaries(&lines)
        .iter()
        .map(|s| {
            (
                s["fields"]["reason"].as_str().unwrap().to_owned(),
                s["fields"]["request_ids"].as_str().unwrap().to_owned(),
                s["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.contains(&(
        OTHER_REASONS.to_owned(),
        "id-d,id-e".to_owned(),
        "ERROR".to_owned()
    )));
    assert!(reasons.contains(&("a".to_owned(), "id-a".to_owned(), "ERROR".to_owned())));
}

/// Without a tokio runtime the summary of an ended window goes out with
/// the next line sampled.
#[test]
fn without_a_runtime_the_next_line_writes_the_summary() {
    let (logs, _guard) = Captured::start();
    let mut config = LogSampling::default();
    config.window = Duration::from_millis(20);
    let sampler = LogSampler::new(config);
    assert!(sampler.sample(Level::WARN, "x", Some("1")));
    assert!(!sampler.sample(Level::WARN, "x", Some("2")));
    assert!(summaries(&logs.lines()).is_empty());
    std::thread::sleep(Duration::from_millis(30));
    assert!(sampler.sample(Level::WARN, "x", Some("3")));
    let lines = logs.lines();
    let summaries = summaries(&lines);
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["fields"]["request_ids"], "2");
    assert_eq!(summaries[0]["fields"]["suppressed"], 1);
}

#[test]
fn zero_settings_are_refused() {
    assert!(LogSampling::default().validate().is_ok());
    let changes: [fn(&mut LogSampling); 4] = [
        |c| c.full_lines_per_window = 0,
        |c| c.window = Duration::ZERO,
        |c| c.ids_per_summary = 0,
        |c| c.max_reasons = 0,
    ];
    for change in changes {
        let mut bad = LogSampling::default();
        change(&mut bad);
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

/// Reasons are told apart by their first 256 bytes (cut at a character
/// boundary), so a cause quoting a long input cannot grow the sampler.
#[tokio::test(start_paused = true)]
async fn long_reasons_are_cut() {
    let (logs, _guard) = Captured::start();
    let sampler = LogSampler::new(LogSampling::default());
    let long = "é".repeat(200); // 400 bytes
    assert!(sampler.sample(Level::WARN, &format!("{long}a"), Some("1")));
    assert!(!sampler.sample(Level::WARN, &format!("{long}b"), Some("2")));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lines = logs.lines();
    let summaries = summaries(&lines);
    assert_eq!(summaries.len(), 1);
    let reason = summaries[0]["fields"]["reason"].as_str().unwrap();
    assert_eq!(reason, "é".repeat(128));
}
