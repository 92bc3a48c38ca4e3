//! The two argon2id backends against each other (feature `fast-argon2`): the
//! `argon2` crate (`RustCrypto`) and `argon2-rust` compute byte-identical tags, pass
//! the RFC 9106 vector, and verify each other's hashes through `PasswordHasher`,
//! with and without a pepper (S1, S2). Cheap parameters through the `test-util`
//! constructor keep this fast; one test uses the OWASP defaults.
//!
//! The unit tests in `src/password/backend.rs` run the RFC 9106 vector (secret and
//! associated data) and random inputs through the crate's own seam as well.
#![cfg(feature = "fast-argon2")]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failed unwrap or index is a failed test"
)]

use auth_core::password::{
    HashBackend, HashParams, NormalizedPassword, PasswordHasher, PasswordPolicy, Pepper, PepperKey,
};
use auth_core::{Password, PasswordHashString};

/// m (KiB), t, p: small m, p > 1, m not a multiple of 4p, and the minimum 8p.
const GRID: [(u32, u32, u32); 10] = [
    (8, 1, 1),
    (16, 2, 2),
    (24, 1, 3),
    (32, 3, 4),
    (50, 1, 4),
    (64, 2, 1),
    (100, 1, 2),
    (256, 1, 8),
    (512, 2, 3),
    (1024, 1, 1),
];

fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    getrandom::fill(&mut v).unwrap();
    v
}

fn random_below(n: usize) -> usize {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    usize::try_from(u64::from_le_bytes(b) % u64::try_from(n).unwrap()).unwrap()
}

/// A random password of up to 64 characters from ASCII, Latin, CJK, emoji and
/// compatibility forms (NFKC changes some of them).
fn random_password() -> String {
    const CHARS: &[char] = &[
        'a', 'Z', '0', ' ', '!', '$', ',', '=', 'é', 'ß', 'Å', 'ﬁ', '①', 'Ｋ', '漢', '字', '🦀',
        '\u{301}', 'ъ', 'ح',
    ];
    (0..=random_below(64))
        .map(|_| CHARS[random_below(CHARS.len())])
        .collect()
}

fn normalized(pw: &str) -> NormalizedPassword {
    PasswordPolicy::default()
        .normalize(&Password::new(pw))
        .unwrap()
}

fn hasher(backend: HashBackend, params: HashParams, pepper: Option<Pepper>) -> PasswordHasher {
    let builder = PasswordHasher::builder().backend(backend).params(params);
    match pepper {
        Some(pepper) => builder.pepper(pepper),
        None => builder,
    }
    .build()
    .unwrap()
}

/// The same pepper, built twice (a `Pepper` is not `Clone`: its secrets are not
/// copied around).
fn pepper(current: (&str, &[u8]), previous: Option<(&str, &[u8])>) -> Pepper {
    let p = Pepper::new(PepperKey::new(current.0, current.1).unwrap());
    match previous {
        Some((id, secret)) => p
            .with_previous(PepperKey::new(id, secret).unwrap())
            .unwrap(),
        None => p,
    }
}

/// `$argon2id$v=19$m=..,t=..,p=..[,keyid=..]`: everything but salt and tag.
fn phc_head(stored: &PasswordHashString) -> String {
    let s = stored.as_str();
    s[..s.rfind('$').unwrap()]
        .rsplit_once('$')
        .unwrap()
        .0
        .to_owned()
}

fn rust_crypto_tag(
    (m, t, p): (u32, u32, u32),
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    ad: &[u8],
    tag_len: usize,
) -> Vec<u8> {
    let mut builder = argon2::ParamsBuilder::new();
    builder.m_cost(m).t_cost(t).p_cost(p).output_len(tag_len);
    if !ad.is_empty() {
        builder.data(argon2::AssociatedData::new(ad).unwrap());
    }
    let params = builder.build().unwrap();
    let (alg, ver) = (argon2::Algorithm::Argon2id, argon2::Version::V0x13);
    let ctx = if secret.is_empty() {
        argon2::Argon2::new(alg, ver, params)
    } else {
        argon2::Argon2::new_with_secret(secret, alg, ver, params).unwrap()
    };
    let mut out = vec![0u8; tag_len];
    ctx.hash_password_into(password, salt, &mut out).unwrap();
    out
}

