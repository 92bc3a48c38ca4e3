#!/usr/bin/env bash
# Line and region coverage of the library crates (issue 19), printed per crate
# and overall; exits non-zero below the floors in scripts/coverage_check.py.
# .ci/run runs it; by hand it needs PostgreSQL and Redis as for the tests
# (DATABASE_URL, REDIS_URL), else their tests skip and coverage drops.
#
# Tools: Debian's llvm-22 (llvm-cov and llvm-profdata matching rustc 1.95's
# LLVM 22) and cargo-llvm-cov from crates.io; .ci/run installs both.
#
# What runs instrumented: every test of the library crates and of their
# integration suites (unit, integration, the store conformance suites on
# PostgreSQL and Redis), with every feature. Left out: the examples and
# the benches (their end-to-end tests start the server binary and restart
# PostgreSQL; they run uninstrumented in the README's test command), and
# doctests (stable rustc does not instrument them).
set -euo pipefail
cd "$(dirname "$0")/.."

export LLVM_COV="${LLVM_COV:-/usr/bin/llvm-cov-22}"
export LLVM_PROFDATA="${LLVM_PROFDATA:-/usr/bin/llvm-profdata-22}"

target_dir="${CARGO_TARGET_DIR:-target}"
summary="$target_dir/llvm-cov-summary.json"

cargo llvm-cov clean --workspace
cargo llvm-cov --no-report --workspace --all-features \
  --exclude example-server --exclude example-existing-app --exclude auth-benches --tests
cargo llvm-cov report --json --summary-only --output-path "$summary"
python3 scripts/coverage_check.py "$summary"
