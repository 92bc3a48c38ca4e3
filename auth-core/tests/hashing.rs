//! Behaviour of the password hasher and policy through the public API (S1, S2, S3,
//! S13). Most tests use cheap parameters through the `test-util` constructor; the
//! ones about defaults use the real OWASP parameters.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use auth_core::password::{
    ContextWords, HashError, HashParams, PasswordHasher, PasswordPolicy, Pepper, PepperKey,
    PolicyViolation,
};
use auth_core::{Password, PasswordHashString};

fn cheap() -> HashParams {
    HashParams::insecure_for_tests(64, 1, 1).unwrap()
}

fn hasher(params: HashParams) -> PasswordHasher {
    PasswordHasher::builder().params(params).build().unwrap()
}

fn peppered(params: HashParams, pepper: Pepper) -> PasswordHasher {
    PasswordHasher::builder()
        .params(params)
        .pepper(pepper)
        .build()
        .unwrap()
}

fn key(id: &str, byte: u8) -> PepperKey {
    PepperKey::new(id, [byte; 32]).unwrap()
}

async fn hash(h: &PasswordHasher, pw: &str) -> PasswordHashString {
    let n = PasswordPolicy::default().validate_new(&Password::new(pw), &ContextWords::new());
    h.hash(&n.unwrap()).await.unwrap()
}

async fn verify(h: &PasswordHasher, pw: &str, stored: &PasswordHashString) -> bool {
    let n = PasswordPolicy::default()
        .normalize(&Password::new(pw))
        .unwrap();
    h.verify(&n, stored).await.unwrap()
}

#[tokio::test]
async fn round_trip_and_wrong_password() {
    let h = hasher(cheap());
    let stored = hash(&h, "purple otter sings").await;
    assert!(verify(&h, "purple otter sings", &stored).await);
    assert!(!verify(&h, "purple otter sing", &stored).await);
    assert!(!verify(&h, "Purple otter sings", &stored).await);
}

#[tokio::test]
async fn s1_default_hashes_are_owasp_argon2id_with_fresh_salts() {
    let h = PasswordHasher::builder().build().unwrap();
    let a = hash(&h, "purple otter sings").await;
    let b = hash(&h, "purple otter sings").await;
    assert!(
        a.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{a:?}"
    );
    assert_ne!(a, b, "same password twice must give different hashes");
    // Salt (16 bytes = 22 base64 chars) and tag (32 bytes = 43 chars).
    let parts: Vec<&str> = a.as_str().split('$').collect();
    assert_eq!((parts[4].len(), parts[5].len()), (22, 43));
}

#[tokio::test]
async fn s1_a_100_character_password_does_not_verify_with_its_first_72() {
    let h = hasher(cheap());
    let long: String = ('a'..='z').cycle().take(100).collect();
    let stored = hash(&h, &long).await;
    assert!(verify(&h, &long, &stored).await);
    assert!(!verify(&h, &long[..72], &stored).await);
}

#[tokio::test]
async fn s1_nfc_nfd_and_compatibility_forms_verify_the_same() {
    let h = hasher(cheap());
    let stored = hash(&h, "caf\u{e9} au lait \u{fb01}ne").await; // NFC é and the ﬁ ligature
    assert!(verify(&h, "cafe\u{301} au lait \u{fb01}ne", &stored).await); // NFD é
    assert!(verify(&h, "caf\u{e9} au lait fine", &stored).await); // plain "fi"
    assert!(!verify(&h, "cafe au lait fine", &stored).await);
}

#[tokio::test]
async fn s1_caps_refuse_before_any_hashing() {
    let h = hasher(cheap());
    let policy = PasswordPolicy::default();
    let huge = Password::new("a".repeat(10 * 1024 * 1024));
    assert_eq!(
        policy.normalize(&huge).unwrap_err(),
        PolicyViolation::TooManyBytes { max: 512 }
    );
    let long = Password::new("b".repeat(129));
    assert_eq!(
        policy.normalize(&long).unwrap_err(),
        PolicyViolation::TooLong { max: 128 }
    );
    // The hasher only takes a NormalizedPassword, and none was made: nothing ran.
    assert_eq!(h.metrics().argon2_runs, 0);
}

#[tokio::test]
async fn s2_needs_rehash_for_weaker_params_and_not_for_current() {
    let weak = hasher(cheap());
    let current = hasher(HashParams::insecure_for_tests(128, 2, 1).unwrap());
    let old = hash(&weak, "purple otter sings").await;
    assert!(current.needs_rehash(&old));
    assert!(
        verify(&current, "purple otter sings", &old).await,
        "old params still verify"
    );
    let new = hash(&current, "purple otter sings").await;
    assert!(!current.needs_rehash(&new));
    assert!(current.needs_rehash(&PasswordHashString::new("garbage")));
}

