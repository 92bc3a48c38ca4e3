//! Verifications per second on this machine through auth-core's
//! `PasswordHasher`: one at a time, then one per hashing permit at once. The
//! second is the most logins per second any server can reach here at these
//! parameters; `scripts/load.sh` runs this in the same run as its login phases,
//! so that its logins/s can be read against it.
//!
//! ```text
//! cargo run -p auth-benches --bin hash-rate --release -- [--fast] [--secs S] [--tasks N]
//! ```
//!
//! Parameters come from the example server's variables, with its defaults:
//! `ARGON2_M_COST` (19456), `ARGON2_T_COST` (2), `ARGON2_P_COST` (1),
//! `HASH_CONCURRENCY` (CPUs). `--tasks N` starts N callers at once in the second
//! phase instead of one per permit (the rest queue). `--fast` uses the `argon2-rust` backend (what the
//! server's `fast-argon2` feature selects). Prints one line:
//! `RESULT single_per_s=.. concurrent_per_s=.. permits=..`.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_core::password::{HashBackend, HashParams, PasswordHasher, PasswordPolicy};
use auth_core::{Password, PasswordHashString};

const PASSWORD: &str = "correct horse battery staple, load";

fn env_u32(name: &str, default: u32) -> Result<u32, Box<dyn std::error::Error>> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|e| format!("{name}={v}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// The value after `name` on the command line, if `name` is there.
fn flag<T>(args: &[String], name: &str) -> Result<Option<T>, Box<dyn std::error::Error>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + 'static,
{
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let value = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            Ok(Some(value.parse()?))
        }
        None => Ok(None),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fast = args.iter().any(|a| a == "--fast");
    let secs: f64 = flag(&args, "--secs")?.unwrap_or(6.0);
    let tasks: Option<usize> = flag(&args, "--tasks")?;
    let params = HashParams::new(
        env_u32("ARGON2_M_COST", 19_456)?,
        env_u32("ARGON2_T_COST", 2)?,
        env_u32("ARGON2_P_COST", 1)?,
    )?;
    let mut builder = PasswordHasher::builder()
        .params(params)
        .backend(if fast {
            HashBackend::Fast
        } else {
            HashBackend::RustCrypto
        })
        .max_queued(1024);
    if let Ok(permits) = std::env::var("HASH_CONCURRENCY") {
        builder = builder.max_concurrent(permits.parse()?);
    }
    let hasher = builder.build()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let permits = hasher.max_concurrent();
    let stored =
        rt.block_on(hasher.hash(&PasswordPolicy::default().normalize(&Password::new(PASSWORD))?))?;
    let window = Duration::from_secs_f64(secs / 2.0);
    // A B B A: drift of the machine's speed weighs on both alike.
    let mut single = Vec::new();
    let mut concurrent = Vec::new();
    for round in 0..4 {
        if round == 0 || round == 3 {
            single.push(rt.block_on(rate(&hasher, &stored, 1, window))?);
        } else {
            let workers = tasks.unwrap_or(permits);
            concurrent.push(rt.block_on(rate(&hasher, &stored, workers, window))?);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    writeln!(
        std::io::stdout(),
        "RESULT single_per_s={:.2} concurrent_per_s={:.2} permits={permits} backend={}",
        mean(&single),
        mean(&concurrent),
        if fast { "fast" } else { "default" }
    )?;
    Ok(())
}

/// Verifications per second by `workers` tasks verifying back to back for
/// `window`.
async fn rate(
    hasher: &PasswordHasher,
    stored: &PasswordHashString,
    workers: usize,
    window: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (hasher, stored, done) = (hasher.clone(), stored.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                while start.elapsed() < window {
                    let password = PasswordPolicy::default().normalize(&Password::new(PASSWORD))?;
                    if !hasher.verify(&password, &stored).await? {
                        return Err::<(), Box<dyn std::error::Error + Send + Sync>>(
                            "the password did not verify".into(),
                        );
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
