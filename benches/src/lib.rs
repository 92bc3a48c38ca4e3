//! Criterion benchmarks of the authentication library; `perf-table`, which
//! turns their results into the markdown tables of `docs/PERFORMANCE.md`; and
//! `hash-rate`, the verifications per second of the hasher alone, one at a time
//! and one per permit at once, which `scripts/load.sh` measures beside its
//! login rate.
//!
//! ```text
//! cargo bench -p auth-benches --bench hashing
//! cargo run -p auth-benches --bin perf-table --release
//! cargo run -p auth-benches --bin hash-rate --release -- --secs 6
//! ```
