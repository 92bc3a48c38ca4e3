//! Password policy: length and byte caps, NFKC normalisation, and the rules a new
//! password must pass (S1; ASVS 6.2.1, 6.2.4, 6.2.5, 6.2.9, 6.2.11).
//!
//! Order matters for denial of service: the byte cap is checked on the raw input
//! before any normalisation or hashing work (it bounds what NFKC can cost). Every
//! length rule is then counted in Unicode code points of the NFKC form, the one
//! that is hashed (S1). There are no composition rules.
//! Every path that hashes or verifies a password gets its bytes from
//! [`PasswordPolicy::normalize`] (or [`PasswordPolicy::validate_new`], which calls
//! it), so NFKC is applied identically at registration, login, change and reset.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::{ConfigError, blocklist};
use crate::Password;

/// Default minimum length in code points.
pub const DEFAULT_MIN_CHARS: usize = 8;
/// Default maximum length in code points.
pub const DEFAULT_MAX_CHARS: usize = 128;
/// Largest byte cap a configuration may set.
pub const MAX_BYTES_LIMIT: usize = 4096;

/// A password that passed the input caps and is NFKC-normalised: the only form the
/// hasher accepts.
pub struct NormalizedPassword(Zeroizing<String>);

impl NormalizedPassword {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for NormalizedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NormalizedPassword(<redacted>)")
    }
}

/// Why a password was refused. Each variant names its rule ([`Self::rule`]) and
/// its message is fit to show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// Fewer code points than the minimum.
    #[error("password must be at least {min} characters long")]
    TooShort {
        /// The configured minimum.
        min: usize,
    },
    /// More code points than the maximum.
    #[error("password must be at most {max} characters long")]
    TooLong {
        /// The configured maximum.
        max: usize,
    },
    /// More UTF-8 bytes than the byte cap.
    #[error("password must be at most {max} bytes long")]
    TooManyBytes {
        /// The configured cap.
        max: usize,
    },
    /// On the list of common passwords.
    #[error("this password is too common; choose one that is harder to guess")]
    Common,
    /// Equal to the email, its local part or the service name, give or take digits
    /// and symbols around it.
    #[error("password must not be {0}")]
    ContextWord(ContextKind),
}

impl PolicyViolation {
    /// A stable machine-readable name of the rule.
    #[must_use]
    pub const fn rule(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::TooLong { .. } => "too_long",
            Self::TooManyBytes { .. } => "too_many_bytes",
            Self::Common => "common_password",
            Self::ContextWord(_) => "context_word",
        }
    }
}

/// What a context word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextKind {
    /// The account's email address.
    Email,
    /// The part of the email address before `@`.
    EmailLocalPart,
    /// The configured service name.
    ServiceName,
}

impl fmt::Display for ContextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Email => "your email address",
            Self::EmailLocalPart => "your user name",
            Self::ServiceName => "the service name",
        })
    }
}

/// Words a password must not be, beyond the common-password list: the user's
/// email address and its local part. The service name comes from the policy.
#[derive(Debug, Default, Clone)]
pub struct ContextWords {
    words: Vec<(ContextKind, String)>,
}

impl ContextWords {
    /// No context words.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an email address and its local part.
    #[must_use]
    pub fn email(mut self, email: &str) -> Self {
        self.words.push((ContextKind::Email, fold(email)));
        if let Some((local, _)) = email.rsplit_once('@') {
            self.words.push((ContextKind::EmailLocalPart, fold(local)));
        }
        self
    }
}

/// The length caps, normalisation and new-password rules.
///
/// ```
/// use auth_core::Password;
/// use auth_core::password::{ContextWords, PasswordPolicy, PolicyViolation};
///
/// let policy = PasswordPolicy::builder().service_name("Acme").build()?;
/// let ctx = ContextWords::new().email("alice@example.com");
/// let refused = policy.validate_new(&Password::new("Alice2024!"), &ctx).unwrap_err();
/// assert_eq!(refused.rule(), "context_word");
/// assert!(policy.validate_new(&Password::new("purple otter sings"), &ctx).is_ok());
/// # Ok::<(), auth_core::password::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    max_chars: usize,
    max_bytes: usize,
    service_name: Option<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: DEFAULT_MIN_CHARS,
            max_chars: DEFAULT_MAX_CHARS,
            max_bytes: 4 * DEFAULT_MAX_CHARS,
            service_name: None,
        }
    }
}

