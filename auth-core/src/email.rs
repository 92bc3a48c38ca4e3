//! Email addresses: validation and the normalised form accounts are keyed by (S3,
//! S6, S11).

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Longest address accepted, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest local part accepted, in bytes.
pub const MAX_LOCAL_BYTES: usize = 64;

/// A syntactically valid email address.
///
/// Two forms are kept: the address as the user gave it (trimmed), which is where
/// mail goes, and the normalised form (NFKC, lowercase) that identifies the
/// account and keys its lockout counter. So "User@Example.com" and
/// "user@example.com" are one account, while a lookalike such as "mıke" (dotless
/// i) stays distinct from "mike". Mail is always sent to the address stored for the
/// account, never to the string submitted in a request (Django CVE-2019-19844).
///
/// ```
/// use auth_core::EmailAddress;
///
/// let a = EmailAddress::parse(" User@Example.COM ")?;
/// assert_eq!(a.as_str(), "User@Example.COM");
/// assert_eq!(a.normalized(), "user@example.com");
/// assert!(EmailAddress::parse("not an email").is_err());
/// # Ok::<(), auth_core::InvalidEmail>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    address: String,
    normalized: String,
}

/// Why an email address was refused; the message is fit to show the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidEmail {
    /// Longer than [`MAX_EMAIL_BYTES`].
    #[error("email address is too long")]
    TooLong,
    /// Not of the form local@domain, or with characters that have no place in one.
    #[error("email address is not valid")]
    Malformed,
}

impl EmailAddress {
    /// Validates an address: at most 254 bytes; exactly one `@`; a local part of 1
    /// to 64 bytes; a domain of dot-separated labels of 1 to 63 bytes that contains
    /// a dot; no whitespace, control characters, or the characters `<>()[],;:\"`.
    ///
    /// # Errors
    /// [`InvalidEmail`] naming the rule.
    pub fn parse(input: &str) -> Result<Self, InvalidEmail> {
        let address = input.trim();
        if address.len() > MAX_EMAIL_BYTES {
            return Err(InvalidEmail::TooLong);
        }
        let (local, domain) = address.split_once('@').ok_or(InvalidEmail::Malformed)?;
        let forbidden = |c: char| {
            c.is_whitespace() || c.is_control() || is_invisible(c) || "<>()[],;:\\\"@".contains(c)
        };
        let labels_ok = domain.contains('.')
            && domain.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
            });
        if local.is_empty()
            || local.len() > MAX_LOCAL_BYTES
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !labels_ok
            || address.chars().filter(|&c| c != '@').any(forbidden)
            || address.matches('@').count() != 1
        {
            return Err(InvalidEmail::Malformed);
        }
        // S3, S11: an address that NFKC changes (fullwidth letters, ligatures,
        // compatibility forms) would key the account of the plain address
        // while mail goes to the variant: refused, so no one can squat an
        // address through a variant of it.
        if !address.nfkc().eq(address.chars()) {
            return Err(InvalidEmail::Malformed);
        }
        Ok(Self {
            address: address.to_owned(),
            normalized: normalize(address),
        })
    }

    /// The address as given (trimmed): where mail is sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The normalised form (NFKC, lowercase) that identifies the account.
    #[must_use]
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Rebuilds an address read back from a store.
    #[must_use]
    pub fn from_stored(address: String, normalized: String) -> Self {
        Self {
            address,
            normalized,
        }
    }
}

/// Format (Cf) characters and other characters that render as nothing: bidi
/// controls (U+202A-202E, U+2066-2069, U+200E/200F, U+061C), zero-width
/// characters (U+200B-200D, U+2060-2064, U+FEFF), the soft hyphen (U+00AD),
/// tag characters (U+E0000-E007F), variation selectors, the combining grapheme
/// joiner, Hangul fillers and the other members of the Unicode 16 Cf category.
/// In an address they make lookalikes of other addresses and `To:` lines that
/// display reversed (S11).
const fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180E
        | 0x3164 | 0xFFA0 | 0x2800 | 0x06DD | 0x070F | 0x08E2 | 0x110BD | 0x110CD
        | 0x0600..=0x0605 | 0x0890..=0x0891 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0xFE00..=0xFE0F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// NFKC, then lowercase.
