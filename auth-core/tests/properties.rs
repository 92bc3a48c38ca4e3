//! Property tests of auth-core's public parsers of untrusted input and of the
//! backoff maths: no input panics, and the stated invariants hold for any input.
//! (The token decoder and the stored-hash parsers are crate-private: their
//! properties are in `src/properties.rs` and `src/password/properties.rs`.)

use auth_core::password::{PasswordPolicy, PolicyViolation};
use auth_core::store::AttemptState;
use auth_core::{BackoffPolicy, EmailAddress, InvalidEmail, MAX_EMAIL_BYTES, MAX_LOCAL_BYTES};
use auth_core::{Password, password::ContextWords};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};
use unicode_normalization::UnicodeNormalization;

/// 256 cases per property; `PROPTEST_CASES` sets another number for a deeper
/// run by hand.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(256))
}

/// Text a client could type as an address: anything at all, address-shaped
/// text over a mixed alphabet (ASCII, accents, fullwidth forms, ligatures,
/// combining marks, controls, whitespace, the characters an address forbids),
/// and over-long text.
fn address_text() -> impl Strategy<Value = String> {
    let alphabet = prop::sample::select(vec![
        'a', 'Z', '0', '.', '-', '+', '_', '@', ' ', '\t', '\n', '\0', '\u{7f}', '\u{85}', '<',
        '"', '\\', ',', ';', ':', '(', '[', 'é', 'ß', 'ı', 'İ', 'Å', 'K', '\u{212a}', '\u{ff56}',
        '\u{fb01}', '\u{2075}', '\u{301}', '\u{200b}', '\u{202e}', '\u{feff}', '\u{fdfa}', 'ǅ',
        'ﬀ', 'Ω', 'Ω', '\u{3000}', '😀',
    ]);
    let part = prop::collection::vec(alphabet, 0..40).prop_map(String::from_iter);
    // Letters that case-fold or NFKC-normalise in surprising ways, no forbidden
    // characters, so that many of these parse.
    let letters = prop::sample::select(vec![
        'a', 'Z', 'é', 'ß', 'ẞ', 'ı', 'İ', 'K', '\u{212a}', 'ﬀ', 'Ω', 'Ω', 'ǅ', 'Σ', 'ς', 'ﬁ',
        '\u{301}', '\u{ff41}', '①', 'ⅷ', '㎏', 'Å', 'Å',
    ]);
    let word = prop::collection::vec(letters, 1..12).prop_map(String::from_iter);
    prop_oneof![
        any::<String>(),
        (word.clone(), word.clone(), word).prop_map(|(l, d, t)| format!("{l}@{d}.{t}")),
        (part.clone(), part.clone(), part).prop_map(|(l, d, t)| format!("{l}@{d}.{t}")),
        ("[a-z]{1,64}", "[a-z]{1,63}", 180usize..300)
            .prop_map(|(l, d, n)| format!("{l}@{d}.{}", "c".repeat(n))),
    ]
}

/// Addresses that must be accepted: plain ASCII within every cap.
fn plain_address() -> impl Strategy<Value = String> {
    let atom = "[a-zA-Z0-9+_-]{1,20}";
    let local = prop::collection::vec(atom, 1..4).prop_map(|v| v.join("."));
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?";
    let domain = prop::collection::vec(label, 2..5).prop_map(|v| v.join("."));
    (local, domain, "[ \t]{0,2}", "[ \t]{0,2}")
        .prop_map(|(l, d, before, after)| format!("{before}{l}@{d}{after}"))
        .prop_filter("within the caps", |s| {
            s.trim().len() <= MAX_EMAIL_BYTES
                && s.trim()
                    .split('@')
                    .next()
                    .is_some_and(|l| l.len() <= MAX_LOCAL_BYTES)
        })
}

fn normalize(s: &str) -> String {
    s.nfkc().collect::<String>().to_lowercase()
}

