//! Sampling of repeated log lines (S9): under a flood, the same error line
//! written once per request would make logging the bottleneck and drown
//! everything else. A [`LogSampler`] lets the first lines of each reason in
//! each second through in full and counts the rest; their request ids go out
//! in summary lines, so every request that failed can still be found in the
//! log.
//!
//! ```
//! use auth_core::log_sampling::{LogSampler, LogSampling};
//! use tracing::Level;
//!
//! let sampler = LogSampler::new(LogSampling::default());
//! # let cause = "store unavailable";
//! # let request_id = "4b1d";
//! if sampler.sample(Level::WARN, cause, Some(request_id)) {
//!     tracing::warn!(cause, "request refused: unavailable");
//! } // else counted: a summary line lists its request id
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Level;

use crate::ConfigError;

/// How repeated lines are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogSampling {
    /// Lines of one reason written in full per window (default 1); the rest
    /// of that window are counted. At least 1.
    pub full_lines_per_window: u32,
    /// The window (default 1 s, as S9 says), from a reason's first line.
    /// Positive.
    pub window: Duration,
    /// Request ids per summary line (default 100): a summary goes out each
    /// time this many lines were suppressed, and at the end of the window for
    /// the rest, so a summary line stays a few KiB. At least 1.
    pub ids_per_summary: usize,
    /// Distinct reasons tracked at once (default 256); lines of further
    /// reasons share one entry, [`OTHER_REASONS`]. At least 1. Reasons are
    /// told apart by their first 256 bytes.
    pub max_reasons: usize,
}

/// The reason lines are sampled under once [`LogSampling::max_reasons`]
/// reasons are tracked.
pub const OTHER_REASONS: &str = "(other reasons)";

impl Default for LogSampling {
    fn default() -> Self {
        Self {
            full_lines_per_window: 1,
            window: Duration::from_secs(1),
            ids_per_summary: 100,
            max_reasons: 256,
        }
    }
}

impl LogSampling {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when a setting is 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ok = self.full_lines_per_window >= 1
            && !self.window.is_zero()
            && self.ids_per_summary >= 1
            && self.max_reasons >= 1;
        ok.then_some(()).ok_or(ConfigError::Invalid(
            "log sampling: every setting must be at least 1 (the window positive)",
        ))
    }
}

/// Decides which lines of each reason are written and writes the summaries
/// of the others. Cheap to clone (the clones share their counts).
///
/// Each reason has a window (one second by default) from its first line: the
/// first [`LogSampling::full_lines_per_window`] lines are let through (the caller
/// writes them), the others are counted and their ids kept. A summary line,
/// at the level of the suppressed lines, says how many were suppressed and
/// lists their request ids: whenever [`LogSampling::ids_per_summary`] have
/// gathered, and when the window ends (from a task on the tokio runtime, or
/// at the next call without one). Summaries are root events: they carry no
/// request's span, since they stand for many requests.
#[derive(Debug, Clone)]
pub struct LogSampler {
    config: LogSampling,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    reasons: HashMap<String, Entry>,
    /// Whether a task is waiting to write the summaries of ended windows.
    flush_scheduled: bool,
}

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    level: Level,
    logged: u32,
    suppressed: u64,
    ids: Vec<String>,
}

/// A summary line to write.
#[derive(Debug)]
struct Summary {
    level: Level,
    reason: String,
    suppressed: u64,
    ids: Vec<String>,
}

impl Entry {
    fn new(now: Instant, level: Level) -> Self {
        Self {
            window_start: now,
            level,
            logged: 0,
            suppressed: 0,
            ids: Vec::new(),
        }
    }

    fn ended(&self, now: Instant, window: Duration) -> bool {
        now >= self.window_start + window
    }

    /// The summary of what was suppressed since the last one, if anything.
    fn take_summary(&mut self, reason: &str) -> Option<Summary> {
        (self.suppressed > 0).then(|| Summary {
            level: self.level,
            reason: reason.to_owned(),
            suppressed: std::mem::take(&mut self.suppressed),
            ids: std::mem::take(&mut self.ids),
        })
    }
}

impl LogSampler {
    /// A sampler with `config` (check it with [`LogSampling::validate`]; a
    /// setting of 0 counts as 1, a zero window as 1 ms).
    #[must_use]
    pub fn new(config: LogSampling) -> Self {
        Self {
            config: LogSampling {
                full_lines_per_window: config.full_lines_per_window.max(1),
                window: config.window.max(Duration::from_millis(1)),
                ids_per_summary: config.ids_per_summary.max(1),
                max_reasons: config.max_reasons.max(1),
            },
            state: Arc::default(),
        }
    }