#[tokio::test]
async fn s2_bcrypt_imports_verify_and_always_need_rehash() {
    let h = hasher(cheap());
    // Openwall's published vector.
    let vector =
        PasswordHashString::new("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW");
    assert!(verify(&h, "U*U", &vector).await);
    assert!(!verify(&h, "U*V", &vector).await);
    assert!(h.needs_rehash(&vector));
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        let stored = bcrypt::hash("purple otter sings", 4)
            .unwrap()
            .replacen("$2b$", prefix, 1);
        let stored = PasswordHashString::new(stored);
        assert!(verify(&h, "purple otter sings", &stored).await, "{prefix}");
        assert!(h.needs_rehash(&stored));
    }
    // The upgrade: after a successful verify the caller rehashes with argon2id.
    let upgraded = hash(&h, "purple otter sings").await;
    assert!(!h.needs_rehash(&upgraded));
    assert_eq!(h.metrics().bcrypt_runs, 5);
}

#[tokio::test]
async fn s1_pepper_is_required_to_verify_and_its_key_id_is_recorded() {
    let with = peppered(cheap(), Pepper::new(key("k1", 1)));
    let stored = hash(&with, "purple otter sings").await;
    assert!(stored.as_str().contains(",keyid="), "{stored:?}");
    assert!(verify(&with, "purple otter sings", &stored).await);
    assert!(!with.needs_rehash(&stored));

    // A hash copied out of the store does not verify without the key...
    let without = hasher(cheap());
    let n = PasswordPolicy::default()
        .normalize(&Password::new("purple otter sings"))
        .unwrap();
    assert!(matches!(
        without.verify(&n, &stored).await,
        Err(HashError::UnknownPepperKey { key_id }) if key_id == "k1"
    ));
    // ...nor with another secret under the same id.
    let wrong = peppered(cheap(), Pepper::new(key("k1", 2)));
    assert!(!verify(&wrong, "purple otter sings", &stored).await);
    // A pepper-less hash needs a rehash once a pepper is configured.
    assert!(with.needs_rehash(&hash(&without, "purple otter sings").await));
}

#[tokio::test]
async fn s1_pepper_rotation_keeps_old_hashes_working_until_rehashed() {
    let before = peppered(cheap(), Pepper::new(key("k1", 1)));
    let old = hash(&before, "purple otter sings").await;

    let after = peppered(
        cheap(),
        Pepper::new(key("k2", 2))
            .with_previous(key("k1", 1))
            .unwrap(),
    );
    assert!(
        verify(&after, "purple otter sings", &old).await,
        "old key still verifies"
    );
    assert!(after.needs_rehash(&old), "old key id needs rehash");

    let new = hash(&after, "purple otter sings").await;
    assert!(!after.needs_rehash(&new));
    assert!(verify(&after, "purple otter sings", &new).await);
    // The new id is recorded: a hasher that only knows k1 cannot verify it.
    let n = PasswordPolicy::default()
        .normalize(&Password::new("purple otter sings"))
        .unwrap();
    assert!(matches!(
        before.verify(&n, &new).await,
        Err(HashError::UnknownPepperKey { key_id }) if key_id == "k2"
    ));
}

#[tokio::test]
async fn s3_dummy_verify_does_exactly_one_real_computation() {
    let h = PasswordHasher::builder().build().unwrap();
    let stored = hash(&h, "purple otter sings").await;
    let before = h.metrics().argon2_runs;
    h.verify_dummy().await.unwrap();
    assert_eq!(h.metrics().argon2_runs, before + 1);
    assert!(!verify(&h, "wrong password!", &stored).await);
    assert_eq!(h.metrics().argon2_runs, before + 2);
}

#[tokio::test]
async fn hashes_made_with_more_memory_than_the_pool_still_verify() {
    let big = hasher(HashParams::insecure_for_tests(1024, 1, 1).unwrap());
    let small = hasher(cheap());
    let stored = hash(&big, "purple otter sings").await;
    assert!(verify(&small, "purple otter sings", &stored).await);
    assert!(small.needs_rehash(&stored));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s13_many_concurrent_verifies_share_bounded_workers() {
    let h = PasswordHasher::builder()
        .params(HashParams::insecure_for_tests(256, 1, 1).unwrap())
        .max_concurrent(2)
        .max_queued(64)
        .build()
        .unwrap();
    let stored = hash(&h, "purple otter sings").await;
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let (h, stored) = (h.clone(), stored.clone());
            tokio::spawn(async move {
                let pw = if i % 2 == 0 {
                    "purple otter sings"
                } else {
                    "wrong password!!"
                };
                verify(&h, pw, &stored).await == (i % 2 == 0)
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let m = h.metrics();
    assert_eq!((m.argon2_runs, m.rejected, m.waiting), (49, 0, 0));
    assert!(m.idle_buffers <= 2, "{m:?}");
}
