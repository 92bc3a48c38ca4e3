//! Hashing cost: the numbers users pick their argon2 parameters by.
//!
//! - `verify/{ours,ours_fast,raw}` and `hash/{ours,ours_fast}` over the grid
//!   m x t x p (plus m=65536, t=3, p=4): our `PasswordHasher` (reused memory,
//!   worker threads) with the default `argon2` backend (`ours`) and with the
//!   `argon2-rust` backend of the `fast-argon2` feature (`ours_fast`), beside the
//!   `argon2` crate called directly as most code calls it (allocating its memory
//!   on every call), at the same parameters, interleaved so all see the same
//!   machine state. `ours_fast` verifies the very hashes `ours` made.
//! - `verify/{fast_raw,fast_oneshot}` at m=19456, t=2, p=1 and m=65536, t=3,
//!   p=4: `argon2-rust` called directly on one thread, with a reused arena
//!   (`Hasher`) and allocating per call; `verify/fast_raw_threads` at p=4: the
//!   reused arena with the lanes on `min(p, CPUs)` threads, as `ours_fast` runs
//!   them with its default one permit per CPU.
//! - `bcrypt_verify/cost`: imported legacy hashes.
//! - `concurrent_verify/{owasp,owasp_fast}/N`: N verifies at once through the
//!   hasher's queue, as throughput, per backend.
//! - `parallel_scaling/{default,fast}/m{m}_t{t}_n{n}` at OWASP's five
//!   equivalent settings (p=1): one verify at a time, then one per CPU at once.
//!   Their throughput ratio is how well concurrent hashes share this machine:
//!   below the CPU count when their memory no longer fits the shared cache
//!   together (the ceiling of the load test's login throughput,
//!   docs/PERFORMANCE.md).
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
use argon2_rust::params::Memory;
use auth_core::password::{HashBackend, HashParams, PasswordHasher, PasswordPolicy};
use auth_core::{Password, PasswordHashString};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tokio::runtime::Runtime;

const PASSWORD: &str = "correct horse battery staple";
const GRID_M: [u32; 3] = [19_456, 47_104, 65_536];
const GRID_T: [u32; 3] = [1, 2, 3];
const GRID_P: [u32; 2] = [1, 2];
/// Points measured beside the grid: many lanes, strong parameters.
const EXTRA_POINTS: [(u32, u32, u32); 1] = [(65_536, 3, 4)];
/// Points where `argon2-rust` is also called directly.
const DIRECT_POINTS: [(u32, u32, u32); 2] = [(19_456, 2, 1), (65_536, 3, 4)];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn grid_id(m: u32, t: u32, p: u32) -> String {
    format!("m{m}_t{t}_p{p}")
}

fn hasher(backend: HashBackend, params: HashParams) -> PasswordHasher {
    PasswordHasher::builder()
        .backend(backend)
        .params(params)
        .build()
        .unwrap()
}

/// The largest string `argon2-rust` may verify, with a thread budget: `threads`
/// worker threads at most (1 = every lane on the calling thread).
fn fast_ceiling(m: u32, t: u32, p: u32, threads: u32) -> argon2_rust::Params {
    argon2_rust::Params::builder()
        .memory(Memory::kib(u64::from(m)))
        .passes(t)
        .lanes(p)
        .threads(threads)
        .build()
        .unwrap()
}

/// An `argon2-rust` hasher configured for the point, arena mapped.
fn fast_hasher(ceiling: argon2_rust::Params) -> argon2_rust::Hasher {
    let mut h = argon2_rust::Argon2::new(
        argon2_rust::Algorithm::Argon2id,
        argon2_rust::Version::V0x13,
        ceiling,
    )
    .hasher();
    h.reserve().unwrap();
    h
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
    let grid = GRID_M
        .into_iter()
        .flat_map(|m| GRID_T.into_iter().map(move |t| (m, t)))
        .flat_map(|(m, t)| GRID_P.into_iter().map(move |p| (m, t, p)))
        .chain(EXTRA_POINTS);
    for (m, t, p) in grid {
        let params = HashParams::insecure_for_tests(m, t, p).unwrap();
        let ours = hasher(HashBackend::RustCrypto, params);
        let fast = hasher(HashBackend::Fast, params);
        let stored = rt.block_on(ours.hash(&password)).unwrap();
        let raw = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            argon2::Params::new(m, t, p, Some(32)).unwrap(),
        );
        let id = grid_id(m, t, p);
        for (name, h) in [("ours", &ours), ("ours_fast", &fast)] {
            verify.bench_with_input(BenchmarkId::new(name, &id), &stored, |b, stored| {
                b.to_async(&rt).iter(|| async {
                    assert!(h.verify(&password, stored).await.unwrap());
                });
            });
        }
        verify.bench_with_input(BenchmarkId::new("raw", &id), &stored, |b, stored| {
            b.iter(|| {
                raw.verify_password(PASSWORD.as_bytes(), stored.as_str())
                    .unwrap();
            });
        });
        if DIRECT_POINTS.contains(&(m, t, p)) {
            fast_direct(&mut verify, &id, (m, t, p), stored.as_str());
        }
        hashes.push((id, ours, fast));
    }
    verify.finish();

    let mut hash = c.benchmark_group("hash");
    hash.sampling_mode(SamplingMode::Flat).sample_size(10);
    hash.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (id, ours, fast) in &hashes {
        for (name, h) in [("ours", ours), ("ours_fast", fast)] {
            hash.bench_function(BenchmarkId::new(name, id), |b| {
                b.to_async(&rt)
                    .iter(|| async { h.hash(&password).await.unwrap() });
            });
        }
    }
    hash.finish();
}

