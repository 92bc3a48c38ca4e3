use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The language of a message: a BCP 47 tag (RFC 5646) such as `en`, `pt-BR`
/// or `zh-Hant-TW`, checked and put in its canonical case when made.
///
/// The accepted form is the common one: a language of 2 or 3 letters, then
/// optionally a script (4 letters), a region (2 letters or 3 digits) and
/// variants (5 to 8 letters or digits, or 4 starting with a digit).
/// Extensions, private use and grandfathered tags are refused: no mail
/// template needs them, and a tag an application cannot match against its
/// translations is better refused at start-up.
///
/// ```
/// use auth_core::mail::Locale;
///
/// let locale: Locale = "pt-br".parse()?;
/// assert_eq!(locale.as_str(), "pt-BR");
/// assert_eq!(locale.language(), "pt");
/// assert_eq!(Locale::default(), Locale::ENGLISH);
/// assert!(Locale::new("pt_BR").is_err());
/// # Ok::<(), auth_core::mail::InvalidLocale>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Locale(Cow<'static, str>);

/// A string that is not a language tag [`Locale`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tag:?} is not a BCP 47 language tag such as \"en\" or \"pt-BR\"")]
pub struct InvalidLocale {
    tag: String,
}

/// Longest tag accepted: far above any real language-script-region-variant
/// tag, low enough that a tag from configuration cannot be a payload.
const MAX_TAG_LEN: usize = 35;

impl Locale {
    /// English (`en`), the language of [`super::DefaultTemplates`] and the
    /// default of `AuthConfig::default_locale`.
    pub const ENGLISH: Self = Self(Cow::Borrowed("en"));

    /// Checks `tag` and puts it in canonical case (`pt-br` becomes `pt-BR`).
    ///
    /// # Errors
    /// [`InvalidLocale`] when `tag` is not of the form described on [`Locale`].
    pub fn new(tag: &str) -> Result<Self, InvalidLocale> {
        canonical(tag)
            .map(|tag| Self(Cow::Owned(tag)))
            .ok_or_else(|| InvalidLocale {
                tag: tag.chars().take(MAX_TAG_LEN + 1).collect(),
            })
    }

    /// The tag, for example `pt-BR`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language subtag, for example `pt` for `pt-BR`.
    #[must_use]
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl Default for Locale {
    fn default() -> Self {
        Self::ENGLISH
    }
}

impl FromStr for Locale {
    type Err = InvalidLocale;

    fn from_str(tag: &str) -> Result<Self, Self::Err> {
        Self::new(tag)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.0)
    }
}

/// `tag` in canonical case, or `None` when it is not language[-script]
/// [-region]*(-variant).
fn canonical(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN || !tag.is_ascii() {
        return None;
    }
    let mut subtags = tag.split('-');
    let language = subtags.next()?;
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut out = language.to_ascii_lowercase();
    // 0: a script may follow, 1: a region may follow, 2: only variants.
    let mut stage = 0;
    for subtag in subtags {
        let alpha = subtag.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = subtag.bytes().all(|b| b.is_ascii_digit());
        let alnum = subtag.bytes().all(|b| b.is_ascii_alphanumeric());
        out.push('-');
        if stage == 0 && subtag.len() == 4 && alpha {
            let mut chars = subtag.chars();
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
            stage = 1;
        } else if stage <= 1 && ((subtag.len() == 2 && alpha) || (subtag.len() == 3 && digits)) {
            out.push_str(&subtag.to_ascii_uppercase());
            stage = 2;
        } else if alnum
            && ((5..=8).contains(&subtag.len())
                || (subtag.len() == 4 && subtag.starts_with(|c: char| c.is_ascii_digit())))
        {
            out.push_str(&subtag.to_ascii_lowercase());
            stage = 2;
        } else {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_tags_are_accepted_in_canonical_case() {
        for (tag, canonical) in [
            ("en", "en"),
            ("EN", "en"),
            ("pt-br", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("sr-Latn", "sr-Latn"),
            ("de-CH-1996", "de-CH-1996"),
            ("sl-rozaj-biske", "sl-rozaj-biske"),
            ("fil", "fil"),
        ] {
            let locale = Locale::new(tag).unwrap();
            assert_eq!(locale.as_str(), canonical, "{tag}");
            assert_eq!(locale.to_string(), canonical);
        }
        assert_eq!(Locale::new("pt-BR").unwrap().language(), "pt");
        assert_eq!(Locale::ENGLISH.language(), "en");
        assert_eq!(format!("{:?}", Locale::ENGLISH), "Locale(en)");
    }

    #[test]
    fn anything_else_is_refused() {
        for tag in [
            "",
            "e",
            "english",
            "pt_BR",
            "pt-",
            "-pt",
            "pt--BR",
            "pt-BR-",
            "en-US-x-private",
            "en-a-bbb",
            "i-klingon",
            "pt-BR-Latn",
            "en-US-GB",
            "ça",
            "en US",
            "en-\u{0}",
            "de-CH-1996-1996-1996-1996-1996-1996-1996",
        ] {
            let err = Locale::new(tag).unwrap_err();
            assert!(err.to_string().contains("BCP 47"), "{tag}: {err}");
        }
        let long = "x".repeat(10_000);
        let err = Locale::new(&long).unwrap_err();
        assert!(
            err.to_string().len() < 120,
            "the error does not echo a payload"
        );
    }
}
