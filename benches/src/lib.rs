//! Criterion benchmarks of the authentication library, and `perf-table`, which
//! turns their results into the markdown tables of `docs/PERFORMANCE.md`.
//!
//! ```text
//! cargo bench -p auth-benches --bench hashing
//! cargo run -p auth-benches --bin perf-table --release
//! ```