fn normalize(address: &str) -> String {
    address.nfkc().collect::<String>().to_lowercase()
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.address)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s6_case_variants_are_one_account() {
        let a = EmailAddress::parse("User@Example.com").unwrap();
        let b = EmailAddress::parse("user@example.com").unwrap();
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(
            a.as_str(),
            "User@Example.com",
            "mail goes to the address as given"
        );
    }

    #[test]
    fn s3_lookalikes_stay_distinct() {
        let dotless = EmailAddress::parse("m\u{131}ke@example.com").unwrap();
        let plain = EmailAddress::parse("mike@example.com").unwrap();
        assert_ne!(dotless.normalized(), plain.normalized());
        let dotted_capital = EmailAddress::parse("M\u{130}KE@example.com").unwrap();
        assert_ne!(dotted_capital.normalized(), plain.normalized());
    }

    #[test]
    fn s3_s11_addresses_nfkc_changes_are_refused() {
        for variant in [
            "\u{ff56}ictim@example.com",  // fullwidth v
            "victim@\u{ff45}xample.com",  // fullwidth e in the domain
            "\u{fb01}nance@example.com",  // the "fi" ligature
            "victim\u{2075}@example.com", // superscript five
            "e\u{301}lise@example.com",   // NFD: NFKC composes it
            "\u{2460}@example.com",       // circled digit one
        ] {
            assert_eq!(
                EmailAddress::parse(variant),
                Err(InvalidEmail::Malformed),
                "{variant:?}"
            );
        }
        // NFKC-stable non-ASCII addresses are fine.
        assert!(EmailAddress::parse("\u{e9}lise@example.com").is_ok());
    }

    #[test]
    fn s11_invisible_and_bidi_characters_are_refused() {
        for c in [
            '\u{202E}',  // right-to-left override
            '\u{202A}',  // left-to-right embedding
            '\u{200B}',  // zero width space
            '\u{200C}',  // zero width non-joiner
            '\u{200D}',  // zero width joiner
            '\u{FEFF}',  // byte order mark / zero width no-break space
            '\u{2066}',  // left-to-right isolate
            '\u{2069}',  // pop directional isolate
            '\u{200E}',  // left-to-right mark
            '\u{200F}',  // right-to-left mark
            '\u{061C}',  // Arabic letter mark
            '\u{00AD}',  // soft hyphen
            '\u{2060}',  // word joiner
            '\u{034F}',  // combining grapheme joiner
            '\u{FE0F}',  // variation selector 16
            '\u{E0001}', // language tag
            '\u{E0041}', // tag latin capital A
            '\u{E007F}', // cancel tag
            '\u{3164}',  // Hangul filler
        ] {
            for address in [
                format!("vic{c}tim@example.com"),
                format!("victim@exam{c}ple.com"),
                format!("{c}victim@example.com"),
                format!("victim@example.com{c}"),
            ] {
                assert_eq!(
                    EmailAddress::parse(&address),
                    Err(InvalidEmail::Malformed),
                    "U+{:04X} in {address:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn s11_invalid_addresses_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(InvalidEmail::TooLong));
        let huge = "a".repeat(1 << 20);
        assert_eq!(EmailAddress::parse(&huge), Err(InvalidEmail::TooLong));
        for bad in [
            "",
            "@",
            "plain",
            "a@b",
            "@example.com",
            "a@",
            "a@@example.com",
            "a@b@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a\0@example.com",
            "a@example..com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a@-x.com",
            "<a>@example.com",
            &format!("{}@example.com", "a".repeat(65)),
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(InvalidEmail::Malformed),
                "{bad:?}"
            );
        }
        for good in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "ü@exämple.de",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
    }
}
