//! The list of common passwords that registration refuses (S1, ASVS 6.2.4).
//!
//! `data/common-passwords.txt` holds the 30,000 most common passwords of the
//! `passwords` frequency list shipped in the `zxcvbn` crate 3.1.1 (MIT licence,
//! `data/LICENSE-zxcvbn.txt`), one lowercase entry per line in rank order.
//! `data/README.md` says how to regenerate it.

use std::collections::HashSet;
use std::sync::LazyLock;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .collect()
});

/// Whether a lowercase, normalised password is on the list.
pub(crate) fn is_common(lowercase: &str) -> bool {
    COMMON.contains(lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_least_ten_thousand_entries() {
        assert!(COMMON.len() >= 10_000, "{}", COMMON.len());
    }

    #[test]
    fn knows_the_classics() {
        for pw in ["password", "123456", "qwerty", "iloveyou", "trustno1"] {
            assert!(is_common(pw), "{pw}");
        }
        assert!(!is_common("purple-otter-quietly-sings"));
    }
}
