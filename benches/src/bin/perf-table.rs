//! Turns criterion's results (`target/criterion`) into the markdown tables of
//! `docs/PERFORMANCE.md`.
//!
//! ```text
//! cargo bench -p auth-benches --bench hashing
//! cargo run -p auth-benches --bin perf-table --release            # print
//! cargo run -p auth-benches --bin perf-table --release -- --write # update the doc
//! ```
//!
//! With `--write` it replaces what stands between the `perf-table:begin` and
//! `perf-table:end` markers of `docs/PERFORMANCE.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- perf-table:begin -->";
const END: &str = "<!-- perf-table:end -->";
const BUDGETS_MS: [f64; 4] = [25.0, 50.0, 100.0, 250.0];
/// (m KiB, t) rows of the OWASP cheat sheet; a row meets the minimum when it is at
/// least as strong as one of them (the same rule as `HashParams::new`).
const OWASP: [(u64, u64); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// Median times in nanoseconds, keyed by (group, function, parameter).
type Results = BTreeMap<(String, String, String), f64>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let mut results = Results::new();
    collect(&target.join("criterion"), &mut results)?;
    if results.is_empty() {
        return Err("no criterion results found: run `cargo bench -p auth-benches` first".into());
    }
    let tables = render(&results)?;
    if std::env::args().any(|a| a == "--write") {
        let doc_path = root.join("docs/PERFORMANCE.md");
        let doc = std::fs::read_to_string(&doc_path)?;
        let (Some((head, _)), Some((_, tail))) = (doc.split_once(BEGIN), doc.split_once(END))
        else {
            return Err(format!("{} lacks the perf-table markers", doc_path.display()).into());
        };
        let updated = format!("{head}{BEGIN}\n{tables}{END}{tail}");
        std::fs::write(&doc_path, updated)?;
    } else {
        use std::io::Write as _;
        std::io::stdout().write_all(tables.as_bytes())?;
    }
    Ok(())
}

/// Reads every `new/benchmark.json` + `new/estimates.json` pair below `dir`.
fn collect(dir: &Path, results: &mut Results) -> Result<(), Box<dyn std::error::Error>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let bench: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path.join("benchmark.json"))?)?;
            let est: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path.join("estimates.json"))?)?;
            let field = |k: &str| {
                bench
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let key = (field("group_id"), field("function_id"), field("value_str"));
            if let Some(median) = est
                .pointer("/median/point_estimate")
                .and_then(serde_json::Value::as_f64)
            {
                results.insert(key, median);
            }
        } else if path.is_dir() {
            collect(&path, results)?;
        }
    }
    Ok(())
}

fn get(results: &Results, group: &str, function: &str, value: &str) -> Option<f64> {
    results
        .get(&(group.to_owned(), function.to_owned(), value.to_owned()))
        .copied()
}

fn ms(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.1} ms", ns / 1e6))
}

/// A grid point parsed from its id `m{m}_t{t}_p{p}`.
struct Point {
    id: String,
    m: u64,
    t: u64,
    p: u64,
}

fn parse_point(id: &str) -> Option<Point> {
    let mut it = id.split('_');
    let m = it.next()?.strip_prefix('m')?.parse().ok()?;
    let t = it.next()?.strip_prefix('t')?.parse().ok()?;
    let p = it.next()?.strip_prefix('p')?.parse().ok()?;
    Some(Point {
        id: id.to_owned(),
        m,
        t,
        p,
    })
}