impl PasswordPolicy {
    /// A builder starting from the defaults: 8..=128 code points, a byte cap of four
    /// bytes per code point of the maximum (512), no service name.
    #[must_use]
    pub fn builder() -> PasswordPolicyBuilder {
        PasswordPolicyBuilder::default()
    }

    /// Minimum length in code points.
    #[must_use]
    pub const fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Maximum length in code points.
    #[must_use]
    pub const fn max_chars(&self) -> usize {
        self.max_chars
    }

    /// Maximum length in UTF-8 bytes.
    #[must_use]
    pub const fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Checks the byte cap on the raw input (before any other work: it bounds the
    /// cost of normalising), applies NFKC, then checks the maximum length on the
    /// normalised form, the one that is hashed (S1). Used for every password
    /// that is verified (login, current password on change).
    ///
    /// # Errors
    /// [`PolicyViolation::TooManyBytes`] or [`PolicyViolation::TooLong`]; nothing
    /// else, so an existing password of a length the policy no longer allows for new
    /// passwords still verifies.
    pub fn normalize(&self, password: &Password) -> Result<NormalizedPassword, PolicyViolation> {
        let raw = password.expose_secret();
        if raw.len() > self.max_bytes {
            return Err(PolicyViolation::TooManyBytes {
                max: self.max_bytes,
            });
        }
        let normalized = NormalizedPassword(Zeroizing::new(raw.nfkc().collect()));
        if normalized.0.chars().nth(self.max_chars).is_some() {
            return Err(PolicyViolation::TooLong {
                max: self.max_chars,
            });
        }
        Ok(normalized)
    }

    /// Every rule a new password must pass (registration, reset, change): the caps,
    /// the minimum length, the common-password list and the context words.
    ///
    /// # Errors
    /// The first [`PolicyViolation`] found, in that order.
    pub fn validate_new(
        &self,
        password: &Password,
        context: &ContextWords,
    ) -> Result<NormalizedPassword, PolicyViolation> {
        let normalized = self.normalize(password)?;
        // Counted on the normalised form, the one that is hashed (S1): four
        // "e" + U+0301 pairs are 8 code points typed but 4 hashed.
        if normalized.0.chars().count() < self.min_chars {
            return Err(PolicyViolation::TooShort {
                min: self.min_chars,
            });
        }
        let folded = Zeroizing::new(fold(&normalized.0));
        let core = trim_decoration(&folded);
        if blocklist::is_common(&folded) || (!core.is_empty() && blocklist::is_common(core)) {
            return Err(PolicyViolation::Common);
        }
        let service = self
            .service_name
            .as_deref()
            .map(|s| (ContextKind::ServiceName, fold(s)));
        let words = context.words.iter().map(|(k, w)| (*k, w.as_str()));
        for (kind, word) in words.chain(service.as_ref().map(|(k, w)| (*k, w.as_str()))) {
            let word_core = trim_decoration(word);
            if *folded == *word || (!word_core.is_empty() && core == word_core) {
                return Err(PolicyViolation::ContextWord(kind));
            }
        }
        Ok(normalized)
    }
}

/// NFKC and lowercase: the form in which passwords are compared with word lists.
fn fold(s: &str) -> String {
    s.nfkc().collect::<String>().to_lowercase()
}

/// The password without the digits, symbols and spaces people add around a word
/// ("Alice2024!" -> "alice").
fn trim_decoration(s: &str) -> &str {
    s.trim_matches(|c: char| !c.is_alphabetic())
}

/// Builds a validated [`PasswordPolicy`].
#[derive(Debug, Default, Clone)]
pub struct PasswordPolicyBuilder {
    min_chars: Option<usize>,
    max_chars: Option<usize>,
    max_bytes: Option<usize>,
    service_name: Option<String>,
}

impl PasswordPolicyBuilder {
    /// Minimum length in code points (at least 8; NIST recommends 15 where the
    /// password is the only factor).
    #[must_use]
    pub fn min_chars(mut self, n: usize) -> Self {
        self.min_chars = Some(n);
        self
    }