    /// Records one line of `reason` at `level`, for the request `id` if any:
    /// `true` when the caller should write it in full; `false` when it was
    /// counted, to be summarised with its id.
    pub fn sample(&self, level: Level, reason: &str, id: Option<&str>) -> bool {
        let reason = truncate(reason, MAX_REASON_BYTES);
        let id = id.map(|id| truncate(id, MAX_ID_BYTES));
        let now = Instant::now();
        let mut summaries = Vec::new();
        let (write, schedule) = {
            let mut state = self.lock();
            // Ended windows are summarised and forgotten here too, so the
            // summaries go out even without a runtime to run the flusher.
            if !state.flush_scheduled {
                summaries.extend(sweep(&mut state, now, self.config.window));
            }
            let key = if state.reasons.contains_key(reason)
                || state.reasons.len() < self.config.max_reasons
            {
                reason
            } else {
                OTHER_REASONS
            };
            let entry = state
                .reasons
                .entry(key.to_owned())
                .or_insert_with(|| Entry::new(now, level));
            if entry.ended(now, self.config.window) {
                summaries.extend(entry.take_summary(key));
                *entry = Entry::new(now, level);
            }
            if entry.logged < self.config.full_lines_per_window {
                entry.logged += 1;
                (true, None)
            } else {
                entry.suppressed += 1;
                if let Some(id) = id {
                    entry.ids.push(id.to_owned());
                }
                if entry.ids.len() >= self.config.ids_per_summary {
                    summaries.extend(entry.take_summary(key));
                }
                let end = entry.window_start + self.config.window;
                let schedule = (!state.flush_scheduled).then_some(end);
                state.flush_scheduled = true;
                (false, schedule)
            }
        };
        summaries.into_iter().for_each(emit);
        if let Some(end) = schedule {
            self.schedule_flush(end);
        }
        write
    }

    /// Writes the summaries of the windows that ended by now and forgets
    /// them; answers when the next window with suppressed lines ends, if any.
    fn flush(&self) -> Option<Instant> {
        let now = Instant::now();
        let (summaries, next) = {
            let mut state = self.lock();
            let summaries = sweep(&mut state, now, self.config.window);
            let next = state
                .reasons
                .values()
                .filter(|e| e.suppressed > 0)
                .map(|e| e.window_start + self.config.window)
                .min();
            state.flush_scheduled = next.is_some();
            (summaries, next)
        };
        summaries.into_iter().for_each(emit);
        next
    }

    /// On a tokio runtime, a task writes the summaries as their windows end
    /// (the first at `end`); without one, the next call to [`Self::sample`]
    /// does.
    fn schedule_flush(&self, end: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.lock().flush_scheduled = false;
            return;
        };
        let sampler = self.clone();
        runtime.spawn(async move {
            let mut next = Some(end);
            while let Some(end) = next {
                tokio::time::sleep_until(end).await;
                next = sampler.flush();
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The longest reason kept, in bytes: a longer one (a cause that quotes a
/// long input) is cut, so memory stays bounded whatever an error says.
const MAX_REASON_BYTES: usize = 256;

/// The longest request id kept, in bytes (ours are 32; a trusted proxy's at
/// most 64).
const MAX_ID_BYTES: usize = 64;

/// `s` cut to at most `max` bytes, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Takes the summaries of the entries whose windows ended and forgets those
/// entries (a reason seen again starts a new window), bounding the map.
fn sweep(state: &mut State, now: Instant, window: Duration) -> Vec<Summary> {
    let mut summaries = Vec::new();
    state.reasons.retain(|reason, entry| {
        if !entry.ended(now, window) {
            return true;
        }
        summaries.extend(entry.take_summary(reason));
        false
    });
    summaries
}

/// Writes a summary line at its level, outside any request's span.
fn emit(summary: Summary) {
    let Summary {
        level,
        reason,
        suppressed,
        ids,
    } = summary;
    let request_ids = ids.join(",");
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                parent: None,
                $level,
                reason = %reason,
                suppressed,
                request_ids = %request_ids,
                "repeated log lines suppressed"
            )
        };
    }
    match level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
}