proptest! {
    #![proptest_config(config())]

    /// S11: whatever is typed, parsing answers; what it accepts is trimmed,
    /// within the byte caps, NFKC-stable, has exactly one `@`, no control
    /// character, no whitespace and none of the characters an address forbids;
    /// the key it derives is NFKC plus lowercase of it and stays put when
    /// normalised again.
    #[test]
    fn s11_email_parse_never_panics_and_accepts_only_sane_addresses(text in address_text()) {
        let parsed = EmailAddress::parse(&text);
        if text.trim().len() > MAX_EMAIL_BYTES {
            prop_assert_eq!(parsed, Err(InvalidEmail::TooLong));
            return Ok(());
        }
        let Ok(email) = parsed else { return Ok(()) };
        let address = email.as_str();
        prop_assert_eq!(address, text.trim());
        prop_assert!(address.len() <= MAX_EMAIL_BYTES);
        prop_assert_eq!(address.matches('@').count(), 1);
        let (local, domain) = address.split_once('@').unwrap();
        prop_assert!(!local.is_empty() && local.len() <= MAX_LOCAL_BYTES);
        prop_assert!(domain.contains('.'));
        prop_assert!(!address.chars().any(|c| c.is_control() || c.is_whitespace()
            || "<>()[],;:\\\"".contains(c)));
        // NFKC-stable (S3, S11): an address NFKC would change is refused, so the
        // account key never merges a variant with the address it imitates.
        prop_assert!(address.nfkc().eq(address.chars()), "{address:?}");
        prop_assert_eq!(email.normalized(), normalize(address));
        prop_assert_eq!(normalize(email.normalized()), email.normalized());
        // Parsing is idempotent: the stored address parses to itself.
        prop_assert_eq!(EmailAddress::parse(address), Ok(email.clone()));
        // It prints as given (mail goes there), in Debug too.
        prop_assert_eq!(email.to_string(), address);
        prop_assert_eq!(format!("{email:?}"), format!("EmailAddress({address:?})"));
    }

    /// S6: addresses within the caps are accepted, and case never makes two
    /// accounts of one ASCII address.
    #[test]
    fn s6_plain_addresses_are_accepted_and_case_blind(text in plain_address()) {
        let email = EmailAddress::parse(&text).unwrap();
        let upper = EmailAddress::parse(&text.to_ascii_uppercase()).unwrap();
        let lower = EmailAddress::parse(&text.to_ascii_lowercase()).unwrap();
        prop_assert_eq!(email.normalized(), upper.normalized());
        prop_assert_eq!(email.normalized(), lower.normalized());
        prop_assert_eq!(email.normalized(), text.trim().to_ascii_lowercase());
    }
}

/// Policies `AuthConfig` accepts (threshold >= 1, 0 < base <= cap <= window),
/// over the whole range of `Duration` the engine could be configured with.
fn backoff_policy() -> impl Strategy<Value = BackoffPolicy> {
    let nanos = 1i64..=i64::MAX / 4;
    (1u32..=1_000, nanos.clone(), nanos, 0i64..=1_000).prop_map(|(threshold, a, b, extra)| {
        let (base, cap) = (a.min(b), a.max(b));
        BackoffPolicy {
            threshold,
            base: Duration::nanoseconds(base),
            cap: Duration::nanoseconds(cap),
            window: Duration::nanoseconds(cap) + Duration::seconds(extra),
        }
    })
}