fn fast_argon2((m, t, p): (u32, u32, u32), tag_len: usize) -> argon2_rust::Argon2 {
    use argon2_rust::params::{Memory, TagLen};
    let params = argon2_rust::Params::builder()
        .memory(Memory::kib(u64::from(m)))
        .passes(t)
        .lanes(p)
        .threads(1)
        .tag_len(TagLen::bytes(u64::try_from(tag_len).unwrap()))
        .build()
        .unwrap();
    argon2_rust::Argon2::new(
        argon2_rust::Algorithm::Argon2id,
        argon2_rust::Version::V0x13,
        params,
    )
}

/// RFC 9106 §5.3, argon2id with secret and associated data, on each backend's
/// raw function (one-shot and, for `argon2-rust`, its reused arena).
#[test]
fn rfc9106_argon2id_vector_on_both_backends() {
    const EXPECTED: [u8; 32] = [
        0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53,
        0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01,
        0xe6, 0x59,
    ];
    let (password, salt, secret, ad) = ([1u8; 32], [2u8; 16], [3u8; 8], [4u8; 12]);
    let rc = rust_crypto_tag((32, 3, 4), &password, &salt, &secret, &ad, 32);
    assert_eq!(rc, EXPECTED);

    let fast = fast_argon2((32, 3, 4), 32);
    let mut out = [0u8; 32];
    fast.hash_into_with_ad(&password, &salt, &secret, &ad, &mut out)
        .unwrap();
    assert_eq!(out, EXPECTED);
    let mut reused = fast.hasher();
    for _ in 0..2 {
        let mut out = [0u8; 32];
        reused
            .hash_into_with_ad(&password, &salt, &secret, &ad, &mut out)
            .unwrap();
        assert_eq!(out, EXPECTED);
    }
}

/// Random passwords, salts, secrets and associated data over the grid and several
/// tag lengths: the two crates agree byte for byte.
#[test]
fn raw_tags_are_byte_identical_for_random_inputs() {
    for point in GRID {
        let mut reused = fast_argon2(point, 32).hasher();
        for tag_len in [4, 16, 32, 64] {
            for _ in 0..3 {
                let password = random_bytes(random_below(129));
                let salt = random_bytes(8 + random_below(57));
                let secret = random_bytes([0, 8, 32, 64][random_below(4)]);
                let ad = random_bytes([0, 1, 12, 32][random_below(4)]);
                let expected = rust_crypto_tag(point, &password, &salt, &secret, &ad, tag_len);

                let mut out = vec![0u8; tag_len];
                fast_argon2(point, tag_len)
                    .hash_into_with_ad(&password, &salt, &secret, &ad, &mut out)
                    .unwrap();
                assert_eq!(out, expected, "one-shot {point:?} tag_len={tag_len}");

                reused.set_argon2(fast_argon2(point, tag_len));
                let mut out = vec![0u8; tag_len];
                reused
                    .hash_into_with_ad(&password, &salt, &secret, &ad, &mut out)
                    .unwrap();
                assert_eq!(out, expected, "reused {point:?} tag_len={tag_len}");
            }
        }
    }
}

/// Over the grid, with and without a random pepper: a hash made through
/// `PasswordHasher` by either backend verifies with the other (its tag is
/// recomputed byte for byte), a wrong password does not, and both write the same
/// PHC head (parameters and key id).
#[tokio::test]
async fn each_backend_verifies_the_others_hashes() {
    use HashBackend::{Fast, RustCrypto};
    for (m, t, p) in GRID {
        let params = HashParams::insecure_for_tests(m, t, p).unwrap();
        let secret = random_bytes(32 + random_below(33));
        for peppered in [false, true] {
            let make = |backend| {
                hasher(
                    backend,
                    params,
                    peppered.then(|| pepper(("k1", &secret), None)),
                )
            };
            let (rc, fast) = (make(RustCrypto), make(Fast));
            for _ in 0..2 {
                let pw = random_password();
                let wrong = format!("{pw}x");
                let by_rc = rc.hash(&normalized(&pw)).await.unwrap();
                let by_fast = fast.hash(&normalized(&pw)).await.unwrap();
                assert_eq!(phc_head(&by_rc), phc_head(&by_fast));
                assert_eq!(phc_head(&by_rc).contains(",keyid="), peppered);
                for (made, checker) in [(&by_rc, &fast), (&by_fast, &rc), (&by_fast, &fast)] {
                    assert!(
                        checker.verify(&normalized(&pw), made).await.unwrap(),
                        "m={m} t={t} p={p} pepper={peppered} {:?}",
                        checker.backend()
                    );
                    assert!(!checker.verify(&normalized(&wrong), made).await.unwrap());
                    assert!(!checker.needs_rehash(made));
                }
            }
        }
    }
}

