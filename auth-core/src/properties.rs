//! Property tests of the crate-private parsers of untrusted input: the token
//! decoder every cookie, bearer header and emailed link goes through (S4, S5).
//! The public parsers (email addresses, the backoff maths, the password policy)
//! are in `tests/properties.rs`; PHC and bcrypt strings in
//! `password/properties.rs`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use crate::token::{OpaqueToken, SecretKey, TOKEN_BYTES, TOKEN_CHARS, TokenPurpose};

/// 256 cases per property; `PROPTEST_CASES` sets another number for a deeper
/// run by hand.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(256))
}
/// Text a client could send: anything, token-shaped or nearly so.
fn token_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{43}",
        "[A-Za-z0-9_+/=-]{40,46}",
        "[A-Za-z0-9_-]{42}[^A-Za-z0-9_-]",
        prop::collection::vec(any::<u8>(), TOKEN_BYTES).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// A token decodes only when it is the one canonical text of 32 bytes: so
    /// no two texts reach the store as one token, and nothing else is looked up.
    #[test]
    fn s4_decode_accepts_exactly_the_canonical_text_of_32_bytes(text in token_text()) {
        let decoded = OpaqueToken::new(text.clone()).decode();
        if let Some(bytes) = decoded {
            prop_assert_eq!(text.len(), TOKEN_CHARS);
            prop_assert_eq!(URL_SAFE_NO_PAD.encode(bytes), text);
        } else if text.len() == TOKEN_CHARS {
            // Refused 43-character text is not the encoding of any 32 bytes.
            let reencoded = URL_SAFE_NO_PAD
                .decode(text.as_bytes())
                .map(|b| URL_SAFE_NO_PAD.encode(b));
            prop_assert_ne!(reencoded.ok(), Some(text));
        }
    }

    /// Every token we could issue decodes back to its bytes.
    #[test]
    fn s4_issued_tokens_round_trip(bytes in any::<[u8; TOKEN_BYTES]>()) {
        let text = URL_SAFE_NO_PAD.encode(bytes);
        prop_assert_eq!(OpaqueToken::new(text).decode(), Some(bytes));
    }

    /// Different tokens, or one token under different purposes, never share a
    /// stored hash.
    #[test]
    fn s4_keyed_hashes_separate_tokens_and_purposes(
        a in any::<[u8; TOKEN_BYTES]>(),
        b in any::<[u8; TOKEN_BYTES]>(),
    ) {
        let key = SecretKey::new([9u8; 32]).unwrap();
        let session = key.hash(TokenPurpose::Session, &a);
        prop_assert_ne!(session, key.hash(TokenPurpose::PasswordReset, &a));
        prop_assert_ne!(session, key.hash(TokenPurpose::EmailVerification, &a));
        prop_assert_eq!(session == key.hash(TokenPurpose::Session, &b), a == b);
    }
}

proptest! {
    #![proptest_config(config())]

    /// S10: `Debug` of a token, a key and a stored hash names the type and
    /// nothing else, whatever the secret (found by mutation testing: an empty
    /// `Debug` went unnoticed).
    #[test]
    fn s10_debug_is_the_type_and_a_redaction(
        text in token_text(),
        key in prop::collection::vec(any::<u8>(), 32..64),
        bytes in any::<[u8; TOKEN_BYTES]>(),
    ) {
        prop_assert_eq!(format!("{:?}", OpaqueToken::new(text)), "OpaqueToken(<redacted>)");
        let key = SecretKey::new(key).unwrap();
        prop_assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
        let hash = key.hash(TokenPurpose::Session, &bytes);
        prop_assert_eq!(format!("{hash:?}"), "TokenHash(<redacted>)");
    }

    /// Stored hashes are map keys (the in-process store): equal hashes hash
    /// alike and different ones apart, as `Hash` must agree with `Eq`.
    #[test]
    fn token_hashes_hash_like_their_bytes(a in any::<[u8; TOKEN_BYTES]>(), b in any::<[u8; TOKEN_BYTES]>()) {
        use std::hash::{BuildHasher, RandomState};
        let state = RandomState::new();
        let key = SecretKey::new([3u8; 32]).unwrap();
        let (ha, hb) = (key.hash(TokenPurpose::Session, &a), key.hash(TokenPurpose::Session, &b));
        prop_assert_eq!(state.hash_one(ha), state.hash_one(key.hash(TokenPurpose::Session, &a)));
        prop_assert_eq!(state.hash_one(ha) == state.hash_one(hb), a == b);
    }
}
