//! Hashing cost: the numbers users pick their argon2 parameters by.
//!
//! - `verify/{ours,raw}` and `hash/ours` over the grid m x t x p: our
//!   `PasswordHasher` (reused memory, blocking pool) beside the `argon2` crate
//!   called directly as most code calls it (allocating its memory on every call),
//!   at the same parameters, interleaved so both see the same machine state.
//! - `bcrypt_verify/cost`: imported legacy hashes.
//! - `concurrent_verify/N`: N verifies at once through the semaphore, as
//!   throughput.
//!
//! `cargo run -p auth-benches --bin perf-table --release -- --write` turns the
//! results into the tables of `docs/PERFORMANCE.md`.
#![allow(
    missing_docs,
    reason = "criterion_main! generates an undocumented main"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failing bench should stop loudly"
)]

use std::time::Duration;

use argon2::{Algorithm, Argon2, PasswordVerifier, Version};
use auth_core::password::{HashParams, PasswordHasher, PasswordPolicy};
use auth_core::{Password, PasswordHashString};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tokio::runtime::Runtime;

const PASSWORD: &str = "correct horse battery staple";
const GRID_M: [u32; 3] = [19_456, 47_104, 65_536];
const GRID_T: [u32; 3] = [1, 2, 3];
const GRID_P: [u32; 2] = [1, 2];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn grid_id(m: u32, t: u32, p: u32) -> String {
    format!("m{m}_t{t}_p{p}")
}

fn hashing_grid(c: &mut Criterion) {
    let rt = runtime();
    let password = PasswordPolicy::default()
        .normalize(&Password::new(PASSWORD))
        .unwrap();
    let mut verify = c.benchmark_group("verify");
    verify.sampling_mode(SamplingMode::Flat).sample_size(20);
    verify
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut hashes = Vec::new();
    for m in GRID_M {
        for t in GRID_T {
            for p in GRID_P {
                let params = HashParams::insecure_for_tests(m, t, p).unwrap();
                let hasher = PasswordHasher::builder().params(params).build().unwrap();
                let stored = rt.block_on(hasher.hash(&password)).unwrap();
                let raw = Argon2::new(
                    Algorithm::Argon2id,
                    Version::V0x13,
                    argon2::Params::new(m, t, p, Some(32)).unwrap(),
                );
                let id = grid_id(m, t, p);
                verify.bench_with_input(BenchmarkId::new("ours", &id), &stored, |b, stored| {
                    b.to_async(&rt).iter(|| async {
                        assert!(hasher.verify(&password, stored).await.unwrap());
                    });
                });
                verify.bench_with_input(BenchmarkId::new("raw", &id), &stored, |b, stored| {
                    b.iter(|| {
                        raw.verify_password(PASSWORD.as_bytes(), stored.as_str())
                            .unwrap();
                    });
                });
                hashes.push((id, hasher));
            }
        }
    }
    verify.finish();

    let mut hash = c.benchmark_group("hash");
    hash.sampling_mode(SamplingMode::Flat).sample_size(10);
    hash.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (id, hasher) in &hashes {
        hash.bench_function(BenchmarkId::new("ours", id), |b| {
            b.to_async(&rt)
                .iter(|| async { hasher.hash(&password).await.unwrap() });
        });
    }
    hash.finish();
}

fn bcrypt_legacy(c: &mut Criterion) {
    let rt = runtime();
    let hasher = PasswordHasher::builder().build().unwrap();
    let password = PasswordPolicy::default()
        .normalize(&Password::new(PASSWORD))
        .unwrap();
    let mut group = c.benchmark_group("bcrypt_verify");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for cost in [10, 12] {
        let stored = PasswordHashString::new(bcrypt::hash(PASSWORD, cost).unwrap());
        group.bench_with_input(BenchmarkId::new("ours", cost), &stored, |b, stored| {
            b.to_async(&rt).iter(|| async {
                assert!(hasher.verify(&password, stored).await.unwrap());
            });
        });
    }
    group.finish();
}

fn concurrent_verify(c: &mut Criterion) {
    let rt = runtime();
    // Permits default to the number of CPUs; the queue takes the rest.
    let hasher = PasswordHasher::builder().max_queued(1024).build().unwrap();
    let password = PasswordPolicy::default()
        .normalize(&Password::new(PASSWORD))
        .unwrap();
    let stored = rt.block_on(hasher.hash(&password)).unwrap();
    let mut group = c.benchmark_group("concurrent_verify");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for n in [1_u64, 2, 4, 8, 16] {
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("owasp", n), &n, |b, &n| {
            b.to_async(&rt).iter(|| async {
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let (h, s) = (hasher.clone(), stored.clone());
                        let pw = PasswordPolicy::default().normalize(&Password::new(PASSWORD));
                        tokio::spawn(async move { h.verify(&pw.unwrap(), &s).await.unwrap() })
                    })
                    .collect();
                for t in tasks {
                    assert!(t.await.unwrap());
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, hashing_grid, bcrypt_legacy, concurrent_verify);
criterion_main!(benches);