/// Counter states as a store could hand them back: any count, the last attempt
/// within a few centuries of now (the engine's clock writes it).
fn state_and_now() -> impl Strategy<Value = (AttemptState, OffsetDateTime)> {
    let secs = -10_000_000_000i64..=10_000_000_000;
    (any::<u32>(), prop::option::of(secs.clone()), secs).prop_map(|(count, last, now)| {
        let at = |s| OffsetDateTime::UNIX_EPOCH + Duration::seconds(s) + Duration::days(20_000);
        (
            AttemptState {
                count,
                last_at: last.map(at),
            },
            at(now),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    /// S6: no wait below the threshold; from there the wait is base x 2^k,
    /// never more than the cap, never less than the base, never shrinking as
    /// the count grows, and no count overflows (u32::MAX included).
    #[test]
    fn s6_backoff_is_monotonic_capped_and_exact(
        policy in backoff_policy(),
        count in prop_oneof![any::<u32>(), 0u32..1_100, Just(u32::MAX)],
    ) {
        let delay = policy.delay(count);
        if count < policy.threshold {
            prop_assert_eq!(delay, None);
            return Ok(());
        }
        let delay = delay.unwrap();
        prop_assert!(policy.base <= delay && delay <= policy.cap);
        if let Some(next) = policy.delay(count.saturating_add(1)) {
            prop_assert!(delay <= next);
        }
        // base x 2^k, computed without overflow, then capped.
        let k = count - policy.threshold;
        let exact = (0..k.min(80)).try_fold(policy.base.whole_nanoseconds(), |d, _| {
            (d < policy.cap.whole_nanoseconds()).then_some(d * 2)
        });
        let expected = exact.map_or(policy.cap, |d| {
            Duration::nanoseconds(i64::try_from(d).unwrap_or(i64::MAX)).min(policy.cap)
        });
        prop_assert_eq!(delay, expected);
    }

    /// S6: a counter is locked exactly while `last_at + delay(count)` is in the
    /// future, and the wait it reports is what is left of it: positive, at most
    /// the delay (plus any clock skew), and shorter as time goes by.
    #[test]
    fn s6_retry_after_is_the_rest_of_the_delay(
        policy in backoff_policy(),
        (state, now) in state_and_now(),
        later in 0i64..=i64::MAX / 4,
    ) {
        let wait = policy.retry_after(&state, now);
        match (state.last_at, policy.delay(state.count)) {
            (Some(last), Some(delay)) if last + delay > now => {
                let wait = wait.unwrap();
                prop_assert!(Duration::ZERO < wait);
                // At most the delay, unless the last attempt was written by a
                // clock ahead of this one (another instance): then the skew too.
                prop_assert!(wait <= delay + (last - now).max(Duration::ZERO));
                prop_assert_eq!(now + wait, last + delay);
                let then = now + Duration::nanoseconds(later);
                match policy.retry_after(&state, then) {
                    Some(w) => prop_assert!(w <= wait),
                    None => prop_assert!(then >= last + delay),
                }
            }
            _ => prop_assert_eq!(wait, None),
        }
    }

    /// S1, S11: any password answers; the byte cap is checked on the raw input;
    /// the caps never refuse at login what they accepted at registration.
    #[test]
    fn s1_password_policy_never_panics_and_caps_bytes(
        raw in prop_oneof![any::<String>(), "\\PC{0,200}", "[a\u{fdfa}\u{301}]{100,1100}"],
        email in "[a-z]{1,10}@[a-z]{1,10}\\.com",
    ) {
        let policy = PasswordPolicy::builder().build().unwrap();
        let password = Password::new(raw.clone());
        let normalized = policy.normalize(&password);
        if raw.len() > policy.max_bytes() {
            let refused = matches!(normalized, Err(PolicyViolation::TooManyBytes { .. }));
            prop_assert!(refused);
        }
        let new = policy.validate_new(&password, &ContextWords::new().email(&email));
        // A password accepted as new is always accepted at login.
        if new.is_ok() {
            prop_assert!(normalized.is_ok());
        }
    }
}

/// A domain of exactly `len` bytes (at least 5): labels of at most 63 bytes,
/// then `.com`.
fn domain_of(len: usize) -> String {
    let mut labels = Vec::new();
    let mut rest = len - ".com".len();
    while rest > 0 {
        let mut take = rest.min(63);
        if rest > take && rest - take < 2 {
            take -= 1; // room for a dot and a label of one byte
        }
        labels.push("d".repeat(take));
        rest -= take;
        rest = rest.saturating_sub(1);
    }
    labels.push("com".to_owned());
    labels.join(".")
}

proptest! {
    #![proptest_config(config())]

    /// S11 at the edges (found by mutation testing): the caps are inclusive:
    /// 254 bytes in all and 64 in the local part are accepted, one more is not.
    #[test]
    fn s11_the_caps_are_inclusive(local in 1usize..=64, total in 240usize..=256) {
        let domain_len = total.saturating_sub(local + 1).max(5);
        let address = format!("{}@{}", "l".repeat(local), domain_of(domain_len));
        prop_assert_eq!(address.len(), total.max(local + 5));
        let parsed = EmailAddress::parse(&address);
        if total <= MAX_EMAIL_BYTES {
            prop_assert!(parsed.is_ok(), "{} bytes: {parsed:?}", address.len());
        } else {
            prop_assert_eq!(parsed, Err(InvalidEmail::TooLong));
        }
        let long_local = format!("{}@{}", "l".repeat(MAX_LOCAL_BYTES + 1), domain_of(20));
        prop_assert_eq!(EmailAddress::parse(&long_local), Err(InvalidEmail::Malformed));
        let full_local = format!("{}@{}", "l".repeat(MAX_LOCAL_BYTES), domain_of(20));
        prop_assert!(EmailAddress::parse(&full_local).is_ok());
    }
}

proptest! {
    #![proptest_config(config())]

    /// S1 at the edges (found by mutation testing): a password of exactly the
    /// byte cap is accepted and one byte more is refused, whatever mix of 1- to
    /// 4-byte characters fills it; `Debug` of what passes is a redaction.
    #[test]
    fn s1_the_byte_cap_is_inclusive(
        wide in prop::collection::vec(prop::sample::select(vec!['a', 'é', '€', '😀']), 1..128),
    ) {
        let base: String = wide.into_iter().collect();
        let policy = PasswordPolicy::builder()
            .max_bytes(base.len().max(128))
            .build()
            .unwrap();
        // Pad with ASCII to exactly the cap, within 128 code points.
        let padded = format!("{base}{}", "x".repeat(policy.max_bytes() - base.len()));
        prop_assume!(padded.chars().count() <= policy.max_chars());
        let accepted = policy.normalize(&Password::new(padded.clone()));
        prop_assert!(accepted.is_ok(), "{} bytes", padded.len());
        prop_assert_eq!(
            format!("{:?}", accepted.unwrap()),
            "NormalizedPassword(<redacted>)"
        );
        let over = policy.normalize(&Password::new(format!("{padded}x")));
        let refused = matches!(over, Err(PolicyViolation::TooManyBytes { .. }));
        prop_assert!(refused);
    }
}

/// The policy's own bounds (found by mutation testing): the builder accepts
/// exactly min >= 8, max >= 64, max >= min, and max <= bytes <= 4096, every
/// edge tried on both sides.
#[test]
fn s1_policy_bounds_are_inclusive() {
    for min in (6..=10).chain(62..=67) {
        for max in 62..=67 {
            for bytes in [max - 1, max, max + 1, 4095, 4096, 4097] {
                let built = PasswordPolicy::builder()
                    .min_chars(min)
                    .max_chars(max)
                    .max_bytes(bytes)
                    .build();
                let valid = min >= 8 && max >= 64 && max >= min && bytes >= max && bytes <= 4096;
                assert_eq!(built.is_ok(), valid, "min {min} max {max} bytes {bytes}");
            }
        }
    }
}