/// `argon2-rust` called directly on a stored PHC string, as its documentation
/// suggests for a server: a reused `Hasher` with a bounded verify.
fn fast_direct(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    (m, t, p): (u32, u32, u32),
    stored: &str,
) {
    let pw = PASSWORD.as_bytes();
    let alg = argon2_rust::Algorithm::Argon2id;
    let one_thread = fast_ceiling(m, t, p, 1);
    let mut reused = fast_hasher(one_thread);
    group.bench_function(BenchmarkId::new("fast_raw", id), |b| {
        b.iter(|| {
            reused
                .verify_encoded_bounded(stored, pw, alg, &one_thread)
                .unwrap();
        });
    });
    group.bench_function(BenchmarkId::new("fast_oneshot", id), |b| {
        b.iter(|| {
            argon2_rust::Argon2::verify_encoded_bounded(stored, pw, alg, &one_thread).unwrap();
        });
    });
    if p > 1 {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let per_lane = fast_ceiling(m, t, p, p.min(u32::try_from(cpus).unwrap()));
        let mut threaded = fast_hasher(per_lane);
        group.bench_function(BenchmarkId::new("fast_raw_threads", id), |b| {
            b.iter(|| {
                threaded
                    .verify_encoded_bounded(stored, pw, alg, &per_lane)
                    .unwrap();
            });
        });
    }
}

fn bcrypt_legacy(c: &mut Criterion) {
    let rt = runtime();
    let hasher = hasher(HashBackend::RustCrypto, HashParams::OWASP);
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

/// Starts `n` verifications of [`PASSWORD`] at once and waits for all.
async fn verify_at_once(hasher: &PasswordHasher, stored: &PasswordHashString, n: u64) {
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
}

fn concurrent_verify(c: &mut Criterion) {
    let rt = runtime();
    let password = PasswordPolicy::default()
        .normalize(&Password::new(PASSWORD))
        .unwrap();
    let mut group = c.benchmark_group("concurrent_verify");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for (name, backend) in [
        ("owasp", HashBackend::RustCrypto),
        ("owasp_fast", HashBackend::Fast),
    ] {
        // Permits default to the number of CPUs; the queue takes the rest.
        let hasher = PasswordHasher::builder()
            .backend(backend)
            .max_queued(1024)
            .build()
            .unwrap();
        let stored = rt.block_on(hasher.hash(&password)).unwrap();
        for n in [1_u64, 2, 4, 8, 16] {
            group.throughput(Throughput::Elements(n));
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.to_async(&rt).iter(|| verify_at_once(&hasher, &stored, n));
            });
        }
    }
    group.finish();
}

/// Points for `parallel_scaling`: OWASP's five equivalent argon2id settings
/// (m KiB, t), from 7 MiB per hash, which fits a shared cache many times over,
/// to 46 MiB, which does not fit even once.
const SCALING_POINTS: [(u32, u32); 5] = [
    (7_168, 5),
    (9_216, 4),
    (12_288, 3),
    (19_456, 2),
    (47_104, 1),
];

fn parallel_scaling(c: &mut Criterion) {
    let rt = runtime();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let password = PasswordPolicy::default()
        .normalize(&Password::new(PASSWORD))
        .unwrap();
    let mut group = c.benchmark_group("parallel_scaling");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, backend) in [
        ("default", HashBackend::RustCrypto),
        ("fast", HashBackend::Fast),
    ] {
        for (m, t) in SCALING_POINTS {
            let hasher = hasher(backend, HashParams::new(m, t, 1).unwrap());
            let stored = rt.block_on(hasher.hash(&password)).unwrap();
            for n in [1, cpus] {
                group.throughput(Throughput::Elements(n));
                let id = BenchmarkId::new(name, format!("m{m}_t{t}_n{n}"));
                group.bench_function(id, |b| {
                    b.to_async(&rt).iter(|| verify_at_once(&hasher, &stored, n));
                });
            }
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    hashing_grid,
    bcrypt_legacy,
    concurrent_verify,
    parallel_scaling
);
criterion_main!(benches);
