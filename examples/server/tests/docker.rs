//! What can be checked of the Docker files without a Docker engine (none runs on
//! these machines): docker-compose.yml parses and names the four services, and
//! the Dockerfile is multi-stage, runs as a non-root user and builds the server
//! with features that exist. The compose check needs `docker compose` or
//! `docker-compose` (`.ci/run` installs the latter); without either it skips
//! with the reason printed, and with `CI=true` it fails.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code; a skip says why"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap()
}

/// `docker compose` (v2) or `docker-compose` (v1), whichever answers.
fn compose() -> Option<(&'static str, &'static [&'static str])> {
    [("docker", &["compose"][..]), ("docker-compose", &[][..])]
        .into_iter()
        .find(|(program, args)| {
            Command::new(program)
                .args(*args)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn compose_file_parses_with_server_postgres_redis_and_a_mail_sink() {
    let Some((program, args)) = compose() else {
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        assert!(
            !ci,
            "CI=true but neither `docker compose` nor `docker-compose` is installed"
        );
        eprintln!("SKIPPED: neither `docker compose` nor `docker-compose` is installed");
        return;
    };
    let run = |secret: Option<&str>, extra: &[&str]| {
        let mut c = Command::new(program);
        c.args(args).arg("config").args(extra).current_dir(root());
        c.env_remove("SECRET_KEY");
        if let Some(secret) = secret {
            c.env("SECRET_KEY", secret);
        }
        c.output().unwrap()
    };
    let ok = run(
        Some("a-secret-key-of-at-least-32-bytes-long"),
        &["--services"],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let services = String::from_utf8_lossy(&ok.stdout).into_owned();
    let mut services: Vec<&str> = services.lines().collect();
    services.sort_unstable();
    assert_eq!(services, ["maildev", "postgres", "redis", "server"]);
    // Without SECRET_KEY the file refuses to render rather than start with none.
    assert!(!run(None, &["-q"]).status.success());
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_builds_existing_features() {
    let dockerfile = read("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "multi-stage: {stages} FROM lines");
    let last_user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    assert!(
        !last_user.starts_with("root") && !last_user.starts_with('0'),
        "{last_user}"
    );
    assert!(dockerfile.contains("--locked"), "builds from Cargo.lock");
    let manifest = read("examples/server/Cargo.toml");
    let features = dockerfile
        .split("--features ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a --features list");
    for feature in features.split(',') {
        assert!(
            manifest.contains(&format!("\n{feature} = [")),
            "feature {feature} is not in examples/server/Cargo.toml"
        );
    }
}
