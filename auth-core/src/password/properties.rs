//! Property tests of the stored-hash parsers: PHC strings (argon2id) and
//! imported bcrypt hashes. Hashes come from a store, and imported ones from
//! another system, so any string must be refused cleanly, never panic, and a
//! string we wrote must read back as written (S1, S2).

use argon2::{Params, ParamsBuilder};
use proptest::prelude::*;

use super::HashError;
use super::argon::{StoredArgon2, encode};

/// 256 cases per property; `PROPTEST_CASES` sets another number for a deeper
/// run by hand.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(256))
}
/// Base64 (PHC's unpadded standard alphabet) of `len` characters.
fn b64(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec(),
        ),
        len,
    )
    .prop_map(|v| String::from_utf8(v).unwrap_or_default())
}

/// PHC-shaped strings with arbitrary fields: algorithm, version, parameters
/// (any u32, names sometimes wrong), salt and tag of any length.
fn phc_like() -> impl Strategy<Value = String> {
    let alg = prop::sample::select(vec!["argon2id", "argon2i", "argon2d", "scrypt", ""]);
    let version = prop::sample::select(vec!["v=19", "v=16", "v=0", "v=", "x=19"]);
    let param = (
        prop::sample::select(vec!["m", "t", "p", "keyid", "data", "x"]),
        prop_oneof![any::<u32>().prop_map(|n| n.to_string()), "[ -~]{0,12}"],
    )
        .prop_map(|(k, v)| format!("{k}={v}"));
    (
        alg,
        version,
        prop::collection::vec(param, 0..5),
        b64(0..=90),
        b64(0..=90),
    )
        .prop_map(|(alg, v, params, salt, tag)| {
            format!("${alg}${v}${}${salt}${tag}", params.join(","))
        })
}

/// Parameters argon2 accepts, with or without a pepper key id.
fn params() -> impl Strategy<Value = Params> {
    (
        1u32..=16,
        1u32..=8,
        0u32..=4096,
        prop::option::of("[a-z0-9]{1,8}"),
    )
        .prop_map(|(p, t, extra, keyid)| {
            let mut b = ParamsBuilder::new();
            b.m_cost(8 * p + extra).t_cost(t).p_cost(p);
            if let Some(id) = keyid {
                b.keyid(argon2::KeyId::new(id.as_bytes()).unwrap());
            }
            b.build().unwrap()
        })
}

proptest! {
    #![proptest_config(config())]

    /// Any text, PHC-shaped or not, parses or is refused as malformed; what
    /// parses is argon2id v19 with parameters argon2 accepts.
    #[test]
    fn s1_any_stored_string_parses_or_is_malformed(
        text in prop_oneof![any::<String>(), phc_like()],
    ) {
        match StoredArgon2::parse(&text) {
            Ok(stored) => {
                prop_assert!(text.starts_with("$argon2id$v=19$"), "{text}");
                prop_assert!(stored.params.p_cost() >= 1 && stored.params.t_cost() >= 1);
                prop_assert!(stored.params.m_cost() >= 8 * stored.params.p_cost());
                prop_assert!(!stored.tag.is_empty());
                // What parsed writes back to a string that parses to the same hash.
                let again = StoredArgon2::parse(
                    &encode(&stored.params, &stored.salt, &stored.tag).unwrap(),
                ).unwrap();
                prop_assert_eq!(&again.params, &stored.params);
                prop_assert_eq!(again.salt, stored.salt);
                prop_assert_eq!(again.tag, stored.tag);
            }
            Err(e) => prop_assert!(matches!(e, HashError::MalformedHash), "{e:?}"),
        }
    }

    /// Every hash we write reads back as written: parameters, key id, salt, tag.
    #[test]
    fn s1_written_hashes_read_back(
        params in params(),
        salt in prop::collection::vec(any::<u8>(), 8..=48),
        tag in prop::collection::vec(any::<u8>(), 10..=64),
    ) {
        let phc = encode(&params, &salt, &tag).unwrap();
        let stored = StoredArgon2::parse(&phc).unwrap();
        let costs = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost(), p.keyid().to_vec());
        prop_assert_eq!(costs(&stored.params), costs(&params));
        prop_assert_eq!(stored.params.output_len(), Some(tag.len()));
        prop_assert_eq!(&stored.salt, &salt);
        prop_assert_eq!(&stored.tag, &tag);
        prop_assert_eq!(encode(&stored.params, &stored.salt, &stored.tag).unwrap(), phc);
    }

    /// One character of a valid hash changed, dropped or doubled: still no
    /// panic, and a change to the algorithm or version is refused.
    #[test]
    fn s1_damaged_hashes_never_panic(
        params in params(),
        at in any::<prop::sample::Index>(),
        c in any::<char>(),
        how in 0u8..3,
    ) {
        let phc = encode(&params, &[7u8; 16], &[9u8; 32]).unwrap();
        let mut chars: Vec<char> = phc.chars().collect();
        let i = at.index(chars.len());
        match how {
            0 => chars[i] = c,
            1 => { chars.remove(i); }
            _ => chars.insert(i, c),
        }
        let damaged: String = chars.into_iter().collect();
        let parsed = StoredArgon2::parse(&damaged);
        if !damaged.starts_with("$argon2id$v=19$") {
            prop_assert!(parsed.is_err(), "{damaged}");
        }
    }
}

#[cfg(feature = "bcrypt")]
mod bcrypt_hashes {
    use proptest::prelude::*;

    use super::super::HashError;
    use super::super::legacy::{is_bcrypt, verify};
    use super::config;

    /// bcrypt-shaped strings: a `$2?$` prefix, a cost that is cheap or invalid
    /// (never a slow valid one), and 0 to 60 characters of bcrypt's alphabet.
    fn bcrypt_like() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["$2a$", "$2b$", "$2y$", "$2x$", "$2$", "$3a$"]),
            prop::sample::select(vec!["04", "05", "00", "03", "32", "99", "4", "x5", ""]),
            "[./A-Za-z0-9]{0,60}",
        )
            .prop_map(|(prefix, cost, rest)| format!("{prefix}{cost}${rest}"))
    }

    proptest! {
        #![proptest_config(config())]

        /// Any stored string answers a boolean or "malformed", never panics.
        #[test]
        fn s2_any_bcrypt_string_verifies_or_is_malformed(
            stored in prop_oneof![bcrypt_like(), any::<String>()],
            password in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            prop_assert_eq!(
                is_bcrypt(&stored),
                ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
            );
            match verify(&password, &stored) {
                Ok(_) | Err(HashError::MalformedHash) => {}
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }

        /// No truncation (S1): a password of 72 bytes or more never matches,
        /// even the hash a truncating system made of it; shorter ones do.
        #[test]
        fn s1_bcrypt_never_truncates(
            password in prop::collection::vec(1u8..=255, 72..120),
            short in 1usize..=71,
        ) {
            // bcrypt::hash truncates at 72 bytes, as the system we import from did.
            let stored = bcrypt::hash(&password, 4).unwrap();
            prop_assert_eq!(verify(&password, &stored).unwrap(), false);
            prop_assert_eq!(verify(&password[..72], &stored).unwrap(), false);
            let fits = &password[..short];
            prop_assert!(verify(fits, &bcrypt::hash(fits, 4).unwrap()).unwrap());
        }
    }
}