    /// Maximum length in code points (at least 64, per NIST and ASVS 6.2.9).
    #[must_use]
    pub fn max_chars(mut self, n: usize) -> Self {
        self.max_chars = Some(n);
        self
    }

    /// Byte cap (default four times the maximum length; at most 4096).
    #[must_use]
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// The service's name, refused as a password.
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::PolicyRange`] when the minimum is under 8, the maximum under
    /// 64 or under the minimum, or the byte cap is under the maximum length or over
    /// [`MAX_BYTES_LIMIT`].
    pub fn build(self) -> Result<PasswordPolicy, ConfigError> {
        let min_chars = self.min_chars.unwrap_or(DEFAULT_MIN_CHARS);
        let max_chars = self.max_chars.unwrap_or(DEFAULT_MAX_CHARS);
        let max_bytes = self.max_bytes.unwrap_or(4 * max_chars).min(MAX_BYTES_LIMIT);
        let problem = if min_chars < DEFAULT_MIN_CHARS {
            Some("min_chars must be at least 8")
        } else if max_chars < 64 || max_chars < min_chars {
            Some("max_chars must be at least 64 and at least min_chars")
        } else if max_bytes < max_chars || self.max_bytes.is_some_and(|b| b > MAX_BYTES_LIMIT) {
            Some("max_bytes must be at least max_chars and at most 4096")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ConfigError::PolicyRange(problem));
        }
        Ok(PasswordPolicy {
            min_chars,
            max_chars,
            max_bytes,
            service_name: self.service_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str) -> Result<(), PolicyViolation> {
        let policy = PasswordPolicy::builder()
            .service_name("Acme Cloud")
            .build()
            .unwrap();
        let ctx = ContextWords::new().email("Mike.Smith@example.com");
        policy.validate_new(&Password::new(pw), &ctx).map(drop)
    }

    #[test]
    fn s1_seven_characters_are_too_short_eight_are_enough() {
        assert_eq!(check("zqvbnmt"), Err(PolicyViolation::TooShort { min: 8 }));
        assert_eq!(check("zqvbnmtk"), Ok(()));
    }

    #[test]
    fn s1_sixty_four_characters_are_accepted_and_the_cap_refuses_more() {
        assert_eq!(check(&"xq".repeat(32)), Ok(()));
        assert_eq!(
            check(&"xqz".repeat(43)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
    }

    #[test]
    fn s1_length_is_counted_in_code_points() {
        // Eight two-byte characters: 16 bytes, 8 code points.
        assert_eq!(check("éàüöçñøå"), Ok(()));
        assert_eq!(check("éàüöçñø"), Err(PolicyViolation::TooShort { min: 8 }));
    }

    #[test]
    fn s1_the_caps_apply_to_the_raw_input_before_normalisation() {
        let policy = PasswordPolicy::default();
        // U+FDFA is 3 bytes and expands to 18 code points under NFKC. 129 of them
        // (387 bytes) pass the byte cap but must fail the code-point cap as typed.
        let expanding = Password::new("\u{FDFA}".repeat(129));
        assert_eq!(
            policy.normalize(&expanding).unwrap_err(),
            PolicyViolation::TooLong { max: 128 }
        );
        // 10 MB is refused by the byte cap.
        let huge = Password::new("a".repeat(10_000_000));
        assert_eq!(
            policy.normalize(&huge).unwrap_err(),
            PolicyViolation::TooManyBytes { max: 512 }
        );
    }

    #[test]
    fn s1_length_rules_apply_to_the_normalised_password() {
        // Four "e" + combining acute: 8 code points typed, 4 after NFKC (the
        // form that is hashed and that logs in): too short.
        assert_eq!(
            check("e\u{301}e\u{301}e\u{301}e\u{301}"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        // "zqé" three times with combining accents: 9 after NFKC, enough.
        assert_eq!(check(&"zqe\u{301}".repeat(3)), Ok(()));
        // Hangul jamo: leading consonant + vowel compose into one syllable.
        // Five syllables typed as 10 jamo are 5 code points hashed.
        let jamo =
            "\u{1112}\u{1161}\u{1102}\u{1173}\u{1105}\u{1175}\u{1107}\u{1169}\u{1103}\u{1161}";
        assert_eq!(jamo.chars().count(), 10);
        assert_eq!(check(jamo), Err(PolicyViolation::TooShort { min: 8 }));
        // The same five syllables precomposed, plus three more: 8.
        assert_eq!(check("하느리보다한국어"), Ok(()));
        // The maximum too: 100 "e" + U+0301 pairs (200 code points typed, 300
        // bytes) are 100 code points hashed: accepted; 130 pairs are 130.
        let policy = PasswordPolicy::default();
        assert!(
            policy
                .normalize(&Password::new("xe\u{301}".repeat(50)))
                .is_ok()
        );
        assert_eq!(
            check(&"xqe\u{301}".repeat(43)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
    }

    #[test]
    fn s1_no_composition_rules() {
        assert_eq!(check("qwmzxbvrtplkjhg"), Ok(()));
    }

    #[test]
    fn s1_common_passwords_are_refused_with_their_reason() {
        for pw in ["password", "Password1", "iloveyou", "12345678", "baseball!"] {
            let err = check(pw).unwrap_err();
            assert_eq!(err, PolicyViolation::Common, "{pw}");
            assert_eq!(err.rule(), "common_password");
        }
    }

    #[test]
    fn s1_context_words_are_refused_with_their_reason() {
        use ContextKind::*;
        assert_eq!(
            check("mike.smith@example.com"),
            Err(PolicyViolation::ContextWord(Email))
        );
        assert_eq!(
            check("Mike.Smith2024!"),
            Err(PolicyViolation::ContextWord(EmailLocalPart))
        );
        assert_eq!(
            check("acme cloud"),
            Err(PolicyViolation::ContextWord(ServiceName))
        );
        assert_eq!(
            check("ACME CLOUD 123"),
            Err(PolicyViolation::ContextWord(ServiceName))
        );
        // A longer passphrase that merely contains the word is fine.
        assert_eq!(check("mike.smith likes rhubarb"), Ok(()));
    }

    #[test]
    fn every_violation_names_its_rule_and_has_a_message() {
        let all = [
            PolicyViolation::TooShort { min: 8 },
            PolicyViolation::TooLong { max: 128 },
            PolicyViolation::TooManyBytes { max: 512 },
            PolicyViolation::Common,
            PolicyViolation::ContextWord(ContextKind::Email),
        ];
        let rules: std::collections::HashSet<_> = all.iter().map(PolicyViolation::rule).collect();
        assert_eq!(rules.len(), all.len());
        assert!(all.iter().all(|v| !v.to_string().is_empty()));
        // Wording (issue 15, item 13): each context message reads as English.
        let says = |k| PolicyViolation::ContextWord(k).to_string();
        assert_eq!(
            says(ContextKind::ServiceName),
            "password must not be the service name"
        );
        assert_eq!(
            says(ContextKind::Email),
            "password must not be your email address"
        );
        assert_eq!(
            says(ContextKind::EmailLocalPart),
            "password must not be your user name"
        );
    }

    #[test]
    fn nfkc_makes_equivalent_inputs_identical() {
        let policy = PasswordPolicy::default();
        let nfc = policy.normalize(&Password::new("caf\u{e9} ofﬁce")).unwrap();
        let nfd = policy
            .normalize(&Password::new("cafe\u{301} office"))
            .unwrap();
        assert_eq!(nfc.as_bytes(), nfd.as_bytes());
    }

    #[test]
    fn weak_or_inconsistent_settings_are_refused() {
        assert!(PasswordPolicy::builder().min_chars(6).build().is_err());
        assert!(PasswordPolicy::builder().max_chars(32).build().is_err());
        assert!(
            PasswordPolicy::builder()
                .min_chars(100)
                .max_chars(64)
                .build()
                .is_err()
        );
        assert!(PasswordPolicy::builder().max_bytes(100).build().is_err());
        assert!(
            PasswordPolicy::builder()
                .max_bytes(1 << 20)
                .build()
                .is_err()
        );
        let p = PasswordPolicy::builder()
            .min_chars(15)
            .max_chars(256)
            .build()
            .unwrap();
        assert_eq!(
            (p.min_chars(), p.max_chars(), p.max_bytes()),
            (15, 256, 1024)
        );
    }
}
