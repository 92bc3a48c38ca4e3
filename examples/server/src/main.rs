//! The example server.
//!
//! Status: a stub. The HTTP server (memory store and console mailer by default,
//! PostgreSQL and Redis when configured) arrives once the engine and the axum
//! adapter exist. Until then it prints its version and what it will become.

#[allow(
    clippy::print_stdout,
    reason = "a command-line program reports on stdout"
)]
fn main() {
    println!("example-server {}", env!("CARGO_PKG_VERSION"));
    println!(
        "This is a stub: the HTTP server is not built yet. Today the workspace ships the \
         password hashing core (auth-core) and its benchmarks (cargo bench -p auth-benches)."
    );
}