fn render(results: &Results) -> Result<String, std::fmt::Error> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split_once(':').map_or("", |(_, v)| v).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let date = time::OffsetDateTime::now_utc().date();
    let mut out = String::new();
    writeln!(
        out,
        "Measured {date} on {cpu}, {cores} CPUs available; medians of criterion samples."
    )?;
    writeln!(
        out,
        "\"raw\" is the `argon2` 0.6 crate called directly (allocating per call).\n"
    )?;

    let mut points: Vec<Point> = results
        .keys()
        .filter(|(g, f, _)| g == "verify" && f == "ours")
        .filter_map(|(_, _, v)| parse_point(v))
        .collect();
    points.sort_by_key(|p| (p.m, p.t, p.p));

    writeln!(out, "### argon2id cost grid\n")?;
    writeln!(
        out,
        "| m (KiB) | t | p | verify, ours | verify, raw | ours / raw | hash, ours | memory for {cores} permits | meets OWASP minimum |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")?;
    for pt in &points {
        let ours = get(results, "verify", "ours", &pt.id);
        let raw = get(results, "verify", "raw", &pt.id);
        let ratio = ours
            .zip(raw)
            .map_or_else(|| "-".to_owned(), |(o, r)| format!("{:.3}", o / r));
        let owasp = OWASP.iter().any(|&(m, t)| pt.m >= m && pt.t >= t);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} MiB | {} |",
            pt.m,
            pt.t,
            pt.p,
            ms(ours),
            ms(raw),
            ratio,
            ms(get(results, "hash", "ours", &pt.id)),
            pt.m * cores as u64 / 1024,
            if owasp { "yes" } else { "no" },
        )?;
    }

    writeln!(
        out,
        "\n### Strongest OWASP-compliant parameters per latency budget\n"
    )?;
    writeln!(
        out,
        "Strongest = most memory x passes among grid rows that meet the OWASP minimum and verify within the budget.\n"
    )?;
    writeln!(
        out,
        "| budget per verify | parameters | verify, ours | hashing memory for {cores} permits |"
    )?;
    writeln!(out, "|---:|---|---:|---:|")?;
    for budget in BUDGETS_MS {
        let best = points
            .iter()
            .filter(|pt| OWASP.iter().any(|&(m, t)| pt.m >= m && pt.t >= t))
            .filter_map(|pt| get(results, "verify", "ours", &pt.id).map(|ns| (pt, ns)))
            .filter(|(_, ns)| ns / 1e6 <= budget)
            .max_by_key(|(pt, _)| (pt.m * pt.t, std::cmp::Reverse(pt.p)));
        match best {
            Some((pt, ns)) => writeln!(
                out,
                "| {budget} ms | m={}, t={}, p={} | {} | {} MiB |",
                pt.m,
                pt.t,
                pt.p,
                ms(Some(ns)),
                pt.m * cores as u64 / 1024
            )?,
            None => writeln!(out, "| {budget} ms | none in the grid | - | - |")?,
        }
    }

    writeln!(out, "\n### Imported bcrypt hashes\n")?;
    writeln!(out, "| cost | verify, ours |")?;
    writeln!(out, "|---:|---:|")?;
    for cost in ["10", "12"] {
        writeln!(
            out,
            "| {cost} | {} |",
            ms(get(results, "bcrypt_verify", "ours", cost))
        )?;
    }

    writeln!(
        out,
        "\n### Concurrent verifies at m=19456, t=2, p=1 ({cores} permits)\n"
    )?;
    let single = get(results, "verify", "ours", "m19456_t2_p1");
    writeln!(
        out,
        "Ideal = min(verifies at once, {cores} permits) / single verify time ({}).\n",
        ms(single)
    )?;
    writeln!(
        out,
        "| verifies at once | time for all | verifies/s | share of ideal |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|")?;
    for n in [1_u32, 2, 4, 8, 16] {
        let Some(ns) = get(results, "concurrent_verify", "owasp", &n.to_string()) else {
            continue;
        };
        let per_s = f64::from(n) / (ns / 1e9);
        let parallel = u32::try_from(cores).unwrap_or(u32::MAX).min(n);
        let ideal = single.map(|s| f64::from(parallel) / (s / 1e9));
        let share = ideal.map_or_else(|| "-".to_owned(), |i| format!("{:.0}%", per_s / i * 100.0));
        writeln!(out, "| {n} | {} | {per_s:.1} | {share} |", ms(Some(ns)))?;
    }
    Ok(out)
}