/// Pepper rotation across backends: a hash made by one backend under key k1
/// verifies on the other once k2 is current and k1 is kept as previous, and is
/// reported for rehashing; a hasher without k1 refuses it.
#[tokio::test]
async fn pepper_rotation_works_across_backends() {
    let params = HashParams::insecure_for_tests(64, 1, 2).unwrap();
    let (k1, k2) = (random_bytes(32), random_bytes(48));
    for (old, new) in [
        (HashBackend::RustCrypto, HashBackend::Fast),
        (HashBackend::Fast, HashBackend::RustCrypto),
    ] {
        let before = hasher(old, params, Some(pepper(("k1", &k1), None)));
        let stored = before.hash(&normalized("rotate me please")).await.unwrap();
        let after = hasher(new, params, Some(pepper(("k2", &k2), Some(("k1", &k1)))));
        assert!(
            after
                .verify(&normalized("rotate me please"), &stored)
                .await
                .unwrap()
        );
        assert!(after.needs_rehash(&stored));
        let unpeppered = hasher(new, params, None);
        assert!(
            unpeppered
                .verify(&normalized("rotate me please"), &stored)
                .await
                .is_err()
        );
        // The same key id with another secret is just a wrong password.
        let wrong_secret = hasher(new, params, Some(pepper(("k1", &k2), None)));
        assert!(
            !wrong_secret
                .verify(&normalized("rotate me please"), &stored)
                .await
                .unwrap()
        );
    }
}

/// A stored hash made with more memory than the current parameters (S2: the
/// parameters were lowered) verifies on either backend through a one-off
/// workspace, and does not grow the pool.
#[tokio::test]
async fn larger_stored_hashes_verify_on_the_other_backend() {
    for (maker, checker) in [
        (HashBackend::RustCrypto, HashBackend::Fast),
        (HashBackend::Fast, HashBackend::RustCrypto),
    ] {
        let big = hasher(
            maker,
            HashParams::insecure_for_tests(512, 2, 4).unwrap(),
            None,
        );
        let small = hasher(
            checker,
            HashParams::insecure_for_tests(64, 1, 1).unwrap(),
            None,
        );
        let stored = big.hash(&normalized("a larger stored hash")).await.unwrap();
        assert!(
            small
                .verify(&normalized("a larger stored hash"), &stored)
                .await
                .unwrap()
        );
        assert!(small.needs_rehash(&stored));
        assert_eq!(small.metrics().idle_buffers, 0, "one-off, not pooled");
        small.verify_dummy().await.unwrap();
        assert_eq!(small.metrics().idle_buffers, 1);
    }
}

/// With the feature on, the fast backend is the default, and the OWASP defaults
/// cross-verify in both directions.
#[tokio::test]
async fn owasp_defaults_cross_verify_and_fast_is_the_default() {
    let fast = PasswordHasher::builder().build().unwrap();
    assert_eq!(fast.backend(), HashBackend::Fast);
    let rc = PasswordHasher::builder()
        .backend(HashBackend::RustCrypto)
        .build()
        .unwrap();
    let pw = normalized("purple otter sings");
    let by_fast = fast.hash(&pw).await.unwrap();
    assert!(
        by_fast
            .as_str()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(rc.verify(&pw, &by_fast).await.unwrap());
    let by_rc = rc.hash(&pw).await.unwrap();
    assert!(fast.verify(&pw, &by_rc).await.unwrap());
    fast.verify_dummy().await.unwrap();
}

/// The reference implementation's published PHC string verifies on both.
#[tokio::test]
async fn reference_phc_string_verifies_on_both() {
    let stored = PasswordHashString::new(
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
            .to_owned(),
    );
    for backend in [HashBackend::RustCrypto, HashBackend::Fast] {
        let h = hasher(backend, HashParams::OWASP, None);
        assert!(h.verify(&normalized("password"), &stored).await.unwrap());
        assert!(!h.verify(&normalized("passwore"), &stored).await.unwrap());
    }
}
